"""ProjectionRunner: view rows and checkpoint commit together, so a crash mid-batch (an exception, or the
process dying) loses or doubles nothing, and a rebuild from position 0 gives the same tables."""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from eventstore import (
    Delete,
    EventData,
    InMemoryEventStore,
    ProjectionRunner,
    SQLiteEventStore,
    StoreError,
    TableSpec,
    Upsert,
)

ROOT = Path(__file__).resolve().parents[2]


class StreamStats:
    """Per stream: event count, sum of n, last type; plus the alarms raised and not yet cleared."""

    name = "stream_stats"
    tables = {
        "stream_stats": TableSpec(
            columns={"stream_id": "TEXT", "events": "INTEGER", "total": "INTEGER", "last_type": "TEXT"},
            key=("stream_id",),
            indexes=(("last_type",),),
        ),
        "open_alarms": TableSpec(
            columns={"stream_id": "TEXT", "alarm": "TEXT", "raised_at": "INTEGER"}, key=("stream_id", "alarm")
        ),
    }

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at

    def apply(self, recorded, lookup):
        if recorded.position == self.fail_at:
            raise RuntimeError(f"injected failure at {recorded.position}")
        row = lookup("stream_stats", (recorded.stream_id,)) or {"events": 0, "total": 0}
        yield Upsert(
            "stream_stats",
            {
                "stream_id": recorded.stream_id,
                "events": row["events"] + 1,
                "total": row["total"] + recorded.payload.get("n", 0),
                "last_type": recorded.type,
            },
        )
        if recorded.type == "AlarmRaised":
            yield Upsert(
                "open_alarms",
                {
                    "stream_id": recorded.stream_id,
                    "alarm": recorded.payload["alarm"],
                    "raised_at": recorded.position,
                },
            )
        elif recorded.type == "AlarmCleared":
            yield Delete("open_alarms", {"stream_id": recorded.stream_id, "alarm": recorded.payload["alarm"]})


def expected_tables(events) -> dict[str, list[dict]]:
    """The same fold written plainly in Python: what the tables must hold after `events`."""
    stats: dict[str, dict] = {}
    alarms: dict[tuple[str, str], dict] = {}
    for r in events:
        old = stats.get(r.stream_id, {"events": 0, "total": 0})
        stats[r.stream_id] = {
            "stream_id": r.stream_id,
            "events": old["events"] + 1,
            "total": old["total"] + r.payload.get("n", 0),
            "last_type": r.type,
        }
        if r.type == "AlarmRaised":
            alarms[(r.stream_id, r.payload["alarm"])] = {
                "stream_id": r.stream_id,
                "alarm": r.payload["alarm"],
                "raised_at": r.position,
            }
        elif r.type == "AlarmCleared":
            alarms.pop((r.stream_id, r.payload["alarm"]), None)
    return {
        "stream_stats": [stats[k] for k in sorted(stats)],
        "open_alarms": [alarms[k] for k in sorted(alarms)],
    }


