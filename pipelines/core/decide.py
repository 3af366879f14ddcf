"""`decide(state, command) -> events`: the only place a command becomes facts, and where invariants live.

Commands are imperative requests from the actor (after it did the heavy work: parsing a file, running a
drift test, training). `decide` checks them against the state and answers with the events to record:

- a file whose content was already ingested yields nothing (Ray may deliver a call twice);
- a different file claiming an existing block id is rejected whole (`block_id_conflict`);
- no retraining while a round is in flight or the circuit is open (after the backoff, one trial round);
- a candidate is promoted only by the promotion rule; rollback only to a known version.

A command that cannot be honoured because of a user's mistake raises `CommandRejected` with a message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pipelines.config.pipeline import CircuitBreakerSettings, PipelineConfig, config_from_dict, diff_configs
from pipelines.config.retrain import RetrainSettings
from pipelines.core.events import (
    Artifact,
    ArtifactsPruned,
    BlockArrived,
    BlockRejected,
    Calibration,
    CandidateTrained,
    ChallengerEvaluated,
    ChallengerRejected,
    ChangePoint,
    CircuitClosed,
    CircuitOpened,
    ConfigChanged,
    ConfigDiffEntry,
    DriftChecked,
    DriftDetected,
    Event,
    LabelsArrived,
    LabelsChecked,
    ModelPromoted,
    ModelRetrained,
    ModelRolledBack,
    PerformanceEstimated,
    PerformanceMeasured,
    PipelineActivated,
    PipelinePassivated,
    PipelineRegistered,
    RetrainFailed,
    RetrainRequested,
    SchemaFixed,
    StrategyResult,
)
from pipelines.core.metrics import higher_is_better, primary_metric
from pipelines.core.promotion import decide_promotion
from pipelines.core.schema import ColumnSchema
from pipelines.core.state import PipelineState
from pipelines.core.triggers import change_point_of, drift_signals, held_back
from pipelines.drift.results import DriftAssessment


class CommandRejected(ValueError):
    """The command is not allowed in this state (e.g. rollback to an unknown version); says why."""


# --- commands ------------------------------------------------------------------------------------

command = dataclass(frozen=True, kw_only=True, slots=True)


@command
class RegisterPipeline:
    name: str
    config: dict[str, Any]
    config_sha256: str
    occurred_at: str


@command
class RejectFile:
    file: str
    sha256: str
    reason_code: str
    message: str
    occurred_at: str
    block_id: str | None = None


@command
class NewBlock:
    block_id: str
    rows: int
    labelled: bool
    artifact: Artifact
    ignored_columns: tuple[str, ...] = ()


@command
class AcceptFile:
    """A file passed intake: its blocks (already stored as artifacts) and, for a first block, its schema."""

    file: str
    sha256: str
    blocks: tuple[NewBlock, ...]
    schema: ColumnSchema
    occurred_at: str


@command
class RecordPerformance:
    block_id: str
    model_version: str
    metrics: dict[str, float]
    occurred_at: str


@command
class RecordEstimate:
    """The champion's estimated performance on a block (before the block's drift check is recorded)."""

    block_id: str
    version: str
    metrics: dict[str, float]
    interval: dict[str, tuple[float, float]]
    rows: int
    calibration_sha256: str
    occurred_at: str


@command
class BlockLabels:
    """One block's late labels, stored as an artifact (the key and the target)."""

    block_id: str
    rows: int
    artifact: Artifact


@command
class AcceptLabels:
    """A labels file passed its checks and its join with each block it labels."""

    file: str
    sha256: str
    key: str
    blocks: tuple[BlockLabels, ...]
    occurred_at: str


@command
class RecordLabelsCheck:
    """What a block's late labels showed: the serving champion's score, its concept detector and the
    performance check (`assessment` has no feature tests: those ran when the block arrived)."""

    block_id: str
    model_version: str
    metrics: dict[str, float]
    assessment: DriftAssessment
    occurred_at: str
    note: str = ""


@command
class RecordDriftCheck:
    block_id: str
    assessment: DriftAssessment
    reference_blocks: tuple[str, ...]
    occurred_at: str


@command
class RequestRetrain:
    round_id: str
    block_id: str
    strategies: tuple[str, ...]
    training_blocks: tuple[str, ...]
    holdout_blocks: tuple[str, ...]
    holdout: str
    seed: int
    occurred_at: str
    trigger: str = "drift"
    new_blocks: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    change_point: ChangePoint | None = None
    change_rows: int = 0
    recent_blocks: tuple[str, ...] = ()
    reuse: tuple[str, ...] = ()


