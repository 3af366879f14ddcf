"""Concept and performance drift: a streaming detector on the model's errors, and a metric against its bar.

`update_concept` feeds one block's per-row errors to a streaming detector restored from the JSON text
recorded after the previous block, and returns the new JSON text. The detector's state thus crosses blocks
and restarts through the event log and is never rebuilt by replaying errors.

ADWIN is River's (`river.drift.ADWIN`'s window, compiled with Cython); DDM, EDDM and Page-Hinkley are
Frouros'. An ADWIN stream recorded with Frouros' ADWIN (state format 1, before River's replaced it) goes on
with Frouros' until the stream restarts, so a log keeps reproducing (`recheck_state`). The state is the
detector's numbers: Frouros' plain numbers, running `Mean`s and ADWIN buckets; River's window as its own pickle
protocol lays it out (named fields, buckets, and River's layout checksum, so a River whose window changed is
refused by name). `encode_state` and `decode_state` fail loudly on anything else, so an upgrade that adds state
is caught by the restore-equals-uninterrupted test.

After a detection the detector is reset (as River's detectors do) and keeps reading the rest of the
block, so the next alarm needs fresh evidence. Pass `state=None` when a new model starts serving: its
error stream is a new stream.
"""

from __future__ import annotations

import json
import math
import pickle
from collections import deque
from collections.abc import Sequence
from typing import Any, Literal, get_args

import numpy as np
from frouros.detectors.concept_drift import ADWIN, DDM, EDDM, PageHinkley
from frouros.detectors.concept_drift.streaming.window_based.adwin import Bucket
from frouros.utils.stats import Mean
from river.drift.adwin_c import AdaptiveWindowing
from river.drift.adwin_c import Bucket as WindowBucket

from pipelines.config.drift import check_number
from pipelines.drift.results import ConceptDrift, PerformanceDrift  # noqa: F401 - re-exported

ConceptDetector = Literal["ddm", "eddm", "adwin", "page_hinkley", "none"]
DETECTORS = {"ddm": DDM, "eddm": EDDM, "adwin": ADWIN, "page_hinkley": PageHinkley}  # Frouros' (state format 1)
DETECTOR_LABELS = {"ddm": "DDM", "eddm": "EDDM", "adwin": "ADWIN", "page_hinkley": "Page-Hinkley"}
BINARY_ONLY = ("ddm", "eddm")
FROUROS_STATE = 1  # a Frouros detector's variables
RIVER_ADWIN_STATE = 2  # River's ADWIN window
WINDOW_FIELDS = ("clock", "delta", "detect", "detect_twice", "grace_period", "max_buckets", "max_n_buckets",
                 "min_window_length", "n_buckets", "n_detections", "tick", "total", "total_width", "variance", "width")
"""`AdaptiveWindowing`'s numbers in the order its pickle state lists them (Cython: alphabetical), then its buckets."""


class RiverADWIN:
    """River's ADWIN window with what `update_concept` reads of a Frouros detector (`update`, `drift`, `reset`,
    `num_instances`: rows since the window last started).

    The window is `river.drift.ADWIN`'s own, with its defaults (the same as Frouros' ADWIN: delta 0.002,
    clock 32, 5 buckets per size, sub-windows of at least 5 rows, 10 rows before the first check).
    """

    warning = False  # ADWIN has no warning zone

    def __init__(self, window: AdaptiveWindowing | None = None, num_instances: int = 0) -> None:
        self.window = AdaptiveWindowing() if window is None else window
        self.num_instances = num_instances
        self.drift = False

    def update(self, value: float) -> None:
        self.num_instances += 1
        self.drift = self.window.update(value)

    def reset(self) -> None:
        self.window, self.num_instances, self.drift = AdaptiveWindowing(), 0, False


