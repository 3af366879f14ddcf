"""Ray tasks that train and score retraining candidates in parallel, one task per strategy.

Tasks get ids, paths and object refs, never live models: the champion arrives as an `ArtifactRef` plus the
artifact root and is loaded (hash-verified) inside the task; each candidate is written to the artifact store
and only a small `CandidateResult` comes back. Anything raised inside a task becomes a "failed" result, a
strategy that does not apply a "skipped" one, so one bad strategy never sinks the round.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import ray

from calmops_actors.artifacts import ArtifactRef, ArtifactStore
from pipelines.evaluation import evaluate
from pipelines.models import ModelSpec
from pipelines.retraining import (
    LabelledBlock,
    RetrainSettings,
    StrategySkipped,
    TrainingMaterial,
    fallback_to_run,
    launch_order,
    run_strategy,
)

__all__ = [
    "CandidateResult",
    "MaterialRefs",
    "RoundOutcome",
    "await_round",
    "launch_round",
    "put_material",
    "run_round",
    "score_artifact_task",
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
        )


@dataclass(frozen=True, kw_only=True)
class CandidateResult:
    """What one strategy's task reports: small and plain, ready to become a command for `decide`."""

    strategy: str
    status: Status
    seed: int
    artifact: ArtifactRef | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    training_blocks: tuple[str, ...] = ()
    rows: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    notes: str = ""
    reason: str | None = None  # why it was skipped, or the error text of a failure


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
    champion: ArtifactRef | None,
    artifact_root: str,
    holdout: pd.DataFrame,
) -> CandidateResult:
    """The body of `train_candidate_task` without Ray: train, store, score; never raises."""
    start = time.perf_counter()
    try:
        store = ArtifactStore(artifact_root)
        champion_model = store.get_model(champion) if champion is not None else None
        candidate = run_strategy(strategy, material, spec, settings, seed, champion_model)
        ref = store.put_model(candidate.model)
        metrics = evaluate(candidate.model, holdout, material.features, material.target, material.task)
        return CandidateResult(
            strategy=strategy,
            status="trained",
            seed=seed,
            artifact=ref,
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
    champion: ArtifactRef | None,
    artifact_root: str,
    holdout: pd.DataFrame,
) -> CandidateResult:
    """Train one strategy's candidate, store it, score it on the holdout (Ray resolves the holdout ref)."""
    start = time.perf_counter()
    try:
        resolved = material.resolve()
    except Exception as exc:
        return CandidateResult(
            strategy=strategy,
            status="failed",
            seed=seed,
            reason=_error_text(exc),
            seconds=time.perf_counter() - start,
        )
    return train_candidate(strategy, resolved, spec, settings, seed, champion, artifact_root, holdout)


@ray.remote(max_retries=0)
def score_artifact_task(
    artifact: ArtifactRef,
    artifact_root: str,
    holdout: pd.DataFrame,
    features: tuple[str, ...],
    target: str,
    task: str,
) -> dict[str, float]:
    """Holdout metrics of a stored model (the champion is scored on the same rows as the candidates)."""
    model = ArtifactStore(artifact_root).get_model(artifact)
    return evaluate(model, holdout, features, target, task)  # type: ignore[arg-type]


def launch_round(
    material: TrainingMaterial | MaterialRefs,
    holdout: pd.DataFrame | Any,
    spec: ModelSpec,
    settings: RetrainSettings,
    seed: int,
    *,
    champion: ArtifactRef | None,
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
    submitted = {
        name: train_candidate_task.remote(
            name, refs, spec, settings, seed, champion, str(artifact_root), holdout_ref
        )
        for name in launch_order(names, refs.block_rows, refs.new_block_ids, settings)
    }
    return [submitted[name] for name in names]


def await_round(
    refs: Sequence[ray.ObjectRef], strategies: Sequence[str], timeout_seconds: float, *, seed: int = 0
) -> list[CandidateResult]:
    """Wait for every task up to `timeout_seconds` from now; tasks still running are cancelled as failures."""
    if len(refs) != len(strategies):
        raise ValueError(
            f"{len(refs)} task refs for {len(strategies)} strategies; allowed: one ref per strategy"
        )
    _, pending = ray.wait(list(refs), num_returns=len(refs), timeout=timeout_seconds)
    pending_ids = {ref.hex() for ref in pending}
    results = []
    for name, ref in zip(strategies, refs, strict=True):
        if ref.hex() in pending_ids:
            ray.cancel(ref, force=True)
            results.append(
                CandidateResult(
                    strategy=name,
                    status="failed",
                    seed=seed,
                    seconds=float(timeout_seconds),
                    reason=f"timed out after {timeout_seconds:g} s (task_timeout_seconds); cancelled",
                )
            )
            continue
        try:
            results.append(ray.get(ref))
        except Exception as exc:  # the worker died or the task was cancelled: still a result, not a crash
            results.append(
                CandidateResult(strategy=name, status="failed", seed=seed, reason=_error_text(exc))
            )
    return results


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
    tasks = launch_round(
        refs,
        holdout_ref,
        spec,
        settings,
        seed,
        champion=champion,
        artifact_root=artifact_root,
        strategies=names,
    )
    champion_task = None
    if champion is not None:
        champion_task = score_artifact_task.remote(
            champion, str(artifact_root), holdout_ref, material.features, material.target, material.task
        )
    results = await_round(tasks, names, settings.task_timeout_seconds, seed=seed)
    fallback = fallback_to_run({r.strategy: r.status for r in results}, settings)
    if fallback is not None:
        extra = launch_round(
            refs,
            holdout_ref,
            spec,
            settings,
            seed,
            champion=champion,
            artifact_root=artifact_root,
            strategies=[fallback],
        )
        results += await_round(extra, [fallback], settings.task_timeout_seconds, seed=seed)
    champion_metrics = None
    if champion_task is not None:
        # Scoring the champion is a prediction pass; failing it (tampered file) is the caller's error to see.
        champion_metrics = ray.get(champion_task, timeout=settings.task_timeout_seconds)
    return RoundOutcome(results=tuple(results), champion_metrics=champion_metrics)
