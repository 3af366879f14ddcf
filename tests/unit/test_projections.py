"""The read model (pipelines/read_model/projection.py run by calmops_actors/projector.py) on hand-made logs, no Ray.

The logs are built with `decide` + `evolve` (tests/builders.py), so the expected rows come from the same
`PipelineState` the actor keeps, not from numbers typed into the test.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from builders import Driver, accept, at, config, failure, outcome, register, request, success

from calmops_actors.home import Home, make_codec, stream_id
from calmops_actors.projector import (
    PROJECTION,
    ProjectionUpdater,
    ReadModel,
    rebuild_projections,
    update_projections,
)
from eventstore import EventData, InMemoryEventStore, ProjectionRunner, Recorded
from pipelines.core.decide import RecordDriftCheck, RecordPerformance, RejectFile, ResumeRetraining, Rollback
from pipelines.drift.results import DriftAssessment, FeatureDrift, PerformanceDrift
from pipelines.read_model.projection import TABLES, fold

STREAM = stream_id("p")


def feature(name: str, effect: float, drifted: bool) -> FeatureDrift:
    return FeatureDrift(name=name, kind="numeric", test="ks", statistic=effect / 2, p_value=0.001 if drifted else 0.4,
                        p_adjusted=0.002 if drifted else 0.5, effect=effect, effect_name="wasserstein_sd",
                        drifted=drifted, change=f"mean moved by {effect} sd")


def drift_check(block_id: str, t: float, drifted: bool, observed: float) -> RecordDriftCheck:
    features = (feature("x1", 0.9 if drifted else 0.05, drifted), feature("x2", 0.02, False))
    perf = PerformanceDrift(metric="accuracy", at_promotion=0.9, observed=observed, tolerance=0.05,
                            drifted=drifted)
    reasons = ("x1: mean moved by 0.9 sd",) if drifted else ()
    return RecordDriftCheck(block_id=block_id, reference_blocks=("b1",), occurred_at=at(t),
                            assessment=DriftAssessment(drifted=drifted, reasons=reasons, features=features,
                                                       multivariate=None, concept=None, performance=perf))


def scenario() -> Driver:
    """Promotion, drift, a rejected file, a rejected challenger, failed rounds, an open circuit, resume, rollback."""
    d = Driver()
    d(register(config(circuit_breaker={"max_consecutive_failures": 2}), t=0))
    d(accept("b1", t=1))
    d(request("r1", t=2, strategies=("full",)))
    d(outcome("r1", success("full", 0.9), t=3))
    d(accept("b2", t=4))
    d(RecordPerformance(block_id="b2", model_version="v1", metrics={"accuracy": 0.88}, occurred_at=at(5)))
    d(drift_check("b2", 6, drifted=False, observed=0.88))
    d(RejectFile(file="bad.csv", sha256="f" * 64, reason_code="wrong_delimiter",
                 message="bad.csv: the header looks separated by ';'", occurred_at=at(7)))
    d(accept("b3", t=8))
    d(RecordPerformance(block_id="b3", model_version="v1", metrics={"accuracy": 0.7}, occurred_at=at(9)))
    d(drift_check("b3", 10, drifted=True, observed=0.7))
    d(request("r2", t=11))
    d(outcome("r2", success("full", 0.95), success("windowed", 0.93), champion=0.7, t=12))
    d(request("r3", t=13))
    d(outcome("r3", failure("full"), failure("windowed", "TimeoutError"), champion=0.95, t=14))
    d(request("r4", t=15))
    d(outcome("r4", failure("full"), failure("windowed"), champion=0.95, t=16))
    d(ResumeRetraining(reason="fixed the data", occurred_at=at(17)))
    d(request("r5", t=18))
    d(outcome("r5", success("full", 0.94), champion=0.95, t=19))
    d(Rollback(to_version="v1", reason="v2 misbehaves", occurred_at=at(20)))
    return d


def store_with(events) -> InMemoryEventStore:
    store = InMemoryEventStore(codec=make_codec())
    store.append(STREAM, list(events), expected_version=0)
    return store


def dump(db: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(db) as conn:
        return {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY 1, 2').fetchall() for t in TABLES}


def rows(db: Path, table: str, where: str = "1", args: tuple = ()) -> list[dict]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(f'SELECT * FROM "{table}" WHERE {where}', args)]


@pytest.fixture(scope="module")
def projected(tmp_path_factory):
    driver = scenario()
    store = store_with(driver.log)
    db = tmp_path_factory.mktemp("views") / "projections.sqlite"
    with ProjectionRunner(store, db) as runner:
        applied = runner.run(ReadModel(store.codec))
    return driver, store, db, applied


def test_every_event_is_applied_and_fed(projected):
    driver, store, db, applied = projected
    assert applied == len(driver.log) == store.head()
    feed = rows(db, "events", "1 ORDER BY position")
    assert [r["type"] for r in feed] == [type(e).__name__ for e in driver.log]
    assert all(r["pipeline"] == "p" and r["summary"] for r in feed)


def test_pipeline_row_mirrors_the_state_fold(projected):
    driver, _, db, _ = projected
    state = driver.state
    (p,) = rows(db, "pipelines")
    c = state.counters
    for name in ("blocks", "rejected_files", "drift_checks", "drifts", "rounds", "candidates", "promotions",
                 "challenger_rejections", "failures", "rollbacks"):
        assert p[name] == getattr(c, name), name
    assert (p["champion"], p["health"], p["last_block"]) == (state.champion, state.health, state.last_block)
    assert p["circuit"] == ("open" if state.circuit.open else "closed")
    assert p["consecutive_failures"] == state.circuit.consecutive_failures
    assert p["events"] == state.version
    # and the same facts spelled out, so a shared mistake in state and view cannot pass unnoticed
    assert (p["champion"], p["rollbacks"], p["promotions"], p["rejected_files"]) == ("v1", 1, 2, 1)
    assert p["recent_drift"] == "[0,1]" and (p["recent_drifted"], p["recent_checked"]) == (1, 2)
    assert p["last_alert_type"] == "ModelRolledBack" and "v2 misbehaves" in p["last_alert"]


def test_pipeline_row_mirrors_the_state_after_every_event(tmp_path):
    from pipelines.core.state import replay

    events = scenario().log
    store = InMemoryEventStore(codec=make_codec())
    with ProjectionRunner(store, tmp_path / "views.sqlite") as runner:
        for i, event in enumerate(events):
            store.append(STREAM, [event], expected_version=i)
            runner.run(ReadModel(store.codec))
            state, (p,) = replay(events[: i + 1]), runner.rows("pipelines")
            seen = (p["health"], p["champion"], p["current_round"], p["consecutive_failures"], p["circuit"],
                    p["circuit_until"], p["drifts"], p["failures"])
            expected = (state.health, state.champion, state.round.round_id if state.round else None,
                        state.circuit.consecutive_failures, "open" if state.circuit.open else "closed",
                        state.circuit.until, state.counters.drifts, state.counters.failures)
            assert seen == expected, f"after event {i + 1} ({type(event).__name__})"


def test_model_statuses_follow_promotions_rejections_and_rollback(projected):
    driver, _, db, _ = projected
    models = {r["version"]: r for r in rows(db, "models")}
    assert {v: m["status"] for v, m in models.items()} == {
        v: driver.state.models[v].status for v in driver.state.models}
    assert models["v2"]["parent"] == "v1" and models["v2"]["round_id"] == "r2"
    assert models["v2"]["score"] == 0.95 and models["v2"]["champion_score"] == 0.7
    assert models["v3"]["status"] == "rejected"  # lost to v2 in the same round
    assert models["v1"]["promoted_metrics"] == '{"accuracy":0.9}'


def test_rounds_record_candidates_failures_and_outcome(projected):
    _, _, db, _ = projected
    rounds = {r["round_id"]: r for r in rows(db, "rounds")}
    assert [rounds[r]["outcome"] for r in ("r1", "r2", "r3", "r4", "r5")] == [
        "promoted", "promoted", "rejected", "rejected", "rejected"]
    assert rounds["r2"]["candidates"] == '["v2","v3"]' and rounds["r2"]["promoted_version"] == "v2"
    assert rounds["r3"]["reason"] == "every strategy of the round failed"
    assert '"error":"TimeoutError"' in rounds["r3"]["failures"]
    assert rounds["r1"]["trigger"] == "drift" and rounds["r2"]["block_seq"] == 1  # request() says block b1
    assert all(r["seconds"] is not None for r in rounds.values())  # from each round's ModelRetrained


def test_drift_performance_and_rejections(projected):
    _, _, db, _ = projected
    cells = {(r["block_id"], r["feature"]): r for r in rows(db, "drift_features")}
    assert set(cells) == {("b2", "x1"), ("b2", "x2"), ("b3", "x1"), ("b3", "x2")}
    assert cells[("b3", "x1")]["drifted"] == 1 and cells[("b3", "x1")]["effect"] == 0.9
    assert cells[("b2", "x1")]["drifted"] == 0 and cells[("b3", "x1")]["seq"] == 3
    blocks = {r["block_id"]: r for r in rows(db, "blocks")}
    assert (blocks["b3"]["drifted"], blocks["b3"]["features_drifted"], blocks["b3"]["top_feature"]) == (1, 1, "x1")
    assert blocks["b1"]["drifted"] is None  # checked only once a champion exists
    perf = {r["block_id"]: r for r in rows(db, "performance")}
    assert (perf["b3"]["value"], perf["b3"]["at_promotion"], perf["b3"]["tolerance"]) == (0.7, 0.9, 0.05)
    assert perf["b3"]["drifted"] == 1 and perf["b2"]["drifted"] == 0
    (rejected,) = rows(db, "rejected_files")
    assert (rejected["file"], rejected["reason_code"]) == ("bad.csv", "wrong_delimiter")


def test_champion_changes_and_health_history(projected):
    _, _, db, _ = projected
    changes = [(r["kind"], r["from_version"], r["to_version"]) for r in rows(db, "champion_changes", "1 ORDER BY position")]
    assert changes == [("promoted", None, "v1"), ("promoted", "v1", "v2"), ("rolled_back", "v2", "v1")]
    history = [(r["health"], r["circuit"], r["cause"]) for r in rows(db, "health_history", "1 ORDER BY position")]
    assert ("paused", "open", "CircuitOpened") in history
    assert history.index(("paused", "open", "CircuitOpened")) < history.index(
        next(h for h in history if h[2] == "CircuitClosed"))
    assert history[0] == ("waiting", "closed", "PipelineRegistered")


@pytest.mark.parametrize("batch_size", [1, 3, 1000])
def test_incremental_runs_equal_a_rebuild(tmp_path, batch_size):
    events = scenario().log
    store = InMemoryEventStore(codec=make_codec())
    incremental, rebuilt = tmp_path / "inc.sqlite", tmp_path / "full.sqlite"
    with ProjectionRunner(store, incremental) as runner:
        for i, event in enumerate(events):  # one event at a time, the view updated in between
            store.append(STREAM, [event], expected_version=i)
            if i % 4 == 0:
                runner.run(ReadModel(store.codec), batch_size)
        runner.run(ReadModel(store.codec), batch_size)
    with ProjectionRunner(store, rebuilt) as runner:
        runner.rebuild(ReadModel(store.codec), batch_size)
    assert dump(incremental) == dump(rebuilt)
    assert len(dump(rebuilt)["events"]) == len(events)


class CrashOnce(ReadModel):
    """The read model, but applying `position` raises the first time (a crash in the middle of a batch)."""

    def __init__(self, codec, position: int) -> None:
        super().__init__(codec)
        self.position, self.crashed = position, False

    def apply(self, recorded, lookup):
        if recorded.position == self.position and not self.crashed:
            self.crashed = True
            raise RuntimeError("power cut")
        return super().apply(recorded, lookup)


def test_a_crash_mid_batch_resumes_exactly_once(tmp_path):
    driver = scenario()
    store = store_with(driver.log)
    crashed, clean = tmp_path / "crashed.sqlite", tmp_path / "clean.sqlite"
    projection = CrashOnce(store.codec, position=13)
    with ProjectionRunner(store, crashed) as runner:
        with pytest.raises(RuntimeError, match="power cut"):
            runner.run(projection, batch_size=5)
        assert runner.position(PROJECTION) == 10  # batches 1-5 and 6-10 committed, 11-15 rolled back
        assert len(rows(crashed, "events")) == 10
        assert runner.run(projection, batch_size=5) == len(driver.log) - 10
    with ProjectionRunner(store, clean) as runner:
        runner.run(ReadModel(store.codec))
    assert dump(crashed) == dump(clean)
    (p,) = rows(crashed, "pipelines")
    assert p["events"] == len(driver.log) and p["blocks"] == 3  # nothing applied twice


def test_fold_on_a_hand_made_record():
    from pipelines.core.events import BlockRejected

    event = BlockRejected(file="a.csv", sha256="0" * 64, reason_code="empty_file", message="a.csv is empty",
                          occurred_at=at(1))
    recorded = Recorded(position=7, stream_id=STREAM, version=2, type="BlockRejected", schema_version=1,
                        payload=make_codec().encode(event).payload, recorded_at=at(2), hash="0" * 64)
    existing = {"pipelines": {("p",): None}}
    puts = fold(recorded, event, lambda table, key: existing.get(table, {}).get(key))
    by_table = {put.table: put.row for put in puts}
    assert by_table["rejected_files"] == {
        "pipeline": "p", "position": 7, "file": "a.csv", "sha256": "0" * 64, "reason_code": "empty_file",
        "message": "a.csv is empty", "block_id": None, "occurred_at": at(1)}
    assert by_table["pipelines"]["rejected_files"] == 1 and by_table["pipelines"]["alerts"] == 1
    assert by_table["events"]["summary"] == "file a.csv rejected (empty_file): a.csv is empty"


def test_an_event_type_from_newer_code_only_shows_in_the_feed(tmp_path):
    store = store_with(scenario().log[:3])
    store.append(STREAM, [EventData("SomethingNew", {"x": 1})], expected_version=3)
    db = tmp_path / "views.sqlite"
    with ProjectionRunner(store, db) as runner:
        assert runner.run(ReadModel(store.codec)) == 4
    last = rows(db, "events", "position = 4")[0]
    assert last["type"] == "SomethingNew" and "not understood" in last["summary"]
    assert rows(db, "pipelines")[0]["events"] == 3


def write_log(home: Path, events) -> None:
    store = Home(home).open_store()
    try:
        version = store.stream_version(STREAM)
        store.append(STREAM, list(events), expected_version=version)
    finally:
        store.close()


def test_update_and_rebuild_on_a_home(tmp_path):
    home = tmp_path / "home"
    assert update_projections(home) == 0 and not home.exists()  # no log: nothing created
    events = scenario().log
    write_log(home, events[:9])
    assert update_projections(home) == 9
    assert update_projections(home) == 0
    write_log(home, events[9:])
    assert update_projections(home) == len(events) - 9
    incremental = dump(home / "projections.sqlite")
    report = rebuild_projections(home)
    assert report["events"] == report["position"] == len(events)
    assert report["tables"]["events"] == len(events) and report["tables"]["rounds"] == 5
    assert dump(home / "projections.sqlite") == incremental


def test_a_changed_table_layout_is_rebuilt(tmp_path):
    home = tmp_path / "home"
    write_log(home, scenario().log)
    update_projections(home)
    before = dump(home / "projections.sqlite")
    with sqlite3.connect(home / "projections.sqlite") as conn:  # as if built by an older layout
        conn.execute("UPDATE projection_tables SET spec = '{}' WHERE table_name = 'blocks'")
        conn.execute("DELETE FROM blocks")
    assert update_projections(home) == len(scenario().log)
    assert dump(home / "projections.sqlite") == before


def test_the_updater_thread_follows_the_log_until_stopped(tmp_path):
    home = tmp_path / "home"
    events = scenario().log
    updater = ProjectionUpdater(home, interval=0.05).start()
    try:
        write_log(home, events[:5])
        wait_until(lambda: updater.applied == 5)
        write_log(home, events[5:])
        wait_until(lambda: updater.applied == len(events))
        assert updater.last_error is None
    finally:
        updater.stop()
    assert not any(t.name == "calmops-projector" and t.is_alive() for t in threading.enumerate())
    assert rows(home / "projections.sqlite", "pipelines")[0]["events"] == len(events)


def wait_until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.02)