@command
class StrategyOutcome:
    """What one strategy's task returned: a trained candidate scored on the holdout, or a failure."""

    strategy: str
    artifact: Artifact | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    training_blocks: tuple[str, ...] = ()
    rows: int = 0
    seconds: float = 0.0
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    error: str | None = None
    skipped: bool = False
    calibration: Calibration | None = None


@command
class RecordRoundOutcome:
    round_id: str
    outcomes: tuple[StrategyOutcome, ...]
    champion_metrics: dict[str, float]
    code_version: str
    occurred_at: str


@command
class Rollback:
    to_version: str
    reason: str
    occurred_at: str
    force: bool = False  # restore a version that was never the champion (it lost its comparison, or never ran)


@command
class PruneArtifacts:
    """Delete the model files of rejected candidates beyond the newest `keep` (their events stay)."""

    keep: int
    occurred_at: str


@command
class Passivate:
    """Stop the idle actor (`serve`): refused while a round is in flight or a block waits for its check."""

    idle_seconds: float
    config_sha256: str
    snapshot_version: int
    occurred_at: str


@command
class Activate:
    reason: str
    occurred_at: str


@command
class ResumeRetraining:
    reason: str
    occurred_at: str


Command = (RegisterPipeline | RejectFile | AcceptFile | RecordPerformance | RecordDriftCheck | RequestRetrain
           | RecordRoundOutcome | Rollback | ResumeRetraining | PruneArtifacts | RecordEstimate | AcceptLabels
           | RecordLabelsCheck | Passivate | Activate)


# --- decide --------------------------------------------------------------------------------------


def decide(state: PipelineState, cmd: Command) -> tuple[Event, ...]:
    """The events that `cmd` produces in `state`; `()` when it is a repeat or changes nothing."""
    match cmd:
        case RegisterPipeline():
            return decide_register(state, cmd)
        case RejectFile():
            if file_seen(state, cmd.sha256):
                return ()
            return (BlockRejected(file=cmd.file, sha256=cmd.sha256, reason_code=cmd.reason_code,
                                  message=cmd.message, block_id=cmd.block_id, occurred_at=cmd.occurred_at),)
        case AcceptFile():
            return decide_accept(state, cmd)
        case RecordPerformance():
            block = state.blocks.get(cmd.block_id)
            if block is None or block.metrics is not None:
                return ()
            model = state.models.get(cmd.model_version)
            if cmd.block_id in state.first_training or (model and cmd.block_id in model.training_blocks):
                raise CommandRejected(f"block {cmd.block_id} cannot be scored by {cmd.model_version}: "
                                      "that model was trained on it")
            return (PerformanceMeasured(block_id=cmd.block_id, model_version=cmd.model_version,
                                        metrics=cmd.metrics, occurred_at=cmd.occurred_at),)
        case RecordDriftCheck():
            return decide_drift(state, cmd)
        case RecordEstimate():
            block = state.blocks.get(cmd.block_id)
            if block is None or block.estimated_by is not None or block.drifted is not None:
                return ()  # estimated already, or its check is recorded (an estimate comes before it)
            return (PerformanceEstimated(block_id=cmd.block_id, version=cmd.version, metrics=cmd.metrics,
                                         interval=cmd.interval, rows=cmd.rows, method="cbpe",
                                         calibration_sha256=cmd.calibration_sha256, occurred_at=cmd.occurred_at),)
        case AcceptLabels():
            return decide_labels(state, cmd)
        case RecordLabelsCheck():
            return decide_labels_check(state, cmd)
        case RequestRetrain():
            return decide_retrain(state, cmd)
        case RecordRoundOutcome():
            return decide_round_outcome(state, cmd)
        case Rollback():
            return decide_rollback(state, cmd)
        case PruneArtifacts():
            return decide_prune(state, cmd)
        case Passivate():
            if state.round is not None:
                raise CommandRejected(f"round {state.round.round_id} is in flight")
            if state.champion is not None and state.pending_count:
                raise CommandRejected(f"{state.pending_count} block(s) wait for their drift check")
            return (PipelinePassivated(idle_seconds=cmd.idle_seconds, config_sha256=cmd.config_sha256,
                                       snapshot_version=cmd.snapshot_version, occurred_at=cmd.occurred_at),)
        case Activate():
            return (PipelineActivated(reason=cmd.reason, occurred_at=cmd.occurred_at),)
        case ResumeRetraining():
            if not state.circuit.open:
                return ()
            return (CircuitClosed(reason=f"resumed by operator: {cmd.reason}", occurred_at=cmd.occurred_at),)
    raise TypeError(f"unknown command {type(cmd).__name__}")


