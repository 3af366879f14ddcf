"""Pipeline actors on the shared local Ray: end to end, restart and replay, concurrency."""

from __future__ import annotations

import threading
import time
import tomllib
from collections import Counter
from pathlib import Path

import pytest

from calmops_actors.blockfiles import write_scenario
from calmops_actors.home import Home, stream_id
from calmops_actors.runtime import spawn_actor
from pipelines.core.state import replay
from pipelines.synthetic.scenarios import generate_scenario

pytestmark = pytest.mark.ray

CONFIG = """\
name = "{name}"
target = "target"
source = "incoming"

[training]
seed = 5

[retrain]
strategies = ["full", "windowed"]
"""


def make_pipeline(root: Path, name: str, blocks: int = 10, seed: int = 5) -> tuple[dict, list[Path]]:
    incoming = root / name / "incoming"
    incoming.mkdir(parents=True)
    scenario = generate_scenario("sea", blocks=blocks, rows=400, seed=seed, drift_at=min(6, blocks))
    write_scenario(scenario, incoming, "csv")
    text = CONFIG.format(name=name)
    (root / name / f"{name}.toml").write_text(text)
    return tomllib.loads(text), sorted(incoming.glob("block_*.csv"))


def log_state(home: Path, name: str):
    store = Home(home).open_store()
    try:
        recorded = store.read(stream_id(name))
        return replay(store.codec.decode(r) for r in recorded), recorded, store.verify()
    finally:
        store.close()


def test_a_pipeline_processes_ten_blocks_and_survives_a_kill(ray_local, tmp_path: Path) -> None:
    ray = ray_local
    home = tmp_path / "home"
    raw, files = make_pipeline(tmp_path, "killme")
    actor = spawn_actor(home, "killme")
    ray.get(actor.configure.remote(raw, str(tmp_path / "killme")))
    for f in files[:5]:
        assert ray.get(actor.ingest.remote(str(f), True))["outcome"] == "accepted"
    before = ray.get(actor.summary.remote())
    old_pid = ray.get(actor.ping.remote())["pid"]
    ray.kill(actor, no_restart=False)  # Ray restarts it; the constructor replays the stream
    deadline = time.monotonic() + 90
    while True:  # ray.kill is asynchronous: wait until a new process answers
        try:
            if ray.get(actor.ping.remote(), timeout=30)["pid"] != old_pid:
                break
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            pass
        assert time.monotonic() < deadline, "the actor was not restarted"
        time.sleep(0.5)
    after_restart = ray.get(actor.summary.remote())
    assert after_restart == before
    ray.get(actor.configure.remote(raw, str(tmp_path / "killme")))  # same config: records nothing
    # a file delivered twice (as Ray may after a restart) is recorded once
    assert ray.get(actor.ingest.remote(str(files[4]), True))["outcome"] == "duplicate"
    for f in files[5:]:
        assert ray.get(actor.ingest.remote(str(f), True))["outcome"] == "accepted"
    summary = ray.get(actor.summary.remote())
    state, recorded, verified = log_state(home, "killme")
    assert verified.ok
    assert [r.version for r in recorded] == list(range(1, len(recorded) + 1))
    arrived = Counter(r.payload["block_id"] for r in recorded if r.type == "BlockArrived")
    assert len(arrived) == 10 and set(arrived.values()) == {1}
    assert summary["version"] == state.version and summary["champion"] == state.champion
    assert state.counters.drifts >= 1 and state.counters.promotions >= 1
    types = Counter(r.type for r in recorded)
    assert types["PerformanceMeasured"] == 9 and types["DriftChecked"] == 9  # every block after the first
    assert types["RetrainRequested"] == types["ModelPromoted"] + types["ChallengerRejected"]
    ray.kill(actor, no_restart=True)


def test_two_pipelines_ingest_concurrently(ray_local, tmp_path: Path) -> None:
    ray = ray_local
    home = tmp_path / "home"
    actors, work = {}, {}
    for name, seed in (("left", 1), ("right", 2)):
        raw, files = make_pipeline(tmp_path, name, blocks=4, seed=seed)
        actors[name] = spawn_actor(home, name)
        ray.get(actors[name].configure.remote(raw, str(tmp_path / name)))
        work[name] = files
    refs = [actors[n].ingest.remote(str(f), True) for i in range(4) for n in ("left", "right")
            for f in [work[n][i]]]
    results = ray.get(refs)
    assert all(r["outcome"] == "accepted" for r in results)
    for name in ("left", "right"):
        state, recorded, verified = log_state(home, name)
        assert verified.ok and state.counters.blocks == 4 and state.champion is not None
        ray.kill(actors[name], no_restart=True)
    store = Home(home).open_store()
    assert sorted(store.streams()) == ["pipeline-left", "pipeline-right"]
    store.close()


