"""Snapshots are a cache: PipelineState <-> JSON is lossless, and loading with or without one gives one state.

The log is built with `decide` + `evolve` (tests/builders.py) and covers every part of the state: blocks with
drift verdicts and metrics, rejected files, models of every status, a round in flight, an open circuit, a
rollback.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from builders import Driver, accept, at, config, failure, outcome, register, request, success

from calmops_actors import readlog
from calmops_actors.errors import UserError
from calmops_actors.home import Home, stream_id
from eventstore import canonical_json
from pipelines.core.decide import RecordDriftCheck, RecordPerformance, RejectFile, ResumeRetraining, Rollback
from pipelines.core.state import PipelineState, replay
from pipelines.drift.results import DriftAssessment, FeatureDrift
from pipelines.replay import snapshot


def drift_check(block_id: str, t: float, drifted: bool) -> RecordDriftCheck:
    feature = FeatureDrift(name="x1", kind="numeric", test="ks", statistic=0.4, p_value=0.001, p_adjusted=0.002,
                           effect=0.9 if drifted else 0.01, effect_name="wasserstein_sd", drifted=drifted)
    return RecordDriftCheck(block_id=block_id, reference_blocks=("b1",), occurred_at=at(t),
                            assessment=DriftAssessment(drifted=drifted, reasons=("x1 moved",) if drifted else (),
                                                       features=(feature,), multivariate=None, concept=None,
                                                       performance=None))


def scenario() -> Driver:
    d = Driver()
    d(register(config(circuit_breaker={"max_consecutive_failures": 2}), t=0))
    d(accept("b1", t=1))
    d(request("r1", t=2, strategies=("full",)))
    d(outcome("r1", success("full", 0.9), t=3))
    d(accept("b2", t=4))
    d(RecordPerformance(block_id="b2", model_version="v1", metrics={"accuracy": 0.88, "f1_macro": 0.8},
                        occurred_at=at(5)))
    d(drift_check("b2", 6, drifted=False))
    d(RejectFile(file="bad.csv", sha256="f" * 64, reason_code="wrong_delimiter", message="bad", occurred_at=at(7)))
    d(accept("b3", labelled=False, t=8))
    d(drift_check("b3", 10, drifted=True))
    d(request("r2", t=11))
    d(outcome("r2", success("full", 0.95), success("windowed", 0.93), champion=0.7, t=12))
    d(request("r3", t=13))
    d(outcome("r3", failure("full"), failure("windowed", "TimeoutError"), champion=0.95, t=14))
    d(request("r4", t=15))
    d(outcome("r4", failure("full"), failure("windowed"), champion=0.95, t=16))  # opens the circuit
    d(ResumeRetraining(reason="fixed the data", occurred_at=at(17)))
    d(request("r5", t=18))
    d(outcome("r5", success("full", 0.94), champion=0.95, t=19))
    d(Rollback(to_version="v1", reason="v2 misbehaves", occurred_at=at(20)))
    d(request("r6", t=21))  # left in flight
    return d


LOG = scenario().log


def through_json(state: PipelineState) -> PipelineState:
    """What a snapshot really goes through: canonical JSON text in the store, parsed back."""
    return snapshot.from_dict(json.loads(canonical_json(snapshot.to_dict(state))))


def test_the_scenario_reaches_every_part_of_the_state() -> None:
    final = replay(LOG)
    statuses = {m.status for m in final.models.values()}
    assert statuses >= {"champion", "retired", "rejected"}
    assert final.round is not None and final.round.round_id == "r6"
    assert final.circuit.last_reason and final.counters.rollbacks == 1
    assert any(b.metrics for b in final.blocks.values()) and any(b.drifted for b in final.blocks.values())
    assert any(v.startswith("rejected:") for v in final.files.values())


@pytest.mark.parametrize("cut", range(len(LOG) + 1))
def test_every_prefix_state_survives_the_round_trip(cut: int) -> None:
    state = replay(LOG[:cut])
    assert through_json(state) == state


def test_the_open_circuit_survives_the_round_trip() -> None:
    opened = next(i for i, e in enumerate(LOG) if type(e).__name__ == "CircuitOpened")
    state = replay(LOG[: opened + 1])
    assert state.circuit.open
    assert through_json(state) == state


@pytest.mark.parametrize("cut", [0, 3, 9, len(LOG) // 2, len(LOG) - 1, len(LOG)])
def test_snapshot_plus_tail_equals_the_full_fold(cut: int) -> None:
    assert replay(LOG[cut:], through_json(replay(LOG[:cut]))) == replay(LOG)


def test_a_snapshot_is_plain_json_with_columns_not_one_object_per_block() -> None:
    data = snapshot.to_dict(replay(LOG))
    assert json.loads(canonical_json(data)) == data
    assert sorted(data["blocks"]["block_id"]) == ["b1", "b2", "b3"]
    assert isinstance(data["blocks"]["artifact.sha256"], list)


def test_schema_names_the_shape_and_changes_with_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert f"pipeline-state/{snapshot._fingerprint()}" == snapshot.SCHEMA
    before = snapshot._fingerprint()
    from dataclasses import dataclass

    @dataclass
    class Extra:
        added: int = 0

    monkeypatch.setattr(snapshot, "_RECORDS", (*snapshot._RECORDS, Extra))
    assert snapshot._fingerprint() != before
    monkeypatch.setattr(snapshot, "LAYOUT", snapshot.LAYOUT + 1)
    assert snapshot._fingerprint() != before


@pytest.mark.parametrize("damage", [
    lambda d: d["blocks"].pop("seq"),
    lambda d: d["blocks"]["rows"].pop(),
    lambda d: d["models"]["holdout_metrics"]["values"].append(1.0),
    lambda d: d["files"][0].pop(),
])
def test_damaged_snapshot_data_is_refused(damage) -> None:
    data = json.loads(canonical_json(snapshot.to_dict(replay(LOG))))
    damage(data)
    with pytest.raises((KeyError, TypeError, ValueError)):
        snapshot.from_dict(data)


# --- through the store and readlog ---------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path) -> Path:
    root = tmp_path / "home"
    store = Home(root).create().open_store()
    store.append(stream_id("p"), list(LOG[:10]), expected_version=0)
    store.append(stream_id("p"), list(LOG[10:]), expected_version=10)
    store.close()
    return root


def test_state_with_and_without_snapshot_is_equal_and_deleting_snapshots_changes_nothing(home: Path) -> None:
    with readlog.open_log(home) as store:
        plain = readlog.load_state(store, "p", use_snapshot=False)
        assert plain.snapshot_version is None and plain.state == replay(LOG)
        readlog.save_snapshot(store, "p", readlog.load_state(store, "p", until_version=12).state)
        cached = readlog.load_state(store, "p")
        assert cached.snapshot_version == 12
        assert cached.state == plain.state and cached.position == plain.position
        for n in (5, 12, 13, len(LOG)):  # bounds before, at and after the snapshot
            with_snap = readlog.load_state(store, "p", until_version=n)
            assert with_snap.state == readlog.load_state(store, "p", until_version=n, use_snapshot=False).state
            assert with_snap.state == replay(LOG[:n])
            assert with_snap.snapshot_version == (12 if n >= 12 else None)
        for p in (4, 12, 20):
            assert readlog.load_state(store, "p", until_position=p).state == replay(LOG[:p])
        store.delete_snapshots()
        assert readlog.load_state(store, "p").state == plain.state


def test_a_snapshot_from_other_code_is_ignored(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with readlog.open_log(home) as store:
        store.save_snapshot(stream_id("p"), 12, {"not": "a state"}, snapshot.SCHEMA)  # damaged entry
        loaded = readlog.load_state(store, "p")
        assert loaded.snapshot_version is None and loaded.state == replay(LOG)
        readlog.save_snapshot(store, "p", replay(LOG[:12]))
        monkeypatch.setattr(snapshot, "SCHEMA", "pipeline-state/other")
        loaded = readlog.load_state(store, "p")
        assert loaded.snapshot_version is None and loaded.state == replay(LOG)


def test_a_snapshot_that_lies_about_its_version_is_ignored(home: Path) -> None:
    with readlog.open_log(home) as store:
        wrong = replace(replay(LOG[:12]), version=11)  # says 11 but holds 12 events' worth
        store.save_snapshot(stream_id("p"), 12, snapshot.to_dict(wrong), snapshot.SCHEMA)
        assert readlog.load_state(store, "p").snapshot_version is None


def test_readlog_refuses_a_missing_home_or_pipeline_without_creating_anything(tmp_path: Path, home: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(UserError, match="no calmops home"):
        readlog.open_log(missing)
    assert not missing.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no event log"):
        readlog.open_log(empty)
    assert list(empty.iterdir()) == []
    with readlog.open_log(home) as store, pytest.raises(UserError, match="known pipelines: p"):
        readlog.load_state(store, "q")


@pytest.mark.parametrize("values", [
    [],
    [{"accuracy": 0.9, "f1_macro": 0.8}, {"accuracy": 0.7, "f1_macro": 0.6}],  # one key set: the fast path
    [{}, {}],
    [None, {"accuracy": 0.9}, {"r2": 0.5, "mae": 1.0}, {}],
])
def test_metrics_columns_round_trip(values) -> None:
    packed = json.loads(canonical_json(snapshot._pack_metrics(values)))
    assert snapshot._unpack_metrics(packed) == values
    assert [list(m) for m in snapshot._unpack_metrics(packed) if m] == [list(m) for m in values if m]  # key order
