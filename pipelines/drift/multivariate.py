"""Multivariate drift: a kernel two-sample test (MMD) on standardised, seeded subsamples of the numeric columns.

Per-feature tests miss changes in how features move together (a correlation flips, a cluster moves
along a diagonal). The maximum mean discrepancy compares the joint distributions. The statistic is
Frouros' `MMD` (unbiased MMD^2 with an RBF kernel); its bandwidth is the median distance between
the pooled points. The kernel matrix of the pooled points is built once and everything is read off it:
the bandwidth comes from the same pairwise distances, the observed statistic from its blocks, and each
permutation only re-sums it. The random generator is local (Frouros' `PermutationTestDistanceBased`
reseeds numpy's global generator and opens a process pool on every call, which does not belong inside an
actor or a Ray task).

The p-value is sequential (Besag and Clifford, 1991): permutations stop once `STOP_AFTER` of them reach the
observed statistic, which settles a drift-free block after a few dozen instead of all `permutations`. The
permutations are drawn in the same order as the fixed-count test's, so the two decide alike at every alpha:
a test that stops early had already seen more exceedances than a drifted verdict allows.

`mmd_test` works on plain arrays, so it can run as a Ray task away from the actor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.spatial.distance import pdist, squareform

from pipelines.config.drift import MIN_ROWS, DriftSettings, MultivariateSettings
from pipelines.drift.results import MultivariateDrift  # noqa: F401 - re-exported

STOP_AFTER = 10
"""h of Besag and Clifford's sequential p-value: permutations stop once this many reach the observed statistic
(raised when needed so that a test that stops can never be below alpha; see `stop_after`)."""


def check_multivariate(reference_frame: pd.DataFrame, block: pd.DataFrame, numeric: Sequence[str],
                       settings: DriftSettings | MultivariateSettings, seed: int, *,
                       stop_early: bool = True) -> MultivariateDrift:
    """Standardise the numeric columns by the reference, drop unusable columns and rows, run `mmd_test`.

    Columns constant or all missing in the reference, or missing from the block, are left out (and named
    in `note`); rows with a missing value are dropped. `stop_early=False` runs every permutation (the rule
    of events recorded without `permutations_used`, which `audit` re-runs that way).
    """
    mv = settings if isinstance(settings, MultivariateSettings) else settings.multivariate
    refs, curs, dropped = [], [], []
    for name in numeric:
        if name not in block.columns or name not in reference_frame.columns:
            dropped.append(f"{name} (missing)")
            continue
        ref = pd.to_numeric(reference_frame[name], errors="coerce")
        if ref.notna().sum() < 2 or not ref.std() > 0:
            dropped.append(f"{name} (constant in the reference)")
            continue
        cur = pd.to_numeric(block[name], errors="coerce")
        if cur.notna().sum() == 0:
            dropped.append(f"{name} (all missing in the block)")
            continue
        refs.append(ref)
        curs.append(cur)
    note = f"left out: {', '.join(dropped)}" if dropped else None
    if not refs:
        return MultivariateDrift(test="mmd", statistic=None, p_value=None, drifted=False,
                                 subsample=mv.subsample, permutations=mv.permutations,
                                 permutations_used=0 if stop_early else None,
                                 note=_join(note, "no usable numeric column; not tested"))
    ref, cur = _columns(refs), _columns(curs)
    mean, sd = np.nanmean(ref, axis=0), np.nanstd(ref, axis=0, ddof=1)
    ref, cur = (ref - mean) / sd, (cur - mean) / sd
    ref, cur = ref[np.isfinite(ref).all(axis=1)], cur[np.isfinite(cur).all(axis=1)]
    result = mmd_test(ref, cur, subsample=mv.subsample, permutations=mv.permutations, alpha=mv.alpha, seed=seed,
                      stop_early=stop_early)
    if note:
        result = MultivariateDrift(**{**_fields(result), "note": _join(note, result.note)})
    return result


def mmd_test(reference: np.ndarray, current: np.ndarray, *, subsample: int, permutations: int, alpha: float,
             seed: int, stop_early: bool = True) -> MultivariateDrift:
    """MMD between two (rows, columns) arrays on seeded subsamples, with a permutation p-value.

    With `stop_early` (the default) the p-value is sequential and `permutations_used` says how many ran;
    without, all `permutations` run and `permutations_used` is None (the rule before it existed).

    >>> rng = np.random.default_rng(0)
    >>> same = mmd_test(rng.normal(size=(300, 3)), rng.normal(size=(300, 3)), subsample=200,
    ...                 permutations=99, alpha=0.01, seed=1)
    >>> moved = mmd_test(rng.normal(size=(300, 3)), rng.normal(0.5, 1, size=(300, 3)), subsample=200,
    ...                  permutations=99, alpha=0.01, seed=1)
    >>> (same.drifted, same.permutations_used < 99, moved.drifted, moved.p_value, moved.permutations_used)
    (False, True, True, 0.01, 99)
    """
    rng = np.random.default_rng(seed)
    n_ref, n_cur = min(subsample, len(reference)), min(subsample, len(current))
    if n_ref < MIN_ROWS or n_cur < MIN_ROWS:
        return MultivariateDrift(test="mmd", statistic=None, p_value=None, drifted=False, subsample=subsample,
                                 permutations=permutations, permutations_used=0 if stop_early else None,
                                 columns=int(reference.shape[1]),
                                 note=f"only {len(reference)} reference and {len(current)} block rows without "
                                      f"missing values (minimum {MIN_ROWS} each); not tested")
    x = reference[np.sort(rng.choice(len(reference), size=n_ref, replace=False))]
    y = current[np.sort(rng.choice(len(current), size=n_cur, replace=False))]
    squared = pdist(np.concatenate([x, y]), "sqeuclidean")  # each pair once
    sigma = math.sqrt(_median_pair(squared))  # median heuristic: sigma = median distance, kernel exp(-d^2 / (2 sigma^2))
    kernel = squareform(np.exp(np.multiply(squared, -1.0 / (2.0 * sigma**2), out=squared), out=squared))
    np.fill_diagonal(kernel, 1.0)
    observed = unbiased_mmd(kernel, n_ref)
    h = stop_after(permutations, alpha) if stop_early else None
    p_value, used = permutation_p_value(kernel, n_ref, observed, permutations, rng, stop_after=h)
    return MultivariateDrift(test="mmd", statistic=observed, p_value=p_value, drifted=bool(p_value <= alpha),
                             subsample=subsample, permutations=permutations,
                             permutations_used=used if stop_early else None, columns=int(reference.shape[1]),
                             bandwidth=sigma)


def stop_after(permutations: int, alpha: float) -> int:
    """Exceedances after which the permutations stop: `STOP_AFTER`, or more when alpha x permutations needs it.

    Stopping after h exceedances at permutation L gives p = h / L >= h / permutations, so with h > alpha x
    permutations a test that stops is never drifted, and the fixed-count test on the same draws would have
    counted at least h exceedances too: the same verdict.

    >>> stop_after(200, 0.01), stop_after(10_000, 0.05)
    (10, 501)
    """
    h = max(STOP_AFTER, math.floor(alpha * permutations) + 1)
    while h / permutations <= alpha:  # alpha x permutations a whole number, give or take a rounding
        h += 1
    return h


def permutation_p_value(kernel: np.ndarray, n_x: int, observed: float, permutations: int, rng: np.random.Generator,
                        *, stop_after: int | None) -> tuple[float, int]:
    """The permutation p-value of `observed` and the permutations it took.

    Fixed count (`stop_after` None): (1 + k) / (1 + permutations), k the permutations at least as extreme.
    Sequential (Besag and Clifford, 1991): the permutations run in batches (2 x `stop_after`, then doubling,
    the last taking the rest: each batch is one pass over the kernel); once `stop_after` of them reach the
    observed value, at permutation L, the p-value is stop_after / L; otherwise the fixed-count one.
    Either way the i-th permutation is the same draw, so a sequential run is a prefix of the fixed one.
    """
    row_sums = kernel.sum(axis=1)
    total = float(row_sums.sum())
    batch = permutations if stop_after is None else min(permutations, 2 * stop_after)
    done = reached = 0
    while done < permutations:
        size = min(batch, permutations - done)
        if permutations - done - size < size:  # a smaller batch after this one: take the rest now
            size = permutations - done
        hits = np.flatnonzero(_permuted_mmd(kernel, n_x, size, rng, row_sums, total) >= observed)
        if stop_after is not None and reached + len(hits) >= stop_after:
            used = done + int(hits[stop_after - reached - 1]) + 1
            return stop_after / used, used
        reached, done, batch = reached + len(hits), done + size, 2 * batch
    return (1 + reached) / (permutations + 1), permutations


def unbiased_mmd(kernel: np.ndarray, n_x: int) -> float:
    """Unbiased MMD^2 of the first `n_x` pooled rows against the rest, read off their kernel matrix.

    This is the statistic Frouros' `MMD` computes (`tests/unit/test_drift_multivariate.py` checks the two agree):
    Frouros would rebuild the three kernel blocks from the points, i.e. the pairwise distances and their
    exponentials a second time, on every block, while the permutations need the whole matrix anyway.
    """
    n_y = len(kernel) - n_x
    k_xx = float(kernel[:n_x, :n_x].sum()) - n_x  # the diagonal (all ones) is left out
    k_yy = float(kernel[n_x:, n_x:].sum()) - n_y
    k_xy = float(kernel[:n_x, n_x:].sum())
    return k_xx / (n_x * (n_x - 1)) + k_yy / (n_y * (n_y - 1)) - 2.0 * k_xy / (n_x * n_y)


def _median_pair(squared: np.ndarray) -> float:
    """The median of the pairwise squared distances, or of the positive ones when more than half the pairs
    coincide (e.g. heavily repeated values).

    The same number as np.median (for an even count, the mean of the two middle values: checked by
    `tests/unit/test_drift_multivariate.py`, as old events' bandwidths depend on it), from one partition
    around the upper middle value, whose lower neighbour is then the largest value before it; np.median
    partitions around both.
    """
    median = _median(squared)
    if median == 0.0:
        positive = squared[squared > 0]
        median = _median(positive) if len(positive) else 1.0
    return median


def _median(values: np.ndarray) -> float:
    k = len(values) // 2
    part = np.partition(values, k)
    if len(values) % 2:
        return float(part[k])
    return float((part[:k].max() + part[k]) / 2)


def _permuted_mmd(kernel: np.ndarray, n_x: int, permutations: int, rng: np.random.Generator, row_sums: np.ndarray,
                  total: float) -> np.ndarray:
    """Unbiased MMD^2 (as Frouros computes it) for `permutations` random relabellings of the pooled rows.

    With `a` the 0/1 indicator of rows labelled x: sum K_xx = a'Ka, sum K_xy = a'K1 - a'Ka,
    sum K_yy = 1'K1 - 2a'K1 + a'Ka; the diagonal (all ones) is removed from K_xx and K_yy. `row_sums` is K1
    and `total` 1'K1.
    """
    n = len(kernel)
    n_y = n - n_x
    labels = np.zeros((n, permutations))
    for j in range(permutations):
        labels[rng.permutation(n)[:n_x], j] = 1.0
    k_a = kernel @ labels
    a_k_a = np.einsum("ij,ij->j", labels, k_a)
    a_k_1 = labels.T @ row_sums
    k_xx = a_k_a - n_x
    k_yy = total - 2.0 * a_k_1 + a_k_a - n_y
    k_xy = a_k_1 - a_k_a
    return k_xx / (n_x * (n_x - 1)) + k_yy / (n_y * (n_y - 1)) - 2.0 * k_xy / (n_x * n_y)


def _columns(series: list[pd.Series]) -> np.ndarray:
    """The columns as one (rows, columns) float array, column-major as pandas lays out a frame's values (the
    reference's means and deviations are summed in the same order as when the frame was converted whole)."""
    out = np.empty((len(series[0]), len(series)), order="F")
    for j, column in enumerate(series):
        out[:, j] = column.to_numpy(dtype=float, na_value=np.nan)
    return out


def _fields(result: MultivariateDrift) -> dict:
    return {name: getattr(result, name) for name in MultivariateDrift.__dataclass_fields__}


def _join(*notes: str | None) -> str | None:
    kept = [n for n in notes if n]
    return "; ".join(kept) if kept else None
