"""The MMD test: Frouros' statistic, the permutation p-value, seeding and column handling."""

from __future__ import annotations

import dataclasses
import json
from functools import partial

import numpy as np
import pandas as pd
import pytest
from frouros.detectors.data_drift import MMD
from frouros.utils.kernels import rbf_kernel
from scipy.spatial.distance import cdist

from pipelines.config.drift import DriftSettings, MultivariateSettings
from pipelines.drift.multivariate import (
    STOP_AFTER,
    _median_pair,
    _permuted_mmd,
    check_multivariate,
    mmd_test,
    permutation_p_value,
    stop_after,
)


def test_permuted_statistics_equal_frouros_mmd_on_the_same_splits() -> None:
    rng = np.random.default_rng(0)
    pooled = rng.normal(size=(70, 3))
    kernel = np.exp(-cdist(pooled, pooled, "sqeuclidean") / 2.0)  # sigma = 1, Frouros' default
    row_sums = kernel.sum(axis=1)
    permuted = _permuted_mmd(kernel, 40, 5, np.random.default_rng(1), row_sums, row_sums.sum())
    replay = np.random.default_rng(1)
    for j in range(5):
        mask = np.zeros(70, dtype=bool)
        mask[replay.permutation(70)[:40]] = True
        expected = MMD._mmd(pooled[mask], pooled[~mask], kernel=rbf_kernel)
        assert permuted[j] == pytest.approx(expected, abs=1e-12)


def test_statistic_is_frouros_mmd_with_the_median_bandwidth() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(60, 2)), rng.normal(0.5, 1, size=(50, 2))
    result = mmd_test(x, y, subsample=1000, permutations=99, alpha=0.05, seed=3)
    pooled = np.concatenate([x, y])
    distances = cdist(pooled, pooled)[np.triu_indices(110, k=1)]
    assert result.bandwidth == pytest.approx(np.sqrt(np.median(distances**2)), rel=1e-12)
    detector = MMD(kernel=partial(rbf_kernel, sigma=result.bandwidth))
    detector.fit(X=x)
    assert result.statistic == pytest.approx(detector.compare(X=y)[0].distance, rel=1e-12)
    assert (result.subsample, result.permutations, result.columns) == (1000, 99, 2)


