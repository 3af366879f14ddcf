"""`[retrain]`: which strategies run, on which data, and what a candidate must do to be promoted.

Settings only (stdlib): the config reads them without loading the strategies' numeric libraries, which
`pipelines.retraining` imports to train.

>>> RetrainSettings().strategies
('full', 'windowed', 'since_change', 'replay_mix', 'recalibration')
>>> RetrainSettings().trigger
('performance', 'concept')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, get_args

from pipelines.core.metrics import CLASSIFICATION_METRICS, REGRESSION_METRICS, Metric

__all__ = ["DEFAULT_STRATEGIES", "DEFAULT_TRIGGER", "STRATEGY_NAMES", "TRIGGER_SIGNALS", "RetrainSettings"]

STRATEGY_NAMES = ("full", "incremental", "windowed", "since_change", "stacking", "replay_mix", "recalibration",
                  "ipip")
DEFAULT_STRATEGIES = ("full", "windowed", "since_change", "replay_mix", "recalibration")
# Which drift signals start a round: "performance" (the champion's metric fell by more than the tolerance),
# "concept" (the streaming detector on its errors), "data" (the per-feature rule or the multivariate test).
# The default was chosen by benchmarks/closed_loop.py over every scenario (docs/retraining.md, "Triggers").
TRIGGER_SIGNALS = ("performance", "concept", "data", "estimated")
DEFAULT_TRIGGER = ("performance", "concept")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True, kw_only=True)
class RetrainSettings:
    """The `[retrain]` table: which strategies run, on which data, and what a candidate must do to be promoted."""

    strategies: tuple[str, ...] = DEFAULT_STRATEGIES
    trigger: tuple[str, ...] = DEFAULT_TRIGGER
    cooldown_blocks: int = 0  # blocks after a round's start during which drift only warns
    reuse_champions: int = 5  # past champions scored on every round's holdout (0: none)
    since_change_min_rows: int = 200  # since_change trains on at least this many of the newest rows
    adapt_growth: float = 3.0  # an "adapt" round starts when the new concept's rows grew by this factor
    adapt_max_rounds: int = 2  # adapt rounds per change point at most
    adapt_from_start: bool = False  # the pipeline's start counts as a change point: rounds as history grows
    window_blocks: int = 3
    replay_fraction: float = 0.3
    row_budget: int | None = 200_000
    metric: Metric | None = None
    min_improvement: float = 0.01
    thresholds: dict[str, float] = field(default_factory=dict)
    fallback: str | None = None
    task_timeout_seconds: float = 600.0
    holdout_fraction: float = 0.2
    holdout_blocks: int | None = None
    retain_rejected: int = 3
    calibration_method: Literal["sigmoid", "isotonic"] = "sigmoid"
    # ipip (pipelines/retraining/ipip.py, docs/retraining.md "IPIP"); p, b, max_attempts: None = the method's formulas
    ipip_p: int | None = None
    ipip_b: int | None = None
    ipip_alpha: float = 0.01
    ipip_max_attempts: int | None = None
    ipip_majority_share: float = 0.55
    ipip_minority_fraction: float = 0.75
    ipip_validation_fraction: float = 0.25

    def __post_init__(self) -> None:
        if isinstance(self.strategies, list):
            object.__setattr__(self, "strategies", tuple(self.strategies))
        allowed = ", ".join(STRATEGY_NAMES)
        if not isinstance(self.strategies, tuple) or not self.strategies:
            raise ValueError(f"strategies = {self.strategies!r}; allowed: a non-empty list of {allowed}")
        for name in self.strategies:
            if name not in STRATEGY_NAMES:
                raise ValueError(f"strategies: unknown strategy {name!r}; allowed: {allowed}")
        if len(set(self.strategies)) != len(self.strategies):
            raise ValueError(
                f"strategies = {list(self.strategies)} lists a strategy twice; allowed: each once"
            )
        if isinstance(self.trigger, list):
            object.__setattr__(self, "trigger", tuple(self.trigger))
        signals = ", ".join(TRIGGER_SIGNALS)
        if not isinstance(self.trigger, tuple) or any(t not in TRIGGER_SIGNALS for t in self.trigger):
            shown = list(self.trigger) if isinstance(self.trigger, tuple) else self.trigger
            raise ValueError(f"trigger = {shown!r}; allowed: a list of {signals} (empty: drift only warns)")
        if len(set(self.trigger)) != len(self.trigger):
            raise ValueError(f"trigger = {list(self.trigger)} lists a signal twice; allowed: each once")
        for key, low in (("cooldown_blocks", 0), ("reuse_champions", 0), ("since_change_min_rows", 1),
                         ("adapt_max_rounds", 0)):
            value = getattr(self, key)
            if not _is_int(value) or value < low:
                raise ValueError(f"{key} = {value!r}; allowed: an integer >= {low}")
        if not isinstance(self.adapt_from_start, bool):
            raise ValueError(f"adapt_from_start = {self.adapt_from_start!r}; allowed: true or false")
        if not _is_number(self.adapt_growth) or self.adapt_growth <= 1.0:
            raise ValueError(f"adapt_growth = {self.adapt_growth!r}; allowed: a number > 1")
        if not _is_int(self.window_blocks) or self.window_blocks < 1:
            raise ValueError(f"window_blocks = {self.window_blocks!r}; allowed: an integer >= 1")
        if not _is_number(self.replay_fraction) or not 0.0 <= self.replay_fraction < 1.0:
            raise ValueError(f"replay_fraction = {self.replay_fraction!r}; allowed: 0 <= replay_fraction < 1")
        if self.row_budget is not None and (not _is_int(self.row_budget) or self.row_budget < 1):
            raise ValueError(f"row_budget = {self.row_budget!r}; allowed: an integer >= 1, or leave it out")
        metrics = CLASSIFICATION_METRICS + REGRESSION_METRICS
        primary = get_args(Metric)
        if self.metric is not None and self.metric not in primary:
            raise ValueError(f"metric = {self.metric!r}; allowed: {', '.join(primary)}")
        if not _is_number(self.min_improvement) or self.min_improvement < 0:
            raise ValueError(f"min_improvement = {self.min_improvement!r}; allowed: a number >= 0")
        if not isinstance(self.thresholds, dict):
            raise ValueError(f"thresholds = {self.thresholds!r}; allowed: a table of metric = number")
        for name, value in self.thresholds.items():
            if name not in metrics:
                raise ValueError(f"thresholds: unknown metric {name!r}; allowed: {', '.join(metrics)}")
            if not _is_number(value):
                raise ValueError(f"thresholds.{name} = {value!r}; allowed: a finite number")
        if self.fallback is not None:
            if self.fallback not in STRATEGY_NAMES:
                raise ValueError(f"fallback = {self.fallback!r}; allowed: {allowed}, or leave it out")
            if self.fallback in self.strategies:
                raise ValueError(
                    f"fallback = {self.fallback!r} already runs as one of the strategies; "
                    "allowed: a strategy not in strategies, or leave it out"
                )
        if not _is_number(self.task_timeout_seconds) or self.task_timeout_seconds <= 0:
            raise ValueError(f"task_timeout_seconds = {self.task_timeout_seconds!r}; allowed: a number > 0")
        if not _is_number(self.holdout_fraction) or not 0.0 < self.holdout_fraction < 1.0:
            raise ValueError(
                f"holdout_fraction = {self.holdout_fraction!r}; allowed: 0 < holdout_fraction < 1"
            )
        if self.holdout_blocks is not None and (not _is_int(self.holdout_blocks) or self.holdout_blocks < 1):
            raise ValueError(
                f"holdout_blocks = {self.holdout_blocks!r}; allowed: an integer >= 1, or leave it out"
            )
        if not _is_int(self.retain_rejected) or self.retain_rejected < 0:
            raise ValueError(f"retain_rejected = {self.retain_rejected!r}; allowed: an integer >= 0")
        if self.calibration_method not in ("sigmoid", "isotonic"):
            raise ValueError(f"calibration_method = {self.calibration_method!r}; allowed: sigmoid, isotonic")
        for key in ("ipip_p", "ipip_b", "ipip_max_attempts"):
            value = getattr(self, key)
            if value is not None and (not _is_int(value) or value < 1):
                raise ValueError(f"{key} = {value!r}; allowed: an integer >= 1, or leave it out")
        for key in (
            "ipip_alpha",
            "ipip_majority_share",
            "ipip_minority_fraction",
            "ipip_validation_fraction",
        ):
            value = getattr(self, key)
            if not _is_number(value) or not 0.0 < value < 1.0:
                raise ValueError(f"{key} = {value!r}; allowed: 0 < {key} < 1")