def fill(store, count: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    for _ in range(count):
        stream = f"p{rng.randrange(4)}"
        kind = rng.choice(["Tick", "Tick", "AlarmRaised", "AlarmCleared"])
        payload = {"n": rng.randrange(100)} if kind == "Tick" else {"alarm": rng.choice("abc")}
        store.append(stream, [EventData(kind, payload)], store.stream_version(stream))


def tables(runner: ProjectionRunner) -> dict[str, list[dict]]:
    return {"stream_stats": runner.rows("stream_stats"), "open_alarms": runner.rows("open_alarms")}


@pytest.fixture
def store():
    with InMemoryEventStore() as store:
        fill(store, 200)
        yield store


@pytest.fixture
def runner(store, tmp_path):
    with ProjectionRunner(store, tmp_path / "views.db") as runner:
        yield runner


def test_run_applies_every_event_once_and_records_the_checkpoint(store, runner):
    assert runner.position("stream_stats") == 0
    assert runner.run(StreamStats()) == 200
    assert runner.position("stream_stats") == 200
    assert tables(runner) == expected_tables(store.read_all())
    assert any(tables(runner)["open_alarms"]) and len(tables(runner)["stream_stats"]) == 4
    assert runner.run(StreamStats()) == 0


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_incremental_runs_equal_the_plain_fold(tmp_path, batch_size):
    with InMemoryEventStore() as store, ProjectionRunner(store, tmp_path / "v.db") as runner:
        fill(store, 60, seed=1)
        assert runner.run(StreamStats(), batch_size=batch_size) == 60
        fill(store, 45, seed=2)
        assert runner.run(StreamStats(), batch_size=batch_size) == 45
        assert tables(runner) == expected_tables(store.read_all())
        assert runner.position("stream_stats") == 105


def test_lookup_sees_the_rows_written_earlier_in_the_same_batch(tmp_path):
    with InMemoryEventStore() as store, ProjectionRunner(store, tmp_path / "v.db") as runner:
        store.append("p", [EventData("Tick", {"n": n}) for n in (1, 2, 3)], 0)
        runner.run(StreamStats(), batch_size=100)
        assert runner.rows("stream_stats") == [
            {"stream_id": "p", "events": 3, "total": 6, "last_type": "Tick"}
        ]


def test_an_exception_mid_batch_leaves_rows_and_checkpoint_consistent(store, runner):
    with pytest.raises(RuntimeError, match="injected failure at 57") as caught:
        runner.run(StreamStats(fail_at=57), batch_size=10)
    assert any("position 57" in note and "checkpoint stays at 50" in note for note in caught.value.__notes__)
    assert runner.position("stream_stats") == 50
    assert tables(runner) == expected_tables(store.read_all()[:50])
    assert runner.run(StreamStats(), batch_size=10) == 150  # resumes: nothing applied twice, nothing skipped
    assert tables(runner) == expected_tables(store.read_all())


def test_a_process_killed_mid_batch_resumes_exactly_once(tmp_path):
    log, views = tmp_path / "events.db", tmp_path / "views.db"
    with SQLiteEventStore(log) as store:
        fill(store, 120, seed=3)
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_projections_runner import StreamStats
        from eventstore import ProjectionRunner, SQLiteEventStore

        class DiesAt77(StreamStats):
            def apply(self, recorded, lookup):
                if recorded.position == 77:
                    os._exit(23)  # no exception, no cleanup: the process is simply gone
                yield from super().apply(recorded, lookup)

        ProjectionRunner(SQLiteEventStore({str(log)!r}), {str(views)!r}).run(DiesAt77(), batch_size=25)
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, timeout=60, capture_output=True, text=True
    )
    assert done.returncode == 23, done.stderr
    with SQLiteEventStore(log) as store, ProjectionRunner(store, views) as runner:
        assert runner.position("stream_stats") == 75
        assert tables(runner) == expected_tables(store.read_all()[:75])
        assert runner.run(StreamStats(), batch_size=25) == 45
        assert tables(runner) == expected_tables(store.read_all())


def test_rebuild_gives_the_same_tables_as_incremental_runs(tmp_path):
    with InMemoryEventStore() as store, ProjectionRunner(store, tmp_path / "v.db") as runner:
        for seed, batch in [(4, 3), (5, 50), (6, 1)]:
            fill(store, 40, seed=seed)
            runner.run(StreamStats(), batch_size=batch)
        incremental = tables(runner)
        assert runner.rebuild(StreamStats(), batch_size=1000) == 120
        assert tables(runner) == incremental == expected_tables(store.read_all())
        assert runner.position("stream_stats") == 120


def test_two_runners_on_one_file_apply_each_event_once(store, tmp_path):
    """Two runners (two connections, two threads) race on the same view file and projection."""
    import threading

    errors = []

    def work():
        try:
            with ProjectionRunner(store, tmp_path / "v.db") as mine:
                mine.run(StreamStats(), batch_size=3)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with ProjectionRunner(store, tmp_path / "v.db") as runner:
        assert runner.position("stream_stats") == 200
        assert tables(runner) == expected_tables(store.read_all())


def test_the_checkpoint_survives_reopening(store, tmp_path):
    with ProjectionRunner(store, tmp_path / "v.db") as runner:
        assert runner.run(StreamStats(), batch_size=20) == 200
    fill(store, 10, seed=9)
    with ProjectionRunner(store, tmp_path / "v.db") as runner:
        assert runner.position("stream_stats") == 200
        assert runner.run(StreamStats()) == 10
        assert tables(runner) == expected_tables(store.read_all())


def test_projections_keep_separate_checkpoints(store, runner):
    class Types:
        name = "types"
        tables = {"types": TableSpec(columns={"type": "TEXT", "n": "INTEGER"}, key=("type",))}

        def apply(self, recorded, lookup):
            row = lookup("types", (recorded.type,))
            yield Upsert("types", {"type": recorded.type, "n": (row["n"] if row else 0) + 1})

    runner.run(StreamStats(), batch_size=1000)
    assert runner.position("types") == 0
    assert runner.run(Types()) == 200
    assert sum(r["n"] for r in runner.rows("types")) == 200
    assert runner.position("stream_stats") == 200


