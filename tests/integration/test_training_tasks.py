"""Retraining strategies as Ray tasks: they run side by side, failures and timeouts come back as results."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from calmops_actors.artifacts import ArtifactStore
from calmops_actors.training_tasks import await_round, launch_round, run_round
from pipelines.config.retrain import RetrainSettings
from pipelines.retraining.evaluation import evaluate
from pipelines.retraining.material import LabelledBlock
from pipelines.retraining.models import ModelSpec
from pipelines.retraining.strategies import build_round, run_strategy

pytestmark = pytest.mark.ray

FEATURES = ("x1", "x2", "c")
LOGREG = ModelSpec("sklearn.linear_model.LogisticRegression", {})


def _blocks(*, last_block_one_class: bool = False, rows: int = 150) -> list[LabelledBlock]:
    rng = np.random.default_rng(11)
    blocks = []
    for i in range(4):
        x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
        c = rng.choice(["north", "south"], size=rows)
        y = np.where(x1 + 0.5 * x2 + (c == "north") + rng.normal(scale=0.3, size=rows) > 0.5, "yes", "no")
        if last_block_one_class and i == 3:
            y[:] = "yes"
        blocks.append(LabelledBlock(f"b{i}", pd.DataFrame({"x1": x1, "x2": x2, "c": c, "y": y})))
    return blocks


def _round(settings: RetrainSettings, **kw):
    return build_round(
        _blocks(**kw),
        ["b3"],
        settings,
        features=FEATURES,
        categorical=("c",),
        target="y",
        task="classification",
    )


def _stored_champion(material, store: ArtifactStore):
    champion = run_strategy("full", material, LOGREG, RetrainSettings(), seed=0).model
    return champion, store.put_model(champion)


def test_strategies_run_in_parallel_and_match_a_local_run(ray_local, tmp_path: Path) -> None:
    settings = RetrainSettings(
        strategies=("full", "windowed", "replay_mix", "stacking", "recalibration"), window_blocks=2
    )
    material, holdout, _ = _round(settings)
    store = ArtifactStore(tmp_path)
    champion, champion_ref = _stored_champion(material, store)

    refs = launch_round(
        material, holdout, LOGREG, settings, 42, champion=champion_ref, artifact_root=tmp_path
    )
    assert len(refs) == 5  # all launched before any is awaited
    results = await_round(refs, settings.strategies, timeout_seconds=120, seed=42, artifact_root=tmp_path)

    assert [r.strategy for r in results] == list(settings.strategies)
    assert [r.status for r in results] == ["trained"] * 5, [r.reason for r in results]
    for result in results:
        model = store.get_model(result.artifact)  # hash-verified load of what the task wrote
        assert evaluate(model, holdout, FEATURES, "y", "classification") == result.metrics
        local = run_strategy(result.strategy, material, LOGREG, settings, 42, champion)
        assert (result.training_blocks, result.rows) == (local.training_blocks, local.rows)
        assert np.array_equal(model.predict_proba(holdout), local.model.predict_proba(holdout))
        assert result.seed == 42 and result.seconds > 0 and result.metrics["accuracy"] > 0.8


def test_a_raising_strategy_is_a_failure_and_the_others_still_count(ray_local, tmp_path: Path) -> None:
    # The window (block b3 only) holds a single class: LogisticRegression raises there, nowhere else.
    settings = RetrainSettings(strategies=("full", "windowed", "replay_mix", "incremental"), window_blocks=1)
    material, holdout, _ = _round(settings, last_block_one_class=True)
    store = ArtifactStore(tmp_path)
    _, champion_ref = _stored_champion(material, store)

    refs = launch_round(material, holdout, LOGREG, settings, 7, champion=champion_ref, artifact_root=tmp_path)
    by_name = {
        r.strategy: r
        for r in await_round(refs, settings.strategies, timeout_seconds=120, seed=7, artifact_root=tmp_path)
    }

    assert by_name["windowed"].status == "failed" and by_name["windowed"].artifact is None
    assert by_name["windowed"].reason.startswith("ValueError: ")
    assert "class" in by_name["windowed"].reason
    assert by_name["incremental"].status == "skipped"
    assert (
        by_name["incremental"].reason
        == "LogisticRegression has no partial_fit; incremental learning does not apply"
    )
    for name in ("full", "replay_mix"):
        assert by_name[name].status == "trained"
        assert store.verify_all([by_name[name].artifact]) == []


def test_run_round_falls_back_and_scores_the_champion(ray_local, tmp_path: Path) -> None:
    settings = RetrainSettings(strategies=("windowed",), window_blocks=1, fallback="full")
    material, holdout, _ = _round(settings, last_block_one_class=True)
    store = ArtifactStore(tmp_path)
    champion, champion_ref = _stored_champion(material, store)

    outcome = run_round(material, holdout, LOGREG, settings, 3, champion=champion_ref, artifact_root=tmp_path)

    assert [(r.strategy, r.status) for r in outcome.results] == [("windowed", "failed"), ("full", "trained")]
    assert outcome.champion_metrics == evaluate(champion, holdout, FEATURES, "y", "classification")


def test_a_task_past_its_timeout_is_cancelled_and_reported_as_a_failure(ray_local, tmp_path: Path) -> None:
    slow = ModelSpec("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 20_000, "n_jobs": 1})
    settings = RetrainSettings(strategies=("full", "windowed"), task_timeout_seconds=1.5)
    material, holdout, _ = _round(settings)

    start = time.perf_counter()
    refs = launch_round(material, holdout, slow, settings, 0, champion=None, artifact_root=tmp_path)
    results = await_round(refs, settings.strategies, settings.task_timeout_seconds, artifact_root=tmp_path)
    waited = time.perf_counter() - start

    assert [r.status for r in results] == ["failed", "failed"]
    assert all(r.reason == "timed out after 1.5 s (task_timeout_seconds); cancelled" for r in results)
    assert waited < 10
    assert not any(tmp_path.rglob("*.skops"))  # nothing was written by the cancelled tasks


def test_a_corrupted_candidate_blob_fails_that_candidate_only(ray_local, tmp_path: Path) -> None:
    from calmops_actors.artifacts import Blob
    from calmops_actors.training_tasks import CandidateResult

    good = CandidateResult(
        strategy="full", status="trained", seed=0, blob=Blob.of(b"model bytes", "model-pickle")
    )
    bad = CandidateResult(
        strategy="windowed",
        status="trained",
        seed=0,
        blob=Blob(kind="model-pickle", sha256="0" * 64, data=b"model bytes"),
    )
    refs = [ray_local.put(good), ray_local.put(bad)]
    results = await_round(refs, ["full", "windowed"], timeout_seconds=30, artifact_root=tmp_path)
    assert [(r.strategy, r.status) for r in results] == [("full", "trained"), ("windowed", "failed")]
    assert results[0].artifact.sha256 == good.blob.sha256 and results[0].blob is None
    assert results[1].reason.startswith("ArtifactTampered: ") and results[1].artifact is None
