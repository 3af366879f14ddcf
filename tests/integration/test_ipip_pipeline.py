"""A rare-event pipeline with `strategies = ["ipip", "full"]` retrains and promotes end to end (PipelineActor
in-process, its rounds as Ray tasks on the shared local Ray)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from benchmarks.ipip_bench import FEATURES, rare_event_stream
from calmops_actors.artifact_refs import ref_for
from calmops_actors.artifacts import ArtifactStore
from calmops_actors.pipeline_actor import PipelineActor
from pipelines.retraining.ipip import IPIPClassifier

pytestmark = pytest.mark.ray

CONFIG = """\
name = "fraud"
target = "label"
source = "incoming"

[training]
seed = 7
initial_blocks = 2

[retrain]
strategies = ["ipip", "full"]
metric = "balanced_accuracy"
window_blocks = 2
"""


def test_a_rare_event_pipeline_promotes_an_ipip_model_and_carries_its_ensembles(
    ray_local, tmp_path: Path
) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    blocks = rare_event_stream(3, blocks=6, rows=1500, rate=0.03, drift_at=4)
    for block in blocks:
        block.frame.to_csv(incoming / f"{block.block_id}.csv", index=False)
    actor = PipelineActor(str(tmp_path / "home"), "fraud")
    actor.configure(tomllib.loads(CONFIG), str(tmp_path))
    for path in sorted(incoming.glob("*.csv")):
        assert actor.ingest(str(path), await_rounds=True)["outcome"] == "accepted"
    events = [actor.store.codec.decode(r) for r in actor.store.read(actor.stream)]
    actor.store.close()

    kinds = [type(e).__name__ for e in events]
    trained = [e for e in events if type(e).__name__ == "CandidateTrained"]
    promoted = [e for e in events if type(e).__name__ == "ModelPromoted"]
    ipip = [e for e in trained if e.strategy == "ipip"]
    assert kinds.count("DriftDetected") >= 1 and len(ipip) >= 2, kinds
    # The first model is `full` (the initial round); a drift round then promotes the IPIP candidate on
    # balanced accuracy, champion/challenger as for any strategy.
    assert promoted[0].strategy == "full" and promoted[0].round_id == "r1"
    winner = next(p for p in promoted[1:] if p.strategy == "ipip")
    assert winner.reason and winner.metrics["balanced_accuracy"] > 0.8
    first = next(e for e in ipip if e.model_version == winner.model_version)
    assert first.params["ensembles_carried"] == 0 and first.params["replacement_share"] == 1.0
    assert "replacement share 1.00" in " ".join(first.notes)
    # The artifact is the hash-checked pickle of an IPIPClassifier that predicts the stream's own labels.
    assert first.artifact.kind == "model-pickle"
    model = ArtifactStore(tmp_path / "home" / "artifacts").get_model(ref_for(first.artifact))
    assert isinstance(model, IPIPClassifier)
    assert set(np.unique(model.predict(blocks[-1].frame[list(FEATURES)]))) <= {"fraud", "ok"}
    # A later round pools the champion's ensembles with new ones and records how many were replaced.
    later = [e for e in ipip if e.round_id > first.round_id]
    assert later and later[0].params["ensembles_carried"] == first.params["p"]
    share = later[0].params["replacement_share"]
    assert 0.0 <= share <= 1.0 and f"replacement share {share:.2f}" in " ".join(later[0].notes)
