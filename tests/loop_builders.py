"""Builders for the closed loop's rule tests: drift checks with chosen signals, rounds started and finished the
way the actor does, a pipeline with a first model."""

from __future__ import annotations

from builders import Driver, accept, artifact, at, config, register

from pipelines.core.decide import RecordDriftCheck, RecordRoundOutcome, RequestRetrain, StrategyOutcome
from pipelines.core.rounds import plan_round
from pipelines.drift.results import ConceptDrift, DriftAssessment, FeatureDrift, PerformanceDrift

DROP = PerformanceDrift(metric="accuracy", at_promotion=0.9, observed=0.7, tolerance=0.05, drifted=True)
MOVED = FeatureDrift(name="x1", kind="numeric", test="ks", statistic=0.4, p_value=1e-9, p_adjusted=1e-9,
                     effect=0.8, effect_name="wasserstein_sd", min_effect=0.1, drifted=True)


def concept(change_row: int) -> ConceptDrift:
    return ConceptDrift(detector="adwin", drift=True, warning=False, rows_seen=3, state="{}", drift_rows=(8,),
                        block_rows=10, change_rows=(change_row,))


def check(block_id: str, *, performance=None, concept_=None, features=(), t: float = 0) -> RecordDriftCheck:
    drifted = bool(performance or concept_ or features)
    a = DriftAssessment(drifted=drifted, reasons=("why",) if drifted else (), features=features,
                        multivariate=None, concept=concept_, performance=performance)
    return RecordDriftCheck(block_id=block_id, assessment=a, reference_blocks=("b1",), occurred_at=at(t))


def start(run: Driver, plan, reuse=(), t: float = 0) -> tuple:
    return run(RequestRetrain(
        round_id=plan.round_id, block_id=plan.block_id, strategies=plan.strategies,
        training_blocks=plan.labelled_blocks, holdout_blocks=plan.new_blocks[-1:], holdout="h", seed=plan.seed,
        trigger=plan.trigger, new_blocks=plan.new_blocks, reasons=plan.reasons, change_point=plan.change_point,
        change_rows=plan.change_rows, recent_blocks=plan.recent_blocks, reuse=reuse, occurred_at=at(t)))


def model(name: str, accuracy: float, blocks=("b1",), **kw) -> StrategyOutcome:
    return StrategyOutcome(strategy=kw.pop("strategy", "full"), artifact=artifact(f"model:{name}", "model"),
                           metrics={"accuracy": accuracy}, training_blocks=blocks, rows=10, seconds=0.1, **kw)


def finish(run: Driver, round_id: str, *outcomes: StrategyOutcome, champion: float | None = 0.9) -> tuple:
    return run(RecordRoundOutcome(round_id=round_id, outcomes=outcomes,
                                  champion_metrics={} if champion is None else {"accuracy": champion},
                                  code_version="t", occurred_at=at(1)))


def pipeline(**retrain) -> tuple[Driver, object]:
    """A pipeline whose first model v1 learned from b1; blocks of 10 labelled rows arrive as `arrive` adds them."""
    cfg = config(retrain=retrain) if retrain else config()
    run = Driver()
    run(register(cfg))
    run(accept("b1"))
    plan = plan_round(run.state, cfg, "b1")
    start(run, plan)
    finish(run, plan.round_id, model("v1", 0.9), champion=None)
    assert run.state.champion == "v1"
    return run, cfg


def arrive(run: Driver, cfg, block_id: str, **signals):
    """A block arrives and is checked; returns the round plan due after it (None: none)."""
    run(accept(block_id))
    run(check(block_id, **signals))
    return plan_round(run.state, cfg, block_id)
