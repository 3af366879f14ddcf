"""What a retraining strategy receives and returns: the labelled blocks it may train on and the candidate it
fitted, with `trained_on`, the one way a strategy builds that candidate from the blocks it used.

Its own module so that `pipelines.retraining.strategies` (the common ones) and `pipelines.retraining.ipip` (one more
strategy) both import it, and neither imports the other to get it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pipelines.core.metrics import Task

__all__ = ["LabelledBlock", "StrategySkipped", "TrainedCandidate", "TrainingMaterial", "rows_of", "ids_of",
           "trained_on"]


@dataclass(frozen=True, slots=True, eq=False)
class LabelledBlock:
    """One block of labelled rows in arrival order."""

    block_id: str
    frame: pd.DataFrame


@dataclass(frozen=True, kw_only=True, eq=False)
class TrainingMaterial:
    """Everything a strategy may train on: labelled blocks (oldest first, holdout already removed).

    `change_point` (block id, row among the block's labelled rows) is where the newest recorded change began
    (`since_change` learns from the rows after it); `recent_block_ids` are the blocks since the previous round
    (`replay_mix`'s new rows).
    """

    blocks: tuple[LabelledBlock, ...]
    new_block_ids: tuple[str, ...]
    features: tuple[str, ...]
    categorical: tuple[str, ...]
    target: str
    task: Task
    change_point: tuple[str, int] | None = None
    recent_block_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.task not in ("classification", "regression"):
            raise ValueError(f"task = {self.task!r}; allowed: classification, regression")
        ids = [b.block_id for b in self.blocks]
        missing_new = [b for b in self.new_block_ids if b not in ids]
        if missing_new:
            raise ValueError(f"new blocks {missing_new} are not among the blocks; allowed: {ids}")
        needed = [*self.features, self.target]
        for block in self.blocks:
            absent = [c for c in needed if c not in block.frame.columns]
            if absent:
                raise ValueError(
                    f"block {block.block_id!r} lacks columns {absent}; allowed: frames with {needed}"
                )

    def frame(self, blocks: Sequence[LabelledBlock]) -> pd.DataFrame:
        """The rows of `blocks`, concatenated in order, restricted to the features and the target."""
        cols = [*self.features, self.target]
        if not blocks:
            return pd.DataFrame(columns=cols)
        return pd.concat([b.frame[cols] for b in blocks], ignore_index=True)


@dataclass(frozen=True, kw_only=True, eq=False)
class TrainedCandidate:
    """A fitted candidate and how it came to be (no data, only ids and numbers besides the model)."""

    model: Any
    strategy: str
    training_blocks: tuple[str, ...]
    rows: int
    seed: int
    params: dict[str, Any]
    seconds: float
    notes: str = ""


class StrategySkipped(Exception):
    """The strategy does not apply to this round (no champion, no partial_fit, regression...); not a failure."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def rows_of(blocks: Sequence[LabelledBlock]) -> int:
    return sum(len(b.frame) for b in blocks)


def ids_of(blocks: Sequence[LabelledBlock]) -> tuple[str, ...]:
    return tuple(b.block_id for b in blocks if len(b.frame))


def trained_on(used: Sequence[LabelledBlock], *, model: Any, strategy: str, seed: int, params: dict[str, Any],
               notes: str = "") -> TrainedCandidate:
    """The candidate a strategy fitted on `used` (its blocks and rows are what the registry records);
    `seconds` is filled in by the caller's timer."""
    return TrainedCandidate(model=model, strategy=strategy, training_blocks=ids_of(used), rows=rows_of(used),
                            seed=seed, params=params, seconds=0.0, notes=notes)
