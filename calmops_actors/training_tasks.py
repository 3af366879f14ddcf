"""Ray tasks that train and score retraining candidates in parallel, one task per strategy.

Tasks get ids and object refs, never paths or live models: the champion travels as a hash-checked `Blob`
through Ray's object store and is loaded inside the task; each candidate comes back as a `Blob` that the
caller verifies and writes to its artifact store (`await_round(..., artifact_root=...)`), so a task may run on
any node of a cluster, whether or not it sees the home folder. Anything raised inside a task becomes a "failed" result, a
strategy that does not apply a "skipped" one, so one bad strategy never sinks the round.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import ray

from calmops_actors.artifacts import ArtifactRef, ArtifactStore, Blob, decode_model, encode_model
from pipelines.config.retrain import RetrainSettings
from pipelines.estimation.calibration import fit_calibration
from pipelines.retraining.evaluation import evaluate
from pipelines.retraining.material import LabelledBlock, StrategySkipped, TrainingMaterial
from pipelines.retraining.models import ModelSpec
from pipelines.retraining.strategies import fallback_to_run, launch_order, run_strategy

__all__ = [
    "CalibrationResult",
    "CandidateResult",
    "MaterialRefs",
    "RoundOutcome",
    "await_round",
    "launch_round",
    "put_material",
    "run_round",
    "score_model_task",
    "score_reused_task",
    "stored_calibration",
    "champion_blob",
    "task_options",
    "train_candidate",
    "train_candidate_task",
]

Status = Literal["trained", "skipped", "failed"]


@dataclass(frozen=True, kw_only=True)
class MaterialRefs:
    """`TrainingMaterial` with each block's frame in Ray's object store (one `ray.put` per block)."""

    blocks: tuple[tuple[str, Any], ...]
    block_rows: tuple[tuple[str, int], ...]
    new_block_ids: tuple[str, ...]
    features: tuple[str, ...]
    categorical: tuple[str, ...]
    target: str
    task: str
    change_point: tuple[str, int] | None = None
    recent_block_ids: tuple[str, ...] = ()

    def resolve(self) -> TrainingMaterial:
        frames = ray.get([ref for _, ref in self.blocks])
        return TrainingMaterial(
            blocks=tuple(
                LabelledBlock(bid, frame) for (bid, _), frame in zip(self.blocks, frames, strict=True)
            ),
            new_block_ids=self.new_block_ids,
            features=self.features,
            categorical=self.categorical,
            target=self.target,
            task=self.task,  # type: ignore[arg-type]
            change_point=self.change_point,
            recent_block_ids=self.recent_block_ids,
        )


@dataclass(frozen=True, kw_only=True)
class CandidateResult:
    """What one strategy's task reports: small and plain, ready to become a command for `decide`."""

    strategy: str
    status: Status
    seed: int
    artifact: ArtifactRef | None = None  # set by `await_round` once the blob is stored
    blob: Blob | None = None  # the trained model's bytes, as the task returned them
    metrics: dict[str, float] = field(default_factory=dict)
    training_blocks: tuple[str, ...] = ()
    rows: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    notes: str = ""
    reason: str | None = None  # why it was skipped, or the error text of a failure
    node_id: str = ""  # the Ray node the task ran on
    calibration: CalibrationResult | None = None  # its probability calibration on the holdout (classifiers)


@dataclass(frozen=True, kw_only=True)
class CalibrationResult:
    """A candidate's calibration on the round's holdout: the fitted calibrator as a blob (then, once stored,
    its `artifact`) and its reliability; `note` says why there is none (`blob` None)."""

    method: str = ""
    rows: int = 0
    ece: float | None = None
    ece_uncalibrated: float | None = None
    blob: Blob | None = None
    artifact: ArtifactRef | None = None
    note: str = ""


