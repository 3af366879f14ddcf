"""Given events, when a command, then events: the invariants `decide` holds."""

from __future__ import annotations

from dataclasses import replace

import pytest
from builders import (
    Driver,
    accept,
    at,
    config,
    failure,
    outcome,
    register,
    request,
    success,
)

from pipelines.core.decide import CommandRejected, RecordDriftCheck, RejectFile, ResumeRetraining, Rollback
from pipelines.core.events import (
    BlockArrived,
    BlockRejected,
    CandidateTrained,
    ChallengerEvaluated,
    ChallengerRejected,
    CircuitClosed,
    CircuitOpened,
    ConfigChanged,
    DriftChecked,
    DriftDetected,
    ModelPromoted,
    ModelRolledBack,
    PipelineRegistered,
    RetrainFailed,
    RetrainRequested,
    SchemaFixed,
)
from pipelines.drift.results import DriftAssessment, PerformanceDrift


def kinds(events) -> list[str]:
    return [type(e).__name__ for e in events]


@pytest.fixture
def run() -> Driver:
    d = Driver()
    d(register())
    return d


def with_champion(run: Driver) -> Driver:
    run(accept("b1"))
    run(request("r1"))
    run(outcome("r1", success("full", 0.80)))
    assert run.state.champion == "v1"
    return run


def test_registering_records_the_config_once(run: Driver) -> None:
    assert kinds(run.log) == ["PipelineRegistered"]
    assert isinstance(run.log[0], PipelineRegistered) and run.log[0].config["name"] == "p"
    assert run(register()) == ()


def test_a_changed_config_records_its_diff(run: Driver) -> None:
    (changed,) = run(register(config(training={"seed": 7})))
    assert isinstance(changed, ConfigChanged)
    assert [(d.key, d.old, d.new) for d in changed.diff] == [("training.seed", "0", "7")]


def test_first_block_fixes_the_schema_then_arrives(run: Driver) -> None:
    events = run(accept("b1"))
    assert kinds(events) == ["SchemaFixed", "BlockArrived"]
    assert isinstance(events[0], SchemaFixed) and events[0].schema.features == ("x1", "x2")
    assert kinds(run(accept("b2"))) == ["BlockArrived"]


def test_the_same_file_twice_yields_nothing(run: Driver) -> None:
    run(accept("b1"))
    assert run(accept("b1")) == ()
    assert run(accept("b1", file="copy-of-b1.csv")) == ()


def test_a_different_file_claiming_a_block_id_is_rejected(run: Driver) -> None:
    run(accept("b1"))
    (rejected,) = run(accept("b1", content="other rows", file="b1-fixed.csv"))
    assert isinstance(rejected, BlockRejected) and rejected.reason_code == "block_id_conflict"
    assert "already ingested from b1.csv" in rejected.message
    assert len(run.state.blocks) == 1


def test_a_rejection_is_recorded_once_per_config(run: Driver) -> None:
    cmd = RejectFile(file="bad.csv", sha256="ab" * 32, reason_code="empty_file", message="bad.csv: empty",
                     occurred_at=at())
    assert kinds(run(cmd)) == ["BlockRejected"]
    assert run(cmd) == ()
    run(register(config(training={"seed": 1})))  # a new config may accept what the old one refused
    assert kinds(run(cmd)) == ["BlockRejected"]


DROP = PerformanceDrift(metric="accuracy", at_promotion=0.9, observed=0.7, tolerance=0.05, drifted=True)


def drift_check(block_id: str, drifted: bool, performance: PerformanceDrift | None = DROP) -> RecordDriftCheck:
    assessment = DriftAssessment(drifted=drifted, reasons=("x1: mean moved by 0.8 sd",) if drifted else (),
                                 features=(), multivariate=None, concept=None,
                                 performance=performance if drifted else None)
    return RecordDriftCheck(block_id=block_id, assessment=assessment, reference_blocks=("b0",), occurred_at=at())


def test_a_drifted_check_is_followed_by_drift_detected(run: Driver) -> None:
    run(accept("b1"))
    events = run(drift_check("b1", drifted=True))
    assert kinds(events) == ["DriftChecked", "DriftDetected"]
    assert isinstance(events[1], DriftDetected) and events[1].reasons == ("x1: mean moved by 0.8 sd",)
    assert run(drift_check("b1", drifted=True)) == ()  # checked once
    assert run.state.retrain_pending and events[1].starts_round and events[1].signals == ("performance",)


