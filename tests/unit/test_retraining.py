"""Retraining strategies on small seeded data: what each trains on, that it learns, and that none sees the holdout."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.preprocessing import FunctionTransformer

import pipelines.retraining.models as models_module
from pipelines.config.retrain import STRATEGY_NAMES, RetrainSettings
from pipelines.core.metrics import primary_metric
from pipelines.retraining.evaluation import evaluate
from pipelines.retraining.material import LabelledBlock, StrategySkipped, TrainingMaterial
from pipelines.retraining.models import ModelSpec, final_estimator
from pipelines.retraining.strategies import build_round, fallback_to_run, launch_order, run_strategy

FEATURES = ("x1", "x2", "c")
KINDS = ("binary", "multiclass", "regression")


def make_blocks(
    kind: str, *, n_blocks: int = 5, rows: int = 120, seed: int = 0, flip_from: int | None = None
):
    """Blocks b0..b{n-1}: x1, x2 (5% missing), a categorical c; after `flip_from` the concept reverses on x1."""
    rng = np.random.default_rng(seed)
    blocks = []
    for i in range(n_blocks):
        x1 = rng.normal(size=rows)
        x2 = rng.normal(size=rows)
        c = rng.choice(["red", "green", "blue"], size=rows)
        x2[rng.random(rows) < 0.05] = np.nan
        sign = -1.0 if flip_from is not None and i >= flip_from else 1.0
        score = sign * 1.5 * x1 + 0.5 * np.nan_to_num(x2) + (c == "red") - 0.3
        if kind == "binary":
            y = np.where(score + rng.normal(scale=0.3, size=rows) > 0, "churn", "stay")
        elif kind == "multiclass":
            y = np.select([score < -0.7, score < 0.7], ["low", "mid"], "high")
        else:
            y = 3.0 * score + rng.normal(scale=0.2, size=rows)
        blocks.append(LabelledBlock(f"b{i}", pd.DataFrame({"x1": x1, "x2": x2, "c": c, "y": y})))
    return blocks


def task_of(kind: str) -> str:
    return "regression" if kind == "regression" else "classification"


def sgd_spec(kind: str) -> ModelSpec:
    if kind == "regression":
        return ModelSpec("sklearn.linear_model.SGDRegressor", {"max_iter": 200, "tol": None})
    return ModelSpec("sklearn.linear_model.SGDClassifier", {"loss": "log_loss", "max_iter": 200, "tol": None})


def round_for(kind: str, settings: RetrainSettings, blocks=None, new=("b3", "b4"), change_point=("b2", 30)):
    blocks = blocks or make_blocks(kind)
    return build_round(
        blocks, list(new), settings, features=FEATURES, categorical=("c",), target="y", task=task_of(kind),
        change_point=change_point,
    )


def champion_on(material: TrainingMaterial, spec: ModelSpec, block_ids: tuple[str, ...]):
    """A champion trained on the given (old) blocks only."""
    old = TrainingMaterial(
        blocks=tuple(b for b in material.blocks if b.block_id in block_ids),
        new_block_ids=(),
        features=material.features,
        categorical=material.categorical,
        target=material.target,
        task=material.task,
    )
    return run_strategy("full", old, spec, RetrainSettings(), seed=1).model


SETTINGS = RetrainSettings(window_blocks=2, replay_fraction=0.25, holdout_fraction=0.25)
# rows after holdout: b0..b3 120 each, b4 keeps 120 - ceil(0.25 * 240) + 120 = 60 -> b4[0:60]
EXPECTED = {
    "full": (("b0", "b1", "b2", "b3", "b4"), 540),
    "incremental": (("b3", "b4"), 180),
    "windowed": (("b3", "b4"), 180),
    "since_change": (("b2", "b3", "b4"), 270),  # b2[30:] + b3 + b4[0:60]: the rows after the change at b2 row 30
    "stacking": (("b0", "b1", "b2", "b3", "b4"), 540),
    "replay_mix": (("b0", "b1", "b2", "b3", "b4"), 240),  # 180 new + 60 replayed = 25% of the mix
    "recalibration": (("b3", "b4"), 180),
    "ipip": (("b3", "b4"), 134),  # the window less its stratified validation rows (46 of the new blocks' 180)
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_each_strategy_trains_on_its_blocks_and_learns(kind: str, strategy: str) -> None:
    material, holdout, _ = round_for(kind, SETTINGS)
    spec = sgd_spec(kind)
    champion = champion_on(material, spec, ("b0", "b1", "b2"))
    if strategy == "recalibration" and kind == "regression":
        with pytest.raises(StrategySkipped, match="classification only"):
            run_strategy(strategy, material, spec, SETTINGS, seed=3, champion=champion)
        return
    if strategy == "ipip" and kind != "binary":
        with pytest.raises(StrategySkipped, match="binary classification only"):
            run_strategy(strategy, material, spec, SETTINGS, seed=3, champion=champion)
        return
    candidate = run_strategy(strategy, material, spec, SETTINGS, seed=3, champion=champion)
    assert candidate.strategy == strategy and candidate.seed == 3 and candidate.seconds > 0
    assert (candidate.training_blocks, candidate.rows) == EXPECTED[strategy]
    metrics = evaluate(candidate.model, holdout, FEATURES, "y", task_of(kind))
    if kind == "regression":
        assert metrics["r2"] > 0.8, metrics
    else:
        assert metrics["accuracy"] > (0.8 if kind == "binary" else 0.65), metrics
        assert list(candidate.model.classes_) == sorted(holdout["y"].unique())
    again = run_strategy(strategy, material, spec, SETTINGS, seed=3, champion=champion)
    assert np.array_equal(again.model.predict(holdout), candidate.model.predict(holdout))  # seeded


def test_champion_based_strategies_skip_without_a_champion() -> None:
    material, _, _ = round_for("binary", SETTINGS)
    for strategy in ("incremental", "stacking", "recalibration"):
        with pytest.raises(StrategySkipped, match="needs a champion"):
            run_strategy(strategy, material, sgd_spec("binary"), SETTINGS, seed=0)


def test_incremental_is_skipped_with_a_reason_for_an_estimator_without_partial_fit() -> None:
    material, _, _ = round_for("binary", SETTINGS)
    spec = ModelSpec("sklearn.linear_model.LogisticRegression", {})
    champion = champion_on(material, spec, ("b0", "b1"))
    with pytest.raises(StrategySkipped) as info:
        run_strategy("incremental", material, spec, SETTINGS, seed=0, champion=champion)
    assert info.value.reason == "LogisticRegression has no partial_fit; incremental learning does not apply"


def test_incremental_updates_a_copy_and_leaves_the_champion_untouched() -> None:
    material, _, _ = round_for("regression", SETTINGS)
    spec = sgd_spec("regression")
    champion = champion_on(material, spec, ("b0", "b1"))
    before = final_estimator(champion).coef_.copy()
    candidate = run_strategy("incremental", material, spec, SETTINGS, seed=0, champion=champion)
    assert np.array_equal(final_estimator(champion).coef_, before)
    assert not np.array_equal(final_estimator(candidate.model).coef_, before)


def test_incremental_cannot_add_classes_and_says_so() -> None:
    blocks = make_blocks("multiclass")
    material, _, _ = round_for("multiclass", SETTINGS, blocks=blocks)
    spec = sgd_spec("multiclass")
    old = [LabelledBlock(b.block_id, b.frame[b.frame["y"] != "high"]) for b in material.blocks[:2]]
    champion = champion_on(
        TrainingMaterial(
            blocks=tuple(old),
            new_block_ids=(),
            features=FEATURES,
            categorical=("c",),
            target="y",
            task="classification",
        ),
        spec,
        ("b0", "b1"),
    )
    with pytest.raises(StrategySkipped, match=r"new labels \['high'\] are unknown to the champion"):
        run_strategy("incremental", material, spec, SETTINGS, seed=0, champion=champion)


def test_after_a_concept_flip_the_window_beats_the_stale_champion() -> None:
    blocks = make_blocks("binary", n_blocks=6, flip_from=4)
    settings = RetrainSettings(window_blocks=2, holdout_fraction=0.25)
    material, holdout, _ = round_for("binary", settings, blocks=blocks, new=("b4", "b5"))
    spec = ModelSpec("sklearn.linear_model.LogisticRegression", {})
    champion = champion_on(material, spec, ("b0", "b1", "b2", "b3"))
    stale = evaluate(champion, holdout, FEATURES, "y", "classification")["accuracy"]
    window = run_strategy("windowed", material, spec, settings, seed=0).model
    fresh = evaluate(window, holdout, FEATURES, "y", "classification")["accuracy"]
    assert stale < 0.5 < 0.85 < fresh


def test_recalibration_keeps_the_champion_ranking_and_does_not_refit_it() -> None:
    material, holdout, _ = round_for("binary", SETTINGS)
    spec = ModelSpec("sklearn.linear_model.LogisticRegression", {"C": 0.001})  # under-confident champion
    champion = champion_on(material, spec, ("b0", "b1", "b2"))
    coef = final_estimator(champion).coef_.copy()
    candidate = run_strategy("recalibration", material, spec, SETTINGS, seed=0, champion=champion)
    assert np.array_equal(final_estimator(champion).coef_, coef)
    before = evaluate(champion, holdout, FEATURES, "y", "classification")
    after = evaluate(candidate.model, holdout, FEATURES, "y", "classification")
    assert after["roc_auc"] == pytest.approx(before["roc_auc"])  # sigmoid calibration is monotonic
    assert after["log_loss"] < before["log_loss"] - 0.1


def test_stacking_freezes_the_champion_and_holds_a_history_member() -> None:
    material, _, _ = round_for("binary", SETTINGS)
    spec = sgd_spec("binary")
    champion = champion_on(material, spec, ("b0", "b1"))
    snapshot = copy.deepcopy(final_estimator(champion).coef_)
    candidate = run_strategy("stacking", material, spec, SETTINGS, seed=0, champion=champion)
    assert candidate.params["members"] == ["champion", "history", "window"]
    assert np.array_equal(final_estimator(champion).coef_, snapshot)
    assert candidate.model.named_estimators_["champion"].estimator is champion
    assert candidate.params["champion_unstacked"] is False


def test_stacking_on_a_stacked_champion_does_not_nest_stacks() -> None:
    material, _, _ = round_for("binary", SETTINGS)
    spec = sgd_spec("binary")
    first = run_strategy("stacking", material, spec, SETTINGS, seed=0,
                         champion=champion_on(material, spec, ("b0", "b1"))).model
    second = run_strategy("stacking", material, spec, SETTINGS, seed=1, champion=first)
    inner = second.model.named_estimators_["champion"].estimator
    assert inner is first.named_estimators_["window"] and not hasattr(inner, "named_estimators_")
    assert second.params["champion_unstacked"] is True and "stands in" in second.notes


def test_row_budget_keeps_the_most_recent_rows() -> None:
    settings = RetrainSettings(window_blocks=2, holdout_fraction=0.25, row_budget=100)
    material, _, _ = round_for("regression", settings)
    candidate = run_strategy("full", material, sgd_spec("regression"), settings, seed=0)
    # b4 keeps 60 rows after the holdout; the 40 before them are the tail of b3
    assert (candidate.training_blocks, candidate.rows) == (("b3", "b4"), 100)
    mix = run_strategy("replay_mix", material, sgd_spec("regression"), settings, seed=0)
    assert (mix.rows, mix.params["replayed_rows"], mix.params["new_rows"]) == (
        100,
        30,
        70,
    )  # replay_fraction 0.3 of the budget


def test_replay_sample_depends_on_the_seed() -> None:
    material, holdout, _ = round_for("regression", SETTINGS)
    a = run_strategy("replay_mix", material, sgd_spec("regression"), SETTINGS, seed=1)
    b = run_strategy("replay_mix", material, sgd_spec("regression"), SETTINGS, seed=2)
    assert not np.allclose(a.model.predict(holdout), b.model.predict(holdout))


# --- leakage --------------------------------------------------------------------------------------------

SEEN: list[np.ndarray] = []


def _record(X) -> None:
    SEEN.append(np.asarray(X, dtype=float)[:, 0].copy())  # column 0 is x1 (numerics come first, x1 never NaN)


class SpySGDClassifier(SGDClassifier):
    """Records the x1 value of every row it is fit on or asked about."""

    def fit(self, X, y, **kw):
        _record(X)
        return super().fit(X, y, **kw)

    def partial_fit(self, X, y, **kw):
        _record(X)
        return super().partial_fit(X, y, **kw)

    def decision_function(self, X):
        _record(X)
        return super().decision_function(X)


class SpySGDRegressor(SGDRegressor):
    def fit(self, X, y, **kw):
        _record(X)
        return super().fit(X, y, **kw)

    def partial_fit(self, X, y, **kw):
        _record(X)
        return super().partial_fit(X, y, **kw)

    def predict(self, X):
        _record(X)
        return super().predict(X)


@pytest.mark.parametrize("holdout", [{"holdout_fraction": 0.3}, {"holdout_blocks": 1}])
@pytest.mark.parametrize("kind", KINDS)
def test_no_strategy_ever_touches_a_holdout_row(kind: str, holdout: dict, monkeypatch) -> None:
    # the spy compares raw x1 values: keep the scaler out of the way (it only rescales what a strategy chose)
    monkeypatch.setattr(models_module, "StandardScaler", FunctionTransformer)
    spy = SpySGDRegressor if kind == "regression" else SpySGDClassifier
    params = {"max_iter": 50, "tol": None} | ({} if kind == "regression" else {"loss": "log_loss"})
    spec = ModelSpec(f"{spy.__module__}.{spy.__qualname__}", params)
    settings = RetrainSettings(window_blocks=2, replay_fraction=0.5, **holdout)
    material, held, _ = round_for(kind, settings)
    held_x1 = set(held["x1"])
    all_x1 = set(pd.concat([b.frame for b in make_blocks(kind)])["x1"])
    assert len(held_x1) == len(held) and held_x1 < all_x1
    champion = champion_on(material, spec, ("b0", "b1"))

    # The spy does catch a holdout row when one is shown to it (so the check below can fail).
    SEEN.clear()
    champion.predict(held.iloc[:3])
    assert set(np.concatenate(SEEN)) & held_x1

    for strategy in STRATEGY_NAMES:
        SEEN.clear()
        try:
            run_strategy(strategy, material, spec, settings, seed=5, champion=champion)
        except StrategySkipped:
            assert (strategy, kind) in {
                ("recalibration", "regression"),
                ("ipip", "regression"),
                ("ipip", "multiclass"),
            }
            continue
        seen = set(np.concatenate(SEEN))
        assert seen, f"{strategy}: the spy saw no rows at all"
        assert not seen & held_x1, f"{strategy} saw {len(seen & held_x1)} holdout rows"


# --- settings -------------------------------------------------------------------------------------------


def test_defaults_are_valid_and_documented_values() -> None:
    s = RetrainSettings()
    assert s.strategies == ("full", "windowed", "since_change", "replay_mix", "recalibration")
    assert (s.trigger, s.reuse_champions, s.adapt_growth, s.adapt_max_rounds) == (("performance", "concept"), 5, 3.0, 2)
    assert (s.window_blocks, s.replay_fraction, s.min_improvement, s.holdout_fraction) == (3, 0.3, 0.01, 0.2)
    assert (primary_metric(s, "classification"), primary_metric(s, "regression")) == ("accuracy", "r2")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategies": ("full", "magic")}, "unknown strategy 'magic'; allowed: full, incremental"),
        ({"strategies": ()}, "allowed: a non-empty list"),
        ({"strategies": ("full", "full")}, "lists a strategy twice"),
        ({"window_blocks": 0}, "window_blocks = 0; allowed: an integer >= 1"),
        ({"window_blocks": True}, "window_blocks"),
        ({"replay_fraction": 1.0}, "0 <= replay_fraction < 1"),
        ({"row_budget": 0}, "row_budget"),
        ({"metric": "auc"}, "metric = 'auc'; allowed: accuracy"),
        ({"min_improvement": -0.1}, "min_improvement"),
        ({"thresholds": {"precision": 0.5}}, "thresholds: unknown metric 'precision'"),
        ({"thresholds": {"accuracy": float("nan")}}, "thresholds.accuracy"),
        ({"fallback": "full"}, "already runs as one of the strategies"),
        ({"fallback": "nope"}, "fallback = 'nope'"),
        ({"task_timeout_seconds": 0}, "task_timeout_seconds"),
        ({"holdout_fraction": 0.0}, "0 < holdout_fraction < 1"),
        ({"holdout_blocks": 0}, "holdout_blocks"),
        ({"retain_rejected": -1}, "retain_rejected"),
        ({"calibration_method": "platt"}, "calibration_method"),
    ],
)
def test_bad_settings_say_what_is_allowed(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match="allowed") as info:
        RetrainSettings(**kwargs)
    assert message in str(info.value)


def test_metric_must_fit_the_task() -> None:
    with pytest.raises(ValueError, match="does not apply to regression"):
        primary_metric(RetrainSettings(metric="log_loss"), "regression")


def test_fallback_runs_only_when_nothing_trained() -> None:
    s = RetrainSettings(strategies=("windowed", "stacking"), fallback="full")
    assert fallback_to_run({"windowed": "failed", "stacking": "skipped"}, s) == "full"
    assert fallback_to_run({"windowed": "trained", "stacking": "failed"}, s) is None
    assert fallback_to_run({"windowed": "failed", "full": "failed"}, s) is None  # already ran
    assert fallback_to_run({"windowed": "failed"}, RetrainSettings(strategies=("windowed",))) is None


def test_build_round_drops_unlabelled_rows_and_describes_the_holdout() -> None:
    blocks = make_blocks("regression", n_blocks=3, rows=10)
    frame = blocks[2].frame.copy()
    frame.loc[[0, 9], "y"] = np.nan
    blocks[2] = LabelledBlock("b2", frame)
    material, holdout, desc = build_round(
        blocks,
        ["b2"],
        RetrainSettings(holdout_fraction=0.5),
        features=FEATURES,
        categorical=("c",),
        target="y",
        task="regression",
    )
    # 8 labelled rows in b2, the last ceil(0.5 * 8) = 4 held out: original rows 5..8
    assert holdout["x1"].tolist() == frame["x1"].iloc[5:9].tolist()
    assert str(desc) == "4 holdout rows (last 50% of rows of new blocks): b2[4:8]"
    assert [len(b.frame) for b in material.blocks] == [10, 10, 4]
    assert material.new_block_ids == ("b2",)


def test_launch_order_puts_the_costliest_strategies_first() -> None:
    rows = [("b0", 1000), ("b1", 1000), ("b2", 1000), ("b3", 500)]
    s = RetrainSettings(strategies=STRATEGY_NAMES, window_blocks=1, replay_fraction=0.5)
    # full 3500, stacking 5*500 + 3000 = 5500, replay_mix 500/0.5 = 1000, windowed and ipip 500, 0.2*500 = 100
    assert launch_order(STRATEGY_NAMES, rows, ["b3"], s) == (
        "stacking",
        "full",
        "replay_mix",
        "windowed",
        "since_change",
        "ipip",
        "incremental",
        "recalibration",
    )
    capped = RetrainSettings(strategies=STRATEGY_NAMES, window_blocks=3, row_budget=600)
    assert launch_order(("full", "windowed", "stacking"), rows, ["b3"], capped)[0] == "stacking"
    assert launch_order(("windowed", "full"), rows, ["b3"], capped) == (
        "windowed",
        "full",
    )  # tie: config order
