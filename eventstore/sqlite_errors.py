"""Translate sqlite3 errors into the store's own, with a message that names the file and says what to do; and
switch a connection to WAL even while another connection is doing the same."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from eventstore.errors import CorruptLogError, StoreError

__all__ = ["set_wal", "translate"]


def set_wal(conn: sqlite3.Connection, timeout: float) -> str:
    """`PRAGMA journal_mode = WAL`, retried for up to `timeout` seconds; returns the journal mode in force.

    Why: SQLite answers a journal-mode change that meets another connection's lock with "database is locked"
    at once, without waiting out the busy timeout. Two processes (or threads) opening a new file together,
    `serve`'s projector and a `calmops` command say, would otherwise fail one time in fifty or so.
    """
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def translate(exc: sqlite3.Error, path: Path, action: str, busy_timeout: float) -> StoreError:
    """Our exception for ``exc``, met on ``path`` while trying to ``action`` (which names stream/position).

    >>> translate(sqlite3.OperationalError("database is locked"), Path("events.db"), "append to stream 's'", 5)
    StoreError("events.db: cannot append to stream 's': the database stayed locked for longer than busy_timeout=5s. Is another program holding a write lock (a long transaction, or a sqlite3 shell with an open BEGIN)? Retry later, or raise busy_timeout")
    """
    name = getattr(exc, "sqlite_errorname", None) or ""
    where = f"{path}: cannot {action}"
    text = str(exc)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in text:
        return StoreError(
            f"{where}: the database stayed locked for longer than busy_timeout={busy_timeout:g}s. "
            f"Is another program holding a write lock (a long transaction, or a sqlite3 shell "
            f"with an open BEGIN)? Retry later, or raise busy_timeout"
        )
    if name.startswith("SQLITE_NOTADB") or "file is not a database" in text:
        return StoreError(
            f"{where}: the file is not a calmops event log (not a SQLite database); check the path"
        )
    if name.startswith("SQLITE_CORRUPT") or "malformed" in text:
        return CorruptLogError(
            f"{where}: the file is damaged ({text}); restore it from a backup "
            f"(`sqlite3 {path} .recover` may salvage the intact records)"
        )
    if "Could not decode to UTF-8" in text:
        return CorruptLogError(
            f"{where}: a text field is not valid UTF-8 ({text:.120}); the file was altered "
            f"outside calmops: run verify() and restore it from a backup"
        )
    if name.startswith("SQLITE_FULL") or "disk is full" in text:
        return StoreError(
            f"{where}: the disk is full ({text}); free some space and retry (nothing from this "
            f"call was written)"
        )
    if name.startswith("SQLITE_READONLY") or "readonly" in text:
        return StoreError(
            f"{where}: the file is read-only ({text}); check the permissions of {path} and of its "
            f"folder (SQLite also needs to create {path.name}-wal and {path.name}-shm beside it)"
        )
    if name.startswith(("SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")):
        return StoreError(
            f"{where}: SQLite cannot open the file ({text}); check that the folder exists and that "
            f"you may read and write it"
        )
    if name.startswith("SQLITE_IOERR"):
        return StoreError(
            f"{where}: the disk reported an I/O error ({name}: {text}); check the disk and its free "
            f"space, then retry"
        )
    if name.startswith("SQLITE_CONSTRAINT"):
        return CorruptLogError(
            f"{where}: a uniqueness rule was violated ({text}); another program may be writing "
            f"to the file without this library"
        )
    return StoreError(f"{where}: {type(exc).__name__}: {text}")
