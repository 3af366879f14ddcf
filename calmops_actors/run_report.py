"""What one file led to, told from the events it added to the log: `calmops run`'s per-file line.

The actor answers `ingest` with the file's fate (accepted, rejected, duplicate); what followed (each block's
drift check, the round it started, the version that round promoted) is in the log, so it is read from there
rather than asked of the actor: the line says what was recorded, in the order it was recorded.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from eventstore import Recorded


@dataclass
class FileReport:
    """The drift checks and rounds recorded while one file was processed."""

    checks: list[dict[str, Any]] = field(default_factory=list)  # {"block", "drifted", "starts_round", "held_back"}
    rounds: list[dict[str, Any]] = field(default_factory=list)  # {"round", "trigger", "outcome", "promoted_version"}
    circuit_opened: str | None = None  # until when retraining pauses

    def as_json(self) -> dict[str, Any]:
        return {"checks": self.checks, "rounds": self.rounds, "circuit_opened_until": self.circuit_opened}


def file_report(records: Iterable[Recorded]) -> FileReport:
    """Fold the file's new events into its report (a round that ends in a later file stays `in_flight`)."""
    report = FileReport()
    rounds: dict[str, dict[str, Any]] = {}
    for record in records:
        data = record.payload
        if record.type == "DriftChecked":
            report.checks.append({"block": data["block_id"], "drifted": data["drifted"], "starts_round": None,
                                  "held_back": ""})
        elif record.type == "DriftDetected":
            check = next((c for c in reversed(report.checks) if c["block"] == data["block_id"]), None)
            if check is not None:
                check["starts_round"] = data.get("starts_round", True)
                check["held_back"] = data.get("held_back", "")
        elif record.type == "RetrainRequested":
            rounds[data["round_id"]] = {"round": data["round_id"], "trigger": data.get("trigger", "drift"),
                                        "outcome": "in_flight", "promoted_version": None, "champion_version": None}
            report.rounds.append(rounds[data["round_id"]])
        elif record.type == "ModelRetrained":
            entry = rounds.get(data["round_id"])
            if entry is None:  # requested in an earlier file (or an earlier run), ended in this one
                entry = rounds[data["round_id"]] = {"round": data["round_id"], "trigger": data.get("trigger")}
                report.rounds.append(entry)
            entry.update(outcome=data["outcome"], promoted_version=data.get("promoted_version"),
                         champion_version=data.get("champion_version"))
        elif record.type == "CircuitOpened":
            report.circuit_opened = data["until"]
    return report


def describe(result: dict[str, Any], report: FileReport) -> str:
    """One line for people: the file's fate, then each block's drift check and each round's outcome.

    >>> r = FileReport(checks=[{"block": "b7", "drifted": True, "starts_round": True, "held_back": ""}],
    ...                rounds=[{"round": "r3", "trigger": "drift", "outcome": "promoted", "promoted_version": "v9",
    ...                         "champion_version": "v6"}])
    >>> describe({"file": "b7.csv", "outcome": "accepted", "blocks": ["b7"]}, r)
    'b7.csv: accepted b7; b7: DRIFT; round r3 (drift): v9 promoted, replacing v6'
    """
    outcome = result["outcome"]
    if outcome == "rejected":
        fate = f"{result['file']}: REJECTED [{result['reason_code']}] {result['message']}"
    elif outcome == "duplicate":
        fate = f"{result['file']}: already in the log, skipped"
    elif outcome != "accepted":
        fate = f"{result['file']}: {outcome} {result.get('message', '')}".rstrip()
    else:
        fate = f"{result['file']}: accepted {', '.join(result['blocks']) or '(blocks already known)'}"
    # what else was recorded meanwhile: the first file of a run also finishes what an interrupted one left
    parts = [fate]
    for check in report.checks:
        if not check["drifted"]:
            parts.append(f"{check['block']}: no drift")
        elif check["starts_round"] is False:
            parts.append(f"{check['block']}: DRIFT (warning only: {check['held_back'] or 'no round'})")
        else:
            parts.append(f"{check['block']}: DRIFT")
    for r in report.rounds:
        trigger = f" ({r['trigger']})" if r.get("trigger") else ""
        parts.append(f"round {r['round']}{trigger}: {round_outcome(r)}")
    if report.circuit_opened:
        parts.append(f"retraining paused (circuit open until {report.circuit_opened})")
    if len(parts) == 1 and result.get("blocks"):
        parts.append("no model yet")
    return "; ".join(parts)


def round_outcome(entry: dict[str, Any]) -> str:
    outcome = entry["outcome"]
    if outcome == "promoted":
        replaced = f", replacing {entry['champion_version']}" if entry.get("champion_version") else ""
        return f"{entry['promoted_version']} promoted{replaced}"
    if outcome == "rejected":
        return f"no candidate beat the champion, {entry.get('champion_version') or 'the champion'} kept"
    if outcome == "failed":
        return "failed (every strategy failed; see `calmops explain`)"
    return "started, still in flight"


class Ticker:
    """A one-line `[i/N] file ... 12 s` on stderr while a file is processed: only on a terminal, only after
    2 s, and wiped before the file's own line is printed."""

    def __init__(self, label: str, stream: TextIO | None = None, delay: float = 2.0) -> None:
        self.label, self.delay = label, delay
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.monotonic()
        self.width = 0

    def tick(self) -> None:
        elapsed = time.monotonic() - self.start
        if self.enabled and elapsed >= self.delay:
            text = f"\r{self.label} ... {elapsed:.0f} s"
            self.width = max(self.width, len(text))
            self.stream.write(text)
            self.stream.flush()

    def close(self) -> None:
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0
