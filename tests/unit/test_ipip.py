"""The ipip strategy on small seeded rare-event streams: sizes, distinct ensembles, no holdout influence,
labels of any kind, ensembles carried across rounds, skips, and the scikit-learn contract."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from benchmarks.ipip_bench import CATEGORICAL, FEATURES, SPEC, TARGET, rare_event_stream
from calmops_actors.artifacts import decode_model, encode_model
from pipelines.config.pipeline import config_from_text
from pipelines.config.retrain import RetrainSettings
from pipelines.core.metrics import primary_metric
from pipelines.retraining.evaluation import evaluate
from pipelines.retraining.ipip import IPIPClassifier, ipip_sizes, validation_split
from pipelines.retraining.material import LabelledBlock, StrategySkipped
from pipelines.retraining.models import ModelSpec, make_model
from pipelines.retraining.strategies import build_round, run_strategy

SETTINGS = RetrainSettings(strategies=("ipip", "full"), window_blocks=2)


def stream(drift_at: int = 99, seed: int = 0, rows: int = 600) -> list[LabelledBlock]:
    return rare_event_stream(seed, blocks=5, rows=rows, rate=0.08, drift_at=drift_at)


def round_on(blocks: list[LabelledBlock], upto: int, settings: RetrainSettings = SETTINGS):
    """The round after block `upto` (1-based) arrived: that block is new, its tail the holdout."""
    return build_round(
        blocks[:upto],
        [blocks[upto - 1].block_id],
        settings,
        features=FEATURES,
        categorical=CATEGORICAL,
        target=TARGET,
        task="classification",
    )


def with_labels(
    blocks: list[LabelledBlock], block_id: str, rows: np.ndarray, flip: dict
) -> list[LabelledBlock]:
    """A copy of `blocks` with the labels of `rows` (positions) of one block mapped through `flip`."""
    out = []
    for b in blocks:
        frame = b.frame.copy()
        if b.block_id == block_id:
            col = frame.columns.get_loc(TARGET)
            frame.iloc[rows, col] = frame[TARGET].iloc[rows].map(flip).to_numpy()
        out.append(LabelledBlock(b.block_id, frame))
    return out


SWAP = {"fraud": "ok", "ok": "fraud"}
PROBE = stream(seed=9)[0].frame


# --- sizes ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_min", [3, 10, 57, 400])
@pytest.mark.parametrize("alpha", [0.01, 0.05])
def test_p_and_b_are_the_smallest_integers_meeting_the_formulas(n_min: int, alpha: float) -> None:
    n_p, p, b = ipip_sizes(n_min, alpha=alpha)
    assert n_p == min(round(0.75 * n_min), n_min - 1)
    if n_p >= 2:  # p: (1 - 1/np)^(np p) <= alpha, and p - 1 would not do
        assert (1 - 1 / n_p) ** (n_p * p) <= alpha < (1 - 1 / n_p) ** (n_p * (p - 1))
    assert (1 - 1 / n_min) ** (n_p * b) <= alpha < (1 - 1 / n_min) ** (n_p * (b - 1))


def test_sizes_refuse_too_few_minority_rows() -> None:
    with pytest.raises(ValueError, match="at least 2 minority rows"):
        ipip_sizes(1)
    assert ipip_sizes(2) == (1, 1, 7)  # np = 1 leaves one minority row out; b = ceil(log .01 / log .5)


# --- distinct ensembles ---------------------------------------------------------------------------------

FITS: list[tuple[frozenset, int]] = []


class SpyLogisticRegression(LogisticRegression):
    """Records (the set of x0 values it is fit on, its random_state) for every fit."""

    def fit(self, X, y, **kw):
        FITS.append((frozenset(np.asarray(X, dtype=float)[:, 0]), self.random_state))
        return super().fit(X, y, **kw)


SPY = ModelSpec(f"{SpyLogisticRegression.__module__}.SpyLogisticRegression", {"max_iter": 1000})


def fit_spied(X: pd.DataFrame, y, **params) -> tuple[IPIPClassifier, list[tuple[frozenset, int]]]:
    FITS.clear()
    model = IPIPClassifier(make_model(SPY, FEATURES, CATEGORICAL), **params).fit(X, y)
    return model, list(FITS)


def test_every_ensemble_has_its_own_seed_partition_and_resamples() -> None:
    frame = pd.concat([b.frame for b in stream()[:2]], ignore_index=True)
    X, y = frame[list(FEATURES)], frame[TARGET]
    n_min = int((y == "fraud").sum())
    model, fits = fit_spied(X, y, random_state=4)
    assert len(model.ensembles_) == model.p_ == 5
    assert len({info.seed for info in model.ensemble_info_}) == 5
    # Every base model was fit on its own resample, with its own random_state.
    rows, states = [r for r, _ in fits], [s for _, s in fits]
    assert len(fits) > 5 and len(set(rows)) == len(rows) and len(set(states)) == len(states)
    # A resample holds np minority rows and round(np * 0.55 / 0.45) majority rows (with repeats).
    assert model.np_ == round(0.75 * n_min) and model.majority_rows_ == round(model.np_ * 0.55 / 0.45)

    # With b = 1 each ensemble is one fit on a bootstrap of its own partition: the partitions differ.
    model, fits = fit_spied(X, y, b=1, random_state=4)
    assert len(fits) == 5
    overlap = max(len(a & b) / len(a | b) for i, (a, _) in enumerate(fits) for b, _ in fits[i + 1 :])
    assert overlap < 0.5, overlap


def test_the_stopping_rule_counts_non_improving_candidates() -> None:
    frame = pd.concat([b.frame for b in stream()[:2]], ignore_index=True)
    X, y = frame[list(FEATURES)], frame[TARGET]
    # max_attempts = 1: each ensemble stops at its first non-improving candidate (or at b members).
    model, fits = fit_spied(X, y, b=6, max_attempts=1, random_state=1)
    sizes = [len(e) for e in model.ensembles_]
    assert len(fits) == sum(sizes) + sum(1 for s in sizes if s < 6)
    # the default rule: ceil((b - size) / 3) failures in a row end the growth
    model, fits = fit_spied(X, y, random_state=1)
    sizes = [len(e) for e in model.ensembles_]
    assert all(1 <= s <= model.b_ for s in sizes)
    assert len(fits) >= sum(sizes) + sum(math.ceil((model.b_ - s) / 3) for s in sizes if s < model.b_)
    # b and p from the config win over the formulas
    model, fits = fit_spied(X, y, p=3, b=1, random_state=1)
    assert [len(e) for e in model.ensembles_] == [1, 1, 1] and len(fits) == 3


def test_same_seed_same_model_other_seed_other_model() -> None:
    material, holdout, _ = round_on(stream(), 3)
    a = run_strategy("ipip", material, SPEC, SETTINGS, seed=3).model
    b = run_strategy("ipip", material, SPEC, SETTINGS, seed=3).model
    c = run_strategy("ipip", material, SPEC, SETTINGS, seed=4).model
    assert np.array_equal(a.predict_proba(holdout), b.predict_proba(holdout))
    assert not np.allclose(a.predict_proba(holdout), c.predict_proba(holdout))
    assert not {i.seed for i in a.ensemble_info_} & {i.seed for i in c.ensemble_info_}


# --- the holdout never influences the model; the validation split does -----------------------------------


def test_holdout_labels_never_change_the_model_but_validation_labels_do() -> None:
    blocks = stream()
    first, _, _ = round_on(blocks, 3)
    champion = run_strategy("ipip", first, SPEC, SETTINGS, seed=3).model
    material, holdout, description = round_on(blocks, 5)
    base = run_strategy("ipip", material, SPEC, SETTINGS, seed=5, champion=champion)
    (span,) = description.spans
    assert span.block_id == "b05" and len(holdout) == span.stop - span.start == 120

    flipped = with_labels(blocks, "b05", np.arange(span.start, span.stop), SWAP)
    material2, holdout2, _ = round_on(flipped, 5)
    assert (holdout2[TARGET] != holdout[TARGET]).all()
    again = run_strategy("ipip", material2, SPEC, SETTINGS, seed=5, champion=champion)
    assert np.array_equal(again.model.predict_proba(PROBE), base.model.predict_proba(PROBE))
    assert again.params == base.params and again.notes == base.notes

    # Control: the validation rows (carved from b05's training part) do rank the pooled ensembles, so flipping
    # their labels reverses the ranking and another set of ensembles is kept.
    new = [b for b in material.blocks if b.block_id == "b05"]
    val, _ = validation_split(material.frame(new), TARGET, SETTINGS.ipip_validation_fraction, seed=5)
    assert val.max() < span.start
    control = run_strategy(
        "ipip", round_on(with_labels(blocks, "b05", val, SWAP), 5)[0], SPEC, SETTINGS, 5, champion
    )
    kept = {i.seed for i in base.model.ensemble_info_}
    assert {i.seed for i in control.model.ensemble_info_} != kept


def test_new_ensembles_never_train_on_validation_or_holdout_rows() -> None:
    blocks = stream()
    material, holdout, _ = round_on(blocks, 4)
    new = [b for b in material.blocks if b.block_id == "b04"]
    val, _ = validation_split(material.frame(new), TARGET, SETTINGS.ipip_validation_fraction, seed=2)
    val_x0 = set(material.frame(new)["x0"].iloc[val])
    FITS.clear()
    candidate = run_strategy("ipip", material, SPY, SETTINGS, seed=2)
    seen = frozenset().union(*(rows for rows, _ in FITS))
    assert FITS and not seen & val_x0 and not seen & set(holdout["x0"])
    assert candidate.params["validation_rows"] == len(val) and candidate.training_blocks == ("b03", "b04")
    assert candidate.rows == len(material.frame(material.blocks[-2:])) - len(val)


# --- labels ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("minority", "majority"), [("fraud", "ok"), (7, 3), ("zz", "aa")])
def test_any_two_labels_work(minority, majority) -> None:
    blocks = [
        LabelledBlock(
            b.block_id, b.frame.assign(**{TARGET: b.frame[TARGET].map({"fraud": minority, "ok": majority})})
        )
        for b in stream()
    ]
    material, holdout, _ = round_on(blocks, 3)
    candidate = run_strategy("ipip", material, SPEC, SETTINGS, seed=1)
    model = candidate.model
    assert list(model.classes_) == sorted([minority, majority])
    assert model.minority_ == minority and candidate.params["minority_label"] == str(minority)
    assert set(model.predict(holdout)) <= {minority, majority}
    metrics = evaluate(model, holdout, FEATURES, TARGET, "classification")
    assert metrics["balanced_accuracy"] > 0.85 and metrics["f1_minority"] > 0.5, metrics


# --- across rounds --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("drift_at", "share"), [(99, 0.8), (4, 1.0)])
def test_ensembles_carry_over_from_an_ipip_champion(drift_at: int, share: float) -> None:
    blocks = stream(drift_at=drift_at)
    first = run_strategy("ipip", round_on(blocks, 3)[0], SPEC, SETTINGS, seed=3)
    assert first.params["replacement_share"] == 1.0 and first.params["ensembles_carried"] == 0
    champion = first.model
    second = run_strategy("ipip", round_on(blocks, 5)[0], SPEC, SETTINGS, seed=5, champion=champion)
    p = second.params
    assert (p["ensembles_pooled"], p["ensembles_carried"], p["p"]) == (10, 5, 5)
    kept_old = [e for e in second.model.ensembles_ if any(e is old for old in champion.ensembles_)]
    assert p["replacement_share"] == share == 1 - len(kept_old) / 5
    assert sum(i.round_seed == 5 for i in second.model.ensemble_info_) == p["ensembles_new_kept"]
    assert f"replacement share {share:.2f}" in second.notes
    assert len(champion.ensembles_) == 5  # the champion itself is left as it was


def test_a_champion_that_is_not_ipip_or_has_other_labels_is_not_pooled() -> None:
    blocks = stream()
    material, _, _ = round_on(blocks, 5)
    full = run_strategy("full", material, SPEC, SETTINGS, seed=1).model
    assert (
        run_strategy("ipip", material, SPEC, SETTINGS, seed=5, champion=full).params["ensembles_carried"] == 0
    )
    relabelled = [
        LabelledBlock(
            b.block_id, b.frame.assign(**{TARGET: b.frame[TARGET].map({"fraud": "yes", "ok": "no"})})
        )
        for b in blocks
    ]
    other = run_strategy("ipip", round_on(relabelled, 3)[0], SPEC, SETTINGS, seed=3).model
    candidate = run_strategy("ipip", material, SPEC, SETTINGS, seed=5, champion=other)
    assert candidate.params["ensembles_carried"] == 0 and "not pooled" in candidate.notes


# --- skips ----------------------------------------------------------------------------------------------


def test_regression_multiclass_and_too_few_minority_rows_are_skipped_with_a_reason() -> None:
    blocks = stream()
    numeric = [LabelledBlock(b.block_id, b.frame.assign(**{TARGET: b.frame["x0"] * 2.0})) for b in blocks]
    material = build_round(
        numeric[:3],
        ["b03"],
        SETTINGS,
        features=FEATURES,
        categorical=CATEGORICAL,
        target=TARGET,
        task="regression",
    )[0]
    with pytest.raises(StrategySkipped, match="binary classification only; this pipeline is regression"):
        run_strategy("ipip", material, SPEC, SETTINGS, seed=0)
    three = [
        LabelledBlock(
            b.block_id, b.frame.assign(**{TARGET: np.where(b.frame["x1"] > 1, "review", b.frame[TARGET])})
        )
        for b in blocks
    ]
    with pytest.raises(StrategySkipped, match="hold 3 classes"):
        run_strategy("ipip", round_on(three, 3)[0], SPEC, SETTINGS, seed=0)
    last = blocks[2].frame
    keep_one = last.index[last[TARGET] == "fraud"][1:]  # one fraud row left in the new block
    sparse = [*blocks[:2], LabelledBlock("b03", last.drop(index=keep_one))]
    with pytest.raises(StrategySkipped, match="at least 2 rows of each class in the new blocks"):
        run_strategy("ipip", round_on(sparse, 3)[0], SPEC, SETTINGS, seed=0)


# --- the scikit-learn contract, serialisation, other strategies on an IPIP champion ---------------------


def test_the_model_is_a_scikit_learn_classifier_that_round_trips_and_can_be_recalibrated() -> None:
    material, holdout, _ = round_on(stream(), 3)
    model = run_strategy("ipip", material, SPEC, SETTINGS, seed=1).model
    assert model.__sklearn_tags__().estimator_type == "classifier"
    unfitted = clone(model)
    assert unfitted.get_params()["random_state"] == 1 and not hasattr(unfitted, "ensembles_")
    proba = model.predict_proba(holdout)
    assert proba.shape == (len(holdout), 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert np.array_equal(model.predict(holdout), model.classes_[proba.argmax(axis=1)])

    blob = encode_model(model)  # our own class is outside the skops trust policy: pickle, hash-checked
    assert blob.kind == "model-pickle"
    assert np.array_equal(decode_model(blob).predict_proba(holdout), proba)

    for strategy in ("recalibration", "stacking"):
        other = run_strategy(strategy, material, SPEC, SETTINGS, seed=1, champion=model)
        assert evaluate(other.model, holdout, FEATURES, TARGET, "classification")["accuracy"] > 0.8


# --- settings -------------------------------------------------------------------------------------------


def test_ipip_settings_are_validated_and_read_from_toml() -> None:
    for kwargs, message in [
        ({"ipip_p": 0}, "ipip_p = 0; allowed: an integer >= 1, or leave it out"),
        ({"ipip_b": 2.5}, "ipip_b = 2.5"),
        ({"ipip_max_attempts": True}, "ipip_max_attempts = True"),
        ({"ipip_alpha": 1.0}, "ipip_alpha = 1.0; allowed: 0 < ipip_alpha < 1"),
        ({"ipip_majority_share": 0.0}, "ipip_majority_share"),
        ({"ipip_minority_fraction": 1.5}, "ipip_minority_fraction"),
        ({"ipip_validation_fraction": float("nan")}, "ipip_validation_fraction"),
    ]:
        with pytest.raises(ValueError) as info:
            RetrainSettings(**kwargs)
        assert message in str(info.value)
    cfg = config_from_text(
        'name = "fraud"\ntarget = "label"\n[retrain]\nstrategies = ["ipip", "full"]\nmetric = "f1_minority"\n'
        "ipip_p = 4\nipip_majority_share = 0.6\n",
        "fraud.toml",
    )
    assert cfg.retrain.strategies == ("ipip", "full") and (cfg.retrain.ipip_p, cfg.retrain.ipip_b) == (
        4,
        None,
    )
    assert primary_metric(cfg.retrain, "classification") == "f1_minority"
    assert (
        primary_metric(RetrainSettings(metric="balanced_accuracy"), "classification") == "balanced_accuracy"
    )
    assert Counter(RetrainSettings().strategies)["ipip"] == 0  # opt-in
