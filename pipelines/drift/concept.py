"""Concept and performance drift: a streaming detector on the model's errors, and a metric against its bar.

`update_concept` feeds one block's per-row errors to a Frouros streaming detector restored from the
JSON text recorded after the previous block, and returns the new JSON text. The detector's state thus
crosses blocks and restarts through the event log and is never rebuilt by replaying errors. Frouros
detectors hold plain numbers, a running `Mean` and (ADWIN) a deque of buckets; `encode_state` and
`decode_state` capture exactly those and fail loudly on anything else, so a Frouros upgrade that adds
state is caught by the restore-equals-uninterrupted test.

After a detection the detector is reset (as River's detectors do) and keeps reading the rest of the
block, so the next alarm needs fresh evidence. Pass `state=None` when a new model starts serving: its
error stream is a new stream.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Sequence
from typing import Any, Literal, get_args

import numpy as np
from frouros.detectors.concept_drift import ADWIN, DDM, EDDM, PageHinkley
from frouros.detectors.concept_drift.streaming.window_based.adwin import Bucket
from frouros.utils.stats import Mean

from pipelines.config.drift import check_number
from pipelines.drift.results import ConceptDrift, PerformanceDrift  # noqa: F401 - re-exported

ConceptDetector = Literal["ddm", "eddm", "adwin", "page_hinkley", "none"]
DETECTORS = {"ddm": DDM, "eddm": EDDM, "adwin": ADWIN, "page_hinkley": PageHinkley}
DETECTOR_LABELS = {"ddm": "DDM", "eddm": "EDDM", "adwin": "ADWIN", "page_hinkley": "Page-Hinkley"}
BINARY_ONLY = ("ddm", "eddm")
STATE_VERSION = 1


def update_concept(detector: str, state: str | None, errors: Sequence[float], *,
                   max_rows: int | None = None) -> ConceptDrift:
    """Feed one block's errors (0/1 per row, or a regression error series) to a restored detector.

    DDM and EDDM read 0/1 errors only; use "adwin" or "page_hinkley" for a numeric error series.
    A `state` recorded by a different detector is ignored (the detector starts fresh). A block longer
    than `max_rows` is thinned to every k-th row, k = ceil(rows / max_rows) (the detectors cost
    10-200 us per row in Python);
    `drift_rows` still name positions in the whole block.

    >>> first = update_concept("ddm", None, [0, 0, 0, 1] * 100)  # 25% errors: the model's usual level
    >>> later = update_concept("ddm", first.state, [0, 1] * 100)  # 50% errors in the next block
    >>> (first.drift, first.rows_seen, later.drift, later.drift_rows, later.rows_seen)
    (False, 400, True, (81,), 118)
    >>> later.change_rows  # 50% errors from the block's first row: the change began before it
    (0,)
    """
    if detector not in DETECTORS:
        allowed = ", ".join(DETECTORS)
        raise ValueError(f"concept detector is {detector!r}; allowed: {allowed}")
    values = np.asarray(errors, dtype=float)
    if values.ndim != 1 or not np.isfinite(values).all():
        raise ValueError("errors must be a flat sequence of finite numbers; allowed: 0/1 per row or an error series")
    if detector in BINARY_ONLY and not np.isin(values, (0.0, 1.0)).all():
        raise ValueError(f"{DETECTOR_LABELS[detector]} reads 0/1 errors; allowed: 0/1 per row, or concept_detector "
                         "= 'adwin' or 'page_hinkley' for a regression error series")
    positions = np.arange(len(values))
    if max_rows is not None and len(values) > max_rows:
        positions = positions[:: math.ceil(len(values) / max_rows)]
    det, meta = decode_state(detector, state)
    drift_rows: list[int] = []
    warning = False
    binary = detector in BINARY_ONLY
    for i, value in zip(positions.tolist(), values[positions].tolist(), strict=True):
        det.drift = False  # ADWIN leaves the flag up once raised; read it per row
        det.update(value=int(value) if binary else value)
        if det.drift:
            drift_rows.append(i)
            det.reset()
        elif getattr(det, "warning", False):
            warning = True
    meta = {"rows_total": meta["rows_total"] + len(positions), "detections": meta["detections"] + len(drift_rows)}
    starts = [0, *(r + 1 for r in drift_rows)][:len(drift_rows)]  # each detection: the rows since the one before
    change_rows = tuple(start + change_row(values[start:end + 1])
                        for start, end in zip(starts, drift_rows, strict=True))
    return ConceptDrift(detector=detector, drift=bool(drift_rows), warning=warning and not drift_rows,
                        rows_seen=int(det.num_instances), state=encode_state(detector, det, meta),
                        drift_rows=tuple(drift_rows), block_rows=len(values), change_rows=change_rows)


CHANGE_MIN_Z = 3.0  # a split inside the rows must stand out this many standard errors, else the change came earlier


def change_row(errors: Sequence[float] | np.ndarray) -> int:
    """Where, among these rows (a detector's evidence, oldest first), the error level most likely changed.

    Why: a streaming detector fires some rows *after* a change (ADWIN needs evidence; its window after a
    detection is not the change either), and a retraining round wants the rows of the new concept only. The
    estimate is the classic CUSUM split: the row t that maximises |mean(after t) - mean(before t)| x
    sqrt(t (n - t) / n). It is kept only when that difference stands out (z >= `CHANGE_MIN_Z` standard errors
    of the rows' own spread); otherwise every row already shows the new level, the change began before them,
    and the answer is 0.

    >>> rng = np.random.default_rng(0)
    >>> change_row(np.r_[rng.random(500) < 0.1, rng.random(300) < 0.4].astype(float))
    500
    >>> change_row((rng.random(300) < 0.4).astype(float))
    0
    """
    e = np.asarray(errors, dtype=float)
    n = len(e)
    if n < 4:
        return 0
    sd = float(e.std())
    if sd == 0.0:
        return 0
    total = np.cumsum(e)
    t = np.arange(1, n)
    before = total[:-1] / t
    after = (total[-1] - total[:-1]) / (n - t)
    stat = np.abs(after - before) * np.sqrt(t * (n - t) / n) / sd
    best = int(np.argmax(stat))
    return best + 1 if stat[best] >= CHANGE_MIN_Z and after[best] > before[best] else 0


def performance_drift(metric: str, at_promotion: float, observed: float, tolerance: float,
                      higher_is_better: bool = True) -> PerformanceDrift:
    """Drift when the metric is worse than at promotion by more than `tolerance` (absolute).

    >>> performance_drift("accuracy", 0.91, 0.72, 0.05).drifted
    True
    >>> performance_drift("rmse", 1.20, 1.24, 0.05, higher_is_better=False).drifted
    False
    """
    check_number("tolerance", tolerance, low=0.0)
    for name, value in (("at_promotion", at_promotion), ("observed", observed)):
        if not math.isfinite(float(value)):
            raise ValueError(f"{metric} {name} is {value!r}; allowed: a finite number")
    drop = (at_promotion - observed) if higher_is_better else (observed - at_promotion)
    return PerformanceDrift(metric=metric, at_promotion=float(at_promotion), observed=float(observed),
                            tolerance=float(tolerance), drifted=bool(drop > tolerance),
                            higher_is_better=higher_is_better)


# --- state as JSON ------------------------------------------------------------------------------------


def encode_state(detector: str, det: Any, meta: dict[str, int]) -> str:
    """The detector's numbers as JSON text (infinities spelled out, floats round-trip exactly)."""
    payload = {
        "version": STATE_VERSION,
        "detector": detector,
        "num_instances": int(det.num_instances),
        "drift": bool(det.drift),
        "vars": {key: _encode(value) for key, value in det.additional_vars.items()},
        **meta,
    }
    return json.dumps(payload, sort_keys=True, allow_nan=False)


def decode_state(detector: str, state: str | None) -> tuple[Any, dict[str, int]]:
    """A detector carrying the recorded numbers, and the running totals; fresh when `state` is None."""
    det = DETECTORS[detector]()
    meta = {"rows_total": 0, "detections": 0}
    if state is None:
        return det, meta
    data = json.loads(state)
    if data.get("detector") != detector or data.get("version") != STATE_VERSION:
        return det, meta
    restored = {key: _decode(value) for key, value in data["vars"].items()}
    if set(restored) != set(det.additional_vars):
        raise ValueError(f"recorded {detector} state has variables {sorted(restored)}, this Frouros expects "
                         f"{sorted(det.additional_vars)}; allowed: state written by the same Frouros version")
    det.additional_vars = restored
    det.num_instances = data["num_instances"]
    det.drift = data["drift"]
    return det, {"rows_total": data["rows_total"], "detections": data["detections"]}


def _encode(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, Mean):
        return {"mean": _encode(value.mean), "num_values": int(value.num_values)}
    if isinstance(value, deque) and all(isinstance(b, Bucket) for b in value):
        return {"buckets": [{"m": b.array_size - 1, "idx": int(b.idx), "total": b.total.tolist(),
                             "variance": b.variance.tolist()} for b in value]}
    raise TypeError(f"cannot record a detector variable of type {type(value).__name__}")


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"float"}:
        return float(value["float"])
    if isinstance(value, dict) and set(value) == {"mean", "num_values"}:
        mean = Mean()
        mean.mean, mean.num_values = _decode(value["mean"]), value["num_values"]
        return mean
    if isinstance(value, dict) and set(value) == {"buckets"}:
        buckets = deque()
        for item in value["buckets"]:
            bucket = Bucket(m=item["m"])
            bucket.total = np.array(item["total"], dtype=float)
            bucket.variance = np.array(item["variance"], dtype=float)
            bucket.idx = item["idx"]
            buckets.append(bucket)
        return buckets
    return value


CONCEPT_DETECTORS: tuple[str, ...] = get_args(ConceptDetector)
