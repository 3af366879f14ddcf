"""Crash chaos for virtual actors: SIGKILL of `calmops serve`'s whole process tree right as a pipeline's actor is
passivated (its `PipelinePassivated` just appended, the kill of its process not yet done) and right as a file
wakes it (its `PipelineActivated`, or the file's first append, just recorded), then restarts.

`serve --idle-seconds 2` runs one pipeline fed a file at a time, each file dropped only once the pipeline is at
rest (its log ends in `PipelinePassivated`), so every file is an activation. After the last kill one more `serve`
takes the remaining files and stops on SIGTERM. The home must hold every file exactly once, every due block
checked once, gapless versions, an intact chain, read tables equal to a rebuild and decisions `calmops audit`
reproduces; and a passivation cut short must not leave the pipeline stopped with work pending.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest
from chaos_tools import (
    check_log_invariants,
    check_projections_equal_rebuild,
    cli_env,
    kill_tree,
    look,
    ray_tmpdir,
    run_audit,
    stale_ray_processes,
    start_cli,
    tail,
    wait_for,
    write_config,
    write_scenario_files,
)

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(1800)]

KILLS = ("passivation", "activation", "passivation", "activation", "activation")


def test_serve_survives_sigkill_while_passivating_and_activating(tmp_path: Path) -> None:
    files = write_scenario_files(tmp_path / "scenario", blocks=12, rows=300, seed=5)
    write_config(tmp_path / "configs", "nap", tmp_path / "incoming")
    source = tmp_path / "incoming"
    source.mkdir()
    home = tmp_path / "home"
    fed = 0

    def drop() -> None:
        nonlocal fed
        src = files[fed]
        tmp = source / f".{src.name}.part"
        tmp.write_bytes(src.read_bytes())
        os.replace(tmp, source / src.name)
        fed += 1

    def at_rest() -> bool:
        view = look(home)
        return bool(view.types) and view.types[-1] == "PipelinePassivated"

    for _ in range(2):  # the first model's block and one more, before the first serve
        drop()
    ray_tmp = ray_tmpdir()
    env = cli_env(ray_tmp)
    args = ["serve", "--config-dir", str(tmp_path / "configs"), "--no-ui", "--home", str(home),
            "--scan-interval", "2", "--idle-seconds", "2"]
    out = tmp_path / "serve.out"
    kills = []
    try:
        for kind in KILLS:
            proc = start_cli(args, cwd=tmp_path, env=env, out=out)
            before = look(home)
            passivated = before.types.count("PipelinePassivated")
            if kind == "passivation":  # the moment its PipelinePassivated is in the log
                hit = wait_for(lambda n=passivated: look(home).types.count("PipelinePassivated") > n, 300,
                               "a passivation", tick=0.01, alive=proc)
            else:  # at rest, then a file: kill as its activation is recorded
                if not at_rest():
                    assert wait_for(at_rest, 300, "the pipeline at rest", tick=0.1, alive=proc), tail(out)
                head = look(home).head
                drop()
                hit = wait_for(lambda h=head: look(home).head > h, 300, "the activation", tick=0.01, alive=proc)
            at = look(home)
            kill_tree(proc)
            assert not stale_ray_processes(ray_tmp), "Ray processes survived the kill"
            kills.append({"kind": kind, "hit": hit, "head": at.head, "last": at.types[-1] if at.types else None})
            print(f"kill {len(kills)}: {kills[-1]}", flush=True)
        ready = out.read_text().count("Ctrl-C stops.")
        proc = start_cli(args, cwd=tmp_path, env=env, out=out)
        try:
            assert wait_for(lambda: out.read_text().count("Ctrl-C stops.") > ready, 180, "serve to start",
                            tick=0.2, alive=proc), tail(out)
            while fed < len(files):  # each remaining file wakes the stopped actor
                assert wait_for(at_rest, 300, "the pipeline at rest", tick=0.1, alive=proc), tail(out)
                drop()
                assert wait_for(lambda: look(home).blocks >= fed, 120, "the file", tick=0.1, alive=proc), tail(out)
            assert wait_for(at_rest, 300, "the last passivation", tick=0.2, alive=proc), tail(out)
            assert wait_for(lambda: look(home).checkpoint == look(home).head, 60, "the projector", tick=0.2,
                            alive=proc)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=120) == 0, tail(out)
        finally:
            kill_tree(proc)
        assert not stale_ray_processes(ray_tmp)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)

    assert sum(k["hit"] for k in kills) >= 4, kills
    numbers = check_log_invariants(home, "nap", files)
    kinds = look(home).types
    assert kinds.count("PipelineActivated") >= len(files) - 4, kinds.count("PipelineActivated")
    assert numbers["drift_checks"] == len(files) - 1, numbers
    assert check_projections_equal_rebuild(home, tmp_path) > 0
    assert "all" in run_audit(home, "nap")

