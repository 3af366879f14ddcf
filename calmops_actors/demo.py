"""`serve --demo`: four pipelines with no setup, fed live, so a new user sees the whole loop in ~2 minutes.

- `demo-sea`: classification, SEA with 10% label noise and an abrupt concept switch, labelled: drift is found
  in the error stream and the accuracy, candidates are trained, a promotion (and usually a rejection) follows.
- `demo-covariate`: classification on Hyperplane, labelled for the first blocks only, then a 1 sd mean shift in
  two features without labels: drift is found per feature, retraining waits for labels.
- `demo-friedman`: regression (Friedman #1 switching to FriedmanDrift), a gradient-boosting model.
- `demo-nightly`: four quiet blocks, then nothing: after 20 s without work its actor stops (`PipelinePassivated`)
  and the overview shows it `idle` beside the three `active` ones, as a pipeline fed once a day would be.

One malformed file is dropped into `demo-sea` too, to show a recorded rejection. Data is generated from a
seed, written to `<home>/demo/<name>/incoming` one block every `interval` seconds (write, then atomic rename).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from calmops_actors.blockfiles import atomic_write, block_file_name, frame_bytes
from pipelines.synthetic.scenarios import generate_scenario

log = logging.getLogger("calmops.demo")


@dataclass(frozen=True)
class DemoPipeline:
    name: str
    scenario: str
    config: str
    blocks: int
    rows: int
    drift_at: int
    shifts: tuple[str, ...] = ()
    labels_until: int | None = None
    switch: str | None = None


DEMOS = (
    DemoPipeline(
        name="demo-sea", scenario="sea", blocks=16, rows=1000, drift_at=7,
        config="""\
# A classification stream whose labelling rule switches abruptly at block 7 (SEA variant 0 -> 3).
name = "demo-sea"
target = "target"
source = "../demo/demo-sea/incoming"

[training]
seed = 11

[retrain]
strategies = ["full", "windowed", "since_change", "replay_mix", "recalibration"]
window_blocks = 2
""",
    ),
    DemoPipeline(
        name="demo-covariate", scenario="hyperplane", blocks=14, rows=800, drift_at=7, switch="none",
        shifts=("mean:feat_1:1.0", "mean:feat_2:1.0"), labels_until=3,
        config="""\
# Labels for the first 3 blocks only, then unlabelled blocks whose feat_1 and feat_2 move by 1 sd at block 7.
name = "demo-covariate"
target = "target"
source = "../demo/demo-covariate/incoming"

[training]
initial_blocks = 2
seed = 12
""",
    ),
    DemoPipeline(
        name="demo-friedman", scenario="friedman", blocks=14, rows=800, drift_at=7,
        config="""\
# A regression stream (Friedman #1) whose function changes at block 7.
name = "demo-friedman"
target = "target"
task = "regression"
source = "../demo/demo-friedman/incoming"

[model]
class = "sklearn.ensemble.HistGradientBoostingRegressor"
params = { max_iter = 60 }

[training]
seed = 13

[retrain]
strategies = ["full", "windowed", "replay_mix"]
window_blocks = 2
""",
    ),
)

DEMOS = DEMOS + (
    DemoPipeline(
        name="demo-nightly", scenario="hyperplane", blocks=4, rows=500, drift_at=4, switch="none",
        config="""\
# Four quiet blocks, then nothing: its actor stops after 20 s without work (the overview shows it idle) and the
# next file would start it again.
name = "demo-nightly"
target = "target"
source = "../demo/demo-nightly/incoming"

[training]
seed = 14

[lifecycle]
idle_seconds = 20
""",
    ),
)

BAD_FILE = ("block_0004_typo.csv", b"feat_1,feat_2,feat_3,target\n1.5,2.0,3.1,1\n2.5,oops,1.0,0\n")


def write_demo_configs(home: Path) -> Path:
    """Write the demo configs into `<home>/pipelines` (kept if the user edited them) and return that folder."""
    folder = home / "pipelines"
    folder.mkdir(parents=True, exist_ok=True)
    for demo in DEMOS:
        path = folder / f"{demo.name}.toml"
        if not path.exists():
            path.write_text(demo.config, encoding="utf-8")
        (home / "demo" / demo.name / "incoming").mkdir(parents=True, exist_ok=True)
    return folder


class DemoFeeder:
    """Writes each demo pipeline's blocks into its folder over time; already-written blocks are skipped."""

    def __init__(self, home: Path, interval: float = 5.0) -> None:
        self.home = home
        self.interval = interval
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.feed, name="calmops-demo", daemon=True)

    def start(self) -> DemoFeeder:
        self.thread.start()
        return self

    def feed(self) -> None:
        streams = []
        for demo in DEMOS:
            scenario = generate_scenario(demo.scenario, blocks=demo.blocks, rows=demo.rows, seed=7,
                                         drift_at=demo.drift_at, shifts=demo.shifts,
                                         labels_until=demo.labels_until, switch=demo.switch)
            streams.append((demo, scenario.frames))
        longest = max(len(frames) for _, frames in streams)
        for index in range(longest):
            for demo, frames in streams:
                if index < len(frames):
                    self.write(demo, index + 1, frames[index][1])
            if index == 3:
                self.write_bad_file()
            if self.stopping.wait(self.interval):
                return
        log.info("demo: every block written")

    def write(self, demo: DemoPipeline, index: int, frame) -> None:
        path = self.home / "demo" / demo.name / "incoming" / block_file_name(index, "csv")
        if not path.exists():
            atomic_write(path, frame_bytes(frame, "csv"))

    def write_bad_file(self) -> None:
        path = self.home / "demo" / "demo-sea" / "incoming" / BAD_FILE[0]
        if not path.exists():
            atomic_write(path, BAD_FILE[1])

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
