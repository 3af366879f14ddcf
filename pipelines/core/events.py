"""The event catalog: every fact a pipeline can record, as frozen dataclasses named in the past tense.

Events are the only source of truth: `PipelineState` is a fold over them, and the UI, the replay CLI and
the audit read nothing else. Rules (see docs/events.md):

- fields are JSON-able only (str, int, float, bool, None, tuples, nested frozen dataclasses, JSON objects);
  data and models are referenced by `Artifact` (sha256), never embedded;
- the stored type name is the class name and never changes; a changed shape bumps `SCHEMA_VERSION` and
  ships an upcaster;
- times (`occurred_at`) come from the caller; pure code never reads the clock.

>>> e = BlockRejected(file="a.csv", sha256="0" * 64, reason_code="empty_file", message="a.csv is empty")
>>> e.reason_code
'empty_file'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from pipelines.core.schema import ColumnSchema
from pipelines.drift.results import (
    ConceptDrift,
    EstimatedDrift,
    FeatureDrift,
    MultivariateDrift,
    PerformanceDrift,
)

JSON = dict[str, Any]

frozen = dataclass(frozen=True, kw_only=True, slots=True)


@frozen
class Artifact:
    """A content-addressed file in the artifact store (a block's rows as Parquet, or a fitted model)."""

    sha256: str
    kind: str  # "frame" | "model"
    size: int
    format: str = ""  # "parquet" | "skops" | "pickle"


@frozen
class Event:
    """Base of every event: `occurred_at` is when the fact happened (ISO-8601 UTC), given by the caller."""

    SCHEMA_VERSION: ClassVar[int] = 1
    occurred_at: str = ""


# --- configuration -------------------------------------------------------------------------------


@frozen
class PipelineRegistered(Event):
    """A pipeline was declared: its validated config is recorded in full, with its hash."""

    name: str
    config_sha256: str
    config: JSON


@frozen
class ConfigChanged(Event):
    """The config file changed; `diff` lists the keys that changed (old and new values)."""

    config_sha256: str
    config: JSON
    diff: tuple[ConfigDiffEntry, ...]


@frozen
class ConfigDiffEntry:
    """One changed config key, with its old and new values as JSON text ("null" when absent)."""

    key: str
    old: str
    new: str


@frozen
class SchemaFixed(Event):
    """The pipeline's feature schema was fixed (from the config, or inferred from the first accepted block)."""

    schema: ColumnSchema
    block_id: str | None = None


# --- intake --------------------------------------------------------------------------------------


@frozen
class BlockArrived(Event):
    """A block passed validation; its rows are stored as an artifact. `sha256` is the source file's hash."""

    block_id: str
    file: str
    sha256: str
    rows: int
    labelled: bool
    artifact: Artifact
    ignored_columns: tuple[str, ...] = ()


@frozen
class BlockRejected(Event):
    """A file (or a block of it) was refused; nothing else changed. `reason_code` is stable, `message` human."""

    file: str
    sha256: str
    reason_code: str
    message: str
    block_id: str | None = None


@frozen
class LabelsArrived(Event):
    """Labels for a block that arrived without them (a labels file, any time after the block): validated,
    joined to the block's rows by `key` (`[labels] key`) and stored as an artifact of the key and the target.
    From here on the block counts as labelled (it can be scored, trained on, held out)."""

    block_id: str
    file: str
    sha256: str  # the labels file's hash
    rows: int
    artifact: Artifact
    key: str


# --- monitoring ----------------------------------------------------------------------------------


@frozen
class PerformanceMeasured(Event):
    """The champion was scored on a labelled block before it learned from it (prequential evaluation)."""

    block_id: str
    model_version: str
    metrics: dict[str, float]


@frozen
class PerformanceEstimated(Event):
    """The champion's metrics on a block estimated without its labels (`method` "cbpe": confidence-based
    performance estimation from the probabilities calibrated at promotion), each with its 95% interval (the
    sampling error of the block's size). Recorded for every block the champion checks, labelled or not."""

    block_id: str
    version: str  # the champion that served the block
    metrics: dict[str, float]
    interval: dict[str, tuple[float, float]]
    method: str = "cbpe"
    rows: int = 0
    calibration_sha256: str = ""  # the calibration the estimate used


@frozen
class LabelsChecked(Event):
    """A block's late labels were checked: the champion that served the block scored on them
    (`PerformanceMeasured` comes first) and, when it still serves, its errors fed to the concept detector and
    its score compared with promotion. `DriftDetected` follows when `drifted`, as after a `DriftChecked`."""

    block_id: str
    model_version: str
    drifted: bool
    reasons: tuple[str, ...]
    concept: ConceptDrift | None = None
    performance: PerformanceDrift | None = None
    change_point: ChangePoint | None = None
    note: str = ""  # why no signal was computed (the model that served the block no longer serves)


@frozen
class ChangePoint:
    """Where a change most likely began: a row of a block (its position among the block's rows), and the
    signal that placed it ("concept": the error detector's evidence, split by `drift.concept.change_row`;
    "performance", "data": the first row of the first block that showed it)."""

    block_id: str
    row: int
    signal: str

    def __str__(self) -> str:
        """How every reader shows it: "b7 row 120 (concept)"."""
        return f"{self.block_id} row {self.row} ({self.signal})"


@frozen
class DriftChecked(Event):
    """A block was compared with the reference; per-feature results ranked by effect, plus global tests."""

    block_id: str
    drifted: bool
    reasons: tuple[str, ...]
    features: tuple[FeatureDrift, ...]
    multivariate: MultivariateDrift | None = None
    concept: ConceptDrift | None = None
    performance: PerformanceDrift | None = None
    reference_blocks: tuple[str, ...] = ()
    estimated: EstimatedDrift | None = None  # the estimated metric against promotion (no labels needed)
    change_point: ChangePoint | None = None  # where the change this check saw began (None: no change seen)


@frozen
class DriftDetected(Event):
    """The drift check of a block concluded that it drifted, for the reasons given in words.

    `signals` names what fired ("performance", "concept", "data"); `starts_round` is the `[retrain] trigger`
    decision, recorded: False means a warning only (a signal not configured to start a round, or within the
    cooldown), and `held_back` says why in words."""

    block_id: str
    reasons: tuple[str, ...]
    signals: tuple[str, ...] = ()
    starts_round: bool = True
    held_back: str = ""
    change_point: ChangePoint | None = None


# --- retraining ----------------------------------------------------------------------------------


@frozen
class RetrainRequested(Event):
    """A retraining round started: which strategies, on which blocks, scored on which holdout rows."""

    round_id: str
    block_id: str
    strategies: tuple[str, ...]
    training_blocks: tuple[str, ...]
    holdout_blocks: tuple[str, ...]
    holdout: str  # a precise description of the holdout rows
    seed: int
    trial: bool = False  # a half-open circuit's trial round
    trigger: str = "drift"  # "initial" (first model) | "drift" | "adapt" (more rows of the new concept arrived)
    new_blocks: tuple[str, ...] = ()  # labelled blocks the champion had not seen (the holdout is cut from them)
    reasons: tuple[str, ...] = ()  # why, in words: the drift that called for it, or the first model's blocks
    change_point: ChangePoint | None = None  # the change the round adapts to (`since_change` learns after it)
    change_rows: int = 0  # labelled rows after the change point when the round started (drives "adapt" rounds)
    recent_blocks: tuple[str, ...] = ()  # labelled blocks since the previous round (`replay_mix`'s new rows)
    reuse: tuple[str, ...] = ()  # past champions scored on the holdout as `reuse` candidates


@frozen
class Calibration:
    """A classifier's probability calibration, fitted on its round's holdout and stored as an artifact (a
    scikit-learn `CalibratedClassifierCV` around the frozen model, hash-checked on load like every artifact).
    `ece` is the expected calibration error of the calibrated probabilities (out of fold), `ece_uncalibrated`
    the model's own on the same rows: how far its probabilities can be read as frequencies."""

    artifact: Artifact
    method: str  # "isotonic" | "sigmoid"
    rows: int
    ece: float | None = None
    ece_uncalibrated: float | None = None


@frozen
class CandidateTrained(Event):
    """A candidate model was fitted and stored; this is its registry entry (lineage, artifact, code)."""

    round_id: str
    model_version: str
    strategy: str
    artifact: Artifact
    sha256: str
    training_blocks: tuple[str, ...]
    seconds: float
    parent_version: str | None = None
    rows: int = 0
    seed: int = 0
    params: JSON = field(default_factory=dict)
    code_version: str = ""
    notes: tuple[str, ...] = ()
    calibration: Calibration | None = None  # fitted on the round's holdout (classifiers with probabilities)


@frozen
class ChallengerEvaluated(Event):
    """A candidate and the champion were scored on the same holdout rows."""

    round_id: str
    model_version: str
    metrics: dict[str, float]
    champion_metrics: dict[str, float]


@frozen
class ModelPromoted(Event):
    """A model became the champion, by the promotion rule (or as the pipeline's first model)."""

    model_version: str
    previous_version: str | None
    strategy: str
    reason: str
    metrics: dict[str, float]
    round_id: str | None = None
    calibration: Calibration | None = None  # the promoted candidate's: what its estimates will read


@frozen
class ChallengerRejected(Event):
    """No candidate of the round was good enough; `reason` carries the numbers."""

    round_id: str
    model_versions: tuple[str, ...]
    reason: str


@frozen
class RetrainFailed(Event):
    """A strategy of a round failed, timed out or was skipped; the other strategies still count."""

    round_id: str
    strategy: str
    error: str
    skipped: bool = False


@frozen
class StrategyResult:
    """One strategy of a finished round, as `ModelRetrained` summarises it."""

    strategy: str
    outcome: str  # "trained" | "skipped" | "failed"
    model_version: str | None = None
    metric: float | None = None  # the candidate's primary metric on the holdout (trained only)
    error: str | None = None  # why it failed or was skipped


@frozen
class ModelRetrained(Event):
    """A retraining round finished, whatever its outcome: the one fact that says what was retrained, why, how
    long it took and what came of it. It adds no decision: it restates the round's own events
    (`RetrainRequested`, `CandidateTrained`, `ChallengerEvaluated`, `RetrainFailed`, then `ModelPromoted` or
    `ChallengerRejected`) in one place, and always agrees with them."""

    round_id: str
    trigger: str  # "initial" | "drift"
    trigger_block: str
    reasons: tuple[str, ...]
    strategies: tuple[StrategyResult, ...]
    metric: str  # the metric promotion ranks by
    best_version: str | None  # the best candidate on the holdout (None when none trained)
    best_metric: float | None
    champion_version: str | None  # the champion the round ran against (None for the first model)
    champion_metric: float | None  # its score on the same holdout rows
    outcome: str  # "promoted" | "rejected" | "failed"
    promoted_version: str | None
    reason: str  # the promotion rule's words (or why every strategy failed)
    seconds: float  # wall time from RetrainRequested to the round's end


# --- operations ----------------------------------------------------------------------------------


@frozen
class CircuitOpened(Event):
    """Too many failed rounds in a row: retraining pauses until `until` (ingestion and checks go on)."""

    until: str
    failures: int
    backoff_seconds: float


@frozen
class CircuitClosed(Event):
    """Retraining may run again (a trial round succeeded, or an operator resumed it)."""

    reason: str


@frozen
class ModelRolledBack(Event):
    """An operator made an earlier version the champion again; the reference follows it."""

    from_version: str
    to_version: str
    reason: str
    forced: bool = False  # the target had never been the champion (`rollback --force`)


@frozen
class ArtifactsPruned(Event):
    """The model files of old rejected candidates were deleted (`[retrain] retain_rejected`); their events stay,
    so their lineage and scores remain explainable, but they can no longer be loaded or rolled back to."""

    model_versions: tuple[str, ...]
    sha256s: tuple[str, ...]
    reason: str


@frozen
class PipelinePassivated(Event):
    """The pipeline's actor had no work for `idle_seconds` and stopped, to be started again by the next file,
    labels file or round (docs/ARCHITECTURE.md, "Activation and passivation"). Nothing was pending: no round in
    flight, no block waiting for its check. `snapshot_version` is the snapshot it left (0: none needed), and
    `config_sha256` lets a restarted `serve` keep it stopped when its config has not changed."""

    idle_seconds: float
    config_sha256: str
    snapshot_version: int = 0


@frozen
class PipelineActivated(Event):
    """A stopped (passivated) pipeline's actor was started again, and why: the work that woke it."""

    reason: str


ALL_EVENTS: tuple[type[Event], ...] = (
    PipelineRegistered,
    ConfigChanged,
    SchemaFixed,
    BlockArrived,
    BlockRejected,
    PerformanceMeasured,
    DriftChecked,
    DriftDetected,
    LabelsArrived,
    PerformanceEstimated,
    LabelsChecked,
    RetrainRequested,
    CandidateTrained,
    ChallengerEvaluated,
    ModelPromoted,
    ChallengerRejected,
    RetrainFailed,
    CircuitOpened,
    CircuitClosed,
    ModelRolledBack,
    ArtifactsPruned,
    ModelRetrained,
    PipelinePassivated,
    PipelineActivated,
)


# --- alert delivery (stream `alerts`, written by the dispatcher, never by a pipeline) ---------------


@frozen
class AlertDelivered(Event):
    """A sink accepted an alert about the event at `position` (or a digest of `digest_of` held-back alerts).

    Recorded in the `alerts` stream, so no pipeline's fold or version sees it. `sink` is the sink's name,
    never its URL or headers (they may hold secrets); `status` is the HTTP status or the command's exit code."""

    sink: str
    sink_kind: str  # "webhook" | "command" | "file"
    pipeline: str
    event_type: str  # the alerted event's type
    position: int  # the alerted event's position (a digest: the last alert it stands for)
    dedup_key: str  # what the receiver saw: the same on every repeat
    attempts: int
    status: int | None = None
    digest_of: int = 0  # a digest: how many held-back alerts it stands for (0: a single alert)


@frozen
class AlertFailed(Event):
    """A sink did not accept an alert after `attempts` tries; `error` says what it answered, or why not."""

    sink: str
    sink_kind: str
    pipeline: str
    event_type: str
    position: int
    dedup_key: str
    attempts: int
    error: str
    status: int | None = None
    digest_of: int = 0


# The dispatcher's facts, registered in the log's codec beside ALL_EVENTS (the pipelines' own facts).
ALERT_OUTCOMES: tuple[type[Event], ...] = (AlertDelivered, AlertFailed)
