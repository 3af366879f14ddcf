"""The trusted head: the log's last (position, hash), kept in a small file outside the log.

Why: the hash chain shows an edit that did not recompute the hashes, but not a log whose last records were
deleted, nor one whose chain was recomputed after an edit: both are valid chains. A copy of the head written
outside the log on every commit remembers what the log was. A log that ends before the trusted position, or
whose hash at that position differs, was truncated or rewritten. For an anchor nobody on this machine can
move, print the head (`calmops head`) and keep it elsewhere (`verify --expect-head`).

The file only moves forward: several processes append to one log, and each writes the head it committed
under an exclusive lock, only when it is newer than the one on file. A crash between a commit and the write
leaves the file behind the log, never ahead of it, which reads as a log that grew.

>>> import tempfile, pathlib
>>> head = HeadFile(pathlib.Path(tempfile.mkdtemp()) / "head")
>>> head.advance(3, "c" * 64); head.advance(2, "b" * 64)
>>> head.read() == Head(3, "c" * 64)
True
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path

from eventstore.errors import StoreError

__all__ = ["Head", "HeadFile", "head_problem"]


@dataclass(frozen=True, slots=True)
class Head:
    position: int
    hash: str

    def __str__(self) -> str:
        return f"{self.position}:{self.hash}"


class HeadFile:
    """`<log>.head`: one JSON object `{"position": N, "hash": "...", "snapshots": {stream: sha256}}`, replaced
    atomically. The snapshot digests bind each stream's snapshot (a cache inside the log file, outside the
    chain) to this file: a snapshot whose text does not hash to its digest is not used."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    def read(self) -> Head | None:
        """The trusted head, or None when no head was ever written (a log made before heads existed)."""
        data = self._data()
        return None if data is None else Head(data["position"], data["hash"])

    def snapshot_digest(self, stream_id: str) -> str | None:
        data = self._data()
        return None if data is None else data["snapshots"].get(stream_id)

    def _data(self) -> dict | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as err:
            raise StoreError(f"{self.path}: cannot read the trusted head: {err.strerror or err}") from None
        try:
            data = json.loads(text)
            snapshots = data.get("snapshots", {})
            if not isinstance(snapshots, dict):
                raise TypeError
            return {"position": int(data["position"]), "hash": str(data["hash"]), "snapshots": snapshots}
        except (ValueError, KeyError, TypeError, AttributeError):
            raise StoreError(f"{self.path}: the trusted head file is damaged ({text[:80]!r}); compare the log "
                             "with an anchor you kept (`calmops verify --expect-head`), then delete the file "
                             "to trust the log as it is") from None

    def advance(self, position: int, hash_: str) -> None:
        """Record (position, hash) as the head, unless the file already holds a later position."""
        try:
            with self._locked():
                current = self._data()
                if current is not None and current["position"] >= position:
                    return
                snapshots = current["snapshots"] if current else {}
                self._write({"position": position, "hash": hash_, "snapshots": snapshots})
        except OSError as err:
            raise StoreError(f"{self.path}: cannot write the trusted head: {err.strerror or err}") from None

    def record_snapshot(self, stream_id: str, digest: str | None) -> None:
        """Remember (or, with None, forget) the sha256 of a stream's snapshot text."""
        try:
            with self._locked():
                current = self._data() or {"position": 0, "hash": "", "snapshots": {}}
                if digest is None:
                    current["snapshots"].pop(stream_id, None)
                else:
                    current["snapshots"][stream_id] = digest
                self._write(current)
        except OSError as err:
            raise StoreError(f"{self.path}: cannot write the trusted head: {err.strerror or err}") from None

    def _write(self, data: dict) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self.path)

    def reset(self, position: int, hash_: str) -> None:
        """Replace the head whatever it holds (snapshots are forgotten, so none is used until taken again):
        only for an operator who decided to trust the log as it is."""
        with self._locked():
            self._write({"position": position, "hash": hash_, "snapshots": {}})

    @contextlib.contextmanager
    def _locked(self):
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def head_problem(trusted: Head, last_position: int, hash_at_trusted: str | None) -> str | None:
    """Why a log whose last position is `last_position` does not match the trusted head, or None if it does.

    >>> head_problem(Head(5, "a" * 64), 3, None)
    'the log ends at position 3 but the trusted head is at position 5: 2 record(s) were deleted from its end'
    >>> head_problem(Head(5, "a" * 64), 7, "b" * 64)[:60]
    'the hash at position 5 is bbbbbbbbbbbb... but the trusted he'
    """
    if last_position < trusted.position:
        return (f"the log ends at position {last_position} but the trusted head is at position "
                f"{trusted.position}: {trusted.position - last_position} record(s) were deleted from its end")
    if hash_at_trusted != trusted.hash:
        return (f"the hash at position {trusted.position} is {str(hash_at_trusted)[:12]}... but the trusted head "
                f"says {trusted.hash[:12]}...: the log was rewritten (its chain recomputed after an edit)")
    return None
