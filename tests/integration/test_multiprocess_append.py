"""Four processes (spawned) append to one SQLite log at once: to one shared stream, retrying on
ConcurrencyError and repeating calls with the same idempotency key, and to a stream of their own. Nothing is
lost, nothing is duplicated, versions and positions are gapless and the hash chain verifies."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from eventstore import ConcurrencyError, EventData, SQLiteEventStore

WORKERS = 4
SHARED = 40  # events per worker on the shared stream
OWN = 40  # events per worker on its own stream


def worker(path: str, index: int, barrier, results) -> None:
    """Runs in a child process: wait for the others, then append as fast as possible."""
    conflicts = 0
    with SQLiteEventStore(path, busy_timeout=30) as store:
        barrier.wait(60)
        seen = store.stream_version("shared")  # everyone reads 0 ...
        barrier.wait(60)  # ... before anyone appends: exactly one first append wins, the others conflict
        own_version = 0
        for i in range(max(SHARED, OWN)):
            if i < SHARED:
                key = f"w{index}-{i}"
                event = [EventData("Shared", {"worker": index, "i": i})]
                while True:
                    try:
                        first = store.append("shared", event, seen, idempotency_key=key)
                        break
                    except ConcurrencyError as exc:
                        conflicts += 1
                        seen = exc.actual
                seen = first[-1].version
                # Ray may deliver the same call twice: the repeat must return the same records, write nothing
                again = store.append("shared", event, 0, idempotency_key=key)
                assert again == first, (again, first)
            if i < OWN:
                size = 1 + (i % 3)
                batch = [EventData("Own", {"worker": index, "i": i, "j": j}) for j in range(size)]
                recorded = store.append(f"worker-{index}", batch, own_version)
                own_version = recorded[-1].version
    results.put((index, conflicts))


@pytest.mark.slow
def test_four_processes_append_concurrently(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    SQLiteEventStore(path).close()  # create the file once, before the race
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(WORKERS), ctx.Queue()
    processes = [ctx.Process(target=worker, args=(str(path), i, barrier, results)) for i in range(WORKERS)]
    began = time.monotonic()
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=120)
    elapsed = time.monotonic() - began
    assert [p.exitcode for p in processes] == [0] * WORKERS
    conflicts = dict(results.get(timeout=5) for _ in range(WORKERS))
    assert sorted(conflicts) == list(range(WORKERS))
    assert sum(conflicts.values()) >= WORKERS - 1  # the retry path really ran

    with SQLiteEventStore(path) as store:
        shared = store.read("shared")
        assert [r.version for r in shared] == list(range(1, WORKERS * SHARED + 1))
        assert sorted((r.payload["worker"], r.payload["i"]) for r in shared) == [
            (w, i) for w in range(WORKERS) for i in range(SHARED)
        ]
        for w in range(WORKERS):  # each worker's shared events are in its own order
            assert [r.payload["i"] for r in shared if r.payload["worker"] == w] == list(range(SHARED))
            own = store.read(f"worker-{w}")
            expected = [(i, j) for i in range(OWN) for j in range(1 + i % 3)]
            assert [(r.payload["i"], r.payload["j"]) for r in own] == expected
            assert [r.version for r in own] == list(range(1, len(expected) + 1))
        total = WORKERS * SHARED + WORKERS * sum(1 + i % 3 for i in range(OWN))
        assert [r.position for r in store.read_all()] == list(range(1, total + 1))
        assert store.streams() == ["shared"] + [f"worker-{w}" for w in range(WORKERS)]
        result = store.verify()
        assert result.ok and result.checked == total, result
    assert elapsed < 60, f"took {elapsed:.1f}s"
