"""Metrics on a holdout (finite values only), per-row errors, and the holdout rule itself."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression

from pipelines.core.metrics import higher_is_better
from pipelines.retraining.evaluation import evaluate, per_row_errors, split_holdout


def _classified(labels: list[str], n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    cuts = np.linspace(-1, 1, len(labels) - 1)
    y = np.array(labels)[np.searchsorted(cuts, x + rng.normal(scale=0.3, size=n))]
    return pd.DataFrame({"x": x, "y": y})


def test_binary_metrics_with_string_labels_match_hand_computed_values() -> None:
    frame = pd.DataFrame({"x": [0, 1, 2, 3, 4, 5, 6, 7], "y": ["no"] * 6 + ["yes"] * 2})
    # A stump at x >= 5 predicts 'yes' on rows 5, 6, 7: one false positive, two true positives.
    model = LogisticRegression(C=100).fit(
        pd.DataFrame({"x": [0, 1, 2, 3, 4, 5, 6, 7]}), ["no"] * 5 + ["yes"] * 3
    )
    m = evaluate(model, frame, ["x"], "y", "classification")
    assert model.predict(frame[["x"]]).tolist() == ["no"] * 5 + ["yes"] * 3
    assert m["accuracy"] == pytest.approx(7 / 8)
    assert m["balanced_accuracy"] == pytest.approx((5 / 6 + 1.0) / 2)
    # minority class is 'yes' (2 rows): precision 2/3, recall 1 -> f1 0.8
    assert m["f1_minority"] == pytest.approx(0.8)
    assert m["roc_auc"] == pytest.approx(1.0)
    assert set(m) == {"accuracy", "balanced_accuracy", "f1_macro", "f1_minority", "log_loss", "roc_auc"}
    assert all(math.isfinite(v) for v in m.values())


def test_multiclass_metrics_have_no_minority_f1_but_ovr_auc() -> None:
    frame = _classified(["lo", "mid", "hi"])
    model = LogisticRegression().fit(frame[["x"]], frame["y"])
    m = evaluate(model, frame, ["x"], "y", "classification")
    assert "f1_minority" not in m
    assert 0.5 < m["roc_auc"] <= 1.0 and m["log_loss"] > 0
    assert m["accuracy"] > 0.6


def test_metrics_that_cannot_be_computed_are_omitted_not_nan() -> None:
    frame = _classified(["a", "b"])
    model = LogisticRegression().fit(frame[["x"]], frame["y"])
    one_class = frame[frame["y"] == "a"]
    m = evaluate(model, one_class, ["x"], "y", "classification")
    assert set(m) == {"accuracy", "f1_macro", "log_loss"}  # no AUC, no balanced accuracy with one class
    no_proba = DummyClassifier(strategy="most_frequent").fit(frame[["x"]], frame["y"])
    del_proba = type("NoProba", (), {"predict": no_proba.predict, "classes_": no_proba.classes_})()
    assert "log_loss" not in evaluate(del_proba, frame, ["x"], "y", "classification")


def test_regression_metrics_and_single_row_without_r2() -> None:
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0.0, 2.0, 4.0, 7.0]})
    model = LinearRegression().fit(frame[["x"]], frame["y"])
    m = evaluate(model, frame, ["x"], "y", "regression")
    residuals = frame["y"] - model.predict(frame[["x"]])
    assert m["mae"] == pytest.approx(np.abs(residuals).mean())
    assert m["rmse"] == pytest.approx(np.sqrt((residuals**2).mean()))
    assert 0.9 < m["r2"] < 1.0
    assert set(evaluate(model, frame.iloc[:1], ["x"], "y", "regression")) == {"mae", "rmse"}


def test_per_row_errors_are_zero_one_or_absolute() -> None:
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0], "y": [0.0, 1.0, 5.0]})
    model = LinearRegression().fit(frame[["x"]].iloc[:2], frame["y"].iloc[:2])
    assert per_row_errors(model, frame, ["x"], "y", "regression").tolist() == pytest.approx([0.0, 0.0, 3.0])
    cls = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": ["a", "a", "b", "b"]})
    stump = LogisticRegression(C=100).fit(cls[["x"]], cls["y"])
    flipped = cls.assign(y=["a", "b", "b", "a"])
    assert per_row_errors(stump, flipped, ["x"], "y", "classification").tolist() == [0.0, 1.0, 0.0, 1.0]


def test_direction_of_metrics() -> None:
    assert [higher_is_better(m) for m in ("accuracy", "roc_auc", "r2", "log_loss", "mae", "rmse")] == [
        True,
        True,
        True,
        False,
        False,
        False,
    ]
    with pytest.raises(ValueError, match="allowed"):
        higher_is_better("auc")


def _blocks(*sizes: int) -> list[tuple[str, pd.DataFrame]]:
    out, start = [], 0
    for i, n in enumerate(sizes):
        out.append((f"b{i}", pd.DataFrame({"row": range(start, start + n)})))
        start += n
    return out


def test_fraction_holdout_is_the_tail_of_the_new_blocks_spanning_blocks_when_needed() -> None:
    train, hold, desc = split_holdout(_blocks(10, 4, 6), ["b1", "b2"], holdout_fraction=0.75)
    # new rows: 10 (rows 10..19); ceil(0.75 * 10) = 8 -> rows 12..19: b1[2:4] and all of b2
    assert hold["row"].tolist() == list(range(12, 20))
    assert [(s.block_id, s.start, s.stop) for s in desc.spans] == [("b1", 2, 4), ("b2", 0, 6)]
    assert [(bid, f["row"].tolist()) for bid, f in train] == [("b0", list(range(10))), ("b1", [10, 11])]
    assert desc.rows == 8


def test_block_holdout_takes_the_newest_blocks_whole() -> None:
    train, hold, desc = split_holdout(_blocks(3, 3, 3), ["b2"], holdout_fraction=0.2, holdout_blocks=2)
    assert hold["row"].tolist() == list(range(3, 9))
    assert [bid for bid, _ in train] == ["b0"]
    assert desc.rule == "newest 2 block(s)"


@pytest.mark.parametrize(
    ("new", "kwargs", "message"),
    [
        (["b0"], {"holdout_fraction": 0.2}, "must be the newest blocks"),
        ([], {"holdout_fraction": 0.2}, "no new blocks"),
        (["b9"], {"holdout_fraction": 0.2}, "not among the labelled blocks"),
        (["b1"], {"holdout_fraction": 0.2, "holdout_blocks": 2}, "allowed: 1 to 1"),
        (["b1"], {"holdout_fraction": 1.0}, "0 < holdout_fraction < 1"),
    ],
)
def test_bad_holdout_requests_are_refused(new: list[str], kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_holdout(_blocks(5, 5), new, **kwargs)
