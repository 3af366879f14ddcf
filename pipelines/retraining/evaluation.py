"""Score models on labelled data and carve out the holdout that every candidate and the champion are judged on.

Metrics are plain floats keyed by name; a metric that cannot be computed on the given rows (one class only,
no `predict_proba`, a single row) is omitted rather than reported as NaN, so nothing downstream compares NaNs.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from pipelines.core.metrics import Task

__all__ = [
    "HoldoutDescription",
    "HoldoutSpan",
    "evaluate",
    "per_row_errors",
    "split_holdout",
]

def _check_task(task: str) -> None:
    if task not in ("classification", "regression"):
        raise ValueError(f"unknown task {task!r}; allowed: classification, regression")


def evaluate(
    model: Any, frame: pd.DataFrame, features: Sequence[str], target: str, task: Task
) -> dict[str, float]:
    """Metrics of `model` on `frame`: classification or regression set, only finite values."""
    _check_task(task)
    if len(frame) == 0:
        raise ValueError("cannot evaluate on an empty frame; allowed: a frame with at least one labelled row")
    X = frame[list(features)]
    y_true = frame[target].to_numpy()
    out: dict[str, float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if task == "regression":
            y_pred = np.asarray(model.predict(X), dtype=float)
            y = y_true.astype(float)
            out["mae"] = skm.mean_absolute_error(y, y_pred)
            out["rmse"] = skm.root_mean_squared_error(y, y_pred)
            if len(y) >= 2 and np.ptp(y) > 0:
                out["r2"] = skm.r2_score(y, y_pred)
        else:
            out.update(_classification_metrics(model, X, y_true))
    return {k: float(v) for k, v in sorted(out.items()) if v is not None and math.isfinite(float(v))}


def _classification_metrics(model: Any, X: pd.DataFrame, y_true: np.ndarray) -> dict[str, float]:
    y_pred = model.predict(X)
    out = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "f1_macro": skm.f1_score(y_true, y_pred, average="macro", zero_division=0),
    }
    present, counts = np.unique(y_true, return_counts=True)
    if len(present) >= 2:
        out["balanced_accuracy"] = skm.balanced_accuracy_score(y_true, y_pred)
    classes = getattr(model, "classes_", None)
    known = (
        np.asarray(classes)
        if classes is not None
        else np.unique(np.concatenate([present, np.unique(y_pred)]))
    )
    if len(known) == 2 and len(present) == 2:
        # The minority class of the rows being scored; on a tie, the second class (the conventional positive).
        minority = present[np.argmin(counts)] if counts[0] != counts[1] else present[1]
        out["f1_minority"] = skm.f1_score(
            y_true, y_pred, pos_label=minority, average="binary", zero_division=0
        )
    if hasattr(model, "predict_proba") and classes is not None:
        try:
            proba = np.asarray(model.predict_proba(X), dtype=float)
        except (AttributeError, NotImplementedError):
            proba = None
        if proba is not None and set(present) <= set(known):
            out["log_loss"] = skm.log_loss(y_true, proba, labels=known)
            if len(present) >= 2:
                try:
                    if len(known) == 2:
                        out["roc_auc"] = skm.roc_auc_score(y_true == known[1], proba[:, 1])
                    elif len(present) == len(known):
                        out["roc_auc"] = skm.roc_auc_score(y_true, proba, multi_class="ovr", labels=known)
                except ValueError:
                    pass
    return out


def per_row_errors(
    model: Any, frame: pd.DataFrame, features: Sequence[str], target: str, task: Task
) -> np.ndarray:
    """One error per row, in row order: 0/1 misclassification, or absolute error for regression.

    This is the stream concept-drift detectors (DDM, ADWIN, ...) consume.
    """
    _check_task(task)
    y_pred = model.predict(frame[list(features)])
    y_true = frame[target].to_numpy()
    if task == "regression":
        return np.abs(y_true.astype(float) - np.asarray(y_pred, dtype=float))
    return (np.asarray(y_pred) != y_true).astype(float)


@dataclass(frozen=True, kw_only=True, slots=True)
class HoldoutSpan:
    """Rows `start <= i < stop` (positions among the block's labelled rows, in arrival order) are held out."""

    block_id: str
    start: int
    stop: int


@dataclass(frozen=True, kw_only=True, slots=True)
class HoldoutDescription:
    """Exactly which rows were held out and by which rule; JSON-able so an event can record it."""

    rule: str
    spans: tuple[HoldoutSpan, ...]
    rows: int

    def __str__(self) -> str:
        parts = ", ".join(f"{s.block_id}[{s.start}:{s.stop}]" for s in self.spans)
        return f"{self.rows} holdout rows ({self.rule}): {parts}"


def split_holdout(
    blocks: Sequence[tuple[str, pd.DataFrame]],
    new_block_ids: Sequence[str],
    *,
    holdout_fraction: float,
    holdout_blocks: int | None = None,
    change_point: tuple[str, int] | None = None,
) -> tuple[list[tuple[str, pd.DataFrame]], pd.DataFrame, HoldoutDescription]:
    """Split (block_id, frame) pairs, oldest first, into training blocks and the most recent labelled rows.

    Rule (documented in docs/retraining.md): with `holdout_blocks = k` the newest k blocks are held out
    whole; otherwise the last `ceil(holdout_fraction * n)` rows of the new blocks are, where n is the number of
    rows in the new blocks, taken in arrival order (a block's frame order, blocks oldest first). When a
    `change_point` (block id, row) falls in the new blocks, n counts only the rows from it on: the holdout
    then judges candidates on the new concept alone, and is a fraction of its rows. New blocks must be the
    newest blocks. Blocks left with no rows are dropped from the training side.

    >>> a = pd.DataFrame({"x": range(10)}); b = pd.DataFrame({"x": range(10, 15)})
    >>> train, hold, desc = split_holdout([("a", a), ("b", b)], ["b"], holdout_fraction=0.5)
    >>> [(bid, len(f)) for bid, f in train], hold["x"].tolist(), str(desc)
    ([('a', 10), ('b', 2)], [12, 13, 14], '3 holdout rows (last 50% of rows of new blocks): b[2:5]')
    """
    ids = [bid for bid, _ in blocks]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate block ids in {ids}; allowed: each block once")
    new = list(new_block_ids)
    unknown = [b for b in new if b not in ids]
    if unknown:
        raise ValueError(f"new blocks {unknown} are not among the labelled blocks; allowed: {ids}")
    if not new:
        raise ValueError("no new blocks; allowed: at least one new labelled block per round")
    if sorted(ids.index(b) for b in new) != list(range(len(ids) - len(new), len(ids))):
        raise ValueError(f"new blocks {new} must be the newest blocks; allowed: a suffix of {ids}")

    spans: list[HoldoutSpan] = []
    rule_note = ""
    if holdout_blocks is not None:
        if not 1 <= holdout_blocks < len(blocks):
            raise ValueError(
                f"holdout_blocks = {holdout_blocks} with {len(blocks)} labelled blocks; "
                f"allowed: 1 to {len(blocks) - 1}, so some block is left to train on"
            )
        for bid, frame in blocks[len(blocks) - holdout_blocks :]:
            spans.append(HoldoutSpan(block_id=bid, start=0, stop=len(frame)))
        rule = f"newest {holdout_blocks} block(s)"
    else:
        if not 0.0 < holdout_fraction < 1.0:
            raise ValueError(f"holdout_fraction = {holdout_fraction}; allowed: 0 < holdout_fraction < 1")
        new_pairs = [(bid, frame) for bid, frame in blocks if bid in new]
        n_new = sum(len(f) for _, f in new_pairs)
        if change_point is not None and change_point[0] in new:
            at = [bid for bid, _ in new_pairs].index(change_point[0])
            after = new_pairs[at:]
            n_after = sum(len(f) for _, f in after) - min(max(change_point[1], 0), len(after[0][1]))
            if n_after > 0:
                n_new = n_after
                rule_note = f" from the change at {change_point[0]} row {change_point[1]}"
        remaining = math.ceil(holdout_fraction * n_new)
        for bid, frame in reversed(new_pairs):
            if remaining <= 0:
                break
            take = min(remaining, len(frame))
            if take:
                spans.insert(0, HoldoutSpan(block_id=bid, start=len(frame) - take, stop=len(frame)))
            remaining -= take
        rule = f"last {holdout_fraction:.0%} of rows of new blocks{rule_note}"

    cut = {s.block_id: s.start for s in spans}
    train = []
    for bid, frame in blocks:
        kept = frame.iloc[: cut.get(bid, len(frame))]
        if len(kept):
            train.append((bid, kept))
    held = [frame.iloc[cut[bid] :] for bid, frame in blocks if bid in cut]
    holdout = pd.concat(held, ignore_index=True) if held else pd.DataFrame()
    if not train:
        raise ValueError(
            "the holdout takes every labelled row; allowed: a smaller holdout_fraction or more data"
        )
    if len(holdout) == 0:
        raise ValueError("the holdout is empty: the new blocks have no labelled rows")
    description = HoldoutDescription(rule=rule, spans=tuple(spans), rows=len(holdout))
    return train, holdout, description
