"""The EventStore contract, written once. Each backend's test file subclasses `StoreContract` and supplies
`make_store(tmp_path, **kwargs)`; every rule below then holds for that backend."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import ClassVar, Literal

import pytest

from eventstore import (
    Codec,
    ConcurrencyError,
    CorruptLogError,
    EventData,
    EventStore,
    Recorded,
    Snapshot,
    Stored,
    StoreError,
)
from eventstore.hash_chain import GENESIS_HASH, record_hash

T0 = datetime(2026, 11, 27, 23, 58, 16, 123456, tzinfo=UTC)


class StepClock:
    """A clock that moves one millisecond per call: recorded_at is then known in advance."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start
        self.calls = 0

    def __call__(self) -> datetime:
        value = self.now
        self.now += timedelta(milliseconds=1)
        self.calls += 1
        return value


@dataclass(frozen=True, kw_only=True, slots=True)
class Window:
    start: int
    end: int


@dataclass(frozen=True, kw_only=True, slots=True)
class BlockArrived:
    block: int
    rows: int
    columns: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class DriftDetected:
    SCHEMA_VERSION: ClassVar[int] = 2
    feature: str
    score: float
    severity: Literal["low", "high"]
    window: Window | None = None


def _v1_to_v2(payload):
    payload["severity"] = "high" if payload.pop("alarm") else "low"
    return payload


def ev(n: int, type_: str = "Tick") -> EventData:
    return EventData(type_, {"n": n})


def fold(state: dict[str, int], recorded: Recorded) -> dict[str, int]:
    """A tiny pure fold for the snapshot test: how many events, and the sum of their n."""
    return {"count": state["count"] + 1, "total": state["total"] + recorded.payload["n"]}


