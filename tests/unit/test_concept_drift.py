"""Concept drift detectors restored from recorded JSON state, and the performance check."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipelines.drift.concept import (
    DETECTORS,
    FROUROS_STATE,
    RIVER_ADWIN_STATE,
    decode_state,
    encode_state,
    frouros_adwin_state,
    performance_drift,
    recheck_state,
    update_concept,
)


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


# --- ADWIN: River's compiled window, and streams recorded with Frouros' -------------------------------


def river_adwin_rows(errors: np.ndarray) -> list[int]:
    """River's public ADWIN over the rows, restarted after each detection as `update_concept` does."""
    from river.drift import ADWIN

    detector, rows = ADWIN(), []
    for i, value in enumerate(errors.tolist()):
        detector.update(value)
        if detector.drift_detected:
            rows.append(i)
            detector = ADWIN()
    return rows


def frouros_adwin_rows(errors: np.ndarray) -> list[int]:
    from frouros.detectors.concept_drift import ADWIN

    detector, rows = ADWIN(), []
    for i, value in enumerate(errors.tolist()):
        detector.update(value=value)
        if detector.drift:
            rows.append(i)
            detector.reset()
    return rows


def test_adwin_is_rivers_adwin() -> None:
    errors = np.concatenate([error_stream(7), error_stream(8)])
    result = update_concept("adwin", None, errors)
    assert json.loads(result.state)["version"] == RIVER_ADWIN_STATE
    assert list(result.drift_rows) == river_adwin_rows(errors) and len(result.drift_rows) >= 2


def test_an_adwin_stream_recorded_with_frouros_goes_on_with_frouros() -> None:
    errors = error_stream(9)
    state, rows, offset = frouros_adwin_state(), [], 0
    for size in (1200, 1, 999, 1800, 1000):
        part = update_concept("adwin", state, errors[offset:offset + size])
        assert json.loads(part.state)["version"] == FROUROS_STATE
        state, rows, offset = part.state, rows + [offset + r for r in part.drift_rows], offset + size
    expected = frouros_adwin_rows(errors)
    assert rows == expected and expected != river_adwin_rows(errors)  # the two ADWINs differ on this stream
    assert json.loads(state) == json.loads(update_concept("adwin", frouros_adwin_state(), errors).state)


def test_audit_restarts_a_frouros_adwin_stream_with_frouros() -> None:
    errors = error_stream(10)[:2500]
    old = update_concept("adwin", frouros_adwin_state(), errors)  # what a log before River's ADWIN recorded
    start = recheck_state("adwin", None, old.state)
    assert update_concept("adwin", start, errors) == old
    new = update_concept("adwin", None, errors)
    assert recheck_state("adwin", None, new.state) is None
    assert recheck_state("adwin", old.state, old.state) == old.state  # a stream going on needs nothing
    ddm = update_concept("ddm", None, errors).state
    assert recheck_state("ddm", ddm, ddm) == ddm
    assert recheck_state("adwin", ddm, old.state) == frouros_adwin_state()  # the detector changed: fresh


def test_the_recorded_window_names_rivers_numbers() -> None:
    errors = error_stream(11)[:1500]
    det, _ = decode_state("adwin", update_concept("adwin", None, errors).state)
    window = json.loads(encode_state("adwin", det, {"rows_total": 0, "detections": 0}))["window"]
    assert (window["width"], window["total"], window["variance"], window["n_detections"]) == (
        det.window.get_width(), det.window.get_total(), det.window.get_variance(), det.window.get_n_detections())
    assert window["width"] == 1500 and window["total"] == errors.sum()


def test_a_river_window_laid_out_differently_is_refused_by_name() -> None:
    data = json.loads(update_concept("adwin", None, error_stream(12)[:300]).state)
    data["window"]["layout"][0] += 1
    with pytest.raises(ValueError, match="laid out differently.*allowed: state written by the same River"):
        update_concept("adwin", json.dumps(data), [0, 1])
