"""Alerts delivered from the log: a local webhook receiver (127.0.0.1) gets each alert-worthy event once, in log
order; a 500 is retried; a receiver that never answers holds up no other sink; outcomes are recorded in the
`alerts` stream and a restart resumes from the checkpoint. The log is the in-memory store: no Ray, no SQLite."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from alert_receiver import Receiver

from calmops_actors.alerts.dispatcher import ALERTS_STREAM, AlertDispatcher
from calmops_actors.home import make_codec
from eventstore import InMemoryEventStore
from pipelines.alerts.routes import Route
from pipelines.config.alerts import AlertSink
from pipelines.core.events import (
    AlertDelivered,
    AlertFailed,
    BlockRejected,
    DriftDetected,
    ModelPromoted,
)

FAST = {"backoff_seconds": 0.05, "max_backoff_seconds": 0.1, "timeout_seconds": 2.0}


def log_with_news() -> InMemoryEventStore:
    store = InMemoryEventStore(codec=make_codec())
    store.append("pipeline-churn", [
        BlockRejected(file="a.csv", sha256="0" * 64, reason_code="empty_file", message="a.csv is empty"),
        DriftDetected(block_id="b1", reasons=("x1: mean moved by 0.8 sd",)),
        ModelPromoted(model_version="v2", previous_version="v1", strategy="full", reason="better", metrics={}),
    ], 0)
    return store


def more_news(store: InMemoryEventStore) -> None:
    store.append("pipeline-other", [DriftDetected(block_id="o1", reasons=("elsewhere",))], 0)
    store.append("pipeline-churn", [DriftDetected(block_id="b2", reasons=("x2",))], 3)


def route(sink: AlertSink, pipelines=("churn",), name: str = "hook") -> Route:
    return Route(f"_folder@{name}", name, sink, frozenset(pipelines))


def wait_for(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def outcomes(store: InMemoryEventStore) -> list:
    return [store.codec.decode(r) for r in store.read(ALERTS_STREAM)]


def test_each_alert_worthy_event_arrives_once_in_log_order_and_is_recorded(tmp_path: Path) -> None:
    store = InMemoryEventStore(codec=make_codec())
    with Receiver() as receiver:
        dispatcher = AlertDispatcher(store, tmp_path / "alerts", poll=0.02)
        dispatcher.configure([route(AlertSink(sink="webhook", url=receiver.url, **FAST))])
        for recorded in log_with_news().read("pipeline-churn"):  # recorded while the dispatcher runs
            store.append("pipeline-churn", [store.codec.decode(recorded)], store.stream_version("pipeline-churn"))
        more_news(store)
        assert wait_for(lambda: len(receiver.bodies) == 4), receiver.bodies
        time.sleep(0.2)
        dispatcher.stop()
    news = [r for r in store.read("pipeline-churn")]
    assert [(b["event_type"], b["dedup_key"]) for b in receiver.bodies] == [
        (r.type, str(r.position)) for r in news]
    assert [b["event_type"] for b in receiver.bodies] == [
        "BlockRejected", "DriftDetected", "ModelPromoted", "DriftDetected"]
    assert receiver.bodies[1]["text"] == "[calmops] churn: drift in b1: x1: mean moved by 0.8 sd"
    recorded = outcomes(store)
    assert [(type(e), e.position, e.sink, e.attempts) for e in recorded] == [
        (AlertDelivered, r.position, "_folder@hook", 1) for r in news]
    assert store.stream_version("pipeline-churn") == 4  # the outcomes live in their own stream
    assert receiver.url not in json.dumps([r.payload for r in store.read(ALERTS_STREAM)])


def test_a_500_then_200_is_delivered_after_one_retry(tmp_path: Path) -> None:
    store = log_with_news()
    with Receiver(["500"]) as receiver:
        dispatcher = AlertDispatcher(store, tmp_path / "alerts", poll=0.02)
        dispatcher.start_at = 0
        dispatcher.configure([route(AlertSink(sink="webhook", url=receiver.url, **FAST))])
        assert wait_for(lambda: len(outcomes(store)) == 3)
        dispatcher.stop()
    assert [b["dedup_key"] for b in receiver.bodies] == ["1", "2", "3"] and receiver.requests == 4
    first = outcomes(store)[0]
    assert isinstance(first, AlertDelivered) and (first.attempts, first.status) == (2, 200)


def test_a_sink_that_keeps_failing_records_the_failure_and_goes_on(tmp_path: Path) -> None:
    store = log_with_news()
    with Receiver(["503", "503", "503"]) as receiver:
        dispatcher = AlertDispatcher(store, tmp_path / "alerts", poll=0.02)
        dispatcher.start_at = 0
        dispatcher.configure([route(AlertSink(sink="webhook", url=receiver.url, max_attempts=3, **FAST))])
        assert wait_for(lambda: len(outcomes(store)) == 3)
        dispatcher.stop()
    failed = outcomes(store)[0]
    assert isinstance(failed, AlertFailed) and (failed.attempts, failed.status, failed.position) == (3, 503, 1)
    assert "HTTP 503" in failed.error
    assert [b["dedup_key"] for b in receiver.bodies] == ["2", "3"]


def test_a_receiver_that_never_answers_holds_up_no_other_sink(tmp_path: Path) -> None:
    store = log_with_news()
    with Receiver(default="hang") as dead, Receiver() as alive:
        dispatcher = AlertDispatcher(store, tmp_path / "alerts", poll=0.02)
        dispatcher.start_at = 0
        dispatcher.configure([
            route(AlertSink(sink="webhook", url=dead.url, **{**FAST, "timeout_seconds": 5.0}), name="dead"),
            route(AlertSink(sink="file", path=str(tmp_path / "alerts.jsonl")), name="ship"),
            route(AlertSink(sink="webhook", url=alive.url, **FAST), name="alive")])
        started = time.monotonic()
        assert wait_for(lambda: len(alive.bodies) == 3, 4.0), "the live sink waited for the dead one"
        assert time.monotonic() - started < 4.0 and dead.requests == 1
        lines = (tmp_path / "alerts.jsonl").read_text().splitlines()
        assert [json.loads(line)["dedup_key"] for line in lines] == ["1", "2", "3"]
        dead.release.set()
        for worker in dispatcher.workers.values():
            worker._stop.set()  # the dead sink's wait ends: its alert stays unsettled, to be retried next start
        dispatcher.stop()


def test_a_restart_resumes_from_the_checkpoint_and_repeats_nothing_settled(tmp_path: Path) -> None:
    store = log_with_news()
    with Receiver() as receiver:
        sink = AlertSink(sink="webhook", url=receiver.url, **FAST)
        first = AlertDispatcher(store, tmp_path / "alerts", poll=0.02)
        first.start_at = 0
        first.configure([route(sink)])
        assert wait_for(lambda: len(receiver.bodies) == 3)
        first.stop()
        more_news(store)
        second = AlertDispatcher(store, tmp_path / "alerts", poll=0.02)  # would start at the log's end if new
        second.configure([route(sink)])
        assert wait_for(lambda: len(receiver.bodies) == 4)
        time.sleep(0.2)
        second.stop()
    assert [b["dedup_key"] for b in receiver.bodies] == ["1", "2", "3", "8"]  # 4-6: outcomes; 7: pipeline "other"


def test_held_back_alerts_become_one_digest_when_the_window_ends(tmp_path: Path) -> None:
    store = InMemoryEventStore(codec=make_codec())
    store.append("pipeline-churn", [DriftDetected(block_id=f"b{i}", reasons=(f"r{i}",)) for i in range(6)], 0)
    now = [time.time()]
    with Receiver() as receiver:
        dispatcher = AlertDispatcher(store, tmp_path / "alerts", poll=0.02, clock=lambda: now[0])
        dispatcher.start_at = 0
        dispatcher.configure([route(AlertSink(sink="webhook", url=receiver.url, max_per_window=2, **FAST))])
        assert wait_for(lambda: len(receiver.bodies) == 2)
        time.sleep(0.2)
        assert len(receiver.bodies) == 2
        now[0] += 3601
        assert wait_for(lambda: len(receiver.bodies) == 3)
        dispatcher.stop()
    digest = receiver.bodies[2]
    assert digest["summary"] == "4 more DriftDetected alerts for churn in the last hour (latest: drift in b5: r5)"
    assert digest["digest"] == {"count": 4, "first_position": 3, "last_position": 6}
    assert outcomes(store)[-1].digest_of == 4


def test_a_command_sink_gets_the_json_on_standard_input(tmp_path: Path) -> None:
    store = log_with_news()
    out = tmp_path / "got.jsonl"
    script = f"import sys; open({str(out)!r}, 'a').write(sys.stdin.read() + '\\n')"
    dispatcher = AlertDispatcher(store, tmp_path / "alerts", poll=0.02)
    dispatcher.start_at = 0
    dispatcher.configure([route(AlertSink(sink="command", command=(sys.executable, "-c", script), **FAST))])
    assert wait_for(lambda: len(outcomes(store)) == 3)
    dispatcher.stop()
    assert [json.loads(line)["position"] for line in out.read_text().splitlines()] == [1, 2, 3]
    assert {e.status for e in outcomes(store)} == {0}


@pytest.mark.parametrize("unset", [True, False])
def test_alerts_test_sends_a_sample_to_every_sink(tmp_path: Path, monkeypatch, capsys, unset: bool) -> None:
    from calmops_actors.cli import main

    with Receiver(["500"]) as broken, Receiver() as fine:
        (tmp_path / "churn.toml").write_text(
            f'name = "churn"\ntarget = "y"\n[[alerts]]\nsink = "webhook"\nurl = "{fine.url}"\n'
            'headers = { Authorization = "Bearer ${ALERT_TOKEN}" }\n'
            f'[[alerts]]\nsink = "webhook"\nname = "flaky"\nurl = "{broken.url}"\n')
        if unset:
            monkeypatch.delenv("ALERT_TOKEN", raising=False)
            assert main(["alerts", "test", "churn", "--config-dir", str(tmp_path)]) == 2
            assert "alerts[0].headers.Authorization: refers to ${ALERT_TOKEN}" in capsys.readouterr().err
            return
        monkeypatch.setenv("ALERT_TOKEN", "s3cret")
        assert main(["alerts", "test", "churn", "--config-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "webhook-1" in out and "ok (200)" in out and "flaky" in out and "FAILED (500)" in out
    assert fine.bodies[0]["event_type"] == "AlertTest" and fine.bodies[0]["_auth"] == "Bearer s3cret"


def test_outcomes_show_in_calmops_events_and_the_events_feed(tmp_path: Path, capsys) -> None:
    from calmops_actors.cli import main
    from calmops_actors.home import Home
    from calmops_actors.projector import update_projections

    home = Home(tmp_path / "home").create()
    store = home.open_store()
    store.append("pipeline-churn", [store.codec.decode(r) for r in log_with_news().read("pipeline-churn")], 0)
    dispatcher = AlertDispatcher(store, home.root / "alerts", poll=0.02)
    dispatcher.start_at = 0
    dispatcher.configure([route(AlertSink(sink="file", path=str(tmp_path / "a.jsonl")), name="ship")])
    assert wait_for(lambda: store.stream_version(ALERTS_STREAM) == 3)
    dispatcher.stop()
    store.close()
    assert main(["events", "--type", "AlertDelivered", "--home", str(home.root)]) == 0
    out = capsys.readouterr().out
    assert "alert DriftDetected at 2 delivered to _folder@ship" in out and "3 event(s)" in out
    assert update_projections(home.root) == 6
    import sqlite3

    with sqlite3.connect(home.projections_path) as conn:
        rows = conn.execute("SELECT pipeline, type, summary FROM events WHERE stream_id = 'alerts'").fetchall()
    assert rows[0] == ("churn", "AlertDelivered", "alert BlockRejected at 1 delivered to _folder@ship")


def test_serve_refuses_a_sink_this_machine_cannot_use_naming_file_and_key(tmp_path: Path, monkeypatch) -> None:
    from calmops_actors.commands.serve import load_folder_sinks
    from calmops_actors.errors import UserError
    from calmops_actors.supervisor import Supervisor
    from pipelines.config.pipeline import ConfigError

    monkeypatch.delenv("NO_SUCH_HOOK", raising=False)
    config = tmp_path / "churn.toml"
    config.write_text('name = "churn"\ntarget = "y"\n[[alerts]]\nsink = "webhook"\nurl = "${NO_SUCH_HOOK}"\n')
    with pytest.raises(ConfigError, match=r"churn.toml: alerts\[0\]\.url: refers to \$\{NO_SUCH_HOOK\}"):
        Supervisor.parse(config, config.read_bytes())
    config.write_text('name = "churn"\ntarget = "y"\n[[alerts]]\nsink = "command"\ncommand = ["no-such-pager"]\n')
    with pytest.raises(ConfigError, match=r"alerts\[0\]\.command: program 'no-such-pager' not found"):
        Supervisor.parse(config, config.read_bytes())
    (tmp_path / "alerts.toml").write_text('[[alerts]]\nsink = "webhook"\nurl = "ftp://example.com/x"\n')
    with pytest.raises(UserError, match=r"alerts.toml: alerts\[0\]: url must start with http:// or https://"):
        load_folder_sinks(tmp_path, None)
    with pytest.raises(UserError, match=r"--alert-webhook: url must start with http"):
        load_folder_sinks(tmp_path / "empty", "file:///etc/passwd")
