"""The promotion rule: beat the champion by min_improvement (direction-aware), meet thresholds, ties lose."""

from __future__ import annotations

import pytest

from pipelines.config.retrain import RetrainSettings
from pipelines.core.promotion import decide_promotion, threshold_failures

ACC = RetrainSettings(metric="accuracy", min_improvement=0.01)


def test_better_candidate_is_promoted_and_the_best_one_wins() -> None:
    v = decide_promotion(
        {"accuracy": 0.80},
        {"v7": {"accuracy": 0.83}, "v8": {"accuracy": 0.85}, "v9": {"accuracy": 0.79}},
        ACC,
        strategies={"v7": "windowed", "v8": "full", "v9": "replay_mix"},
    )
    assert v.promote == "v8"
    assert v.ranking == (("v8", 0.85), ("v7", 0.83), ("v9", 0.79))
    assert v.reason == "promote v8 (full): accuracy 0.850 beats champion 0.800 by 0.050 (>= 0.01)"


def test_improvement_smaller_than_min_improvement_is_rejected_with_the_numbers() -> None:
    v = decide_promotion({"accuracy": 0.838}, {"v7": {"accuracy": 0.842}}, ACC, strategies={"v7": "windowed"})
    assert v.promote is None
    assert v.reason == "best candidate v7 (windowed) accuracy 0.842 does not beat champion 0.838 by 0.01"


def test_exactly_min_improvement_counts_despite_float_rounding() -> None:
    assert decide_promotion({"accuracy": 0.838}, {"v2": {"accuracy": 0.848}}, ACC).promote == "v2"


def test_worse_candidate_is_rejected() -> None:
    assert decide_promotion({"accuracy": 0.9}, {"v2": {"accuracy": 0.7}}, ACC).promote is None


def test_a_tie_is_not_promoted_even_with_zero_min_improvement() -> None:
    zero = RetrainSettings(metric="accuracy", min_improvement=0.0)
    v = decide_promotion({"accuracy": 0.9}, {"v2": {"accuracy": 0.9}}, zero)
    assert v.promote is None and "does not beat champion 0.900" in v.reason
    assert decide_promotion({"accuracy": 0.9}, {"v2": {"accuracy": 0.9001}}, zero).promote == "v2"


def test_below_threshold_is_not_eligible_and_the_next_best_is_considered() -> None:
    s = RetrainSettings(metric="accuracy", min_improvement=0.01, thresholds={"f1_minority": 0.5})
    only_bad = decide_promotion(
        {"accuracy": 0.7}, {"v3": {"accuracy": 0.9, "f1_minority": 0.2}}, s, strategies={"v3": "full"}
    )
    assert only_bad.promote is None
    assert only_bad.reason == (
        "no candidate meets the thresholds; best candidate v3 (full) accuracy 0.900 misses: "
        "f1_minority 0.200 < minimum 0.5"
    )
    mixed = decide_promotion(
        {"accuracy": 0.7},
        {"v3": {"accuracy": 0.9, "f1_minority": 0.2}, "v4": {"accuracy": 0.8, "f1_minority": 0.6}},
        s,
    )
    assert mixed.promote == "v4" and "higher-ranked v3 missed thresholds" in mixed.reason


def test_lower_is_better_metric_promotes_the_smaller_value() -> None:
    s = RetrainSettings(metric="rmse", min_improvement=0.1)
    v = decide_promotion({"rmse": 2.0}, {"v2": {"rmse": 1.95}, "v3": {"rmse": 1.5}, "v4": {"rmse": 2.5}}, s)
    assert v.promote == "v3" and v.ranking[0] == ("v3", 1.5) and v.ranking[-1] == ("v4", 2.5)
    assert "beats champion 2.000 by 0.500" in v.reason
    assert decide_promotion({"rmse": 2.0}, {"v2": {"rmse": 1.95}}, s).promote is None
    capped = RetrainSettings(metric="log_loss", thresholds={"log_loss": 0.4})
    assert threshold_failures({"log_loss": 0.5}, capped.thresholds) == ["log_loss 0.500 > maximum 0.4"]
    assert decide_promotion(None, {"v1": {"log_loss": 0.5, "accuracy": 0.9}}, capped).promote is None


def test_no_champion_promotes_the_best_candidate_meeting_thresholds() -> None:
    s = RetrainSettings(thresholds={"r2": 0.5})
    v = decide_promotion(None, {"v1": {"r2": 0.4}, "v2": {"r2": 0.6}, "v3": {"r2": 0.55}}, s)
    assert (v.metric, v.promote) == ("r2", "v2")
    assert v.reason == "promote v2: r2 0.600 meets the thresholds and there is no champion"


def test_default_metric_follows_the_task() -> None:
    cls = decide_promotion(
        {"accuracy": 0.5, "log_loss": 0.1}, {"v2": {"accuracy": 0.7, "log_loss": 0.9}}, RetrainSettings()
    )
    assert (cls.metric, cls.promote) == ("accuracy", "v2")
    with pytest.raises(ValueError, match="does not apply to classification"):
        decide_promotion(None, {"v1": {"accuracy": 0.5}}, RetrainSettings(metric="r2"), task="classification")


def test_candidates_without_the_metric_are_left_out_of_the_ranking() -> None:
    s = RetrainSettings(metric="roc_auc")
    v = decide_promotion(None, {"v1": {"accuracy": 0.9}, "v2": {"accuracy": 0.8, "roc_auc": 0.7}}, s)
    assert v.promote == "v2" and v.ranking == (("v2", 0.7),)
    assert decide_promotion(None, {}, s).promote is None
