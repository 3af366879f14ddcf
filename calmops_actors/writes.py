"""The write path, once: `decide` on the state as read, append at that version, hand back what was recorded.

The actor (`PipelineActor.execute`, which then evolves its state and retries on a conflict) and the commands
that write (`rollback`, `resume`) all go through `record`, so a rule about how a command becomes facts lives in
`decide` and nowhere else.
"""

from __future__ import annotations

from eventstore import EventStore
from pipelines.core.decide import Command, decide
from pipelines.core.events import Event
from pipelines.core.state import PipelineState

__all__ = ["record"]


def record(store: EventStore, stream: str, state: PipelineState, command: Command,
           key: str | None = None) -> tuple[Event, ...]:
    """The events `command` produces in `state`, appended to `stream` at `state.version` (with an idempotency
    key when given) and decoded back as recorded; `()` when `decide` says nothing. `decide`'s
    `CommandRejected` and the store's `ConcurrencyError` (someone appended since `state` was read) propagate:
    each caller knows what to do with them."""
    events = decide(state, command)
    if not events:
        return ()
    recorded = store.append(stream, list(events), expected_version=state.version, idempotency_key=key)
    return tuple(store.codec.decode(r) for r in recorded)