def file_seen(state: PipelineState, sha256: str) -> bool:
    """True when this content was accepted, or rejected under the current config (a repeat)."""
    outcome = state.files.get(sha256)
    return outcome == "accepted" or outcome == f"rejected:{state.config_sha256}"


def decide_register(state: PipelineState, cmd: RegisterPipeline) -> tuple[Event, ...]:
    if state.name is None:
        return (PipelineRegistered(name=cmd.name, config_sha256=cmd.config_sha256, config=cmd.config,
                                   occurred_at=cmd.occurred_at),)
    if cmd.name != state.name:
        raise CommandRejected(f"stream of pipeline {state.name!r} cannot be registered as {cmd.name!r}")
    if cmd.config_sha256 == state.config_sha256:
        return ()
    diff = tuple(ConfigDiffEntry(key=k, old=json.dumps(a), new=json.dumps(b))
                 for k, a, b in diff_configs(state.config or {}, cmd.config))
    return (ConfigChanged(config_sha256=cmd.config_sha256, config=cmd.config, diff=diff,
                          occurred_at=cmd.occurred_at),)


def decide_accept(state: PipelineState, cmd: AcceptFile) -> tuple[Event, ...]:
    if state.files.get(cmd.sha256) == "accepted":
        return ()
    new_blocks = []
    for block in cmd.blocks:
        existing = state.blocks.get(block.block_id)
        if existing is None:
            new_blocks.append(block)
        elif existing.artifact.sha256 != block.artifact.sha256:
            return (BlockRejected(
                file=cmd.file, sha256=cmd.sha256, reason_code="block_id_conflict", block_id=block.block_id,
                message=(f"{cmd.file}: block {block.block_id!r} was already ingested from {existing.file} "
                         "with different rows; rename the block (or the file) if this is new data"),
                occurred_at=cmd.occurred_at),)
    if len({b.block_id for b in new_blocks}) != len(new_blocks):
        raise CommandRejected(f"{cmd.file}: the same block id appears twice in one file")
    if not new_blocks:
        return ()
    events: list[Event] = []
    if state.schema is None:
        events.append(SchemaFixed(schema=cmd.schema, block_id=new_blocks[0].block_id,
                                  occurred_at=cmd.occurred_at))
    events.extend(
        BlockArrived(block_id=b.block_id, file=cmd.file, sha256=cmd.sha256, rows=b.rows, labelled=b.labelled,
                     artifact=b.artifact, ignored_columns=b.ignored_columns, occurred_at=cmd.occurred_at)
        for b in new_blocks
    )
    return tuple(events)


def decide_drift(state: PipelineState, cmd: RecordDriftCheck) -> tuple[Event, ...]:
    block = state.blocks.get(cmd.block_id)
    if block is None or block.drifted is not None:
        return ()
    if cmd.block_id in cmd.reference_blocks or cmd.block_id in state.first_training:
        raise CommandRejected(f"block {cmd.block_id} cannot be checked against a reference that contains it")
    a = cmd.assessment
    settings = logged_config(state).retrain if state.config else RetrainSettings()
    signals = drift_signals(a) if a.drifted else ()
    point = change_point_of(state, cmd.block_id, a, signals, settings) if a.drifted else None
    checked = DriftChecked(
        block_id=cmd.block_id, drifted=a.drifted, reasons=a.reasons, features=a.features,
        multivariate=a.multivariate, concept=a.concept, performance=a.performance,
        reference_blocks=cmd.reference_blocks, change_point=point, estimated=a.estimated,
        occurred_at=cmd.occurred_at,
    )
    if not a.drifted:
        return (checked,)
    why_not = held_back(state, settings, cmd.block_id, signals, point)
    return checked, DriftDetected(block_id=cmd.block_id, reasons=a.reasons, signals=signals,
                                  starts_round=not why_not, held_back=why_not, change_point=point,
                                  occurred_at=cmd.occurred_at)


