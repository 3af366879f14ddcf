"""`EventStore`: the append-only log's interface and the behaviour every backend shares.

A backend supplies raw rows ``(position, stream_id, version, type, schema_version, payload_json,
recorded_at, hash)`` and the atomic append; this base class validates input, encodes events through the
codec, stamps the time, turns rows into :class:`Recorded` and walks the hash chain, so every backend
behaves the same way (the contract suite in ``tests/contract/`` holds them to it).
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from eventstore.canonical import canonical_json, canonical_payload, json_problem
from eventstore.codec import Codec
from eventstore.errors import CorruptLogError, StoreError
from eventstore.hash_chain import GENESIS_HASH, ChainChecker, RawRow, chain_link, unlinked_row
from eventstore.records import EventData, Recorded, Snapshot, Stored, VerifyResult

__all__ = ["EventStore", "Clock", "Prepared"]

Clock = Callable[[], datetime]
# an event ready to be written: (type, schema_version, canonical payload text, the payload as read back)
Prepared = tuple[str, int, str, dict[str, Any]]

_loads = json.loads
_msgspec_decode = msgspec.json.Decoder().decode
_scan_once = json.decoder.JSONDecoder().scan_once  # json.loads without its Python-level wrapper


def _utc_now() -> datetime:
    return datetime.now(UTC)


class EventStore(abc.ABC):
    """An append-only log of events in streams, with optimistic concurrency, idempotency and a hash chain.

    Use it as a context manager, or call :meth:`close`. Example with the in-memory backend:

    >>> from eventstore import InMemoryEventStore, EventData
    >>> with InMemoryEventStore() as store:
    ...     first = store.append("pipeline-1", [EventData("BlockArrived", {"block": 1})], expected_version=0)
    ...     again = store.append("pipeline-1", [EventData("BlockArrived", {"block": 2})], expected_version=1,
    ...                          idempotency_key="block-2")
    ...     [(r.position, r.version, r.payload) for r in store.read("pipeline-1")]
    [(1, 1, {'block': 1}), (2, 2, {'block': 2})]
    """

    def __init__(self, *, codec: Codec | None = None, clock: Clock | None = None) -> None:
        self.codec = Codec() if codec is None else codec
        self._clock: Clock = _utc_now if clock is None else clock
        self._closed = False
        # stream ids and type names already checked (a handful in practice)
        self._good_streams: set[str] = set()
        self._good_types: set[str] = set()

    # -- the write side -------------------------------------------------------------------------------

    def append(
        self, stream_id: str, events: Sequence[Any], expected_version: int, idempotency_key: str | None = None
    ) -> list[Recorded]:
        """Append ``events`` to ``stream_id`` atomically, if the stream is still at ``expected_version``.

        ``events`` are :class:`EventData` or instances of classes registered in ``self.codec``.
        ``expected_version`` is the stream's current version (0 for a new stream); a stale one raises
        :class:`ConcurrencyError` and writes nothing. An ``idempotency_key`` already used on this stream
        returns the events recorded by that earlier call and writes nothing (even if ``expected_version``
        is stale by now). An empty ``events`` returns ``[]`` and checks nothing.
        """
        self._check_open()
        if stream_id not in self._good_streams:
            _check_stream_id(stream_id)
            if len(self._good_streams) < 10000:
                self._good_streams.add(stream_id)
        _check_count("expected_version", expected_version)
        if idempotency_key is not None and (not isinstance(idempotency_key, str) or not idempotency_key):
            raise StoreError(f"idempotency_key must be a non-empty string or None, got {idempotency_key!r}")
        if type(events) is not list and (
            isinstance(events, EventData) or not isinstance(events, Sequence) or isinstance(events, str)
        ):
            raise StoreError(f"events must be a list or tuple of events, got {type(events).__name__}")
        if not events:
            return []
        prepared = [self._prepare(stream_id, i, len(events), event) for i, event in enumerate(events)]
        rows, written = self._append_rows(stream_id, prepared, expected_version, idempotency_key)
        if written:  # the payloads are the fresh copies made by _prepare
            return [
                Recorded(r[0], r[1], r[2], r[3], r[4], p[3], r[6], r[7])
                for r, p in zip(rows, prepared, strict=True)
            ]
        return self._to_recorded(rows)  # an earlier call's events, read back

    def _prepare(self, stream_id: str, index: int, count: int, event: Any) -> Prepared:
        if type(event) is not EventData and not isinstance(event, EventData):
            if isinstance(event, dict) or not hasattr(event, "__dataclass_fields__"):
                raise StoreError(
                    f"stream {stream_id!r}, event {index + 1} of {count}: expected EventData or a "
                    f"registered event dataclass, got {type(event).__name__}"
                )
            event = self.codec.encode(event)
        type_, schema_version, payload = event.type, event.schema_version, event.payload
        if type_ not in self._good_types:
            if not isinstance(type_, str) or not type_:
                raise StoreError(
                    f"stream {stream_id!r}, event {index + 1} of {count}: type must be a non-empty "
                    f"string, got {type_!r}"
                )
            problem = json_problem(type_, "type")
            if problem:
                raise StoreError(f"{_where(stream_id, index, count, type_)}: {problem}; nothing was written")
            if len(self._good_types) < 10000:
                self._good_types.add(type_)
        if type(schema_version) is not int or schema_version < 1:
            raise StoreError(
                f"{_where(stream_id, index, count, type_)}: schema_version must be an int >= 1, "
                f"got {schema_version!r}"
            )
        if not isinstance(payload, dict):
            raise StoreError(
                f"{_where(stream_id, index, count, type_)}: payload must be a dict (a JSON object), "
                f"got {type(payload).__name__}"
            )
        try:
            text, copy = canonical_payload(payload)
        except ValueError as exc:
            raise StoreError(
                f"{_where(stream_id, index, count, type_)}: {exc}; nothing was written"
            ) from None
        return (type_, schema_version, text, copy)

    def _recorded_at(self) -> str:
        """Now, from the injected clock, as ISO-8601 UTC with microseconds. Backends call it while locked."""
        if self._clock is _utc_now:
            return datetime.now(UTC).isoformat(timespec="microseconds")
        now = self._clock()
        if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
            raise StoreError(f"the store's clock must return a timezone-aware datetime, got {now!r}")
        return now.astimezone(UTC).isoformat(timespec="microseconds")

    @staticmethod
    def _chain(
        stream_id: str,
        prepared: list[Prepared],
        *,
        first_version: int,
        last_position: int,
        last_hash: str,
        recorded_at: str,
    ) -> list[RawRow]:
        """The rows for a batch, each linked to the one before (``last_position``/``last_hash``)."""
        rows: list[RawRow] = []
        append = rows.append
        previous = last_hash
        position, version = last_position, first_version - 1
        link = chain_link(stream_id, recorded_at)
        for type_, schema_version, payload_text, _ in prepared:
            position += 1
            version += 1
            previous = link(previous, position, version, type_, schema_version, payload_text)
            append((position, stream_id, version, type_, schema_version, payload_text, recorded_at, previous))
        return rows

    # -- the read side --------------------------------------------------------------------------------

    def read(self, stream_id: str, after_version: int = 0) -> list[Recorded]:
        """The events of one stream with ``version > after_version``, in version order."""
        self._check_open()
        _check_stream_id(stream_id)
        _check_count("after_version", after_version)
        return self._to_recorded(self._raw_stream(stream_id, after_version))

    def read_all(self, after_position: int = 0, limit: int | None = None) -> list[Recorded]:
        """Events of all streams with ``position > after_position`` in global order, at most ``limit``."""
        self._check_open()
        _check_count("after_position", after_position)
        if limit is not None:
            _check_count("limit", limit)
            if limit == 0:
                return []
        return self._to_recorded(self._raw_range(after_position, limit))

    def iter_all(
        self, after_position: int = 0, batch_size: int = 10000, *, verify: bool = False
    ) -> Iterator[Recorded]:
        """Stream events after ``after_position`` in global order, ``batch_size`` rows in memory at a time.

        With ``verify=True`` the hash chain (and position continuity) is checked on the way and a
        :class:`CorruptLogError` naming the position is raised at the first bad record; the events before
        it have been yielded. Events appended during the iteration are included.
        """
        self._check_open()
        _check_count("after_position", after_position)
        _check_count("batch_size", batch_size, minimum=1)
        return self._iter_all(after_position, batch_size, verify)

    def iter_stored(self, stream_id: str, after_version: int = 0, batch_size: int = 10000) -> Iterator[Stored]:
        """One stream's events with ``version > after_version`` in version order, payloads left as their
        stored JSON text, ``batch_size`` rows in memory at a time.

        The way to replay a long stream: decode each with ``codec.decode_stored``, straight from the text.
        Events appended during the iteration are included.
        """
        self._check_open()
        _check_stream_id(stream_id)
        _check_count("after_version", after_version)
        _check_count("batch_size", batch_size, minimum=1)
        return self._iter_stored(stream_id, after_version, batch_size)

    def _iter_stored(self, stream_id: str, after_version: int, batch_size: int) -> Iterator[Stored]:
        make = Stored._make
        for rows in self._raw_stream_batches(stream_id, after_version, batch_size):
            self._check_open()
            self._check_links(rows)
            yield from map(make, rows)

    def _check_links(self, rows: list[RawRow]) -> None:
        """Every row read is checked against its own hash before anything acts on it (`unlinked_row`)."""
        bad = unlinked_row(rows, self._hashes_at)
        if bad is not None:
            raise CorruptLogError(
                f"{self._describe()}: {bad[1]}; nothing was read from it. Run `calmops verify` for a full "
                f"report, and restore the log from a backup"
            )

    def _hashes_at(self, positions: list[int]) -> dict[int, str]:
        """The stored hashes at these positions (those that exist)."""
        found = {}
        for position in positions:
            stored = self._hash_at(position)
            if stored is not None:
                found[position] = stored
        return found

    def _iter_all(self, after_position: int, batch_size: int, verify: bool) -> Iterator[Recorded]:
        checker = None
        if verify:
            previous = GENESIS_HASH if after_position == 0 else self._hash_at(after_position)
            if previous is None:
                raise StoreError(
                    f"{self._describe()}: cannot verify from position {after_position}: there is "
                    f"no such position (head is {self.head()})"
                )
            checker = ChainChecker(previous, after_position, track_versions=after_position == 0)
        position = after_position
        while True:
            self._check_open()
            rows = self._raw_range(position, batch_size)
            if not rows:
                return
            if checker is None:
                yield from self._iter_recorded(rows)
            else:
                yield from checker.iter_checked(rows, _make_recorded)
                if checker.problem is not None:
                    raise CorruptLogError(
                        f"{self._describe()}: {checker.problem}; run verify() for a full report, "
                        f"and restore the log from a backup"
                    )
            position = rows[-1][0]

    def verify(self, progress: Callable[[int, int], None] | None = None) -> VerifyResult:
        """Walk the whole log (streaming, memory bounded by the number of streams) and check the hash chain.

        Also detects missing positions, a gap in a stream's versions and a payload that is not a JSON
        object. ``progress(done, total)`` is called after every batch. Records appended during the walk
        are not checked.
        """
        self._check_open()
        total = self.head()
        checker = ChainChecker()
        checked = 0
        position = 0
        if progress is not None:
            progress(0, total)
        batch = 10000
        while position < total:
            try:
                rows = self._raw_range(position, batch)
            except CorruptLogError as exc:
                if batch > 1:  # narrow down to the first record that cannot be read
                    batch = 1
                    continue
                bad = checker.last_position + 1
                return VerifyResult(
                    False,
                    checked,
                    bad,
                    f"{exc}; position {bad} cannot be read, the records before it check out",
                )
            if not rows:
                break
            position = rows[-1][0]
            if position > total:  # appended during the walk: not ours to check
                rows = [row for row in rows if row[0] <= total]
            passed, problem = checker.check_rows(rows, _nothing)
            checked += len(passed)
            if problem is not None:
                bad = checker.last_position + 1
                return VerifyResult(False, checked, bad, f"{self._describe()}: {problem}")
            if progress is not None and (batch > 1 or checked % 10000 == 0):
                progress(min(checked, total), total)
        if checked != total:
            bad = checker.last_position + 1
            return VerifyResult(
                False,
                checked,
                bad,
                f"{self._describe()}: the last position is {total} but "
                f"only {checked} records were found in order",
            )
        if progress is not None and total:
            progress(total, total)
        message = (
            f"{self._describe()}: {checked} records, hash chain intact"
            if checked
            else f"{self._describe()}: empty log"
        )
        return VerifyResult(True, checked, None, message)

    def hash_at(self, position: int) -> str | None:
        """The stored hash of the record at ``position`` (None when there is none): an anchor to compare."""
        self._check_open()
        _check_count("position", position)
        return self._hash_at(position)

    @abc.abstractmethod
    def streams(self) -> list[str]:
        """The ids of all streams that have at least one event, sorted."""

    @abc.abstractmethod
    def head(self) -> int:
        """The last position in the log (0 when empty)."""

    @abc.abstractmethod
    def stream_version(self, stream_id: str) -> int:
        """The stream's current version (0 when it has no events)."""

    # -- snapshots (a cache: deleting them never changes a result) --------------------------------------

    def save_snapshot(self, stream_id: str, version: int, state: dict[str, Any], schema: str) -> None:
        """Keep ``state`` (a JSON object) as the stream's state folded up to ``version``; replaces any older one."""
        self._check_open()
        _check_stream_id(stream_id)
        _check_count("version", version, minimum=1)
        if not isinstance(schema, str) or not schema:
            raise StoreError(f"snapshot schema must be a non-empty string, got {schema!r}")
        if not isinstance(state, dict):
            raise StoreError(f"snapshot state must be a dict (a JSON object), got {type(state).__name__}")
        problem = json_problem(state, "state")
        if problem:
            raise StoreError(f"snapshot of stream {stream_id!r} at version {version}: {problem}")
        current = self.stream_version(stream_id)
        if version > current:
            raise StoreError(
                f"cannot snapshot stream {stream_id!r} at version {version}: the stream is only at "
                f"version {current}"
            )
        self._put_snapshot(stream_id, version, schema, canonical_json(state))

    def load_snapshot(self, stream_id: str, schema: str) -> Snapshot | None:
        """The stream's snapshot if one exists with this ``schema``, else None (then replay from version 0)."""
        self._check_open()
        _check_stream_id(stream_id)
        found = self._get_snapshot(stream_id)
        if found is None or found[1] != schema:
            return None
        version, stored_schema, state_text = found
        try:
            state = _parse_snapshot(state_text)
        except (ValueError, TypeError):
            return None  # a damaged cache entry is a miss, not an error: the log is the truth
        if type(state) is not dict:
            return None
        return Snapshot(stream_id, version, stored_schema, state)

    @abc.abstractmethod
    def delete_snapshots(self, stream_id: str | None = None) -> None:
        """Forget the snapshot of one stream, or of all streams."""

    # -- lifecycle ------------------------------------------------------------------------------------

    def close(self) -> None:
        """Release the store; further calls raise StoreError. Closing twice is harmless."""
        self._closed = True

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self._describe()} is closed: open a new store")

    def _describe(self) -> str:
        return type(self).__name__

    # -- helpers and what a backend supplies ----------------------------------------------------------

    def _payload(self, row: RawRow) -> dict[str, Any]:
        try:
            payload = _loads(row[5])
        except (ValueError, TypeError) as exc:
            raise CorruptLogError(
                f"{self._describe()}: position {row[0]}: payload is not JSON ({exc}); "
                f"run verify() and restore the log from a backup"
            ) from None
        if not isinstance(payload, dict):
            raise CorruptLogError(
                f"{self._describe()}: position {row[0]}: payload is not a JSON object; "
                f"run verify() and restore the log from a backup"
            )
        return payload

    def _to_recorded(self, rows: list[RawRow]) -> list[Recorded]:
        return list(self._iter_recorded(rows))

    def _iter_recorded(self, rows: list[RawRow]) -> Iterator[Recorded]:
        """Envelopes for raw rows, one at a time, once every row's hash was checked. The payload text is decoded
        with the C scanner directly (it is canonical: no surrounding whitespace to skip); anything unusual goes
        the slow, explaining way."""
        self._check_links(rows)
        scan, slow = _scan_once, self._payload
        for r in rows:
            text = r[5]
            try:
                payload, end = scan(text, 0)
                if end != len(text) or type(payload) is not dict:
                    payload = slow(r)
            except (ValueError, TypeError, StopIteration):
                payload = slow(r)
            yield Recorded(r[0], r[1], r[2], r[3], r[4], payload, r[6], r[7])

    @abc.abstractmethod
    def _append_rows(
        self, stream_id: str, prepared: list[Prepared], expected_version: int, idempotency_key: str | None
    ) -> tuple[list[RawRow], bool]:
        """Atomically: idempotency lookup, version check, chain and write the rows.

        Returns the rows and True, or the rows of the earlier call with the same key and False."""

    @abc.abstractmethod
    def _raw_stream(self, stream_id: str, after_version: int) -> list[RawRow]: ...

    @abc.abstractmethod
    def _raw_range(self, after_position: int, limit: int | None) -> list[RawRow]: ...

    @abc.abstractmethod
    def _raw_stream_batches(self, stream_id: str, after_version: int, batch_size: int) -> Iterator[list[RawRow]]:
        """The stream's rows after ``after_version`` in version order, at most ``batch_size`` per batch, each
        batch read when asked for (so appends made meanwhile are seen)."""

    @abc.abstractmethod
    def _hash_at(self, position: int) -> str | None: ...

    @abc.abstractmethod
    def _put_snapshot(self, stream_id: str, version: int, schema: str, state_text: str) -> None: ...

    @abc.abstractmethod
    def _get_snapshot(self, stream_id: str) -> tuple[int, str, str] | None: ...


