"""Read helpers shared by the replay and audit commands: open a home without creating it, find pipelines,
fold a pipeline's state up to a version, position or time (from a snapshot when one fits), save snapshots.

Nothing here writes an event. The only write is `save_snapshot`, into the log file's cache table: deleting
every snapshot changes no result, it only makes the next load replay from the first event.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from calmops_actors.cli_common import resolve_home
from calmops_actors.errors import UserError
from calmops_actors.home import Home, make_codec, pipeline_name, stream_id
from eventstore import CorruptLogError, Recorded, SQLiteEventStore, Stored, StoreError
from pipelines.core.events import Event
from pipelines.core.state import PipelineState, evolve
from pipelines.replay import snapshot
from pipelines.replay.fold import fold

if TYPE_CHECKING:
    pass

__all__ = [
    "Loaded",
    "Progress",
    "bound",
    "iter_events",
    "record_json",
    "store_for",
    "user_errors",
    "list_pipelines",
    "load_state",
    "open_log",
    "parse_time",
    "require_pipeline",
    "save_snapshot",
]

BATCH = 20_000
SMALL_STREAM = 100_000  # events of one stream read in one query; longer streams are walked in batches


def open_log(home: Path, check_head: bool = True) -> SQLiteEventStore:
    """The home's event log, opened as is; a missing home or log is a UserError (nothing is created). A log
    that does not match its trusted head is refused (CorruptLogError) unless `check_head` is False (`verify`
    and `head`, which report it)."""
    h = Home(Path(home))
    if not h.root.is_dir():
        raise UserError(f"no calmops home at {h.root}: give --home (or set CALMOPS_HOME) to the folder that "
                        "holds log.sqlite; `calmops run CONFIG` creates one")
    if not h.log_path.is_file():
        raise UserError(f"{h.root} has no event log ({h.log_path.name} is missing): is this a calmops home? "
                        "Nothing has been recorded there yet")
    try:
        return SQLiteEventStore(h.log_path, codec=make_codec(), check_head=check_head)
    except CorruptLogError as err:
        raise UserError(f"{err}\nrun `calmops verify` to see the damage") from None
    except StoreError as err:
        raise UserError(str(err)) from None


def user_errors(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Wrap a command's `run`: a store error (a damaged or locked log) becomes a UserError with what to do,
    so the command exits 2 with a message instead of a traceback."""
    import functools

    @functools.wraps(run)
    def wrapped(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except CorruptLogError as err:
            raise UserError(f"{err}\nrun `calmops verify` to see the damage") from None
        except StoreError as err:
            raise UserError(str(err)) from None

    return wrapped


def store_for(args: argparse.Namespace) -> SQLiteEventStore:
    """The log of the home named by `--home` (or $CALMOPS_HOME, or ./calmops_home)."""
    return open_log(resolve_home(args))


def record_json(record: Recorded) -> dict:
    """One recorded event as the JSON lines of `replay --events --json`, `events --json` and `export`."""
    return {"position": record.position, "stream": record.stream_id, "version": record.version,
            "type": record.type, "recorded_at": record.recorded_at, "data": record.payload}


def list_pipelines(store: SQLiteEventStore) -> list[str]:
    """Names of the pipelines that have at least one event, sorted."""
    return [name for s in store.streams() if (name := pipeline_name(s)) is not None]


def require_pipeline(store: SQLiteEventStore, name: str) -> str:
    """The stream id of pipeline `name`; a UserError naming the known pipelines when there is none."""
    if store.stream_version(stream_id(name)) > 0:  # one index lookup: `status` asks this for every pipeline
        return stream_id(name)
    known = list_pipelines(store)
    if name not in known:
        listed = ", ".join(known) if known else "none yet"
        raise UserError(f"no pipeline named {name!r} in {store.path.parent}; known pipelines: {listed}")
    return stream_id(name)


def parse_time(text: str, option: str = "--until-time") -> datetime:
    """An ISO-8601 time; without a zone it is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option} {text!r} is not an ISO-8601 time; e.g. 2026-03-01T12:00:00+00:00 "
                        "or 2026-03-01") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Progress:
    """A progress bar on stderr, drawn only on a terminal and only once the work has taken more than 2 s."""

    def __init__(self, label: str, stream: TextIO | None = None, delay: float = 2.0) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.delay = delay
        self.start = time.monotonic()
        self.drawn = False
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or time.monotonic() - self.start < self.delay:
            return
        share = done / total if total else 1.0
        bar = "#" * int(share * 30)
        self.stream.write(f"\r{self.label} [{bar:<30}] {done:,}/{total:,} ({share:.0%})")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a fold allocates millions of small objects that all stay
    alive (records, maps, events): its repeated scans of the growing state cost more than the fold itself.
    Reference counting still frees everything that is dropped. Before the collector resumes, what survived
    (the state) is frozen: otherwise its first pass would scan every object allocated during the pause."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.freeze()
            gc.enable()


@dataclass
class Loaded:
    """A folded state and where the fold stopped."""

    state: PipelineState
    position: int | None = None  # global position of the last event folded
    recorded_at: str | None = None
    snapshot_version: int | None = None  # the snapshot the fold started from, if any
    events: list[tuple[Recorded, Event]] = field(default_factory=list)  # with keep_events: what was folded


Bound = Callable[[Any], bool]  # takes a Recorded or a Stored: reads version, position, recorded_at


def bound(until_version: int | None, until_position: int | None, until_time: datetime | None) -> Bound | None:
    """A predicate that is True for the first record *past* the requested point."""
    if until_version is not None:
        return lambda r: r.version > until_version
    if until_position is not None:
        return lambda r: r.position > until_position
    if until_time is not None:
        return lambda r: datetime.fromisoformat(r.recorded_at) > until_time
    return None


def iter_events(store: SQLiteEventStore, stream: str, *, after_version: int = 0, past: Bound | None = None,
                progress: Callable[[int, int], None] | None = None) -> Iterator[tuple[Recorded, Event]]:
    """The stream's records and decoded events in order, stopping before the first record `past` accepts.

    Each record is a `Recorded` with its payload parsed, for the timeline and exports (a replay that only
    folds reads `Stored` records instead: see `_load`). A stream of at most SMALL_STREAM events (or the tail
    after `after_version`) is read by its index, one query; a longer one is walked through the whole log in
    batches, so memory stays bounded.
    """
    decode = store.codec.decode
    total = store.stream_version(stream)
    if after_version or total <= SMALL_STREAM:
        records: Iterator[Recorded] = iter(store.read(stream, after_version=after_version))
    else:
        records = (r for r in store.iter_all(batch_size=BATCH) if r.stream_id == stream)
    done = 0
    for record in records:
        if past is not None and past(record):
            break
        yield record, decode(record)
        done += 1
        if progress is not None and done % BATCH == 0:
            progress(record.version, total)
        if record.version >= total:  # the rest of the log belongs to other streams
            break
    if progress is not None:
        progress(total if past is None else done + after_version, total)


def load_state(store: SQLiteEventStore, name: str, *, until_version: int | None = None,
               until_position: int | None = None, until_time: datetime | None = None, use_snapshot: bool = True,
               keep_events: bool = False, progress: Callable[[int, int], None] | None = None) -> Loaded:
    """Fold pipeline `name` up to the given point (the whole stream by default).

    At most one bound applies. A snapshot is used when it lies at or before the point and `keep_events` is
    off (the timeline needs every event); otherwise the fold starts from the first event.
    """
    if sum(b is not None for b in (until_version, until_position, until_time)) > 1:
        raise UserError("give at most one of --until-version, --until-position, --until-time")
    for label, value in (("--until-version", until_version), ("--until-position", until_position)):
        if value is not None and value < 0:
            raise UserError(f"{label} must be 0 or more, got {value}")
    stream = require_pipeline(store, name)
    with gc_paused():
        return _load(store, stream, bound(until_version, until_position, until_time), until_version,
                     use_snapshot, keep_events, progress)


def _load(store: SQLiteEventStore, stream: str, past: Bound | None, until_version: int | None,
          use_snapshot: bool, keep_events: bool, progress: Callable[[int, int], None] | None) -> Loaded:
    state, loaded = PipelineState.initial(), Loaded(PipelineState.initial())
    if use_snapshot and not keep_events:
        found = _snapshot(store, stream, until_version)
        if found is not None:
            snap_state, tail = found
            first_past = next((r for r in tail if past is not None and past(r)), None)
            if first_past is None or first_past.version > snap_state.version:
                return _fold_tail(snap_state, tail, past, store, stream)
    last: Recorded | Stored | None = None

    def events() -> Iterator[Event]:
        """`iter_events` without payloads, written out: one generator between the rows and the fold, not two
        (a million events pass through it); `last` follows the records."""
        nonlocal last
        decode, total, done = store.codec.decode_stored, store.stream_version(stream), 0
        for record in store.iter_stored(stream, batch_size=BATCH):
            if past is not None and past(record):
                break
            last = record
            yield decode(record)
            done += 1
            if progress is not None and done % BATCH == 0:
                progress(record.version, total)
        if progress is not None:
            progress(total if past is None else done, total)

    try:
        if keep_events:
            for last, event in iter_events(store, stream, past=past, progress=progress):  # noqa: B007
                state = evolve(state, event)
                loaded.events.append((last, event))
        else:
            state = fold(events(), state)
    except CorruptLogError as err:
        raise UserError(f"{err}\nrun `calmops verify` to see the damage") from None
    if last is not None:
        loaded.position, loaded.recorded_at = last.position, last.recorded_at
    loaded.state = state
    return loaded


def _snapshot(store: SQLiteEventStore, stream: str,
              until_version: int | None) -> tuple[PipelineState, list[Stored]] | None:
    """The stream's snapshot (if it fits this code's state schema and the bound) and the records from it on."""
    state = cached_state(store, stream)
    if state is None or (until_version is not None and state.version > until_version):
        return None
    # from the snapshot's own last record on, so a position/time bound can tell whether the snapshot fits
    return state, list(store.iter_stored(stream, after_version=state.version - 1, batch_size=BATCH))


def cached_state(store: Any, stream: str) -> PipelineState | None:
    """The stream's snapshot as a state, when one exists for this code's state schema and reads back whole (the
    actor's start and every reader of the log use it)."""
    snap = store.load_snapshot(stream, snapshot.SCHEMA)
    if snap is None:
        return None
    try:
        state = snapshot.from_dict(snap.state)
    except (KeyError, TypeError, ValueError):
        return None  # an unreadable cache entry is a miss: fold the log
    return state if state.version == snap.version else None


def _fold_tail(state: PipelineState, tail: list[Stored], past: Bound | None, store: SQLiteEventStore,
               stream: str) -> Loaded:
    loaded = Loaded(state, snapshot_version=state.version)
    decode = store.codec.decode_stored
    for record in tail:
        if past is not None and past(record):
            break
        if record.version > state.version:
            try:
                state = evolve(state, decode(record))
            except CorruptLogError as err:
                raise UserError(f"{err}\nrun `calmops verify` to see the damage") from None
        loaded.position, loaded.recorded_at = record.position, record.recorded_at
    loaded.state = state
    return loaded


def save_snapshot(store: SQLiteEventStore, name: str, state: PipelineState) -> int:
    """Cache `state` as pipeline `name`'s snapshot (replacing any older one); returns its version."""
    if state.version == 0:
        raise UserError(f"pipeline {name!r} has no events to snapshot")
    store.save_snapshot(stream_id(name), state.version, snapshot.to_dict(state), snapshot.SCHEMA)
    return state.version
