"""SQLiteEventStore when things go wrong: tampering, damaged or foreign files, locks, full or read-only
disks, a writer killed mid-transaction. Every failure is one of our errors with a message a person can act
on; a raw sqlite3 exception never comes out (pytest.raises(StoreError) would not catch one)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from eventstore import ConcurrencyError, CorruptLogError, EventData, SQLiteEventStore, StoreError

ROOT = Path(__file__).resolve().parents[2]


def ev(n: int) -> EventData:
    return EventData("Tick", {"n": n, "pad": "x" * 100})


@pytest.fixture
def log(tmp_path) -> Path:
    """A closed log of 30 events over three streams."""
    path = tmp_path / "events.db"
    with SQLiteEventStore(path) as store:
        for i in range(1, 31):
            stream = f"s{i % 3}"
            store.append(stream, [ev(i)], store.stream_version(stream))
    return path


def raw(path: Path, sql: str, *args) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(sql, args)
    conn.close()


# -- tampering ----------------------------------------------------------------------------------------


def test_one_changed_payload_byte_is_found_by_verify(log):
    raw(log, "UPDATE events SET payload = replace(payload, '\"n\":12', '\"n\":13') WHERE position = 12")
    with SQLiteEventStore(log) as store:
        with pytest.raises(CorruptLogError, match="position 12: its hash does not match its content"):
            store.read_all()  # a read checks every row it returns
        assert [r.position for r in store.read_all(limit=11)] == list(range(1, 12))
        result = store.verify()
        assert (result.ok, result.checked, result.first_bad_position) == (False, 11, 12)
        assert "position 12: hash mismatch" in result.message and str(log) in result.message
        seen = []
        with pytest.raises(CorruptLogError, match="position 12: hash mismatch"):
            for r in store.iter_all(batch_size=5, verify=True):
                seen.append(r.position)
        assert seen == list(range(1, 12))


@pytest.mark.parametrize(
    "sql, bad, words",
    [
        ("DELETE FROM events WHERE position = 17", 17, "positions jump from 16 to 18"),
        (
            "UPDATE events SET version = 12 WHERE position = 29",
            29,
            "stream 's2' jumps to version 12, expected 10",
        ),
        (
            "UPDATE events SET recorded_at = '2020-01-01T00:00:00.000000+00:00' WHERE position = 3",
            3,
            "hash mismatch",
        ),
        ("UPDATE events SET hash = substr(hash, 2) || '0' WHERE position = 30", 30, "hash mismatch"),
        ("UPDATE events SET payload = '{\"n\": 9' WHERE position = 9", 9, "payload is not JSON"),
        (
            "UPDATE events SET payload = CAST(x'7b22ff227d' AS TEXT) WHERE position = 25",
            25,
            "not valid UTF-8",
        ),
    ],
)
def test_verify_names_the_first_bad_position(log, sql, bad, words):
    raw(log, sql)
    with SQLiteEventStore(log, check_head=False) as store:  # verify reports what opening would refuse
        result = store.verify()
    assert not result.ok and result.first_bad_position == bad and result.checked == bad - 1
    assert words in result.message


def test_a_payload_that_is_not_json_is_a_corrupt_log_error_on_read(log):
    raw(log, "UPDATE events SET payload = 'not json' WHERE position = 4")
    with SQLiteEventStore(log) as store:
        with pytest.raises(CorruptLogError, match="position 4: its hash does not match its content"):
            store.read_all()
        assert [r.position for r in store.read_all(limit=3)] == [1, 2, 3]


def test_a_damaged_page_is_reported_with_the_first_unreadable_position(tmp_path):
    path = tmp_path / "events.db"
    with SQLiteEventStore(path) as store:
        for i in range(300):
            store.append("s", [ev(i)], i)
    data = bytearray(path.read_bytes())
    data[4096 * 10 : 4096 * 11] = bytes(range(256)) * 16  # garbage over one page, size unchanged
    path.write_bytes(bytes(data))
    with SQLiteEventStore(path) as store:
        with pytest.raises(CorruptLogError, match="damaged"):
            store.read_all()
        result = store.verify()
    assert not result.ok and 1 < result.first_bad_position < 300
    assert result.checked == result.first_bad_position - 1 and "cannot be read" in result.message


# -- files that are not (whole) logs ------------------------------------------------------------------


def test_a_file_of_random_bytes_is_refused_at_open_and_left_alone(tmp_path):
    path = tmp_path / "notes.db"
    junk = os.urandom(8192)
    path.write_bytes(junk)
    with pytest.raises(StoreError, match="not a calmops event log \\(not a SQLite database\\)") as caught:
        SQLiteEventStore(path)
    assert str(path) in str(caught.value)
    assert path.read_bytes() == junk


@pytest.mark.parametrize("keep", [0.5, 0.1, 60])
def test_a_truncated_database_is_refused_at_open(log, keep):
    data = log.read_bytes()
    log.write_bytes(data[: int(len(data) * keep)] if keep < 1 else data[:keep])
    with pytest.raises(CorruptLogError, match="truncated") as caught:
        SQLiteEventStore(log)
    assert str(log) in str(caught.value) and "backup" in str(caught.value)


def test_a_truncated_database_with_a_leftover_wal_is_still_reported(log):
    data = log.read_bytes()
    log.write_bytes(data[: len(data) // 2])
    Path(f"{log}-wal").write_bytes(b"")  # the header check is skipped: SQLite itself must notice
    with pytest.raises(CorruptLogError, match="damaged"), SQLiteEventStore(log) as store:
        store.read_all()


def test_another_sqlite_database_is_not_taken_for_a_log(tmp_path):
    path = tmp_path / "other.db"
    raw(path, "CREATE TABLE people (name TEXT)")
    with pytest.raises(StoreError, match="SQLite database but not a calmops event log"):
        SQLiteEventStore(path)
    assert sqlite3.connect(path).execute("SELECT name FROM sqlite_master").fetchall() == [("people",)]


def test_a_log_from_newer_code_is_refused(log):
    raw(log, "UPDATE meta SET value = '99' WHERE key = 'format_version'")
    with pytest.raises(StoreError, match="format 99, newer than this code's 1: upgrade"):
        SQLiteEventStore(log)


def test_a_folder_or_memory_path_is_refused(tmp_path):
    with pytest.raises(StoreError, match="is a folder"):
        SQLiteEventStore(tmp_path)
    with pytest.raises(StoreError, match="InMemoryEventStore"):
        SQLiteEventStore(":memory:")


def test_a_missing_path_is_created_with_its_folders(tmp_path):
    path = tmp_path / "a" / "b" / "events.db"
    with SQLiteEventStore(path) as store:
        assert store.head() == 0
    assert path.is_file()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_empty_file_becomes_a_log(tmp_path):
    path = tmp_path / "events.db"
    path.touch()
    with SQLiteEventStore(path) as store:
        store.append("s", [ev(1)], 0)
        assert store.verify().ok


# -- locks, full and read-only disks ------------------------------------------------------------------


def test_a_held_write_lock_gives_a_clear_error_after_the_busy_timeout(log):
    holder = sqlite3.connect(log, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with SQLiteEventStore(log, busy_timeout=0.3) as store:
            assert store.head() == 30  # WAL: readers are not blocked
            started = time.monotonic()
            with pytest.raises(StoreError) as caught:
                store.append("s1", [ev(31)], store.stream_version("s1"))
            waited = time.monotonic() - started
            assert not isinstance(caught.value, ConcurrencyError)
            message = str(caught.value)
            assert str(log) in message and "'s1'" in message and "busy_timeout=0.3s" in message
            assert "another program holding a write lock" in message
            assert 0.25 <= waited < 5
            holder.execute("ROLLBACK")
            store.append("s1", [ev(31)], store.stream_version("s1"))  # usable once the lock is gone
            assert store.head() == 31 and store.verify().ok
    finally:
        holder.close()


def test_a_full_disk_gives_a_clear_error_and_writes_nothing(log):
    with SQLiteEventStore(log) as store:
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages}")  # stands in for a full disk: SQLITE_FULL
        with pytest.raises(StoreError, match="disk is full.*free some space") as caught:
            store.append("s0", [EventData("Big", {"blob": "y" * 200_000})], store.stream_version("s0"))
        assert str(log) in str(caught.value) and "'s0'" in str(caught.value)
        assert store.head() == 30 and store.verify().ok


def test_a_read_only_log_gives_a_clear_error(log):
    with SQLiteEventStore(log) as store:
        store._conn.execute("PRAGMA query_only = ON")  # stands in for a read-only file: SQLITE_READONLY
        with pytest.raises(StoreError, match="read-only.*check the permissions"):
            store.append("s0", [ev(99)], store.stream_version("s0"))
        with pytest.raises(StoreError, match="read-only"):
            store.save_snapshot("s0", 1, {}, "v1")
        assert store.head() == 30


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores file permissions")
def test_a_folder_without_write_permission(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(StoreError):
            SQLiteEventStore(folder / "events.db")
    finally:
        folder.chmod(0o700)


def test_synchronous_is_configurable(tmp_path):
    with SQLiteEventStore(tmp_path / "full.db", synchronous="FULL") as store:
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    with SQLiteEventStore(tmp_path / "normal.db") as store:
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 1
    with pytest.raises(StoreError, match="synchronous must be"):
        SQLiteEventStore(tmp_path / "x.db", synchronous="OFF")


# -- processes that stop ------------------------------------------------------------------------------


def test_reopening_keeps_everything_and_the_chain_continues(log):
    with SQLiteEventStore(log) as store:
        before = store.read_all()
        store.append("s1", [ev(31)], store.stream_version("s1"), idempotency_key="k")
        store.save_snapshot("s1", 3, {"n": 3}, "v1")
    with SQLiteEventStore(log) as store:
        assert store.read_all()[:30] == before and store.head() == 31
        assert store.append("s1", [ev(0)], 0, idempotency_key="k")[0].position == 31
        assert store.load_snapshot("s1", "v1").state == {"n": 3}
        assert store.verify().ok


def test_a_writer_killed_inside_its_transaction_leaves_nothing_behind(log):
    script = textwrap.dedent(f"""
        import os
        from datetime import datetime, timezone
        from eventstore import EventData, SQLiteEventStore

        def die():  # the clock is read inside the write transaction, after the version check
            os._exit(17)

        store = SQLiteEventStore({str(log)!r}, clock=die)
        store.append("s1", [EventData("Lost", {{"n": i}}) for i in range(50)], store.stream_version("s1"))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, timeout=60, capture_output=True, text=True
    )
    assert done.returncode == 17, done.stderr
    with SQLiteEventStore(log, busy_timeout=1) as store:
        assert store.head() == 30 and "Lost" not in {r.type for r in store.read_all()}
        store.append("s1", [ev(31)], store.stream_version("s1"))  # the dead writer's lock is gone
        result = store.verify()
        assert result.ok and result.checked == 31


