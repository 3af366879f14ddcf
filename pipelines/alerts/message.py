"""What an alert says: one JSON body for every sink, built from a recorded event and nothing else.

The body is `{pipeline, event_type, severity, position, version, recorded_at, summary, reasons, dedup_key,
ui_url, text}`; `text` makes it a valid Slack incoming-webhook message as it is. `dedup_key` is the event's
position in the log, so a receiver that sees a repeat (delivery is at least once) can drop it.

>>> from pipelines.core.events import DriftDetected
>>> body = alert_body("churn", DriftDetected(block_id="b7", reasons=("x1: mean moved by 0.8 sd",)),
...                   position=42, version=9, recorded_at="2026-01-01T00:00:00+00:00", ui_url=None)
>>> body["dedup_key"], body["severity"], body["summary"]
('42', 'warning', 'drift in b7: x1: mean moved by 0.8 sd')
>>> body["text"]
'[calmops] churn: drift in b7: x1: mean moved by 0.8 sd'
"""

from __future__ import annotations

from typing import Any

from pipelines.alerts.limiter import Digest
from pipelines.config.alerts import SEVERITIES, SEVERITY, AlertSink
from pipelines.core.events import (
    BlockRejected,
    ChallengerRejected,
    CircuitClosed,
    CircuitOpened,
    DriftDetected,
    Event,
    ModelPromoted,
    ModelRolledBack,
    RetrainFailed,
)
from pipelines.read_model.projection import summarize

__all__ = ["alert_body", "digest_body", "reasons_of", "sample_body", "severity_of", "wanted"]


def severity_of(event: Event) -> str:
    """The event type's severity; a drift that only warns (it starts no round) is "info"."""
    if isinstance(event, DriftDetected) and not event.starts_round:
        return "info"
    return SEVERITY.get(type(event).__name__, "info")


def wanted(sink: AlertSink, event: Event) -> bool:
    """Does `sink` want this event: its type is listed and its severity reaches the sink's minimum."""
    if type(event).__name__ not in sink.events:
        return False
    if isinstance(event, RetrainFailed) and event.skipped:  # a strategy that does not apply is no news
        return False
    return SEVERITIES.index(severity_of(event)) >= SEVERITIES.index(sink.min_severity)


def reasons_of(event: Event) -> list[str]:
    """The reasons in words, as the event recorded them."""
    match event:
        case DriftDetected():
            return list(event.reasons) + ([event.held_back] if event.held_back else [])
        case BlockRejected():
            return [f"{event.reason_code}: {event.message}"]
        case ModelPromoted() | ModelRolledBack() | ChallengerRejected() | CircuitClosed():
            return [event.reason]
        case CircuitOpened():
            return [f"{event.failures} failed rounds in a row; retraining paused until {event.until}"]
        case RetrainFailed():
            return [f"{event.strategy}: {event.error}"]
        case _:
            return []


def alert_body(pipeline: str, event: Event, *, position: int, version: int, recorded_at: str,
               ui_url: str | None) -> dict[str, Any]:
    """The JSON body of one alert."""
    summary = summarize(event)
    return _body(pipeline, type(event).__name__, severity_of(event), position, version, recorded_at, summary,
                 reasons_of(event), str(position), ui_url)


def digest_body(digest: Digest, *, severity: str, recorded_at: str, ui_url: str | None) -> dict[str, Any]:
    """The JSON body of a digest: the alerts a rate-limit window held back, in one message."""
    body = _body(digest.pipeline, digest.event_type, severity, digest.last_position, 0, recorded_at, digest.text,
                 [], digest.dedup_key, ui_url)
    return {**body, "digest": {"count": digest.count, "first_position": digest.first_position,
                               "last_position": digest.last_position}}


def sample_body(pipeline: str, *, recorded_at: str, ui_url: str | None) -> dict[str, Any]:
    """What `calmops alerts test` sends: an alert that says it is a test (position 0: not in the log)."""
    return _body(pipeline, "AlertTest", "info", 0, 0, recorded_at, "test alert from calmops: this sink works",
                 ["sent by `calmops alerts test`"], "test", ui_url)


def _body(pipeline: str, event_type: str, severity: str, position: int, version: int, recorded_at: str,
          summary: str, reasons: list[str], dedup_key: str, ui_url: str | None) -> dict[str, Any]:
    lines = [f"[calmops] {pipeline}: {summary}"] + [f"- {r}" for r in reasons[1:] if r]
    if ui_url:
        lines.append(ui_url)
    return {"pipeline": pipeline, "event_type": event_type, "severity": severity, "position": position,
            "version": version, "recorded_at": recorded_at, "summary": summary, "reasons": reasons,
            "dedup_key": dedup_key, "ui_url": ui_url, "text": "\n".join(lines)}
