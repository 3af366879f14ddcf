"""Actor loss: `ray.kill(actor, no_restart=False)` in the middle of a retraining round or of an ingest call.

Ray restarts the actor, whose constructor replays the log; a round recorded as started has no tasks in the new
process, so `poll` re-issues it (same seed) and records its outcome; an ingest call that was running is
retried by Ray (`max_task_retries`) and the new process finishes what the killed one left undone (the block's
drift check). A training task whose worker dies is recorded as a failed strategy. In every case the round
ends exactly once, never silently lost, and no event is duplicated or missing.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from chaos_tools import check_log_invariants, look, write_config, write_scenario_files

pytestmark = [pytest.mark.ray, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def restart(ray, actor) -> int:
    """Kill the actor's process and wait until Ray's restarted one answers; returns the new pid."""
    old = ray.get(actor.ping.remote())["pid"]
    ray.kill(actor, no_restart=False)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # ray.kill is asynchronous
        try:
            pid = ray.get(actor.ping.remote(), timeout=30)["pid"]
            if pid != old:
                return pid
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            pass
        time.sleep(0.2)
    raise AssertionError("the actor was not restarted")


def poll_until(ray, actor, home: Path, condition, what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition(look(home)):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        ray.get(actor.poll.remote(0.5))


def outcomes(home: Path, round_id: str) -> list[str]:
    """Types of the events that ended `round_id` (ModelPromoted or ChallengerRejected): exactly one expected."""
    import json
    import sqlite3

    with sqlite3.connect(f"file:{home / 'log.sqlite'}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT type, payload FROM events WHERE type IN ('ModelPromoted', 'ChallengerRejected')"
                            ).fetchall()
    return [t for t, p in rows if json.loads(p).get("round_id") == round_id]


def test_rounds_and_ingest_calls_survive_the_actor_being_killed(ray_local, tmp_path: Path) -> None:
    from calmops_actors.runtime import spawn_actor

    ray = ray_local
    files = write_scenario_files(tmp_path / "incoming", blocks=12, rows=300, seed=11)
    config = write_config(tmp_path, "lossy", tmp_path / "incoming")
    import tomllib

    raw = tomllib.loads(config.read_text())
    home = tmp_path / "home"
    actor = spawn_actor(home, "lossy")
    try:
        ray.get(actor.configure.remote(raw, str(tmp_path)))
        # 1. killed while the initial round trains: re-issued after the restart, its outcome recorded once
        assert ray.get(actor.ingest.remote(str(files[0]), False))["outcome"] == "accepted"
        view = look(home)
        assert view.open_round and view.rounds == 1
        restart(ray, actor)
        assert ray.get(actor.summary.remote())["round_in_flight"] == "r1"  # the new process knows from the log
        poll_until(ray, actor, home, lambda v: not v.open_round, "round r1 to end")
        assert outcomes(home, "r1") == ["ModelPromoted"]

        # 2. a drift round, killed twice: before and after its re-issue
        i = 1
        while look(home).rounds < 2:
            assert i < len(files), "no drift round started"
            assert ray.get(actor.ingest.remote(str(files[i]), False))["outcome"] == "accepted"
            i += 1
        assert look(home).open_round
        restart(ray, actor)
        ray.get(actor.poll.remote(0.0))  # the new process re-issues the round's tasks ...
        restart(ray, actor)  # ... and dies too
        poll_until(ray, actor, home, lambda v: not v.open_round, "round r2 to end")
        assert len(outcomes(home, "r2")) == 1

        # 3. killed in the middle of an ingest call: Ray retries the call on the new process, which first
        #    finishes the block the killed one had recorded as arrived
        head = look(home).head
        ref = actor.ingest.remote(str(files[i]), False)
        deadline = time.monotonic() + 60
        while look(home).head == head:
            assert time.monotonic() < deadline, "the ingest call recorded nothing"
            time.sleep(0.01)
        restart(ray, actor)
        assert ray.get(ref)["outcome"] in ("accepted", "duplicate")  # retried: duplicate if it had arrived
        for f in files[i + 1:]:
            assert ray.get(actor.ingest.remote(str(f), True))["outcome"] == "accepted"
        ray.get(actor.poll.remote(0.0))
        poll_until(ray, actor, home, lambda v: not v.open_round, "the last round to end")
    finally:
        ray.kill(actor, no_restart=True)
    numbers = check_log_invariants(home, "lossy", files)  # every round closed once, every block checked once
    assert numbers["rounds"] >= 2


@pytest.mark.skipif(Path.cwd().resolve() != ROOT, reason="Ray workers import the test model from the "
                    "repository root (their working directory is pytest's): run pytest from the repository root")
def test_a_training_task_whose_worker_dies_is_recorded_as_a_failed_strategy(ray_local, tmp_path: Path) -> None:
    from calmops_actors.runtime import spawn_actor

    ray = ray_local
    files = write_scenario_files(tmp_path / "incoming", blocks=2, rows=200, seed=3)
    raw = {"name": "dying", "target": "target",
           "model": {"class": "tests.hardening.crash_model.WorkerKillingClassifier"},
           "circuit_breaker": {"max_consecutive_failures": 1, "backoff_seconds": 3600}}
    home = tmp_path / "home"
    actor = spawn_actor(home, "dying")
    try:
        ray.get(actor.configure.remote(raw, str(tmp_path)))
        assert ray.get(actor.ingest.remote(str(files[0]), True))["outcome"] == "accepted"  # awaits the round
        assert ray.get(actor.ingest.remote(str(files[1]), True))["outcome"] == "accepted"  # circuit open
        summary = ray.get(actor.summary.remote())
    finally:
        ray.kill(actor, no_restart=True)
    from calmops_actors.home import Home, stream_id

    store = Home(home).open_store()
    try:
        events = [(r.type, r.payload) for r in store.read(stream_id("dying"))]
    finally:
        store.close()
    types = [t for t, _ in events]
    assert types.count("RetrainRequested") == 1 and types.count("CircuitOpened") == 1
    (failed,) = [p for t, p in events if t == "RetrainFailed"]
    assert failed["strategy"] == "full" and failed["round_id"] == "r1"
    assert "died" in failed["error"].lower() or "crash" in failed["error"].lower(), failed["error"]
    (rejected,) = [p for t, p in events if t == "ChallengerRejected"]
    assert rejected["round_id"] == "r1" and rejected["reason"] == "every strategy of the round failed"
    assert summary["round_in_flight"] is None and summary["circuit_open"] and summary["champion"] is None
    assert types.count("BlockArrived") == 2
