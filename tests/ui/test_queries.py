"""`ui.queries.Queries` on the realistic scenario home (tests/scenario_home.py) after `update_projections`.

Every expected number is read from the log itself (payloads, or `replay` of the decoded events), never typed in.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from calmops_actors.home import Home, make_codec
from pipelines.core.state import replay
from ui.queries import Queries

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def home(projected_copy) -> Path:
    return projected_copy("ui-queries")


@pytest.fixture(scope="module")
def log(home):
    store = Home(home).open_store()
    try:
        return store.read_all()
    finally:
        store.close()


@pytest.fixture(scope="module")
def q(home) -> Queries:
    return Queries(home / "projections.sqlite")


def of_type(log, *types):
    return [r for r in log if r.type in types]


def state_upto(home, log, position):
    codec = make_codec()
    return replay(codec.decode(r) for r in log if r.position <= position and r.stream_id == "pipeline-sea")


def test_overview_matches_the_replayed_state(q, home, log):
    state = state_upto(home, log, log[-1].position)
    (row,) = q.overview().to_dict("records")
    assert (row["pipeline"], row["champion"], row["health"], row["blocks"]) == (
        "sea", state.champion, state.health, state.counters.blocks)
    assert row["promotions"] == state.counters.promotions == len(of_type(log, "ModelPromoted"))
    assert row["rollbacks"] == len(of_type(log, "ModelRolledBack")) == 1
    checks = [r.payload["drifted"] for r in of_type(log, "DriftChecked")][-10:]
    assert (row["recent_drifted"], row["recent_checked"]) == (sum(checks), len(checks))
    assert row["last_alert_type"] == "ModelRolledBack"
    summary = q.summary()
    assert (summary["pipelines"], summary["events"], summary["position"]) == (1, len(log), log[-1].position)
    assert q.head() == log[-1].position and q.pipeline_names() == ["sea"]


def test_promotions_and_rollbacks_are_the_champion_changes(q, log):
    changes = q.champion_changes("sea")
    promoted = of_type(log, "ModelPromoted")
    assert changes[changes["kind"] == "promoted"]["to_version"].tolist() == [r.payload["model_version"] for r in promoted]
    (rollback,) = of_type(log, "ModelRolledBack")
    last = changes.iloc[-1]
    assert (last["kind"], last["from_version"], last["to_version"]) == (
        "rolled_back", rollback.payload["from_version"], rollback.payload["to_version"])


def test_rejected_file_and_its_reason(q, log):
    (rejected,) = of_type(log, "BlockRejected")
    frame = q.rejected_files("sea")
    assert len(frame) == 1
    row = frame.iloc[0]
    assert (row["file"], row["reason_code"], row["message"]) == (
        rejected.payload["file"], rejected.payload["reason_code"], rejected.payload["message"])
    assert row["reason_code"] == "wrong_delimiter"


def test_drifted_cells_match_the_drift_checks(q, log):
    expected = {(r.payload["block_id"], f["name"]) for r in of_type(log, "DriftChecked")
                for f in r.payload["features"] if f["drifted"]}
    cells = q.drift_matrix("sea", last_blocks=1000)
    assert expected and set(zip(cells[cells["drifted"] == 1]["block_id"], cells[cells["drifted"] == 1]["feature"],
                                strict=True)) == expected
    n_cells = sum(len(r.payload["features"]) for r in of_type(log, "DriftChecked"))
    assert len(cells) == n_cells
    effects = {(r.payload["block_id"], f["name"]): f["effect"] for r in of_type(log, "DriftChecked")
               for f in r.payload["features"]}
    assert all(effects[(b, f)] == e for b, f, e in zip(cells["block_id"], cells["feature"], cells["effect"],
                                                          strict=True))


def test_window_limits_the_blocks_returned(q):
    assert q.blocks("sea", limit=3)["seq"].tolist() == [8, 7, 6]
    assert q.blocks("sea", limit=3, before_seq=6)["seq"].tolist() == [5, 4, 3]
    assert sorted(set(q.drift_matrix("sea", last_blocks=2)["seq"])) == [7, 8]
    assert q.performance("sea", last_blocks=2)["seq"].tolist() == [7, 8]


def test_performance_per_block_is_the_prequential_score(q, log):
    perf = q.performance("sea", last_blocks=1000)
    measured = of_type(log, "PerformanceMeasured")
    assert perf["block_id"].tolist() == [r.payload["block_id"] for r in measured]
    assert perf["value"].tolist() == [r.payload["metrics"]["accuracy"] for r in measured]
    assert perf["model_version"].tolist() == [r.payload["model_version"] for r in measured]
    bars = {r.payload["block_id"]: r.payload["performance"] for r in of_type(log, "DriftChecked")
            if r.payload.get("performance")}
    for row in perf.to_dict("records"):
        if row["block_id"] in bars:
            assert (row["at_promotion"], row["tolerance"], bool(row["drifted"])) == (
                bars[row["block_id"]]["at_promotion"], bars[row["block_id"]]["tolerance"],
                bars[row["block_id"]]["drifted"])


def test_models_statuses_and_lineage_match_the_state(q, home, log):
    state = state_upto(home, log, log[-1].position)
    models = q.models("sea")
    assert len(models) == len(state.models) == len(of_type(log, "CandidateTrained"))
    assert dict(zip(models["version"], models["status"], strict=True)) == {
        v: m.status for v, m in state.models.items()}
    assert models.iloc[0]["version"] == state.champion  # champion first
    newest = max(state.models, key=lambda v: int(v[1:]))
    for version in (state.champion, newest, "v999"):
        assert q.lineage("sea", version) == [m.version for m in state.lineage(version)]
    row = models[models["version"] == newest].iloc[0]
    assert row["lineage"].split(" ← ")[:2] == [newest, state.models[newest].parent]
    trained = {r.payload["model_version"]: r.payload for r in of_type(log, "CandidateTrained")}
    assert all(trained[v]["sha256"] == sha for v, sha in zip(models["version"], models["artifact_sha256"],
                                                              strict=True))


def test_rounds_and_their_candidates(q, log):
    rounds = q.rounds("sea")
    requested = of_type(log, "RetrainRequested")
    assert sorted(rounds["round_id"]) == sorted(r.payload["round_id"] for r in requested)
    promoted = {r.payload["round_id"]: r.payload["model_version"] for r in of_type(log, "ModelPromoted")}
    rejected = {r.payload["round_id"] for r in of_type(log, "ChallengerRejected")}
    for row in rounds.to_dict("records"):
        if row["round_id"] in promoted:
            assert (row["outcome"], row["promoted_version"]) == ("promoted", promoted[row["round_id"]])
        else:
            assert row["round_id"] in rejected and row["outcome"] == "rejected"
    candidates = q.candidates("sea", rounds=100)
    scores = {r.payload["model_version"]: r.payload["metrics"]["accuracy"] for r in of_type(log, "ChallengerEvaluated")}
    assert dict(zip(candidates["version"], candidates["score"], strict=True)) == scores
    assert set(q.candidates("sea", rounds=2)["round_id"]) == set(rounds["round_id"][:2])


def test_circuit_and_health_history(q, home, log):
    state = state_upto(home, log, log[-1].position)
    circuit = q.circuit("sea")
    assert circuit["circuit"] == ("open" if state.circuit.open else "closed")
    assert circuit["consecutive_failures"] == state.circuit.consecutive_failures
    history = q.health_history("sea")
    assert history.iloc[0]["health"] == state.health  # newest first
    assert history["position"].is_monotonic_decreasing


def test_events_feed_filters_and_payload(q, log):
    latest = q.events(limit=10)
    assert latest["position"].tolist() == [r.position for r in reversed(log[-10:])]
    older = q.events(limit=10, before=int(latest["position"].min()))
    assert older["position"].tolist() == [r.position for r in reversed(log[-20:-10])]
    drift = q.events(types=["DriftDetected", "BlockRejected"], limit=1000)
    assert drift["position"].tolist() == [r.position for r in reversed(of_type(log, "DriftDetected", "BlockRejected"))]
    middle = log[len(log) // 2]
    window = q.events(since=middle.recorded_at, until=log[-1].recorded_at, limit=1000)
    assert window["position"].min() == min(r.position for r in log if r.recorded_at >= middle.recorded_at)
    assert len(q.events(pipeline="nope")) == 0
    one = q.event(middle.position)
    assert one["payload"] == middle.payload and one["type"] == middle.type
    assert q.event(10**9) is None
    with pytest.raises(ValueError, match="ISO-8601"):
        q.events(since="yesterday")
    assert set(q.event_types()) == {r.type for r in log}


def test_alerts_newest_first(q, log):
    alerts = q.alerts(limit=5)
    assert alerts.iloc[0]["type"] == "ModelRolledBack"
    assert alerts["position"].is_monotonic_decreasing and 3 <= len(alerts) <= 5


@pytest.mark.parametrize("position", [1, 7, 30, 53, 80, "last"])
def test_time_travel_is_the_fold_up_to_that_position(q, home, log, position):
    position = log[-1].position if position == "last" else position
    state = state_upto(home, log, position)
    at = q.state_at("sea", position)
    assert (at["champion"], at["health"], at["events"]) == (state.champion, state.health, state.version)
    assert at["counters"]["promotions"] == state.counters.promotions
    expected = [m.version for m in state.lineage(state.champion)] if state.champion else []
    assert [m["version"] for m in at["lineage"]] == expected


def test_time_travel_backwards_after_forwards_uses_the_right_cache(home, log):
    fresh = Queries(home / "projections.sqlite", stride=7)
    late, early = fresh.state_at("sea", 90), fresh.state_at("sea", 20)
    again = fresh.state_at("sea", 90)
    assert late == again
    assert early["champion"] == state_upto(home, log, 20).champion
    assert early["counters"] == Queries(home / "projections.sqlite").state_at("sea", 20)["counters"]


def test_unknown_pipeline_and_missing_database(q, tmp_path):
    assert q.pipeline("nope") is None and q.drift_matrix("nope").empty and q.models("nope").empty
    empty = Queries(tmp_path / "absent" / "projections.sqlite")  # no I/O until asked
    assert empty.overview().empty and list(empty.overview().columns)[:3] == ["pipeline", "health", "champion"]
    assert empty.summary()["pipelines"] == 0 and empty.position() == 0 and empty.pipeline_names() == []
    assert empty.head() == 0
    assert not (tmp_path / "absent").exists()


def test_connections_are_read_only(q, home):
    with q._connect() as conn, pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("DELETE FROM events")
    assert q.summary()["events"] > 0
