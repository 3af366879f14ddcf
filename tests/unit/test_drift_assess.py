"""The decision rule over all signals, the reasons in words, and `[drift]` settings validation."""

from __future__ import annotations

import dataclasses
import json
import typing

import pytest

from pipelines.config.builder import build_settings
from pipelines.config.drift import DriftSettings, FeatureOverride, MultivariateSettings
from pipelines.drift.concept import performance_drift
from pipelines.drift.decision import assess
from pipelines.drift.results import ConceptDrift, DriftAssessment, FeatureDrift, MultivariateDrift


def feature(name: str, *, drifted: bool, effect: float | None = 0.5, p: float | None = 1e-12) -> FeatureDrift:
    return FeatureDrift(name=name, kind="numeric", test="ks", statistic=0.31, p_value=p, p_adjusted=p,
                        effect=effect, effect_name="wasserstein_sd", drifted=drifted,
                        change="mean moved by +0.80 sd, spread x1.00", rows=1000, alpha=0.05, min_effect=0.1)


def test_no_signal_no_drift_no_reasons() -> None:
    verdict = assess([feature("a", drifted=False, effect=0.01, p=0.4)], None, None,
                     performance_drift("accuracy", 0.9, 0.89, 0.05), DriftSettings())
    assert (verdict.drifted, verdict.reasons) == (False, ())


def test_feature_reason_reads_like_a_sentence() -> None:
    verdict = assess([feature("feat_3", drifted=True)], None, None, None, DriftSettings())
    assert verdict.drifted
    assert verdict.reasons == ("feat_3: mean moved by +0.80 sd, spread x1.00 (KS 0.31, p_adj 1e-12; "
                               "Wasserstein 0.50 sd, min 0.10)",)


def test_categorical_reason_names_unseen_categories() -> None:
    f = FeatureDrift(name="colour", kind="categorical", test="chi2", statistic=61.2, p_value=3e-13,
                     p_adjusted=3e-13, effect=0.09, effect_name="js_distance", drifted=True,
                     unseen_categories=("mauve",), change="'red' share 33% -> 43%", rows=1000, alpha=0.05,
                     min_effect=0.04)
    (reason,) = assess([f], None, None, None, DriftSettings()).reasons
    assert reason == "colour: 'red' share 33% -> 43% (chi2 61.20, p_adj 3e-13; JS 0.09, min 0.04); unseen: 'mauve'"


def test_performance_concept_and_multivariate_reasons() -> None:
    mmd = MultivariateDrift(test="mmd", statistic=0.0123, p_value=0.005, drifted=True, subsample=1000,
                            permutations=200, columns=14)
    concept = ConceptDrift(detector="ddm", drift=True, warning=False, rows_seen=12, state="{}", drift_rows=(312,),
                           block_rows=1000)
    verdict = assess([], mmd, concept, performance_drift("accuracy", 0.91, 0.72, 0.05), DriftSettings())
    assert verdict.drifted
    assert verdict.reasons == (
        "joint distribution of 14 numeric features changed (MMD 0.0123, p 0.005 with 200 permutations)",
        "DDM detected concept drift in the error stream (row 312 of 1000)",
        "accuracy fell from 0.91 to 0.72 (tolerance 0.05)",
    )
    rmse = assess([], None, None, performance_drift("rmse", 1.2, 1.9, 0.1, higher_is_better=False), DriftSettings())
    assert rmse.reasons == ("rmse rose from 1.2 to 1.9 (tolerance 0.1)",)


@pytest.mark.parametrize(("signal", "expected"), [("mmd", True), ("concept", True), ("performance", True),
                                                  ("none", False)])
def test_any_single_signal_makes_the_block_drift(signal: str, expected: bool) -> None:
    mmd = MultivariateDrift(test="mmd", statistic=0.1, p_value=0.001, drifted=signal == "mmd", subsample=10,
                            permutations=999)
    concept = ConceptDrift(detector="adwin", drift=signal == "concept", warning=False, rows_seen=1, state="{}")
    perf = performance_drift("accuracy", 0.9, 0.7 if signal == "performance" else 0.9, 0.05)
    assert assess([], mmd, concept, perf, DriftSettings()).drifted is expected


