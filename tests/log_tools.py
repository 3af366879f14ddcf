"""Editing a log as an attacker or a buggy program would, for tests of what reads and `verify` then say."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from eventstore.hash_chain import GENESIS_HASH, record_hash_from_text


def rehash(path: Path, forget_head: bool = False) -> None:
    """Recompute every hash so the chain is valid again after an edit (a careful forger's step). With
    `forget_head`, also remove the trusted head beside it, as if the log had always been this way."""
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        previous = GENESIS_HASH
        rows = conn.execute("SELECT position, stream_id, version, type, schema_version, payload, recorded_at "
                            "FROM events ORDER BY position").fetchall()
        for row in rows:
            previous = record_hash_from_text(previous, *row)
            conn.execute("UPDATE events SET hash = ? WHERE position = ?", (previous, row[0]))
    if forget_head:
        Path(f"{path}.head").unlink(missing_ok=True)
