"""Concept drift detectors restored from recorded JSON state, and the performance check."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipelines.drift.concept import DETECTORS, decode_state, encode_state, performance_drift, update_concept


def error_stream(seed: int) -> np.ndarray:
    """2,000 rows at 5% errors, then 1,500 at 40%, then 1,500 at 5% again."""
    rng = np.random.default_rng(seed)
    rates = np.concatenate([np.full(2000, 0.05), np.full(1500, 0.40), np.full(1500, 0.05)])
    return (rng.random(len(rates)) < rates).astype(int)


@pytest.mark.parametrize("detector", sorted(DETECTORS))
def test_restore_then_continue_equals_an_uninterrupted_run(detector: str) -> None:
    errors = error_stream(1)
    whole = update_concept(detector, None, errors)
    state, rows, offset = None, [], 0
    for size in (700, 1, 1299, 613, 1387, 1000):  # uneven cuts, one of a single row
        part = update_concept(detector, state, errors[offset:offset + size])
        state = json.loads(json.dumps(json.loads(part.state)))  # through the log: text, parsed, re-encoded
        state = json.dumps(state)
        rows += [offset + r for r in part.drift_rows]
        offset += size
    assert offset == len(errors)
    assert rows == list(whole.drift_rows)
    assert whole.drift, "the 5% -> 40% change must be seen, or this test proves nothing"
    assert json.loads(state) == json.loads(whole.state)
    assert part.rows_seen == whole.rows_seen


@pytest.mark.parametrize("detector", sorted(DETECTORS))
def test_state_is_plain_json_and_round_trips(detector: str) -> None:
    result = update_concept(detector, None, error_stream(2)[:1500])
    data = json.loads(result.state)
    assert data["detector"] == detector and data["rows_total"] == 1500
    json.dumps(data, allow_nan=False)
    det, meta = decode_state(detector, result.state)
    assert encode_state(detector, det, meta) == result.state


def test_infinities_are_spelled_out() -> None:
    fresh = update_concept("ddm", None, [0, 1, 0])  # DDM keeps min_error_rate = inf until 30 rows
    data = json.loads(fresh.state)
    assert data["vars"]["min_error_rate"] == {"float": "inf"}
    restored, _ = decode_state("ddm", fresh.state)
    assert restored.min_error_rate == float("inf")


def test_adwin_finds_a_rise_in_errors_and_resets() -> None:
    errors = error_stream(3)
    first = update_concept("adwin", None, errors[:2000])
    second = update_concept("adwin", first.state, errors[2000:3000])
    assert not first.drift
    assert second.drift and second.drift_rows[0] < 300
    assert second.rows_seen == 1000 - 1 - second.drift_rows[-1]  # counting restarts after a detection
    assert json.loads(second.state)["detections"] == len(second.drift_rows)


def test_regression_errors_need_a_numeric_detector() -> None:
    rng = np.random.default_rng(4)
    errors = np.abs(np.concatenate([rng.normal(0, 1, 3000), rng.normal(0, 4, 1000)]))
    with pytest.raises(ValueError, match="reads 0/1 errors; allowed"):
        update_concept("ddm", None, errors)
    result = update_concept("adwin", None, errors)
    assert result.drift and min(result.drift_rows) >= 3000


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="allowed: ddm, eddm, adwin, page_hinkley"):
        update_concept("kswin", None, [0, 1])
    with pytest.raises(ValueError, match="finite numbers"):
        update_concept("adwin", None, [0.1, float("nan")])


def test_a_state_from_another_detector_starts_fresh() -> None:
    ddm_state = update_concept("ddm", None, error_stream(5)[:500]).state
    result = update_concept("eddm", ddm_state, [0, 1, 0])
    assert json.loads(result.state)["rows_total"] == 3
    assert result.rows_seen == 3


def test_max_rows_thins_a_long_block_and_keeps_block_positions() -> None:
    errors = error_stream(6)
    thinned = update_concept("adwin", None, errors, max_rows=1000)
    assert json.loads(thinned.state)["rows_total"] == 1000
    assert thinned.block_rows == 5000
    assert thinned.drift and all(2000 <= r < 5000 for r in thinned.drift_rows)
    assert all(r % 5 == 0 for r in thinned.drift_rows)  # evenly spaced rows: every fifth


def test_performance_drift_in_both_directions() -> None:
    fell = performance_drift("accuracy", 0.91, 0.72, 0.05)
    assert (fell.drifted, fell.at_promotion, fell.observed, fell.tolerance) == (True, 0.91, 0.72, 0.05)
    assert performance_drift("accuracy", 0.91, 0.87, 0.05).drifted is False
    assert performance_drift("accuracy", 0.91, 0.99, 0.05).drifted is False  # better is never drift
    assert performance_drift("rmse", 1.0, 1.2, 0.1, higher_is_better=False).drifted is True
    assert performance_drift("rmse", 1.0, 0.5, 0.1, higher_is_better=False).drifted is False
    with pytest.raises(ValueError, match="tolerance is -0.1; allowed"):
        performance_drift("accuracy", 0.9, 0.8, -0.1)
    with pytest.raises(ValueError, match="allowed: a finite number"):
        performance_drift("accuracy", 0.9, float("nan"), 0.05)
