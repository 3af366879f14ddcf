"""Multivariate drift: a kernel two-sample test (MMD) on standardised, seeded subsamples of the numeric columns.

Per-feature tests miss changes in how features move together (a correlation flips, a cluster moves
along a diagonal). The maximum mean discrepancy compares the joint distributions. The statistic is
Frouros' `MMD` (unbiased MMD^2 with an RBF kernel); its bandwidth is the median distance between
the pooled points. The p-value comes from a permutation test computed on the kernel matrix once built:
each permutation only re-sums it, so hundreds of permutations cost less than re-running the kernel, and
the random generator is local (Frouros' `PermutationTestDistanceBased` reseeds numpy's global generator
and opens a process pool on every call, which does not belong inside an actor or a Ray task).

`mmd_test` works on plain arrays, so it can run as a Ray task away from the actor.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
import pandas as pd
from frouros.detectors.data_drift import MMD
from frouros.utils.kernels import rbf_kernel
from scipy.spatial.distance import cdist

from pipelines.config.drift import MIN_ROWS, DriftSettings, MultivariateSettings
from pipelines.drift.results import MultivariateDrift  # noqa: F401 - re-exported


def check_multivariate(reference_frame: pd.DataFrame, block: pd.DataFrame, numeric: Sequence[str],
                       settings: DriftSettings | MultivariateSettings, seed: int) -> MultivariateDrift:
    """Standardise the numeric columns by the reference, drop unusable columns and rows, run `mmd_test`.

    Columns constant or all missing in the reference, or missing from the block, are left out (and named
    in `note`); rows with a missing value are dropped.
    """
    mv = settings if isinstance(settings, MultivariateSettings) else settings.multivariate
    usable, dropped = [], []
    for name in numeric:
        if name not in block.columns or name not in reference_frame.columns:
            dropped.append(f"{name} (missing)")
            continue
        ref = pd.to_numeric(reference_frame[name], errors="coerce")
        if ref.notna().sum() < 2 or not ref.std() > 0:
            dropped.append(f"{name} (constant in the reference)")
            continue
        if pd.to_numeric(block[name], errors="coerce").notna().sum() == 0:
            dropped.append(f"{name} (all missing in the block)")
            continue
        usable.append(name)
    note = f"left out: {', '.join(dropped)}" if dropped else None
    if not usable:
        return MultivariateDrift(test="mmd", statistic=None, p_value=None, drifted=False,
                                 subsample=mv.subsample, permutations=mv.permutations,
                                 note=_join(note, "no usable numeric column; not tested"))
    ref = reference_frame[usable].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    cur = block[usable].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    mean, sd = np.nanmean(ref, axis=0), np.nanstd(ref, axis=0, ddof=1)
    ref, cur = (ref - mean) / sd, (cur - mean) / sd
    ref, cur = ref[np.isfinite(ref).all(axis=1)], cur[np.isfinite(cur).all(axis=1)]
    result = mmd_test(ref, cur, subsample=mv.subsample, permutations=mv.permutations, alpha=mv.alpha, seed=seed)
    if note:
        result = MultivariateDrift(**{**_fields(result), "note": _join(note, result.note)})
    return result


def mmd_test(reference: np.ndarray, current: np.ndarray, *, subsample: int, permutations: int, alpha: float,
             seed: int) -> MultivariateDrift:
    """MMD between two (rows, columns) arrays on seeded subsamples, with a permutation p-value.

    >>> rng = np.random.default_rng(0)
    >>> same = mmd_test(rng.normal(size=(300, 3)), rng.normal(size=(300, 3)), subsample=200,
    ...                 permutations=99, alpha=0.01, seed=1)
    >>> moved = mmd_test(rng.normal(size=(300, 3)), rng.normal(0.5, 1, size=(300, 3)), subsample=200,
    ...                  permutations=99, alpha=0.01, seed=1)
    >>> (same.drifted, moved.drifted, moved.p_value)
    (False, True, 0.01)
    """
    rng = np.random.default_rng(seed)
    n_ref, n_cur = min(subsample, len(reference)), min(subsample, len(current))
    if n_ref < MIN_ROWS or n_cur < MIN_ROWS:
        return MultivariateDrift(test="mmd", statistic=None, p_value=None, drifted=False, subsample=subsample,
                                 permutations=permutations, columns=int(reference.shape[1]),
                                 note=f"only {len(reference)} reference and {len(current)} block rows without "
                                      f"missing values (minimum {MIN_ROWS} each); not tested")
    x = reference[np.sort(rng.choice(len(reference), size=n_ref, replace=False))]
    y = current[np.sort(rng.choice(len(current), size=n_cur, replace=False))]
    pooled = np.concatenate([x, y])
    squared = cdist(pooled, pooled, "sqeuclidean")
    off_diagonal = np.concatenate([squared[i, i + 1:] for i in range(len(pooled) - 1)])  # each pair once
    median = float(np.median(off_diagonal))
    if median == 0.0:  # more than half the pairs coincide (e.g. heavily repeated values)
        positive = off_diagonal[off_diagonal > 0]
        median = float(np.median(positive)) if len(positive) else 1.0
    sigma = float(np.sqrt(median))  # median heuristic: kernel exp(-d^2 / (2 sigma^2)), sigma = median distance
    detector = MMD(kernel=partial(rbf_kernel, sigma=sigma))
    detector.fit(X=x)
    observed = float(detector.compare(X=y)[0].distance)
    kernel = np.multiply(squared, -1.0 / (2.0 * sigma**2), out=squared)
    np.exp(kernel, out=kernel)
    permuted = _permuted_mmd(kernel, n_ref, permutations, rng)
    p_value = float((1 + np.count_nonzero(permuted >= observed)) / (permutations + 1))
    return MultivariateDrift(test="mmd", statistic=observed, p_value=p_value, drifted=bool(p_value <= alpha),
                             subsample=subsample, permutations=permutations, columns=int(reference.shape[1]),
                             bandwidth=sigma)


def _permuted_mmd(kernel: np.ndarray, n_x: int, permutations: int, rng: np.random.Generator) -> np.ndarray:
    """Unbiased MMD^2 (as Frouros computes it) for `permutations` random relabellings of the pooled rows.

    With `a` the 0/1 indicator of rows labelled x: sum K_xx = a'Ka, sum K_xy = a'K1 - a'Ka,
    sum K_yy = 1'K1 - 2a'K1 + a'Ka; the diagonal (all ones) is removed from K_xx and K_yy.
    """
    n = len(kernel)
    n_y = n - n_x
    labels = np.zeros((n, permutations))
    for j in range(permutations):
        labels[rng.permutation(n)[:n_x], j] = 1.0
    row_sums = kernel.sum(axis=1)
    total = row_sums.sum()
    k_a = kernel @ labels
    a_k_a = np.einsum("ij,ij->j", labels, k_a)
    a_k_1 = labels.T @ row_sums
    k_xx = a_k_a - n_x
    k_yy = total - 2.0 * a_k_1 + a_k_a - n_y
    k_xy = a_k_1 - a_k_a
    return k_xx / (n_x * (n_x - 1)) + k_yy / (n_y * (n_y - 1)) - 2.0 * k_xy / (n_x * n_y)


def _fields(result: MultivariateDrift) -> dict:
    return {name: getattr(result, name) for name in MultivariateDrift.__dataclass_fields__}


def _join(*notes: str | None) -> str | None:
    kept = [n for n in notes if n]
    return "; ".join(kept) if kept else None
