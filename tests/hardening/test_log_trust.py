"""A log that cannot be silently rewritten: reads refuse an edited record, a truncated or re-hashed log is
caught by the trusted head, an anchor kept elsewhere catches a forger who rewrites both, and the read tables
notice a log that moved backwards.

The reproductions: an artifact reference rewritten without recomputing the chain was still unpickled by
`predict` and acted on by `run`; deleting the last 6 rows left `verify` saying "hash chain intact" and let
`serve` write new events at the same positions; re-hashing the whole chain after an edit passed `verify`.
"""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
from pathlib import Path

import pytest
from log_tools import rehash

from calmops_actors import cli
from calmops_actors.home import Home, stream_id
from calmops_actors.projector import update_projections
from eventstore import CorruptLogError, EventData, SQLiteEventStore


def make_log(home: Path, events: int = 30) -> Path:
    """A home whose log holds `events` plain events in two streams (no artifacts: the chain is the subject)."""
    home.mkdir(parents=True, exist_ok=True)
    with SQLiteEventStore(home / "log.sqlite") as store:
        for i in range(events):
            stream = stream_id(f"p{i % 2}")
            store.append(stream, [EventData("Noted", {"n": i})], expected_version=i // 2)
    return home / "log.sqlite"


def sql(path: Path, statement: str, args: tuple = ()) -> None:
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(statement, args)


def calmops(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(args))
    return code, out.getvalue() + err.getvalue()


def test_an_edited_record_is_refused_by_every_read_not_only_by_verify(tmp_path: Path) -> None:
    log = make_log(tmp_path / "home")
    sql(log, "UPDATE events SET payload = '{\"n\":99}' WHERE position = 5")
    with SQLiteEventStore(log) as store:  # the end of the log still matches its trusted head
        with pytest.raises(CorruptLogError, match="position 5: its hash does not match its content"):
            store.read(stream_id("p0"))
        with pytest.raises(CorruptLogError, match="position 5"):
            list(store.iter_stored(stream_id("p0")))
        assert [r.position for r in store.read_all(limit=4)] == [1, 2, 3, 4]
    code, text = calmops("replay", "p0", "--home", str(tmp_path / "home"))
    assert code == 2 and "position 5" in text and "Traceback" not in text


def test_a_truncated_log_is_caught_by_verify_and_refused_by_readers_and_writers(tmp_path: Path) -> None:
    home = tmp_path / "home"
    log = make_log(home)
    sql(log, "DELETE FROM events WHERE position > 24")  # the last 6 rows
    code, text = calmops("verify", "--home", str(home), "--skip-artifacts")
    assert code == 1 and "the log ends at position 24 but the trusted head is at position 30" in text
    assert "6 record(s) were deleted" in text
    with pytest.raises(CorruptLogError, match="deleted from its end"):
        SQLiteEventStore(log)  # what the actor, the projector and every command open
    with SQLiteEventStore(log, check_head=False) as store, pytest.raises(CorruptLogError, match="nothing was appended"):
        store.append(stream_id("p0"), [EventData("Noted", {"n": 100})], expected_version=12)  # never over positions 25-30
    with contextlib.closing(sqlite3.connect(log)) as conn:
        assert conn.execute("SELECT MAX(position) FROM events").fetchone()[0] == 24


def test_a_rehashed_chain_is_caught_by_the_trusted_head_and_a_forged_head_by_an_anchor(tmp_path: Path) -> None:
    home = tmp_path / "home"
    log = make_log(home)
    code, anchor = calmops("head", "--home", str(home))
    anchor = anchor.strip()
    assert code == 0 and anchor.startswith("30:") and len(anchor) == 3 + 64
    sql(log, "UPDATE events SET payload = '{\"n\":99}' WHERE position = 5")
    rehash(log)  # a valid chain again
    code, text = calmops("verify", "--home", str(home), "--skip-artifacts")
    assert code == 1 and "the log was rewritten" in text
    # the forger also rewrites the head file: only an anchor kept elsewhere can tell
    head_file = home / "log.sqlite.head"
    with SQLiteEventStore(log, check_head=False) as store:
        last = store.last_link()
    head_file.write_text(json.dumps({"position": last.position, "hash": last.hash}))
    assert calmops("verify", "--home", str(home), "--skip-artifacts")[0] == 0
    code, text = calmops("verify", "--home", str(home), "--skip-artifacts", "--expect-head", anchor)
    assert code == 1 and "anchor you gave" in text


def test_trusting_a_restored_log_makes_the_read_tables_rebuild_loudly(tmp_path: Path, caplog) -> None:
    home = tmp_path / "home"
    log = make_log(home)
    assert update_projections(home) == 30
    backup = tmp_path / "backup.sqlite"
    with contextlib.closing(sqlite3.connect(log)) as src, contextlib.closing(sqlite3.connect(backup)) as dst:
        src.backup(dst)
    sql(backup, "DELETE FROM events WHERE position > 20")  # an older backup: 20 events
    for suffix in ("", "-wal", "-shm"):
        Path(f"{log}{suffix}").unlink(missing_ok=True)
    backup.rename(log)
    with pytest.raises(CorruptLogError):
        update_projections(home)  # refused until an operator decides
    code, text = calmops("head", "--home", str(home), "--trust-log")
    assert code == 0 and text.startswith("20:") and "trusted head set to the log as it is now (was 30:" in text
    with caplog.at_level("ERROR"):
        assert update_projections(home) == 20  # rebuilt from the log as it is
    assert "the log moved backwards: it ends at position 20" in caplog.text
    with contextlib.closing(sqlite3.connect(Home(home).projections_path)) as conn:
        assert conn.execute("SELECT position FROM projection_checkpoints").fetchone()[0] == 20


def test_head_trust_log_refuses_a_broken_chain(tmp_path: Path) -> None:
    home = tmp_path / "home"
    log = make_log(home)
    sql(log, "UPDATE events SET payload = '{\"n\":99}' WHERE position = 5")
    code, text = calmops("head", "--home", str(home), "--trust-log")
    assert code == 2 and "chain itself is broken" in text


def test_an_edited_snapshot_is_not_used(tmp_path: Path, caplog) -> None:
    """Snapshots are a cache in the log file, outside the chain; their digest is kept beside the trusted head."""
    log = make_log(tmp_path / "home")
    stream = stream_id("p0")
    with SQLiteEventStore(log) as store:
        store.save_snapshot(stream, 15, {"champion": "v1"}, "schema-1")
        assert store.load_snapshot(stream, "schema-1").state == {"champion": "v1"}
    sql(log, "UPDATE snapshots SET state = '{\"champion\":\"planted\"}'")
    with SQLiteEventStore(log) as store, caplog.at_level("WARNING"):
        assert store.load_snapshot(stream, "schema-1") is None
    assert "does not match its recorded digest" in caplog.text
