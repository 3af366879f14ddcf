"""Arrival schedules for one pipeline, driven through `PipelineActor` in this process (its rounds and heavy tests
still run as tasks on the shared local Ray), and the check that every block was checked once.

`serve` is `ingest(path, await_rounds=False)` per file plus `poll()` as its heartbeat; `run` is
`ingest(path, await_rounds=True)` per file. A kill is simulated by a store that lets the k-th event commit and
then raises, so the actor object dies between two appends, as a SIGKILLed process would; the next actor is
built from the same home and replays the log, like a process Ray restarts.
"""

from __future__ import annotations

import time
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from calmops_actors.blockfiles import write_scenario
from calmops_actors.home import Home, stream_id
from calmops_actors.pipeline_actor import PipelineActor
from pipelines.core.state import replay
from pipelines.synthetic.scenarios import generate_scenario

SETTINGS = """\

[training]
seed = 5

[retrain]
strategies = ["full", "windowed"]
"""


def write_files(folder: Path, *, blocks: int = 6, rows: int = 300, seed: int = 3, drift_at: int = 4,
                single_file: bool = False) -> list[Path]:
    """A seeded SEA stream with an abrupt concept switch, one file per block (or one file with a block column)."""
    folder.mkdir(parents=True, exist_ok=True)
    scenario = generate_scenario("sea", blocks=blocks, rows=rows, seed=seed, drift_at=drift_at)
    write_scenario(scenario, folder, "csv", block_col="block" if single_file else None)
    return sorted(p for p in folder.glob("*.csv"))


def config(name: str, block_col: str | None = None) -> dict:
    """The pipeline's config as `configure` takes it: small and seeded, two strategies per round."""
    head = f'name = "{name}"\ntarget = "target"\nsource = "incoming"\n'
    if block_col:
        head += f'block_col = "{block_col}"\n'
    return tomllib.loads(head + SETTINGS)


class Killed(Exception):
    """The simulated SIGKILL: raised right after the chosen event committed."""


class KillingStore:
    """The actor's store, which lets events commit until the `kill_at`-th of this process, then raises."""

    def __init__(self, store, kill_at: int) -> None:
        self.store, self.kill_at, self.appended = store, kill_at, 0

    def append(self, *args, **kwargs):
        recorded = self.store.append(*args, **kwargs)
        self.appended += len(recorded)
        if self.appended >= self.kill_at:
            raise Killed(f"killed after event {self.appended} of this process")
        return recorded

    def __getattr__(self, name: str):
        return getattr(self.store, name)


@dataclass
class Pipeline:
    """One pipeline's actor in this process, rebuilt from its home after a simulated kill."""

    home: Path
    raw: dict
    config_dir: Path
    kill_at: int | None = None
    kills: int = 0

    def __post_init__(self) -> None:
        self.actor = self.start()

    @property
    def name(self) -> str:
        return self.raw["name"]

    def start(self) -> PipelineActor:
        actor = PipelineActor(str(self.home), self.name)
        actor.configure(self.raw, str(self.config_dir))
        if self.kill_at is not None and self.kills == 0:
            actor.store = KillingStore(actor.store, self.kill_at)
        return actor

    def call(self, method: str, *args):
        """Call the actor; on a simulated kill, build the next actor (it replays the log) and call it again, as
        Ray retries a call on a restarted actor."""
        try:
            return getattr(self.actor, method)(*args)
        except Killed:
            self.kills += 1
            self.actor.store.store.close()
            self.actor = self.start()
            return getattr(self.actor, method)(*args)

    def quiet(self) -> bool:
        a = self.actor
        return a.inflight is None and a.state.round is None and not a.waiting

    def settle(self, timeout: float = 240.0) -> None:
        """Poll (serve's heartbeat) until no round is in flight and no block waits."""
        deadline = time.monotonic() + timeout
        self.call("poll", 0.2)
        while not self.quiet():
            assert time.monotonic() < deadline, "the pipeline did not settle"
            self.call("poll", 0.5)


def serve(pipeline: Pipeline, files: list[Path], groups: list[tuple[int, bool]]) -> None:
    """Deliver `files` in groups of (size, settle afterwards?); a group that does not settle lets the next
    arrive while a round may be in flight (a burst). Settles at the end."""
    i = 0
    for size, settle in groups:
        for path in files[i:i + size]:
            pipeline.call("ingest", str(path), False)
        i += size
        if settle:
            pipeline.settle()
        else:
            pipeline.call("poll", 0.0)
    for path in files[i:]:
        pipeline.call("ingest", str(path), False)
    pipeline.settle()


def run(pipeline: Pipeline, files: list[Path]) -> None:
    """`calmops run`: each file in turn, every round awaited."""
    for path in files:
        pipeline.call("ingest", str(path), True)


@dataclass(frozen=True)
class Checked:
    checked: tuple[str, ...]  # blocks with a DriftChecked, in log order
    measured: tuple[str, ...]
    first_training: tuple[str, ...]
    blocks: tuple[str, ...]
    events: int


def check_every_block_once(home: Path, name: str) -> Checked:
    """Every accepted block but the first model's own has exactly one drift check and (labelled) one score;
    none against a reference or a model trained on it; versions gapless; the hash chain intact."""
    store = Home(home).open_store()
    try:
        assert store.verify().ok
        stream = store.read(stream_id(name))
        state = replay(store.codec.decode(r) for r in stream)
    finally:
        store.close()
    assert [r.version for r in stream] == list(range(1, len(stream) + 1))
    blocks = tuple(b.block_id for b in state.ordered_blocks())
    due = [b for b in blocks if b not in state.first_training]
    checks = [r.payload for r in stream if r.type == "DriftChecked"]
    measured = [r.payload for r in stream if r.type == "PerformanceMeasured"]
    assert Counter(c["block_id"] for c in checks) == Counter(due), "each due block checked exactly once"
    labelled = [b for b in due if state.blocks[b].labelled]
    assert Counter(m["block_id"] for m in measured) == Counter(labelled), "each labelled block scored once"
    for c in checks:
        assert c["block_id"] not in c["reference_blocks"], f"{c['block_id']} checked against itself"
    for m in measured:
        assert m["block_id"] not in state.models[m["model_version"]].training_blocks
    started = [r.payload["round_id"] for r in stream if r.type == "RetrainRequested"]
    closed = Counter(r.payload["round_id"] for r in stream if r.type in ("ModelPromoted", "ChallengerRejected"))
    assert closed == Counter(started) and state.round is None and not state.pending_blocks()
    summaries = Counter(r.payload["round_id"] for r in stream if r.type == "ModelRetrained")
    assert summaries == Counter(started), "one ModelRetrained per finished round"
    return Checked(checked=tuple(c["block_id"] for c in checks), measured=tuple(m["block_id"] for m in measured),
                   first_training=state.first_training, blocks=blocks, events=len(stream))