def test_the_documented_format_is_what_is_on_disk(log):
    conn = sqlite3.connect(log)
    columns = [(r[1], r[2], r[3], r[5]) for r in conn.execute("PRAGMA table_info(events)")]
    assert columns == [
        ("position", "INTEGER", 0, 1),
        ("stream_id", "TEXT", 1, 0),
        ("version", "INTEGER", 1, 0),
        ("type", "TEXT", 1, 0),
        ("schema_version", "INTEGER", 1, 0),
        ("payload", "TEXT", 1, 0),
        ("recorded_at", "TEXT", 1, 0),
        ("hash", "TEXT", 1, 0),
    ]
    unique = [r for r in conn.execute("PRAGMA index_list(events)") if r[2]]
    assert [[c[2] for c in conn.execute(f"PRAGMA index_info({r[1]!r})")] for r in unique] == [
        ["stream_id", "version"]
    ]
    assert dict(conn.execute("SELECT key, value FROM meta")) == {
        "format": "calmops-eventlog",
        "format_version": "1",
    }
    (payload,) = conn.execute("SELECT payload FROM events WHERE position = 1").fetchone()
    assert payload == json.dumps({"n": 1, "pad": "x" * 100}, sort_keys=True, separators=(",", ":"))
    with pytest.raises(sqlite3.IntegrityError):  # the UNIQUE constraint is the concurrency guard
        conn.execute("INSERT INTO events VALUES (99, 's1', 1, 'T', 1, '{}', 'now', 'h')")
    conn.close()