def calibrate(model: Any, holdout: pd.DataFrame, features: Sequence[str], target: str, task: str,
              seed: int) -> CalibrationResult | None:
    """`fit_calibration` on the holdout, as a blob ready to store; None for regression. A calibration that
    cannot be fitted never fails the candidate: its note says why, and its blocks go unestimated."""
    if task != "classification":
        return None
    try:
        fitted = fit_calibration(model, holdout, features, target, seed)
    except Exception as exc:
        return CalibrationResult(note=f"calibration failed: {_error_text(exc)}")
    if fitted.calibrator is None:
        return CalibrationResult(rows=fitted.rows, note=fitted.note)
    return CalibrationResult(method=fitted.method, rows=fitted.rows, ece=fitted.ece,
                             ece_uncalibrated=fitted.ece_uncalibrated, blob=encode_model(fitted.calibrator))


def put_material(material: TrainingMaterial) -> MaterialRefs:
    """Put each block's frame in the object store once, so every task of the round shares it."""
    return MaterialRefs(
        blocks=tuple((b.block_id, ray.put(b.frame)) for b in material.blocks),
        block_rows=tuple((b.block_id, len(b.frame)) for b in material.blocks),
        new_block_ids=material.new_block_ids,
        features=material.features,
        categorical=material.categorical,
        target=material.target,
        task=material.task,
        change_point=material.change_point,
        recent_block_ids=material.recent_block_ids,
    )


def _error_text(exc: BaseException) -> str:
    where = traceback.extract_tb(exc.__traceback__)
    last = f" (at {Path(where[-1].filename).name}:{where[-1].lineno})" if where else ""
    return f"{type(exc).__name__}: {exc}{last}"


def train_candidate(
    strategy: str,
    material: TrainingMaterial,
    spec: ModelSpec,
    settings: RetrainSettings,
    seed: int,
    champion: Blob | None,
    holdout: pd.DataFrame,
) -> CandidateResult:
    """The body of `train_candidate_task` without Ray: train, score on the holdout, return the model as a
    blob; never raises (a skipped strategy or an error becomes the result's status)."""
    start = time.perf_counter()
    try:
        champion_model = decode_model(champion) if champion is not None else None
        candidate = run_strategy(strategy, material, spec, settings, seed, champion_model)
        blob = encode_model(candidate.model)
        metrics = evaluate(candidate.model, holdout, material.features, material.target, material.task)
        calibration = calibrate(candidate.model, holdout, material.features, material.target, material.task, seed)
        return CandidateResult(
            calibration=calibration,
            strategy=strategy,
            status="trained",
            seed=seed,
            blob=blob,
            metrics=metrics,
            training_blocks=candidate.training_blocks,
            rows=candidate.rows,
            params=candidate.params,
            seconds=candidate.seconds,
            notes=candidate.notes,
        )
    except StrategySkipped as skipped:
        return CandidateResult(
            strategy=strategy,
            status="skipped",
            seed=seed,
            reason=skipped.reason,
            seconds=time.perf_counter() - start,
        )
    except Exception as exc:
        return CandidateResult(
            strategy=strategy,
            status="failed",
            seed=seed,
            reason=_error_text(exc),
            seconds=time.perf_counter() - start,
        )


@ray.remote(max_retries=0)
def train_candidate_task(
    strategy: str,
    material: MaterialRefs,
    spec: ModelSpec,
    settings: RetrainSettings,
    seed: int,
    champion: Blob | None,
    holdout: pd.DataFrame,
) -> CandidateResult:
    """Train one strategy's candidate and score it on the holdout; the model comes back as a blob."""
    try:
        resolved = material.resolve()
    except Exception as exc:  # the block frames could not be fetched from the object store
        return CandidateResult(strategy=strategy, status="failed", seed=seed, reason=_error_text(exc))
    result = train_candidate(strategy, resolved, spec, settings, seed, champion, holdout)
    return replace(result, node_id=ray.get_runtime_context().get_node_id())


@dataclass(frozen=True, kw_only=True)
class ScoredModel:
    """A past champion scored (and calibrated afresh) on a round's holdout: a `reuse` candidate."""

    metrics: dict[str, float]
    calibration: CalibrationResult | None