def test_a_changed_table_spec_asks_for_a_rebuild(store, runner):
    runner.run(StreamStats())

    class Wider(StreamStats):
        tables = {
            **StreamStats.tables,
            "stream_stats": TableSpec(
                columns={**StreamStats.tables["stream_stats"].columns, "extra": "TEXT"}, key=("stream_id",)
            ),
        }

    with pytest.raises(StoreError, match="spec of table 'stream_stats'.*changed.*rebuild"):
        runner.run(Wider())
    assert runner.rebuild(Wider()) == 200
    assert runner.rows("stream_stats")[0]["extra"] is None


def test_a_table_belongs_to_one_projection(store, runner):
    runner.run(StreamStats())

    class Thief(StreamStats):
        name = "thief"

    with pytest.raises(StoreError, match="belongs to projection 'stream_stats'"):
        runner.run(Thief())
    with pytest.raises(StoreError, match="belongs to projection 'stream_stats'"):
        runner.rebuild(Thief())
    assert tables(runner) == expected_tables(store.read_all())


def test_a_table_nobody_owns_is_not_overwritten(store, tmp_path):
    conn = sqlite3.connect(tmp_path / "v.db")
    conn.execute("CREATE TABLE open_alarms (x)")
    conn.commit()
    conn.close()
    with (
        ProjectionRunner(store, tmp_path / "v.db") as runner,
        pytest.raises(StoreError, match="'open_alarms' already exists and no projection owns it"),
    ):
        runner.run(StreamStats())


@pytest.mark.parametrize(
    "op, match",
    [
        (Upsert("stream_stats", {"stream_id": "p", "colour": "red"}), r"unknown column\(s\) \['colour'\]"),
        (Upsert("stream_stats", {"events": 1}), r"no value for key column\(s\) \['stream_id'\]"),
        (Upsert("elsewhere", {"stream_id": "p"}), "table 'elsewhere', which is not in its tables"),
        (Upsert("stream_stats", {"stream_id": "p", "last_type": ["a"]}), "stream_stats.last_type got a list"),
        (Delete("open_alarms", {"stream_id": "p"}), "needs exactly the key columns"),
        ("not an op", "must yield Upsert or Delete"),
    ],
)
def test_bad_operations_roll_the_batch_back(store, runner, op, match):
    class Bad(StreamStats):
        def apply(self, recorded, lookup):
            yield from super().apply(recorded, lookup)
            if recorded.position == 30:
                yield op

    with pytest.raises(StoreError, match=match):
        runner.run(Bad(), batch_size=20)
    assert runner.position("stream_stats") == 20
    assert tables(runner) == expected_tables(store.read_all()[:20])


def test_lookup_checks_its_arguments(store, runner):
    class BadLookup(StreamStats):
        def apply(self, recorded, lookup):
            lookup("stream_stats", (recorded.stream_id, "extra"))
            return ()

    with pytest.raises(StoreError, match="needs a tuple of 1 key value"):
        runner.run(BadLookup())
    assert runner.position("stream_stats") == 0


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: TableSpec(columns={"a b": "TEXT"}, key=("a b",)), "plain identifier"),
        (lambda: TableSpec(columns={"a": "TEXT); DROP TABLE x; --"}, key=("a",)), "SQLite type"),
        (lambda: TableSpec(columns={"a": "TEXT"}, key=()), "needs a key"),
        (lambda: TableSpec(columns={"a": "TEXT"}, key=("b",)), "not in the table"),
        (lambda: TableSpec(columns={"a": "TEXT"}, key=("a",), indexes=(("z",),)), "not in the table"),
    ],
)
def test_table_specs_are_checked(make, match):
    with pytest.raises(StoreError, match=match):
        make()


def test_reserved_and_odd_table_names_are_refused(store, runner):
    class Sneaky(StreamStats):
        name = "sneaky"
        tables = {"projection_checkpoints": StreamStats.tables["stream_stats"]}

    with pytest.raises(StoreError, match="cannot be a table name"):
        runner.run(Sneaky())
    with pytest.raises(StoreError, match="batch_size"):
        runner.run(StreamStats(), batch_size=0)


def test_a_closed_runner_refuses_work(store, tmp_path):
    runner = ProjectionRunner(store, tmp_path / "v.db")
    runner.close()
    with pytest.raises(StoreError, match="closed"):
        runner.run(StreamStats())
