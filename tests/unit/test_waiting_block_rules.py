"""Blocks that arrive before the first model, or faster than it trains: which wait, what the rounds learn from,
and what `decide` refuses, so that no block is ever checked against a model or a reference trained on it."""

from __future__ import annotations

import pytest
from builders import Driver, accept, artifact, config, register

from pipelines.core.decide import (
    CommandRejected,
    RecordDriftCheck,
    RecordPerformance,
    RecordRoundOutcome,
    RequestRetrain,
    StrategyOutcome,
)
from pipelines.core.rounds import plan_round
from pipelines.drift.results import DriftAssessment, PerformanceDrift


def quiet(block_id: str, reference: tuple[str, ...]) -> RecordDriftCheck:
    assessment = DriftAssessment(drifted=False, reasons=(), features=(), multivariate=None, concept=None,
                                 performance=None)
    return RecordDriftCheck(block_id=block_id, assessment=assessment, reference_blocks=reference,
                            occurred_at="2026-01-01T00:00:00+00:00")


def first_model(run: Driver, cfg, block_id: str) -> None:
    """Plan, request and finish the initial round the way the actor does."""
    plan = plan_round(run.state, cfg, block_id)
    assert plan is not None and plan.trigger == "initial"
    run(RequestRetrain(round_id=plan.round_id, block_id=plan.block_id, strategies=plan.strategies,
                       training_blocks=plan.labelled_blocks, holdout_blocks=plan.labelled_blocks[-1:],
                       holdout="last 20%", seed=plan.seed, trigger=plan.trigger, new_blocks=plan.new_blocks,
                       occurred_at="2026-01-01T00:00:01+00:00"))
    run(RecordRoundOutcome(round_id=plan.round_id, outcomes=(StrategyOutcome(
        strategy="full", artifact=artifact("model:v1", "model"), metrics={"accuracy": 0.9},
        training_blocks=plan.labelled_blocks, rows=10, seconds=0.1),), champion_metrics={}, code_version="t",
        occurred_at="2026-01-01T00:00:02+00:00"))


@pytest.fixture
def backlog() -> tuple[Driver, object]:
    """Five labelled blocks arrived before any model (a folder copied in before `serve` started)."""
    cfg = config(training={"initial_blocks": 2})
    run = Driver()
    run(register(cfg))
    for i in range(1, 6):
        run(accept(f"b{i}"))
    return run, cfg


def test_every_block_waits_while_there_is_no_champion(backlog) -> None:
    run, _ = backlog
    assert run.state.pending_blocks() == ["b1", "b2", "b3", "b4", "b5"] and run.state.pending_count == 5


def test_the_first_model_learns_from_the_first_initial_blocks_only(backlog) -> None:
    run, cfg = backlog
    plan = plan_round(run.state, cfg, "b5")
    assert plan.labelled_blocks == ("b1", "b2") and plan.block_id == "b2"


def test_after_the_first_model_the_other_blocks_wait_for_their_check_in_arrival_order(backlog) -> None:
    run, cfg = backlog
    first_model(run, cfg, "b5")
    assert run.state.champion == "v1" and run.state.first_training == ("b1", "b2")
    assert run.state.pending_blocks() == ["b3", "b4", "b5"] and run.state.pending_count == 3
    run(quiet("b3", ("b1", "b2")))
    assert run.state.pending_blocks() == ["b4", "b5"] and run.state.pending_count == 2


def test_a_drift_round_learns_only_from_blocks_up_to_the_one_that_triggered_it(backlog) -> None:
    run, cfg = backlog
    first_model(run, cfg, "b5")
    drop = PerformanceDrift(metric="accuracy", at_promotion=0.9, observed=0.7, tolerance=0.05, drifted=True)
    assessment = DriftAssessment(drifted=True, reasons=("accuracy fell",), features=(), multivariate=None,
                                 concept=None, performance=drop)
    run(RecordDriftCheck(block_id="b3", assessment=assessment, reference_blocks=("b1", "b2"),
                         occurred_at="2026-01-01T00:00:03+00:00"))
    plan = plan_round(run.state, cfg, "b3")
    assert plan.trigger == "drift" and plan.labelled_blocks == ("b1", "b2", "b3") and plan.new_blocks == ("b3",)


def test_a_block_is_never_checked_against_a_reference_that_contains_it(backlog) -> None:
    run, cfg = backlog
    first_model(run, cfg, "b5")
    with pytest.raises(CommandRejected, match="reference that contains it"):
        run(quiet("b4", ("b3", "b4")))
    with pytest.raises(CommandRejected):  # the first model's own blocks are never checked
        run(quiet("b1", ("b2",)))


def test_a_block_is_never_scored_by_a_model_trained_on_it(backlog) -> None:
    run, cfg = backlog
    first_model(run, cfg, "b5")
    with pytest.raises(CommandRejected, match="trained on it"):
        run(RecordPerformance(block_id="b2", model_version="v1", metrics={"accuracy": 1.0}, occurred_at="t"))
    assert run(RecordPerformance(block_id="b3", model_version="v1", metrics={"accuracy": 0.8}, occurred_at="t"))


def test_unlabelled_blocks_before_the_first_model_wait_too() -> None:
    cfg = config()
    run = Driver()
    run(register(cfg))
    run(accept("u1", labelled=False))
    run(accept("b2"))
    first_model(run, cfg, "b2")
    assert run.state.first_training == ("b2",) and run.state.pending_blocks() == ["u1"]
