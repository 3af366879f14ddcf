"""Crash chaos for late labels under `calmops serve`: SIGKILL of the whole process tree right as a labels file is
being applied, restarts, and every labels file applied exactly once.

Eight blocks of 400 rows with a row key: the first labelled (it trains the first model), the other seven without
their target. Once `serve` has checked them all, one labels file per block is dropped into `incoming/labels/`,
and `serve` is killed at seeded moments: just after a `LabelsArrived` was appended (its check, a separate
append, may not be), and during the rounds the late labels start (the switch at block 5 makes the labels
show a drop). Then one more `serve` runs to the end. The home must hold each labels file once by content hash,
one `LabelsArrived`, `PerformanceMeasured` and `LabelsChecked` per late block, an intact chain, read tables equal
to a rebuild, and decisions `calmops audit` reproduces (estimates and late checks included).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from chaos_tools import (
    check_projections_equal_rebuild,
    cli_env,
    kill_tree,
    look,
    ray_tmpdir,
    ro,
    run_audit,
    seeded,
    stale_ray_processes,
    start_cli,
    tail,
    wait_for,
)

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(1800)]

SEED = 20261207
BLOCKS = 8
CONFIG = """\
name = "late"
target = "y"
source = "{source}"

[labels]
key = "id"

[training]
seed = 2

[retrain]
strategies = ["full", "since_change"]

[trigger]
settle_seconds = 0.2
"""
KILLS = ("labels", "labels", "round", "labels")


def frames(seed: int) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(1, BLOCKS + 1):
        x1, x2 = rng.normal(size=400), rng.normal(size=400)
        y = ((x1 - 0.7 * x2 + rng.normal(scale=0.4, size=400)) > 0).astype(int)
        if i >= 5:
            y = 1 - y  # the concept turns around; the features do not move
        out[f"b{i}"] = pd.DataFrame({"id": [f"k{i}-{r}" for r in range(400)], "x1": x1, "x2": x2, "y": y})
    return out


def drop(path: Path, frame: pd.DataFrame) -> None:
    tmp = path.parent / f".{path.name}.part"
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)


def count(home: Path, kind: str) -> int:
    return look(home).types.count(kind)


def test_labels_files_survive_sigkill_and_apply_exactly_once(tmp_path: Path) -> None:
    rng = seeded(SEED)
    data = frames(11)
    incoming, labels = tmp_path / "incoming", tmp_path / "incoming" / "labels"
    labels.mkdir(parents=True)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "late.toml").write_text(CONFIG.format(source=incoming.as_posix()))
    drop(incoming / "b1.csv", data["b1"])
    for i in range(2, BLOCKS + 1):
        drop(incoming / f"b{i}.csv", data[f"b{i}"].drop(columns="y"))
    home = tmp_path / "home"
    ray_tmp = ray_tmpdir()
    env = cli_env(ray_tmp)
    args = ["serve", "--config-dir", str(tmp_path / "configs"), "--no-ui", "--home", str(home),
            "--scan-interval", "2"]
    out = tmp_path / "serve.out"
    kills = []
    label_files = []
    try:
        proc = start_cli(args, cwd=tmp_path, env=env, out=out)
        try:  # every block checked (and estimated) before any label comes
            assert wait_for(lambda: count(home, "DriftChecked") >= BLOCKS - 1, 300, "the blocks' checks",
                            tick=0.2, alive=proc), tail(out)
        finally:
            kill_tree(proc)
        for i in range(2, BLOCKS + 1):
            path = labels / f"b{i}.csv"
            drop(path, data[f"b{i}"][["id", "y"]].sample(frac=1.0, random_state=i))
            label_files.append(path)
        for kind in KILLS:
            before = look(home)
            proc = start_cli(args, cwd=tmp_path, env=env, out=out)
            arrived, rounds = before.types.count("LabelsArrived"), before.rounds
            if kind == "labels":  # right after a LabelsArrived: its check is the next append
                hit = wait_for(lambda n=arrived: count(home, "LabelsArrived") > n, 240, "labels", tick=0.01,
                               alive=proc)
            else:
                hit = wait_for(lambda n=rounds: look(home).open_round and look(home).rounds > n, 240, "a round",
                               tick=0.05, alive=proc)
                wait_for(lambda: False, rng.uniform(0.0, 0.5), "nothing", alive=proc)
            at = look(home)
            kill_tree(proc)
            assert not stale_ray_processes(ray_tmp), "Ray processes survived the kill"
            kills.append({"kind": kind, "hit": hit, "head": at.head,
                          "arrived": at.types.count("LabelsArrived"), "checked": at.types.count("LabelsChecked")})
            print(f"kill {len(kills)}: {kills[-1]}", flush=True)
        ready = out.read_text().count("Ctrl-C stops.")
        proc = start_cli(args, cwd=tmp_path, env=env, out=out)
        try:
            assert wait_for(lambda: out.read_text().count("Ctrl-C stops.") > ready, 180, "serve to start",
                            tick=0.2, alive=proc), tail(out)
            assert wait_for(lambda: done(home), 420, "every label applied", tick=0.5, alive=proc), \
                f"kills: {kills}\n{tail(out)}"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=120) == 0, tail(out)
        finally:
            kill_tree(proc)
        assert not stale_ray_processes(ray_tmp)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)

    assert sum(k["hit"] for k in kills if k["kind"] == "labels") >= 2, kills
    # a kill between a labels file's record and its check happened at least once (the restart finished it)
    assert any(k["arrived"] > k["checked"] for k in kills), kills
    check_labels_exactly_once(home, label_files)
    assert check_projections_equal_rebuild(home, tmp_path) > 0
    report = run_audit(home, "late")
    assert "labels" in report and "estimate" in report


def done(home: Path) -> bool:
    view = look(home)
    if view.types.count("LabelsChecked") < BLOCKS - 1 or view.open_round or view.checkpoint < view.head:
        return False
    time.sleep(3)
    again = look(home)
    return again.head == view.head and not again.open_round and again.checkpoint == again.head


def check_labels_exactly_once(home: Path, files: list[Path]) -> None:
    import json

    with contextlib.closing(ro(home / "log.sqlite")) as conn:
        rows = [(t, json.loads(p)) for t, p in conn.execute(
            "SELECT type, payload FROM events WHERE stream_id = 'pipeline-late' ORDER BY version")]
    arrived = Counter(p["sha256"] for t, p in rows if t == "LabelsArrived")
    assert arrived == Counter({hashlib.sha256(f.read_bytes()).hexdigest(): 1 for f in files})
    late = [f"b{i}" for i in range(2, BLOCKS + 1)]
    assert sorted(p["block_id"] for t, p in rows if t == "LabelsChecked") == sorted(late)
    measured = Counter(p["block_id"] for t, p in rows if t == "PerformanceMeasured")
    assert all(measured[b] == 1 for b in late), measured
    assert Counter(p["block_id"] for t, p in rows if t == "PerformanceEstimated") == Counter(late)
    assert not any(t == "BlockRejected" for t, _ in rows)
    drops = [p for t, p in rows if t == "LabelsChecked" and p["drifted"]]
    assert drops, "the switched blocks' labels showed no drop"

