"""Watch each pipeline's source folder and hand complete files to its actor, once.

A file is *complete* when its size and modification time have not changed for `settle_seconds` (a writer
may still be appending), or at once when it arrives by rename (write-then-rename is the safe way to drop a
file). Hidden and temporary files are ignored (`sources.is_candidate`), as are symlinks pointing outside the
folder. At start-up every candidate already in the folder is submitted in name order; the actor skips
content already in the log (by sha256), so the same content twice is ingested once and changed content is a
new block.

`[trigger] mode = "events"` uses inotify through watchdog's Observer; `"polling"` uses watchdog's
PollingObserver at `interval_seconds`, for folders where file events do not arrive (network mounts). One
observer serves every folder of its kind (one inotify instance and one thread for all event-mode folders, one
polling observer per interval): a serve with a thousand pipelines watches two thousand folders (each one's
source and its labels folder) with a handful of threads, under the kernel's default of 128 inotify instances
per user.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from calmops_actors.sources import is_candidate, source_files

log = logging.getLogger("calmops.watcher")

Submit = Callable[[str, Path], None]  # (pipeline name, file path)


@dataclass
class Pending:
    size: int
    mtime_ns: int
    stable_since: float


class FolderHandler(FileSystemEventHandler):
    """Notes candidate files of one pipeline; the settle loop decides when they are complete."""

    def __init__(self, watcher: Watcher, pipeline: str, source: Path) -> None:
        self.watcher, self.pipeline, self.source = watcher, pipeline, source

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        path = Path(event.dest_path if event.event_type == "moved" and event.dest_path else event.src_path)
        if event.event_type in ("created", "modified", "closed", "moved") and is_candidate(path, self.source):
            self.watcher.note(self.pipeline, path, renamed=event.event_type == "moved")


class Watcher:
    """Shared observers (one per mode and polling interval) watching every folder, plus a settle thread that
    submits complete files."""

    def __init__(self, submit: Submit, settle_tick: float = 0.2) -> None:
        self.submit = submit
        self.settle_tick = settle_tick
        self.lock = threading.Lock()
        self.pending: dict[tuple[str, Path], Pending] = {}
        self.settle: dict[str, float] = {}
        self.shared: dict[tuple[str, float], Observer] = {}  # (mode, interval) -> its observer
        self.watches: dict[str, tuple[Observer, Any]] = {}  # key -> (observer, watch) to unschedule
        self.sources: dict[str, Path] = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.settle_loop, name="calmops-watcher", daemon=True)
        self.thread.start()

    def watch(self, pipeline: str, source: Path, mode: str = "events", interval: float = 5.0,
              settle_seconds: float = 1.0) -> None:
        """Start watching `source` for `pipeline` (replacing an earlier watch); submit what is already there."""
        self.unwatch(pipeline)
        source.mkdir(parents=True, exist_ok=True)
        observer = self.observer(mode, interval)
        watch = observer.schedule(FolderHandler(self, pipeline, source), str(source), recursive=False)
        with self.lock:
            self.watches[pipeline] = (observer, watch)
            self.sources[pipeline] = source
            self.settle[pipeline] = settle_seconds
        for path in source_files(source):  # files that arrived while nobody watched
            self.note(pipeline, path, renamed=False)

    def observer(self, mode: str, interval: float) -> Observer:
        """The running observer shared by every folder of this mode (and polling interval)."""
        key = (mode, interval if mode == "polling" else 0.0)
        with self.lock:
            observer = self.shared.get(key)
            if observer is None:
                observer = PollingObserver(timeout=interval) if mode == "polling" else Observer()
                observer.daemon = True
                observer.start()
                self.shared[key] = observer
            return observer

    def unwatch(self, pipeline: str) -> None:
        with self.lock:
            found = self.watches.pop(pipeline, None)
            self.sources.pop(pipeline, None)
            for key in [k for k in self.pending if k[0] == pipeline]:
                del self.pending[key]
        if found is not None:
            observer, watch = found
            with contextlib.suppress(KeyError, OSError):  # already gone (the folder was removed)
                observer.unschedule(watch)

    def note(self, pipeline: str, path: Path, renamed: bool) -> None:
        try:
            st = path.stat()
        except OSError:
            return
        with self.lock:
            # a renamed-in file is complete now: mark it stable since long ago
            since = 0.0 if renamed else time.monotonic()
            self.pending[(pipeline, path)] = Pending(st.st_size, st.st_mtime_ns, since)

    def settle_loop(self) -> None:
        while not self.stopping.wait(self.settle_tick):
            self.submit_settled()

    def submit_settled(self) -> None:
        now = time.monotonic()
        ready: list[tuple[str, Path]] = []
        with self.lock:
            for key, pending in list(self.pending.items()):
                pipeline, path = key
                try:
                    st = path.stat()
                except OSError:
                    del self.pending[key]  # gone before it settled
                    continue
                if (st.st_size, st.st_mtime_ns) != (pending.size, pending.mtime_ns):
                    self.pending[key] = Pending(st.st_size, st.st_mtime_ns, now)
                elif now - pending.stable_since >= self.settle.get(pipeline, 1.0):
                    ready.append(key)
                    del self.pending[key]
        for pipeline, path in sorted(ready, key=lambda k: (k[0], k[1].name)):
            try:
                self.submit(pipeline, path)
            except Exception:  # one pipeline's trouble must not stop the watcher
                log.exception("submitting %s for pipeline %s failed", path, pipeline)

    def stop(self) -> None:
        self.stopping.set()
        for pipeline in list(self.watches):
            self.unwatch(pipeline)
        for observer in list(self.shared.values()):
            observer.stop()
            observer.join(timeout=5)
        self.shared.clear()
        self.thread.join(timeout=5)
