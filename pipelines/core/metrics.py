"""Metric names, their direction, and the metric promotion ranks by: knowledge about metrics that deciding needs
without computing any (stdlib only; `pipelines.retraining.evaluation` computes them).

>>> higher_is_better("accuracy"), higher_is_better("rmse")
(True, False)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pipelines.config.retrain import RetrainSettings

__all__ = ["CLASSIFICATION_METRICS", "REGRESSION_METRICS", "Metric", "Task", "higher_is_better", "primary_metric"]

Task = Literal["classification", "regression"]
Metric = Literal["accuracy", "balanced_accuracy", "f1_minority", "roc_auc", "log_loss", "r2", "mae", "rmse"]

CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "f1_macro", "f1_minority", "roc_auc", "log_loss")
REGRESSION_METRICS = ("r2", "mae", "rmse")
_LOWER_IS_BETTER = frozenset({"log_loss", "mae", "rmse"})


def higher_is_better(metric: str) -> bool:
    """Direction of a metric: True when a larger value is better."""
    if metric not in CLASSIFICATION_METRICS and metric not in REGRESSION_METRICS:
        raise ValueError(
            f"unknown metric {metric!r}; allowed: {', '.join(CLASSIFICATION_METRICS + REGRESSION_METRICS)}"
        )
    return metric not in _LOWER_IS_BETTER


def primary_metric(settings: RetrainSettings, task: Task) -> str:
    """The metric promotion ranks by: the configured one, else accuracy (classification) or r2 (regression).

    >>> from pipelines.config.retrain import RetrainSettings
    >>> primary_metric(RetrainSettings(), "regression")
    'r2'
    """
    if task not in ("classification", "regression"):
        raise ValueError(f"unknown task {task!r}; allowed: classification, regression")
    if settings.metric is None:
        return "accuracy" if task == "classification" else "r2"
    allowed = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    if settings.metric not in allowed:
        raise ValueError(
            f"metric = {settings.metric!r} does not apply to {task}; allowed: {', '.join(allowed)}"
        )
    return settings.metric
