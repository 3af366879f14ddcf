"""Blocks that arrive before the first model: a backlog under `serve`, a multi-block file under `run`."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from schedules import Pipeline, check_every_block_once, config, run, write_files

from calmops_actors.runtime import spawn_actor

pytestmark = pytest.mark.ray


def test_serve_on_a_backlog_checks_every_block_once(ray_local, tmp_path: Path) -> None:
    """The reproduction of the issue: 12 files already in the folder when `serve` starts (the real Ray actor,
    fed as the supervisor feeds it, polled as its heartbeat polls it)."""
    ray = ray_local
    files = write_files(tmp_path / "incoming", blocks=12, rows=500, seed=5, drift_at=7)
    actor = spawn_actor(tmp_path / "home", "backlog")
    ray.get(actor.configure.remote(config("backlog"), str(tmp_path)))
    refs = [actor.ingest.remote(str(f), False) for f in files]
    assert {r["outcome"] for r in ray.get(refs)} == {"accepted"}
    deadline = time.monotonic() + 180
    while (summary := ray.get(actor.summary.remote()))["pending"] or summary["round_in_flight"]:
        assert time.monotonic() < deadline, summary
        ray.get(actor.poll.remote(0.5))
    checked = check_every_block_once(tmp_path / "home", "backlog")
    assert checked.first_training == ("block_0001",)
    assert checked.checked == tuple(f"block_{i:04d}" for i in range(2, 13))  # in arrival order
    ray.kill(actor, no_restart=True)


def test_run_on_a_multi_block_file_never_checks_a_block_against_itself(ray_local, tmp_path: Path) -> None:
    files = write_files(tmp_path / "incoming", blocks=5, rows=500, seed=5, drift_at=4, single_file=True)
    assert len(files) == 1
    pipeline = Pipeline(tmp_path / "home", config("onefile", block_col="block"), tmp_path)
    run(pipeline, files)
    checked = check_every_block_once(tmp_path / "home", "onefile")
    assert checked.first_training == ("block_0001",)
    assert checked.checked == ("block_0002", "block_0003", "block_0004", "block_0005")
    state = pipeline.actor.state
    first_round = next(m for m in state.models.values() if m.round_id == "r1")
    assert first_round.training_blocks == ("block_0001",)
