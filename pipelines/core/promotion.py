"""The promotion rule: which candidate, if any, replaces the champion, with a reason that carries the numbers.

Rule: candidates are scored on the same holdout as the champion. Those that miss an absolute threshold
(`thresholds`: a minimum for higher-is-better metrics, a maximum for lower-is-better ones) or lack the primary
metric are not eligible. The best eligible candidate by the primary metric is promoted when it beats the
champion by at least `min_improvement` (direction-aware) and strictly beats it (a tie is not promoted). With no
champion, the best eligible candidate is promoted. Ranking ties between candidates go to the earlier version
in the mapping's order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from pipelines.config.retrain import RetrainSettings
from pipelines.core.metrics import higher_is_better, primary_metric

__all__ = ["PromotionVerdict", "decide_promotion", "threshold_failures"]

_EPS = 1e-12


@dataclass(frozen=True, kw_only=True, slots=True)
class PromotionVerdict:
    """The outcome: the version to promote (or None), why, and every candidate ranked best first."""

    promote: str | None
    reason: str
    metric: str
    ranking: tuple[tuple[str, float], ...]


def threshold_failures(metrics: Mapping[str, float], thresholds: Mapping[str, float]) -> list[str]:
    """Human-readable threshold misses, empty when every threshold is met.

    >>> threshold_failures({"accuracy": 0.7, "log_loss": 0.9}, {"accuracy": 0.8, "log_loss": 0.5})
    ['accuracy 0.700 < minimum 0.8', 'log_loss 0.900 > maximum 0.5']
    """
    failures = []
    for name, bound in thresholds.items():
        value = metrics.get(name)
        if value is None or not math.isfinite(value):
            failures.append(f"{name} not measured (threshold {bound:g})")
        elif higher_is_better(name) and value < bound:
            failures.append(f"{name} {value:.3f} < minimum {bound:g}")
        elif not higher_is_better(name) and value > bound:
            failures.append(f"{name} {value:.3f} > maximum {bound:g}")
    return failures


def _label(version: str, strategies: Mapping[str, str] | None) -> str:
    return f"{version} ({strategies[version]})" if strategies and version in strategies else version


def decide_promotion(
    champion_metrics: Mapping[str, float] | None,
    candidates: Mapping[str, Mapping[str, float]],
    settings: RetrainSettings,
    *,
    task: str | None = None,
    strategies: Mapping[str, str] | None = None,
) -> PromotionVerdict:
    """Apply the promotion rule. `candidates` maps version to its holdout metrics; `strategies` names them.

    Without `task`, the task follows `settings.metric`; when that is unset too, the metrics (accuracy present
    means classification).

    >>> s = RetrainSettings(metric="accuracy", min_improvement=0.01)
    >>> v = decide_promotion({"accuracy": 0.838}, {"v7": {"accuracy": 0.842}}, s, strategies={"v7": "windowed"})
    >>> v.promote, v.reason
    (None, 'best candidate v7 (windowed) accuracy 0.842 does not beat champion 0.838 by 0.01')
    """
    if task is None and settings.metric is not None:
        task = "regression" if settings.metric in ("r2", "mae", "rmse") else "classification"
    elif task is None:
        any_metrics = [*candidates.values(), champion_metrics or {}]
        task = "classification" if any("accuracy" in m for m in any_metrics) else "regression"
    metric = primary_metric(settings, task)  # type: ignore[arg-type]
    sign = 1.0 if higher_is_better(metric) else -1.0

    scored = [
        (v, float(m[metric])) for v, m in candidates.items() if metric in m and math.isfinite(m[metric])
    ]
    order = {v: i for i, v in enumerate(candidates)}
    ranking = tuple(sorted(scored, key=lambda item: (-sign * item[1], order[item[0]])))
    if not candidates:
        return PromotionVerdict(promote=None, reason="no candidates to judge", metric=metric, ranking=())
    if not ranking:
        return PromotionVerdict(
            promote=None, reason=f"no candidate has a {metric} on the holdout", metric=metric, ranking=()
        )

    misses = {v: threshold_failures(candidates[v], settings.thresholds) for v, _ in ranking}
    eligible = [(v, value) for v, value in ranking if not misses[v]]
    if not eligible:
        best, value = ranking[0]
        return PromotionVerdict(
            promote=None,
            reason=f"no candidate meets the thresholds; best candidate {_label(best, strategies)} {metric} "
            f"{value:.3f} misses: {'; '.join(misses[best])}",
            metric=metric,
            ranking=ranking,
        )
    best, value = eligible[0]
    label = _label(best, strategies)
    passed_over = [_label(v, strategies) for v, _ in ranking[: ranking.index(eligible[0])]]
    note = f" (higher-ranked {', '.join(passed_over)} missed thresholds)" if passed_over else ""

    champion = None if champion_metrics is None else champion_metrics.get(metric)
    if champion is None or not math.isfinite(champion):
        why = "there is no champion" if champion_metrics is None else f"the champion has no {metric}"
        return PromotionVerdict(
            promote=best,
            reason=f"promote {label}: {metric} {value:.3f} meets the thresholds and {why}{note}",
            metric=metric,
            ranking=ranking,
        )
    improvement = sign * (value - champion)
    if improvement > _EPS and improvement >= settings.min_improvement - _EPS:
        return PromotionVerdict(
            promote=best,
            reason=f"promote {label}: {metric} {value:.3f} beats champion {champion:.3f} "
            f"by {improvement:.3f} (>= {settings.min_improvement:g}){note}",
            metric=metric,
            ranking=ranking,
        )
    return PromotionVerdict(
        promote=None,
        reason=f"best candidate {label} {metric} {value:.3f} does not beat champion {champion:.3f} "
        f"by {settings.min_improvement:g}{note}",
        metric=metric,
        ranking=ranking,
    )
