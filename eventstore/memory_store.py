"""`InMemoryEventStore`: the same log, contract and hash chain as the SQLite store, kept in a list.

For tests and for actors that need no durability. Payloads are kept as canonical JSON text, so what you
read back is exactly what the SQLite store would give (tuples come back as lists, for instance), and a
caller mutating a returned payload cannot change the log.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from eventstore.codec import Codec
from eventstore.errors import ConcurrencyError
from eventstore.hash_chain import GENESIS_HASH, RawRow
from eventstore.store import Clock, EventStore, Prepared

__all__ = ["InMemoryEventStore"]


class InMemoryEventStore(EventStore):
    """An :class:`EventStore` held in memory (thread-safe; gone when the process ends).

    >>> from eventstore import EventData
    >>> store = InMemoryEventStore()
    >>> [r.version for r in store.append("s", [EventData("A", {}), EventData("B", {})], expected_version=0)]
    [1, 2]
    >>> store.head(), store.stream_version("s"), store.verify().ok
    (2, 2, True)
    """

    def __init__(self, *, codec: Codec | None = None, clock: Clock | None = None) -> None:
        super().__init__(codec=codec, clock=clock)
        self._lock = threading.RLock()
        self._rows: list[RawRow] = []  # index i holds position i + 1
        self._by_stream: dict[str, list[int]] = {}  # stream -> positions, version v at index v - 1
        self._keys: dict[tuple[str, str], tuple[int, int]] = {}  # (stream, key) -> (first, last) position
        self._snapshots: dict[str, tuple[int, str, str]] = {}

    def _append_rows(
        self, stream_id: str, prepared: list[Prepared], expected_version: int, idempotency_key: str | None
    ) -> tuple[list[RawRow], bool]:
        with self._lock:
            self._check_open()
            if idempotency_key is not None:
                done = self._keys.get((stream_id, idempotency_key))
                if done is not None:
                    return self._rows[done[0] - 1 : done[1]], False
            positions = self._by_stream.get(stream_id, [])
            actual = len(positions)
            if actual != expected_version:
                raise ConcurrencyError(
                    f"stream {stream_id!r}: expected version {expected_version} but it is at version {actual}; "
                    f"another writer appended first: reload the stream and decide again",
                    stream_id=stream_id,
                    expected=expected_version,
                    actual=actual,
                )
            recorded_at = self._recorded_at()
            last_hash = self._rows[-1][7] if self._rows else GENESIS_HASH
            rows = self._chain(
                stream_id,
                prepared,
                first_version=actual + 1,
                last_position=len(self._rows),
                last_hash=last_hash,
                recorded_at=recorded_at,
            )
            self._rows.extend(rows)
            self._by_stream.setdefault(stream_id, positions).extend(r[0] for r in rows)
            if idempotency_key is not None:
                self._keys[(stream_id, idempotency_key)] = (rows[0][0], rows[-1][0])
            return rows, True

    def _raw_stream(self, stream_id: str, after_version: int) -> list[RawRow]:
        with self._lock:
            positions = self._by_stream.get(stream_id, [])
            return [self._rows[p - 1] for p in positions[after_version:]]

    def _raw_stream_batches(self, stream_id: str, after_version: int, batch_size: int) -> Iterator[list[RawRow]]:
        version = after_version
        while True:
            with self._lock:
                positions = self._by_stream.get(stream_id, [])
                rows = [self._rows[p - 1] for p in positions[version:version + batch_size]]
            if not rows:
                return
            yield rows
            version = rows[-1][2]

    def _raw_range(self, after_position: int, limit: int | None) -> list[RawRow]:
        with self._lock:
            end = None if limit is None else after_position + limit
            return self._rows[after_position:end]

    def _hash_at(self, position: int) -> str | None:
        with self._lock:
            return self._rows[position - 1][7] if 1 <= position <= len(self._rows) else None

    def streams(self) -> list[str]:
        self._check_open()
        with self._lock:
            return sorted(self._by_stream)

    def head(self) -> int:
        self._check_open()
        with self._lock:
            return len(self._rows)

    def stream_version(self, stream_id: str) -> int:
        self._check_open()
        with self._lock:
            return len(self._by_stream.get(stream_id, ()))

    def _put_snapshot(self, stream_id: str, version: int, schema: str, state_text: str) -> None:
        with self._lock:
            self._snapshots[stream_id] = (version, schema, state_text)

    def _get_snapshot(self, stream_id: str) -> tuple[int, str, str] | None:
        with self._lock:
            return self._snapshots.get(stream_id)

    def delete_snapshots(self, stream_id: str | None = None) -> None:
        self._check_open()
        with self._lock:
            if stream_id is None:
                self._snapshots.clear()
            else:
                self._snapshots.pop(stream_id, None)
