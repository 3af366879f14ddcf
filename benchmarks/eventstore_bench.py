"""Event store overhead against plain sqlite3 doing the same work on an equivalent table (the floor).

    python -m benchmarks.eventstore_bench [--events 3000] [--replay-events 100000] [--repeats 3] [--json PATH]

Cases, each timed against its floor in the same run (the floor and the store alternate, median of repeats):

* append, one event per transaction (durable commit each time), with ``synchronous=NORMAL`` (the default)
  and ``FULL``. Floor: ``BEGIN; INSERT ...; COMMIT`` of a ``json.dumps`` payload into the same ``events``
  table (same WAL mode, same synchronous, same UNIQUE index). Store: ``SQLiteEventStore.append`` (argument
  checks, canonical JSON, the version check and previous hash read inside ``BEGIN IMMEDIATE``, sha256).
* append, 100 events per transaction: the same with 100-event batches.
Each case reports the wall-time ratio (judged against the target) and, for information, the ratio of this
process's CPU time, which moves less when other programs share the machine.

* replay: read every event in position order and decode its JSON payload. Floor: a plain ``SELECT`` and
  ``json.loads`` over the very same file. Store: ``iter_all(verify=True)`` (Recorded envelopes and the
  whole hash chain checked on the way), plus ``iter_all()`` and ``verify()`` alone for reference.

Targets: append overhead <= 2x the floor; replay with verification of 1,000,000 events in under 30 s. A
smaller ``--replay-events`` reports the 1M time extrapolated linearly (and says so); run
``--replay-events 1000000`` to measure it. This is a benchmark, not a test: it never fails, it reports.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from eventstore import EventData, SQLiteEventStore

APPEND_TARGET = 2.0  # store time / floor time
REPLAY_TARGET_SECONDS = 30.0  # for 1,000,000 events with verification
REPLAY_TARGET_EVENTS = 1_000_000
STREAMS = 10

FLOOR_SCHEMA = """
CREATE TABLE events (
    position INTEGER PRIMARY KEY, stream_id TEXT NOT NULL, version INTEGER NOT NULL, type TEXT NOT NULL,
    schema_version INTEGER NOT NULL, payload TEXT NOT NULL, recorded_at TEXT NOT NULL, hash TEXT NOT NULL,
    UNIQUE (stream_id, version))
"""


def payload(i: int) -> dict:
    """About 300 bytes of JSON, like a DriftChecked event."""
    return {
        "block": i,
        "feature": f"f{i % 20:02d}",
        "statistic": 0.123456789 + i % 7,
        "p_value": 0.0421,
        "window": [i * 500, i * 500 + 499],
        "detector": "ks",
        "drifted": i % 5 == 0,
        "artifact": {
            "id": f"blk-{i:08d}",
            "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        },
        "note": "reference window rolled forward",
    }


class Timer:
    """Wall time (what a user waits) and this process's CPU time (steadier when the machine is shared)."""

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- append -------------------------------------------------------------------------------------------


def floor_append(path: Path, events: int, per_txn: int, synchronous: str) -> Timer:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute(FLOOR_SCHEMA)
    versions = dict.fromkeys(range(STREAMS), 0)
    sql = (
        "INSERT INTO events (stream_id, version, type, schema_version, payload, recorded_at, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, '')"
    )
    with Timer() as timer:
        for start in range(0, events, per_txn):
            stream = start // per_txn % STREAMS
            stamp = datetime.now(UTC).isoformat(timespec="microseconds")
            rows = []
            for i in range(start, min(start + per_txn, events)):
                versions[stream] += 1
                rows.append(
                    (f"pipeline-{stream}", versions[stream], "DriftChecked", 1, json.dumps(payload(i)), stamp)
                )
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, rows)
            conn.execute("COMMIT")
    conn.close()
    return timer


def store_append(path: Path, events: int, per_txn: int, synchronous: str) -> Timer:
    versions = dict.fromkeys(range(STREAMS), 0)
    with SQLiteEventStore(path, synchronous=synchronous) as store:
        with Timer() as timer:
            for start in range(0, events, per_txn):
                stream = start // per_txn % STREAMS
                batch = [
                    EventData("DriftChecked", payload(i)) for i in range(start, min(start + per_txn, events))
                ]
                store.append(f"pipeline-{stream}", batch, versions[stream])
                versions[stream] += len(batch)
        assert store.head() == events
    return timer


