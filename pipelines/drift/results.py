"""The records a drift check produces, as `DriftChecked` stores them: one per feature, the multivariate test,
the streaming concept detector and the performance check.

Why a module of their own: the event catalog (`pipelines.core.events`) holds these records, and everything that
reads the log imports the catalog, the replay CLI included. The tests that produce them need numpy,
pandas, scipy and Frouros (about 2 s to import); the records need nothing, so reading a log does not pay
for the tests. `drift_tests`, `concept_drift` and `drift_multivariate` re-export them.

>>> FeatureDrift(name="age", kind="numeric", test="ks", statistic=0.3, p_value=0.001, p_adjusted=0.004,
...              effect=0.4, effect_name="wasserstein_sd", drifted=True).drifted
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["ConceptDrift", "EstimatedDrift", "FeatureDrift", "MultivariateDrift", "PerformanceDrift"]


@dataclass(frozen=True, kw_only=True, slots=True)
class FeatureDrift:
    """One feature's result for one block (recorded as-is in `DriftChecked`: JSON-able, no NaN).

    `effect` is in the unit named by `effect_name`; `change` says in words what moved; `note` explains
    why a feature was not tested or how an edge case was handled.
    """

    name: str
    kind: Literal["numeric", "categorical"]
    test: str
    statistic: float | None
    p_value: float | None
    p_adjusted: float | None
    effect: float | None
    effect_name: str
    drifted: bool
    unseen_categories: tuple[str, ...] = ()
    note: str | None = None
    change: str | None = None
    rows: int = 0
    alpha: float | None = None
    min_effect: float | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class ConceptDrift:
    """A streaming detector's verdict after one block; `state` is its JSON text for the next block.

    `rows_seen` counts rows since the detector last started (fresh or after a detection);
    `drift_rows` are the block's row positions where it signalled drift; `change_rows` the row where each of
    those changes most likely began (`pipelines.drift.concept.change_row`), so a retraining round can learn
    from the rows after it only.
    """

    detector: str
    drift: bool
    warning: bool
    rows_seen: int
    state: str
    drift_rows: tuple[int, ...] = ()
    block_rows: int = 0
    change_rows: tuple[int, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class PerformanceDrift:
    """The champion's metric on a block against its value at promotion, with an absolute tolerance."""

    metric: str
    at_promotion: float
    observed: float
    tolerance: float
    drifted: bool
    higher_is_better: bool = True


@dataclass(frozen=True, kw_only=True, slots=True)
class MultivariateDrift:
    """The MMD test's result for one block (JSON-able; statistic and p-value None when not run).

    `permutations` is the most the test may run; `permutations_used` how many it ran before its sequential
    p-value was settled (0 when not run). None: every one of `permutations` ran, the fixed-count rule of
    events recorded before permutations could stop early.
    """

    test: str
    statistic: float | None
    p_value: float | None
    drifted: bool
    subsample: int
    permutations: int
    columns: int = 0
    bandwidth: float | None = None
    note: str | None = None
    permutations_used: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class DriftAssessment:
    """The verdict on one block: drifted or not, the reasons in words, and every signal behind it."""

    drifted: bool
    reasons: tuple[str, ...]
    features: tuple[FeatureDrift, ...]
    multivariate: MultivariateDrift | None
    concept: ConceptDrift | None
    performance: PerformanceDrift | None
    estimated: EstimatedDrift | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class EstimatedDrift:
    """The champion's *estimated* metric on a block (no labels needed: `pipelines.estimation`) against its value
    at promotion. Drifted only when the drop is beyond the tolerance even at the interval's better end."""

    metric: str
    at_promotion: float
    estimated: float
    low: float
    high: float
    tolerance: float
    drifted: bool
    higher_is_better: bool = True
