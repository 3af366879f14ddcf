"""The supervisor: one actor per valid config in a folder, started, reconfigured and stopped as files change.

Every `*.toml` in the config folder declares one pipeline (but `alerts.toml`, the folder's default alert sinks). A valid config spawns (or finds) the pipeline's
named actor and registers it (`PipelineRegistered`, or `ConfigChanged` with a diff when the file changed). An
invalid config is reported with its message, its pipeline keeps its last good config, and the others run
on. A removed config stops watching that pipeline's folder (its log stays).
"""

from __future__ import annotations

import hashlib
import logging
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


@dataclass
class Managed:
    config: PipelineConfig
    path: Path
    file_sha: str
    actor: Any
    source: Path


@dataclass
class ScanReport:
    started: list[str] = field(default_factory=list)
    reconfigured: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # config file -> message


class Supervisor:
    """Keeps actors and folder watches in line with the config folder."""

    def __init__(self, home: Path, config_dir: Path, resources: dict[str, float] | None = None,
                 watch: bool = True) -> None:
        self.home = home
        self.config_dir = config_dir
        self.resources = resources
        self.pipelines: dict[str, Managed] = {}
        self.errors: dict[str, str] = {}
        self.watcher = Watcher(self.submit) if watch else None
        self.inflight: list[Any] = []

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
                actor = other.actor if other else spawn_actor(self.home, config.name, self.resources,
                                                                  config_dir=path.parent.resolve())
                ref = actor.configure.remote(raw, str(path.parent.resolve()))
                pending.append((path, sha, config, actor, ref, other is not None))
                seen.add(config.name)
            except ConfigError as err:
                report.errors[str(path)] = str(err)
            except OSError as err:  # vanished or unreadable between the listing and the read
                report.errors[str(path)] = f"{path}: cannot be read: {err.strerror or err}"
        for path, sha, config, actor, ref, known in pending:
            try:
                ray.get(ref)
            except ray.exceptions.RayTaskError as err:
                cause = err.cause if err.cause is not None else err
                report.errors[str(path)] = str(ConfigError(str(path), None, str(cause)))
                if not known:
                    seen.discard(config.name)
                continue
            source = resolve_source(config, path.parent)
            self.pipelines[config.name] = Managed(config, path, sha, actor, source)
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

    def stop(self, name: str) -> None:
        managed = self.pipelines.pop(name, None)
        if managed is not None and self.watcher is not None:
            self.watcher.unwatch(name)
            self.watcher.unwatch(name + LABELS)

    def submit(self, pipeline: str, path: Path) -> None:
        """Hand a complete file to its pipeline's actor (calls on one actor run in submission order): a block
        file to `ingest`, a file of its labels folder to `ingest_labels`."""
        labels = pipeline.endswith(LABELS)
        managed = self.pipelines.get(pipeline.removesuffix(LABELS))
        if managed is None:
            return
        call = managed.actor.ingest_labels if labels else managed.actor.ingest
        self.inflight.append(call.remote(str(path), False))

    def poll(self) -> list[dict[str, Any]]:
        """Let every actor record finished rounds; collect ingestion results that are ready."""
        refs = [m.actor.poll.remote(0.0) for m in self.pipelines.values()]
        results = []
        if self.inflight:
            done, self.inflight = ray.wait(self.inflight, num_returns=len(self.inflight), timeout=0)
            for ref in done:
                try:
                    results.append(ray.get(ref))
                except Exception as err:  # an actor failed on one file; it is logged, the others go on
                    log.error("ingestion failed: %s", err)
        try:
            ray.get(refs, timeout=60)
        except Exception as err:
            log.error("poll failed: %s", err)
        return results

    def actors(self) -> dict[str, Any]:
        return {name: m.actor for name, m in self.pipelines.items()}

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
