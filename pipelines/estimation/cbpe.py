"""Confidence-based performance estimation (CBPE): a classifier's metrics on a block before its labels come.

The reasoning (NannyML's CBPE): when the calibrated probability of class `t` for a row is `q[t]`, and the model
predicted `p`, that row adds `q[t]` to cell `(t, p)` of the *expected* confusion matrix. Every metric built on
the confusion matrix (accuracy, balanced accuracy, F1) is then computed from the expected one, and ROC AUC from
the expected true and false positive rates at each threshold of the model's own scores.

The interval is the sampling error of the block's size: labels are drawn from the calibrated probabilities
(`draws` times, seeded), each draw's metrics are computed as the realised ones would be, and the interval is
their central `level` range. With good calibration the realised metric falls inside it `level` of the time.

What it cannot see: a change of the rule that maps features to labels (concept shift) leaves the probabilities
where they were, so the estimate stays put while the realised performance falls. That is what the late labels'
`PerformanceMeasured` is for (docs/estimation.md).

>>> import numpy as np
>>> q = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])   # calibrated P(class) per row
>>> est = estimate_performance(q, q, np.array([0, 0, 1, 1]), np.array([0, 1]), seed=0)
>>> round(est.metrics["accuracy"], 3)     # (0.9 + 0.8 + 0.7 + 0.6) / 4
0.75
>>> lo, hi = est.interval["accuracy"]; lo <= 0.75 <= hi
True
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

__all__ = ["DRAWS", "Estimate", "estimate_performance", "expected_confusion"]

DRAWS = 300  # label draws behind each interval: its ends move by about 0.1 point between seeds at 1,000 rows
LEVEL = 0.95
CHUNK_VALUES = 4_000_000  # label draws held at once, in values (rows x classes x draws)


@dataclass(frozen=True, slots=True)
class Estimate:
    """Estimated metrics of a block, each with its interval, from `rows` rows and `draws` label draws."""

    metrics: dict[str, float]
    interval: dict[str, tuple[float, float]]
    rows: int
    draws: int


def expected_confusion(proba: np.ndarray, predicted_index: np.ndarray, k: int) -> np.ndarray:
    """The expected confusion matrix: `C[t, p]` sums the probability of true class `t` over rows predicted `p`.

    >>> expected_confusion(np.array([[0.9, 0.1], [0.3, 0.7]]), np.array([0, 1]), 2).tolist()
    [[0.9, 0.3], [0.1, 0.7]]
    """
    matrix = np.zeros((k, k))
    for p in range(k):
        matrix[:, p] = proba[predicted_index == p].sum(axis=0)
    return matrix


def estimate_performance(calibrated: np.ndarray, scores: np.ndarray | None, predicted: np.ndarray,
                         classes: np.ndarray, *, seed: int, draws: int = DRAWS,
                         level: float = LEVEL) -> Estimate:
    """Estimate accuracy, balanced accuracy, macro F1, and (binary) minority-class F1 and ROC AUC.

    `calibrated`: the calibrated probability of each class per row (columns in `classes` order); `scores`: the
    model's own probabilities (ROC AUC ranks rows by them, as the realised metric does; None: no AUC);
    `predicted`: the model's predicted labels.
    """
    n, k = calibrated.shape
    if n == 0:
        raise ValueError("cannot estimate on an empty block; allowed: a block with at least one row")
    index = {c: i for i, c in enumerate(classes)}
    pred = np.array([index[p] for p in predicted])
    q = np.clip(calibrated, 0.0, None)
    q = q / q.sum(axis=1, keepdims=True)
    matrix = expected_confusion(q, pred, k)
    metrics = confusion_metrics(matrix)
    samples: dict[str, list[float]] = {name: [] for name in metrics}
    auc = expected_auc(q, scores, k) if scores is not None else None
    if auc is not None:
        metrics["roc_auc"] = auc
        samples["roc_auc"] = []
    for drawn in draw_labels(q, draws, seed):  # chunks of (draws, n) class indices
        for labels in drawn:
            for name, value in confusion_metrics(counted_confusion(labels, pred, k)).items():
                if name in samples:
                    samples[name].append(value)
        if auc is not None:
            samples["roc_auc"].extend(drawn_auc(drawn, scores, k))
    low, high = (1.0 - level) / 2 * 100, (1.0 + level) / 2 * 100
    interval = {}
    for name in list(metrics):
        values = np.asarray([v for v in samples.get(name, []) if np.isfinite(v)])
        if len(values) < draws // 2:  # the metric is undefined in most draws: no interval to give
            del metrics[name]
            continue
        lo, hi = np.percentile(values, [low, high])
        interval[name] = (float(min(lo, metrics[name])), float(max(hi, metrics[name])))
    return Estimate(metrics={m: float(v) for m, v in metrics.items()}, interval=interval, rows=n, draws=draws)


def confusion_metrics(matrix: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro F1 and (two classes) the minority class's F1 of a confusion matrix
    (rows: true class, columns: predicted), as scikit-learn computes them from counts.

    >>> confusion_metrics(np.array([[8.0, 2.0], [1.0, 4.0]]))["f1_minority"]
    0.7272727272727273
    """
    total = matrix.sum()
    tp = np.diag(matrix)
    true = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    present = (true + predicted) > 1e-12  # scikit-learn's macro F1 averages the labels seen in y or y_pred
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(present, 2 * tp / (true + predicted), 0.0)
        recall = tp / true
    out = {"accuracy": float(tp.sum() / total), "f1_macro": float(f1[present].mean())}
    seen = true > 1e-12
    if seen.sum() >= 2:
        out["balanced_accuracy"] = float(recall[seen].mean())
    if len(matrix) == 2 and seen.all():
        minority = 0 if true[0] < true[1] else 1  # a tie goes to the second class, as in `evaluate`
        out["f1_minority"] = float(f1[minority])
    return out