def append_case(folder: Path, events: int, per_txn: int, synchronous: str, repeats: int) -> dict:
    floors, stores = [], []
    for r in range(repeats):
        for kind, fn, sink in (("floor", floor_append, floors), ("store", store_append, stores)):
            path = folder / f"append-{kind}-{per_txn}-{synchronous}-{r}.db"
            sink.append(fn(path, events, per_txn, synchronous))
            for leftover in folder.glob(f"{path.name}*"):
                leftover.unlink()
    return summarise(f"append {per_txn}/txn, {synchronous}", events, floors, stores) | {
        "target": f"<= {APPEND_TARGET:g}x"
    }


def summarise(case: str, events: int, floors: list[Timer], stores: list[Timer]) -> dict:
    """Medians of wall and CPU seconds; the ratio that is judged is the wall one."""
    floor, store = statistics.median(t.wall for t in floors), statistics.median(t.wall for t in stores)
    floor_cpu, store_cpu = statistics.median(t.cpu for t in floors), statistics.median(t.cpu for t in stores)
    ratio = store / floor
    return {
        "case": case,
        "events": events,
        "repeats": len(stores),
        "floor_per_s": events / floor,
        "store_per_s": events / store,
        "floor_s": floor,
        "store_s": store,
        "ratio": ratio,
        "floor_cpu_s": floor_cpu,
        "store_cpu_s": store_cpu,
        "cpu_ratio": store_cpu / floor_cpu,
        "met": ratio <= APPEND_TARGET,
    }


# -- replay -------------------------------------------------------------------------------------------


def build_log(path: Path, events: int) -> None:
    versions = dict.fromkeys(range(STREAMS), 0)
    with SQLiteEventStore(path) as store:
        for start in range(0, events, 1000):
            stream = start // 1000 % STREAMS
            batch = [EventData("DriftChecked", payload(i)) for i in range(start, min(start + 1000, events))]
            store.append(f"pipeline-{stream}", batch, versions[stream])
            versions[stream] += len(batch)


def floor_replay(path: Path) -> tuple[Timer, int]:
    conn = sqlite3.connect(path)
    count = 0
    loads = json.loads
    with Timer() as timer:
        cursor = conn.execute(
            "SELECT position, stream_id, version, type, schema_version, payload, recorded_at, hash "
            "FROM events ORDER BY position"
        )
        while rows := cursor.fetchmany(10000):
            for row in rows:
                loads(row[5])
                count += 1
    conn.close()
    return timer, count


def store_replay(path: Path, verify: bool) -> tuple[Timer, int]:
    with SQLiteEventStore(path) as store:
        count = 0
        with Timer() as timer:
            for _ in store.iter_all(verify=verify):
                count += 1
        return timer, count


def store_verify(path: Path) -> tuple[Timer, int]:
    with SQLiteEventStore(path) as store, Timer() as timer:
        result = store.verify()
    assert result.ok, result
    return timer, result.checked


def replay_cases(folder: Path, events: int, repeats: int) -> list[dict]:
    path = folder / "replay.db"
    log(f"building a log of {events:,} events ...")
    started = time.perf_counter()
    build_log(path, events)
    log(f"  built in {time.perf_counter() - started:.1f}s ({path.stat().st_size / 1e6:.0f} MB)")
    floor_replay(path)  # warm the page cache for everyone
    timings: dict[str, list[Timer]] = {"floor": [], "verified": [], "plain": [], "verify": []}
    for _ in range(repeats):
        for name, fn in (
            ("floor", lambda: floor_replay(path)),
            ("verified", lambda: store_replay(path, True)),
            ("plain", lambda: store_replay(path, False)),
            ("verify", lambda: store_verify(path)),
        ):
            timer, count = fn()
            assert count == events, (name, count)
            timings[name].append(timer)
    cases = []
    scale = REPLAY_TARGET_EVENTS / events
    for name, label in (
        ("verified", "replay + verify (iter_all(verify=True))"),
        ("plain", "replay (iter_all())"),
        ("verify", "verify() alone"),
    ):
        case = summarise(label, events, timings["floor"], timings[name])
        del case["met"]
        if name == "verified":
            case["seconds_for_1m"] = case["store_s"] * scale
            case["cpu_seconds_for_1m"] = case["store_cpu_s"] * scale
            case["measured_1m"] = events >= REPLAY_TARGET_EVENTS
            case["target"] = f"1M < {REPLAY_TARGET_SECONDS:g}s"
            case["met"] = case["seconds_for_1m"] < REPLAY_TARGET_SECONDS
        cases.append(case)
    path.unlink()
    return cases