def test_a_bad_file_is_a_recorded_rejection_and_the_pipeline_goes_on(ray_local, tmp_path: Path) -> None:
    ray = ray_local
    home = tmp_path / "home"
    raw, files = make_pipeline(tmp_path, "picky", blocks=3)
    bad = files[0].parent / "block_0002_bad.csv"
    bad.write_text("feat_1,feat_2,feat_3,target\n1,2,3,0\n1,two,3,1\n")
    actor = spawn_actor(home, "picky")
    ray.get(actor.configure.remote(raw, str(tmp_path / "picky")))
    outcomes = [ray.get(actor.ingest.remote(str(f), True)) for f in [files[0], bad, files[1], files[2]]]
    assert [o["outcome"] for o in outcomes] == ["accepted", "rejected", "accepted", "accepted"]
    assert outcomes[1]["reason_code"] == "non_numeric_values"
    assert "'two'" in outcomes[1]["message"]
    assert ray.get(actor.ingest.remote(str(bad), True))["outcome"] == "duplicate"
    state, _, _ = log_state(home, "picky")
    assert state.counters.rejected_files == 1 and state.counters.blocks == 3
    ray.kill(actor, no_restart=True)


def test_the_watcher_ingests_a_slowly_written_file_once(ray_local, tmp_path: Path) -> None:
    from calmops_actors.supervisor import Supervisor

    ray = ray_local
    home = tmp_path / "home"
    raw, files = make_pipeline(tmp_path, "watched", blocks=3)
    config_dir = tmp_path / "watched"
    (config_dir / "watched.toml").write_text(
        (config_dir / "watched.toml").read_text() + "\n[trigger]\nsettle_seconds = 0.5\n")
    late = files[2].read_bytes()
    files[2].unlink()  # arrives later, slowly
    supervisor = Supervisor(home, config_dir)
    try:
        report = supervisor.scan()
        assert report.started == ["watched"] and not report.errors
        target = files[2]

        def slow_writer() -> None:
            with open(target, "wb") as handle:
                for i in range(0, len(late), len(late) // 8 + 1):
                    handle.write(late[i:i + len(late) // 8 + 1])
                    handle.flush()
                    time.sleep(0.15)

        writer = threading.Thread(target=slow_writer)
        writer.start()
        writer.join()
        (target.parent / ".hidden.csv").write_text("x\n1\n")  # ignored
        (target.parent / "partial.csv.part").write_text("x\n1\n")  # ignored
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            supervisor.poll()
            state, recorded, _ = log_state(home, "watched")
            if state.counters.blocks == 3 and state.round is None:
                break
            time.sleep(0.3)
        state, recorded, verified = log_state(home, "watched")
        assert state.counters.blocks == 3 and verified.ok
        assert state.counters.rejected_files == 0  # the half-written file was never read
        arrived = [r.payload["file"] for r in recorded if r.type == "BlockArrived"]
        assert arrived == ["block_0001.csv", "block_0002.csv", "block_0003.csv"]
    finally:
        supervisor.close()
        for actor in supervisor.actors().values():
            ray.kill(actor, no_restart=True)


def test_an_invalid_config_is_reported_and_the_others_run(ray_local, tmp_path: Path) -> None:
    from calmops_actors.supervisor import Supervisor

    raw, _ = make_pipeline(tmp_path, "good", blocks=1)
    config_dir = tmp_path / "good"
    (config_dir / "broken.toml").write_text('name = "broken"\ntarget = "y"\ntaks = "regression"\n')
    supervisor = Supervisor(tmp_path / "home", config_dir, watch=False)
    try:
        report = supervisor.scan()
        assert report.started == ["good"]
        (message,) = report.errors.values()
        assert "broken.toml: taks: unknown key (did you mean 'task'?)" in message
        # a changed config is recorded with its diff
        path = config_dir / "good.toml"
        path.write_text(path.read_text().replace("seed = 5", "seed = 6"))
        assert supervisor.scan().reconfigured == ["good"]
        state, recorded, _ = log_state(tmp_path / "home", "good")
        changed = [r for r in recorded if r.type == "ConfigChanged"]
        assert [(d["key"], d["old"], d["new"]) for d in changed[0].payload["diff"]] == [("training.seed", "5", "6")]
    finally:
        supervisor.close()
        for actor in supervisor.actors().values():
            ray_local.kill(actor, no_restart=True)


def test_blocks_keep_arriving_while_a_round_trains(ray_local, tmp_path: Path) -> None:
    """serve's mode: ingest does not wait for the round; poll records it later, exactly once."""
    ray = ray_local
    home = tmp_path / "home"
    raw, files = make_pipeline(tmp_path, "busy", blocks=6)
    actor = spawn_actor(home, "busy")
    ray.get(actor.configure.remote(raw, str(tmp_path / "busy")))
    for f in files:
        assert ray.get(actor.ingest.remote(str(f), False))["outcome"] == "accepted"
    deadline = time.monotonic() + 120
    while ray.get(actor.summary.remote())["round_in_flight"] is not None:
        ray.get(actor.poll.remote(1.0))
        assert time.monotonic() < deadline, "the round never finished"
    _, recorded, verified = log_state(home, "busy")
    assert verified.ok
    types = [r.type for r in recorded]
    first_round_start = types.index("RetrainRequested")
    first_round_end = min(i for i, t in enumerate(types) if t in ("ModelPromoted", "ChallengerRejected"))
    # the initial round was still training when the next blocks were recorded
    assert "BlockArrived" in types[first_round_start:first_round_end]
    starts = Counter(r.payload["round_id"] for r in recorded if r.type == "RetrainRequested")
    ends = Counter(r.payload["round_id"] for r in recorded if r.type in ("ModelPromoted", "ChallengerRejected"))
    assert starts == ends and set(starts.values()) == {1}  # every round recorded once, none lost
    ray.kill(actor, no_restart=True)