def decide_labels(state: PipelineState, cmd: AcceptLabels) -> tuple[Event, ...]:
    """Late labels for blocks that arrived without them: each block must exist and still lack labels."""
    if state.files.get(cmd.sha256) == "accepted":
        return ()
    for block in cmd.blocks:
        known = state.blocks.get(block.block_id)
        if known is None or known.labelled:
            code = "unknown_block" if known is None else "already_labelled"
            why = ("this pipeline never received it" if known is None
                   else f"it has its labels already (from {known.file if known.labels is None else 'a labels file'})")
            return (BlockRejected(file=cmd.file, sha256=cmd.sha256, reason_code=code, block_id=block.block_id,
                                  message=f"{cmd.file}: labels for block {block.block_id!r}, but {why}",
                                  occurred_at=cmd.occurred_at),)
    return tuple(LabelsArrived(block_id=b.block_id, file=cmd.file, sha256=cmd.sha256, rows=b.rows,
                               artifact=b.artifact, key=cmd.key, occurred_at=cmd.occurred_at) for b in cmd.blocks)


def decide_labels_check(state: PipelineState, cmd: RecordLabelsCheck) -> tuple[Event, ...]:
    """`PerformanceMeasured` of the model that served the block, `LabelsChecked`, then `DriftDetected` when it
    drifted (by the same trigger rules as a block's check), in one append. Once per block: a block scored
    already (its check ran after its labels came, or this is a repeat after a restart) records nothing."""
    block = state.blocks.get(cmd.block_id)
    if block is None or block.labels is None or block.metrics is not None or block.served_by is None:
        return ()
    if cmd.model_version != block.served_by:
        raise CommandRejected(f"block {cmd.block_id} was served by {block.served_by}, not {cmd.model_version}")
    a = cmd.assessment
    settings = logged_config(state).retrain if state.config else RetrainSettings()
    signals = drift_signals(a) if a.drifted else ()
    point = change_point_of(state, cmd.block_id, a, signals, settings) if a.drifted else None
    measured = PerformanceMeasured(block_id=cmd.block_id, model_version=cmd.model_version, metrics=cmd.metrics,
                                   occurred_at=cmd.occurred_at)
    checked = LabelsChecked(block_id=cmd.block_id, model_version=cmd.model_version, drifted=a.drifted,
                            reasons=a.reasons, concept=a.concept, performance=a.performance, change_point=point,
                            note=cmd.note, occurred_at=cmd.occurred_at)
    if not a.drifted:
        return measured, checked
    why_not = held_back(state, settings, cmd.block_id, signals, point)
    return measured, checked, DriftDetected(block_id=cmd.block_id, reasons=a.reasons, signals=signals,
                                  starts_round=not why_not, held_back=why_not, change_point=point,
                                  occurred_at=cmd.occurred_at)


_CONFIGS: dict[str, PipelineConfig] = {}


def logged_config(state: PipelineState) -> PipelineConfig:
    """The pipeline's config as the log recorded it, parsed once per config hash (decide runs per block)."""
    key = state.config_sha256 or json.dumps(state.config, sort_keys=True)
    if key not in _CONFIGS:
        if len(_CONFIGS) > 64:
            _CONFIGS.clear()
        _CONFIGS[key] = config_from_dict(state.config, "<log>")
    return _CONFIGS[key]


def retraining_allowed(state: PipelineState, now: str) -> tuple[bool, bool, str]:
    """(allowed, trial, why not): a round needs no round in flight and a closed or half-open circuit."""
    if state.round is not None:
        return False, False, f"round {state.round.round_id} is still in flight"
    if state.circuit.open:
        if state.circuit.until is not None and parse_time(now) >= parse_time(state.circuit.until):
            return True, True, ""
        return False, False, f"the circuit is open until {state.circuit.until}"
    return True, False, ""


def decide_retrain(state: PipelineState, cmd: RequestRetrain) -> tuple[Event, ...]:
    allowed, trial, _ = retraining_allowed(state, cmd.occurred_at)
    if not allowed or not cmd.strategies:
        return ()
    return (RetrainRequested(
        round_id=cmd.round_id, block_id=cmd.block_id, strategies=cmd.strategies,
        training_blocks=cmd.training_blocks, holdout_blocks=cmd.holdout_blocks, holdout=cmd.holdout,
        seed=cmd.seed, trial=trial, trigger=cmd.trigger, new_blocks=cmd.new_blocks, reasons=cmd.reasons,
        change_point=cmd.change_point, change_rows=cmd.change_rows, recent_blocks=cmd.recent_blocks,
        reuse=cmd.reuse, occurred_at=cmd.occurred_at),)


