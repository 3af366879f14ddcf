"""Calibration at promotion and CBPE (pipelines/estimation): pure, no Ray, no store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pipelines.estimation.block import estimate_block, estimated_drift
from pipelines.estimation.calibration import (
    METHODS,
    calibrated_proba,
    expected_calibration_error,
    fit_calibration,
)
from pipelines.estimation.cbpe import confusion_metrics, estimate_performance, expected_confusion


def data(n: int, seed: int, shift: float = 0.0, classes: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(shift, 1, n), rng.normal(size=n)
    score = x1 + x2 ** 2 - 1 + rng.normal(scale=0.7, size=n)
    y = (score > 0).astype(int) if classes == 2 else np.digitize(score, [-0.5, 0.7])
    return pd.DataFrame({"x1": x1, "x2": x2, "y": y})


def test_the_expected_confusion_matrix_by_hand() -> None:
    q = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7]])
    predicted = np.array([0, 0, 1, 0])
    matrix = expected_confusion(q, predicted, 2)
    # rows: true class; columns: predicted. Column 0 sums rows 0, 1, 3; column 1 is row 2.
    assert matrix.ravel().tolist() == pytest.approx([0.9 + 0.6 + 0.3, 0.2, 0.1 + 0.4 + 0.7, 0.8])
    metrics = confusion_metrics(matrix)
    tp0, fp0, fn0 = 1.8, 1.2, 0.2
    tp1, fp1, fn1 = 0.8, 0.2, 1.2
    f1 = [2 * tp0 / (2 * tp0 + fp0 + fn0), 2 * tp1 / (2 * tp1 + fp1 + fn1)]
    assert metrics["accuracy"] == pytest.approx(2.6 / 4)
    assert metrics["f1_macro"] == pytest.approx(np.mean(f1))
    assert metrics["balanced_accuracy"] == pytest.approx((1.8 / 2.0 + 0.8 / 2.0) / 2)
    assert metrics["f1_minority"] == pytest.approx(f1[1])  # a tie of expected counts (2.0, 2.0): the second class


def test_a_counted_matrix_gives_scikit_learns_numbers() -> None:
    rng = np.random.default_rng(1)
    y, p = rng.integers(0, 3, 200), rng.integers(0, 3, 200)
    matrix = np.zeros((3, 3))
    np.add.at(matrix, (y, p), 1)
    assert confusion_metrics(matrix)["f1_macro"] == pytest.approx(f1_score(y, p, average="macro"))


def test_certain_probabilities_estimate_exactly_with_a_point_interval() -> None:
    y = np.array([0, 1, 1, 0, 1])
    predicted = np.array([0, 1, 0, 0, 1])
    q = np.eye(2)[y]
    est = estimate_performance(q, q, predicted, np.array([0, 1]), seed=0)
    assert est.metrics["accuracy"] == pytest.approx(0.8) and est.interval["accuracy"] == (0.8, 0.8)
    assert est.metrics["roc_auc"] == pytest.approx(roc_auc_score(y, q[:, 1]))


def test_the_interval_covers_the_realised_accuracy_when_calibration_holds() -> None:
    """Labels drawn from the probabilities themselves: the realised accuracy falls inside the 95% interval
    about 95% of the time (checked over 60 blocks: at least 50)."""
    rng = np.random.default_rng(4)
    inside = 0
    for seed in range(60):
        q1 = rng.uniform(0.05, 0.95, 500)
        q = np.c_[1 - q1, q1]
        y = (rng.random(500) < q1).astype(int)
        predicted = (q1 > 0.5).astype(int)
        est = estimate_performance(q, q, predicted, np.array([0, 1]), seed=seed)
        low, high = est.interval["accuracy"]
        inside += low <= (predicted == y).mean() <= high
    assert 50 <= inside <= 60


def test_calibration_picks_the_most_reliable_mapping_and_improves_a_badly_calibrated_model() -> None:
    train, holdout, test = data(2000, 0), data(1500, 1), data(4000, 2)
    model = HistGradientBoostingClassifier(max_iter=300, random_state=0).fit(train[["x1", "x2"]], train["y"])
    fitted = fit_calibration(model, holdout, ["x1", "x2"], "y")
    assert fitted.method in METHODS and fitted.rows == 1500
    assert fitted.ece < fitted.ece_uncalibrated
    X, y = test[["x1", "x2"]], test["y"].to_numpy()
    predicted = model.predict(X)
    before = expected_calibration_error(model.predict_proba(X), predicted, y, model.classes_)
    after = expected_calibration_error(calibrated_proba(fitted.calibrator, X), predicted, y, model.classes_)
    assert after < before


def test_a_near_separable_stream_is_estimated_within_two_points_from_a_small_holdout() -> None:
    """The demo's case: a threshold rule without noise and an under-confident logistic regression, calibrated
    on 200 rows. Platt scaling alone put the estimate 6 points under the realised accuracy."""
    rng = np.random.default_rng(3)

    def sea(n: int) -> pd.DataFrame:
        x = rng.uniform(0, 10, size=(n, 3))
        return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": (x[:, 0] + x[:, 1] <= 8).astype(int)})

    train, holdout = sea(800), sea(200)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(train[["a", "b", "c"]], train["y"])
    fitted = fit_calibration(model, holdout, ["a", "b", "c"], "y")
    for seed in range(3):
        block = sea(1000)
        est = estimate_block(model, fitted.calibrator, block, ["a", "b", "c"], seed=seed)
        realised = (model.predict(block[["a", "b", "c"]]) == block["y"]).mean()
        assert abs(est.metrics["accuracy"] - realised) <= 0.02, (fitted.method, est.metrics["accuracy"], realised)


def test_calibration_says_why_it_cannot_be_fitted() -> None:
    train = data(500, 0)
    model = LogisticRegression().fit(train[["x1", "x2"]], train["y"])
    assert "at least" in fit_calibration(model, train.head(5), ["x1", "x2"], "y").note
    assert "single class" in fit_calibration(model, train[train.y == 1], ["x1", "x2"], "y").note
    assert fit_calibration(object(), train, ["x1", "x2"], "y").calibrator is None


@pytest.mark.parametrize("classes", [2, 3])
def test_a_covariate_shift_is_estimated_within_a_few_points(classes: int) -> None:
    train, holdout = data(3000, 0, classes=classes), data(1000, 1, classes=classes)
    model = LogisticRegression(max_iter=500).fit(train[["x1", "x2"]], train["y"])
    fitted = fit_calibration(model, holdout, ["x1", "x2"], "y")
    for seed, shift in ((5, 0.0), (6, 0.8)):
        block = data(2000, seed, shift=shift, classes=classes)
        est = estimate_block(model, fitted.calibrator, block, ["x1", "x2"], seed=seed)
        realised = (model.predict(block[["x1", "x2"]]) == block["y"]).mean()
        assert abs(est.metrics["accuracy"] - realised) < 0.04
        assert set(est.metrics) >= {"accuracy", "f1_macro", "balanced_accuracy", "roc_auc"}
        assert ("f1_minority" in est.metrics) == (classes == 2)


def test_an_estimated_drop_signals_only_when_its_interval_clears_the_tolerance() -> None:
    from pipelines.estimation.cbpe import Estimate

    est = Estimate(metrics={"accuracy": 0.80}, interval={"accuracy": (0.77, 0.83)}, rows=1000, draws=300)
    assert estimated_drift(est, "accuracy", 0.90, 0.05).drifted          # 0.90 - 0.83 > 0.05
    assert not estimated_drift(est, "accuracy", 0.87, 0.05).drifted      # 0.87 - 0.83 <= 0.05
    assert estimated_drift(est, "roc_auc", 0.9, 0.05) is None            # not estimated: no signal
    assert estimated_drift(est, "accuracy", None, 0.05) is None
