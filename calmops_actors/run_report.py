"""What one file led to, told from the events it added to the log: `calmops run`'s per-file line.

The actor answers `ingest` with the file's fate (accepted, rejected, duplicate); what followed (each block's
drift check, the round it started, the version that round promoted) is in the log, so it is read from there
rather than asked of the actor: the line says what was recorded, in the order it was recorded.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
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
        if record.type in ("DriftChecked", "LabelsChecked"):
            late = " (late labels)" if record.type == "LabelsChecked" else ""
            report.checks.append({"block": data["block_id"] + late, "drifted": data["drifted"],
                                  "starts_round": None, "held_back": ""})
        elif record.type == "DriftDetected":
            check = next((c for c in reversed(report.checks) if c["block"].split(" (")[0] == data["block_id"]), None)
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
    elif "labels_for" in result:
        fate = f"{result['file']}: labels for {', '.join(result['labels_for'])}"
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


class Progress:
    """`run`'s progress on a terminal: one line on stderr, redrawn in place each second by a background thread.

    Only when stderr is a terminal, and only once the run has taken `delay` seconds (a short run shows none).
    Each file's own line goes through `finished`, which wipes the bar, prints the line and draws the bar again
    below it; without a terminal it is a plain print and nothing else is written.
    """

    def __init__(self, total: int, stream: TextIO | None = None, delay: float = 2.0, interval: float = 1.0) -> None:
        self.total, self.delay, self.interval = total, delay, interval
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = self.file_started = time.monotonic()
        self.done, self.current, self.note = 0, "", ""
        self.first_done = self.started  # when the first file finished
        self.shown = 0  # characters of the bar now on screen
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> Progress:
        if self.enabled:
            self.thread = threading.Thread(target=self.loop, name="calmops-progress", daemon=True)
            self.thread.start()
        return self

    def loop(self) -> None:
        while not self.stopped.wait(self.interval):
            with self.lock:
                self.draw()

    def begin(self, name: str) -> None:
        """The next file starts."""
        with self.lock:
            self.current, self.note, self.file_started = name, "", time.monotonic()
            self.draw()

    def status(self, text: str) -> None:
        """A word on what the current file waits for (`starting Ray ...`), shown after its name."""
        with self.lock:
            self.note = text
            self.draw()

    def finished(self, text: str, out: TextIO) -> None:
        """Print one finished file's line (on `out`) and count the file."""
        self.message(text, out, count=True)

    def message(self, text: str, out: TextIO, count: bool = False) -> None:
        """Print a line above the bar."""
        with self.lock:
            self.wipe()
            print(text, file=out, flush=True)
            if count:
                self.done += 1
                self.current = ""
                self.first_done = self.first_done if self.done > 1 else time.monotonic()
            self.draw()

    def close(self) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join(timeout=2 * self.interval)
        with self.lock:
            self.wipe()

    def draw(self) -> None:
        now = time.monotonic()
        if not self.enabled or self.stopped.is_set() or now - self.started < self.delay:
            return
        try:  # the width of the terminal the bar is on (stdout may be a pipe: `run --json | jq`)
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, OSError, ValueError):
            columns = shutil.get_terminal_size((80, 24)).columns
        # the rate after the first file (which pays Ray's start and the first model): the time left at it
        rate = (self.done - 1) / (now - self.first_done) if self.done > 1 and now > self.first_done else None
        text = progress_line(self.done, self.total, now - self.started, self.current, now - self.file_started,
                             self.note, columns - 1, rate)  # never the last column: a wrapped line cannot be redrawn
        self.stream.write("\r" + text.ljust(self.shown))
        self.stream.flush()
        self.shown = len(text)

    def wipe(self) -> None:
        if self.shown:
            self.stream.write("\r" + " " * self.shown + "\r")
            self.stream.flush()
            self.shown = 0


def progress_line(done: int, total: int, elapsed: float, current: str = "", current_elapsed: float = 0.0,
                  note: str = "", width: int = 100, rate: float | None = None) -> str:
    """The bar's text: files done, a bar, the file in hand, then the rate (`done / elapsed` unless given) and
    the time left at that rate.

    >>> progress_line(250, 1000, 20.0, "block_0251.csv", 0.4, width=100)
    '[ 250/1000] #####---------------  25% | block_0251.csv | 12.5 files/s, ~1 min left'
    >>> progress_line(1, 6, 30.0, "block_0002.csv", 14.2, "starting Ray ...", width=100)
    '[1/6] ###-----------------  17% | block_0002.csv 14 s, starting Ray ... | 30.0 s/file, ~2 min left'
    >>> len(progress_line(5, 10, 9.0, "x" * 200, width=60))
    60
    """
    digits = len(str(total))
    share = done / total if total else 1.0
    filled = int(share * 20)
    text = f"[{done:>{digits}}/{total}] {'#' * filled}{'-' * (20 - filled)} {share:4.0%}"
    if current:
        text += f" | {current}" + (f" {current_elapsed:.0f} s" if current_elapsed >= 1 else "")
        text += f", {note}" if note else ""
    if rate is None and done:
        rate = done / elapsed if elapsed > 0 else float("inf")
    if rate:
        text += f" | {rate:.1f} files/s" if rate >= 1 else f" | {1 / rate:.1f} s/file"
        text += f", ~{duration((total - done) / rate)} left" if done < total else ""
    return text[:width]


def duration(seconds: float) -> str:
    """A rough remaining time: `40 s`, `3 min`, `2 h 5 min`."""
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    return f"{int(seconds // 3600)} h {round(seconds % 3600 / 60)} min"
