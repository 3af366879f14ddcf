"""Per-feature drift tests: pinned statistics, effect sizes, corrections, the min-effect gate, edge cases."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
from frouros.detectors.data_drift import ChiSquareTest

from pipelines.config.drift import DriftSettings, FeatureOverride
from pipelines.drift.features import (
    adjust_p_values,
    category_counts,
    check_features,
    fit_reference,
    ks_statistic,
    wasserstein_sorted,
)

SMALL = DriftSettings(min_rows=5)


def by_name(features):
    return {f.name: f for f in features}


def run(ref: pd.DataFrame, block: pd.DataFrame, numeric=(), categorical=(), settings=SMALL):
    return by_name(check_features(fit_reference(ref, numeric, categorical, settings), block, settings))


def assert_json_clean(feature) -> None:
    json.dumps(dataclasses.asdict(feature), allow_nan=False)


# --- pinned statistics --------------------------------------------------------------------------------


def test_numeric_ks_statistic_and_p_value_are_pinned() -> None:
    ref = pd.DataFrame({"x": np.arange(10.0)})
    block = pd.DataFrame({"x": np.arange(5.0, 15.0)})
    f = run(ref, block, numeric=["x"])["x"]
    assert (f.kind, f.test, f.rows) == ("numeric", "ks", 10)
    assert f.statistic == 0.5  # half of the block lies above the whole reference
    assert f.p_value == pytest.approx(0.16782134274394334, rel=1e-12)  # exact two-sided p, n = m = 10
    assert f.p_adjusted == f.p_value  # a single feature: nothing to correct
    assert f.drifted is False  # p 0.17 > alpha 0.05, whatever the effect
    assert f.effect == pytest.approx(5.0 / np.std(np.arange(10.0), ddof=1))  # shifted by 5, sd 3.03
    assert f.effect_name == "wasserstein_sd"
    assert f.change == "mean moved by +1.65 sd, spread x1.00"


def test_wasserstein_effect_is_the_shift_in_reference_sds() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(10, 2, size=4000)
    ref, block = pd.DataFrame({"x": values}), pd.DataFrame({"x": values + 1.0})
    f = run(ref, block, numeric=["x"])["x"]
    assert f.effect == pytest.approx(1.0 / np.std(values, ddof=1), rel=1e-9)  # a pure shift moves every quantile
    assert f.drifted is True


def test_ks_effect_option_uses_the_ks_statistic() -> None:
    ref = pd.DataFrame({"x": np.arange(10.0)})
    block = pd.DataFrame({"x": np.arange(5.0, 15.0)})
    settings = DriftSettings(min_rows=5, numeric_effect="ks")
    f = run(ref, block, numeric=["x"], settings=settings)["x"]
    assert (f.effect, f.effect_name) == (0.5, "ks_statistic")


def test_ks_statistic_helper_matches_scipy() -> None:
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(2)
    a, b = rng.normal(size=300), rng.normal(0.3, 1.2, size=200)
    assert ks_statistic(np.sort(a), b) == pytest.approx(ks_2samp(a, b).statistic, abs=1e-12)


@pytest.mark.parametrize("case", range(12))
def test_wasserstein_from_the_sorted_reference_is_scipys_to_the_last_bit(case: int) -> None:
    from scipy.stats import wasserstein_distance

    rng = np.random.default_rng(case)
    n, m = rng.integers(20, 3000, size=2)
    if case % 3 == 0:  # many ties, inside and across the samples
        ref, block = rng.integers(0, 8, n).astype(float), rng.integers(0, 10, m).astype(float)
    elif case % 3 == 1:
        ref, block = rng.exponential(size=n), rng.exponential(1.3, size=m)
    else:  # a few values in both samples
        ref, block = rng.normal(size=n), rng.normal(0.2, 1.1, size=m)
        ref[:5] = block[:5] = 0.0
    assert wasserstein_sorted(np.sort(ref), block) == wasserstein_distance(ref, block)


def test_categorical_chi_square_matches_frouros_and_js_is_pinned() -> None:
    ref = pd.DataFrame({"c": ["a"] * 50 + ["b"] * 50})
    block = pd.DataFrame({"c": ["a"] * 80 + ["b"] * 20})
    f = run(ref, block, categorical=["c"])["c"]
    # 2x2 table with Yates' correction: |O - E| = 15 in every cell, expected 65 / 35
    assert f.statistic == pytest.approx((15 - 0.5) ** 2 * (2 / 65 + 2 / 35), rel=1e-12)
    frouros = ChiSquareTest()
    frouros.fit(X=ref["c"].to_numpy())
    expected = frouros.compare(X=block["c"].to_numpy())[0]
    assert (f.statistic, f.p_value) == (pytest.approx(expected.statistic, rel=1e-12),
                                        pytest.approx(expected.p_value, rel=1e-12))
    p, q = np.array([0.5, 0.5]), np.array([0.8, 0.2])
    m = (p + q) / 2
    js = math.sqrt((np.sum(p * np.log2(p / m)) + np.sum(q * np.log2(q / m))) / 2)
    assert (f.effect, f.effect_name) == (pytest.approx(js, rel=1e-12), "js_distance")
    assert f.change == "'a' share 50% -> 80%"
    assert f.drifted is True


def test_categorical_with_three_categories_matches_frouros() -> None:
    ref = pd.DataFrame({"c": ["a"] * 60 + ["b"] * 30 + ["c"] * 10})
    block = pd.DataFrame({"c": ["a"] * 20 + ["b"] * 20 + ["c"] * 15 + ["d"] * 5})
    f = run(ref, block, categorical=["c"])["c"]
    frouros = ChiSquareTest()
    frouros.fit(X=ref["c"].to_numpy())
    expected = frouros.compare(X=block["c"].to_numpy())[0]
    assert f.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert f.p_value == pytest.approx(expected.p_value, rel=1e-12)


# --- edge cases ---------------------------------------------------------------------------------------


def test_constant_reference_column() -> None:
    ref = pd.DataFrame({"x": np.full(200, 3.0)})
    same = run(ref, pd.DataFrame({"x": np.full(50, 3.0)}), numeric=["x"])["x"]
    assert "reference column is constant (3)" in same.note
    assert (same.effect, same.effect_name, same.drifted) == (0.0, "ks_statistic", False)
    moved = run(ref, pd.DataFrame({"x": [3.0] * 30 + [4.0] * 20}), numeric=["x"])["x"]
    assert moved.effect == pytest.approx(0.4)  # 40% of the block differs from the constant
    assert moved.drifted is True
    assert moved.change == "40% of block values differ from the constant 3"
    assert_json_clean(moved)


def test_all_missing_block_column_is_reported_not_tested() -> None:
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"x": rng.normal(size=100), "c": rng.choice(["a", "b"], 100)})
    block = pd.DataFrame({"x": [np.nan] * 40, "c": [None] * 40})
    features = run(ref, block, numeric=["x"], categorical=["c"])
    for name in ("x", "c"):
        f = features[name]
        assert f.note == "block column is all missing; not tested"
        assert (f.p_value, f.p_adjusted, f.effect, f.drifted, f.rows) == (None, None, None, False, 0)
        assert_json_clean(f)


def test_missing_values_are_dropped_before_testing() -> None:
    rng = np.random.default_rng(4)
    values = rng.normal(size=500)
    ref = pd.DataFrame({"x": values})
    block = pd.DataFrame({"x": np.concatenate([values[:200], [np.nan] * 100, [np.inf]])})
    f = run(ref, block, numeric=["x"])["x"]
    assert f.rows == 200
    assert f.drifted is False


def test_single_category_in_reference_and_block() -> None:
    ref = pd.DataFrame({"c": ["only"] * 100})
    f = run(ref, pd.DataFrame({"c": ["only"] * 30}), categorical=["c"])["c"]
    assert (f.statistic, f.p_value, f.effect, f.drifted) == (0.0, 1.0, 0.0, False)
    assert f.note == "single category ('only') in reference and block"


def test_single_reference_category_against_new_ones() -> None:
    ref = pd.DataFrame({"c": ["only"] * 100})
    f = run(ref, pd.DataFrame({"c": ["only"] * 10 + ["new"] * 20}), categorical=["c"])["c"]
    assert f.unseen_categories == ("new",)
    assert f.note == "reference has a single category ('only')"
    assert f.drifted is True


def test_unseen_categories_are_reported() -> None:
    ref = pd.DataFrame({"c": ["a", "b"] * 100})
    block = pd.DataFrame({"c": ["a", "b"] * 20 + ["zeta", "eta", "zeta"]})
    f = run(ref, block, categorical=["c"])["c"]
    assert f.unseen_categories == ("eta", "zeta")
    assert "2 unseen categories hold 7% of the block" in f.change
    assert_json_clean(f)


def test_a_block_of_five_rows_is_not_tested() -> None:
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"x": rng.normal(size=500), "c": rng.choice(["a", "b"], 500)})
    block = pd.DataFrame({"x": rng.normal(5, 1, size=5), "c": ["a"] * 5})
    features = check_features(fit_reference(ref, ["x"], ["c"], DriftSettings()), block, DriftSettings())
    assert [f.drifted for f in features] == [False, False]
    for f in features:
        assert f.note == "only 5 non-missing values in the block (minimum 20); not tested"
        assert (f.p_value, f.rows) == (None, 5)


def test_a_short_reference_column_is_not_tested() -> None:
    ref = pd.DataFrame({"x": [1.0, 2.0, np.nan, np.nan]})
    f = run(ref, pd.DataFrame({"x": np.arange(30.0)}), numeric=["x"])["x"]
    assert f.note == "reference has only 2 non-missing values (minimum 5); not tested"
    assert f.p_value is None


def test_column_missing_from_the_block() -> None:
    ref = pd.DataFrame({"x": np.arange(50.0), "y": np.arange(50.0)})
    f = run(ref, pd.DataFrame({"y": np.arange(50.0)}), numeric=["x", "y"])["x"]
    assert f.note == "column missing from the block; not tested"


def test_integer_categories_match_float_categories_with_missing_values() -> None:
    ref = pd.DataFrame({"code": [1, 2, 3] * 40})
    block = pd.DataFrame({"code": [1.0, 2.0, 3.0, np.nan] * 10})  # NaN turns the column into floats
    f = run(ref, block, categorical=["code"])["code"]
    assert f.unseen_categories == ()
    assert f.rows == 30
    assert category_counts(pd.Series([True, False, True])) == {"True": 2, "False": 1}


def test_pandas_extension_dtypes() -> None:
    ref = pd.DataFrame({"n": pd.array([1, 2, None, 4] * 25, dtype="Int64"),
                        "c": pd.Categorical(["a", "b"] * 50, categories=["a", "b", "never"])})
    block = pd.DataFrame({"n": pd.array([1, 2, 3, None] * 10, dtype="Int64"),
                          "c": pd.Categorical(["a", "b"] * 20, categories=["a", "b", "never", "also_never"])})
    features = run(ref, block, numeric=["n"], categorical=["c"])
    assert (features["n"].rows, features["c"].rows) == (30, 40)
    assert features["c"].unseen_categories == ()  # unused categories of the dtype are not values
    assert features["c"].p_value == pytest.approx(1.0)


# --- corrections and the min-effect gate ---------------------------------------------------------------


def test_adjusted_p_values() -> None:
    p = [0.01, 0.02, 0.03, 0.04, 0.5]
    assert adjust_p_values(p, "bh") == pytest.approx([0.05, 0.05, 0.05, 0.05, 0.5])
    assert adjust_p_values(p, "bonferroni") == pytest.approx([0.05, 0.1, 0.15, 0.2, 1.0])
    assert adjust_p_values(p, "none") == p
    assert adjust_p_values([], "bh") == []
    with pytest.raises(ValueError, match="allowed: bh, bonferroni, none"):
        adjust_p_values(p, "holm")


def test_benjamini_hochberg_flags_more_than_bonferroni() -> None:
    rng = np.random.default_rng(11)  # seed where the two corrections disagree
    ref = pd.DataFrame({f"f{i}": rng.normal(size=3000) for i in range(10)})
    block = pd.DataFrame({f"f{i}": rng.normal(0.3 if i < 4 else 0.0, 1, size=250) for i in range(10)})
    results = {}
    for correction in ("bh", "bonferroni", "none"):
        settings = DriftSettings(correction=correction)
        results[correction] = by_name(check_features(fit_reference(ref, list(ref), [], settings), block, settings))
    drifted = {k: sorted(n for n, f in v.items() if f.drifted) for k, v in results.items()}
    assert drifted["bh"] == ["f1", "f2", "f3"]
    assert drifted["bonferroni"] == ["f3"]
    assert set(drifted["bonferroni"]) <= set(drifted["bh"]) <= set(drifted["none"])
    for name, f in results["bonferroni"].items():
        assert f.p_adjusted == pytest.approx(min(1.0, f.p_value * 10))
        assert results["bh"][name].p_adjusted <= f.p_adjusted
        assert results["none"][name].p_adjusted == f.p_value


def test_min_effect_gate_keeps_a_trivial_shift_in_a_large_block_quiet() -> None:
    rng = np.random.default_rng(6)
    ref = pd.DataFrame({"x": rng.normal(size=200_000)})
    block = pd.DataFrame({"x": rng.normal(0.05, 1, size=200_000)})
    gated = run(ref, block, numeric=["x"], settings=DriftSettings())["x"]
    assert gated.p_adjusted < 1e-10  # the test alone would call it drift
    assert gated.effect == pytest.approx(0.05, abs=0.01)
    assert gated.effect < DriftSettings().min_effect
    assert gated.drifted is False
    ungated = run(ref, block, numeric=["x"], settings=DriftSettings(min_effect=0.0))["x"]
    assert ungated.drifted is True


def test_categorical_min_effect_gate() -> None:
    rng = np.random.default_rng(7)
    ref = pd.DataFrame({"c": rng.choice(["a", "b", "c"], 200_000)})
    block = pd.DataFrame({"c": rng.choice(["a", "b", "c"], 200_000, p=[0.35, 0.33, 0.32])})
    f = run(ref, block, categorical=["c"], settings=DriftSettings())["c"]
    assert f.p_adjusted < 1e-10
    assert f.effect < DriftSettings().min_effect_categorical
    assert f.drifted is False


# --- overrides, ranking, validation ----------------------------------------------------------------------


def test_per_feature_overrides() -> None:
    rng = np.random.default_rng(8)
    n = 2000
    ref = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "code": rng.integers(0, 4, n),
                        "skip": rng.normal(size=n), "grade": rng.choice(["1", "2", "3"], n)})
    block = pd.DataFrame({"a": rng.normal(0.3, 1, size=500), "b": rng.normal(0.3, 1, size=500),
                          "code": rng.integers(0, 4, 500), "skip": rng.normal(9, 1, size=500),
                          "grade": rng.choice(["1", "2", "3"], 500)})
    settings = DriftSettings(features={
        "a": FeatureOverride(min_effect=0.5),  # a 0.3 sd shift passes the test but not this gate
        "b": FeatureOverride(test="cvm", alpha=0.01),
        "code": FeatureOverride(test="chi2"),  # integer codes as categories
        "skip": FeatureOverride(test="off"),
        "grade": FeatureOverride(test="ks"),  # string digits read as numbers
    })
    reference = fit_reference(ref, ["a", "b", "code", "skip"], ["grade"], settings)
    assert reference.numeric == ("a", "b", "grade") and reference.categorical == ("code",)
    features = by_name(check_features(reference, block, settings))
    assert "skip" not in features
    assert (features["a"].min_effect, features["a"].drifted) == (0.5, False)
    assert features["a"].p_adjusted < 0.05
    assert (features["b"].test, features["b"].alpha, features["b"].drifted) == ("cvm", 0.01, True)
    assert (features["code"].kind, features["code"].test) == ("categorical", "chi2")
    assert (features["grade"].kind, features["grade"].test) == ("numeric", "ks")


def test_features_are_ranked_by_effect() -> None:
    rng = np.random.default_rng(9)
    ref = pd.DataFrame({n: rng.normal(size=1000) for n in "abc"})
    block = pd.DataFrame({"a": rng.normal(0.2, 1, 400), "b": rng.normal(1.0, 1, 400), "c": rng.normal(0.5, 1, 400)})
    features = check_features(fit_reference(ref, list("abc"), [], DriftSettings()), block, DriftSettings())
    assert [f.name for f in features] == ["b", "c", "a"]


def test_reference_is_subsampled_with_the_seed() -> None:
    ref = pd.DataFrame({"x": np.arange(1000.0)})
    settings = DriftSettings(max_reference_rows=100)
    one = fit_reference(ref, ["x"], [], settings, seed=1)
    assert one.rows == 100
    assert one.note == "reference subsampled from 1000 to 100 rows (seed 1)"
    again, other = fit_reference(ref, ["x"], [], settings, seed=1), fit_reference(ref, ["x"], [], settings, seed=2)
    assert np.array_equal(one.columns[0].sorted_values, again.columns[0].sorted_values)
    assert not np.array_equal(one.columns[0].sorted_values, other.columns[0].sorted_values)


def test_fit_reference_rejects_bad_columns() -> None:
    ref = pd.DataFrame({"x": [1.0, 2.0], "s": ["a", "b"]})
    with pytest.raises(ValueError, match="reference has no column 'nope'"):
        fit_reference(ref, ["x", "nope"], [], DriftSettings())
    with pytest.raises(ValueError, match="listed more than once: x"):
        fit_reference(ref, ["x"], ["x"], DriftSettings())
    with pytest.raises(ValueError, match="drift.features names 'typo'"):
        fit_reference(ref, ["x"], [], DriftSettings(features={"typo": FeatureOverride(alpha=0.01)}))
    with pytest.raises(ValueError, match="column 's' in the reference holds values that are not numbers"):
        fit_reference(ref, ["s"], [], DriftSettings())


def test_results_are_json_clean_for_every_case() -> None:
    rng = np.random.default_rng(10)
    ref = pd.DataFrame({"x": rng.normal(size=300), "k": np.ones(300), "c": rng.choice(["a", "b"], 300)})
    block = pd.DataFrame({"x": rng.normal(1, 1, size=100), "k": np.full(100, np.nan), "c": ["q"] * 100})
    for f in check_features(fit_reference(ref, ["x", "k"], ["c"], DriftSettings()), block, DriftSettings()):
        assert_json_clean(f)
