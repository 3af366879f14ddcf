"""A block's estimate, and the estimated-drop signal: the two steps of a check that need no labels.

`estimate_block` runs the champion and its calibration (fitted at promotion) on a block's features and hands
the probabilities to CBPE. `estimated_drift` compares the estimate of the metric promotion ranks by with its
value at promotion: a drop counts only when it is beyond `[drift] performance_tolerance` even at the better end
of the interval, so a small block's noise does not raise it.

>>> from pipelines.estimation.cbpe import Estimate
>>> est = Estimate(metrics={"accuracy": 0.81}, interval={"accuracy": (0.78, 0.84)}, rows=1000, draws=300)
>>> d = estimated_drift(est, "accuracy", 0.93, 0.05)
>>> d.drifted, estimated_reason(d)
(True, 'estimated accuracy 0.81 [0.78, 0.84], at promotion 0.93 (tolerance 0.05; no labels)')
>>> estimated_drift(est, "accuracy", 0.88, 0.05).drifted   # the interval reaches within the tolerance
False
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from pipelines.drift.results import EstimatedDrift
from pipelines.estimation.calibration import calibrated_proba
from pipelines.estimation.cbpe import Estimate, estimate_performance

__all__ = ["estimate_block", "estimated_drift", "estimated_reason"]


def estimate_block(model: Any, calibrator: Any, frame: pd.DataFrame, features: Sequence[str],
                   seed: int) -> Estimate | None:
    """The champion's estimated metrics on `frame` (labels not read); None for an empty block."""
    if len(frame) == 0:
        return None
    X = frame[list(features)]
    classes = np.asarray(model.classes_)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predicted = np.asarray(model.predict(X))
        scores = np.asarray(model.predict_proba(X), dtype=float)
    calibrated = calibrated_proba(calibrator, X)
    order = {c: i for i, c in enumerate(calibrator.classes_)}
    calibrated = calibrated[:, [order[c] for c in classes]]  # the model's class order
    return estimate_performance(calibrated, scores, predicted, classes, seed=seed)


def estimated_drift(estimate: Estimate, metric: str, at_promotion: float | None, tolerance: float,
                    higher_is_better: bool = True) -> EstimatedDrift | None:
    """The estimated metric against its value at promotion; None when either is unknown."""
    if at_promotion is None or metric not in estimate.metrics:
        return None
    value = estimate.metrics[metric]
    low, high = estimate.interval[metric]
    best = high if higher_is_better else low
    drop = (at_promotion - best) if higher_is_better else (best - at_promotion)
    return EstimatedDrift(metric=metric, at_promotion=float(at_promotion), estimated=float(value), low=float(low),
                          high=float(high), tolerance=float(tolerance), drifted=bool(drop > tolerance),
                          higher_is_better=higher_is_better)


def estimated_reason(d: EstimatedDrift) -> str:
    """The reason a person reads: the estimate, its interval and the bar."""
    return (f"estimated {d.metric} {d.estimated:.2f} [{d.low:.2f}, {d.high:.2f}], at promotion "
            f"{d.at_promotion:.2f} (tolerance {d.tolerance:g}; no labels)")
