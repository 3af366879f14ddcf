"""`PipelineActor`: the thin shell that owns one pipeline (load, decide, append, evolve).

It is a plain class. `spawn_actor` wraps it with `ray.remote(...)` (a named actor, `max_restarts=-1`), and the
constructor rebuilds the state by replaying the pipeline's stream, which is how a restarted actor recovers.
Heavy work leaves the actor: retraining strategies and the multivariate test run as Ray tasks that get ids,
paths and object refs; their results come back as commands and go through `decide` like everything else.

The per-block flow (docs/ARCHITECTURE.md): intake and validation -> `BlockArrived` (or `BlockRejected`) ->
(no model yet) the initial round once `[training] initial_blocks` labelled blocks arrived -> for each block
with a champion: `PerformanceMeasured` (labelled) and `DriftChecked` -> on drift, a retraining round.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import ray

from calmops_actors import __version__
from calmops_actors.artifact_refs import artifact_for, ref_for
from calmops_actors.artifacts import ArtifactStore
from calmops_actors.clock import now_iso
from calmops_actors.drift_tasks import multivariate_task
from calmops_actors.home import Home, stream_id
from calmops_actors.hooks import load_preprocess
from calmops_actors.readlog import cached_state
from calmops_actors.training_tasks import (
    CalibrationResult,
    CandidateResult,
    await_round,
    champion_blob,
    launch_round,
    put_material,
    score_model_task,
    score_reused_task,
    stored_calibration,
    task_options,
)
from calmops_actors.writes import record
from eventstore import ConcurrencyError
from pipelines.config.pipeline import (
    ConfigError,
    PipelineConfig,
    config_from_dict,
    config_sha256,
    config_to_dict,
)
from pipelines.core.decide import (
    AcceptFile,
    AcceptLabels,
    Activate,
    BlockLabels,
    Command,
    CommandRejected,
    NewBlock,
    Passivate,
    PruneArtifacts,
    RecordDriftCheck,
    RecordEstimate,
    RecordLabelsCheck,
    RecordPerformance,
    RecordRoundOutcome,
    RegisterPipeline,
    RejectFile,
    RequestRetrain,
    ResumeRetraining,
    Rollback,
    StrategyOutcome,
    file_seen,
)
from pipelines.core.events import Calibration, ChangePoint, Event
from pipelines.core.intake import IntakeRules, Rejected, display_name, parse_file
from pipelines.core.rounds import RoundPlan, first_labelled, plan_round, reusable
from pipelines.core.state import PipelineState, evolve
from pipelines.drift.block_check import assess_block, assess_labels
from pipelines.drift.features import fit_reference
from pipelines.estimation.late_labels import LabelRules, join_labels, parse_labels
from pipelines.replay import snapshot
from pipelines.replay.fold import fold
from pipelines.retraining.material import LabelledBlock
from pipelines.retraining.models import ModelSpec, ModelSpecError, build_estimator
from pipelines.retraining.strategies import build_round, fallback_to_run

log = logging.getLogger("calmops.actor")

# how long one `poll` under `serve` may spend checking waiting blocks before it answers (the supervisor polls
# every pipeline in turn; the rest of a backlog is checked by the next polls)
POLL_BUDGET_SECONDS = 2.0
# a snapshot of the folded state is saved every this many events, so a (re)started actor folds a short tail
# (benchmarks/README.md, "Activation"); and on passivation once the tail is this long
SNAPSHOT_EVERY = 10_000
SNAPSHOT_ON_PASSIVATION = 200



@dataclass
class InFlightRound:
    """The Ray side of a round in flight (object refs live only in this process; the log has the rest)."""

    round_id: str
    strategies: list[str]
    refs: list[Any]
    champion_ref: Any | None
    started: float
    material_refs: Any
    holdout_ref: Any
    champion_blob: Any
    seed: int
    reuse_refs: dict[str, Any] | None = None  # past champion version -> its holdout scoring task


class PipelineActor:
    """Owns one pipeline's stream: every method is load, decide, append (expected version), evolve."""

    def __init__(self, home: str, name: str, config_dir: str | None = None) -> None:
        self.home = Home(Path(home)).create()
        self.name = name
        self.stream = stream_id(name)
        self.store = self.home.open_store()
        self.artifacts = ArtifactStore(self.home.artifacts)
        self.snapshot_version = 0
        self.state = self.load()
        self.last_work = time.monotonic()  # when this actor last had work (`serve` passivates it when idle)
        self.config: PipelineConfig | None = (
            config_from_dict(self.state.config, "<log>") if self.state.config else None)
        self.config_dir = Path(config_dir) if config_dir else None
        self.preprocess = None
        self.hook_error: str | None = None
        self.load_hook()
        self.inflight: InFlightRound | None = None
        self.references: dict[tuple[str, ...], Any] = {}
        self.reference_frames: dict[tuple[str, ...], pd.DataFrame] = {}
        self.models: dict[str, Any] = {}
        self.calibrators: dict[str, Any] = {}
        self.recovered = False  # `recover` runs once per process, before its first ingest or poll
        # blocks waiting for their drift check, oldest first: `state.pending_blocks()` read once by `recover`,
        # then kept up to date here so a block does not cost a scan of every block (checked ones are skipped)
        self.waiting: deque[str] = deque()

    # -- load / append ----------------------------------------------------------------------------

    def load(self) -> PipelineState:
        """Replay the stream: the only way state is built (at start, and after Ray restarts the actor). From the
        stream's snapshot when one fits this code (`replay.snapshot`: a cache; one that cannot be read, or was
        written by other code, is ignored and the whole log folded)."""
        decode = self.store.codec.decode_stored
        base = cached_state(self.store, self.stream)
        self.snapshot_version = base.version if base is not None else 0
        return fold((decode(r) for r in self.store.iter_stored(self.stream, after_version=self.snapshot_version)),
                    base)

    def save_snapshot(self) -> int:
        """Cache the folded state as the stream's snapshot (replacing the older one); returns its version."""
        if self.state.version == 0:
            return 0
        self.store.save_snapshot(self.stream, self.state.version, snapshot.to_dict(self.state), snapshot.SCHEMA)
        self.snapshot_version = self.state.version
        return self.snapshot_version

    def execute(self, cmd: Command, key: str | None = None) -> tuple[Event, ...]:
        """decide -> append with the expected version (and an idempotency key) -> evolve."""
        for _attempt in range(3):
            try:
                events = record(self.store, self.stream, self.state, cmd, key)
            except ConcurrencyError:
                self.state = self.load()  # someone else appended (a zombie twin after a restart): catch up
                continue
            for event in events:
                self.state = evolve(self.state, event)
            if events and self.state.version - self.snapshot_version >= SNAPSHOT_EVERY:
                self.save_snapshot()
            return events
        raise RuntimeError(f"pipeline {self.name}: could not append after 3 concurrent retries")

    # -- configuration ----------------------------------------------------------------------------

    def configure(self, config: dict[str, Any], config_dir: str) -> dict[str, Any]:
        """Register the pipeline, or record `ConfigChanged` when the config differs from the log's."""
        parsed = config_from_dict(config, f"{config_dir}/{config.get('name')}.toml")
        if parsed.name != self.name:
            raise ConfigError("<config>", "name", f"is {parsed.name!r}, but this actor owns {self.name!r}")
        try:  # a class that cannot be imported or cannot train is a config error now, not a failed round later
            build_estimator(ModelSpec(parsed.model.class_path, parsed.model.params))
        except ModelSpecError as err:
            raise ConfigError(f"{config_dir}/{config.get('name')}.toml", None, str(err)) from None
        self.preprocess = (load_preprocess(parsed.preprocess, Path(config_dir), f"{parsed.name} config")
                           if parsed.preprocess else None)
        self.hook_error = None
        events = self.execute(RegisterPipeline(name=parsed.name, config=config_to_dict(parsed),
                                               config_sha256=config_sha256(parsed), occurred_at=now_iso()))
        self.config = parsed
        self.config_dir = Path(config_dir)
        return {"pipeline": self.name, "recorded": [type(e).__name__ for e in events]}

    def load_hook(self) -> None:
        """Rebuild the `preprocess` hook of the config in the log, from the config folder the actor was started
        with: a restarted actor treats files exactly as the one it replaces. When it cannot be loaded, the
        actor takes no file until `configure` succeeds (`hook_error` says why); it never ingests without it."""
        spec = self.config.preprocess if self.config is not None else None
        if not spec:
            return
        if self.config_dir is None:
            self.hook_error = (f"pipeline {self.name}: its preprocess hook {spec!r} is not loaded (this actor was "
                               "started without its config folder); configure the pipeline again")
            return
        try:
            self.preprocess = load_preprocess(spec, self.config_dir, f"{self.name} config")
        except ConfigError as err:
            self.hook_error = f"pipeline {self.name}: {err}"
            log.error("%s", self.hook_error)

    # -- intake -----------------------------------------------------------------------------------

    def ingest(self, path: str, await_rounds: bool = False) -> dict[str, Any]:
        """Read one file and record what became of it; with `await_rounds`, finish each round before going on."""
        try:
            return self.ingest_file(path, await_rounds)
        finally:
            self.last_work = time.monotonic()  # idle time counts from the end of the work, not its start

    def ingest_file(self, path: str, await_rounds: bool) -> dict[str, Any]:
        if self.config is None:
            raise RuntimeError(f"pipeline {self.name} is not configured")
        self.last_work = time.monotonic()
        if self.config.preprocess and self.preprocess is None:  # never ingest raw what the hook should treat
            return {"file": display_name(Path(path).name), "outcome": "unreadable",
                    "message": self.hook_error or f"pipeline {self.name}: preprocess hook not loaded"}
        self.recover(await_rounds)
        file = Path(path)
        name = display_name(file.name)  # events and output get it: valid UTF-8, printable, one line, bounded
        try:
            size = file.stat().st_size
            if size > self.config.intake.max_file_mb * 1024 * 1024:
                data = b""
                sha = hashlib.sha256(f"{name}:{size}:{file.stat().st_mtime_ns}".encode()).hexdigest()
                return self.reject(name, sha, "file_too_large",
                                   f"{name}: {size / 1e6:.1f} MB is over the limit of "
                                   f"{self.config.intake.max_file_mb} MB ([intake] max_file_mb)")
            data = file.read_bytes()
        except OSError as err:
            return {"file": name, "outcome": "unreadable", "message": f"{name}: {err.strerror}"}
        sha = hashlib.sha256(data).hexdigest()
        if file_seen(self.state, sha):  # the one rule `decide` applies too
            return {"file": name, "outcome": "duplicate", "sha256": sha}
        intake = parse_file(file.name, data, self.intake_rules())  # the real name: its block id is checked
        del data  # the file's bytes (about 0.8x the frame for CSV) are not needed past parsing
        if not intake.accepted:
            return self.reject(name, sha, intake.reason_code, intake.message)
        blocks = tuple(
            NewBlock(block_id=b.block_id, rows=b.rows, labelled=b.labelled,
                     artifact=artifact_for(self.artifacts.put_frame(b.frame)), ignored_columns=intake.ignored_columns)
            for b in intake.blocks)
        events = self.execute(AcceptFile(file=name, sha256=sha, blocks=blocks, schema=intake.schema,
                                         occurred_at=now_iso()), key=f"accept:{sha}")
        arrived = [e.block_id for e in events if type(e).__name__ == "BlockArrived"]
        rejected = [e for e in events if type(e).__name__ == "BlockRejected"]
        if rejected:
            self.drop_unreferenced(blocks)
            return {"file": name, "outcome": "rejected", "reason_code": rejected[0].reason_code,
                    "message": rejected[0].message}
        self.waiting.extend(arrived)
        self.check_waiting(await_rounds, frames={b.block_id: b.frame for b in intake.blocks})
        return {"file": name, "outcome": "accepted", "blocks": arrived}

    def ingest_labels(self, path: str, await_rounds: bool = False) -> dict[str, Any]:
        """Read one labels file (labels for blocks that arrived without them), join it to its blocks and record
        `LabelsArrived`; then check each block's labels against the model that served it (`LabelsChecked`), and
        start the round the rules call for. Refused whole, with a reason, like a block file."""
        try:
            return self.ingest_labels_file(path, await_rounds)
        finally:
            self.last_work = time.monotonic()

    def ingest_labels_file(self, path: str, await_rounds: bool) -> dict[str, Any]:
        if self.config is None:
            raise RuntimeError(f"pipeline {self.name} is not configured")
        self.last_work = time.monotonic()
        self.recover(await_rounds)
        file = Path(path)
        name = display_name(file.name)
        c = self.config
        try:
            size = file.stat().st_size
            if size > c.intake.max_file_mb * 1024 * 1024:
                sha = hashlib.sha256(f"{name}:{size}:{file.stat().st_mtime_ns}".encode()).hexdigest()
                return self.reject(name, sha, "file_too_large", f"{name}: {size / 1e6:.1f} MB is over the limit of "
                                   f"{c.intake.max_file_mb} MB ([intake] max_file_mb)")
            data = file.read_bytes()
        except OSError as err:
            return {"file": name, "outcome": "unreadable", "message": f"{name}: {err.strerror}"}
        sha = hashlib.sha256(data).hexdigest()
        if file_seen(self.state, sha):
            return {"file": name, "outcome": "duplicate", "sha256": sha}
        key = c.labels.key
        if key is None:
            return self.reject(name, sha, "labels_without_key", (
                f"{name}: a labels file, but the pipeline has no row key to join labels by; set [labels] key = "
                "\"<column>\" in its config (blocks that arrive from then on must carry that column)"))
        target = self.state.schema.target if self.state.schema else c.target
        parsed = parse_labels(file.name, data, LabelRules(
            key=key, target=target, block_col=c.block_col, formats=tuple(c.formats),
            max_file_mb=c.intake.max_file_mb, max_rows=c.intake.max_rows))
        del data
        if not parsed.accepted:
            return self.reject(name, sha, parsed.reason_code, parsed.message)
        labelled = []
        for rows in parsed.blocks:
            block = self.state.blocks.get(rows.block_id)
            if block is None:
                return self.reject(name, sha, "unknown_block", f"{name}: labels for block {rows.block_id!r}, which "
                                   f"pipeline {self.name} never received; send the block first")
            if block.labelled:
                return self.reject(name, sha, "already_labelled", f"{name}: block {rows.block_id!r} has its labels "
                                   "already; a block is labelled once")
            try:
                join_labels(self.artifacts.get_frame(ref_for(block.artifact)), rows.frame, key, target)
            except Rejected as r:
                return self.reject(name, sha, r.code, f"{name}: block {rows.block_id!r}: {r.message}")
            labelled.append(BlockLabels(block_id=rows.block_id, rows=len(rows.frame),
                                        artifact=artifact_for(self.artifacts.put_frame(rows.frame))))
        events = self.execute(AcceptLabels(file=name, sha256=sha, key=key, blocks=tuple(labelled),
                                           occurred_at=now_iso()), key=f"labels:{sha}")
        refused = [e for e in events if type(e).__name__ == "BlockRejected"]
        if refused:
            return {"file": name, "outcome": "rejected", "reason_code": refused[0].reason_code,
                    "message": refused[0].message}
        arrived = [e.block_id for e in events if type(e).__name__ == "LabelsArrived"]
        for block_id in arrived:
            self.check_labels(block_id, await_rounds)
        return {"file": name, "outcome": "accepted", "labels_for": arrived}

    def check_labels(self, block_id: str, await_rounds: bool) -> None:
        """Score the model that served a block on its late labels and check them (`assess_labels`, once per
        block: `decide` records nothing for a block already scored); then the round the rules call for."""
        block = self.state.blocks.get(block_id)
        if block is None or block.labels is None or block.metrics is not None or block.served_by is None:
            return  # not checked yet: its drift check will score it with its labels
        served = self.state.models[block.served_by]
        still = served.version == self.state.champion
        check = assess_labels(self.frame(block_id), model=self.model(served.version), still_serves=still,
                              promoted_metrics=served.promoted_metrics, concept_state=self.state.concept_state,
                              config=self.config, schema=self.state.schema)
        note = "" if still else (f"{served.version} served this block and no longer serves ({self.state.champion} "
                                 "does): measured, not a drift signal")
        self.execute(RecordLabelsCheck(block_id=block_id, model_version=served.version, metrics=check.metrics,
                                       assessment=check.assessment, occurred_at=now_iso(), note=note),
                     key=f"labels-check:{block_id}")
        if self.maybe_start_round(block_id) and await_rounds:
            self.finish_round()

    def drop_unreferenced(self, blocks: tuple[NewBlock, ...]) -> None:
        """A file's frames are stored before `decide` sees them (the command carries their hashes); when it rejects
        the file, the frames no accepted block shares are deleted, so a rejection leaves no orphan artifact."""
        kept = {b.artifact.sha256 for b in self.state.blocks.values()}
        for block in blocks:
            if block.artifact.sha256 not in kept:
                self.artifacts.delete(ref_for(block.artifact))

    def reject(self, file: str, sha: str, code: str, message: str) -> dict[str, Any]:
        self.execute(RejectFile(file=file, sha256=sha, reason_code=code, message=message, occurred_at=now_iso()))
        return {"file": file, "outcome": "rejected", "reason_code": code, "message": message}

    def intake_rules(self) -> IntakeRules:
        c = self.config
        return IntakeRules(
            target=c.target, formats=tuple(c.formats), block_col=c.block_col, features=c.features,
            categorical=c.categorical, schema=self.state.schema,
            labels_required=(self.state.champion is None
                             and len(first_labelled(self.state, c.training.initial_blocks)) < c.training.initial_blocks),
            max_file_mb=c.intake.max_file_mb, max_invalid_share=c.intake.max_invalid_share,
            max_columns=c.intake.max_columns, max_rows=c.intake.max_rows, preprocess=self.preprocess,
            label_key=c.labels.key)

    # -- monitoring -------------------------------------------------------------------------------

    def check_waiting(self, await_rounds: bool, frames: dict[str, pd.DataFrame] | None = None,
                      budget_seconds: float | None = None) -> None:
        """Check the blocks waiting for a champion or for their check, oldest first, each followed by the round
        the rules call for; start the first model's round once it is due.

        The same whatever the arrival timing: a backlog found at start, a burst during the first round and one
        file after another all give each block one check, against the champion serving when it runs (`run`
        awaits every round, so there that is the round's outcome). `budget_seconds` bounds the work of one
        call (`poll` under `serve`); the rest waits for the next call.
        """
        started = time.monotonic()
        while True:
            if self.state.champion is None:
                # the first model, once its blocks are here; `run` retries a failed one until the circuit opens
                while self.maybe_start_round(self.state.last_block) and await_rounds:
                    self.finish_round()
                    if self.state.champion is not None:
                        break
                if self.state.champion is None:
                    return
            if not self.waiting:
                self.maybe_start_round(self.state.last_block)  # drift found while a round was in flight
                if await_rounds:
                    self.finish_round()
                return
            if budget_seconds is not None and time.monotonic() - started > budget_seconds:
                return
            block_id = self.waiting[0]
            block = self.state.blocks.get(block_id)
            if block is not None and block.drifted is None and block_id not in self.state.first_training:
                frame = (frames or {}).get(block_id)
                self.monitor(block_id, frame if frame is not None else self.frame(block_id))
                self.maybe_start_round(block_id)
                if await_rounds:
                    self.finish_round()
            self.waiting.popleft()

    def monitor(self, block_id: str, frame: pd.DataFrame) -> None:
        """Check the block (`assess_block`, the check `audit` re-runs), then record the champion's score on a
        labelled block and the drift check (always)."""
        state = self.state
        champion = state.champion_record()
        block = state.blocks[block_id]
        ref_ids = self.reference_blocks(block_id)
        reference, reference_frame = self.reference(ref_ids)
        calibrator = self.calibrator(champion.version)
        check = assess_block(
            frame, seq=block.seq, labelled=block.labelled, reference=reference, reference_frame=reference_frame,
            champion_model=self.model(champion.version) if block.labelled else None,
            promoted_metrics=champion.promoted_metrics, concept_state=state.concept_state, config=self.config,
            schema=state.schema, multivariate_test=remote_multivariate,
            serving_model=self.model(champion.version) if calibrator is not None else None, calibrator=calibrator)
        if check.metrics is not None:
            self.execute(RecordPerformance(block_id=block_id, model_version=champion.version, metrics=check.metrics,
                                           occurred_at=now_iso()), key=f"perf:{block_id}")
        if check.estimate is not None:
            est = check.estimate
            self.execute(RecordEstimate(block_id=block_id, version=champion.version, metrics=est.metrics,
                                        interval=est.interval, rows=est.rows,
                                        calibration_sha256=champion.calibration.sha256, occurred_at=now_iso()),
                         key=f"estimate:{block_id}")
        self.execute(RecordDriftCheck(block_id=block_id, assessment=check.assessment, reference_blocks=ref_ids,
                                      occurred_at=now_iso()), key=f"drift:{block_id}")

    def reference_blocks(self, block_id: str) -> tuple[str, ...]:
        """Which blocks the drift check compares with (`[drift] reference`)."""
        d, state = self.config.drift, self.state
        if d.reference == "pinned" and d.pinned_blocks:
            pinned = tuple(b for b in d.pinned_blocks if b in state.blocks and b != block_id)
            if pinned:
                return pinned
        if d.reference == "last_blocks":
            seq = state.blocks[block_id].seq
            before = tuple(state.block_order[s] for s in range(max(1, seq - d.reference_blocks), seq))
            if before:
                return before
        return state.champion_record().training_blocks

    def reference(self, ids: tuple[str, ...]) -> tuple[Any, pd.DataFrame]:
        """The fitted reference, computed once per set of blocks and reused for every block."""
        if ids not in self.references:
            frame = pd.concat([self.frame(b) for b in ids], ignore_index=True)
            schema = self.state.schema
            self.references = {ids: fit_reference(frame, schema.numeric, schema.categorical, self.config.drift)}
            self.reference_frames = {ids: frame}
        return self.references[ids], self.reference_frames[ids]

    def frame(self, block_id: str) -> pd.DataFrame:
        """The block's rows as stored, with its late labels joined when it has them."""
        block = self.state.blocks[block_id]
        rows = self.artifacts.get_frame(ref_for(block.artifact))
        if block.labels is None:
            return rows
        labels = self.artifacts.get_frame(ref_for(block.labels))  # two columns: the row key and the target
        target = self.state.schema.target
        return join_labels(rows, labels, next(c for c in labels.columns if c != target), target)

    def model(self, version: str) -> Any:
        if version not in self.models:
            self.models = {version: self.artifacts.get_model(ref_for(self.state.models[version].artifact))}
        return self.models[version]

    def calibrator(self, version: str) -> Any | None:
        """The version's probability calibration (hash-checked on load); None when it has none or it cannot be
        loaded (its blocks then go unestimated, and the log says why)."""
        artifact = self.state.models[version].calibration
        if artifact is None:
            return None
        key = f"calibration:{artifact.sha256}"
        if key not in self.calibrators:
            try:
                self.calibrators = {key: self.artifacts.get_model(ref_for(artifact))}
            except Exception as err:  # a missing or tampered file: no estimate rather than a guess
                log.error("pipeline %s: calibration of %s not loaded: %s", self.name, version, err)
                self.calibrators = {key: None}
        return self.calibrators[key]

    # -- retraining -------------------------------------------------------------------------------

    def maybe_start_round(self, block_id: str | None) -> bool:
        """Start the round the rules call for after `block_id`'s check, if any; True when one was started."""
        plan = plan_round(self.state, self.config, block_id) if block_id is not None else None
        return plan is not None and self.start_round(plan)

    def start_round(self, plan: RoundPlan, reissue: bool = False) -> bool:
        """Cut the holdout, record `RetrainRequested`, and launch one Ray task per strategy; False when `decide`
        refused the round (one in flight already, or the circuit is open)."""
        c, schema = self.config, self.state.schema
        settings = self.round_settings(plan.trigger)
        blocks = [LabelledBlock(b, self.frame(b)) for b in plan.labelled_blocks]
        point = plan.change_point
        material, holdout, description = build_round(
            blocks, plan.new_blocks, settings, features=schema.features, categorical=schema.categorical,
            target=schema.target, task=c.task, change_point=(point.block_id, point.row) if point else None,
            recent_block_ids=plan.recent_blocks)
        holdout_blocks = tuple(s.block_id for s in description.spans)
        reuse = plan.reuse if reissue else (
            () if plan.trigger == "initial" else reusable(self.state, settings.reuse_champions, holdout_blocks))
        if not reissue:
            events = self.execute(RequestRetrain(
                round_id=plan.round_id, block_id=plan.block_id, strategies=plan.strategies,
                training_blocks=plan.labelled_blocks, holdout_blocks=holdout_blocks,
                holdout=str(description), seed=plan.seed, trigger=plan.trigger, new_blocks=plan.new_blocks,
                reasons=plan.reasons, change_point=point, change_rows=plan.change_rows,
                recent_blocks=plan.recent_blocks, reuse=reuse, occurred_at=now_iso()),
                key=f"round:{plan.round_id}:start")
            if not events:
                return False  # in flight already, or the circuit is open
        refs = put_material(material)
        holdout_ref = ray.put(holdout)
        champion = self.state.champion_record()
        blob = champion_blob(ref_for(champion.artifact) if champion else None, self.artifacts.root)
        tasks = launch_round(refs, holdout_ref, ModelSpec(c.model.class_path, c.model.params), settings, plan.seed,
                             champion=blob, artifact_root=self.artifacts.root, strategies=list(plan.strategies))
        champion_task = None
        if blob is not None:
            champion_task = score_model_task.options(**task_options()).remote(
                blob, holdout_ref, schema.features, schema.target, c.task)
        reuse_refs = {}
        for version in reuse:  # past champions: a prediction pass each, no training
            try:
                past = champion_blob(ref_for(self.state.models[version].artifact), self.artifacts.root)
            except Exception as err:  # a missing or tampered file: this candidate fails, the round goes on
                reuse_refs[version] = err
                continue
            reuse_refs[version] = score_reused_task.options(**task_options()).remote(
                past, holdout_ref, schema.features, schema.target, c.task, plan.seed)
        self.inflight = InFlightRound(round_id=plan.round_id, strategies=list(plan.strategies), refs=tasks,
                                      champion_ref=champion_task, started=time.monotonic(),
                                      material_refs=refs, holdout_ref=holdout_ref, champion_blob=blob,
                                      seed=plan.seed, reuse_refs=reuse_refs)
        return True

    def round_settings(self, trigger: str):
        c = self.config
        if trigger == "initial":  # the first model is scored on [training] holdout_fraction of its rows
            return replace(c.retrain, strategies=("full",), holdout_fraction=c.training.holdout_fraction,
                           holdout_blocks=None, fallback=None)
        return c.retrain

    def poll(self, wait_seconds: float = 0.0) -> dict[str, Any]:
        """Record the in-flight round's outcome if its tasks are done (or timed out), then check waiting blocks
        (for at most `POLL_BUDGET_SECONDS`) and start the next round if one is due: `serve`'s heartbeat."""
        self.recover(await_rounds=False)
        result = self.advance_round(wait_seconds)
        if self.waiting or result.get("done"):
            self.check_waiting(await_rounds=False, budget_seconds=POLL_BUDGET_SECONDS)
        if self.busy():
            self.last_work = time.monotonic()
        return result | {"idle_seconds": time.monotonic() - self.last_work, "busy": self.busy()}

    def busy(self) -> str:
        """Why this actor must stay up, in words ("" when nothing is pending): a round in flight (in this process
        or in the log), blocks waiting for their check."""
        if self.inflight is not None or self.state.round is not None:
            return "a round is in flight"
        if self.waiting and self.state.champion is not None:  # without a champion they wait for labelled blocks
            return f"{len(self.waiting)} block(s) wait for their check"
        return ""

    # -- lifecycle (serve) --------------------------------------------------------------------------

    def activate(self, reason: str) -> dict[str, Any]:
        """Record `PipelineActivated` when this actor replaces one that was passivated (the log's last fact is
        `PipelinePassivated`); a first start or a restart after a crash records nothing."""
        self.last_work = time.monotonic()
        last = self.store.read(self.stream, after_version=max(0, self.state.version - 1))
        if not last or last[-1].type != "PipelinePassivated":
            return {"pipeline": self.name, "recorded": []}
        events = self.execute(Activate(reason=reason, occurred_at=now_iso()))
        return {"pipeline": self.name, "recorded": [type(e).__name__ for e in events]}

    def passivate(self, idle_seconds: float, config_sha: str) -> dict[str, Any]:
        """Save a snapshot when the tail since the last one is long, record `PipelinePassivated`, and say so; the
        caller then stops this actor. Refused (ok False, with why) while anything is pending."""
        self.recover(await_rounds=False)
        why = self.busy()
        if why:
            return {"pipeline": self.name, "ok": False, "why": why}
        saved = self.save_snapshot() if self.state.version - self.snapshot_version >= SNAPSHOT_ON_PASSIVATION else 0
        try:
            events = self.execute(Passivate(idle_seconds=float(idle_seconds), config_sha256=config_sha,
                                            snapshot_version=saved, occurred_at=now_iso()))
        except CommandRejected as err:
            return {"pipeline": self.name, "ok": False, "why": str(err)}
        # the store stays open: the caller kills this process next, and a close here (SQLite's checkpoint of the
        # log's WAL as its last connection) cut short by that kill left a successor's appends unseen by readers
        return {"pipeline": self.name, "ok": True, "recorded": [type(e).__name__ for e in events],
                "snapshot_version": saved}

    def advance_round(self, wait_seconds: float) -> dict[str, Any]:
        """Record the in-flight round's outcome if its tasks are done (or timed out); re-issue a round the log
        has in flight and this process does not (after a restart)."""
        if self.inflight is None and self.state.round is not None:
            self.reissue_round()
        flight = self.inflight
        if flight is None:
            return {"pipeline": self.name, "round": None}
        timeout = self.round_settings(self.state.round.trigger).task_timeout_seconds
        elapsed = time.monotonic() - flight.started
        ready, _ = ray.wait(flight.refs, num_returns=len(flight.refs), timeout=max(0.0, wait_seconds))
        if len(ready) < len(flight.refs) and elapsed + wait_seconds < timeout:
            return {"pipeline": self.name, "round": flight.round_id, "done": False}
        self.record_round(flight, max(0.0, timeout - elapsed))
        return {"pipeline": self.name, "round": flight.round_id, "done": True}

    def finish_round(self) -> None:
        """Block until the round in flight (if any) is recorded: `run`'s deterministic mode."""
        while self.inflight is not None or self.state.round is not None:
            self.advance_round(wait_seconds=1.0)

    def record_round(self, flight: InFlightRound, remaining: float) -> None:
        self.last_work = time.monotonic()
        settings = self.round_settings(self.state.round.trigger)
        root = self.artifacts.root
        results = list(await_round(flight.refs, flight.strategies, remaining, seed=flight.seed, artifact_root=root))
        fallback = fallback_to_run({r.strategy: r.status for r in results}, settings)
        if fallback is not None:
            c = self.config
            extra = launch_round(flight.material_refs, flight.holdout_ref, ModelSpec(c.model.class_path,
                                 c.model.params), settings, flight.seed, champion=flight.champion_blob,
                                 artifact_root=root, strategies=[fallback])
            results += await_round(extra, [fallback], settings.task_timeout_seconds, seed=flight.seed,
                                   artifact_root=root)
        # past champions first: on a tie with a fresh candidate the proven model wins (ranking ties go to the
        # earlier version), and it costs no training
        outcomes = self.reuse_outcomes(flight, remaining) + [outcome_of(r) for r in results]
        champion_metrics: dict[str, float] = {}
        if flight.champion_ref is not None:
            try:
                champion_metrics = ray.get(flight.champion_ref, timeout=max(remaining, 60.0))
            except Exception as err:  # the champion could not be scored: no promotion on a guess
                log.error("pipeline %s: scoring the champion failed: %s", self.name, err)
                outcomes = [StrategyOutcome(strategy=o.strategy, error=f"champion could not be scored: {err}",
                                            seed=o.seed) for o in outcomes]
        self.inflight = None
        self.execute(RecordRoundOutcome(
            round_id=flight.round_id, outcomes=tuple(outcomes),
            champion_metrics=champion_metrics, code_version=__version__, occurred_at=now_iso()),
            key=f"round:{flight.round_id}:end")
        self.prune_rejected()

    def reuse_outcomes(self, flight: InFlightRound, remaining: float) -> list[StrategyOutcome]:
        """Each reused past champion as a `reuse` candidate: its own file, its own training blocks, and its own
        score on this round's holdout (never the metrics it had when it served)."""
        outcomes = []
        for version, ref in (flight.reuse_refs or {}).items():
            past = self.state.models[version]
            start = time.perf_counter()
            try:
                if isinstance(ref, Exception):
                    raise ref
                scored = ray.get(ref, timeout=max(remaining, 60.0))
            except Exception as err:  # a missing or tampered file fails this candidate only
                outcomes.append(StrategyOutcome(strategy="reuse", error=f"{version} could not be scored: {err}",
                                                seed=flight.seed))
                continue
            calibration, note = calibration_record(stored_calibration(scored.calibration, self.artifacts))
            outcomes.append(StrategyOutcome(
                strategy="reuse", artifact=past.artifact, metrics=scored.metrics, training_blocks=past.training_blocks,
                rows=0, seconds=time.perf_counter() - start, seed=flight.seed,
                params={"reused_version": version, "reused_strategy": past.strategy},
                notes=(f"past champion {version} ({past.strategy}) scored on this holdout; no training",) + note,
                calibration=calibration))
        return outcomes

    def prune_rejected(self) -> None:
        """Retention: record which rejected candidates lose their files, then delete them (never the events)."""
        events = self.execute(PruneArtifacts(keep=self.config.retrain.retain_rejected, occurred_at=now_iso()))
        for event in events:
            for sha in event.sha256s:
                version = next(v for v in event.model_versions if self.state.models[v].artifact.sha256 == sha)
                self.artifacts.delete(ref_for(self.state.models[version].artifact))

    def recover(self, await_rounds: bool) -> None:
        """Finish what a crash (or an older version) left undone, once per process and before any new work.

        The steps after a block's `BlockArrived` are separate appends; a process killed between them leaves a
        block without its drift check, or a drift without its round; blocks that arrived before the first
        champion wait for it. They are all in `state.pending_blocks()` and are checked now, oldest first,
        exactly as they would have been; with `await_rounds` (`run`) a round left in flight is re-issued and
        awaited too, so the next file meets the same champion as in an uninterrupted run.
        """
        if self.recovered or self.config is None:
            return
        self.recovered = True
        self.prune_rejected()  # a round's end is its outcome then its retention: finish it (a no-op otherwise)
        # both scans read every block record (slow on a state loaded from a snapshot): only when the counters say
        # a block may wait for its check, or late labels may wait for theirs
        self.waiting = deque(self.state.pending_blocks() if self.state.pending_count else ())
        c = self.state.counters
        if c.labels_arrived > c.labels_checked:
            for block in self.state.ordered_blocks():  # late labels recorded, their check not (a crash between)
                if block.labels is not None and block.metrics is None and block.served_by is not None:
                    self.check_labels(block.block_id, await_rounds)
        if self.waiting and self.state.champion is not None:
            log.info("pipeline %s: %d block(s) waiting for their drift check", self.name, len(self.waiting))
        if await_rounds:
            self.finish_round()
        self.check_waiting(await_rounds, budget_seconds=None if await_rounds else POLL_BUDGET_SECONDS)

    def reissue_round(self) -> None:
        """After a restart, a round in the log has no tasks in this process: launch it again, same seed."""
        r = self.state.round
        point = ChangePoint(block_id=r.change_block, row=r.change_row, signal=r.change_signal) \
            if r.change_block is not None else None
        plan = RoundPlan(round_id=r.round_id, block_id=r.block_id, trigger=r.trigger, strategies=r.strategies,
                         labelled_blocks=r.training_blocks, new_blocks=r.new_blocks, seed=r.seed, reasons=r.reasons,
                         change_point=point, change_rows=r.change_rows, recent_blocks=r.recent_blocks,
                         reuse=r.reuse)
        log.info("pipeline %s: re-issuing round %s after a restart", self.name, r.round_id)
        self.start_round(plan, reissue=True)

    # -- operator commands ------------------------------------------------------------------------

    def rollback(self, to_version: str, reason: str) -> dict[str, Any]:
        try:
            events = self.execute(Rollback(to_version=to_version, reason=reason, occurred_at=now_iso()))
        except CommandRejected as err:
            return {"ok": False, "message": str(err)}
        return {"ok": True, "recorded": [type(e).__name__ for e in events], "champion": self.state.champion}

    def resume(self, reason: str) -> dict[str, Any]:
        events = self.execute(ResumeRetraining(reason=reason, occurred_at=now_iso()))
        return {"ok": True, "recorded": [type(e).__name__ for e in events]}

    def summary(self) -> dict[str, Any]:
        s = self.state
        champion = s.champion_record()
        return {
            "pipeline": self.name, "version": s.version, "health": s.health, "champion": s.champion,
            "champion_strategy": champion.strategy if champion else None, "blocks": s.counters.blocks,
            "rejected_files": s.counters.rejected_files, "drifts": s.counters.drifts,
            "rounds": s.counters.rounds, "promotions": s.counters.promotions,
            "challenger_rejections": s.counters.challenger_rejections, "circuit_open": s.circuit.open,
            "round_in_flight": s.round.round_id if s.round else None, "last_block": s.last_block,
            "pending": s.pending_count,
        }

    def ping(self) -> dict[str, Any]:
        """Who answers: the pipeline and this process (a restarted actor has a new pid)."""
        import os

        return {"pipeline": self.name, "pid": os.getpid(), "version": self.state.version,
                "node_id": ray.get_runtime_context().get_node_id()}