def next_version(state: PipelineState, offset: int) -> str:
    return f"v{len(state.models) + offset + 1}"


def decide_round_outcome(state: PipelineState, cmd: RecordRoundOutcome) -> tuple[Event, ...]:
    round_ = state.round
    if round_ is None or round_.round_id != cmd.round_id:
        return ()  # already recorded (a repeated delivery) or never started
    at = cmd.occurred_at
    events: list[Event] = []
    candidates: dict[str, dict[str, float]] = {}
    strategies: dict[str, str] = {}
    calibrations: dict[str, Calibration | None] = {}
    for outcome in cmd.outcomes:
        if outcome.error is not None or outcome.artifact is None:
            events.append(RetrainFailed(round_id=cmd.round_id, strategy=outcome.strategy,
                                        error=outcome.error or "no model was produced",
                                        skipped=outcome.skipped, occurred_at=at))
            continue
        version = next_version(state, len(candidates))
        candidates[version] = outcome.metrics
        strategies[version] = outcome.strategy
        calibrations[version] = outcome.calibration
        reused = outcome.params.get("reused_version") if outcome.strategy == "reuse" else None
        if outcome.strategy == "reuse" and reused not in round_.reuse:
            raise CommandRejected(f"round {cmd.round_id} did not plan to reuse {reused!r}; it planned "
                                  f"{', '.join(round_.reuse) or 'none'}")
        events.append(CandidateTrained(
            round_id=cmd.round_id, model_version=version, strategy=outcome.strategy, artifact=outcome.artifact,
            sha256=outcome.artifact.sha256, training_blocks=outcome.training_blocks, seconds=outcome.seconds,
            parent_version=reused or state.champion, rows=outcome.rows, seed=outcome.seed, params=outcome.params,
            code_version=cmd.code_version, notes=outcome.notes, calibration=outcome.calibration, occurred_at=at))
        events.append(ChallengerEvaluated(round_id=cmd.round_id, model_version=version, metrics=outcome.metrics,
                                          champion_metrics=cmd.champion_metrics, occurred_at=at))
    config = logged_config(state) if state.config else None
    settings = config.retrain if config else RetrainSettings()
    verdict = decide_promotion(cmd.champion_metrics if state.champion else None, candidates, settings,
                               strategies=strategies)
    if verdict.promote is not None:
        events.append(ModelPromoted(
            model_version=verdict.promote, previous_version=state.champion, strategy=strategies[verdict.promote],
            reason=verdict.reason, metrics=candidates[verdict.promote], round_id=cmd.round_id,
            calibration=calibrations[verdict.promote], occurred_at=at))
    else:
        reason = verdict.reason if candidates else "every strategy of the round failed"
        events.append(ChallengerRejected(round_id=cmd.round_id, model_versions=tuple(candidates),
                                         reason=reason, occurred_at=at))
    events.extend(circuit_after_round(state, succeeded=bool(candidates), trial=round_.trial, now=at))
    task = config.task if config else "classification"
    events.append(round_summary(state, cmd, events, primary_metric(settings, task)))
    return tuple(events)


def round_summary(state: PipelineState, cmd: RecordRoundOutcome, events: list[Event], metric: str) -> ModelRetrained:
    """`ModelRetrained`: the round's own events (just decided), restated as one fact."""
    round_ = state.round
    results, trained = [], {}
    for e in events:
        if isinstance(e, RetrainFailed):
            results.append(StrategyResult(strategy=e.strategy, outcome="skipped" if e.skipped else "failed",
                                          error=e.error))
        elif isinstance(e, ChallengerEvaluated):
            trained[e.model_version] = e.metrics.get(metric)
        elif isinstance(e, CandidateTrained):
            results.append(StrategyResult(strategy=e.strategy, outcome="trained", model_version=e.model_version))
    results = [replace(r, metric=trained.get(r.model_version)) if r.outcome == "trained" else r for r in results]
    scored = [(v, m) for v, m in trained.items() if m is not None]
    best = (max if higher_is_better(metric) else min)(scored, key=lambda vm: vm[1]) if scored else (None, None)
    promoted = next((e for e in events if isinstance(e, ModelPromoted)), None)
    rejected = next((e for e in events if isinstance(e, ChallengerRejected)), None)
    started = parse_time(round_.started_at) if round_.started_at else None
    return ModelRetrained(
        round_id=cmd.round_id, trigger=round_.trigger, trigger_block=round_.block_id, reasons=round_.reasons,
        strategies=tuple(results), metric=metric, best_version=best[0], best_metric=best[1],
        champion_version=state.champion,
        champion_metric=cmd.champion_metrics.get(metric) if state.champion else None,
        outcome="promoted" if promoted else ("rejected" if trained else "failed"),
        promoted_version=promoted.model_version if promoted else None,
        reason=promoted.reason if promoted else rejected.reason,
        seconds=max(0.0, (parse_time(cmd.occurred_at) - started).total_seconds()) if started else 0.0,
        occurred_at=cmd.occurred_at)