@ray.remote(max_retries=0)
def score_reused_task(model: Blob, holdout: pd.DataFrame, features: tuple[str, ...], target: str, task: str,
                      seed: int) -> ScoredModel:
    """Holdout metrics of a past champion, and its calibration on these (newer) rows."""
    loaded = decode_model(model)
    return ScoredModel(metrics=evaluate(loaded, holdout, features, target, task),  # type: ignore[arg-type]
                       calibration=calibrate(loaded, holdout, features, target, task, seed))


@ray.remote(max_retries=0)
def score_model_task(
    model: Blob, holdout: pd.DataFrame, features: tuple[str, ...], target: str, task: str
) -> dict[str, float]:
    """Holdout metrics of a model blob (the champion is scored on the same rows as the candidates)."""
    return evaluate(decode_model(model), holdout, features, target, task)  # type: ignore[arg-type]


def champion_blob(champion: ArtifactRef | None, artifact_root: str | Path) -> Any:
    """The champion's verified bytes in the object store once (a ref every task of the round shares)."""
    if champion is None:
        return None
    return ray.put(ArtifactStore(artifact_root).read_blob(champion))


def launch_round(
    material: TrainingMaterial | MaterialRefs,
    holdout: pd.DataFrame | Any,
    spec: ModelSpec,
    settings: RetrainSettings,
    seed: int,
    *,
    champion: ArtifactRef | Any | None,
    artifact_root: str | Path,
    strategies: Sequence[str] | None = None,
) -> list[ray.ObjectRef]:
    """Start one task per strategy (default: `settings.strategies`) at once; refs come back in that order.

    Tasks are submitted most expensive first (`launch_order`), so queued cheap ones fill in behind them.
    Frames go to the object store once (`material` and `holdout` may already be refs); every task gets the
    same seed.
    """
    refs = material if isinstance(material, MaterialRefs) else put_material(material)
    holdout_ref = holdout if isinstance(holdout, ray.ObjectRef) else ray.put(holdout)
    names = tuple(settings.strategies if strategies is None else strategies)
    blob_ref = champion if isinstance(champion, ray.ObjectRef) else champion_blob(champion, artifact_root)
    submitted = {
        name: train_candidate_task.options(**task_options()).remote(
            name, refs, spec, settings, seed, blob_ref, holdout_ref
        )
        for name in launch_order(names, refs.block_rows, refs.new_block_ids, settings)
    }
    return [submitted[name] for name in names]


def task_options() -> dict[str, Any]:
    """Extra Ray options for training tasks: `CALMOPS_TASK_RESOURCES` (JSON) pins them to nodes that offer
    those resources (docs/cluster.md); by default Ray places them anywhere in the cluster."""
    import json
    import os

    text = os.environ.get("CALMOPS_TASK_RESOURCES")
    return {"resources": json.loads(text)} if text else {}


def await_round(
    refs: Sequence[ray.ObjectRef],
    strategies: Sequence[str],
    timeout_seconds: float,
    *,
    seed: int = 0,
    artifact_root: str | Path,
) -> list[CandidateResult]:
    """Wait for every task up to `timeout_seconds` from now; tasks still running are cancelled as failures.

    Each trained candidate's blob is verified and written to the artifact store at `artifact_root`; the
    result then carries its `ArtifactRef` (and no longer the bytes).
    """
    store = ArtifactStore(artifact_root)
    if len(refs) != len(strategies):
        raise ValueError(
            f"{len(refs)} task refs for {len(strategies)} strategies; allowed: one ref per strategy"
        )
    # Collect each task as it finishes, so storing one candidate overlaps the training of the others.
    deadline = time.monotonic() + timeout_seconds
    names = {ref.hex(): name for name, ref in zip(strategies, refs, strict=True)}
    collected: dict[str, CandidateResult] = {}
    pending = list(refs)
    while pending:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        ready, pending = ray.wait(pending, num_returns=1, timeout=remaining)
        for ref in ready:
            collected[ref.hex()] = _collect(ref, names[ref.hex()], seed, store)
    for ref in pending:
        ray.cancel(ref, force=True)
        collected[ref.hex()] = CandidateResult(
            strategy=names[ref.hex()],
            status="failed",
            seed=seed,
            seconds=float(timeout_seconds),
            reason=f"timed out after {timeout_seconds:g} s (task_timeout_seconds); cancelled",
        )
    return [collected[ref.hex()] for ref in refs]


