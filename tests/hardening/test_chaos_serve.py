"""Crash chaos for `calmops serve`: SIGKILL of the whole process tree (Ray included) at seeded moments, restarts.

A seeded SEA scenario of 40 blocks (300 rows each): 12 files are in the source folder before the first `serve`
starts (a backlog), the rest are dropped file by file (write, then rename) as `serve` takes them, across the
restarts. `calmops serve --no-ui` runs in a subprocess of its own session and is killed with SIGKILL to its process group (and any straggler of its
session) at moments picked by watching the log and the projection checkpoint grow: while its local Ray starts,
right as the log passes a random number of events (appends in progress), while a retraining round is in
flight, and at a random phase of the projection updater's cycle. After the last kill one more `serve` runs to
the end and stops on SIGTERM. Then the home must hold every file exactly once by content hash, no duplicate or
missing event, gapless versions, an intact hash chain, read tables equal to a rebuild, and decisions that
`calmops audit` reproduces.
"""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import pytest
from chaos_tools import (
    Feeder,
    check_log_invariants,
    check_projections_equal_rebuild,
    cli_env,
    kill_tree,
    look,
    ray_tmpdir,
    run_audit,
    seeded,
    stale_ray_processes,
    start_cli,
    tail,
    wait_for,
    write_config,
    write_scenario_files,
)

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(2400)]

SEED = 20261128
# the kinds of moment, in the order they are used; "startup" kills are cheap (Ray is still starting)
KILLS = ("startup", "round", "append", "projection", "append", "round", "startup", "append", "projection", "append")


def test_serve_survives_sigkill_of_its_process_tree_at_random_moments(tmp_path: Path) -> None:
    rng = seeded(SEED)
    files = write_scenario_files(tmp_path / "scenario", blocks=40, rows=300, seed=11)
    write_config(tmp_path / "configs", "sea", tmp_path / "incoming")
    home = tmp_path / "home"
    feeder = Feeder(files, tmp_path / "incoming", home, backlog=12).start()  # a backlog before the first serve
    ray_tmp = ray_tmpdir()
    env = cli_env(ray_tmp)
    args = ["serve", "--config-dir", str(tmp_path / "configs"), "--no-ui", "--home", str(home),
            "--scan-interval", "2"]
    out = tmp_path / "serve.out"
    kills: list[dict] = []
    try:
        for kind in KILLS:
            before = look(home)
            proc = start_cli(args, cwd=tmp_path, env=env, out=out)
            started = time.monotonic()
            hit = moment(kind, proc, home, before, rng)
            at = look(home)
            sessions = kill_tree(proc)
            assert not stale_ray_processes(ray_tmp), "Ray processes survived the kill"
            kills.append({"kind": kind, "hit": hit, "head": at.head, "round_open": at.open_round,
                          "projection_lag": at.head - at.checkpoint, "processes": sessions,
                          "after_s": round(time.monotonic() - started, 1)})
            print(f"kill {len(kills)}/{len(KILLS)}: {kills[-1]}", flush=True)
        print(f"\n{len(kills)} SIGKILLs: " + "; ".join(
            f"{k['kind']}{'' if k['hit'] else ' (missed)'} at event {k['head']} after {k['after_s']} s "
            f"({k['processes']} processes)" for k in kills), flush=True)
        # the last start runs to the end, then stops cleanly on SIGTERM
        ready = out.read_text().count("Ctrl-C stops.")
        proc = start_cli(args, cwd=tmp_path, env=env, out=out)
        try:  # SIGTERM is handled once serve is up (before that it is a plain kill)
            assert wait_for(lambda: out.read_text().count("Ctrl-C stops.") > ready, 180, "serve to start",
                            tick=0.2, alive=proc), tail(out)
            assert wait_for(lambda: finished(home, len(files)), 420, "the pipeline to finish", tick=0.5,
                            alive=proc), f"serve did not finish; kills: {kills}\n{tail(out)}"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=120) == 0, tail(out)
        finally:
            kill_tree(proc)
        assert not stale_ray_processes(ray_tmp)
        dashboards = [line for line in out.read_text().splitlines() if "Ray dashboard" in line]
        assert dashboards and all("http://127.0.0.1:" in line for line in dashboards), dashboards
    finally:
        feeder.stop()
        shutil.rmtree(ray_tmp, ignore_errors=True)

    assert len(kills) == len(KILLS), kills
    assert any(k["kind"] == "round" and k["hit"] and k["round_open"] for k in kills), kills
    assert sum(k["kind"] == "append" and k["hit"] for k in kills) >= 3, kills
    assert sum(k["kind"] == "projection" and k["hit"] for k in kills) >= 1, kills
    numbers = check_log_invariants(home, "sea", files)
    # serve's decisions depend on timing (rounds overlap later blocks): only their shape is pinned
    assert numbers["rounds"] >= 2 and numbers["promotions"] >= 1 and numbers["drift_checks"] >= 30, numbers
    assert check_projections_equal_rebuild(home, tmp_path) > 0
    assert "all" in run_audit(home, "sea")


def moment(kind: str, proc, home: Path, before, rng) -> bool:
    """Wait for the moment to kill; True when it came (False: the fallback, serve had nothing left to do)."""
    if kind == "startup":  # during Ray's start-up: gcs_server and raylet exist, nothing touched the log yet
        delay = rng.uniform(1.0, 4.0)
        wait_for(lambda: False, delay, "nothing", alive=proc)
        return True
    if kind == "append":  # as soon as the log passes a random count: the actor is in a burst of appends
        target = before.head + rng.randint(2, 12)
        return wait_for(lambda: look(home).head >= target, 180, "appends", tick=0.02, alive=proc)
    if kind == "round":  # a round started by this process and not yet finished (its tasks are training)
        if not wait_for(lambda: look(home).open_round and look(home).rounds > before.rounds, 180, "a round",
                        tick=0.05, alive=proc):
            return False
        wait_for(lambda: False, rng.uniform(0.0, 1.0), "nothing", alive=proc)
        return look(home).open_round
    if kind == "projection":  # at a random phase of the projector's 2 s cycle while it has events to apply
        first = look(home).checkpoint
        if not wait_for(lambda: look(home).checkpoint > max(first, before.checkpoint), 180, "a projection update",
                        tick=0.02, alive=proc):
            return False
        wait_for(lambda: False, rng.uniform(0.0, 2.0), "nothing", alive=proc)
        return True
    raise AssertionError(kind)


def finished(home: Path, blocks: int) -> bool:
    view = look(home)
    if view.blocks < blocks or view.open_round or view.checkpoint < view.head:
        return False
    time.sleep(3)  # quiet for a while: no round about to start, the projector caught up
    again = look(home)
    return again.head == view.head and again.checkpoint == again.head and not again.open_round

