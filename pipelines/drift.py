"""Drift assessment of a block: per-feature tests, a multivariate test, concept and performance signals.

The pieces live in small modules and are all importable from here:

- `fit_reference` / `check_features` (pipelines/drift_tests.py): KS or chi-square per feature, an effect
  size, multiple-testing correction and the minimum-effect gate;
- `check_multivariate` / `mmd_test` (pipelines/drift_multivariate.py): MMD on seeded subsamples;
- `update_concept` / `performance_drift` (pipelines/concept_drift.py): a streaming detector on the
  model's errors whose state is recorded as JSON text, and the metric against its value at promotion;
- `assess` (here): the decision rule, and the reasons written for people.

Every result is a frozen dataclass of JSON-able values, recorded as-is in `DriftChecked`.
docs/drift.md explains the tests and every `[drift]` key; defaults come from benchmarks/drift_quality.py.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(7)
>>> settings = DriftSettings()
>>> train = pd.DataFrame({"x": rng.normal(size=2000), "colour": rng.choice(["red", "blue"], 2000)})
>>> reference = fit_reference(train, numeric=["x"], categorical=["colour"], settings=settings)
>>> block = pd.DataFrame({"x": rng.normal(0.8, 1, size=500), "colour": rng.choice(["red", "blue"], 500)})
>>> features = check_features(reference, block, settings)
>>> [(f.name, f.drifted) for f in features]
[('x', True), ('colour', False)]
>>> verdict = assess(features, None, None, performance_drift("accuracy", 0.91, 0.90, 0.05), settings)
>>> verdict.drifted
True
>>> print(verdict.reasons[0])
x: mean moved by +0.89 sd, spread x0.99 (KS 0.39, p_adj 2e-53; Wasserstein 0.89 sd, min 0.10)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from pipelines.concept_drift import (
    DETECTOR_LABELS,
    ConceptDrift,
    PerformanceDrift,
    performance_drift,
    update_concept,
)
from pipelines.drift_multivariate import (
    MultivariateDrift,
    MultivariateSettings,
    check_multivariate,
    mmd_test,
)
from pipelines.drift_tests import (
    TEST_LABELS,
    FeatureDrift,
    FeatureOverride,
    Reference,
    adjust_p_values,
    check_features,
    check_number,
    fit_reference,
    rank_features,
)

__all__ = [
    "ConceptDrift",
    "DriftAssessment",
    "DriftSettings",
    "FeatureDrift",
    "FeatureOverride",
    "MultivariateDrift",
    "MultivariateSettings",
    "PerformanceDrift",
    "Reference",
    "adjust_p_values",
    "assess",
    "check_features",
    "check_multivariate",
    "fit_reference",
    "mmd_test",
    "performance_drift",
    "update_concept",
]

EFFECT_LABELS = {"wasserstein_sd": ("Wasserstein", " sd"), "ks_statistic": ("KS statistic", ""),
                 "js_distance": ("JS", "")}


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


@dataclass(frozen=True, kw_only=True, slots=True)
class DriftAssessment:
    """The verdict on one block: drifted or not, the reasons in words, and every signal behind it."""

    drifted: bool
    reasons: tuple[str, ...]
    features: tuple[FeatureDrift, ...]
    multivariate: MultivariateDrift | None
    concept: ConceptDrift | None
    performance: PerformanceDrift | None


def assess(features: Sequence[FeatureDrift], multivariate: MultivariateDrift | None,
           concept: ConceptDrift | None, performance: PerformanceDrift | None,
           settings: DriftSettings) -> DriftAssessment:
    """Apply the decision rule: the block drifts when the feature rule, the MMD test, the concept
    detector or the performance check says so; `reasons` says which, in words."""
    ranked = rank_features(features)
    drifted_features = [f for f in ranked if f.drifted]
    tested = [f for f in ranked if f.p_value is not None]
    reasons: list[str] = []
    if settings.rule == "any":
        feature_rule = bool(drifted_features)
        reasons += [feature_reason(f) for f in drifted_features]
    else:
        share = len(drifted_features) / len(tested) if tested else 0.0
        feature_rule = bool(drifted_features) and share >= settings.min_share
        if feature_rule:
            reasons.append(f"{len(drifted_features)} of {len(tested)} features drifted ({share:.0%}, rule: "
                           f"share >= {settings.min_share:.0%})")
            reasons += [feature_reason(f) for f in drifted_features]
    if multivariate is not None and multivariate.drifted:
        reasons.append(f"joint distribution of {multivariate.columns} numeric features changed (MMD "
                       f"{multivariate.statistic:.4f}, p {multivariate.p_value:.2g} with "
                       f"{multivariate.permutations} permutations)")
    if concept is not None and concept.drift:
        label = DETECTOR_LABELS.get(concept.detector, concept.detector)
        rows = ", ".join(str(r) for r in concept.drift_rows[:3])
        at = f" (row {rows} of {concept.block_rows})" if concept.drift_rows else ""
        reasons.append(f"{label} detected concept drift in the error stream{at}")
    if performance is not None and performance.drifted:
        verb = "fell" if performance.higher_is_better else "rose"
        reasons.append(f"{performance.metric} {verb} from {performance.at_promotion:.3g} to "
                       f"{performance.observed:.3g} (tolerance {performance.tolerance:g})")
    drifted = (feature_rule or bool(multivariate and multivariate.drifted) or bool(concept and concept.drift)
               or bool(performance and performance.drifted))
    return DriftAssessment(drifted=drifted, reasons=tuple(reasons), features=ranked, multivariate=multivariate,
                           concept=concept, performance=performance)


def feature_reason(f: FeatureDrift) -> str:
    """One line for a person: what moved, the test, the adjusted p-value and the effect against its gate."""
    label, unit = EFFECT_LABELS.get(f.effect_name, (f.effect_name, ""))
    stat = f"{TEST_LABELS.get(f.test, f.test)} {_number(f.statistic)}"
    gate = f"{label} {_number(f.effect)}{unit}, min {_number(f.min_effect)}"
    text = f"{f.name}: {f.change or 'distribution changed'} ({stat}, p_adj {_p(f.p_adjusted)}; {gate})"
    if f.unseen_categories:
        text += f"; unseen: {', '.join(repr(c) for c in f.unseen_categories[:5])}"
    return text


def _number(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:.2f}" if abs(x) >= 0.01 or x == 0 else f"{x:.1g}"


def _p(x: float | None) -> str:
    if x is None:
        return "n/a"
    if x == 0.0:
        return "<1e-300"
    return f"{x:.0e}" if x < 0.001 else f"{x:.3f}".rstrip("0").rstrip(".")
