"""Covariate and label shifts applied to a block of data, with a record of exactly what changed.

A shift is written as a short spec, repeatable on the command line:

===========================================  ==============================================================
``mean:FEATURES:SD``                         add ``SD`` reference standard deviations to each feature
``scale:FEATURES:FACTOR``                    multiply each feature's spread around the reference mean
``category:FEATURES:VALUE[:FRACTION]``       set a share of rows (default 0.2) to a category never seen
``missing:FEATURES:FRACTION``                blank out a share of the values (a surge of missing values)
``label_noise:FRACTION``                     flip a share of the labels to another class (regression:
                                             shuffle the targets of those rows among themselves)
===========================================  ==============================================================

``FEATURES`` is one column name or several separated by commas (``mean:feat_1,feat_2:0.5``).

The amounts are measured against a *reference* (the blocks before the drift), so "0.5 sd" means the same
thing in every block. ``intensity`` (0..1) scales a shift for gradual schedules; 0 leaves the block alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

KINDS: tuple[str, ...] = ("mean", "scale", "category", "missing", "label_noise")
DEFAULT_CATEGORY_FRACTION = 0.2


class ShiftError(ValueError):
    """A shift spec that cannot be parsed or does not fit the data; the message says what to change."""


@dataclass(frozen=True, slots=True)
class Shift:
    """One change to apply: `kind` on `feature` (None means the target) by `amount`."""

    kind: str
    feature: str | None
    amount: float
    value: str | None = None

    @property
    def spec(self) -> str:
        """The canonical spec string, which `parse_shifts` reads back to an equal Shift.

        >>> parse_shifts(["category:color:purple"])[0].spec
        'category:color:purple:0.2'
        """
        amount = f"{self.amount:g}"
        if self.kind == "label_noise":
            return f"label_noise:{amount}"
        if self.kind == "category":
            return f"category:{self.feature}:{self.value}:{amount}"
        return f"{self.kind}:{self.feature}:{amount}"


def _number(text: str, spec: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ShiftError(f"--shift {spec}: {what} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ShiftError(f"--shift {spec}: {what} must be finite, got {text!r}")
    return value


def _fraction(text: str, spec: str) -> float:
    value = _number(text, spec, "the fraction")
    if not 0.0 < value <= 1.0:
        raise ShiftError(f"--shift {spec}: the fraction must be in (0, 1], got {text}")
    return value


def parse_shifts(specs: Iterable[str]) -> tuple[Shift, ...]:
    """Parse spec strings into Shifts, one per feature named.

    >>> [s.spec for s in parse_shifts(["mean:feat_1,feat_2:0.5", "label_noise:0.1"])]
    ['mean:feat_1:0.5', 'mean:feat_2:0.5', 'label_noise:0.1']
    """
    shifts: list[Shift] = []
    for spec in specs:
        parts = spec.strip().split(":")
        kind = parts[0].strip().lower().replace("-", "_")
        if kind not in KINDS:
            raise ShiftError(
                f"--shift {spec}: unknown kind {parts[0]!r}; use one of {', '.join(KINDS)} "
                "(e.g. mean:feat_1:0.5, missing:feat_2:0.3, label_noise:0.1)"
            )
        if kind == "label_noise":
            if len(parts) != 2:
                raise ShiftError(f"--shift {spec}: write label_noise:FRACTION, e.g. label_noise:0.1")
            shifts.append(Shift("label_noise", None, _fraction(parts[1], spec)))
            continue
        expected = "category:FEATURES:VALUE[:FRACTION]" if kind == "category" else f"{kind}:FEATURES:AMOUNT"
        if len(parts) not in ((3, 4) if kind == "category" else (3,)):
            raise ShiftError(f"--shift {spec}: write {expected}")
        features = [f.strip() for f in parts[1].split(",")]
        if not all(features):
            raise ShiftError(f"--shift {spec}: name at least one feature, e.g. {kind}:feat_1:...")
        for feature in features:
            if kind == "mean":
                shifts.append(Shift("mean", feature, _number(parts[2], spec, "the shift in sd units")))
            elif kind == "scale":
                factor = _number(parts[2], spec, "the scale factor")
                if factor <= 0:
                    raise ShiftError(f"--shift {spec}: the scale factor must be positive, got {parts[2]}")
                shifts.append(Shift("scale", feature, factor))
            elif kind == "missing":
                shifts.append(Shift("missing", feature, _fraction(parts[2], spec)))
            else:
                value = parts[2].strip()
                if not value:
                    raise ShiftError(f"--shift {spec}: name the new category, e.g. category:color:purple")
                fraction = _fraction(parts[3], spec) if len(parts) == 4 else DEFAULT_CATEGORY_FRACTION
                shifts.append(Shift("category", feature, fraction, value))
    return tuple(shifts)


def is_numeric(series: pd.Series) -> bool:
    """True for int and float columns (bool counts as categorical)."""
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def infer_task(target: pd.Series) -> str:
    """`"regression"` for a float target with non-integral or many values, else `"classification"`."""
    if not is_numeric(target) or pd.api.types.is_integer_dtype(target):
        return "classification"
    values = target.dropna()
    if values.empty or (np.all(np.mod(values, 1) == 0) and values.nunique() <= 20):
        return "classification"
    return "regression"


@dataclass(frozen=True, slots=True)
class Reference:
    """Statistics of the undrifted data that shift amounts are measured against."""

    mean: Mapping[str, float]
    sd: Mapping[str, float]
    categories: Mapping[str, tuple[str, ...]]
    target: str | None
    task: str | None
    classes: tuple

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, target: str | None = "target") -> Reference:
        mean: dict[str, float] = {}
        sd: dict[str, float] = {}
        categories: dict[str, tuple[str, ...]] = {}
        for column in frame.columns:
            if column == target:
                continue
            series = frame[column]
            if is_numeric(series):
                mean[column] = float(series.mean())
                sd[column] = float(series.std(ddof=1)) if series.count() > 1 else 0.0
            else:
                categories[column] = tuple(sorted(map(str, series.dropna().unique())))
        task = None
        classes: tuple = ()
        if target is not None and target in frame.columns:
            task = infer_task(frame[target])
            if task == "classification":
                classes = tuple(sorted(frame[target].dropna().unique().tolist()))
        else:
            target = None
        return cls(mean, sd, categories, target, task, classes)


def check_shifts(shifts: Sequence[Shift], reference: Reference, protected: Iterable[str] = ()) -> None:
    """Raise ShiftError when a shift names an unknown column or does not fit the column's type."""
    columns = set(reference.mean) | set(reference.categories)
    protected = set(protected)
    for shift in shifts:
        if shift.kind == "label_noise":
            if reference.target is None:
                raise ShiftError(
                    f"--shift {shift.spec}: the data has no target column to add label noise to; "
                    "name it with --target or drop this shift"
                )
            if reference.task == "classification" and len(reference.classes) < 2:
                raise ShiftError(
                    f"--shift {shift.spec}: the reference has fewer than two classes to flip between"
                )
            continue
        feature = shift.feature
        if feature == reference.target:
            raise ShiftError(
                f"--shift {shift.spec}: {feature!r} is the target; use label_noise:FRACTION for labels"
            )
        if feature in protected:
            raise ShiftError(f"--shift {shift.spec}: {feature!r} is the block column and cannot be shifted")
        if feature not in columns:
            known = ", ".join(sorted(columns)) or "(none)"
            raise ShiftError(f"--shift {shift.spec}: unknown column {feature!r}; the columns are: {known}")
        if shift.kind in ("mean", "scale"):
            if feature not in reference.mean:
                raise ShiftError(
                    f"--shift {shift.spec}: {feature!r} is categorical; {shift.kind} shifts need a numeric "
                    f"column (try category:{feature}:NEW_VALUE)"
                )
            if not reference.sd[feature] > 0:
                raise ShiftError(
                    f"--shift {shift.spec}: {feature!r} is constant in the reference blocks, so a shift in "
                    "sd units would not move it"
                )
        if shift.kind == "category":
            if feature not in reference.categories:
                raise ShiftError(
                    f"--shift {shift.spec}: {feature!r} is numeric; a new category needs a text column "
                    f"(try mean:{feature}:0.5)"
                )
            if shift.value in reference.categories[feature]:
                raise ShiftError(
                    f"--shift {shift.spec}: {shift.value!r} already occurs in {feature!r}; pick a value not in "
                    f"{', '.join(reference.categories[feature])}"
                )


