"""Noise control: at most `max_per_window` alerts per pipeline and event type in a window, then one digest.

A window opens at the first alert of its (pipeline, type) and lasts `window_seconds`, counted on the events'
own recorded times, so the same log always gives the same verdicts (a restart that reads an event again
decides the same). Alerts beyond the limit are held back, not dropped: when the window ends (the clock
passes its end, or a later event of the same kind arrives after it) one digest says how many there were
("12 more DriftDetected alerts for churn in the last hour"). The state is plain JSON so the dispatcher can
store it with its checkpoint.

>>> state, verdicts = {}, []
>>> for t in range(7):
...     state, verdict, closed = admit(state, "churn", "DriftDetected", at=float(t), position=t + 1,
...                                   summary=f"drift {t}", max_per_window=5, window_seconds=3600.0)
...     verdicts.append(verdict)
>>> verdicts
['send', 'send', 'send', 'send', 'send', 'hold', 'hold']
>>> state, digests = due(state, now=3600.0, window_seconds=3600.0)
>>> digests[0].text
'2 more DriftDetected alerts for churn in the last hour (latest: drift 6)'
>>> state
{}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Digest", "admit", "due", "window_words"]

State = dict[str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Digest:
    """The alerts a window held back, as one message."""

    pipeline: str
    event_type: str
    count: int
    first_position: int
    last_position: int
    latest: str  # the summary of the last one held back
    window_seconds: float

    @property
    def text(self) -> str:
        return (f"{self.count} more {self.event_type} alerts for {self.pipeline} in the last "
                f"{window_words(self.window_seconds)} (latest: {self.latest})")

    @property
    def dedup_key(self) -> str:
        return f"digest:{self.pipeline}:{self.event_type}:{self.first_position}-{self.last_position}"


def window_words(seconds: float) -> str:
    """ "hour", "30 minutes", "2 hours": how a digest names its window."""
    if seconds == 3600:
        return "hour"
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g} hours"
    if seconds % 60 == 0:
        return f"{seconds / 60:g} minutes"
    return f"{seconds:g} seconds"


def admit(state: State, pipeline: str, event_type: str, *, at: float, position: int, summary: str,
          max_per_window: int, window_seconds: float) -> tuple[State, str, Digest | None]:
    """The verdict for one alert ("send" or "hold"), the new state, and the digest of a window it closed."""
    key = f"{pipeline}\t{event_type}"
    window = state.get(key)
    closed = None
    if window is not None and at >= window["start"] + window_seconds:
        closed = _digest(pipeline, event_type, window, window_seconds)
        window = None
    if window is None:
        window = {"start": at, "sent": 0, "held": 0, "first": 0, "last": 0, "latest": ""}
    if window["sent"] < max_per_window:
        window = {**window, "sent": window["sent"] + 1}
        verdict = "send"
    else:
        window = {**window, "held": window["held"] + 1, "first": window["first"] or position, "last": position,
                  "latest": summary}
        verdict = "hold"
    return {**state, key: window}, verdict, closed


def due(state: State, *, now: float, window_seconds: float) -> tuple[State, list[Digest]]:
    """Close the windows that ended by `now`: their digests (those that held something back) and the state."""
    digests, kept = [], {}
    for key, window in state.items():
        if now >= window["start"] + window_seconds:
            pipeline, event_type = key.split("\t", 1)
            digest = _digest(pipeline, event_type, window, window_seconds)
            if digest is not None:
                digests.append(digest)
        else:
            kept[key] = window
    return kept, sorted(digests, key=lambda d: d.first_position)


def _digest(pipeline: str, event_type: str, window: dict[str, Any], window_seconds: float) -> Digest | None:
    if not window["held"]:
        return None
    return Digest(pipeline, event_type, window["held"], window["first"], window["last"], window["latest"],
                  window_seconds)
