"""Retraining strategies: pure functions from training material to a trained candidate, plus their settings.

A round is `build_round` (hold out the most recent labelled rows), then each configured strategy on the
remaining material, then `pipelines.retraining.evaluation.evaluate` on the holdout and `pipelines.core.promotion` to decide.
Strategies never see holdout rows: they only receive the `TrainingMaterial` that `build_round` returns.
Randomness comes from the caller's `seed`; `seconds` is wall time, reported and never decided on.
"""

from __future__ import annotations

import copy
import functools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import StackingClassifier, StackingRegressor
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline

from pipelines.config.retrain import STRATEGY_NAMES, RetrainSettings
from pipelines.core.metrics import Task
from pipelines.retraining.evaluation import HoldoutDescription, split_holdout
from pipelines.retraining.ipip import ipip as run_ipip
from pipelines.retraining.material import (
    LabelledBlock,
    StrategySkipped,
    TrainedCandidate,
    TrainingMaterial,
    rows_of,
    trained_on,
)
from pipelines.retraining.models import ModelSpec, final_estimator, make_model, seeded

__all__ = [
    "STRATEGIES",
    "build_round",
    "fallback_to_run",
    "launch_order",
    "run_strategy",
]

def build_round(
    blocks: Sequence[LabelledBlock],
    new_block_ids: Sequence[str],
    settings: RetrainSettings,
    *,
    features: Sequence[str],
    categorical: Sequence[str],
    target: str,
    task: Task,
    change_point: tuple[str, int] | None = None,
    recent_block_ids: Sequence[str] = (),
) -> tuple[TrainingMaterial, pd.DataFrame, HoldoutDescription]:
    """Hold out the most recent labelled rows and return the material strategies may see, the holdout, the rule.

    Rows without a target are dropped first (they are not labelled data). See `split_holdout` for the rule.
    """
    labelled = []
    for block in blocks:
        if target not in block.frame.columns:
            raise ValueError(f"block {block.block_id!r} has no target column {target!r}")
        labelled.append((block.block_id, block.frame[block.frame[target].notna()]))
    train, holdout, description = split_holdout(
        labelled,
        new_block_ids,
        holdout_fraction=settings.holdout_fraction,
        holdout_blocks=settings.holdout_blocks,
        change_point=change_point,
    )
    kept_ids = {bid for bid, _ in train}
    material = TrainingMaterial(
        blocks=tuple(LabelledBlock(bid, frame) for bid, frame in train),
        new_block_ids=tuple(b for b in new_block_ids if b in kept_ids),
        features=tuple(features),
        categorical=tuple(categorical),
        target=target,
        task=task,
        change_point=change_point,
        recent_block_ids=tuple(b for b in recent_block_ids if b in kept_ids),
    )
    return material, holdout, description


# ---------------------------------------------------------------------------------------------------------
# helpers


def newest_rows(blocks: Sequence[LabelledBlock], row_budget: int | None) -> tuple[LabelledBlock, ...]:
    """Keep the most recent `row_budget` rows (whole newest blocks, then the tail of the next one)."""
    if row_budget is None:
        return tuple(b for b in blocks if len(b.frame))
    kept: list[LabelledBlock] = []
    left = row_budget
    for block in reversed(blocks):
        if left <= 0:
            break
        part = block.frame.iloc[-left:] if len(block.frame) > left else block.frame
        if len(part):
            kept.insert(0, LabelledBlock(block.block_id, part))
        left -= len(part)
    return tuple(kept)