def _pick(rng: np.random.Generator, n: int, fraction: float) -> np.ndarray:
    k = min(n, int(round(n * fraction)))
    return np.sort(rng.choice(n, size=k, replace=False)) if k else np.empty(0, dtype=np.int64)


def shift_block(
    frame: pd.DataFrame,
    shifts: Sequence[Shift],
    rng: np.random.Generator,
    reference: Reference,
    intensity: float = 1.0,
) -> tuple[pd.DataFrame, tuple[dict, ...]]:
    """Apply `shifts` at `intensity` to a copy of `frame`; return it with one JSON-able record per shift.

    Shifts apply in order; a label shift is skipped (and not recorded) when the block carries no target.
    """
    out = frame.reset_index(drop=True).copy()
    records: list[dict] = []
    if intensity <= 0:
        return out, ()
    n = len(out)
    for shift in shifts:
        feature = shift.feature
        if shift.kind == "mean":
            mean, sd = reference.mean[feature], reference.sd[feature]
            sd_units = shift.amount * intensity
            out[feature] = out[feature].astype("float64") + sd_units * sd
            records.append(
                {
                    "kind": "covariate",
                    "shift": "mean",
                    "feature": feature,
                    "sd_units": sd_units,
                    "delta": sd_units * sd,
                    "reference_mean": mean,
                    "reference_sd": sd,
                }
            )
        elif shift.kind == "scale":
            mean, sd = reference.mean[feature], reference.sd[feature]
            factor = 1.0 + (shift.amount - 1.0) * intensity
            out[feature] = mean + factor * (out[feature].astype("float64") - mean)
            records.append(
                {
                    "kind": "covariate",
                    "shift": "scale",
                    "feature": feature,
                    "factor": factor,
                    "reference_mean": mean,
                    "reference_sd": sd,
                }
            )
        elif shift.kind == "missing":
            rows = _pick(rng, n, shift.amount * intensity)
            column = (
                out[feature].astype("float64") if is_numeric(out[feature]) else out[feature].astype(object)
            )
            column.iloc[rows] = np.nan
            out[feature] = column
            records.append(
                {
                    "kind": "covariate",
                    "shift": "missing",
                    "feature": feature,
                    "fraction": shift.amount * intensity,
                    "rows_affected": int(len(rows)),
                }
            )
        elif shift.kind == "category":
            rows = _pick(rng, n, shift.amount * intensity)
            column = out[feature].astype(object)
            column.iloc[rows] = shift.value
            out[feature] = column
            records.append(
                {
                    "kind": "covariate",
                    "shift": "new_category",
                    "feature": feature,
                    "value": shift.value,
                    "fraction": shift.amount * intensity,
                    "rows_affected": int(len(rows)),
                }
            )
        else:
            target = reference.target
            if target is None or target not in out.columns:
                continue
            labelled = np.flatnonzero(out[target].notna().to_numpy())
            rows = labelled[_pick(rng, len(labelled), shift.amount * intensity)]
            values = out[target].to_numpy(copy=True)
            if reference.task == "classification":
                classes = list(reference.classes)
                offsets = rng.integers(1, len(classes), size=len(rows))
                # A label outside the reference classes counts as position 0 and still changes.
                values[rows] = [
                    classes[((classes.index(v) if v in classes else 0) + o) % len(classes)]
                    for v, o in zip(values[rows], offsets, strict=True)
                ]
                method = "flipped to another class"
            else:
                values[rows] = values[rows][rng.permutation(len(rows))]
                method = "targets shuffled among the affected rows"
            out[target] = pd.Series(values, dtype=out[target].dtype)
            records.append(
                {
                    "kind": "label",
                    "shift": "label_noise",
                    "feature": target,
                    "method": method,
                    "fraction": shift.amount * intensity,
                    "rows_affected": int(len(rows)),
                }
            )
    return out, tuple(records)


def apply_shifts(
    frame: pd.DataFrame,
    shifts: Iterable[Shift | str],
    seed: int,
    reference: pd.DataFrame | Reference | None = None,
    intensity: float = 1.0,
    target: str | None = "target",
) -> pd.DataFrame:
    """Return a shifted copy of `frame`; amounts are measured on `reference` (default: `frame` itself).

    >>> frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "target": [0, 1, 0, 1]})
    >>> apply_shifts(frame, ["mean:x:2"], seed=0)["x"].round(3).tolist()
    [2.582, 3.582, 4.582, 5.582]
    """
    parsed = tuple(s for item in shifts for s in (parse_shifts([item]) if isinstance(item, str) else (item,)))
    if not isinstance(reference, Reference):
        reference = Reference.from_frame(frame if reference is None else reference, target=target)
    check_shifts(parsed, reference)
    shifted, _ = shift_block(frame, parsed, np.random.default_rng(seed), reference, intensity)
    return shifted
