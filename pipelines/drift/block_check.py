"""`assess_block`: everything a block's check computes, in one pure function that the actor records and `audit`
re-runs, so the two can never disagree about what a check is.

A check is: the champion's score on the block when it is labelled (and its per-row errors for the concept
detector), the per-feature tests against the reference, the multivariate test, the concept detector's next
state, the performance check against the score at promotion, then the decision rule (`drift.assess`).
The multivariate test is passed in: the actor runs it as a Ray task, `audit` in its own process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pipelines.config.drift import DriftSettings
from pipelines.config.pipeline import PipelineConfig
from pipelines.core.metrics import higher_is_better, primary_metric
from pipelines.core.schema import ColumnSchema
from pipelines.drift.concept import performance_drift, update_concept
from pipelines.drift.decision import assess
from pipelines.drift.features import Reference, check_features
from pipelines.drift.multivariate import check_multivariate
from pipelines.drift.results import DriftAssessment, MultivariateDrift
from pipelines.estimation.block import estimate_block, estimated_drift
from pipelines.estimation.cbpe import Estimate
from pipelines.retraining.evaluation import evaluate, per_row_errors

__all__ = ["BlockCheck", "MultivariateTest", "assess_block", "assess_labels"]

MultivariateTest = Callable[[pd.DataFrame, pd.DataFrame, Sequence[str], DriftSettings, int], MultivariateDrift]


@dataclass(frozen=True, slots=True)
class BlockCheck:
    """What a block's check found: the champion's metrics on it (labelled blocks), its estimated metrics (a
    calibrated classifier, labelled or not) and the drift verdict."""

    metrics: dict[str, float] | None
    assessment: DriftAssessment
    estimate: Estimate | None = None


def assess_block(frame: pd.DataFrame, *, seq: int, labelled: bool, reference: Reference,
                 reference_frame: pd.DataFrame, champion_model: Any, promoted_metrics: dict[str, float] | None,
                 concept_state: str | None, config: PipelineConfig, schema: ColumnSchema,
                 multivariate_test: MultivariateTest = check_multivariate, serving_model: Any = None,
                 calibrator: Any = None) -> BlockCheck:
    """Check one block against its reference and the champion (`champion_model`, None when none scores it).

    `serving_model` with its `calibrator` (the champion and its calibration, labelled block or not) gives the
    estimated performance and its signal. Seeded by `[training] seed + seq`, so a check re-run from the same
    artifacts gives the same numbers.
    """
    c = config
    metrics = errors = None
    metric = primary_metric(c.retrain, c.task)
    at_promotion = (promoted_metrics or {}).get(metric)
    estimate = estimated = None
    if serving_model is not None and calibrator is not None and c.task == "classification":
        estimate = estimate_block(serving_model, calibrator, frame, schema.features, c.training.seed + seq)
        if estimate is not None:
            estimated = estimated_drift(estimate, metric, at_promotion, c.drift.performance_tolerance,
                                        higher_is_better(metric))
    if labelled and champion_model is not None:
        metrics = evaluate(champion_model, frame, schema.features, schema.target, c.task)
        errors = per_row_errors(champion_model, frame, schema.features, schema.target, c.task)
    features = check_features(reference, frame, c.drift)
    multivariate = None
    if c.drift.multivariate.enabled and schema.numeric:
        multivariate = multivariate_test(reference_frame, frame, schema.numeric, c.drift, c.training.seed + seq)
    concept = None
    if errors is not None and c.drift.concept_detector != "none":
        concept = update_concept(c.drift.concept_detector, concept_state, errors, max_rows=c.drift.concept_max_rows)
    performance = None
    if metrics is not None and at_promotion is not None and metric in metrics:
        performance = performance_drift(metric, at_promotion, metrics[metric], c.drift.performance_tolerance,
                                        higher_is_better=higher_is_better(metric))
    return BlockCheck(metrics=metrics, assessment=assess(features, multivariate, concept, performance, c.drift,
                                                         estimated), estimate=estimate)


def assess_labels(frame: pd.DataFrame, *, model: Any, still_serves: bool, promoted_metrics: dict[str, float] | None,
                  concept_state: str | None, config: PipelineConfig, schema: ColumnSchema) -> BlockCheck:
    """Check a block's late labels (`frame` holds them): the model that served the block scored on them and,
    when it still serves, its errors fed to the concept detector and its score compared with promotion. The
    feature tests ran when the block arrived; an estimate needs no labels; so neither is repeated here."""
    c = config
    metrics = evaluate(model, frame, schema.features, schema.target, c.task)
    concept = performance = None
    if still_serves:
        if c.drift.concept_detector != "none":
            errors = per_row_errors(model, frame, schema.features, schema.target, c.task)
            concept = update_concept(c.drift.concept_detector, concept_state, errors,
                                     max_rows=c.drift.concept_max_rows)
        metric = primary_metric(c.retrain, c.task)
        at_promotion = (promoted_metrics or {}).get(metric)
        if at_promotion is not None and metric in metrics:
            performance = performance_drift(metric, at_promotion, metrics[metric], c.drift.performance_tolerance,
                                            higher_is_better=higher_is_better(metric))
    return BlockCheck(metrics=metrics, assessment=assess((), None, concept, performance, c.drift))