def counted_confusion(labels: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """The confusion matrix of one draw of labels (class indices)."""
    return np.bincount(labels * k + pred, minlength=k * k).reshape(k, k).astype(float)


def draw_labels(q: np.ndarray, draws: int, seed: int) -> Iterator[np.ndarray]:
    """`draws` label vectors, each row's class drawn from its calibrated probabilities, in chunks of at most
    `CHUNK_VALUES` values (a block of a million rows does not hold every draw at once)."""
    rng = np.random.default_rng(seed)
    cumulative = np.cumsum(q, axis=1)
    cumulative[:, -1] = 1.0
    step = max(1, CHUNK_VALUES // max(1, q.size))
    for start in range(0, draws, step):
        u = rng.random((min(step, draws - start), len(q)))
        yield (u[:, :, None] > cumulative[None, :, :]).sum(axis=2)


def expected_auc(q: np.ndarray, scores: np.ndarray, k: int) -> float | None:
    """ROC AUC from the expected true and false positive rates at each threshold of `scores` (binary: the
    second class's score; more classes: the one-vs-rest macro average, as `evaluate` computes it)."""
    columns = [1] if k == 2 else range(k)
    values = []
    for c in columns:
        positive = q[:, c]
        if positive.sum() <= 1e-12 or (1 - positive).sum() <= 1e-12:
            return None
        values.append(_expected_auc_one(positive, scores[:, c]))
    return float(np.mean(values))


def _expected_auc_one(positive: np.ndarray, score: np.ndarray) -> float:
    order = np.argsort(-score, kind="stable")
    s, p = score[order], positive[order]
    ends = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # last row of each group of tied scores
    tp = np.r_[0.0, np.cumsum(p)[ends]]
    fp = np.r_[0.0, np.cumsum(1 - p)[ends]]
    return float(np.trapezoid(tp / tp[-1], fp / fp[-1]))


def drawn_auc(drawn: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """Each draw's realised ROC AUC by the rank-sum formula (tied scores share their average rank); NaN when a
    draw lacks a class."""
    columns = [1] if k == 2 else range(k)
    per_class = []
    for c in columns:
        ranks = rankdata(scores[:, c])
        positive = drawn == c
        n1 = positive.sum(axis=1).astype(float)
        n0 = drawn.shape[1] - n1
        with np.errstate(divide="ignore", invalid="ignore"):
            per_class.append((positive @ ranks - n1 * (n1 + 1) / 2) / (n1 * n0))
    return np.mean(per_class, axis=0)
