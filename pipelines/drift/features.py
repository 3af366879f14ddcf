"""Per-feature drift tests: fit the reference once, then test every block against it.

Numeric columns get a Frouros two-sample test (Kolmogorov-Smirnov unless overridden) and an effect size
(the Wasserstein distance in reference standard deviations, or the KS statistic); categorical columns get
a chi-square test on category counts and the Jensen-Shannon distance between category shares. p-values
are corrected across the features of a block (Benjamini-Hochberg unless configured otherwise) and a
feature drifts only when its adjusted p-value is at most its alpha AND its effect reaches a minimum, so a
very large block does not flag a shift too small to matter.

The chi-square statistic is the one Frouros' `ChiSquareTest` computes (`chi2_contingency` on the block
and reference counts), taken from reference counts kept at fit time instead of recounting the reference
for every block; `tests/unit/test_drift_features.py` pins the two to the same numbers. Likewise the
Wasserstein distance is scipy's, summed from the reference sorted once at fit time (`wasserstein_sorted`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from frouros.detectors.data_drift import CVMTest, KSTest, MannWhitneyUTest, WelchTTest
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency

from pipelines.config.drift import TEST_NAMES, DriftSettings, FeatureOverride, TestName, check_number  # noqa: F401 - re-exported
from pipelines.drift.results import FeatureDrift  # noqa: F401 - re-exported

NUMERIC_TESTS = {"ks": KSTest, "cvm": CVMTest, "mann_whitney_u": MannWhitneyUTest, "welch_t": WelchTTest}
TEST_LABELS = {"ks": "KS", "cvm": "CvM", "mann_whitney_u": "Mann-Whitney U", "welch_t": "Welch t",
               "chi2": "chi2"}
MAX_UNSEEN_LISTED = 20


@dataclass(frozen=True, eq=False)
class NumericColumn:
    """A numeric reference column with its fitted Frouros detector (None when it cannot be tested)."""

    name: str
    test: str
    detector: Any
    sorted_values: np.ndarray
    mean: float
    sd: float
    note: str | None


@dataclass(frozen=True, eq=False)
class CategoricalColumn:
    """A categorical reference column: its categories (as strings) and their counts."""

    name: str
    categories: tuple[str, ...]
    counts: np.ndarray
    note: str | None

    @property
    def rows(self) -> int:
        return int(self.counts.sum())


@dataclass(frozen=True, eq=False)
class SkippedColumn:
    """A column whose test is `"off"`."""

    name: str
    kind: Literal["numeric", "categorical"]


Column = NumericColumn | CategoricalColumn | SkippedColumn


@dataclass(frozen=True, eq=False)
class Reference:
    """The per-feature detectors fitted once on the reference data and reused for every block.

    An in-memory object (it holds fitted Frouros detectors and reference counts), never an event.
    """

    rows: int
    columns: tuple[Column, ...]
    note: str | None = None

    @property
    def numeric(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if isinstance(c, NumericColumn))

    @property
    def categorical(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if isinstance(c, CategoricalColumn))


def fit_reference(frame: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str],
                  settings: DriftSettings, *, seed: int = 0) -> Reference:
    """Fit the per-feature detectors on the reference frame, once per reference.

    A reference longer than `settings.max_reference_rows` is subsampled with `seed`.
    Raises ValueError naming the column when a column is missing, listed twice, or not numeric.
    """
    numeric, categorical = list(numeric), list(categorical)
    listed = numeric + categorical
    duplicated = sorted({c for c in listed if listed.count(c) > 1})
    if duplicated:
        raise ValueError(f"columns listed more than once: {', '.join(duplicated)}; allowed: each column "
                         "once, as numeric or categorical")
    missing = [c for c in listed if c not in frame.columns]
    if missing:
        raise ValueError(f"reference has no column {', '.join(map(repr, missing))}; allowed: "
                         f"{', '.join(map(str, frame.columns))}")
    unknown = sorted(set(settings.features) - set(listed))
    if unknown:
        raise ValueError(f"drift.features names {', '.join(map(repr, unknown))}, which is not a checked "
                         f"feature; allowed: {', '.join(listed)}")
    note = None
    if len(frame) > settings.max_reference_rows:
        note = f"reference subsampled from {len(frame)} to {settings.max_reference_rows} rows (seed {seed})"
        frame = frame.sample(n=settings.max_reference_rows, random_state=seed)
    columns: list[Column] = []
    for name, kind in [(c, "numeric") for c in numeric] + [(c, "categorical") for c in categorical]:
        override = settings.features.get(name)
        test = override.test if override is not None and override.test else (
            "ks" if kind == "numeric" else "chi2")
        if test == "off":
            columns.append(SkippedColumn(name=name, kind=kind))
        elif test == "chi2":
            columns.append(_fit_categorical(name, frame[name], settings.min_rows))
        else:
            columns.append(_fit_numeric(name, frame[name], test, settings.min_rows))
    return Reference(rows=len(frame), columns=tuple(columns), note=note)


def check_features(reference: Reference, block: pd.DataFrame, settings: DriftSettings) -> tuple[FeatureDrift, ...]:
    """Test every reference feature on `block`; correct p-values across features; rank by effect."""
    raw = []
    for column in reference.columns:
        if isinstance(column, SkippedColumn):
            continue
        override = settings.features.get(column.name)
        if column.name not in block.columns:
            result = _untested(column, "column missing from the block; not tested", 0)
        elif isinstance(column, NumericColumn):
            result = _test_numeric(column, block[column.name], settings)
        else:
            result = _test_categorical(column, block[column.name], settings)
        alpha = override.alpha if override is not None and override.alpha is not None else settings.alpha
        if override is not None and override.min_effect is not None:
            min_effect = override.min_effect
        elif result.effect_name == "js_distance":
            min_effect = settings.min_effect_categorical
        else:
            min_effect = settings.min_effect
        raw.append((result, alpha, min_effect))
    tested = [i for i, (r, _, _) in enumerate(raw) if r.p_value is not None]
    adjusted = adjust_p_values([raw[i][0].p_value for i in tested], settings.correction)
    p_adjusted = dict(zip(tested, adjusted, strict=True))
    out = []
    for i, (result, alpha, min_effect) in enumerate(raw):
        p_adj = p_adjusted.get(i)
        drifted = (p_adj is not None and result.effect is not None and p_adj <= alpha
                   and result.effect >= min_effect)
        out.append(_replace(result, p_adjusted=p_adj, drifted=bool(drifted), alpha=float(alpha),
                            min_effect=float(min_effect)))
    return rank_features(out)


def rank_features(features: Sequence[FeatureDrift]) -> tuple[FeatureDrift, ...]:
    """Order by effect, largest first; untested features (no effect) last; ties by name."""
    return tuple(sorted(features, key=lambda f: (f.effect is None, -(f.effect or 0.0), f.name)))


def adjust_p_values(p_values: Sequence[float], method: str) -> list[float]:
    """Multiple-testing adjusted p-values: "bh" (Benjamini-Hochberg), "bonferroni" or "none".

    >>> [round(p, 4) for p in adjust_p_values([0.01, 0.04, 0.03, 0.5], "bh")]
    [0.04, 0.0533, 0.0533, 0.5]
    >>> adjust_p_values([0.01, 0.04, 0.03, 0.5], "bonferroni")
    [0.04, 0.16, 0.12, 1.0]
    """
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0:
        return []
    if method == "none":
        adjusted = p
    elif method == "bonferroni":
        adjusted = np.minimum(1.0, p * m)
    elif method == "bh":
        order = np.argsort(p, kind="stable")
        scaled = p[order] * m / np.arange(1, m + 1)
        stepped = np.minimum.accumulate(scaled[::-1])[::-1]
        adjusted = np.empty(m)
        adjusted[order] = np.minimum(1.0, stepped)
    else:
        raise ValueError(f"correction is {method!r}; allowed: bh, bonferroni, none")
    return [float(x) for x in adjusted]


# --- fitting ------------------------------------------------------------------------------------------


def _numbers(name: str, series: pd.Series, where: str) -> np.ndarray:
    try:
        values = series.to_numpy(dtype=float, na_value=np.nan)  # also nullable Int64 / boolean columns
    except (TypeError, ValueError):
        raise ValueError(f"column {name!r} in the {where} holds values that are not numbers (e.g. "
                         f"{series.dropna().iloc[0]!r}); allowed: numbers, or list it as categorical") from None
    return values[np.isfinite(values)]


def _fit_numeric(name: str, series: pd.Series, test: str, min_rows: int) -> NumericColumn:
    values = _numbers(name, series, "reference")
    if len(values) < max(min_rows, 2):
        note = f"reference has only {len(values)} non-missing values (minimum {min_rows}); not tested"
        return NumericColumn(name=name, test=test, detector=None, sorted_values=values, mean=math.nan,
                             sd=math.nan, note=note)
    detector = NUMERIC_TESTS[test]()
    detector.fit(X=values)
    sd = float(np.std(values, ddof=1))
    note = f"reference column is constant ({values[0]:g})" if sd == 0.0 else None
    return NumericColumn(name=name, test=test, detector=detector, sorted_values=np.sort(values),
                         mean=float(np.mean(values)), sd=sd, note=note)


def category_counts(series: pd.Series) -> dict[str, int]:
    """Counts per category, labels as strings; missing values dropped; 1 and 1.0 are the same category.

    >>> category_counts(pd.Series([1, 2, 2, None]))
    {'1': 1, '2': 2}
    """
    counts = series.value_counts(dropna=True, sort=False)
    out: dict[str, int] = {}
    for label, count in counts.items():
        if count == 0:  # a pandas Categorical lists its unused categories too
            continue
        key = _label(label)
        out[key] = out.get(key, 0) + int(count)
    return out


def _label(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return str(value)


def _fit_categorical(name: str, series: pd.Series, min_rows: int) -> CategoricalColumn:
    counts = category_counts(series)
    categories = tuple(sorted(counts))
    array = np.array([counts[c] for c in categories], dtype=float)
    total = int(array.sum())
    note = None
    if total < min_rows:
        note = f"reference has only {total} non-missing values (minimum {min_rows}); not tested"
    elif len(categories) == 1:
        note = f"reference has a single category ({categories[0]!r})"
    return CategoricalColumn(name=name, categories=categories, counts=array, note=note)


# --- testing ------------------------------------------------------------------------------------------


def _replace(result: FeatureDrift, **changes: Any) -> FeatureDrift:
    fields = {name: getattr(result, name) for name in FeatureDrift.__dataclass_fields__}
    fields.update(changes)
    return FeatureDrift(**fields)


def _untested(column: NumericColumn | CategoricalColumn, note: str, rows: int) -> FeatureDrift:
    numeric = isinstance(column, NumericColumn)
    return FeatureDrift(
        name=column.name, kind="numeric" if numeric else "categorical", test=column.test if numeric else "chi2",
        statistic=None, p_value=None, p_adjusted=None, effect=None,
        effect_name="ks_statistic" if numeric else "js_distance", drifted=False, note=note, rows=rows)


def _finite(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _join(*notes: str | None) -> str | None:
    kept = [n for n in notes if n]
    return "; ".join(kept) if kept else None


def _test_numeric(column: NumericColumn, series: pd.Series, settings: DriftSettings) -> FeatureDrift:
    if column.detector is None:
        return _untested(column, column.note or "not tested", 0)
    values = _numbers(column.name, series, "block")
    n = len(values)
    if n == 0:
        return _untested(column, "block column is all missing; not tested", 0)
    if n < settings.min_rows:
        return _untested(column, f"only {n} non-missing values in the block (minimum {settings.min_rows}); "
                                 "not tested", n)
    result, _ = column.detector.compare(X=values)
    statistic, p_value = _finite(result.statistic), _finite(result.p_value)
    note = column.note
    if p_value is None:
        return _untested(column, _join(note, f"{column.test} gave no p-value (both samples constant?); "
                                             "not tested"), n)
    if settings.numeric_effect == "wasserstein" and column.sd > 0:
        effect = wasserstein_sorted(column.sorted_values, values) / column.sd
        effect_name = "wasserstein_sd"
    else:
        effect = statistic if column.test == "ks" else ks_statistic(column.sorted_values, values)
        effect_name = "ks_statistic"
        if settings.numeric_effect == "wasserstein":
            note = _join(note, "effect is the KS statistic (no spread to scale a distance by)")
    if column.sd > 0:
        sd = float(np.std(values, ddof=1)) if n > 1 else 0.0
        change = (f"mean moved by {(float(np.mean(values)) - column.mean) / column.sd:+.2f} sd, "
                  f"spread x{sd / column.sd:.2f}")
    else:
        differ = float(np.mean(values != column.sorted_values[0]))
        change = f"{differ:.0%} of block values differ from the constant {column.sorted_values[0]:g}"
    return FeatureDrift(name=column.name, kind="numeric", test=column.test, statistic=statistic,
                        p_value=p_value, p_adjusted=None, effect=float(effect), effect_name=effect_name,
                        drifted=False, note=note, change=change, rows=n)


def wasserstein_sorted(sorted_reference: np.ndarray, values: np.ndarray) -> float:
    """The Wasserstein-1 distance between the reference (sorted once, at fit) and the block's values.

    scipy's `wasserstein_distance` is the sum over the merged, sorted values z of |F_ref(z) - F_block(z)| x
    (the gap to the next value), each CDF found by a binary search of its own re-sorted sample. This sums the
    same terms in the same order, the CDFs counted off one stable sort of the two sorted samples (a tie adds a
    gap of 0 whatever the counts), so the result is scipy's to the last bit
    (`tests/unit/test_drift_features.py`) without sorting the reference or searching it again for every block.

    >>> wasserstein_sorted(np.array([0.0, 1.0, 2.0, 3.0]), np.array([3.5, 2.5]))  # the block sits 1.5 higher
    1.5
    """
    block = np.sort(values)
    merged = np.concatenate([sorted_reference, block])
    order = np.argsort(merged, kind="stable")
    n, m = len(sorted_reference), len(block)
    from_reference = np.cumsum(order < n)[:-1]
    from_block = np.arange(1, n + m) - from_reference
    gaps = np.diff(merged[order])
    return float(np.sum(np.multiply(np.abs(from_reference / n - from_block / m), gaps)))


def ks_statistic(sorted_reference: np.ndarray, values: np.ndarray) -> float:
    """The two-sample KS statistic: the largest gap between the two empirical CDFs.

    >>> ks_statistic(np.array([0.0, 1.0, 2.0, 3.0]), np.array([2.5, 3.5]))
    0.75
    """
    block = np.sort(values)
    points = np.concatenate([sorted_reference, block])
    cdf_ref = np.searchsorted(sorted_reference, points, side="right") / len(sorted_reference)
    cdf_block = np.searchsorted(block, points, side="right") / len(block)
    return float(np.max(np.abs(cdf_ref - cdf_block)))


def _test_categorical(column: CategoricalColumn, series: pd.Series, settings: DriftSettings) -> FeatureDrift:
    if column.rows < settings.min_rows:
        return _untested(column, column.note or "not tested", 0)
    counts = category_counts(series)
    n = sum(counts.values())
    if n == 0:
        return _untested(column, "block column is all missing; not tested", 0)
    unseen_all = sorted(set(counts) - set(column.categories))
    unseen = tuple(unseen_all[:MAX_UNSEEN_LISTED])
    if n < settings.min_rows:
        result = _untested(column, f"only {n} non-missing values in the block (minimum {settings.min_rows}); "
                                   "not tested", n)
        return _replace(result, unseen_categories=unseen)
    categories = column.categories + tuple(unseen_all)
    f_exp = np.concatenate([column.counts, np.zeros(len(unseen_all))])
    f_obs = np.array([counts.get(c, 0) for c in categories], dtype=float)
    statistic, p_value, _, _ = chi2_contingency(np.array([f_obs, f_exp]))  # Frouros' ChiSquareTest
    share_ref, share_block = f_exp / f_exp.sum(), f_obs / n
    effect = float(jensenshannon(share_ref, share_block, base=2))
    effect = 0.0 if not math.isfinite(effect) else effect  # identical shares can give sqrt(-tiny)
    note = column.note
    if len(categories) == 1:
        note = f"single category ({categories[0]!r}) in reference and block"
    if len(unseen_all) > MAX_UNSEEN_LISTED:
        note = _join(note, f"{len(unseen_all)} unseen categories, first {MAX_UNSEEN_LISTED} listed")
    biggest = int(np.argmax(np.abs(share_block - share_ref)))
    change = f"{categories[biggest]!r} share {share_ref[biggest]:.0%} -> {share_block[biggest]:.0%}"
    if unseen_all:
        seen_share = float(f_obs[len(column.categories):].sum() / n)
        change += f"; {len(unseen_all)} unseen categories hold {seen_share:.0%} of the block"
    return FeatureDrift(name=column.name, kind="categorical", test="chi2", statistic=_finite(statistic),
                        p_value=_finite(p_value), p_adjusted=None, effect=effect, effect_name="js_distance",
                        drifted=False, unseen_categories=unseen, note=note, change=change, rows=n)
