"""Virtual actors under the supervisor, on the shared local Ray: a pipeline's actor is stopped once idle and
started again by its next file, without losing a file; a restarted supervisor leaves idle pipelines stopped,
registers new ones without starting them, and starts the one a crash left with work."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from calmops_actors.home import Home, stream_id
from calmops_actors.supervisor import Supervisor

pytestmark = pytest.mark.ray

CONFIG = """\
name = "{name}"
target = "y"
source = "incoming"

[lifecycle]
idle_seconds = {idle}

[trigger]
settle_seconds = 0.2
"""


def block(seed: int, rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 2))
    return pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "y": (x[:, 0] + x[:, 1] > 0).astype(int)})


def make(root: Path, name: str, idle: float, files: int = 1) -> Path:
    folder = root / "configs"
    (folder / "incoming").mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.toml").write_text(CONFIG.format(name=name, idle=idle).replace("incoming", f"in-{name}"))
    (folder / f"in-{name}").mkdir(exist_ok=True)
    for i in range(1, files + 1):
        block(i).to_csv(folder / f"in-{name}" / f"b{i}.csv", index=False)
    return folder / f"in-{name}"


def types(home: Path, name: str) -> list[str]:
    store = Home(home).open_store()
    try:
        return [r.type for r in store.read(stream_id(name))]
    finally:
        store.close()


def until(sup: Supervisor, condition, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sup.poll()
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_an_idle_actor_is_stopped_and_its_next_file_starts_it_again(ray_local, tmp_path: Path) -> None:
    home = tmp_path / "home"
    source = make(tmp_path, "busy", idle=2)
    make(tmp_path, "quiet", idle=2)
    sup = Supervisor(home, tmp_path / "configs", idle_seconds=300)
    try:
        sup.scan()
        # both train their first model, then stop: no process left for either
        until(sup, lambda: not sup.actors() and all(types(home, n)[-1] == "PipelinePassivated"
                                                    for n in ("busy", "quiet")))
        block(7).drop(columns="y").to_csv(source / "b2.csv", index=False)  # one more file for "busy" only
        until(sup, lambda: "DriftChecked" in types(home, "busy"))
        log = types(home, "busy")
        assert log.count("PipelineActivated") == 1 and log.count("BlockArrived") == 2
        assert "quiet" not in sup.actors()  # the other pipeline was never started again
        until(sup, lambda: not sup.actors() and types(home, "busy")[-1] == "PipelinePassivated")
        assert types(home, "busy").count("PipelinePassivated") == 2
        # registered without a process, started by their first file, stopped, and "busy" started by b2.csv
        assert [a["reason"] for a in sup.activations if a["pipeline"] == "busy"] == ["file b1.csv", "file b2.csv"]
    finally:
        sup.close()
    # a restarted serve: idle pipelines stay stopped; a new config is registered without an actor
    make(tmp_path, "fresh", idle=2, files=0)
    again = Supervisor(home, tmp_path / "configs", idle_seconds=300)
    try:
        report = again.scan()
        assert sorted(report.started) == ["busy", "fresh", "quiet"] and not again.actors()
        assert types(home, "fresh") == ["PipelineRegistered"]
        again.poll()
        assert not again.actors()
    finally:
        again.close()


def test_a_pipeline_the_log_shows_unfinished_is_started_at_once(ray_local, tmp_path: Path) -> None:
    home = tmp_path / "home"
    make(tmp_path, "crashed", idle=2)
    sup = Supervisor(home, tmp_path / "configs", idle_seconds=None)  # never passivates: like a crash
    try:
        sup.scan()
        until(sup, lambda: "ModelPromoted" in types(home, "crashed"))
    finally:
        sup.close()
    again = Supervisor(home, tmp_path / "configs", idle_seconds=300)
    try:
        again.scan()
        assert "crashed" in again.actors()  # its log does not end at rest: started to finish what is due
        until(again, lambda: not again.actors())
        assert types(home, "crashed")[-1] == "PipelinePassivated"
    finally:
        again.close()
