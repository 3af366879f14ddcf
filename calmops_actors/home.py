"""The home folder: everything calmops-actors keeps, in one place a person can back up or inspect.

```
<home>/
  log.sqlite           the append-only event log (the only source of truth; see docs/eventstore.md)
  artifacts/           content-addressed blocks (Parquet) and models (skops), named by sha256
  projections.sqlite   read tables for the UI and `status`, rebuilt from the log at will
  logs/                serve's log files
  pipelines/           configs written by `serve --demo` (your own configs live wherever you keep them)
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eventstore import Codec, SQLiteEventStore
from pipelines.core.events import ALERT_OUTCOMES, ALL_EVENTS

STREAM_PREFIX = "pipeline-"


@dataclass(frozen=True)
class Home:
    root: Path

    @property
    def log_path(self) -> Path:
        return self.root / "log.sqlite"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def projections_path(self) -> Path:
        return self.root / "projections.sqlite"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def demo_configs(self) -> Path:
        return self.root / "pipelines"

    def create(self) -> Home:
        for folder in (self.root, self.artifacts, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        return self

    def open_store(self) -> SQLiteEventStore:
        """The event log with every pipeline event registered in its codec."""
        self.root.mkdir(parents=True, exist_ok=True)
        return SQLiteEventStore(self.log_path, codec=make_codec())


def make_codec() -> Codec:
    return Codec(ALL_EVENTS + ALERT_OUTCOMES)


def stream_id(name: str) -> str:
    return STREAM_PREFIX + name


def pipeline_name(stream: str) -> str | None:
    return stream[len(STREAM_PREFIX):] if stream.startswith(STREAM_PREFIX) else None
