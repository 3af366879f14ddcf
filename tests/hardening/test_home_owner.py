"""One owner per home: a second `serve`, or a `run` beside a `serve`, is a one-line error naming the owner.

The reproduction: a second `serve` on the same home printed a traceback (same port) or ran silently as a
second owner of the same pipelines (another port).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from calmops_actors.errors import UserError
from calmops_actors.home_lock import hold_for_run, hold_for_serve

ROOT = Path(__file__).resolve().parents[2]


def test_a_second_serve_or_a_run_beside_a_serve_is_refused_naming_the_owner(tmp_path: Path) -> None:
    owner = hold_for_serve(tmp_path)
    with pytest.raises(UserError, match=rf"another `calmops serve` \(pid {os.getpid()}, since .*\) owns {tmp_path}"):
        hold_for_serve(tmp_path)
    with pytest.raises(UserError, match="owns"):
        hold_for_run(tmp_path, "churn")
    owner.release()
    runs = hold_for_run(tmp_path, "churn")
    other = hold_for_run(tmp_path, "fraud")  # runs of different pipelines share the home
    with pytest.raises(UserError, match=r"another `calmops run \(churn\)`"):
        hold_for_run(tmp_path, "churn")
    with pytest.raises(UserError, match="a `calmops run` owns"):
        hold_for_serve(tmp_path)
    for lock in runs + other:
        lock.release()
    hold_for_serve(tmp_path).release()


def test_serve_on_an_owned_home_exits_2_with_one_line_before_starting_anything(tmp_path: Path) -> None:
    home, configs = tmp_path / "home", tmp_path / "configs"
    configs.mkdir()
    home.mkdir()
    owner = hold_for_serve(home)
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}
        env.pop("RAY_ADDRESS", None)
        done = subprocess.run([sys.executable, "-m", "calmops_actors", "serve", "--home", str(home), "--config-dir",
                               str(configs), "--no-ui"], capture_output=True, text=True, timeout=120, env=env)
    finally:
        owner.release()
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: another `calmops serve` (pid {os.getpid()}, since " + done.stderr.split("since ", 1)[1].split(")")[0]
        + f") owns {home}; stop it first, or use another --home"]
