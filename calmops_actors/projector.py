"""Keep `<home>/projections.sqlite` current: run the read-model fold (pipelines/read_model/projection.py) over the log.

`update_projections` applies the events recorded since the last run, `rebuild_projections` starts again from
position 0 (same tables, same rows), and `ProjectionUpdater` is the thread `serve` runs to do the former
every few seconds. Each batch's rows and its checkpoint commit in one transaction (`ProjectionRunner`), so a
crash or Ctrl-C leaves the tables as of a whole batch and the next run resumes exactly once. The projection
database is a cache: deleting it loses nothing, the next update rebuilds it from the log.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from calmops_actors.home import Home
from eventstore import Codec, CorruptLogError, ProjectionRunner, Recorded, SQLiteEventStore, TableSpec, Upsert
from pipelines.read_model.projection import TABLES, fold

__all__ = ["PROJECTION", "ProjectionUpdater", "ReadModel", "rebuild_projections", "update_projections"]

PROJECTION = "read_model"
log = logging.getLogger(__name__)


class ReadModel:
    """The UI's read tables as a projection `ProjectionRunner` can run: decode, fold, write rows."""

    name = PROJECTION
    tables = {
        table: TableSpec(columns=dict(t.columns), key=t.key, indexes=t.indexes) for table, t in TABLES.items()
    }

    def __init__(self, codec: Codec) -> None:
        self.codec = codec

    def apply(self, recorded: Recorded, lookup: Any) -> Iterable[Upsert]:
        try:
            event = self.codec.decode(recorded)
        except CorruptLogError as err:  # a type from newer code: it still shows in the events feed
            log.warning("read model: %s", err)
            event = None
        return [Upsert(put.table, put.row) for put in fold(recorded, event, lookup)]


def update_projections(home: Path, *, batch_size: int = 1000) -> int:
    """Apply the events recorded since the last update; returns how many were applied (0 without a log).

    When the table layout changed since the tables were built (a newer calmops), they are rebuilt first.
    """
    h = Home(Path(home))
    if not h.log_path.is_file():
        return 0
    with contextlib.closing(h.open_store()) as store, ProjectionRunner(store, h.projections_path) as runner:
        return _update(store, runner, batch_size)


def rebuild_projections(home: Path, *, batch_size: int = 1000) -> dict[str, Any]:
    """Drop the read tables and project the whole log again; returns events applied, position, row counts."""
    h = Home(Path(home))
    if not h.log_path.is_file():
        return {"events": 0, "position": 0, "tables": {}}
    with contextlib.closing(h.open_store()) as store, ProjectionRunner(store, h.projections_path) as runner:
        applied = runner.rebuild(ReadModel(store.codec), batch_size)
        position = runner.position(PROJECTION)
    return {"events": applied, "position": position, "tables": row_counts(h.projections_path)}


def row_counts(projections_path: Path) -> dict[str, int]:
    """Rows per read table (read-only)."""
    with contextlib.closing(sqlite3.connect(f"file:{projections_path}?mode=ro", uri=True)) as conn:
        return {t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in TABLES}


def _update(store: SQLiteEventStore, runner: ProjectionRunner, batch_size: int) -> int:
    store.check_head()  # a truncated or rewritten log is refused loudly; the read tables keep what they showed
    projection = ReadModel(store.codec)
    if _outdated(runner.path, projection):
        log.info("read model: the table layout changed; rebuilding %s from the log", runner.path)
        return runner.rebuild(projection, batch_size)
    return runner.run(projection, batch_size)


def _outdated(path: Path, projection: ReadModel) -> bool:
    """True when tables were built by this projection with another layout (or another set of tables)."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        built = dict(conn.execute(
            "SELECT table_name, spec FROM projection_tables WHERE projection = ?", (projection.name,)
        ).fetchall())
    wanted = {table: spec.as_json() for table, spec in projection.tables.items()}
    return bool(built) and built != wanted


class ProjectionUpdater:
    """A daemon thread that calls the update every `interval` seconds until `stop()`.

    Errors are logged and kept in `last_error`; the thread keeps trying (the log may be busy or not yet
    created). `applied` counts the events applied since start.

    >>> import tempfile
    >>> updater = ProjectionUpdater(Path(tempfile.mkdtemp()), interval=0.05).start()
    >>> updater.stop()
    >>> (updater.applied, updater.last_error)
    (0, None)
    """

    def __init__(self, home: Path, interval: float = 2.0, *, batch_size: int = 1000) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
        self.home = Home(Path(home))
        self.interval = float(interval)
        self.batch_size = batch_size
        self.applied = 0
        self.last_error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="calmops-projector", daemon=True)
        self._store: SQLiteEventStore | None = None
        self._runner: ProjectionRunner | None = None
        self._lock = threading.Lock()

    def start(self) -> ProjectionUpdater:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to finish its current batch and stop; waits up to `timeout` seconds."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def update_once(self) -> int:
        """One update now, in the caller's thread (also what the loop runs)."""
        with self._lock:
            if self._runner is None:
                if not self.home.log_path.is_file():
                    return 0
                self._store = self.home.open_store()
                self._runner = ProjectionRunner(self._store, self.home.projections_path)
            applied = _update(self._store, self._runner, self.batch_size)
            self.applied += applied
            return applied

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self.update_once()
                    self.last_error = None
                except Exception as err:  # keep serving: the next tick retries
                    self.last_error = err
                    log.exception("read model update failed; retrying in %.1f s", self.interval)
                    self._close()
                self._stop.wait(self.interval)
        finally:
            self._close()

    def _close(self) -> None:
        with self._lock:
            runner, store, self._runner, self._store = self._runner, self._store, None, None
        if runner is not None:
            runner.close()
        if store is not None:
            store.close()
