"""The SQLite and in-memory stores, driven side by side by random commands, agree with each other and with
a tiny model: same results, same exception types, same log, and both verify at the end."""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from eventstore import ConcurrencyError, EventData, InMemoryEventStore, SQLiteEventStore, StoreError

STREAMS = ("a", "b", "c")
KEYS = ("k1", "k2", "k3")


class StepClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=1500)
        return self.now


def outcome(call):
    """The result, or the exception's type and concurrency details: what both stores must agree on."""
    try:
        return ("ok", call())
    except ConcurrencyError as exc:
        return ("conflict", exc.stream_id, exc.expected, exc.actual)
    except StoreError as exc:
        return ("error", type(exc).__name__)


class StoresAgree(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.mkdtemp(prefix="store-sm-")
        self.sqlite = SQLiteEventStore(Path(self.folder) / "events.db", clock=StepClock())
        self.memory = InMemoryEventStore(clock=StepClock())
        self.versions = dict.fromkeys(STREAMS, 0)  # the model
        self.keys: dict[tuple[str, str], list] = {}
        self.counter = 0

    def both(self, call):
        left, right = outcome(lambda: call(self.sqlite)), outcome(lambda: call(self.memory))
        assert left == right
        return left

    @rule(
        stream=st.sampled_from(STREAMS),
        size=st.integers(0, 3),
        drift=st.sampled_from([0, 0, 0, -1, 1, -3]),
        key=st.none() | st.sampled_from(KEYS),
    )
    def append(self, stream, size, drift, key):
        expected = max(0, self.versions[stream] + drift)
        events = [EventData("Tick", {"n": self.counter + i, "tags": ["x"] * i}) for i in range(size)]
        self.counter += size
        result = self.both(lambda s: s.append(stream, events, expected, idempotency_key=key))
        # the model: empty -> []; a used key -> the original; a stale version -> conflict; else appended
        if not events:
            assert result == ("ok", [])
        elif key is not None and (stream, key) in self.keys:
            assert result == ("ok", self.keys[(stream, key)])
        elif expected != self.versions[stream]:
            assert result == ("conflict", stream, expected, self.versions[stream])
        else:
            assert result[0] == "ok"
            recorded = result[1]
            assert [r.version for r in recorded] == list(range(expected + 1, expected + size + 1))
            assert [r.payload["n"] for r in recorded] == [e.payload["n"] for e in events]
            self.versions[stream] += size
            if key is not None:
                self.keys[(stream, key)] = recorded

    @rule(stream=st.sampled_from(STREAMS), good=st.integers(0, 2))
    def append_a_batch_with_a_bad_event(self, stream, good):
        events = [EventData("Tick", {"n": -1})] * good + [EventData("Bad", {"x": float("inf")})]
        assert self.both(lambda s: s.append(stream, events, self.versions[stream])) == ("error", "StoreError")

    @rule(after=st.integers(0, 40), limit=st.none() | st.integers(0, 5))
    def read_all(self, after, limit):
        self.both(lambda s: s.read_all(after_position=after, limit=limit))

    @rule(stream=st.sampled_from(STREAMS), after=st.integers(0, 10))
    def read(self, stream, after):
        self.both(lambda s: s.read(stream, after_version=after))

    @rule(stream=st.sampled_from(STREAMS), schema=st.sampled_from(["v1", "v2"]))
    def snapshot(self, stream, schema):
        version = self.versions[stream]
        self.both(lambda s: s.save_snapshot(stream, max(version, 1), {"v": version}, schema))
        self.both(lambda s: s.load_snapshot(stream, "v1"))

    @invariant()
    def same_shape(self):
        assert self.sqlite.head() == self.memory.head() == sum(self.versions.values())
        assert (
            self.sqlite.streams() == self.memory.streams() == sorted(s for s, v in self.versions.items() if v)
        )
        for stream in STREAMS:
            assert (
                self.sqlite.stream_version(stream)
                == self.memory.stream_version(stream)
                == self.versions[stream]
            )

    def teardown(self) -> None:
        try:
            assert self.sqlite.read_all() == self.memory.read_all()
            left, right = self.sqlite.verify(), self.memory.verify()
            assert left.ok and right.ok, (left, right)
            assert left.checked == right.checked == self.memory.head()
        finally:
            self.sqlite.close()
            self.memory.close()
            shutil.rmtree(self.folder, ignore_errors=True)


StoresAgree.TestCase.settings = settings(max_examples=30, stateful_step_count=25, deadline=None)
TestStoresAgree = StoresAgree.TestCase