def circuit_after_round(state: PipelineState, *, succeeded: bool, trial: bool, now: str) -> tuple[Event, ...]:
    """Breaker transitions: failures count up to the limit (open), a trial decides close or reopen."""
    breaker = breaker_settings(state)
    if succeeded:
        return (CircuitClosed(reason="trial round succeeded", occurred_at=now),) if trial else ()
    failures = state.circuit.consecutive_failures + 1
    if trial or failures >= breaker.max_consecutive_failures:
        openings = state.circuit.openings + 1
        backoff = min(breaker.backoff_seconds * 2 ** (openings - 1), breaker.max_backoff_seconds)
        until = (parse_time(now) + timedelta(seconds=backoff)).isoformat()
        return (CircuitOpened(until=until, failures=failures, backoff_seconds=backoff, occurred_at=now),)
    return ()


def breaker_settings(state: PipelineState) -> CircuitBreakerSettings:
    if state.config is None:
        return CircuitBreakerSettings()
    return logged_config(state).circuit_breaker


def decide_rollback(state: PipelineState, cmd: Rollback) -> tuple[Event, ...]:
    if cmd.to_version not in state.models:
        known = ", ".join(sorted(state.models, key=version_number)) or "none yet"
        raise CommandRejected(f"pipeline {state.name!r} has no model version {cmd.to_version!r}; "
                              f"known versions: {known}")
    if cmd.to_version == state.champion:
        raise CommandRejected(f"{cmd.to_version} is already the champion of {state.name!r}")
    if state.models[cmd.to_version].pruned:
        raise CommandRejected(f"{cmd.to_version}'s model file was pruned ([retrain] retain_rejected); "
                              "it cannot be loaded again")
    if state.champion is None:
        raise CommandRejected(f"pipeline {state.name!r} has no champion to roll back from")
    target = state.models[cmd.to_version]
    if target.promoted_at is None and not cmd.force:
        raise CommandRejected(
            f"{cmd.to_version} was never the champion of {state.name!r}: it is a {target.status} candidate of "
            f"round {target.round_id}, which lost its comparison on the holdout. Rolling back to it puts a model "
            "the promotion rule refused in charge; roll back to an earlier champion ("
            + (", ".join(former_champions(state)) or "none") + "), or pass --force if you mean it")
    return (ModelRolledBack(from_version=state.champion, to_version=cmd.to_version, reason=cmd.reason,
                            forced=target.promoted_at is None, occurred_at=cmd.occurred_at),)


def former_champions(state: PipelineState) -> list[str]:
    """Versions that served as champion once and could be restored, newest first."""
    return sorted((m.version for m in state.models.values() if m.promoted_at is not None
                   and m.version != state.champion and not m.pruned), key=version_number, reverse=True)


def decide_prune(state: PipelineState, cmd: PruneArtifacts) -> tuple[Event, ...]:
    """Rejected candidates beyond the newest `keep`, whose files no kept model shares (content addressing)."""
    rejected = sorted((m for m in state.models.values() if m.status == "rejected" and not m.pruned),
                      key=lambda m: version_number(m.version))
    old = rejected[: max(0, len(rejected) - cmd.keep)]
    if not old:
        return ()
    kept = {m.artifact.sha256 for m in state.models.values() if m not in old and not m.pruned}
    shas = tuple(sorted({m.artifact.sha256 for m in old} - kept))
    return (ArtifactsPruned(model_versions=tuple(m.version for m in old), sha256s=shas,
                            reason=f"retain_rejected = {cmd.keep}", occurred_at=cmd.occurred_at),)


def version_number(version: str) -> int:
    return int(version[1:]) if version[1:].isdigit() else 0


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)

