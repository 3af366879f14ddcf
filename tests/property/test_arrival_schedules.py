"""Hypothesis over arrival schedules: whatever the timing of the files (all present at start, one by one, bursts
while a round is in flight) and a kill at any event, every block is checked once, versions stay gapless, `audit`
reproduces every decision, and the blocks checked are those `run` checks on the same files."""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from schedules import Pipeline, check_every_block_once, config, run, serve, write_files

from calmops_actors import cli

pytestmark = pytest.mark.ray

BLOCKS = 6


@pytest.fixture(scope="module")
def stream(ray_local, tmp_path_factory) -> tuple[list[Path], tuple[str, ...]]:
    """The files, and the blocks `run` checks on them (the reference every schedule must match)."""
    root = tmp_path_factory.mktemp("arrivals")
    files = write_files(root / "incoming", blocks=BLOCKS)
    pipeline = Pipeline(root / "run-home", config("arrivals"), root)
    run(pipeline, files)
    return files, check_every_block_once(root / "run-home", "arrivals").checked


schedules = st.lists(st.tuples(st.integers(1, BLOCKS), st.booleans()), min_size=1, max_size=BLOCKS)


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(groups=schedules, kill_at=st.one_of(st.none(), st.integers(1, 60)))
@example(groups=[(BLOCKS, True)], kill_at=None)  # every file present when serve starts
@example(groups=[(1, True)] * BLOCKS, kill_at=None)  # one by one, each settled
@example(groups=[(1, True), (1, False), (4, True)], kill_at=None)  # a burst while the first round trains
@example(groups=[(BLOCKS, True)], kill_at=9)  # a backlog and a kill while the waiting blocks are checked
def test_every_schedule_checks_the_same_blocks_once(stream, groups, kill_at) -> None:
    files, run_checked = stream
    root = Path(tempfile.mkdtemp(prefix="schedule-"))
    try:
        pipeline = Pipeline(root / "home", config("arrivals"), root, kill_at=kill_at)
        serve(pipeline, files, groups)
        checked = check_every_block_once(root / "home", "arrivals")
        assert checked.checked == run_checked  # the same blocks, in the same (arrival) order
        # the kill counts the appends of the actor's process after its registration (the log's first event)
        assert pipeline.kills == (1 if kill_at is not None and kill_at <= checked.events - 1 else 0)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli.main(["audit", "arrivals", "--home", str(root / "home")])
        assert code == 0, out.getvalue()[-2000:]
    finally:
        shutil.rmtree(root, ignore_errors=True)