def _parse_snapshot(text: str) -> Any:
    """A snapshot's JSON text parsed: msgspec first (a long pipeline's snapshot is 100 MB and msgspec parses it
    in two thirds of json's time), json for what msgspec refuses (a lone surrogate in a string, say), so the
    result is what ``json.loads`` gives."""
    try:
        return _msgspec_decode(text)
    except msgspec.DecodeError:
        return _loads(text)


def _where(stream_id: str, index: int, count: int, type_: str) -> str:
    return f"stream {stream_id!r}, event {index + 1} of {count} ({type_!r})"


def _nothing(row: RawRow, payload: dict[str, Any]) -> None:
    return None


def _make_recorded(r: RawRow, payload: dict[str, Any]) -> Recorded:
    return Recorded(r[0], r[1], r[2], r[3], r[4], payload, r[6], r[7])


def _check_stream_id(stream_id: Any) -> None:
    if not isinstance(stream_id, str) or not stream_id:
        raise StoreError(f"stream_id must be a non-empty string, got {stream_id!r}")
    problem = json_problem(stream_id, "stream_id")
    if problem:
        raise StoreError(problem)


def _check_count(name: str, value: Any, minimum: int = 0) -> None:
    if type(value) is not int or value < minimum:
        raise StoreError(f"{name} must be an int >= {minimum}, got {value!r}")