def test_a_quiet_check_is_only_checked(run: Driver) -> None:
    run(accept("b1"))
    assert kinds(run(drift_check("b1", drifted=False))) == ["DriftChecked"]
    assert isinstance(run.log[-1], DriftChecked) and not run.state.retrain_pending


def test_the_first_round_promotes_its_best_candidate(run: Driver) -> None:
    run(accept("b1"))
    assert kinds(run(request("r1"))) == ["RetrainRequested"]
    events = run(outcome("r1", success("full", 0.80), success("windowed", 0.85)))
    assert kinds(events) == ["CandidateTrained", "ChallengerEvaluated", "CandidateTrained", "ChallengerEvaluated",
                             "ModelPromoted", "ModelRetrained"]
    promoted = events[-2]
    assert isinstance(promoted, ModelPromoted) and promoted.model_version == "v2" and promoted.strategy == "windowed"
    assert run.state.champion == "v2" and run.state.round is None
    assert run.state.models["v1"].status == "rejected"


def test_no_second_round_while_one_is_in_flight(run: Driver) -> None:
    run(accept("b1"))
    run(request("r1"))
    assert run(request("r2")) == ()


def test_a_better_candidate_is_promoted_with_lineage(run: Driver) -> None:
    with_champion(run)
    run(request("r2"))
    events = run(outcome("r2", success("windowed", 0.90), champion=0.80))
    promoted = events[-2]
    assert isinstance(promoted, ModelPromoted) and promoted.previous_version == "v1"
    trained = events[0]
    assert isinstance(trained, CandidateTrained) and trained.parent_version == "v1"
    assert isinstance(events[1], ChallengerEvaluated) and events[1].champion_metrics == {"accuracy": 0.80}
    assert [m.version for m in run.state.lineage("v2")] == ["v2", "v1"]


@pytest.mark.parametrize("accuracy", [0.80, 0.805, 0.70])
def test_an_equal_barely_better_or_worse_candidate_is_rejected(run: Driver, accuracy: float) -> None:
    with_champion(run)
    run(request("r2"))
    events = run(outcome("r2", success("windowed", accuracy), champion=0.80))
    assert isinstance(events[-2], ChallengerRejected)
    assert "0.8" in events[-2].reason
    assert run.state.champion == "v1" and run.state.models["v2"].status == "rejected"


def test_failed_strategies_are_recorded_and_others_still_count(run: Driver) -> None:
    with_champion(run)
    run(request("r2"))
    events = run(outcome("r2", failure("stacking"), success("windowed", 0.95), champion=0.80))
    assert kinds(events)[0] == "RetrainFailed" and isinstance(events[-2], ModelPromoted)


def test_repeated_outcome_delivery_is_ignored(run: Driver) -> None:
    with_champion(run)
    assert run(outcome("r1", success("full", 0.99))) == ()


def open_circuit(run: Driver) -> None:
    for i in range(2, 5):  # max_consecutive_failures = 3 by default
        assert kinds(run(request(f"r{i}", t=i)))[0] == "RetrainRequested"
        events = run(outcome(f"r{i}", failure("full"), t=i))
    assert isinstance(events[-2], CircuitOpened)


def test_three_failed_rounds_open_the_circuit_and_pause_retraining(run: Driver) -> None:
    with_champion(run)
    open_circuit(run)
    opened = run.log[-2]
    assert opened.failures == 3 and opened.backoff_seconds == 60.0
    assert run.state.circuit.open and run.state.health == "paused"
    assert run(request("r5", t=10)) == ()  # still inside the backoff
    assert kinds(run(accept("b2", t=11))) == ["BlockArrived"]  # ingestion goes on


def test_after_the_backoff_one_trial_round_closes_the_circuit_on_success(run: Driver) -> None:
    with_champion(run)
    open_circuit(run)
    (requested,) = run(request("r5", t=4 + 61))
    assert isinstance(requested, RetrainRequested) and requested.trial
    events = run(outcome("r5", success("windowed", 0.9), champion=0.8, t=70))
    assert isinstance(events[-2], CircuitClosed) and not run.state.circuit.open


def test_a_failed_trial_reopens_with_a_doubled_backoff_up_to_the_cap(run: Driver) -> None:
    with_champion(run)
    open_circuit(run)
    run(request("r5", t=100))
    (failed, rejected, reopened, _summary) = run(outcome("r5", failure("full"), t=100))
    assert isinstance(failed, RetrainFailed) and isinstance(rejected, ChallengerRejected)
    assert isinstance(reopened, CircuitOpened) and reopened.backoff_seconds == 120.0
    t = 100.0
    for _ in range(8):
        t += 4000
        run(request(f"t{t}", t=t))
        *_, last, _summary = run(outcome(f"t{t}", failure("full"), t=t))
    assert last.backoff_seconds == 3600.0  # capped at max_backoff_seconds


