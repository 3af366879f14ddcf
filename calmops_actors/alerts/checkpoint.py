"""Each sink's place in the log, and its rate-limit windows, in one small JSON file written atomically.

`<home>/alerts/<route id>.json` holds `{position, limiter}`: every event up to `position` has been sent,
recorded as failed, or counted into the limiter's open windows. It is written (temp file, fsync, rename) only
after the outcome of the last sent alert is in the log, so a crash repeats an alert, never loses one. A
missing file means the sink is new: it starts from the last position the log records an outcome for it at
(the checkpoint file was lost), else where the caller says (the log's end when `serve` started).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Checkpoint", "load", "save"]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    position: int
    limiter: dict[str, Any] = field(default_factory=dict)


def path_of(folder: Path, route_id: str) -> Path:
    return folder / f"{route_id}.json"  # route ids are made of names checked to be path-safe


def load(folder: Path, route_id: str) -> Checkpoint | None:
    """The saved checkpoint, or None when there is none (or it is unreadable: a torn file from an old crash)."""
    try:
        data = json.loads(path_of(folder, route_id).read_text(encoding="utf-8"))
        return Checkpoint(int(data["position"]), dict(data.get("limiter") or {}))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save(folder: Path, route_id: str, checkpoint: Checkpoint) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    target = path_of(folder, route_id)
    temp = target.with_name(target.name + ".tmp")
    with open(temp, "w", encoding="utf-8") as handle:
        json.dump({"position": checkpoint.position, "limiter": checkpoint.limiter}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, target)