def _collect(ref: ray.ObjectRef, name: str, seed: int, store: ArtifactStore) -> CandidateResult:
    """A finished task's result, its blob verified and stored; a dead worker becomes a failed result."""
    try:
        result = ray.get(ref)
    except Exception as exc:  # the worker died or the task was cancelled: still a result, not a crash
        return CandidateResult(strategy=name, status="failed", seed=seed, reason=_error_text(exc))
    if result.blob is not None:
        try:
            result = replace(result, artifact=store.put_blob(result.blob), blob=None)
        except Exception as exc:  # a corrupted blob or a full disk fails this candidate, not the round
            return replace(result, status="failed", blob=None, reason=_error_text(exc))
    return replace(result, calibration=stored_calibration(result.calibration, store))


def stored_calibration(calibration: CalibrationResult | None, store: ArtifactStore) -> CalibrationResult | None:
    """The calibration's blob verified and written to the store; a failure leaves the candidate uncalibrated."""
    if calibration is None or calibration.blob is None:
        return calibration
    try:
        return replace(calibration, artifact=store.put_blob(calibration.blob), blob=None)
    except Exception as exc:
        return CalibrationResult(rows=calibration.rows, note=f"calibration not stored: {_error_text(exc)}")


@dataclass(frozen=True, kw_only=True)
class RoundOutcome:
    """Every strategy's result (the fallback's last, if it ran) and the champion's holdout metrics."""

    results: tuple[CandidateResult, ...]
    champion_metrics: dict[str, float] | None


def run_round(
    material: TrainingMaterial,
    holdout: pd.DataFrame,
    spec: ModelSpec,
    settings: RetrainSettings,
    seed: int,
    *,
    champion: ArtifactRef | None,
    artifact_root: str | Path,
) -> RoundOutcome:
    """Launch all strategies and the champion's scoring, await them, then run the fallback if nothing trained.

    `task_timeout_seconds` bounds the wait for the whole batch (tasks queue when strategies outnumber CPUs).
    """
    refs = put_material(material)
    holdout_ref = ray.put(holdout)
    names = list(settings.strategies)
    blob_ref = champion_blob(champion, artifact_root)
    tasks = launch_round(
        refs,
        holdout_ref,
        spec,
        settings,
        seed,
        champion=blob_ref,
        artifact_root=artifact_root,
        strategies=names,
    )
    champion_task = None
    if blob_ref is not None:
        champion_task = score_model_task.options(**task_options()).remote(
            blob_ref, holdout_ref, material.features, material.target, material.task
        )
    results = await_round(tasks, names, settings.task_timeout_seconds, seed=seed, artifact_root=artifact_root)
    fallback = fallback_to_run({r.strategy: r.status for r in results}, settings)
    if fallback is not None:
        extra = launch_round(
            refs,
            holdout_ref,
            spec,
            settings,
            seed,
            champion=blob_ref,
            artifact_root=artifact_root,
            strategies=[fallback],
        )
        results += await_round(
            extra, [fallback], settings.task_timeout_seconds, seed=seed, artifact_root=artifact_root
        )
    champion_metrics = None
    if champion_task is not None:
        # Scoring the champion is a prediction pass; failing it (tampered file) is the caller's error to see.
        champion_metrics = ray.get(champion_task, timeout=settings.task_timeout_seconds)
    return RoundOutcome(results=tuple(results), champion_metrics=champion_metrics)
