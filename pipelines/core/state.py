"""`PipelineState` and `evolve`: a pipeline's whole state is a fold over its events.

`evolve` is total and pure: it never re-runs a test or trains a model, it only applies what the events
say was decided. Collections are persistent maps (`immutables.Map`), so each step costs O(log n) and a
replay of a million events stays linear.

>>> from pipelines.core.events import PipelineRegistered, CircuitClosed
>>> s = replay([PipelineRegistered(name="p", config_sha256="ab", config={"name": "p"})])
>>> (s.name, s.version, s.health)
('p', 1, 'waiting')
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

from immutables import Map

from pipelines.core.events import (
    Artifact,
    ArtifactsPruned,
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
    Event,
    LabelsArrived,
    LabelsChecked,
    ModelPromoted,
    ModelRolledBack,
    PerformanceEstimated,
    PerformanceMeasured,
    PipelineRegistered,
    RetrainFailed,
    RetrainRequested,
    SchemaFixed,
)
from pipelines.core.record_copies import maker, replacer
from pipelines.core.schema import ColumnSchema


@dataclass(frozen=True, slots=True)
class BlockRecord:
    """An accepted block: where it came from, its stored rows, and what the checks found."""

    block_id: str
    seq: int
    file: str
    sha256: str
    rows: int
    labelled: bool
    artifact: Artifact
    arrived_at: str
    drifted: bool | None = None
    metrics: dict[str, float] | None = None  # the champion's score on it (labelled blocks)
    scored_by: str | None = None
    served_by: str | None = None  # the champion when its drift check ran: the model that served its rows
    estimated_by: str | None = None  # the champion whose performance on it was estimated (PerformanceEstimated)
    labels: Artifact | None = None  # its late labels (LabelsArrived), joined to its rows when read
    labels_checked_by: str | None = None  # the model its late labels were checked against (LabelsChecked)


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """One entry of the model registry: lineage, artifact and its life so far."""

    version: str
    strategy: str
    artifact: Artifact
    parent: str | None
    training_blocks: tuple[str, ...]
    round_id: str
    trained_at: str
    seconds: float
    code_version: str
    status: str = "candidate"  # candidate | champion | retired | rejected
    holdout_metrics: dict[str, float] = field(default_factory=dict)
    promoted_metrics: dict[str, float] | None = None  # metrics at promotion: the bar for performance drift
    promoted_at: str | None = None
    pruned: bool = False  # its artifact was deleted by retention (ArtifactsPruned)
    calibration: Artifact | None = None  # its probability calibration (fitted on its round's holdout)


@dataclass(frozen=True, slots=True)
class RoundRecord:
    """A retraining round in flight: strategies not yet reported are still running."""

    round_id: str
    block_id: str
    strategies: tuple[str, ...]
    training_blocks: tuple[str, ...]
    holdout_blocks: tuple[str, ...]
    started_at: str
    trial: bool
    seed: int
    trigger: str = "drift"
    new_blocks: tuple[str, ...] = ()
    candidates: tuple[str, ...] = ()
    failures: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    change_block: str | None = None  # the change point the round adapts to (block, row, signal)
    change_row: int = 0
    change_signal: str = ""
    change_rows: int = 0
    recent_blocks: tuple[str, ...] = ()
    reuse: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Adaptation:
    """The latest change point and how far the loop has adapted to it: what "adapt" rounds are planned on
    (`pipelines.core.rounds`). `block_id` None: no change recorded yet."""

    block_id: str | None = None
    row: int = 0
    signal: str = ""
    seq: int = 0  # the change block's arrival number
    rounds: int = 0  # rounds started since this change point
    adapt_rounds: int = 0  # of which "adapt" rounds
    rows_at_last_round: int = 0  # labelled rows after the change when the newest of those rounds started
    settled: bool = False  # an adapt round found nothing better: no more adapt rounds for this change


@dataclass(frozen=True, slots=True)
class Circuit:
    """The retraining circuit breaker: closed (normal) or open until a time, then half-open for one trial."""

    open: bool = False
    consecutive_failures: int = 0
    until: str | None = None
    openings: int = 0  # consecutive openings without a close: drives the exponential backoff
    last_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Counters:
    blocks: int = 0
    rejected_files: int = 0
    drift_checks: int = 0
    drifts: int = 0
    rounds: int = 0
    candidates: int = 0
    promotions: int = 0
    challenger_rejections: int = 0
    failures: int = 0
    rollbacks: int = 0
    labels_arrived: int = 0  # LabelsArrived: blocks labelled late
    labels_checked: int = 0  # LabelsChecked: late labels checked (fewer when a block waited for its own check)


@dataclass(frozen=True, slots=True)
class PipelineState:
    """Everything the actor and the UI need about one pipeline, as of `version` events."""

    version: int = 0
    name: str | None = None
    config: dict[str, Any] | None = None
    config_sha256: str | None = None
    schema: ColumnSchema | None = None
    blocks: Map = field(default_factory=Map)  # block_id -> BlockRecord
    block_order: Map = field(default_factory=Map)  # seq -> block_id
    files: Map = field(default_factory=Map)  # file sha256 -> "accepted" | "rejected:<config sha256>"
    models: Map = field(default_factory=Map)  # version -> ModelRecord
    champion: str | None = None
    round: RoundRecord | None = None
    circuit: Circuit = field(default_factory=Circuit)
    concept_state: str | None = None  # the streaming concept-drift detector, as recorded
    last_block: str | None = None
    last_drift_block: str | None = None
    last_check_drifted: bool | None = None
    retrain_pending: bool = False  # drift was detected and no round has started since
    last_event_at: str | None = None
    counters: Counters = field(default_factory=Counters)
    # the blocks the first model learned from (set at the first promotion): the only accepted blocks that are
    # never drift-checked or scored, since no model exists that was not trained on them
    first_training: tuple[str, ...] = ()
    drift_reasons: tuple[str, ...] = ()  # why the last drift was detected: a drift round records them
    adaptation: Adaptation = field(default_factory=Adaptation)
    last_round_seq: int = 0  # arrival number of the block the newest round started after (cooldown)

    @staticmethod
    def initial() -> PipelineState:
        return PipelineState()

    @property
    def health(self) -> str:
        """One word for people: waiting, paused, retraining, drifting or ok."""
        if self.champion is None:
            return "waiting"
        if self.circuit.open:
            return "paused"
        if self.round is not None:
            return "retraining"
        if self.last_check_drifted:
            return "drifting"
        return "ok"

    def ordered_blocks(self) -> list[BlockRecord]:
        return [self.blocks[self.block_order[i]] for i in range(1, len(self.block_order) + 1)]

    def newest_blocks(self, n: int) -> list[BlockRecord]:
        """`ordered_blocks()[-n:]`, reading only those blocks (a state loaded from a snapshot builds a block
        record when it is first read)."""
        if n <= 0:
            return self.ordered_blocks()[-n:]
        total = len(self.block_order)
        return [self.blocks[self.block_order[i]] for i in range(max(1, total - n + 1), total + 1)]

    def champion_record(self) -> ModelRecord | None:
        return self.models[self.champion] if self.champion else None

    def lineage(self, version: str) -> list[ModelRecord]:
        """The chain from `version` back through its parents to the first model."""
        chain: list[ModelRecord] = []
        current: str | None = version
        while current is not None and current in self.models and len(chain) <= len(self.models):
            record = self.models[current]
            chain.append(record)
            current = record.parent
        return chain

    def pending_blocks(self) -> list[str]:
        """Accepted blocks still waiting for their drift check, oldest first.

        A block waits while there is no champion, or when a crash came between its arrival and its check. The
        blocks the first model learned from never wait: no model exists that was not trained on them. Reads
        every block record: for recovery and `status`, not for every block.
        """
        first = set(self.first_training)
        return [b.block_id for b in self.ordered_blocks() if b.drifted is None and b.block_id not in first]

    @property
    def pending_count(self) -> int:
        """`len(pending_blocks())` from the counters, without reading a block record (`status` on a long log):
        each block is checked at most once and the first model's own blocks never are (`decide` holds both)."""
        return max(0, self.counters.blocks - self.counters.drift_checks - len(self.first_training))


