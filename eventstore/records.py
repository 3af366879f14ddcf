"""The value types the store hands out: the recorded envelope, an event to append, snapshots, verify results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple


@dataclass(frozen=True, slots=True)
class EventData:
    """An event not yet recorded: its stable type name, JSON payload (a dict) and schema version.

    >>> EventData("DriftDetected", {"feature": "x"})
    EventData(type='DriftDetected', payload={'feature': 'x'}, schema_version=1)
    """

    type: str
    payload: dict[str, Any]
    schema_version: int = 1


@dataclass(frozen=True, slots=True)
class Recorded:
    """The envelope of a recorded event; the store owns every field but ``type``/``schema_version``/``payload``.

    ``position`` is global and strictly increasing from 1; ``version`` is gapless per stream from 1;
    ``recorded_at`` is ISO-8601 UTC with microseconds; ``hash`` is the hex sha256 chaining this record to
    the previous one (see ``eventstore.hash_chain``).
    """

    position: int
    stream_id: str
    version: int
    type: str
    schema_version: int
    payload: dict[str, Any]
    recorded_at: str
    hash: str


class Stored(NamedTuple):
    """A recorded event with its payload still as the stored JSON text: what `EventStore.iter_stored` yields.

    The same envelope as :class:`Recorded` (``payload_json`` in place of ``payload``). Why: a long replay
    decodes the text straight into the event class (`Codec.decode_stored`), so parsing it into a dict first
    would be wasted work; and a tuple costs less to build than a dataclass, a million times over.
    """

    position: int
    stream_id: str
    version: int
    type: str
    schema_version: int
    payload_json: str
    recorded_at: str
    hash: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A cached state of one stream folded up to ``version``; ``schema`` names the state's shape."""

    stream_id: str
    version: int
    schema: str
    state: dict[str, Any]


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of walking the whole log: ``first_bad_position`` is None when ``ok``."""

    ok: bool
    checked: int
    first_bad_position: int | None = None
    message: str = field(default="")
