"""Hypothesis: the state `replay --until-*` rebuilds is the fold of exactly the events up to that point.

Two pipelines' events are interleaved in one log (so global positions differ from versions) and the store's
clock ticks one second per append (so `--until-time` cuts between appends). Whether a snapshot exists, and
where, must never change the answer.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from builders import Driver, accept, at, config, failure, outcome, register, request, success
from hypothesis import given, settings
from hypothesis import strategies as st

from calmops_actors import readlog
from calmops_actors.home import make_codec, stream_id
from eventstore import InMemoryEventStore, SQLiteEventStore
from pipelines.core.decide import CommandRejected, RecordPerformance, RejectFile, ResumeRetraining, Rollback
from pipelines.core.state import replay

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def commands_p() -> list:
    return [
        register(config(circuit_breaker={"max_consecutive_failures": 1}), t=0),
        accept("b1", t=1), request("r1", t=2, strategies=("full",)), outcome("r1", success("full", 0.9), t=3),
        accept("b2", t=4),
        RecordPerformance(block_id="b2", model_version="v1", metrics={"accuracy": 0.8}, occurred_at=at(5)),
        RejectFile(file="bad.csv", sha256="d" * 64, reason_code="empty_file", message="empty", occurred_at=at(6)),
        request("r2", t=7), outcome("r2", success("full", 0.95), success("windowed", 0.92), champion=0.8, t=8),
        request("r3", t=9), outcome("r3", failure("full"), champion=0.95, t=10),
        ResumeRetraining(reason="fixed", occurred_at=at(11)),
        accept("b3", labelled=False, t=12),
        Rollback(to_version="v1", reason="test", occurred_at=at(13)),
        request("r4", t=14),
    ]


def commands_q() -> list:
    q = config(name="q")
    return [register(q, t=0), accept("c1", t=1), request("r1", t=2), accept("c2", t=3),
            outcome("r1", success("full", 0.7), t=4)]


class Ticking:
    """The store's clock: one second later at every append."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> tuple[Path, list, list[tuple[int, str]]]:
    """A home whose log interleaves pipelines p and q; returns p's events and their (position, recorded_at)."""
    home = tmp_path_factory.mktemp("until") / "home"
    store = SQLiteEventStore(home / "log.sqlite", codec=make_codec(), clock=Ticking())
    drivers = {"p": Driver(), "q": Driver()}
    envelopes: list[tuple[int, str]] = []
    queue_p, queue_q = commands_p(), commands_q()
    while queue_p or queue_q:
        for name, queue in (("p", queue_p), ("p", queue_p), ("q", queue_q)):  # two of p's for each of q's
            if not queue:
                continue
            d = drivers[name]
            before = d.state.version
            events = d(queue.pop(0))
            if events:
                recorded = store.append(stream_id(name), list(events), expected_version=before)
                if name == "p":
                    envelopes.extend((r.position, r.recorded_at) for r in recorded)
    store.close()
    return home, drivers["p"].log, envelopes


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 40), snap=st.one_of(st.none(), st.integers(1, 40)), walk=st.booleans())
def test_state_at_version_n_is_the_fold_of_the_first_n_events(log, n, snap, walk) -> None:
    home, events, _ = log
    n = min(n, len(events))
    with readlog.open_log(home) as store, pytest.MonkeyPatch.context() as mp:
        if walk:  # read the stream by walking the whole log in batches, as for a long stream
            mp.setattr(readlog, "SMALL_STREAM", 0)
            mp.setattr(readlog, "BATCH", 7)
        store.delete_snapshots()
        if snap is not None:
            readlog.save_snapshot(store, "p", replay(events[: min(snap, len(events))]))
        loaded = readlog.load_state(store, "p", until_version=n)
        assert loaded.state == replay(events[:n])
        assert loaded.state.version == n
        assert readlog.load_state(store, "p", until_version=n, use_snapshot=False).state == loaded.state
        store.delete_snapshots()


@settings(max_examples=60, deadline=None)
@given(position=st.integers(0, 60), snap=st.one_of(st.none(), st.integers(1, 40)), walk=st.booleans())
def test_state_at_position_p_folds_the_pipelines_events_up_to_p(log, position, snap, walk) -> None:
    home, events, envelopes = log
    expected = replay([e for e, (pos, _) in zip(events, envelopes, strict=True) if pos <= position])
    with readlog.open_log(home) as store, pytest.MonkeyPatch.context() as mp:
        if walk:
            mp.setattr(readlog, "SMALL_STREAM", 0)
            mp.setattr(readlog, "BATCH", 7)
        store.delete_snapshots()
        if snap is not None:
            readlog.save_snapshot(store, "p", replay(events[: min(snap, len(events))]))
        assert readlog.load_state(store, "p", until_position=position).state == expected
        store.delete_snapshots()


@settings(max_examples=40, deadline=None)
@given(seconds=st.floats(0, 40))
def test_state_at_a_time_folds_what_was_recorded_by_then(log, seconds) -> None:
    home, events, envelopes = log
    moment = T0 + timedelta(seconds=seconds)
    expected = replay([e for e, (_, rec) in zip(events, envelopes, strict=True)
                       if datetime.fromisoformat(rec) <= moment])
    with readlog.open_log(home) as store:
        assert readlog.load_state(store, "p", until_time=moment).state == expected


# --- random logs -----------------------------------------------------------------------------------

block_ids = st.sampled_from(["b1", "b2", "b3"])


@st.composite
def command(draw):
    kind = draw(st.sampled_from(["accept", "accept", "request", "outcome", "rollback", "resume"]))
    t = draw(st.integers(0, 1000))
    round_id = f"r{draw(st.integers(1, 3))}"
    if kind == "accept":
        bid = draw(block_ids)
        return accept(bid, content=bid + draw(st.sampled_from("AB")), labelled=draw(st.booleans()), t=t)
    if kind == "request":
        return request(round_id, t=t)
    if kind == "outcome":
        results = draw(st.lists(st.one_of(st.builds(success, st.sampled_from(["full", "windowed"]),
                                                    st.floats(0.5, 1.0)),
                                          st.builds(failure, st.just("stacking"))), max_size=2))
        return outcome(round_id, *results, champion=draw(st.one_of(st.none(), st.floats(0.5, 1.0))), t=t)
    if kind == "rollback":
        return Rollback(to_version=f"v{draw(st.integers(1, 3))}", reason="r", force=draw(st.booleans()),
                        occurred_at=at(t))
    return ResumeRetraining(reason="r", occurred_at=at(t))


@settings(max_examples=80, deadline=None)
@given(cmds=st.lists(command(), max_size=25), n=st.integers(0, 60), snap=st.integers(0, 60))
def test_on_random_logs_version_n_and_any_snapshot_agree_with_the_fold(cmds, n, snap) -> None:
    d = Driver()
    d(register())
    for cmd in cmds:
        with contextlib.suppress(CommandRejected):
            d(cmd)
    store = InMemoryEventStore(codec=make_codec())
    store.append(stream_id("p"), list(d.log), expected_version=0)
    n, snap = min(n, len(d.log)), min(snap, len(d.log))
    if snap:
        readlog.save_snapshot(store, "p", replay(d.log[:snap]))
    assert readlog.load_state(store, "p", until_version=n).state == replay(d.log[:n])
    assert readlog.load_state(store, "p").state == d.state