# --- fast record copies (generated once per record class: pipelines/core/record_copies.py) -------------

_state = replacer(PipelineState)
_counters = replacer(Counters)
_block = replacer(BlockRecord)
_model = replacer(ModelRecord)
_round = replacer(RoundRecord)
_circuit = replacer(Circuit)
_adaptation = replacer(Adaptation)
_new_block = maker(BlockRecord)
_new_model = maker(ModelRecord)


def evolve(state: PipelineState, event: Event) -> PipelineState:
    """Apply one recorded fact. Total: an event this fold does not use only advances the version.

    Every branch builds the next state in one copy (`_state`), the version bump included.
    """
    version = state.version + 1
    at = event.occurred_at or state.last_event_at
    c = state.counters
    match event:
        # the three events of every block first (a failed class pattern costs a check; the events are
        # distinct classes, none a subclass of another, so the order of the cases changes no result)
        case BlockArrived():
            seq = len(state.block_order) + 1
            record = _new_block(event.block_id, seq, event.file, event.sha256, event.rows, event.labelled,
                                event.artifact, event.occurred_at)
            return _state(
                state, version=version, last_event_at=at,
                blocks=state.blocks.set(event.block_id, record),
                block_order=state.block_order.set(seq, event.block_id),
                files=state.files.set(event.sha256, "accepted"),
                last_block=event.block_id,
                counters=_counters(c, blocks=c.blocks + 1),
            )
        case PerformanceMeasured(block_id=block_id, metrics=metrics, model_version=model_version):
            block = state.blocks.get(block_id)
            if block is None:
                return _state(state, version=version, last_event_at=at)
            return _state(state, version=version, last_event_at=at, blocks=state.blocks.set(
                block_id, _block(block, metrics=metrics, scored_by=model_version)))
        case DriftChecked(block_id=block_id, drifted=drifted, concept=concept):
            block = state.blocks.get(block_id)
            blocks = (state.blocks.set(block_id, _block(block, drifted=drifted, served_by=state.champion)) if block
                      else state.blocks)
            return _state(
                state, version=version, last_event_at=at, blocks=blocks, last_check_drifted=drifted,
                concept_state=concept.state if concept is not None else state.concept_state,
                counters=_counters(c, drift_checks=c.drift_checks + 1),
            )
        case PerformanceEstimated(block_id=block_id, version=estimated_by):
            block = state.blocks.get(block_id)
            if block is None:
                return _state(state, version=version, last_event_at=at)
            return _state(state, version=version, last_event_at=at, blocks=state.blocks.set(
                block_id, _block(block, estimated_by=estimated_by)))
        case LabelsArrived(block_id=block_id, artifact=labels, sha256=sha):
            block = state.blocks.get(block_id)
            files = state.files.set(sha, "accepted")
            counters = _counters(c, labels_arrived=c.labels_arrived + 1)
            if block is None:
                return _state(state, version=version, last_event_at=at, files=files, counters=counters)
            return _state(state, version=version, last_event_at=at, files=files, counters=counters,
                          blocks=state.blocks.set(block_id, _block(block, labelled=True, labels=labels)))
        case LabelsChecked(block_id=block_id, model_version=checked_by, concept=concept, drifted=drifted):
            block = state.blocks.get(block_id)
            blocks = state.blocks.set(block_id, _block(block, labels_checked_by=checked_by)) if block else state.blocks
            return _state(state, version=version, last_event_at=at, blocks=blocks,
                          counters=_counters(c, labels_checked=c.labels_checked + 1),
                          last_check_drifted=drifted or state.last_check_drifted,
                          concept_state=concept.state if concept is not None else state.concept_state)
        case PipelineRegistered(name=name, config=config, config_sha256=sha):
            return _state(state, version=version, last_event_at=at, name=name, config=config, config_sha256=sha)
        case ConfigChanged(config=config, config_sha256=sha):
            return _state(state, version=version, last_event_at=at, config=config, config_sha256=sha)
        case SchemaFixed(schema=schema):
            return _state(state, version=version, last_event_at=at, schema=schema)
        case BlockRejected(sha256=sha):
            files = state.files
            if files.get(sha) != "accepted":
                files = files.set(sha, f"rejected:{state.config_sha256}")
            return _state(state, version=version, last_event_at=at, files=files,
                          counters=_counters(c, rejected_files=c.rejected_files + 1))
        case DriftDetected(block_id=block_id, reasons=reasons, change_point=point):
            adaptation = state.adaptation
            if point is not None and (point.block_id, point.row) != (adaptation.block_id, adaptation.row):
                changed = state.blocks.get(point.block_id)
                adaptation = Adaptation(block_id=point.block_id, row=point.row, signal=point.signal,
                                        seq=changed.seq if changed else 0)
            if not event.starts_round:  # a warning: recorded and shown, no round
                return _state(state, version=version, last_event_at=at, last_drift_block=block_id,
                              adaptation=adaptation, counters=_counters(c, drifts=c.drifts + 1))
            return _state(state, version=version, last_event_at=at, last_drift_block=block_id,
                          retrain_pending=True, drift_reasons=reasons, adaptation=adaptation,
                          counters=_counters(c, drifts=c.drifts + 1))
        case RetrainRequested():
            point = event.change_point
            round_ = RoundRecord(
                round_id=event.round_id, block_id=event.block_id, strategies=event.strategies,
                training_blocks=event.training_blocks, holdout_blocks=event.holdout_blocks,
                started_at=event.occurred_at, trial=event.trial, seed=event.seed, trigger=event.trigger,
                new_blocks=event.new_blocks, reasons=event.reasons,
                change_block=point.block_id if point else None, change_row=point.row if point else 0,
                change_signal=point.signal if point else "", change_rows=event.change_rows,
                recent_blocks=event.recent_blocks, reuse=event.reuse,
            )
            adaptation = state.adaptation
            if point is not None and (point.block_id, point.row) == (adaptation.block_id, adaptation.row):
                adaptation = _adaptation(adaptation, rounds=adaptation.rounds + 1,
                                         adapt_rounds=adaptation.adapt_rounds + (event.trigger == "adapt"),
                                         rows_at_last_round=event.change_rows)
            elif point is not None:  # a round that brings its own change point: the pipeline's start
                changed = state.blocks.get(point.block_id)
                adaptation = Adaptation(block_id=point.block_id, row=point.row, signal=point.signal,
                                        seq=changed.seq if changed else 0, rounds=1,
                                        rows_at_last_round=event.change_rows)
            started = state.blocks.get(event.block_id)
            return _state(state, version=version, last_event_at=at, round=round_, retrain_pending=False,
                          adaptation=adaptation,
                          last_round_seq=started.seq if started else state.last_round_seq,
                          counters=_counters(c, rounds=c.rounds + 1))
        case CandidateTrained():
            record = _new_model(
                version=event.model_version, strategy=event.strategy, artifact=event.artifact,
                parent=event.parent_version, training_blocks=event.training_blocks, round_id=event.round_id,
                trained_at=event.occurred_at, seconds=event.seconds, code_version=event.code_version,
                calibration=event.calibration.artifact if event.calibration is not None else None,
            )
            round_ = state.round
            if round_ is not None and round_.round_id == event.round_id:
                round_ = _round(round_, candidates=round_.candidates + (event.model_version,))
            return _state(state, version=version, last_event_at=at,
                          models=state.models.set(event.model_version, record), round=round_,
                          counters=_counters(c, candidates=c.candidates + 1))
        case ChallengerEvaluated(model_version=model_version, metrics=metrics):
            record = state.models.get(model_version)
            if record is None:
                return _state(state, version=version, last_event_at=at)
            return _state(state, version=version, last_event_at=at,
                          models=state.models.set(model_version, _model(record, holdout_metrics=metrics)))
        case RetrainFailed(round_id=round_id, strategy=strategy):
            round_ = state.round
            if round_ is not None and round_.round_id == round_id:
                round_ = _round(round_, failures=round_.failures + (strategy,))
            return _state(state, version=version, last_event_at=at, round=round_,
                          counters=_counters(c, failures=c.failures + 1))
        case ModelPromoted():
            return promote(_state(state, version=version, last_event_at=at), event)
        case ChallengerRejected(model_versions=versions, round_id=round_id):
            models = state.models
            for v in versions:
                if v in models:
                    models = models.set(v, _model(models[v], status="rejected"))
            adaptation = state.adaptation
            if (state.round is not None and state.round.round_id == round_id and state.round.trigger == "adapt"
                    and state.round.change_block == adaptation.block_id):
                adaptation = _adaptation(adaptation, settled=True)  # more rows of this concept did not help
            return _state(
                state, version=version, last_event_at=at, models=models, adaptation=adaptation,
                round=None if state.round and state.round.round_id == round_id else state.round,
                circuit=after_round(state.circuit, succeeded=bool(versions)),
                counters=_counters(c, challenger_rejections=c.challenger_rejections + 1),
            )
        case CircuitOpened(until=until, failures=failures):
            return _state(state, version=version, last_event_at=at,
                          circuit=_circuit(state.circuit, open=True, until=until, consecutive_failures=failures,
                                           openings=state.circuit.openings + 1))
        case CircuitClosed(reason=reason):
            return _state(state, version=version, last_event_at=at, circuit=Circuit(last_reason=reason))
        case ModelRolledBack(from_version=old, to_version=new):
            models = state.models
            if old in models:
                models = models.set(old, _model(models[old], status="retired"))
            if new in models:
                models = models.set(new, _model(models[new], status="champion"))
            return _state(state, version=version, last_event_at=at, models=models, champion=new,
                          last_check_drifted=None, concept_state=None, counters=_counters(c, rollbacks=c.rollbacks + 1))
        case ArtifactsPruned(model_versions=versions):
            models = state.models
            for v in versions:
                if v in models:
                    models = models.set(v, _model(models[v], pruned=True))
            return _state(state, version=version, last_event_at=at, models=models)
        case _:
            return _state(state, version=version, last_event_at=at)


