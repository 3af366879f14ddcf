"""Alerts as pure rules: config validation (hostile configs named by key), the rate limit and its digest, the
retry schedule, what an alert body says, and which sink hears which pipeline. No Ray, no SQLite, no network."""

from __future__ import annotations

import pytest

from pipelines.alerts.limiter import admit, due
from pipelines.alerts.message import alert_body, wanted
from pipelines.alerts.retry import delays
from pipelines.alerts.routes import routes
from pipelines.config.alerts import AlertSink, MachineError, check_machine
from pipelines.config.pipeline import ConfigError, alerts_from_dict, config_from_text, config_to_dict
from pipelines.core.events import BlockRejected, DriftDetected, ModelPromoted, RetrainFailed

BASE = 'name = "churn"\ntarget = "y"\n'


def config_with(sink: str):
    return config_from_text(BASE + "[[alerts]]\n" + sink, "churn.toml")


@pytest.mark.parametrize(("sink", "message"), [
    ('sink = "webhook"\nurl = "ftp://example.com/hook"', "churn.toml: alerts[0]: url must start with http:// or https://"),
    ('sink = "webhook"\nurl = "file:///etc/passwd"', "churn.toml: alerts[0]: url must start with http"),
    ('sink = "webhook"\nurl = "http:///nohost"', "churn.toml: alerts[0]: url has no host"),
    ('sink = "command"', "churn.toml: alerts[0]: command is required for sink = 'command'"),
    ('sink = "command"\ncommand = []', "churn.toml: alerts[0]: command must name a program"),
    ('sink = "webhook"\nurl = "http://x/${TOKEN"', "malformed secret reference"),
    ('sink = "email"', "alerts[0].sink: 'email' is not allowed"),
    ('sink = "file"\npath = "a"\nto = "x"', "alerts[0].to: unknown key"),
    ('sink = "file"\npath = "a.jsonl"\nevents = ["ModelPromotd"]', "(did you mean 'ModelPromoted'?)"),
    ('sink = "file"\npath = "a.jsonl"\nurl = "http://x/h"', "url does not apply to sink = 'file'"),
    ('sink = "file"\npath = "a.jsonl"\nmax_per_window = 0', "max_per_window must be at least 1"),
])
def test_a_hostile_sink_is_a_config_error_naming_the_key(sink: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_with(sink)
    assert message in str(err.value)


def test_two_sinks_with_one_name_are_refused() -> None:
    with pytest.raises(ConfigError, match="alerts: two sinks are named 'file-1'"):
        config_with('sink = "file"\npath = "a"\n[[alerts]]\nsink = "file"\npath = "b"\nname = "file-1"')


def test_the_alert_sinks_are_not_part_of_the_recorded_config() -> None:
    """Changing a webhook changes no config hash: no ConfigChanged, no rejected file re-opened, no URL in the log."""
    plain = config_from_text(BASE, "churn.toml")
    hooked = config_with('sink = "webhook"\nurl = "https://hooks.slack.com/services/${SLACK_HOOK}"')
    assert config_to_dict(plain) == config_to_dict(hooked)
    assert "alerts" not in config_to_dict(hooked)


def test_a_reference_to_an_unset_variable_or_a_missing_program_is_named_by_key() -> None:
    hook = AlertSink(sink="webhook", url="${HOOK_URL}", headers={"Authorization": "Bearer ${TOKEN}"})
    with pytest.raises(MachineError, match=r"alerts\[0\]\.url: refers to \$\{HOOK_URL\}, which is not set"):
        check_machine([hook], {}, lambda name: None)
    with pytest.raises(MachineError, match=r"alerts\[0\]\.headers\.Authorization: refers to \$\{TOKEN\}"):
        check_machine([hook], {"HOOK_URL": "https://x.example/h"}, lambda name: None)
    with pytest.raises(MachineError, match=r"alerts\[0\]\.url: \$\{HOOK_URL\} does not hold an http") as err:
        check_machine([hook], {"HOOK_URL": "gopher://secret-value", "TOKEN": "t"}, lambda name: None)
    assert "secret-value" not in str(err.value)
    pager = AlertSink(sink="command", command=("no-such-pager", "--team", "ml"))
    with pytest.raises(MachineError, match=r"alerts\[1\]\.command: program 'no-such-pager' not found"):
        check_machine([hook, pager], {"HOOK_URL": "https://x.example/h", "TOKEN": "t"}, lambda name: None)


def test_the_folder_file_holds_only_alert_tables() -> None:
    with pytest.raises(ConfigError, match="alerts.toml: target: unknown key"):
        alerts_from_dict({"target": "y"}, "alerts.toml")
    assert alerts_from_dict({}, "alerts.toml") == ()


def test_five_alerts_per_pipeline_and_type_then_one_digest_for_the_window() -> None:
    state, verdicts = {}, []
    for i in range(17):
        state, verdict, closed = admit(state, "churn", "DriftDetected", at=100.0 + i, position=10 + i,
                                       summary=f"drift {i}", max_per_window=5, window_seconds=3600.0)
        assert closed is None
        verdicts.append(verdict)
    state, other, _ = admit(state, "churn", "BlockRejected", at=120.0, position=40, summary="r",
                            max_per_window=5, window_seconds=3600.0)
    state, elsewhere, _ = admit(state, "fraud", "DriftDetected", at=120.0, position=41, summary="d",
                                max_per_window=5, window_seconds=3600.0)
    assert verdicts == ["send"] * 5 + ["hold"] * 12 and other == elsewhere == "send"
    assert due(state, now=3699.0, window_seconds=3600.0) == (state, [])
    state, digests = due(state, now=3720.0, window_seconds=3600.0)
    assert [d.text for d in digests] == ["12 more DriftDetected alerts for churn in the last hour (latest: drift 16)"]
    assert digests[0].dedup_key == "digest:churn:DriftDetected:15-26" and state == {}


def test_an_event_after_the_window_closes_it_first_so_the_digest_keeps_log_order() -> None:
    state = {}
    for i in range(3):
        state, _, _ = admit(state, "p", "DriftDetected", at=float(i), position=i + 1, summary=f"d{i}",
                            max_per_window=1, window_seconds=60.0)
    state, verdict, closed = admit(state, "p", "DriftDetected", at=61.0, position=9, summary="late",
                                   max_per_window=1, window_seconds=60.0)
    assert verdict == "send" and closed is not None
    assert (closed.count, closed.first_position, closed.last_position) == (2, 2, 3)
    assert closed.text == "2 more DriftDetected alerts for p in the last 1 minutes (latest: d2)"


def test_retries_back_off_exponentially_up_to_a_cap() -> None:
    assert delays(max_attempts=1, backoff_seconds=2.0, max_backoff_seconds=60.0) == []
    assert delays(max_attempts=8, backoff_seconds=2.0, max_backoff_seconds=60.0) == [2, 4, 8, 16, 32, 60, 60]


def test_an_alert_body_carries_the_reason_in_words_and_the_position_as_dedup_key() -> None:
    event = BlockRejected(file="bad.csv", sha256="0" * 64, reason_code="empty_file", message="bad.csv is empty")
    body = alert_body("churn", event, position=7, version=3, recorded_at="2026-01-01T00:00:00+00:00",
                      ui_url="http://127.0.0.1:7860/")
    assert body["reasons"] == ["empty_file: bad.csv is empty"] and body["dedup_key"] == "7"
    assert set(body) >= {"pipeline", "event_type", "position", "version", "recorded_at", "summary", "reasons",
                         "dedup_key", "ui_url", "text"}
    assert body["text"].startswith("[calmops] churn: file bad.csv rejected") and "http://127.0.0.1:7860/" in body["text"]


def test_a_sink_hears_the_types_it_lists_at_its_minimum_severity() -> None:
    warn = AlertSink(sink="file", path="a", events=("DriftDetected", "ModelPromoted", "RetrainFailed"),
                     min_severity="warning")
    assert wanted(warn, DriftDetected(block_id="b", reasons=("x",)))
    assert not wanted(warn, DriftDetected(block_id="b", reasons=("x",), starts_round=False))  # a warning only
    assert not wanted(warn, ModelPromoted(model_version="v2", previous_version="v1", strategy="full",
                                          reason="better", metrics={}))  # info, below warning
    assert wanted(warn, RetrainFailed(round_id="r1", strategy="full", error="boom"))
    assert not wanted(warn, RetrainFailed(round_id="r1", strategy="incremental", error="n/a", skipped=True))
    assert not wanted(warn, BlockRejected(file="f", sha256="0", reason_code="x", message="m"))  # not listed


def test_a_pipeline_with_its_own_sinks_does_not_get_the_folder_defaults() -> None:
    hook = AlertSink(sink="webhook", url="http://127.0.0.1:9/h")
    found = routes({"a": (), "b": (hook,), "c": ()}, (hook, AlertSink(sink="file", path="x", name="ship")),
                   base_dirs={"b": "/cfg"}, folder_dir="/folder")
    assert [(r.id, sorted(r.pipelines), r.base_dir) for r in found] == [
        ("b@webhook-1", ["b"], "/cfg"), ("_folder@webhook-1", ["a", "c"], "/folder"),
        ("_folder@ship", ["a", "c"], "/folder")]