def test_resume_closes_an_open_circuit(run: Driver) -> None:
    with_champion(run)
    assert run(ResumeRetraining(reason="fixed the data", occurred_at=at())) == ()  # nothing to resume
    open_circuit(run)
    (closed,) = run(ResumeRetraining(reason="fixed the data", occurred_at=at(5)))
    assert isinstance(closed, CircuitClosed) and "fixed the data" in closed.reason
    assert kinds(run(request("r9", t=6))) == ["RetrainRequested"]


def test_rollback_only_to_a_known_version(run: Driver) -> None:
    with_champion(run)
    run(request("r2"))
    run(outcome("r2", success("windowed", 0.95), champion=0.80))
    with pytest.raises(CommandRejected, match="no model version 'v9'; known versions: v1, v2"):
        run(Rollback(to_version="v9", reason="x", occurred_at=at()))
    with pytest.raises(CommandRejected, match="already the champion"):
        run(Rollback(to_version="v2", reason="x", occurred_at=at()))
    (rolled,) = run(Rollback(to_version="v1", reason="v2 misbehaves", occurred_at=at()))
    assert isinstance(rolled, ModelRolledBack) and rolled.from_version == "v2"
    assert run.state.champion == "v1" and run.state.models["v2"].status == "retired"


def test_block_arrived_carries_the_file_and_artifact(run: Driver) -> None:
    (_, arrived) = run(accept("b1"))
    assert isinstance(arrived, BlockArrived) and arrived.file == "b1.csv" and arrived.rows == 10
    assert run.state.blocks["b1"].artifact == arrived.artifact


def test_unlabelled_block_counts_but_is_not_labelled(run: Driver) -> None:
    run(accept("b1", labelled=False))
    assert not run.state.blocks["b1"].labelled and run.state.counters.blocks == 1


def test_events_are_stamped_with_the_commands_time(run: Driver) -> None:
    (_, arrived) = run(accept("b1", t=42))
    assert arrived.occurred_at == at(42) and run.state.last_event_at == at(42)
    assert replace(arrived, occurred_at="") != arrived


def test_retention_prunes_old_rejected_candidates_but_keeps_their_events(run: Driver) -> None:
    from pipelines.core.decide import PruneArtifacts
    from pipelines.core.events import ArtifactsPruned

    with_champion(run)
    for i in range(2, 5):
        run(request(f"r{i}"))
        run(outcome(f"r{i}", success("windowed", 0.70 + i / 100), champion=0.80))
    rejected = [v for v, m in run.state.models.items() if m.status == "rejected"]
    assert sorted(rejected) == ["v2", "v3", "v4"]
    (pruned,) = run(PruneArtifacts(keep=1, occurred_at=at()))
    assert isinstance(pruned, ArtifactsPruned) and pruned.model_versions == ("v2", "v3")
    assert len(pruned.sha256s) == 2
    assert run.state.models["v2"].pruned and not run.state.models["v4"].pruned
    assert run(PruneArtifacts(keep=1, occurred_at=at())) == ()  # nothing more to prune
    with pytest.raises(CommandRejected, match="pruned"):
        run(Rollback(to_version="v2", reason="x", occurred_at=at()))


def test_rollback_to_a_version_that_never_served_needs_force(run: Driver) -> None:
    with_champion(run)
    run(request("r2"))
    run(outcome("r2", success("windowed", 0.70), champion=0.80))  # v2 rejected
    run(request("r3", t=1))
    run(outcome("r3", success("full", 0.95), champion=0.80, t=1))  # v3 promoted
    assert run.state.models["v2"].status == "rejected" and run.state.champion == "v3"
    with pytest.raises(CommandRejected, match=r"v2 was never the champion .* rejected candidate of round r2.*"
                                              r"earlier champion \(v1\), or pass --force"):
        run(Rollback(to_version="v2", reason="x", occurred_at=at(2)))
    (rolled,) = run(Rollback(to_version="v2", reason="r2's holdout was wrong", force=True, occurred_at=at(2)))
    assert isinstance(rolled, ModelRolledBack) and rolled.forced and run.state.champion == "v2"
    (back,) = run(Rollback(to_version="v1", reason="a former champion needs no force", occurred_at=at(3)))
    assert not back.forced