class StoreContract:
    """Rules every EventStore keeps. Subclasses define `make_store(self, tmp_path, **kwargs)`."""

    def make_store(self, tmp_path, **kwargs) -> EventStore:  # pragma: no cover - supplied by subclasses
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path):
        store = self.make_store(tmp_path, clock=StepClock())
        yield store
        store.close()

    # -- empty log, positions, versions -----------------------------------------------------------------

    def test_a_new_store_is_empty(self, store):
        assert store.head() == 0
        assert store.streams() == []
        assert store.read_all() == []
        assert list(store.iter_all()) == []
        assert store.read("nope") == []
        assert store.stream_version("nope") == 0
        result = store.verify()
        assert result.ok and result.checked == 0 and result.first_bad_position is None

    def test_versions_are_gapless_per_stream_and_positions_global(self, store):
        store.append("a", [ev(1), ev(2)], expected_version=0)
        store.append("b", [ev(3)], expected_version=0)
        store.append("a", [ev(4), ev(5), ev(6)], expected_version=2)
        everything = store.read_all()
        assert [r.position for r in everything] == [1, 2, 3, 4, 5, 6]
        assert [(r.stream_id, r.version) for r in everything] == [
            ("a", 1),
            ("a", 2),
            ("b", 1),
            ("a", 3),
            ("a", 4),
            ("a", 5),
        ]
        assert [r.version for r in store.read("a")] == [1, 2, 3, 4, 5]
        assert [r.payload["n"] for r in store.read("a")] == [1, 2, 4, 5, 6]
        assert store.stream_version("a") == 5 and store.stream_version("b") == 1
        assert store.head() == 6

    def test_append_returns_exactly_what_read_returns(self, store):
        first = store.append("a", [ev(1), ev(2)], expected_version=0)
        second = store.append("a", [EventData("Other", {"x": [1, 2], "y": None}, schema_version=3)], 2)
        assert first + second == store.read("a") == store.read_all()
        assert second[0].type == "Other" and second[0].schema_version == 3

    def test_recorded_envelope_fields(self, tmp_path):
        clock = StepClock()
        with self.make_store(tmp_path, clock=clock) as store:
            (rec,) = store.append("pipe-1", [EventData("DriftDetected", {"feature": "age"}, 2)], 0)
        assert rec == Recorded(
            position=1,
            stream_id="pipe-1",
            version=1,
            type="DriftDetected",
            schema_version=2,
            payload={"feature": "age"},
            recorded_at="2026-11-27T23:58:16.123456+00:00",
            hash=rec.hash,
        )
        assert re.fullmatch(r"[0-9a-f]{64}", rec.hash)
        assert clock.calls == 1

    def test_recorded_at_is_utc_iso_from_the_default_clock(self, tmp_path):
        with self.make_store(tmp_path) as store:
            before = datetime.now(UTC)
            (rec,) = store.append("s", [ev(1)], 0)
            after = datetime.now(UTC)
        stamp = datetime.fromisoformat(rec.recorded_at)
        assert rec.recorded_at.endswith("+00:00") and re.search(r"\.\d{6}\+", rec.recorded_at)
        assert before <= stamp <= after

    def test_a_clock_in_another_zone_is_stored_as_utc(self, tmp_path):
        paris = timezone(timedelta(hours=1))
        with self.make_store(tmp_path, clock=lambda: datetime(2026, 1, 1, 1, 0, tzinfo=paris)) as store:
            (rec,) = store.append("s", [ev(1)], 0)
        assert rec.recorded_at == "2026-01-01T00:00:00.000000+00:00"

    def test_a_naive_clock_is_refused_and_nothing_is_written(self, tmp_path):
        with self.make_store(tmp_path, clock=lambda: datetime(2026, 1, 1)) as store:
            with pytest.raises(StoreError, match="timezone-aware"):
                store.append("s", [ev(1)], 0)
            assert store.head() == 0 and store.stream_version("s") == 0

    def test_each_hash_chains_to_the_previous_record(self, store):
        records = store.append("a", [ev(1)], 0) + store.append("b", [ev(2), ev(3)], 0)
        previous = GENESIS_HASH
        for r in records:
            expected = record_hash(
                previous,
                position=r.position,
                stream_id=r.stream_id,
                version=r.version,
                type=r.type,
                schema_version=r.schema_version,
                payload=r.payload,
                recorded_at=r.recorded_at,
            )
            assert r.hash == expected
            previous = r.hash

    # -- optimistic concurrency -------------------------------------------------------------------------

    def test_stale_expected_version_raises_and_writes_nothing(self, store):
        store.append("a", [ev(1), ev(2)], expected_version=0)
        with pytest.raises(ConcurrencyError) as caught:
            store.append("a", [ev(3)], expected_version=1)
        message = str(caught.value)
        assert "'a'" in message and "expected version 1" in message and "version 2" in message
        assert (caught.value.stream_id, caught.value.expected, caught.value.actual) == ("a", 1, 2)
        assert isinstance(caught.value, StoreError)
        assert store.head() == 2 and store.stream_version("a") == 2

    def test_expected_version_ahead_of_the_stream_raises(self, store):
        with pytest.raises(ConcurrencyError, match="expected version 3 but it is at version 0"):
            store.append("new", [ev(1)], expected_version=3)
        assert store.head() == 0 and store.streams() == []

    def test_a_new_stream_expects_version_zero_and_a_second_creator_loses(self, store):
        store.append("a", [ev(1)], expected_version=0)
        with pytest.raises(ConcurrencyError):
            store.append("a", [ev(2)], expected_version=0)
        assert [r.payload["n"] for r in store.read("a")] == [1]

    def test_threads_appending_with_retry_lose_nothing(self, store):
        def writer(worker: int) -> None:
            for i in range(15):
                while True:
                    try:
                        store.append(
                            "shared",
                            [EventData("Tick", {"w": worker, "i": i})],
                            store.stream_version("shared"),
                        )
                        break
                    except ConcurrencyError:
                        continue

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        events = store.read("shared")
        assert [r.version for r in events] == list(range(1, 61))
        assert sorted((r.payload["w"], r.payload["i"]) for r in events) == [
            (w, i) for w in range(4) for i in range(15)
        ]
        assert store.verify().ok

    # -- batches are all or nothing ---------------------------------------------------------------------

    def test_a_batch_with_a_bad_event_writes_nothing(self, store):
        store.append("a", [ev(1)], 0)
        bad = EventData("DriftChecked", {"scores": [0.5, float("nan")]})
        with pytest.raises(StoreError) as caught:
            store.append("a", [ev(2), ev(3), bad], expected_version=1)
        message = str(caught.value)
        assert "DriftChecked" in message and "payload['scores'][1]" in message and "nan" in message
        assert "event 3 of 3" in message
        assert store.head() == 1 and store.stream_version("a") == 1

    @pytest.mark.parametrize(
        "payload, where",
        [
            ({"x": float("inf")}, "payload['x'] is inf"),
            ({"deep": {"er": [float("-inf")]}}, "payload['deep']['er'][0] is -inf"),
            ({"s": {1, 2}}, "payload['s'] is a set"),
            ({1: "int key"}, "key 1 of type int"),
            ({"b": b"bytes"}, "payload['b'] is a bytes"),
        ],
    )
    def test_non_json_payloads_are_refused_naming_type_and_field(self, store, payload, where):
        with pytest.raises(StoreError) as caught:
            store.append("a", [EventData("Measured", payload)], 0)
        assert "Measured" in str(caught.value) and where in str(caught.value)
        assert store.head() == 0

    def test_a_payload_that_contains_itself_is_refused(self, store):
        looped = {"children": []}
        looped["children"].append(looped)
        with pytest.raises(StoreError, match=r"payload\['children'\]\[0\] contains itself"):
            store.append("a", [EventData("Tree", looped)], 0)
        assert store.head() == 0

    def test_a_large_batch_is_recorded_in_order(self, store):
        recorded = store.append("big", [ev(i) for i in range(500)], 0)
        assert [r.version for r in recorded] == list(range(1, 501))
        assert [r.position for r in recorded] == list(range(1, 501))
        assert store.verify().ok

    def test_an_empty_batch_returns_nothing_and_checks_nothing(self, store):
        store.append("a", [ev(1)], 0)
        assert store.append("a", [], expected_version=1) == []
        assert store.append("a", (), expected_version=7, idempotency_key="k") == []
        assert store.head() == 1
        # the key of an empty call was not used up
        assert [r.payload["n"] for r in store.append("a", [ev(2)], 1, idempotency_key="k")] == [2]

    # -- idempotency ------------------------------------------------------------------------------------

    def test_a_repeated_idempotency_key_returns_the_original_and_writes_nothing(self, store):
        original = store.append("a", [ev(1), ev(2)], 0, idempotency_key="block-7")
        again = store.append("a", [ev(1), ev(2)], 0, idempotency_key="block-7")
        assert again == original
        assert store.head() == 2 and store.stream_version("a") == 2

    def test_a_repeated_key_wins_over_a_stale_version_even_after_later_appends(self, store):
        original = store.append("a", [ev(1)], 0, idempotency_key="k1")
        store.append("b", [ev(2)], 0)
        store.append("a", [ev(3)], 1, idempotency_key="k2")
        assert store.append("a", [ev(99)], 0, idempotency_key="k1") == original
        assert store.append("a", [ev(99)], 5, idempotency_key="k2") == store.read("a", after_version=1)
        assert store.head() == 3

    def test_idempotency_keys_belong_to_a_stream(self, store):
        store.append("a", [ev(1)], 0, idempotency_key="same")
        (other,) = store.append("b", [ev(2)], 0, idempotency_key="same")
        assert (other.stream_id, other.payload) == ("b", {"n": 2})
        assert store.head() == 2

    def test_a_key_of_a_failed_append_is_not_used_up(self, store):
        store.append("a", [ev(1)], 0)
        with pytest.raises(ConcurrencyError):
            store.append("a", [ev(2)], 0, idempotency_key="k")
        (rec,) = store.append("a", [ev(2)], 1, idempotency_key="k")
        assert rec.version == 2

    # -- reading ----------------------------------------------------------------------------------------

    def test_read_after_version(self, store):
        store.append("a", [ev(i) for i in range(1, 6)], 0)
        assert [r.version for r in store.read("a", after_version=3)] == [4, 5]
        assert store.read("a", after_version=5) == []
        assert store.read("a", after_version=50) == []

    def test_read_all_pages_through_the_log(self, store):
        for i in range(1, 11):
            store.append(f"s{i % 3}", [ev(i)], store.stream_version(f"s{i % 3}"))
        pages, after = [], 0
        while page := store.read_all(after_position=after, limit=4):
            pages.append([r.position for r in page])
            after = page[-1].position
        assert pages == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
        assert store.read_all(after_position=3, limit=0) == []
        assert [r.position for r in store.read_all(after_position=7)] == [8, 9, 10]
        assert store.read_all(after_position=10) == [] and store.read_all(after_position=99) == []

    @pytest.mark.parametrize("batch_size", [1, 3, 10000])
    def test_iter_all_streams_the_log_in_batches(self, store, batch_size):
        for i in range(10):
            store.append(f"s{i % 2}", [ev(i)], store.stream_version(f"s{i % 2}"))
        everything = store.read_all()
        assert list(store.iter_all(batch_size=batch_size)) == everything
        assert list(store.iter_all(after_position=4, batch_size=batch_size)) == everything[4:]
        assert list(store.iter_all(batch_size=batch_size, verify=True)) == everything
        assert list(store.iter_all(after_position=6, batch_size=batch_size, verify=True)) == everything[6:]

    def test_iter_all_is_lazy_and_sees_appends_made_while_iterating(self, store):
        store.append("a", [ev(0), ev(1)], 0)
        seen = []
        for r in store.iter_all(batch_size=1):
            seen.append(r.payload["n"])
            if r.version < 4:
                store.append("a", [ev(r.version + 1)], store.stream_version("a"))
        assert seen == [0, 1, 2, 3, 4]

    @pytest.mark.parametrize("batch_size", [1, 3, 10000])
    def test_iter_stored_walks_one_stream_with_payloads_as_stored_text(self, store, batch_size):
        # "big" is most of the log and "small" a little of it: a backend may walk them differently
        for i in range(12):
            name = "small" if i % 4 == 0 else "big"
            store.append(name, [ev(i)], store.stream_version(name))
        for name in ("big", "small"):
            expected = store.read(name)
            for after in (0, 1, len(expected) - 1, len(expected), 99):
                got = list(store.iter_stored(name, after_version=after, batch_size=batch_size))
                want = expected[after:]
                assert [type(g) for g in got] == [Stored] * len(want)
                assert [(g.position, g.stream_id, g.version, g.type, g.schema_version, g.recorded_at, g.hash)
                        for g in got] == [(r.position, r.stream_id, r.version, r.type, r.schema_version,
                                           r.recorded_at, r.hash) for r in want]
                assert [json.loads(g.payload_json) for g in got] == [r.payload for r in want]
        assert list(store.iter_stored("nobody")) == []

    def test_iter_stored_is_lazy_and_sees_appends_made_while_iterating(self, store):
        store.append("a", [ev(0), ev(1)], 0)
        store.append("b", [ev(9)], 0)
        seen = []
        for r in store.iter_stored("a", batch_size=1):
            seen.append(json.loads(r.payload_json)["n"])
            if r.version < 4:
                store.append("a", [ev(r.version + 1)], store.stream_version("a"))
        assert seen == [0, 1, 2, 3, 4]

    @pytest.mark.parametrize("call, match", [
        (lambda s: s.iter_stored(""), "stream_id"),
        (lambda s: s.iter_stored("a", after_version=-1), "after_version"),
        (lambda s: s.iter_stored("a", batch_size=0), "batch_size"),
    ])
    def test_iter_stored_checks_its_arguments(self, store, call, match):
        with pytest.raises(StoreError, match=match):
            call(store)

    def test_iter_all_verify_from_a_position_that_does_not_exist(self, store):
        store.append("a", [ev(1)], 0)
        with pytest.raises(StoreError, match="no such position"):
            list(store.iter_all(after_position=5, verify=True))

    def test_streams_are_listed_once_and_sorted(self, store):
        for name in ["b", "a", "c", "a", "b", "é", "Z"]:
            store.append(name, [ev(0)], store.stream_version(name))
        assert store.streams() == ["Z", "a", "b", "c", "é"]

    def test_head_is_the_last_position(self, store):
        assert store.head() == 0
        store.append("a", [ev(1), ev(2)], 0)
        assert store.head() == 2
        store.append("b", [ev(3)], 0)
        assert store.head() == 3

    def test_payloads_come_back_as_json_and_cannot_be_mutated_through_a_result(self, store):
        (rec,) = store.append("a", [EventData("T", {"t": (1, 2), "u": "ünï🙂", "f": 0.1, "big": 2**70})], 0)
        assert rec.payload == {"t": [1, 2], "u": "ünï🙂", "f": 0.1, "big": 2**70}
        rec.payload["t"].append(3)
        store.read("a")[0].payload["u"] = "changed"
        assert store.read("a")[0].payload == {"t": [1, 2], "u": "ünï🙂", "f": 0.1, "big": 2**70}
        assert store.verify().ok

    def test_unicode_stream_ids_and_types(self, store):
        (rec,) = store.append("pipeline/ñandú 🙂", [EventData("Dérive", {"clé": "valeur"})], 0)
        assert store.read("pipeline/ñandú 🙂") == [rec]
        assert store.streams() == ["pipeline/ñandú 🙂"]
        assert store.verify().ok

    # -- arguments --------------------------------------------------------------------------------------

    @pytest.mark.parametrize(
        "call, match",
        [
            (lambda s: s.append("", [ev(1)], 0), "stream_id"),
            (lambda s: s.append(7, [ev(1)], 0), "stream_id"),
            (lambda s: s.append("a", [ev(1)], -1), "expected_version"),
            (lambda s: s.append("a", [ev(1)], True), "expected_version"),
            (lambda s: s.append("a", ev(1), 0), "list or tuple"),
            (lambda s: s.append("a", [{"type": "T"}], 0), "EventData or a registered"),
            (lambda s: s.append("a", [EventData("", {})], 0), "type must be a non-empty"),
            (lambda s: s.append("a", [EventData("T", {}, 0)], 0), "schema_version"),
            (lambda s: s.append("a", [EventData("T", [1])], 0), "payload must be a dict"),
            (lambda s: s.append("a", [ev(1)], 0, idempotency_key=""), "idempotency_key"),
            (lambda s: s.read("a", after_version=-1), "after_version"),
            (lambda s: s.read_all(limit=-2), "limit"),
            (lambda s: s.read_all(after_position=-1), "after_position"),
            (lambda s: s.iter_all(batch_size=0), "batch_size"),
        ],
    )
    def test_bad_arguments_raise_store_error_and_write_nothing(self, store, call, match):
        with pytest.raises(StoreError, match=match):
            call(store)
        assert store.head() == 0

    # -- verify -----------------------------------------------------------------------------------------

    def test_verify_walks_everything_and_reports_progress(self, store):
        for i in range(25):
            store.append(f"s{i % 4}", [ev(i)], store.stream_version(f"s{i % 4}"))
        calls = []
        result = store.verify(progress=lambda done, total: calls.append((done, total)))
        assert result.ok and result.checked == 25 and result.first_bad_position is None
        assert "25" in result.message
        assert calls[0] == (0, 25) and calls[-1] == (25, 25)
        assert [d for d, _ in calls] == sorted(d for d, _ in calls)

    # -- snapshots --------------------------------------------------------------------------------------

    def test_snapshots_are_a_cache_keyed_by_schema(self, store):
        store.append("a", [ev(1), ev(2), ev(3)], 0)
        assert store.load_snapshot("a", "count/v1") is None
        store.save_snapshot("a", 2, {"count": 2, "total": 3}, "count/v1")
        assert store.load_snapshot("a", "count/v1") == Snapshot("a", 2, "count/v1", {"count": 2, "total": 3})
        assert store.load_snapshot("a", "count/v2") is None
        assert store.load_snapshot("b", "count/v1") is None
        store.save_snapshot("a", 3, {"count": 3, "total": 6}, "count/v2")  # replaces the older one
        assert store.load_snapshot("a", "count/v1") is None
        assert store.load_snapshot("a", "count/v2").version == 3
        store.delete_snapshots("a")
        assert store.load_snapshot("a", "count/v2") is None
        assert store.head() == 3 and store.verify().ok

    def test_snapshot_arguments_are_checked(self, store):
        store.append("a", [ev(1)], 0)
        with pytest.raises(StoreError, match="only at version 1"):
            store.save_snapshot("a", 2, {}, "s")
        with pytest.raises(StoreError, match="nan"):
            store.save_snapshot("a", 1, {"x": float("nan")}, "s")
        with pytest.raises(StoreError, match="schema"):
            store.save_snapshot("a", 1, {}, "")
        with pytest.raises(StoreError, match="version"):
            store.save_snapshot("a", 0, {}, "s")

    def test_state_rebuilt_with_or_without_a_snapshot_is_equal(self, store):
        for i in range(1, 8):
            store.append("a", [ev(i * i)], i - 1)
        store.append("b", [ev(1000)], 0)
        empty = {"count": 0, "total": 0}

        def rebuild() -> dict[str, int]:
            snap = store.load_snapshot("a", "fold/v1")
            state, after = (snap.state, snap.version) if snap else (empty, 0)
            for r in store.read("a", after_version=after):
                state = fold(state, r)
            return state

        from_scratch = rebuild()
        state = empty
        for r in store.read("a")[:4]:
            state = fold(state, r)
        store.save_snapshot("a", 4, state, "fold/v1")
        with_snapshot = rebuild()
        store.append("a", [ev(5)], 7)
        later_with_snapshot = rebuild()
        store.delete_snapshots()
        assert store.load_snapshot("a", "fold/v1") is None
        assert with_snapshot == from_scratch == {"count": 7, "total": sum(i * i for i in range(1, 8))}
        assert later_with_snapshot == rebuild() == {"count": 8, "total": from_scratch["total"] + 5}

    # -- codec ------------------------------------------------------------------------------------------

    def test_registered_dataclasses_are_encoded_and_decode_back(self, tmp_path):
        codec = Codec([BlockArrived, DriftDetected])
        events = [
            BlockArrived(block=1, rows=500, columns=("x1", "x2")),
            DriftDetected(feature="x1", score=0.93, severity="high", window=Window(start=0, end=500)),
            EventData("Annotated", {"note": "plain EventData mixes in"}),
        ]
        with self.make_store(tmp_path, codec=codec) as store:
            recorded = store.append("p", events, 0)
            assert [(r.type, r.schema_version) for r in recorded] == [
                ("BlockArrived", 1),
                ("DriftDetected", 2),
                ("Annotated", 1),
            ]
            assert recorded[0].payload == {"block": 1, "rows": 500, "columns": ["x1", "x2"]}
            assert [store.codec.decode(r) for r in store.read("p")[:2]] == events[:2]
            with pytest.raises(CorruptLogError, match="position 3.*'Annotated'"):
                store.codec.decode(store.read("p")[2])

    def test_decode_stored_gives_what_decode_gives(self, tmp_path):
        codec = Codec([BlockArrived, DriftDetected], upcasters={("DriftDetected", 1): _v1_to_v2})
        events = [
            BlockArrived(block=1, rows=500, columns=("x1", "x2")),
            DriftDetected(feature="x1", score=0.93, severity="high", window=Window(start=0, end=500)),
            DriftDetected(feature="x2", score=1, severity="low"),
            EventData("DriftDetected", {"feature": "a", "score": 1, "alarm": True}, 1),  # upcast
        ]
        with self.make_store(tmp_path, codec=codec) as store:
            store.append("p", events, 0)
            recorded, stored = store.read("p"), list(store.iter_stored("p"))
            fast = [codec.decode_stored(s) for s in stored]
            assert fast == [codec.decode(r) for r in recorded]
            assert type(fast[2].score) is float and type(fast[0].columns) is tuple
            assert fast[3] == DriftDetected(feature="a", score=1.0, severity="high")

    def test_old_schema_versions_are_upcast_on_decode(self, tmp_path):
        def v1_to_v2(payload):  # mutates its argument on purpose: the recorded payload must not change
            payload["severity"] = "high" if payload.pop("alarm") else "low"
            return payload

        codec = Codec([DriftDetected], upcasters={("DriftDetected", 1): v1_to_v2})
        with self.make_store(tmp_path, codec=codec) as store:
            store.append("p", [EventData("DriftDetected", {"feature": "a", "score": 1, "alarm": True}, 1)], 0)
            (old,) = store.read("p")
            assert store.codec.decode(old) == DriftDetected(feature="a", score=1.0, severity="high")
            assert old.payload == {"feature": "a", "score": 1, "alarm": True}  # the log is never rewritten

    def test_an_unregistered_dataclass_is_refused_and_nothing_is_written(self, store):
        with pytest.raises(StoreError, match="not registered in the codec"):
            store.append("p", [ev(1), BlockArrived(block=1, rows=1, columns=())], 0)
        assert store.head() == 0

    # -- lifecycle --------------------------------------------------------------------------------------

    def test_a_closed_store_refuses_work(self, tmp_path):
        store = self.make_store(tmp_path)
        with store:
            store.append("a", [ev(1)], 0)
        for call in (
            lambda: store.append("a", [ev(2)], 1),
            lambda: store.read("a"),
            store.read_all,
            store.head,
            store.streams,
            store.verify,
            lambda: list(store.iter_all()),
            lambda: store.stream_version("a"),
            lambda: store.load_snapshot("a", "s"),
        ):
            with pytest.raises(StoreError, match="closed"):
                call()
        store.close()  # twice is fine
