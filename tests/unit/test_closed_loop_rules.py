"""The closed loop's rules, pure: which drift starts a round, where the change began, when an "adapt" round
follows, which past champions a round reuses, and how `since_change` and the holdout use the change point."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from builders import accept, artifact
from loop_builders import DROP, MOVED, arrive, check, concept, finish, model, pipeline, start

from pipelines.config.retrain import RetrainSettings
from pipelines.core.decide import CommandRejected, StrategyOutcome
from pipelines.core.events import CandidateTrained, ChangePoint, DriftDetected
from pipelines.core.rounds import plan_round, reusable
from pipelines.drift.concept import update_concept
from pipelines.retraining.evaluation import split_holdout
from pipelines.retraining.material import LabelledBlock, TrainingMaterial
from pipelines.retraining.models import ModelSpec
from pipelines.retraining.strategies import replay_mix, since_change

# --- which drift starts a round ------------------------------------------------------------------------


def test_data_drift_only_warns_by_default_and_starts_rounds_when_the_trigger_lists_it() -> None:
    run, cfg = pipeline()
    assert arrive(run, cfg, "b2", features=(MOVED,)) is None
    detected = run.log[-1]
    assert isinstance(detected, DriftDetected) and detected.signals == ("data",) and not detected.starts_round
    assert "data drift only warns" in detected.held_back and not run.state.retrain_pending
    assert run.state.counters.drifts == 1  # still recorded: a warning, not nothing

    run, cfg = pipeline(trigger=["data"])
    plan = arrive(run, cfg, "b2", features=(MOVED,))
    assert plan is not None and plan.trigger == "drift" and run.log[-1].starts_round


def test_a_cooldown_holds_drift_back_for_a_few_blocks_after_a_round_started() -> None:
    run, cfg = pipeline(cooldown_blocks=2)
    assert arrive(run, cfg, "b2", performance=DROP) is None  # 1 block after the first model's round
    assert "within the cooldown" in run.log[-1].held_back
    arrive(run, cfg, "b3")
    plan = arrive(run, cfg, "b4", concept_=concept(2))
    start(run, plan)
    finish(run, plan.round_id, model("v2", 0.95, ("b1", "b2")))
    assert arrive(run, cfg, "b5", concept_=concept(2)) is None
    assert arrive(run, cfg, "b6", concept_=concept(2)) is None
    assert arrive(run, cfg, "b7", concept_=concept(2)).trigger == "drift"  # 3 blocks after: heard again


# --- where the change began ----------------------------------------------------------------------------


def test_the_concept_detector_places_the_change_at_its_row_and_a_performance_drop_at_its_first_block() -> None:
    run, cfg = pipeline()
    plan = arrive(run, cfg, "b2", concept_=concept(6), performance=DROP)
    assert plan.change_point == ChangePoint(block_id="b2", row=6, signal="concept")
    assert plan.change_rows == 4  # rows 6..9 of b2

    run, cfg = pipeline()
    plan = arrive(run, cfg, "b2", performance=DROP)
    assert plan.change_point == ChangePoint(block_id="b2", row=0, signal="performance")


def test_a_drop_that_goes_on_keeps_its_change_point_and_starts_no_second_drift_round() -> None:
    run, cfg = pipeline(adapt_growth=2.0)
    plan = arrive(run, cfg, "b2", performance=DROP)
    start(run, plan)
    finish(run, plan.round_id, model("v2", 0.88, ("b1",)))  # ties the champion: rejected
    assert run.state.champion == "v1"
    run(accept("b3"))
    events = run(check("b3", performance=DROP))
    detected = events[-1]
    assert detected.change_point == ChangePoint(block_id="b2", row=0, signal="performance")
    assert not detected.starts_round and "already had 1 round" in detected.held_back
    # ... but the rows of the new concept doubled (10 -> 20): an adapt round is due
    plan = plan_round(run.state, cfg, "b3")
    assert plan.trigger == "adapt" and plan.change_rows == 20 and "x2.0" in plan.reasons[0]


def test_adapt_rounds_follow_doubling_rows_and_stop_at_the_limit() -> None:
    run, cfg = pipeline(adapt_growth=2.0, adapt_max_rounds=3)
    plan = arrive(run, cfg, "b2", performance=DROP)
    start(run, plan)
    finish(run, plan.round_id, model("v2", 0.95, ("b1", "b2")))
    starts = {}
    for i in range(3, 16):
        plan = arrive(run, cfg, f"b{i}")
        if plan is not None:
            starts[f"b{i}"] = (plan.trigger, plan.change_rows)
            start(run, plan)
            finish(run, plan.round_id, model(f"m{i}", 0.99 - 0.001 * i, ("b1",)), champion=0.5)  # promoted
    assert starts == {"b3": ("adapt", 20), "b5": ("adapt", 40), "b9": ("adapt", 80)}  # adapt_max_rounds = 3


def test_an_adapt_round_that_promotes_nothing_settles_the_change() -> None:
    run, cfg = pipeline(adapt_growth=2.0)
    plan = arrive(run, cfg, "b2", performance=DROP)
    start(run, plan)
    finish(run, plan.round_id, model("v2", 0.95, ("b1", "b2")))
    plan = arrive(run, cfg, "b3")
    assert plan.trigger == "adapt"
    start(run, plan)
    finish(run, plan.round_id, model("v3", 0.95, ("b1",)), champion=0.95)  # no better: rejected
    assert run.state.adaptation.settled
    assert all(arrive(run, cfg, f"b{i}") is None for i in range(4, 12))
    # a new change (the detector fired again) starts over
    assert arrive(run, cfg, "b12", concept_=concept(3)).trigger == "drift"


# --- reuse of past champions ---------------------------------------------------------------------------


def test_a_round_reuses_former_champions_with_their_own_score_and_lineage() -> None:
    run, cfg = pipeline()
    plan = arrive(run, cfg, "b2", performance=DROP)
    start(run, plan)
    finish(run, plan.round_id, model("v2", 0.95, ("b2",)))
    assert run.state.champion == "v2"
    plan = arrive(run, cfg, "b3", concept_=concept(0))
    assert reusable(run.state, 5, ("b3",)) == ("v1",)
    assert reusable(run.state, 5, ("b1",)) == ()  # v1 learned from a holdout block: its score would lie
    assert reusable(run.state, 0, ("b3",)) == ()
    start(run, plan, reuse=("v1",))
    reused = StrategyOutcome(strategy="reuse", artifact=run.state.models["v1"].artifact,
                             metrics={"accuracy": 0.97}, training_blocks=("b1",),
                             params={"reused_version": "v1"})
    events = finish(run, plan.round_id, model("fresh", 0.9, ("b3",)), reused, champion=0.6)
    trained = [e for e in events if isinstance(e, CandidateTrained)]
    assert [(e.strategy, e.parent_version) for e in trained] == [("full", "v2"), ("reuse", "v1")]
    assert run.state.champion == trained[1].model_version
    assert run.state.models[run.state.champion].holdout_metrics == {"accuracy": 0.97}


def test_a_reuse_the_round_did_not_plan_is_refused() -> None:
    run, cfg = pipeline()
    plan = arrive(run, cfg, "b2", performance=DROP)
    start(run, plan)
    sneaked = StrategyOutcome(strategy="reuse", artifact=artifact("model:v1", "model"), metrics={"accuracy": 1.0},
                              params={"reused_version": "v1"})
    with pytest.raises(CommandRejected, match="did not plan to reuse"):
        finish(run, plan.round_id, sneaked)


# --- since_change, the holdout and replay_mix ----------------------------------------------------------


def frames(n: int, rows: int = 100) -> list[LabelledBlock]:
    rng = np.random.default_rng(0)
    return [LabelledBlock(f"b{i}", pd.DataFrame({"x": rng.normal(size=rows) + 1000 * i + np.arange(rows) / 1000,
                                                 "y": rng.integers(0, 2, rows)})) for i in range(n)]


def material(blocks, **kw) -> TrainingMaterial:
    return TrainingMaterial(blocks=tuple(blocks), new_block_ids=kw.pop("new", ()), features=("x",),
                            categorical=(), target="y", task="classification", **kw)


SPEC = ModelSpec("sklearn.linear_model.LogisticRegression", {})


def test_since_change_learns_from_the_rows_after_the_change_and_fills_in_to_its_minimum() -> None:
    blocks = frames(4)
    got = since_change(material(blocks, change_point=("b2", 30)), SPEC, RetrainSettings(since_change_min_rows=50), 0)
    assert (got.training_blocks, got.rows, got.params["rows_after_change"]) == (("b2", "b3"), 170, 170)
    filled = since_change(material(blocks, change_point=("b3", 90)), SPEC,
                          RetrainSettings(since_change_min_rows=50), 0)
    assert (filled.training_blocks, filled.rows) == (("b3",), 50) and "older rows fill in" in filled.notes


def test_the_holdout_is_cut_from_the_rows_after_a_change_point_in_the_new_blocks() -> None:
    pairs = [(b.block_id, b.frame) for b in frames(4)]
    _, plain, _ = split_holdout(pairs, ["b1", "b2", "b3"], holdout_fraction=0.2)
    assert len(plain) == 60  # 20% of the 300 new rows
    train, held, description = split_holdout(pairs, ["b1", "b2", "b3"], holdout_fraction=0.2,
                                             change_point=("b3", 50))
    assert len(held) == 10 and "from the change at b3 row 50" in description.rule  # 20% of the 50 rows after it
    held_x = set(held["x"])
    assert not held_x & set(pd.concat([f for _, f in train])["x"])  # no holdout row is trained on
    assert held_x <= set(pairs[3][1]["x"].iloc[50:])


def test_replay_mix_counts_the_blocks_since_the_last_round_as_new() -> None:
    blocks = frames(5)
    settings = RetrainSettings(replay_fraction=0.5)
    got = replay_mix(material(blocks, new=("b1", "b2", "b3", "b4"), recent_block_ids=("b4",)), SPEC, settings, 0)
    assert got.params["new_rows"] == 100 and got.params["replayed_rows"] == 100


def test_the_detector_reports_where_the_change_began_inside_the_block() -> None:
    rng = np.random.default_rng(3)
    errors = np.r_[rng.random(600) < 0.05, rng.random(600) < 0.45].astype(float)
    first = update_concept("adwin", None, errors[:400])
    later = update_concept("adwin", first.state, errors[400:])
    assert later.drift and abs(400 + later.change_rows[0] - 600) <= 30
    assert all(c <= d for c, d in zip(later.change_rows, later.drift_rows, strict=True))