def update_concept(detector: str, state: str | None, errors: Sequence[float], *,
                   max_rows: int | None = None) -> ConceptDrift:
    """Feed one block's errors (0/1 per row, or a regression error series) to a restored detector.

    DDM and EDDM read 0/1 errors only; use "adwin" or "page_hinkley" for a numeric error series.
    A `state` recorded by a different detector is ignored (the detector starts fresh). A block longer
    than `max_rows` is thinned to every k-th row, k = ceil(rows / max_rows) (the Frouros detectors read
    rows one at a time in Python); `drift_rows` still name positions in the whole block.

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
    if isinstance(det, RiverADWIN):
        version, numbers = RIVER_ADWIN_STATE, {"window": _encode_window(det.window)}
    else:
        version, numbers = FROUROS_STATE, {"vars": {key: _encode(value) for key, value in det.additional_vars.items()}}
    payload = {"version": version, "detector": detector, "num_instances": int(det.num_instances),
               "drift": bool(det.drift), **numbers, **meta}
    return json.dumps(payload, sort_keys=True, allow_nan=False)


def decode_state(detector: str, state: str | None) -> tuple[Any, dict[str, int]]:
    """A detector carrying the recorded numbers, and the running totals; fresh when `state` is None.

    The state's format picks the implementation: River's ADWIN (2) or a Frouros detector (1); a fresh ADWIN
    is River's.
    """
    meta = {"rows_total": 0, "detections": 0}
    data = json.loads(state) if state is not None else {}
    version = data.get("version") if data.get("detector") == detector else None
    if version == RIVER_ADWIN_STATE and detector == "adwin":
        det = RiverADWIN(_decode_window(data["window"]), data["num_instances"])
    elif version == FROUROS_STATE:
        det = DETECTORS[detector]()
        restored = {key: _decode(value) for key, value in data["vars"].items()}
        if set(restored) != set(det.additional_vars):
            raise ValueError(f"recorded {detector} state has variables {sorted(restored)}, this Frouros expects "
                             f"{sorted(det.additional_vars)}; allowed: state written by the same Frouros version")
        det.additional_vars = restored
        det.num_instances = data["num_instances"]
        det.drift = data["drift"]
    else:
        return (RiverADWIN() if detector == "adwin" else DETECTORS[detector]()), meta
    return det, {"rows_total": data["rows_total"], "detections": data["detections"]}


def recheck_state(detector: str, before: str | None, recorded: str) -> str | None:
    """The state to re-run a recorded check from (`audit`): `before`, the state the check was handed, unless
    the check began a fresh ADWIN stream with Frouros' ADWIN (its `recorded` state has format 1: recorded
    before River's ADWIN replaced it); then a fresh Frouros ADWIN's state, so the check reproduces.

    >>> old = update_concept("adwin", frouros_adwin_state(), [0, 1] * 50).state  # as such a log recorded it
    >>> recheck_state("adwin", None, old) == frouros_adwin_state(), recheck_state("adwin", old, old) == old
    (True, True)
    >>> recheck_state("adwin", None, update_concept("adwin", None, [0, 1] * 50).state) is None
    True
    """
    began_with_frouros = detector == "adwin" and _format(detector, recorded) == FROUROS_STATE
    if began_with_frouros and _format(detector, before) != FROUROS_STATE:
        return frouros_adwin_state()
    return before


def frouros_adwin_state() -> str:
    """A fresh Frouros ADWIN's state: hand it to `update_concept` to run an ADWIN stream as logs before River's
    ADWIN recorded it."""
    return encode_state("adwin", ADWIN(), {"rows_total": 0, "detections": 0})


def _format(detector: str, state: str | None) -> int | None:
    data = json.loads(state) if state is not None else {}
    return data.get("version") if data.get("detector") == detector else None


def _encode_window(window: AdaptiveWindowing) -> dict[str, Any]:
    """River's window as named numbers and buckets, with River's layout checksums (from its pickle protocol)."""
    _, _, (*numbers, attributes) = window.__reduce_ex__(2)
    if len(numbers) != len(WINDOW_FIELDS) or set(attributes) != {"bucket_deque"}:
        raise TypeError(f"River's ADWIN window holds {len(numbers)} numbers and {sorted(attributes)}, not the "
                        f"{len(WINDOW_FIELDS)} numbers and buckets this code records")
    buckets = []
    for bucket in attributes["bucket_deque"]:
        idx, max_size, total, variance = bucket.__reduce_ex__(2)[2]
        buckets.append({"idx": int(idx), "max_size": int(max_size), "total": total.tolist(),
                        "variance": variance.tolist()})
    return {**{name: _encode(value) for name, value in zip(WINDOW_FIELDS, numbers, strict=True)},
            "buckets": buckets, "layout": [_WINDOW[2], _BUCKET[2]]}


def _decode_window(data: dict[str, Any]) -> AdaptiveWindowing:
    (new_window, window_type, _), (new_bucket, bucket_type, _) = _WINDOW, _BUCKET
    window_layout, bucket_layout = data["layout"]
    try:
        buckets = deque(new_bucket(bucket_type, bucket_layout, (
            b["idx"], b["max_size"], np.array(b["total"], dtype=float), np.array(b["variance"], dtype=float)))
            for b in data["buckets"])
        numbers = tuple(_decode(data[name]) for name in WINDOW_FIELDS)
        return new_window(window_type, window_layout, (*numbers, {"bucket_deque": buckets}))
    except pickle.PickleError as err:
        raise ValueError(f"recorded adwin state was written by a River whose ADWIN window is laid out differently "
                         f"({err}); allowed: state written by the same River version") from None


def _unpickler(obj: Any) -> tuple[Any, type, int]:
    """How pickle rebuilds a Cython object: the function, the type and the checksum of its field layout."""
    rebuild, (kind, layout, _), _ = obj.__reduce_ex__(2)
    return rebuild, kind, int(layout)


_WINDOW, _BUCKET = _unpickler(AdaptiveWindowing()), _unpickler(WindowBucket(1))


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
