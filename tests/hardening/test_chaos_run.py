"""Crash chaos for `calmops run`: killed (SIGKILL to its whole process tree) at seeded moments and restarted, it
must end with the same champion and the same decisions as an uninterrupted run with the same seed.

`run` ingests the files in name order and awaits each retraining round, so its decisions are a function of the
files and the seed. The uninterrupted reference drives the same actor class the same way (`configure`, then
`ingest(file, await_rounds=True)` per file, exactly what commands/run.py does) in this process on the shared
local Ray; the interrupted one is the real command in subprocesses, each with its own local Ray, killed while
appends are in progress and while a round is in flight, then run again until it completes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from chaos_tools import (
    check_log_invariants,
    cli_env,
    kill_tree,
    look,
    ray_tmpdir,
    seeded,
    stale_ray_processes,
    start_cli,
    wait_for,
    write_config,
    write_scenario_files,
)

pytestmark = [pytest.mark.chaos, pytest.mark.ray, pytest.mark.timeout(2400)]

SEED = 7
KILLS = 10  # SIGKILLs of the whole process tree, each followed by a restart
ROUND_KILLS = 3  # of which while a retraining round is in flight (its tasks training); the rest mid-appends
IGNORED = {"occurred_at", "seconds", "notes"}  # times, wall-clock seconds, the Ray node a task ran on
# a model's bytes are not reproducible (skops writes a zip, whose entries carry the time they were written):
# a candidate's identity is its version, strategy, seed, training blocks and metrics, compared exactly
MODEL_BYTES = {"artifact", "sha256", "sha256s"}


def decisions(home: Path, name: str) -> list[tuple]:
    """Every recorded event as (type, payload without times and wall-clock seconds), in order."""
    from calmops_actors.home import Home, stream_id

    store = Home(home).open_store()
    try:
        return [(r.type, {k: without_bytes(k, v) for k, v in r.payload.items()
                          if k not in IGNORED and k != "calibration_sha256"
                          and not (r.type in ("CandidateTrained", "ArtifactsPruned") and k in MODEL_BYTES)})
                for r in store.read(stream_id(name))]
    finally:
        store.close()


def without_bytes(key: str, value):
    """A calibration's numbers without its artifact: it holds the model, whose bytes differ run to run."""
    if key == "calibration" and isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "artifact"}
    return value


def reference_run(ray_local, config: Path, files: list[Path], home: Path) -> None:
    """What `calmops run CONFIG` does, without interruption: one actor, every file, each round awaited."""
    from calmops_actors.runtime import spawn_actor

    raw = tomllib.loads(config.read_text())
    actor = spawn_actor(home.resolve(), raw["name"])
    try:
        ray_local.get(actor.configure.remote(raw, str(config.parent.resolve())))
        for f in files:
            assert ray_local.get(actor.ingest.remote(str(f), True))["outcome"] == "accepted"
    finally:
        ray_local.kill(actor, no_restart=True)


def test_run_killed_at_random_moments_decides_exactly_like_an_uninterrupted_run(ray_local, tmp_path: Path) -> None:
    rng = seeded(SEED)
    files = write_scenario_files(tmp_path / "incoming", blocks=40, rows=300, seed=11)
    config = write_config(tmp_path, "sea", tmp_path / "incoming")
    reference = tmp_path / "reference"
    reference_run(ray_local, config, files, reference)

    home = tmp_path / "home"
    plan = kill_plan(look(reference), rng)
    ray_tmp = ray_tmpdir()
    env = cli_env(ray_tmp)
    args = ["run", str(config), "--home", str(home), "--json"]
    out = tmp_path / "run.out"
    kills = []
    try:
        for kind, target in plan:
            proc = start_cli(args, cwd=tmp_path, env=env, out=out)
            if kind == "round":  # the round that opens at `target`, its tasks still training
                hit = wait_for(lambda t=target: look(home).head >= t and look(home).open_round, 300,
                               "a round", tick=0.05, alive=proc)
                wait_for(lambda: False, rng.uniform(0.0, 0.3), "nothing", alive=proc)
                if not look(home).open_round:  # a quick round ended during the pause: kill in the next one
                    hit = wait_for(lambda: look(home).open_round, 300, "the next round", tick=0.02, alive=proc)
            else:  # right as the log passes `target`: in the middle of a block's appends
                hit = wait_for(lambda t=target: look(home).head >= t, 300, "appends", tick=0.02, alive=proc)
            at = look(home)
            kill_tree(proc)
            assert not stale_ray_processes(ray_tmp), "Ray processes survived the kill"
            kills.append((kind, hit, at.head, at.open_round))
            print(f"kill {len(kills)}/{KILLS}: {kind} at head {at.head} (target {target})", flush=True)
        print(f"\n{len(kills)} SIGKILLs of run (kind, hit, head, round open): {kills}", flush=True)
        final = subprocess.run([sys.executable, "-m", "calmops_actors", *args], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=600)
        assert final.returncode == 0, final.stderr[-3000:]
        assert not stale_ray_processes(ray_tmp)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)

    assert len(kills) == KILLS and all(hit for _, hit, _, _ in kills), kills
    assert sum(kind == "round" and open_ for kind, _, _, open_ in kills) == ROUND_KILLS, kills
    check_log_invariants(home, "sea", files)
    expected, actual = decisions(reference, "sea"), decisions(home, "sea")
    assert [t for t, _ in actual] == [t for t, _ in expected]  # the same sequence of event types
    for i, (want, got) in enumerate(zip(expected, actual, strict=True), 1):
        assert got == want, f"event {i} ({want[0]}) differs after the kills"
    promoted = [p["model_version"] for t, p in actual if t == "ModelPromoted"]
    assert len(promoted) >= 2 and promoted == [p["model_version"] for t, p in expected if t == "ModelPromoted"]


def kill_plan(reference, rng) -> list[tuple[str, int]]:
    """Ten kill moments as log heads, taken from the uninterrupted run (the interrupted one appends the very same
    events): ROUND_KILLS at the opening of distinct retraining rounds, the rest at random heads elsewhere, at
    least 3 events apart so every restart makes progress before the next kill."""
    opened = [i + 1 for i, t in enumerate(reference.types) if t == "RetrainRequested"]
    assert len(opened) >= ROUND_KILLS, f"the scenario has only {len(opened)} rounds"
    plan = [("round", head) for head in sorted(rng.sample(opened, ROUND_KILLS))]
    taken = [head for _, head in plan]
    while len(plan) < KILLS:
        head = rng.randint(3, reference.head - 3)
        if all(abs(head - other) >= 3 for other in taken):
            plan.append(("append", head))
            taken.append(head)
    return sorted(plan, key=lambda kill: kill[1])