# -- report -------------------------------------------------------------------------------------------


def table(results: list[dict]) -> str:
    lines = [
        f"{'case':<42} {'events':>9} {'floor/s':>10} {'store/s':>10} {'ratio':>7} {'cpu':>7}  target",
        "-" * 110,
    ]
    for r in results:
        target = ""
        if "target" in r:
            target = f"{r['target']}: {'ok' if r['met'] else 'MISSED'}"
            if "seconds_for_1m" in r:
                how = "measured" if r["measured_1m"] else "extrapolated"
                target += f" (1M: {r['seconds_for_1m']:.1f}s wall, {r['cpu_seconds_for_1m']:.1f}s CPU, {how})"
        lines.append(
            f"{r['case']:<42} {r['events']:>9,} {r['floor_per_s']:>10,.0f} {r['store_per_s']:>10,.0f} "
            f"{r['ratio']:>6.2f}x {r['cpu_ratio']:>6.2f}x  {target}"
        )
    return "\n".join(lines)


def rows(report: dict) -> list:
    """The README rows of a `--json` report (see benchmarks/report.py)."""
    from benchmarks.report import Row, fmt_ratio, fmt_seconds

    out = []
    for r in report["results"]:
        if r["case"].startswith("append"):
            out.append(Row(f"{r['case']}: {r['events']:,} events", f"{r['store_per_s']:,.0f}/s, "
                           f"{fmt_ratio(r['ratio'])} (CPU {fmt_ratio(r['cpu_ratio'])})",
                           f"plain sqlite3 {r['floor_per_s']:,.0f}/s", r["target"], r["met"]))
        elif "seconds_for_1m" in r:
            how = "measured" if r["measured_1m"] else f"extrapolated from {r['events']:,}"
            out.append(Row(f"{r['case']}, 1M events ({how})",
                           f"{fmt_seconds(r['seconds_for_1m'])} wall, {fmt_seconds(r['cpu_seconds_for_1m'])} CPU,"
                           f" {fmt_ratio(r['ratio'])}", f"sqlite3 scan + json.loads "
                           f"{fmt_seconds(r['floor_s'] * r['seconds_for_1m'] / r['store_s'])}",
                           "< 30 s", r["met"]))
        else:
            out.append(Row(f"{r['case']}, {r['events']:,} events", f"{fmt_seconds(r['store_s'])}, "
                           f"{fmt_ratio(r['ratio'])}", f"{fmt_seconds(r['floor_s'])}"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.eventstore_bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--events", type=int, default=3000, help="events per append case (100/txn uses 10x)")
    parser.add_argument("--replay-events", type=int, default=100_000, help="events in the replay log")
    parser.add_argument("--repeats", type=int, default=3, help="runs per case; the median is reported")
    parser.add_argument(
        "--replay-repeats", type=int, default=None, help="runs of the replay cases (default: --repeats)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="eventstore-bench-"))
    load_before = os.getloadavg()
    results = []
    try:
        for per_txn, events, synchronous in (
            (1, args.events, "NORMAL"),
            (1, args.events, "FULL"),
            (100, args.events * 10, "NORMAL"),
        ):
            log(f"append {per_txn}/txn {synchronous}: {events:,} events x {args.repeats} ...")
            results.append(append_case(folder, events, per_txn, synchronous, args.repeats))
        results.extend(replay_cases(folder, args.replay_events, args.replay_repeats or args.repeats))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    load_after = os.getloadavg()
    print(table(results))
    print(
        f"load average (1 min) {load_before[0]:.1f} at the start, {load_after[0]:.1f} at the end, "
        f"on {os.cpu_count()} CPUs"
    )
    if args.json:
        report = {
            "command": "python -m benchmarks.eventstore_bench "
            + " ".join(argv if argv is not None else sys.argv[1:]),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "load_average_1min": {"start": load_before[0], "end": load_after[0]},
            "results": results,
            "targets": {
                "append_ratio_max": APPEND_TARGET,
                "replay_verified_1m_seconds_max": REPLAY_TARGET_SECONDS,
            },
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