@pytest.mark.parametrize("size", [7, 8, 9, 1000, 1001])
def test_the_median_of_the_pairs_is_numpys(size: int) -> None:
    values = np.random.default_rng(size).exponential(size=size)
    assert _median_pair(values) == np.median(values)  # exactly: old events' bandwidths are re-run with it
    assert _median_pair(np.r_[np.zeros(size), values[:size // 2]]) == np.median(values[:size // 2])


def test_a_fixed_count_p_value_counts_every_permutation() -> None:
    rng = np.random.default_rng(4)
    same = mmd_test(rng.normal(size=(400, 4)), rng.normal(size=(400, 4)), subsample=300, permutations=199,
                    alpha=0.01, seed=5, stop_early=False)
    moved = mmd_test(rng.normal(size=(400, 4)), rng.normal(0.4, 1, size=(400, 4)), subsample=300,
                     permutations=199, alpha=0.01, seed=5, stop_early=False)
    for result in (same, moved):
        assert (result.p_value * 200) == pytest.approx(round(result.p_value * 200), abs=1e-9)  # (1 + k) / 200
        assert result.permutations_used is None  # the rule of events recorded before early stopping
    assert same.drifted is False and same.p_value > 0.05
    assert moved.drifted is True and moved.p_value == 1 / 200


def test_a_sequential_p_value_stops_a_quiet_block_early_and_runs_a_drifted_one_to_the_end() -> None:
    rng = np.random.default_rng(4)
    same = mmd_test(rng.normal(size=(400, 4)), rng.normal(size=(400, 4)), subsample=300, permutations=199,
                    alpha=0.01, seed=5)
    moved = mmd_test(rng.normal(size=(400, 4)), rng.normal(0.4, 1, size=(400, 4)), subsample=300,
                     permutations=199, alpha=0.01, seed=5)
    assert STOP_AFTER <= same.permutations_used < 199
    assert same.p_value == STOP_AFTER / same.permutations_used and same.drifted is False
    assert (moved.permutations_used, moved.p_value, moved.drifted) == (199, 1 / 200, True)


def test_sequential_and_fixed_count_tests_decide_alike_at_every_level() -> None:
    """The observed value swept across the permutation distribution: every p-value from tiny to large."""
    rng = np.random.default_rng(13)
    pooled = rng.normal(size=(120, 3))
    kernel = np.exp(-cdist(pooled, pooled, "sqeuclidean") / 6.0)
    null = _permuted_mmd(kernel, 60, 2000, np.random.default_rng(0), kernel.sum(axis=1), kernel.sum())
    stopped = 0
    for observed in np.quantile(null, np.linspace(0.5, 1.0, 40)):
        for permutations, alpha in ((199, 0.01), (99, 0.05), (100, 0.05), (299, 0.02)):
            fixed = permutation_p_value(kernel, 60, observed, permutations, np.random.default_rng(1), stop_after=None)
            h = stop_after(permutations, alpha)
            p, used = permutation_p_value(kernel, 60, observed, permutations, np.random.default_rng(1), stop_after=h)
            assert (p <= alpha) == (fixed[0] <= alpha)
            if used == permutations:
                assert p == fixed[0]  # not stopped: the very same count
            else:
                stopped += 1
                assert p == h / used and p > alpha
    assert stopped > 60, "most of the sweep must stop early, or this test proves little"


def test_stop_after_keeps_a_stopped_test_above_alpha(monkeypatch: pytest.MonkeyPatch) -> None:
    import pipelines.drift.multivariate as mv

    monkeypatch.setattr(mv, "STOP_AFTER", 1)
    for permutations, alpha in ((100, 0.05), (100, 0.07), (199, 0.01), (1000, 0.003), (19, 0.05)):
        h = mv.stop_after(permutations, alpha)
        assert h / permutations > alpha and (h - 1) / permutations <= alpha + 1e-12


def test_a_change_in_correlation_alone_is_seen() -> None:
    rng = np.random.default_rng(6)
    ref = rng.normal(size=(600, 2))
    z = rng.normal(size=600)
    coupled = np.column_stack([z, 0.9 * z + np.sqrt(1 - 0.81) * rng.normal(size=600)])  # same marginals
    result = mmd_test(ref, coupled, subsample=500, permutations=199, alpha=0.01, seed=7)
    assert result.drifted is True


def test_seeded_and_leaves_numpy_global_state_alone() -> None:
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(3000, 3)), rng.normal(size=(3000, 3))
    before = np.random.get_state()[1].copy()
    one = mmd_test(x, y, subsample=200, permutations=99, alpha=0.01, seed=9)
    assert np.array_equal(np.random.get_state()[1], before)
    assert mmd_test(x, y, subsample=200, permutations=99, alpha=0.01, seed=9) == one
    assert mmd_test(x, y, subsample=200, permutations=99, alpha=0.01, seed=10).statistic != one.statistic


def test_check_multivariate_standardises_and_leaves_out_unusable_columns() -> None:
    rng = np.random.default_rng(11)
    ref = pd.DataFrame({"a": rng.normal(100, 50, 500), "b": rng.normal(size=500), "k": np.ones(500),
                        "gone": rng.normal(size=500)})
    block = pd.DataFrame({"a": rng.normal(100, 50, 300), "b": rng.normal(size=300), "k": np.ones(300),
                          "gone": np.full(300, np.nan)})
    block.loc[:9, "a"] = np.nan  # rows with a missing value are dropped
    result = check_multivariate(ref, block, ["a", "b", "k", "gone"], DriftSettings(), seed=1)
    assert result.columns == 2
    assert result.note == "left out: k (constant in the reference), gone (all missing in the block)"
    assert result.drifted is False
    scaled = check_multivariate(ref.assign(a=ref.a * 1000), block.assign(a=block.a * 1000), ["a", "b"],
                                DriftSettings(), seed=1)
    plain = check_multivariate(ref, block, ["a", "b"], DriftSettings(), seed=1)
    assert scaled.statistic == pytest.approx(plain.statistic, rel=1e-9)  # units do not matter


def test_nothing_usable_or_too_few_rows_is_reported_not_tested() -> None:
    ref = pd.DataFrame({"k": np.ones(100)})
    result = check_multivariate(ref, ref, ["k"], MultivariateSettings(), seed=0)
    assert (result.statistic, result.p_value, result.drifted) == (None, None, False)
    assert "no usable numeric column" in result.note
    rng = np.random.default_rng(12)
    few = mmd_test(rng.normal(size=(100, 2)), rng.normal(size=(5, 2)), subsample=100, permutations=99,
                   alpha=0.05, seed=0)
    assert few.p_value is None and "minimum 10 each" in few.note
    json.dumps(dataclasses.asdict(few), allow_nan=False)


def test_multivariate_settings_validation() -> None:
    assert MultivariateSettings().alpha == 0.01
    with pytest.raises(ValueError, match="subsample is 5; allowed"):
        MultivariateSettings(subsample=5)
    with pytest.raises(ValueError, match="permutations is 10; allowed"):
        MultivariateSettings(permutations=10)
    with pytest.raises(ValueError, match="below the smallest p-value"):
        MultivariateSettings(permutations=50, alpha=0.01)
