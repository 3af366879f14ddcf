"""The hash chain: each record's hash covers the previous hash and the record's canonical bytes.

``hash = sha256(previous_hash_hex + canonical_json(record)).hexdigest()`` where ``record`` is the dict
``{position, stream_id, version, type, schema_version, payload, recorded_at}``, the text is encoded as
UTF-8, and the first record's previous hash is :data:`GENESIS_HASH` (64 zeros). Changing any byte of any
record, or removing or reordering records, breaks every hash from that point on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from json.encoder import encode_basestring  # the exact string spelling json.dumps(ensure_ascii=False) uses
from typing import Any, TypeVar

from eventstore.canonical import canonical_json

__all__ = ["GENESIS_HASH", "record_hash", "record_hash_from_text", "chain_link", "ChainChecker", "RawRow",
           "unlinked_row"]

GENESIS_HASH = "0" * 64

# (position, stream_id, version, type, schema_version, payload_json_text, recorded_at, hash)
RawRow = tuple[int, str, int, str, int, str, str, str]

_sha256 = hashlib.sha256
_scan_once = json.decoder.JSONDecoder().scan_once  # json.loads minus its Python wrapper (text is canonical)
T = TypeVar("T")


def record_hash(
    previous_hash: str,
    *,
    position: int,
    stream_id: str,
    version: int,
    type: str,
    schema_version: int,
    payload: dict[str, Any],
    recorded_at: str,
) -> str:
    """The reference definition of a record's hash (slow but obvious; the stores use the fast twin).

    >>> record_hash(GENESIS_HASH, position=1, stream_id="s", version=1, type="T", schema_version=1,
    ...             payload={}, recorded_at="2026-01-01T00:00:00.000000+00:00")[:16]
    '2fee5270ef39126a'
    """
    record = {
        "position": position,
        "stream_id": stream_id,
        "version": version,
        "type": type,
        "schema_version": schema_version,
        "payload": payload,
        "recorded_at": recorded_at,
    }
    return _sha256((previous_hash + canonical_json(record)).encode("utf-8")).hexdigest()


def record_hash_from_text(
    previous_hash: str,
    position: int,
    stream_id: str,
    version: int,
    type_: str,
    schema_version: int,
    payload_text: str,
    recorded_at: str,
) -> str:
    """Same value as :func:`record_hash` when ``payload_text == canonical_json(payload)``, without re-dumping.

    The canonical record is spelled by hand: its keys in sorted order are payload, position, recorded_at,
    schema_version, stream_id, type, version. The stored payload text is used as is, so a payload that was
    edited on disk (even only its spacing) no longer matches its hash.
    """
    body = (
        f'{previous_hash}{{"payload":{payload_text},"position":{position:d},'
        f'"recorded_at":{encode_basestring(recorded_at)},"schema_version":{schema_version:d},'
        f'"stream_id":{encode_basestring(stream_id)},"type":{encode_basestring(type_)},"version":{version:d}}}'
    )
    return _sha256(body.encode("utf-8")).hexdigest()


def chain_link(stream_id: str, recorded_at: str) -> Callable[[str, int, int, str, int, str], str]:
    """:func:`record_hash_from_text` for a batch sharing one stream and timestamp (their spelling is reused).

    ``link(previous_hash, position, version, type, schema_version, payload_text) -> hash``
    """
    stream_json, at_json = encode_basestring(stream_id), encode_basestring(recorded_at)
    types: dict[str, str] = {}

    def link(
        previous: str, position: int, version: int, type_: str, schema_version: int, payload_text: str
    ) -> str:
        type_json = types.get(type_)
        if type_json is None:
            type_json = types[type_] = encode_basestring(type_)
        body = (
            f'{previous}{{"payload":{payload_text},"position":{position:d},"recorded_at":{at_json},'
            f'"schema_version":{schema_version:d},"stream_id":{stream_json},"type":{type_json},'
            f'"version":{version:d}}}'
        )
        return _sha256(body.encode("utf-8")).hexdigest()

    return link


def unlinked_row(rows: list[RawRow], hash_before: Callable[[list[int]], dict[int, str]]) -> tuple[int, str] | None:
    """The first row whose stored hash is not its own: `(position, why)`, or None when every row links.

    A row links when its hash is `sha256(hash of the position before + the row's canonical record)`. Rows are
    in position order but need not be contiguous (one stream of a shared log); `hash_before(positions)`
    gives the stored hashes at the positions just before the gaps, in one lookup per batch. This is the
    check a reader makes on what it reads: a record edited without recomputing the chain fails it, at one
    hash per row; a chain recomputed from an edit onwards is caught by the trusted head (`trusted_head`).
    """
    if not rows:
        return None
    wanted = [r[0] - 1 for i, r in enumerate(rows) if r[0] > 1 and (i == 0 or rows[i - 1][0] != r[0] - 1)]
    known = hash_before(wanted) if wanted else {}
    last_position, previous = -1, GENESIS_HASH
    for position, stream_id, version, type_, schema_version, payload_text, recorded_at, stored in rows:
        if position != last_position + 1:
            previous = GENESIS_HASH if position == 1 else known.get(position - 1)
            if previous is None:
                return position - 1, f"position {position - 1} is missing"
        try:
            linked = record_hash_from_text(previous, position, stream_id, version, type_, schema_version,
                                           payload_text, recorded_at) == stored
        except (TypeError, ValueError, UnicodeError):
            linked = False
        if not linked:
            return position, (f"position {position}: its hash does not match its content: the record was "
                              "changed after it was written")
        last_position, previous = position, stored
    return None


class ChainChecker:
    """Checks raw rows in position order: contiguous positions, a JSON-object payload, the hash link.

    With ``track_versions`` it also checks that each stream's versions run 1, 2, 3, ... (memory grows with
    the number of streams, not of events). ``check`` returns None or a message for the first bad row.
    """

    __slots__ = ("previous_hash", "last_position", "track_versions", "versions", "problem")

    def __init__(
        self, previous_hash: str = GENESIS_HASH, last_position: int = 0, *, track_versions: bool = True
    ) -> None:
        self.previous_hash = previous_hash
        self.last_position = last_position
        self.track_versions = track_versions
        self.versions: dict[str, int] = {}
        self.problem: str | None = None

    def check(self, row: RawRow, payload: Any = None) -> str | None:
        """Check one row (``payload`` may be given when the caller already decoded it)."""
        position, stream_id, version, type_, schema_version, payload_text, recorded_at, stored = row
        if not (
            position == self.last_position + 1
            and type(position) is int
            and type(stream_id) is str
            and type(version) is int
            and type(type_) is str
            and type(schema_version) is int
            and type(payload_text) is str
            and type(recorded_at) is str
            and type(stored) is str
        ):
            return self._shape_problem(row)
        if payload is None:
            try:
                payload = json.loads(payload_text)
            except ValueError as exc:
                return f"position {position}: payload is not JSON ({exc})"
        if not isinstance(payload, dict):
            return f"position {position}: payload is a JSON {type(payload).__name__}, not an object"
        if self.track_versions:
            expected = self.versions.get(stream_id, 0) + 1
            if version != expected:
                return (
                    f"position {position}: stream {stream_id!r} jumps to version {version}, "
                    f"expected {expected} (versions must be gapless)"
                )
            self.versions[stream_id] = version
        actual = record_hash_from_text(
            self.previous_hash, position, stream_id, version, type_, schema_version, payload_text, recorded_at
        )
        if actual != stored:
            return (
                f"position {position}: hash mismatch (stored {stored[:12]}..., computed {actual[:12]}...): "
                f"the record, or one before it, was changed after it was written"
            )
        self.previous_hash = stored
        self.last_position = position
        return None

    def check_rows(
        self, rows: list[RawRow], make: Callable[[RawRow, dict[str, Any]], T]
    ) -> tuple[list[T], str | None]:
        """Check rows in order and decode their payloads: ``([make(row, payload) ...], None)``, or the items
        before the first bad row and its problem. The same rules as :meth:`check`, in one tight loop."""
        items = list(self.iter_checked(rows, make))
        return items, self.problem

    def iter_checked(self, rows: list[RawRow], make: Callable[[RawRow, dict[str, Any]], T]) -> Iterator[T]:
        """Yield ``make(row, payload)`` for each good row; stop at the first bad one, leaving its problem in
        ``self.problem`` (None when all rows passed). One item at a time, so a replay keeps little alive."""
        self.problem = None
        previous, last = self.previous_hash, self.last_position
        versions = self.versions if self.track_versions else None
        scan, enc, sha256 = _scan_once, encode_basestring, _sha256
        for row in rows:
            position, stream_id, version, type_, schema_version, payload_text, recorded_at, stored = row
            ok = (
                position == last + 1
                and type(position) is int
                and type(stream_id) is str
                and type(version) is int
                and type(type_) is str
                and type(schema_version) is int
                and type(payload_text) is str
                and type(recorded_at) is str
                and type(stored) is str
            )
            if ok:
                try:
                    payload, end = scan(payload_text, 0)
                    ok = end == len(payload_text) and type(payload) is dict
                except (ValueError, StopIteration):
                    ok = False
            if ok and versions is not None:
                ok = versions.get(stream_id, 0) + 1 == version
            if ok:
                body = (
                    f'{previous}{{"payload":{payload_text},"position":{position:d},'
                    f'"recorded_at":{enc(recorded_at)},"schema_version":{schema_version:d},'
                    f'"stream_id":{enc(stream_id)},"type":{enc(type_)},"version":{version:d}}}'
                )
                ok = sha256(body.encode("utf-8")).hexdigest() == stored
            if not ok:  # let the plain checker explain (or accept, e.g. JSON with surrounding spaces)
                self.previous_hash, self.last_position = previous, last
                problem = self.check(row)
                if problem is not None:
                    self.problem = problem
                    return
                payload = json.loads(payload_text)
            elif versions is not None:
                versions[stream_id] = version
            previous, last = stored, position
            self.previous_hash, self.last_position = previous, last
            yield make(row, payload)

    def _shape_problem(self, row: RawRow) -> str:
        position = row[0]
        if not isinstance(position, int) or position != self.last_position + 1:
            if isinstance(position, int) and position > self.last_position + 1:
                return (
                    f"positions jump from {self.last_position} to {position}: "
                    f"{position - self.last_position - 1} record(s) are missing"
                )
            return f"position {position!r} does not follow position {self.last_position}"
        return f"position {position}: {_field_types_problem(*row[1:])}"

    def check_all(self, rows: Iterable[RawRow]) -> tuple[int, int | None, str | None]:
        """Check rows until the first bad one: ``(checked_ok, first_bad_position, message)``."""
        checked = 0
        for row in rows:
            problem = self.check(row)
            if problem is not None:
                return checked, self.last_position + 1, problem
            checked += 1
        return checked, None, None


def _field_types_problem(
    stream_id: Any,
    version: Any,
    type_: Any,
    schema_version: Any,
    payload_text: Any,
    recorded_at: Any,
    stored: Any,
) -> str | None:
    for name, value, kind in (
        ("stream_id", stream_id, str),
        ("version", version, int),
        ("type", type_, str),
        ("schema_version", schema_version, int),
        ("payload", payload_text, str),
        ("recorded_at", recorded_at, str),
        ("hash", stored, str),
    ):
        if type(value) is not kind:
            return f"{name} is {value!r:.40} ({type(value).__name__}), expected {kind.__name__}"
    return None
