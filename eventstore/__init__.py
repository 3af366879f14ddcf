"""calmops event store: an append-only, hash-chained log of events in streams, and projection checkpoints.

Public names: :class:`EventStore` (the interface), :class:`SQLiteEventStore` and :class:`InMemoryEventStore`
(its backends), :class:`Recorded` / :class:`Stored` / :class:`EventData` (recorded events, payload parsed or
as stored text, and new events), :class:`Codec` (event classes <-> JSON with upcasters), :class:`Snapshot`, :class:`VerifyResult`, the errors
(:class:`StoreError`, :class:`ConcurrencyError`, :class:`CorruptLogError`), :class:`ProjectionRunner` with
:class:`TableSpec` / :class:`Upsert` / :class:`Delete`, and :func:`canonical_json`. See docs/eventstore.md.

>>> store = InMemoryEventStore()
>>> store.append("pipeline-1", [EventData("DriftDetected", {"feature": "age"})], expected_version=0)[0].version
1
>>> try:
...     store.append("pipeline-1", [EventData("DriftDetected", {"feature": "age"})], expected_version=0)
... except ConcurrencyError as exc:
...     print(exc.expected, exc.actual)
0 1
"""

from eventstore.canonical import canonical_json
from eventstore.codec import Codec
from eventstore.errors import ConcurrencyError, CorruptLogError, StoreError
from eventstore.memory_store import InMemoryEventStore
from eventstore.projections import Delete, Projection, ProjectionRunner, TableSpec, Upsert
from eventstore.records import EventData, Recorded, Snapshot, Stored, VerifyResult
from eventstore.sqlite_store import SQLiteEventStore
from eventstore.store import EventStore

__all__ = [
    "Codec",
    "ConcurrencyError",
    "CorruptLogError",
    "Delete",
    "EventData",
    "EventStore",
    "InMemoryEventStore",
    "Projection",
    "ProjectionRunner",
    "Recorded",
    "SQLiteEventStore",
    "Snapshot",
    "Stored",
    "StoreError",
    "TableSpec",
    "Upsert",
    "VerifyResult",
    "canonical_json",
]