def _xy(material: TrainingMaterial, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    return frame[list(material.features)], frame[material.target]


def _fresh_fit(
    material: TrainingMaterial, spec: ModelSpec, blocks: Sequence[LabelledBlock], seed: int
) -> Any:
    model = seeded(make_model(spec, material.features, material.categorical), seed, spec)
    X, y = _xy(material, material.frame(blocks))
    if len(X) == 0:
        raise StrategySkipped("no training rows")
    return model.fit(X, y)


def _window(material: TrainingMaterial, settings: RetrainSettings) -> tuple[LabelledBlock, ...]:
    return material.blocks[-settings.window_blocks :]


def _n_splits(material: TrainingMaterial, y: pd.Series, what: str) -> int:
    """Folds for internal cross-validation: up to 5, limited by the rarest class (or the row count)."""
    smallest = int(y.value_counts().min()) if material.task == "classification" else len(y)
    k = min(5, smallest)
    if k < 2:
        raise StrategySkipped(
            f"{what} has a class (or a row count) below 2; cross-validation needs at least 2"
        )
    return k


def _needs_champion(champion: Any, name: str) -> None:
    if champion is None:
        raise StrategySkipped(f"{name} needs a champion and there is none yet")


Strategy = Callable[..., TrainedCandidate]


def _timed(fn: Strategy) -> Strategy:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> TrainedCandidate:
        start = time.perf_counter()
        candidate = fn(*args, **kwargs)
        return replace(candidate, seconds=time.perf_counter() - start)

    return wrapper


# ---------------------------------------------------------------------------------------------------------
# strategies: (material, spec, settings, seed, champion=None) -> TrainedCandidate


@_timed
def full(
    material: TrainingMaterial, spec: ModelSpec, settings: RetrainSettings, seed: int, champion: Any = None
) -> TrainedCandidate:
    """A fresh model on all labelled history (most recent `row_budget` rows)."""
    used = newest_rows(material.blocks, settings.row_budget)
    model = _fresh_fit(material, spec, used, seed)
    return trained_on(used, model=model, strategy="full", seed=seed,
                      params={"row_budget": settings.row_budget})


@_timed
def windowed(
    material: TrainingMaterial, spec: ModelSpec, settings: RetrainSettings, seed: int, champion: Any = None
) -> TrainedCandidate:
    """A fresh model on the last `window_blocks` blocks."""
    used = newest_rows(_window(material, settings), settings.row_budget)
    model = _fresh_fit(material, spec, used, seed)
    return trained_on(used, model=model, strategy="windowed", seed=seed,
                      params={"window_blocks": settings.window_blocks, "row_budget": settings.row_budget})


@_timed
def since_change(
    material: TrainingMaterial, spec: ModelSpec, settings: RetrainSettings, seed: int, champion: Any = None
) -> TrainedCandidate:
    """A fresh model on the labelled rows after the recorded change point (the holdout already removed), at
    least the newest `since_change_min_rows` rows (fewer rows after the change: the newest rows before it fill
    in). Why: after a real concept switch, history teaches the old concept; the rows since the change are the
    only ones that teach the new one, and a round at the switch has few of them."""
    if material.change_point is None:
        raise StrategySkipped("no change point recorded yet (no drift has started a round)")
    block_id, row = material.change_point
    ids = [b.block_id for b in material.blocks]
    after: list[LabelledBlock] = []
    if block_id in ids:
        at = ids.index(block_id)
        first = material.blocks[at]
        after = [LabelledBlock(first.block_id, first.frame.iloc[max(row, 0):]), *material.blocks[at + 1:]]
    # else the change block's rows all went to the holdout: no training row is after the change
    after = [b for b in after if len(b.frame)]
    n_after = rows_of(after)
    used = newest_rows(material.blocks, max(settings.since_change_min_rows, n_after))
    if settings.row_budget is not None:
        used = newest_rows(used, settings.row_budget)
    model = _fresh_fit(material, spec, used, seed)
    filled = max(0, rows_of(used) - n_after)
    notes = (f"{n_after} rows after {block_id} row {row}" +
             (f"; {filled} older rows fill in to since_change_min_rows" if filled else ""))
    return trained_on(used, model=model, strategy="since_change", seed=seed,
                      params={"change_block": block_id, "change_row": int(row), "rows_after_change": n_after,
                              "min_rows": settings.since_change_min_rows}, notes=notes)


@_timed
def incremental(
    material: TrainingMaterial, spec: ModelSpec, settings: RetrainSettings, seed: int, champion: Any = None
) -> TrainedCandidate:
    """A copy of the champion updated with `partial_fit` on the new blocks; preprocessing stays as fitted."""
    _needs_champion(champion, "incremental")
    estimator = final_estimator(champion)
    if not callable(getattr(estimator, "partial_fit", None)):
        raise StrategySkipped(
            f"{type(estimator).__name__} has no partial_fit; incremental learning does not apply"
        )
    new = [b for b in material.blocks if b.block_id in material.new_block_ids]
    used = newest_rows(new, settings.row_budget)
    if not rows_of(used):
        raise StrategySkipped("no new training rows left after the holdout")
    X, y = _xy(material, material.frame(used))
    classes = getattr(estimator, "classes_", None)
    if material.task == "classification" and classes is not None:
        unseen = sorted(set(y.unique()) - set(classes), key=str)
        if unseen:
            raise StrategySkipped(
                f"new labels {unseen} are unknown to the champion; partial_fit cannot add classes"
            )
    model = copy.deepcopy(champion)
    if isinstance(model, Pipeline):
        Xt = model[:-1].transform(X)
        final_estimator(model).partial_fit(Xt, y.to_numpy())
    else:
        model.partial_fit(X, y.to_numpy())
    return trained_on(used, model=model, strategy="incremental", seed=seed,
                      params={"row_budget": settings.row_budget},
                      notes="champion copy updated with partial_fit; preprocessing not refit (unseen categories "
                            "ignored)")


@_timed
def stacking(
    material: TrainingMaterial, spec: ModelSpec, settings: RetrainSettings, seed: int, champion: Any = None
) -> TrainedCandidate:
    """A meta-learner over the frozen champion, a frozen model of the older history and a fresh window model.

    The meta-learner is fit on the window rows with out-of-fold predictions of the window model; the history
    model never saw the window, and the champion is not refit, so no member predicts on its own training rows.
    """
    _needs_champion(champion, "stacking")
    used = newest_rows(material.blocks, settings.row_budget)
    window_ids = {b.block_id for b in _window(material, settings)}
    window = [b for b in used if b.block_id in window_ids]
    older = [b for b in used if b.block_id not in window_ids]
    if not rows_of(window):
        raise StrategySkipped("no rows in the window")
    X, y = _xy(material, material.frame(window))
    k = _n_splits(material, y, "the window")
    previous = unstacked(champion)
    members: list[tuple[str, Any]] = [("champion", FrozenEstimator(previous))]
    if rows_of(older):
        members.append(("history", FrozenEstimator(_fresh_fit(material, spec, older, seed))))
    members.append(("window", seeded(make_model(spec, material.features, material.categorical), seed, spec)))
    if material.task == "classification":
        model: Any = StackingClassifier(
            members,
            final_estimator=LogisticRegression(max_iter=1000),
            cv=StratifiedKFold(n_splits=k, shuffle=True, random_state=seed),
        )
    else:
        model = StackingRegressor(
            members, final_estimator=RidgeCV(), cv=KFold(n_splits=k, shuffle=True, random_state=seed)
        )
    model.fit(X, y)
    params = {"window_blocks": settings.window_blocks, "members": [m for m, _ in members], "cv_folds": k,
              "champion_unstacked": previous is not champion}
    notes = "" if previous is champion else "the champion was a stack: its window model stands in for it"
    return trained_on(used, model=model, strategy="stacking", seed=seed, params=params, notes=notes)


def unstacked(champion: Any) -> Any:
    """A champion that is itself a stack of this strategy is represented by its own window model (the freshest
    fit it holds), so stacks never nest: without this each stacking round would wrap the previous stack and
    the model would grow with every promotion."""
    named = getattr(champion, "named_estimators_", None)
    if isinstance(champion, StackingClassifier | StackingRegressor) and named is not None and "window" in named:
        return named["window"]
    return champion


@_timed
def replay_mix(
    material: TrainingMaterial, spec: ModelSpec, settings: RetrainSettings, seed: int, champion: Any = None
) -> TrainedCandidate:
    """A fresh model on the blocks since the previous round plus a seeded sample of older rows making up
    `replay_fraction` of the mix (before any round: the blocks the champion did not learn from)."""
    recent = material.recent_block_ids or material.new_block_ids
    new = [b for b in material.blocks if b.block_id in recent]
    older = [b for b in material.blocks if b.block_id not in recent]
    n_new, n_older = rows_of(new), rows_of(older)
    if not n_new:
        raise StrategySkipped("no new training rows left after the holdout")
    f = settings.replay_fraction
    n_replay = min(n_older, round(n_new * f / (1.0 - f)))
    if settings.row_budget is not None and n_new + n_replay > settings.row_budget:
        n_replay = min(n_older, round(settings.row_budget * f))
        new = list(newest_rows(new, settings.row_budget - n_replay))
        n_new = rows_of(new)
    rng = np.random.default_rng(seed)
    chosen = (
        np.sort(rng.choice(n_older, size=n_replay, replace=False)) if n_replay else np.array([], dtype=int)
    )
    sampled: list[LabelledBlock] = []
    offset = 0
    for block in older:
        here = chosen[(chosen >= offset) & (chosen < offset + len(block.frame))] - offset
        if len(here):
            sampled.append(LabelledBlock(block.block_id, block.frame.iloc[here]))
        offset += len(block.frame)
    used = [*sampled, *new]
    model = _fresh_fit(material, spec, used, seed)
    params = {"replay_fraction": f, "replayed_rows": int(n_replay), "new_rows": n_new,
              "row_budget": settings.row_budget}
    return trained_on(used, model=model, strategy="replay_mix", seed=seed, params=params)


@_timed
def recalibration(
    material: TrainingMaterial, spec: ModelSpec, settings: RetrainSettings, seed: int, champion: Any = None
) -> TrainedCandidate:
    """The frozen champion with its probabilities recalibrated on the last `window_blocks` blocks."""
    if material.task != "classification":
        raise StrategySkipped("recalibration applies to classification only")
    _needs_champion(champion, "recalibration")
    if not callable(getattr(champion, "predict_proba", None)) and not callable(
        getattr(champion, "decision_function", None)
    ):
        raise StrategySkipped("the champion has neither predict_proba nor decision_function to calibrate")
    used = newest_rows(_window(material, settings), settings.row_budget)
    X, y = _xy(material, material.frame(used))
    unseen = sorted(set(y.unique()) - set(getattr(champion, "classes_", y.unique())), key=str)
    if unseen:
        raise StrategySkipped(f"labels {unseen} are unknown to the champion; calibration cannot add classes")
    k = _n_splits(material, y, "the window")
    model = CalibratedClassifierCV(
        FrozenEstimator(champion),
        method=settings.calibration_method,
        cv=StratifiedKFold(n_splits=k, shuffle=True, random_state=seed),
    )
    model.fit(X, y)
    return trained_on(used, model=model, strategy="recalibration", seed=seed,
                      params={"method": settings.calibration_method, "window_blocks": settings.window_blocks},
                      notes="champion frozen; only the calibration map was fit")


def ipip(
    material: TrainingMaterial, spec: ModelSpec, settings: RetrainSettings, seed: int, champion: Any = None
) -> TrainedCandidate:
    """IPIP ensembles of ensembles for rare events; the algorithm lives in `pipelines.retraining.ipip`."""
    return run_ipip(material, spec, settings, seed, champion)


STRATEGIES: Mapping[str, Strategy] = {
    "full": full,
    "incremental": incremental,
    "windowed": windowed,
    "since_change": since_change,
    "stacking": stacking,
    "replay_mix": replay_mix,
    "recalibration": recalibration,
    "ipip": ipip,
}


def run_strategy(
    name: str,
    material: TrainingMaterial,
    spec: ModelSpec,
    settings: RetrainSettings,
    seed: int,
    champion: Any = None,
) -> TrainedCandidate:
    """Run one strategy by name; raises StrategySkipped when it does not apply."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; allowed: {', '.join(STRATEGY_NAMES)}")
    return STRATEGIES[name](material, spec, settings, seed, champion)


def launch_order(
    strategies: Sequence[str],
    block_rows: Sequence[tuple[str, int]],
    new_block_ids: Sequence[str],
    settings: RetrainSettings,
) -> tuple[str, ...]:
    """Strategies ordered by a rough cost estimate, most expensive first (longest-job-first scheduling).

    `block_rows` is (block id, training rows) oldest first. Cost is rows fit: `full` all rows, `windowed` the
    window, `replay_mix` new rows / (1 - replay_fraction), `stacking` five fits of the window plus the older
    history, 0.2 x rows for `incremental` and `recalibration` (one cheap pass), the window for `ipip` (small
    balanced fits, each scored on the window's other rows). Ties keep the configured order.
    Only the launch order changes: with more strategies than CPUs, starting the longest first shortens a round.

    >>> launch_order(("recalibration", "windowed", "full", "stacking"), [("a", 90), ("b", 10)], ["b"],
    ...              RetrainSettings(window_blocks=1))
    ('stacking', 'full', 'windowed', 'recalibration')
    """
    budget = settings.row_budget or math.inf
    total = sum(n for _, n in block_rows)
    window = sum(n for _, n in block_rows[-settings.window_blocks :])
    new = sum(n for bid, n in block_rows if bid in set(new_block_ids))
    cost = {
        "full": min(total, budget),
        "windowed": min(window, budget),
        "since_change": min(window, budget),
        "replay_mix": min(new / (1.0 - settings.replay_fraction), total, budget),
        "stacking": 5 * min(window, budget) + min(total - window, budget),
        "incremental": 0.2 * min(new, budget),
        "recalibration": 0.2 * min(window, budget),
        "ipip": min(window, budget),
    }
    order = {name: i for i, name in enumerate(strategies)}
    return tuple(sorted(strategies, key=lambda name: (-cost.get(name, 0.0), order[name])))


def fallback_to_run(outcomes: Mapping[str, str], settings: RetrainSettings) -> str | None:
    """The fallback strategy to run when no configured strategy produced a candidate, else None.

    `outcomes` maps strategy name to "trained", "skipped" or "failed".

    >>> fallback_to_run({"windowed": "failed"}, RetrainSettings(strategies=("windowed",), fallback="full"))
    'full'
    >>> fallback_to_run({"windowed": "trained"}, RetrainSettings(strategies=("windowed",), fallback="full"))
    """
    if settings.fallback is None or settings.fallback in outcomes:
        return None
    if any(status == "trained" for status in outcomes.values()):
        return None
    return settings.fallback