def test_share_rule_needs_enough_features() -> None:
    features = [feature("a", drifted=True, effect=0.9)] + [feature(n, drifted=False, effect=0.01, p=0.5)
                                                           for n in "bcde"]
    settings = DriftSettings(rule="share", min_share=0.25)
    assert assess(features, None, None, None, settings).drifted is False  # 1 of 5 = 20% < 25%
    features[1] = feature("b", drifted=True, effect=0.7)
    verdict = assess(features, None, None, None, settings)
    assert verdict.drifted
    assert verdict.reasons[0] == "2 of 5 features drifted (40%, rule: share >= 25%)"
    assert assess(features[:1] + features[2:], None, None, None, DriftSettings(rule="any")).drifted


def test_features_come_back_ranked_by_effect_untested_last() -> None:
    features = [feature("low", drifted=False, effect=0.1), feature("none", drifted=False, effect=None, p=None),
                feature("high", drifted=True, effect=2.0)]
    verdict = assess(features, None, None, None, DriftSettings())
    assert [f.name for f in verdict.features] == ["high", "low", "none"]


def test_assessment_is_json_clean() -> None:
    concept = ConceptDrift(detector="adwin", drift=False, warning=False, rows_seen=5, state='{"a": 1}')
    verdict = assess([feature("a", drifted=True)], None, concept, performance_drift("accuracy", 0.9, 0.8, 0.05),
                     DriftSettings())
    assert isinstance(verdict, DriftAssessment)
    json.dumps(dataclasses.asdict(verdict), allow_nan=False)


# --- settings -----------------------------------------------------------------------------------------


def test_defaults_are_valid_and_documented_choices() -> None:
    s = DriftSettings()
    assert (s.reference, s.correction, s.rule, s.concept_detector) == ("champion_training", "bh", "any", "adwin")
    assert (s.alpha, s.numeric_effect, s.min_effect, s.min_effect_categorical) == (0.05, "wasserstein", 0.1, 0.04)
    assert s.multivariate == MultivariateSettings(enabled=True, subsample=1000, permutations=200, alpha=0.01)


def test_field_types_are_ones_the_config_loader_builds() -> None:
    hints = typing.get_type_hints(DriftSettings)
    allowed = (str, int, float, bool)
    for name, hint in hints.items():
        origin = typing.get_origin(hint)
        assert (hint in allowed or origin in (typing.Literal, tuple, dict, typing.Union)
                or dataclasses.is_dataclass(hint) or str(origin) == "<class 'types.UnionType'>"), name


def test_built_from_a_toml_table() -> None:
    table = {"alpha": 0.01, "correction": "bonferroni", "reference": "pinned", "pinned_blocks": ["b1", "b2"],
             "min_effect": 0, "features": {"age": {"test": "cvm", "alpha": 0.001}, "zip": {"test": "off"}},
             "multivariate": {"enabled": False, "permutations": 99, "alpha": 0.05}, "concept_detector": "ddm"}
    s = build_settings(DriftSettings, table, "drift")
    assert s.pinned_blocks == ("b1", "b2") and s.min_effect == 0.0
    assert s.features == {"age": FeatureOverride(test="cvm", alpha=0.001), "zip": FeatureOverride(test="off")}
    assert s.multivariate == MultivariateSettings(enabled=False, subsample=1000, permutations=99, alpha=0.05)


@pytest.mark.parametrize(("changes", "message"), [
    ({"alpha": 0.0}, "alpha is 0.0; allowed: a number in (0, 1)"),
    ({"alpha": 1.5}, "alpha is 1.5; allowed"),
    ({"correction": "holm"}, "correction is 'holm'; allowed: bh, bonferroni, none"),
    ({"reference": "pinned"}, "pinned_blocks is empty; allowed"),
    ({"reference_blocks": 0}, "reference_blocks is 0; allowed: a whole number >= 1"),
    ({"min_effect": -0.1}, "min_effect is -0.1; allowed"),
    ({"min_effect_categorical": 1.5}, "min_effect_categorical is 1.5; allowed: a number in [0, 1]"),
    ({"min_share": 0.0}, "min_share is 0.0; allowed: a number in (0, 1]"),
    ({"min_rows": 1}, "min_rows is 1; allowed"),
    ({"performance_tolerance": -1.0}, "performance_tolerance is -1.0; allowed"),
    ({"concept_detector": "kswin"}, "concept_detector is 'kswin'; allowed"),
])
def test_bad_values_say_what_is_allowed(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        DriftSettings(**changes)


def test_feature_override_validation() -> None:
    with pytest.raises(ValueError, match="test is 'anova'; allowed: ks, cvm"):
        FeatureOverride(test="anova")
    with pytest.raises(ValueError, match="alpha is 2; allowed"):
        FeatureOverride(alpha=2)
