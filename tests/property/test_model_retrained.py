"""`ModelRetrained` restates a finished round: whatever the outcomes of its strategies, it agrees with the round's
own events (the candidates, their scores, the failures, the promotion or rejection) and comes once, last."""

from __future__ import annotations

from builders import Driver, accept, at, failure, outcome, register, success
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.core.decide import RequestRetrain
from pipelines.core.events import (
    CandidateTrained,
    ChallengerEvaluated,
    ChallengerRejected,
    ModelPromoted,
    ModelRetrained,
    RetrainFailed,
)

STRATEGIES = ("full", "windowed", "stacking", "replay_mix")

results = st.lists(
    st.tuples(st.sampled_from(STRATEGIES), st.one_of(st.none(), st.floats(0.0, 1.0, allow_nan=False))),
    min_size=1, max_size=4, unique_by=lambda r: r[0])


def start(run: Driver, round_id: str, t: float) -> None:
    run(RequestRetrain(round_id=round_id, block_id="b1", strategies=STRATEGIES, training_blocks=("b1",),
                       holdout_blocks=("b1",), holdout="last 20%", seed=0, reasons=("x1 moved",),
                       occurred_at=at(t)))


@settings(max_examples=60, deadline=None)
@given(first=results, second=results, champion=st.floats(0.0, 1.0, allow_nan=False))
def test_model_retrained_agrees_with_the_round_it_summarises(first, second, champion) -> None:
    run = Driver()
    run(register())
    run(accept("b1"))
    for i, (outcomes, champ) in enumerate(((first, None), (second, champion)), 1):
        start(run, f"r{i}", t=10 * i)
        before = run.state
        events = run(outcome(f"r{i}", *[success(s, m) if m is not None else failure(s) for s, m in outcomes],
                             champion=champ if before.champion else None, t=10 * i + 2.5))
        summary = events[-1]
        assert isinstance(summary, ModelRetrained) and sum(isinstance(e, ModelRetrained) for e in events) == 1
        assert (summary.round_id, summary.trigger, summary.trigger_block, summary.reasons) == (
            f"r{i}", "drift", "b1", ("x1 moved",))
        assert summary.seconds == 2.5
        trained = {e.model_version: e.strategy for e in events if isinstance(e, CandidateTrained)}
        scores = {e.model_version: e.metrics["accuracy"] for e in events if isinstance(e, ChallengerEvaluated)}
        failed = {e.strategy for e in events if isinstance(e, RetrainFailed)}
        assert {r.strategy for r in summary.strategies if r.outcome == "trained"} == set(trained.values())
        assert {r.strategy for r in summary.strategies if r.outcome in ("failed", "skipped")} == failed
        for r in summary.strategies:
            if r.outcome == "trained":
                assert trained[r.model_version] == r.strategy and scores[r.model_version] == r.metric
        if scores:
            assert summary.best_metric == max(scores.values()) and scores[summary.best_version] == summary.best_metric
        else:
            assert summary.best_version is None and summary.best_metric is None
        promoted = [e for e in events if isinstance(e, ModelPromoted)]
        rejected = [e for e in events if isinstance(e, ChallengerRejected)]
        if promoted:
            assert summary.outcome == "promoted" and summary.promoted_version == promoted[0].model_version
            assert summary.reason == promoted[0].reason
        else:
            assert summary.outcome == ("rejected" if trained else "failed") and summary.promoted_version is None
            assert summary.reason == rejected[0].reason
        assert summary.champion_version == before.champion
        assert summary.champion_metric == (champion if before.champion else None)
