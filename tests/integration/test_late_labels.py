"""Estimated performance and late labels through a real actor (in-process) on the shared local Ray: a block
without labels is estimated, its labels arrive later and are joined, scored by the model that served it and
checked; a concept switch that the estimate cannot see is flagged by the late labels and starts a round."""

from __future__ import annotations

import io
import json
import tomllib
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from calmops_actors import cli
from calmops_actors.pipeline_actor import PipelineActor
from pipelines.core.state import replay

pytestmark = pytest.mark.ray

CONFIG = """\
name = "late"
target = "y"
source = "incoming"

[labels]
key = "id"

[training]
seed = 3

[retrain]
strategies = ["full", "since_change"]
"""


def block(seed: int, start: int, flipped: bool = False, rows: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    y = ((x1 + 0.5 * x2 + rng.normal(scale=0.5, size=rows)) > 0).astype(int)
    if flipped:
        y = 1 - y  # the rule turns around: the features look the same
    return pd.DataFrame({"id": [f"r{start + i}" for i in range(rows)], "x1": x1, "x2": x2, "y": y})


@pytest.fixture()
def pipeline(ray_local, tmp_path: Path):
    folder = tmp_path / "cfg"
    (folder / "incoming" / "labels").mkdir(parents=True)
    (folder / "late.toml").write_text(CONFIG)
    actor = PipelineActor(str(tmp_path / "home"), "late", str(folder))
    actor.configure(tomllib.loads(CONFIG), str(folder))
    return actor, folder / "incoming"


def events_of(actor: PipelineActor) -> list:
    decode = actor.store.codec.decode_stored
    return [decode(r) for r in actor.store.iter_stored(actor.stream)]


def test_unlabelled_blocks_are_estimated_and_late_labels_are_checked(pipeline) -> None:
    actor, incoming = pipeline
    frames = {f"b{i}": block(i, 1000 * i, flipped=i >= 5) for i in range(1, 7)}
    frames["b1"].to_csv(incoming / "b1.csv", index=False)
    assert actor.ingest(str(incoming / "b1.csv"), await_rounds=True)["outcome"] == "accepted"
    for name in ("b2", "b3", "b4", "b5", "b6"):  # no target column: labels come later
        frames[name].drop(columns="y").to_csv(incoming / f"{name}.csv", index=False)
        assert actor.ingest(str(incoming / f"{name}.csv"), await_rounds=True)["outcome"] == "accepted"
    log = events_of(actor)
    promoted = [e for e in log if type(e).__name__ == "ModelPromoted"]
    assert promoted and promoted[0].calibration is not None and promoted[0].calibration.method in ("sigmoid", "isotonic", "none")
    assert 0.0 <= promoted[0].calibration.ece <= 0.2
    estimates = {e.block_id: e for e in log if type(e).__name__ == "PerformanceEstimated"}
    assert sorted(estimates) == ["b2", "b3", "b4", "b5", "b6"]
    for e in estimates.values():
        low, high = e.interval["accuracy"]
        assert low <= e.metrics["accuracy"] <= high and e.version == "v1" and e.method == "cbpe"
    # the switch at b5 is invisible without labels: the estimate stays where it was
    assert abs(estimates["b5"].metrics["accuracy"] - estimates["b3"].metrics["accuracy"]) < 0.05

    labels = incoming / "labels"
    frames["b3"][["id", "y"]].to_csv(labels / "b3.csv", index=False)
    result = actor.ingest_labels(str(labels / "b3.csv"), await_rounds=True)
    assert result == {"file": "b3.csv", "outcome": "accepted", "labels_for": ["b3"]}
    log = events_of(actor)
    measured = [e for e in log if type(e).__name__ == "PerformanceMeasured" and e.block_id == "b3"]
    assert len(measured) == 1 and measured[0].model_version == "v1"
    realised = measured[0].metrics["accuracy"]
    low, high = estimates["b3"].interval["accuracy"]
    assert low - 0.03 <= realised <= high + 0.03  # covariate-stable block: the estimate was right
    assert actor.ingest_labels(str(labels / "b3.csv"))["outcome"] == "duplicate"

    # labels for the switched block: the realised score falls, a drift round starts
    frames["b5"][["id", "y"]].sample(frac=1.0, random_state=1).to_csv(labels / "b5.csv", index=False)
    assert actor.ingest_labels(str(labels / "b5.csv"), await_rounds=True)["outcome"] == "accepted"
    log = events_of(actor)
    checked = [e for e in log if type(e).__name__ == "LabelsChecked" and e.block_id == "b5"]
    assert checked and checked[0].drifted and checked[0].performance.drifted
    detected = [e for e in log if type(e).__name__ == "DriftDetected" and e.block_id == "b5"]
    assert detected and detected[0].starts_round and "performance" in detected[0].signals
    requested = [e for e in log if type(e).__name__ == "RetrainRequested" and e.block_id == "b5"]
    assert requested and "b5" in requested[0].new_blocks
    # the fold of the log is the actor's state, and every recorded decision reproduces
    assert replay(events_of(actor)) == actor.state
    out = io.StringIO()
    with redirect_stdout(out):
        code = cli.main(["audit", "late", "--home", str(actor.home.root), "--json"])
    report = json.loads(out.getvalue())
    assert code == 0, out.getvalue()[-3000:]
    kinds = {c["kind"] for c in report["checks"]}
    assert {"estimate", "labels", "drift", "performance"} <= kinds, kinds
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(["explain", "late", "--block", "b5", "--home", str(actor.home.root)]) == 0
    assert "labels arrived later" in out.getvalue() and "estimated (cbpe, no labels)" in out.getvalue()
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(["status", "--home", str(actor.home.root)]) == 0
    assert "accuracy 0." in out.getvalue()  # the latest estimate


def test_bad_labels_files_are_recorded_rejections(pipeline) -> None:
    actor, incoming = pipeline
    first, second = block(1, 0), block(2, 1000)
    first.to_csv(incoming / "b1.csv", index=False)
    actor.ingest(str(incoming / "b1.csv"), await_rounds=True)
    second.drop(columns="y").to_csv(incoming / "b2.csv", index=False)
    actor.ingest(str(incoming / "b2.csv"), await_rounds=True)
    labels = incoming / "labels"
    cases = {
        "b9.csv": (second[["id", "y"]], "unknown_block"),
        "b1.csv": (first[["id", "y"]], "already_labelled"),
    }
    wrong_keys = second[["id", "y"]].copy()
    wrong_keys.loc[0, "id"] = "nope"
    cases["b2.csv"] = (wrong_keys, "unknown_rows")
    for name, (frame, code) in cases.items():
        frame.to_csv(labels / name, index=False)
        result = actor.ingest_labels(str(labels / name))
        assert result["outcome"] == "rejected" and result["reason_code"] == code, result
        assert name in result["message"]
    second[["id", "y"]].head(10).to_csv(labels / "b2.csv", index=False)  # a tenth of the rows
    result = actor.ingest_labels(str(labels / "b2.csv"))
    assert result["reason_code"] == "incomplete_labels" and "10 of the block's 600 rows" in result["message"]
    second[["id"]].to_csv(labels / "b2.csv", index=False)
    assert actor.ingest_labels(str(labels / "b2.csv"))["reason_code"] == "missing_target"
    rejected = [e for e in events_of(actor) if type(e).__name__ == "BlockRejected"]
    assert {e.reason_code for e in rejected} >= {"unknown_block", "already_labelled", "unknown_rows"}
    assert not actor.state.blocks["b2"].labelled
