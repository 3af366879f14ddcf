"""The supervisor: every valid config in a folder registered and watched; its actor alive only while it has work.

Every `*.toml` in the config folder declares one pipeline (but `alerts.toml`, the folder's default alert sinks).
A valid config is registered (`PipelineRegistered`, or `ConfigChanged` with a diff when the file changed) and its
folders watched. An invalid config is reported with its message, its pipeline keeps its last good config, and
the others run on. A removed config stops watching that pipeline's folders (its log stays).

Virtual actors (docs/ARCHITECTURE.md, "Activation and passivation"): a pipeline's actor is spawned on demand (a
file or labels file to ingest, an operator's action, or a log that does not end in a clean passivation: a round
to finish, blocks to check after a crash) and, once it has had no work for `idle_seconds`, it records
`PipelinePassivated` (after a snapshot when its tail is long) and is stopped. Its whole state is its log, so
nothing is lost: the next file spawns it again, and calls made while it starts queue on its handle in order.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray

from calmops_actors.alerts.folder import FOLDER_FILE, check_sinks
from calmops_actors.runtime import spawn_actor
from calmops_actors.watcher import Watcher
from pipelines.config.pipeline import (
    ConfigError,
    PipelineConfig,
    config_from_dict,
    parse_toml,
    resolve_source,
)

log = logging.getLogger("calmops.supervisor")

LABELS = "#labels"  # the watcher's key for a pipeline's labels folder ('#' is never in a pipeline name)


DEFAULT_IDLE_SECONDS = 300.0  # benchmarks/README.md, "Activation": a restart costs about 6 s on a loaded 2-core machine


@dataclass
class Managed:
    config: PipelineConfig
    path: Path
    file_sha: str
    actor: Any  # None: passivated (no process); spawned again by the next work
    source: Path
    raw: dict[str, Any] = field(default_factory=dict)
    calls: list[Any] = field(default_factory=list)  # ingest calls not yet answered (the actor is not idle)


@dataclass
class ScanReport:
    started: list[str] = field(default_factory=list)
    reconfigured: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # config file -> message


class Supervisor:
    """Keeps actors and folder watches in line with the config folder."""

    def __init__(self, home: Path, config_dir: Path, resources: dict[str, float] | None = None,
                 watch: bool = True, idle_seconds: float | None = DEFAULT_IDLE_SECONDS) -> None:
        self.home = home
        self.config_dir = config_dir
        self.resources = resources
        self.idle_seconds = idle_seconds  # None: never passivate
        self.pipelines: dict[str, Managed] = {}
        self.errors: dict[str, str] = {}
        self.lock = threading.RLock()  # the watcher's thread submits while the main loop polls and passivates
        self.watcher = Watcher(self.submit) if watch else None
        self.inflight: list[Any] = []
        self.activations: list[dict[str, Any]] = []  # (pipeline, reason, seconds): for `serve`'s output
        self.passivations: list[dict[str, Any]] = []  # (pipeline, idle_seconds, snapshot_version)

    def scan(self) -> ScanReport:
        """Read every config; start, reconfigure or stop pipelines accordingly (actors configure in parallel)."""
        report = ScanReport()
        seen: set[str] = set()
        pending = []
        for path in sorted(self.config_dir.glob("*.toml")):
            if path.name == FOLDER_FILE:
                continue
            try:
                data = path.read_bytes()
                sha = hashlib.sha256(data).hexdigest()
                current = next((m for m in self.pipelines.values() if m.path == path), None)
                if current is not None and current.file_sha == sha:
                    seen.add(current.config.name)
                    continue
                raw, config = self.parse(path, data)
                if config.name in seen or any(config.name == p[2].name for p in pending):
                    raise ConfigError(str(path), "name", f"{config.name!r} is declared by another config too")
                other = self.pipelines.get(config.name)
                actor = other.actor if other else None
                if actor is None and not (other is None and (self.stays_passive(config)
                                                             or self.register_passive(config, path))):
                    actor = self.spawn(config.name, path.parent.resolve())
                ref = actor.configure.remote(raw, str(path.parent.resolve())) if actor is not None else None
                pending.append((path, sha, config, actor, ref, other is not None, raw))
                seen.add(config.name)
            except ConfigError as err:
                report.errors[str(path)] = str(err)
            except OSError as err:  # vanished or unreadable between the listing and the read
                report.errors[str(path)] = f"{path}: cannot be read: {err.strerror or err}"
        for path, sha, config, actor, ref, known, raw in pending:
            try:
                if ref is not None:
                    ray.get(ref)
            except ray.exceptions.RayTaskError as err:
                cause = err.cause if err.cause is not None else err
                report.errors[str(path)] = str(ConfigError(str(path), None, str(cause)))
                if not known:
                    seen.discard(config.name)
                    ray.kill(actor, no_restart=True)
                continue
            source = resolve_source(config, path.parent)
            with self.lock:
                old = self.pipelines.get(config.name)
                self.pipelines[config.name] = Managed(config, path, sha, actor, source, raw,
                                                      old.calls if old is not None else [])
            (report.reconfigured if known else report.started).append(config.name)
            if self.watcher is not None:
                t = config.trigger
                self.watcher.watch(config.name, source, t.mode, t.interval_seconds, t.settle_seconds)
                self.watcher.watch(config.name + LABELS, source / config.labels.folder, t.mode, t.interval_seconds,
                                   t.settle_seconds)
        for name in [n for n in self.pipelines if n not in seen]:
            self.stop(name)
            report.stopped.append(name)
        for message in report.errors.values():
            if message not in self.errors.values():
                log.error("config rejected: %s", message)
        self.errors = report.errors
        return report

    @staticmethod
    def parse(path: Path, data: bytes) -> tuple[dict, PipelineConfig]:
        raw = parse_toml(data, str(path))
        config = config_from_dict(raw, str(path))
        check_sinks(config.alerts, str(path))  # an unset ${VAR} or a missing program: refused like a bad key
        return raw, config

    def stays_passive(self, config: PipelineConfig) -> bool:
        """At serve start, a pipeline whose log ends in `PipelinePassivated` under this very config has nothing
        pending: it stays stopped until work comes (a brand-new or crashed one is started: it must register, or
        finish what the crash left)."""
        from calmops_actors.home import stream_id
        from pipelines.config.pipeline import config_sha256

        if self.idle_seconds is None:
            return False
        store = self.store()
        stream = stream_id(config.name)
        version = store.stream_version(stream)
        if version == 0:
            return False
        last = store.read(stream, after_version=version - 1)[-1]
        return ((last.type == "PipelinePassivated" and last.payload.get("config_sha256") == config_sha256(config))
                or (last.type == "PipelineRegistered" and last.payload.get("config_sha256") == config_sha256(config)))

    def register_passive(self, config: PipelineConfig, path: Path) -> bool:
        """Register a brand-new pipeline from here, without starting its actor (checked as its actor would: the
        model class, the preprocess hook); True when recorded. A thousand new configs cost no process each."""
        from calmops_actors.clock import now_iso
        from calmops_actors.home import stream_id
        from calmops_actors.hooks import load_preprocess
        from calmops_actors.writes import record
        from eventstore import ConcurrencyError
        from pipelines.config.pipeline import config_sha256, config_to_dict
        from pipelines.core.decide import RegisterPipeline
        from pipelines.core.state import PipelineState
        from pipelines.retraining.models import ModelSpec, ModelSpecError, build_estimator

        if self.idle_seconds is None or self.store().stream_version(stream_id(config.name)) != 0:
            return False
        try:
            build_estimator(ModelSpec(config.model.class_path, config.model.params))
        except ModelSpecError as err:
            raise ConfigError(str(path), None, str(err)) from None
        if config.preprocess:
            load_preprocess(config.preprocess, path.parent.resolve(), f"{config.name} config")
        try:
            record(self.store(), stream_id(config.name), PipelineState(), RegisterPipeline(
                name=config.name, config=config_to_dict(config), config_sha256=config_sha256(config),
                occurred_at=now_iso()))
        except ConcurrencyError:
            return False  # something registered it meanwhile: its actor will sort it out
        return True

    def store(self):
        if getattr(self, "_store", None) is None:
            from calmops_actors.home import Home

            self._store = Home(self.home).open_store()
        return self._store

    def spawn(self, name: str, config_dir: Path) -> Any:
        return spawn_actor(self.home, name, self.resources, config_dir=config_dir)

    def active_actor(self, name: str, reason: str) -> Any | None:
        """The pipeline's actor, spawned (and its config and activation recorded) if it was passivated; calls
        made on the handle meanwhile run after those, in order. None for an unknown pipeline."""
        with self.lock:
            managed = self.pipelines.get(name)
            if managed is None:
                return None
            if managed.actor is None:
                started = time.monotonic()
                actor = self.spawn(name, managed.path.parent.resolve())
                actor.configure.remote(managed.raw, str(managed.path.parent.resolve()))
                actor.activate.remote(reason)
                managed.actor = actor
                self.activations.append({"pipeline": name, "reason": reason,
                                         "seconds": round(time.monotonic() - started, 3)})
                log.info("pipeline %s activated: %s", name, reason)
            return managed.actor

    def stop(self, name: str) -> None:
        managed = self.pipelines.pop(name, None)
        if managed is not None and self.watcher is not None:
            self.watcher.unwatch(name)
            self.watcher.unwatch(name + LABELS)

    def submit(self, pipeline: str, path: Path) -> None:
        """Hand a complete file to its pipeline's actor (calls on one actor run in submission order): a block
        file to `ingest`, a file of its labels folder to `ingest_labels`."""
        labels = pipeline.endswith(LABELS)
        name = pipeline.removesuffix(LABELS)
        with self.lock:
            actor = self.active_actor(name, f"{'labels file' if labels else 'file'} {path.name}")
            if actor is None:
                return
            ref = (actor.ingest_labels if labels else actor.ingest).remote(str(path), False)
            self.pipelines[name].calls.append(ref)
            self.inflight.append(ref)

    def poll(self) -> list[dict[str, Any]]:
        """Let every active actor record finished rounds; collect ingestion results that are ready; stop the
        actors that have been idle long enough."""
        with self.lock:
            active = {name: m.actor for name, m in self.pipelines.items() if m.actor is not None}
        refs = {name: actor.poll.remote(0.0) for name, actor in active.items()}
        results = []
        with self.lock:  # the watcher's thread appends to it: wait on a copy (Ray asserted on a list that grew)
            pending, self.inflight = self.inflight, []
        if pending:
            done, waiting = ray.wait(pending, num_returns=len(pending), timeout=0)
            with self.lock:
                self.inflight = waiting + self.inflight
            for ref in done:
                try:
                    results.append(ray.get(ref))
                except Exception as err:  # an actor failed on one file; it is logged, the others go on
                    log.error("ingestion failed: %s", err)
        answers: dict[str, dict[str, Any]] = {}
        for name, ref in refs.items():
            try:
                answers[name] = ray.get(ref, timeout=60)
            except Exception as err:
                log.error("poll of %s failed: %s", name, err)
        for name, answer in answers.items():
            self.maybe_passivate(name, active[name], answer)
        return results

    def idle_limit(self, managed: Managed) -> float | None:
        if self.idle_seconds is None:
            return None
        own = managed.config.lifecycle.idle_seconds
        return float(own) if own is not None else float(self.idle_seconds)

    def maybe_passivate(self, name: str, actor: Any, answer: dict[str, Any]) -> bool:
        """Stop the actor when it has been idle past its limit, nothing is pending in it, and no call to it is
        unanswered; it records `PipelinePassivated` first (and refuses if work came meanwhile)."""
        from pipelines.config.pipeline import config_sha256

        with self.lock:
            managed = self.pipelines.get(name)
            if managed is None or managed.actor is not actor:
                return False
            limit = self.idle_limit(managed)
            if limit is None or answer.get("busy") or answer.get("idle_seconds", 0.0) < limit:
                return False
            if managed.calls:
                managed.calls = [r for r in managed.calls if not ray.wait([r], timeout=0)[0]]
                if managed.calls:
                    return False
            try:
                outcome = ray.get(actor.passivate.remote(answer["idle_seconds"], config_sha256(managed.config)),
                                  timeout=120)
            except Exception as err:
                log.error("pipeline %s: passivation failed: %s", name, err)
                return False
            if not outcome.get("ok"):
                return False
            ray.kill(actor, no_restart=True)
            released(name)  # the next activation must create a new actor, not find this dying one by name
            managed.actor = None
            self.passivations.append({"pipeline": name, "idle_seconds": answer["idle_seconds"],
                                      "snapshot_version": outcome.get("snapshot_version") or 0})
            log.info("pipeline %s passivated after %.0f s idle (snapshot at %s)", name, answer["idle_seconds"],
                     outcome.get("snapshot_version") or "none")
            return True

    def actors(self) -> dict[str, Any]:
        """The pipelines' live actors (a passivated pipeline has none)."""
        return {name: m.actor for name, m in self.pipelines.items() if m.actor is not None}

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        if getattr(self, "_store", None) is not None:
            self._store.close()


def released(pipeline: str, timeout: float = 10.0) -> bool:
    """Wait until the killed actor's name is free (Ray frees it once the actor is dead); False on timeout."""
    from calmops_actors.runtime import NAMESPACE, actor_name

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            ray.get_actor(actor_name(pipeline), namespace=NAMESPACE)
        except ValueError:
            return True
        time.sleep(0.05)
    return False