def promote(state: PipelineState, event: ModelPromoted) -> PipelineState:
    models = state.models
    adaptation = state.adaptation
    if (event.strategy == "reuse" and state.round is not None and state.round.round_id == event.round_id
            and state.round.change_block == adaptation.block_id):
        adaptation = _adaptation(adaptation, settled=True)  # a model of this concept came back: adapted
    if state.champion and state.champion in models:
        models = models.set(state.champion, _model(models[state.champion], status="retired"))
    record = models.get(event.model_version)
    if record is not None:
        models = models.set(event.model_version, _model(
            record, status="champion", promoted_metrics=event.metrics, promoted_at=event.occurred_at))
    if state.round is not None:  # the other candidates of the round lost
        for v in state.round.candidates:
            if v != event.model_version and v in models and models[v].status == "candidate":
                models = models.set(v, _model(models[v], status="rejected"))
    closing = state.round is not None and state.round.round_id == event.round_id
    first_training = state.first_training
    if state.champion is None and not first_training:
        first_training = tuple(dict.fromkeys(
            (state.round.training_blocks if closing else ()) + (record.training_blocks if record else ())))
    c = state.counters
    return _state(
        state, models=models, champion=event.model_version, first_training=first_training, adaptation=adaptation,
        round=None if closing else state.round,
        circuit=after_round(state.circuit, succeeded=True) if closing else state.circuit,
        last_check_drifted=None, concept_state=None,  # a new champion starts a fresh error stream
        counters=_counters(c, promotions=c.promotions + 1),
    )


def after_round(circuit: Circuit, succeeded: bool) -> Circuit:
    """A round that produced a candidate resets the failure count; one that produced none adds to it."""
    if succeeded:
        return _circuit(circuit, consecutive_failures=0)
    return _circuit(circuit, consecutive_failures=circuit.consecutive_failures + 1)


def replay(events: Iterable[Event], state: PipelineState | None = None) -> PipelineState:
    """Fold events into a state: `replay(a + b) == replay(b, replay(a))`."""
    return reduce(evolve, events, state if state is not None else PipelineState.initial())
