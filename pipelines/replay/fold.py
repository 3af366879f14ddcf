"""`fold(events, state)`: the fold `reduce(evolve, events, state)` (`core.state.replay`, the reference), computed
faster over long runs of events.

Why: rebuilding a pipeline from its log folds every event it ever recorded, and almost all of a long log is
the events every block brings (`BlockArrived`, `PerformanceMeasured`, `PerformanceEstimated`, `DriftChecked`). `evolve` answers
each of them with a new state, a new block record and new versions of up to three persistent maps, because a
caller may keep any intermediate state. A replay keeps only the last one. So here a run of block events is
gathered in plain dicts (a block's fields in a list, changed in place) and written once when the run ends:
one record per block, one batched update per map, one state per run. Every other event goes through
`evolve` itself, so the rules of the fold stay in one place; this module only knows what the four block
events change, which is what `evolve`'s first four cases say.

The result equals `reduce(evolve, events, state)` (`tests/unit/test_fast_replay.py` checks it on random
histories that reach every branch, on a hand-written life and on the benchmark's log).

>>> from pipelines.core.events import Artifact, BlockArrived, DriftChecked
>>> art = Artifact(sha256="a" * 64, kind="frame", size=1)
>>> log = [BlockArrived(block_id="b1", file="f.csv", sha256="s1", rows=3, labelled=True, artifact=art),
...        DriftChecked(block_id="b1", drifted=True, reasons=("x moved",), features=())]
>>> from pipelines.core.state import replay as one_event_at_a_time
>>> state = fold(log)
>>> state == one_event_at_a_time(log), state.version, state.blocks["b1"].drifted
(True, 2, True)
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import attrgetter

from pipelines.core.events import BlockArrived, DriftChecked, Event, PerformanceEstimated, PerformanceMeasured
from pipelines.core.record_copies import maker, replacer, slot_setters
from pipelines.core.state import BlockRecord, Counters, PipelineState, evolve

__all__ = ["fold"]

_state = replacer(PipelineState)
_counters = replacer(Counters)
_make_block = maker(BlockRecord)
_block_fields = attrgetter(*(f for f in BlockRecord.__slots__))  # type: ignore[attr-defined]
assert len(slot_setters(BlockRecord)) == len(BlockRecord.__slots__)  # every slot is a field, in order
# where a block's values sit in its list (BlockRecord's field order)
_DRIFTED, _METRICS, _SCORED_BY, _SERVED_BY, _ESTIMATED_BY = (
    BlockRecord.__slots__.index(n) for n in ("drifted", "metrics", "scored_by", "served_by", "estimated_by"))
_UNSET = (None,) * (len(BlockRecord.__slots__) - BlockRecord.__slots__.index("drifted"))  # a new block's checks


def fold(events: Iterable[Event], state: PipelineState | None = None) -> PipelineState:
    """Fold `events` into `state` (the initial state by default); equal to `reduce(evolve, events, state)`."""
    state = PipelineState.initial() if state is None else state
    run = _Run(state)
    for event in events:
        kind = type(event)
        if kind is BlockArrived:
            run.arrived(event)
        elif kind is PerformanceMeasured:
            run.measured(event)
        elif kind is DriftChecked:
            run.checked(event)
        elif kind is PerformanceEstimated:
            run.estimated(event)
        else:
            state = evolve(run.state(), event)
            run = _Run(state)
    return run.state()


class _Run:
    """A run of block events since `base`: what they changed, kept in plain dicts until `state()` is asked."""

    __slots__ = ("base", "version", "at", "blocks", "order", "files", "order_len", "last_block",
                 "last_check_drifted", "concept_state", "arrivals", "checks")

    def __init__(self, base: PipelineState) -> None:
        self.base = base
        self.version, self.at = base.version, base.last_event_at
        self.blocks: dict[str, list] = {}  # block_id -> its BlockRecord fields, in field order
        self.order: dict[int, str] = {}
        self.files: dict[str, str] = {}
        self.order_len = len(base.block_order)
        self.last_block, self.last_check_drifted = base.last_block, base.last_check_drifted
        self.concept_state = base.concept_state
        self.arrivals = self.checks = 0

    def _fields(self, block_id: str) -> list | None:
        fields = self.blocks.get(block_id)
        if fields is None:
            record = self.base.blocks.get(block_id)
            if record is None:
                return None
            fields = self.blocks[block_id] = list(_block_fields(record))
        return fields

    def arrived(self, e: BlockArrived) -> None:
        self.order_len = seq = self.order_len + 1
        self.blocks[e.block_id] = [e.block_id, seq, e.file, e.sha256, e.rows, e.labelled, e.artifact,
                                   e.occurred_at, *_UNSET]
        self.order[seq] = e.block_id
        self.files[e.sha256] = "accepted"
        self.last_block = e.block_id
        self.arrivals += 1
        self.version += 1
        self.at = e.occurred_at or self.at

    def measured(self, e: PerformanceMeasured) -> None:
        fields = self._fields(e.block_id)
        if fields is not None:
            fields[_METRICS] = e.metrics
            fields[_SCORED_BY] = e.model_version
        self.version += 1
        self.at = e.occurred_at or self.at

    def estimated(self, e: PerformanceEstimated) -> None:
        fields = self._fields(e.block_id)
        if fields is not None:
            fields[_ESTIMATED_BY] = e.version
        self.version += 1
        self.at = e.occurred_at or self.at

    def checked(self, e: DriftChecked) -> None:
        fields = self._fields(e.block_id)
        if fields is not None:
            fields[_DRIFTED] = e.drifted
            fields[_SERVED_BY] = self.base.champion  # no promotion inside a run of block events
        self.last_check_drifted = e.drifted
        if e.concept is not None:
            self.concept_state = e.concept.state
        self.checks += 1
        self.version += 1
        self.at = e.occurred_at or self.at

    def state(self) -> PipelineState:
        base = self.base
        if self.version == base.version:
            return base
        c = base.counters
        return _state(
            base, version=self.version, last_event_at=self.at,
            blocks=base.blocks.update({k: _make_block(*v) for k, v in self.blocks.items()}),
            block_order=base.block_order.update(self.order) if self.order else base.block_order,
            files=base.files.update(self.files) if self.files else base.files,
            last_block=self.last_block, last_check_drifted=self.last_check_drifted,
            concept_state=self.concept_state,
            counters=_counters(c, blocks=c.blocks + self.arrivals, drift_checks=c.drift_checks + self.checks)
            if self.arrivals or self.checks else c,
        )

