"""`[drift]`: what a block is compared with, the tests' thresholds and the decision rule, as settings only.

Stdlib only: the config reads and validates them without loading the drift tests' numeric libraries
(scipy, Frouros, pandas), which `pipelines.drift` and its modules import to compute. Defaults and the
measurements behind them are in docs/drift.md.

>>> DriftSettings().min_effect, DriftSettings().concept_detector
(0.1, 'adwin')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

__all__ = ["TEST_NAMES", "DriftSettings", "FeatureOverride", "MultivariateSettings", "TestName", "check_number"]

TestName = Literal["ks", "cvm", "mann_whitney_u", "welch_t", "chi2", "off"]
TEST_NAMES: tuple[str, ...] = get_args(TestName)
MIN_ROWS = 10  # rows per side below which the multivariate test does not run


def check_number(name: str, value: Any, *, low: float, high: float = math.inf, low_open: bool = False,
                 high_open: bool = False) -> None:
    """Raise ValueError("<name> is <value>; allowed: <range>") unless `value` is a finite number in range."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        left = "(" if low_open else "["
        right = ")" if high_open or high == math.inf else "]"
        upper = "inf" if high == math.inf else f"{high:g}"
        raise ValueError(f"{name} is {value!r}; allowed: a number in {left}{low:g}, {upper}{right}")


@dataclass(frozen=True, kw_only=True)
class FeatureOverride:
    """`[drift.features.<name>]`: a different test, alpha or minimum effect for one feature.

    `test = "chi2"` treats a numeric column as categorical (e.g. integer codes); a numeric test on a
    categorical column reads its values as numbers; `"off"` leaves the feature out of the drift check.
    """

    test: TestName | None = None
    alpha: float | None = None
    min_effect: float | None = None

    def __post_init__(self) -> None:
        if self.test is not None and self.test not in TEST_NAMES:
            raise ValueError(f"test is {self.test!r}; allowed: {', '.join(TEST_NAMES)}")
        if self.alpha is not None:
            check_number("alpha", self.alpha, low=0.0, high=1.0, low_open=True, high_open=True)
        if self.min_effect is not None:
            check_number("min_effect", self.min_effect, low=0.0)


@dataclass(frozen=True, kw_only=True)
class MultivariateSettings:
    """`[drift.multivariate]`: the MMD test on numeric columns (rows per side, the most permutations, alpha).

    `permutations` bounds the sequential p-value: a drift-free block stops once a few permutations reach its
    statistic; a drifted one runs them all (`pipelines.drift.multivariate`).
    """

    enabled: bool = True
    subsample: int = 1000
    permutations: int = 200
    alpha: float = 0.01

    def __post_init__(self) -> None:
        if isinstance(self.subsample, bool) or not isinstance(self.subsample, int) or self.subsample < MIN_ROWS:
            raise ValueError(f"multivariate.subsample is {self.subsample!r}; allowed: a whole number >= {MIN_ROWS}")
        if (isinstance(self.permutations, bool) or not isinstance(self.permutations, int)
                or not 19 <= self.permutations <= 100_000):
            raise ValueError(f"multivariate.permutations is {self.permutations!r}; allowed: a whole number "
                             "from 19 to 100000 (the smallest p-value is 1/(permutations+1))")
        check_number("multivariate.alpha", self.alpha, low=0.0, high=1.0, low_open=True, high_open=True)
        if self.alpha < 1.0 / (self.permutations + 1):
            raise ValueError(f"multivariate.alpha is {self.alpha}, below the smallest p-value "
                             f"{self.permutations} permutations can give (1/{self.permutations + 1}); allowed: "
                             "raise permutations or alpha")


@dataclass(frozen=True, kw_only=True)
class DriftSettings:
    """`[drift]`: what a block is compared with, the tests' thresholds and the decision rule.

    Defaults and the measurements behind them are in docs/drift.md.
    """

    reference: Literal["champion_training", "last_blocks", "pinned"] = "champion_training"
    reference_blocks: int = 3
    pinned_blocks: tuple[str, ...] = ()
    max_reference_rows: int = 100_000
    alpha: float = 0.05
    correction: Literal["bh", "bonferroni", "none"] = "bh"
    numeric_effect: Literal["wasserstein", "ks"] = "wasserstein"
    min_effect: float = 0.1
    min_effect_categorical: float = 0.04
    min_rows: int = 20
    features: dict[str, FeatureOverride] = field(default_factory=dict)
    rule: Literal["any", "share"] = "any"
    min_share: float = 0.25
    multivariate: MultivariateSettings = field(default_factory=MultivariateSettings)
    concept_detector: Literal["ddm", "eddm", "adwin", "page_hinkley", "none"] = "adwin"
    concept_max_rows: int = 2000
    performance_tolerance: float = 0.05

    def __post_init__(self) -> None:
        choices = {"reference": ("champion_training", "last_blocks", "pinned"),
                   "correction": ("bh", "bonferroni", "none"), "numeric_effect": ("wasserstein", "ks"),
                   "rule": ("any", "share"),
                   "concept_detector": ("ddm", "eddm", "adwin", "page_hinkley", "none")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} is {getattr(self, name)!r}; allowed: {', '.join(allowed)}")
        for name, low in (("reference_blocks", 1), ("max_reference_rows", 100), ("min_rows", 2),
                          ("concept_max_rows", 100)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} is {value!r}; allowed: a whole number >= {low}")
        if self.reference == "pinned" and not self.pinned_blocks:
            raise ValueError("reference is 'pinned' but pinned_blocks is empty; allowed: a list of block ids")
        if not all(isinstance(b, str) and b for b in self.pinned_blocks):
            raise ValueError(f"pinned_blocks is {self.pinned_blocks!r}; allowed: a list of block ids (strings)")
        check_number("alpha", self.alpha, low=0.0, high=1.0, low_open=True, high_open=True)
        check_number("min_effect", self.min_effect, low=0.0)
        check_number("min_effect_categorical", self.min_effect_categorical, low=0.0, high=1.0)
        check_number("min_share", self.min_share, low=0.0, high=1.0, low_open=True)
        check_number("performance_tolerance", self.performance_tolerance, low=0.0)
        for name, override in self.features.items():
            if not isinstance(override, FeatureOverride):
                raise ValueError(f"features.{name} is {override!r}; allowed: a table with test, alpha, min_effect")
        if not isinstance(self.multivariate, MultivariateSettings):
            raise ValueError("multivariate must be a [drift.multivariate] table; allowed: enabled, subsample, "
                             "permutations, alpha")