def outcome_of(result: CandidateResult) -> StrategyOutcome:
    if result.status != "trained" or result.artifact is None:
        return StrategyOutcome(strategy=result.strategy, error=result.reason or result.status,
                               skipped=result.status == "skipped", seconds=result.seconds, seed=result.seed)
    calibration, note = calibration_record(result.calibration)
    return StrategyOutcome(
        strategy=result.strategy, artifact=artifact_for(result.artifact), metrics=result.metrics,
        training_blocks=result.training_blocks, rows=result.rows, seconds=result.seconds, seed=result.seed,
        params=jsonable(result.params), calibration=calibration,
        notes=((result.notes,) if result.notes else ()) + ((f"trained on node {result.node_id}",)
                                                             if result.node_id else ()) + note)


def calibration_record(result: CalibrationResult | None) -> tuple[Calibration | None, tuple[str, ...]]:
    """A stored calibration as the event records it, or the note that says why there is none."""
    if result is None:
        return None, ()
    if result.artifact is None:
        return None, (f"not calibrated: {result.note}",) if result.note else ()
    return Calibration(artifact=artifact_for(result.artifact), method=result.method, rows=result.rows,
                       ece=result.ece, ece_uncalibrated=result.ece_uncalibrated), ()


def jsonable(params: dict[str, Any]) -> dict[str, Any]:
    """Strategy params as JSON values (anything else, NaN and infinities included, becomes its repr)."""
    import math

    out = {}
    for k, v in params.items():
        plain = isinstance(v, (str, int, bool, type(None))) or (isinstance(v, float) and math.isfinite(v))
        out[str(k)] = v if plain else repr(v)
    return out


def remote_multivariate(reference_frame: pd.DataFrame, frame: pd.DataFrame, numeric, settings, seed: int):
    """`check_multivariate` as a Ray task: the permutation test is the heaviest part of a check."""
    return ray.get(multivariate_task.options(**task_options()).remote(reference_frame, frame, numeric, settings,
                                                                       seed))
