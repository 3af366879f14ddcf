"""The drift decision rule: a block drifts when the per-feature rule, the multivariate test, the concept
detector or the performance check says so, with the reasons written for people.

The signals come from the other modules of this package: `features` (KS or chi-square per feature, an
effect size, multiple-testing correction and the minimum-effect gate), `multivariate` (MMD on seeded
subsamples), `concept` (a streaming detector on the model's errors, the metric against its value at
promotion). Every result is a frozen dataclass of JSON-able values (`results`), recorded as-is in
`DriftChecked`. docs/drift.md explains the tests and every `[drift]` key; defaults come from
benchmarks/drift_quality.py.

>>> from pipelines.drift.concept import performance_drift
>>> from pipelines.drift.features import check_features, fit_reference
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

from pipelines.config.drift import DriftSettings
from pipelines.drift.concept import DETECTOR_LABELS
from pipelines.drift.features import (
    TEST_LABELS,
    rank_features,
)
from pipelines.drift.results import (
    ConceptDrift,
    DriftAssessment,
    EstimatedDrift,
    FeatureDrift,
    MultivariateDrift,
    PerformanceDrift,
)
from pipelines.estimation.block import estimated_reason

__all__ = [
    "assess",
]

EFFECT_LABELS = {"wasserstein_sd": ("Wasserstein", " sd"), "ks_statistic": ("KS statistic", ""),
                 "js_distance": ("JS", "")}


def assess(features: Sequence[FeatureDrift], multivariate: MultivariateDrift | None,
           concept: ConceptDrift | None, performance: PerformanceDrift | None,
           settings: DriftSettings, estimated: EstimatedDrift | None = None) -> DriftAssessment:
    """Apply the decision rule: the block drifts when the feature rule, the MMD test, the concept
    detector, the performance check or the estimated performance (no labels needed) says so; `reasons` says
    which, in words."""
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
    if estimated is not None and estimated.drifted:
        reasons.append(estimated_reason(estimated))
    drifted = (feature_rule or bool(multivariate and multivariate.drifted) or bool(concept and concept.drift)
               or bool(performance and performance.drifted) or bool(estimated and estimated.drifted))
    return DriftAssessment(drifted=drifted, reasons=tuple(reasons), features=ranked, multivariate=multivariate,
                           concept=concept, performance=performance, estimated=estimated)


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
