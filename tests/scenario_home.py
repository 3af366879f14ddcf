"""A realistic home folder for tests that read the log: a seeded SEA stream with an abrupt concept switch and a
covariate shift at block 5, one rejected file, retraining rounds with promotions and rejections, and a
rollback. Built once per session by the `scenario_home` fixture through the real `PipelineActor` (in-process,
its rounds as Ray tasks on the shared local Ray).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from calmops_actors.blockfiles import write_scenario
from pipelines.synthetic.scenarios import generate_scenario

CONFIG = """\
name = "sea"
target = "target"
source = "incoming"

[training]
seed = 3

[retrain]
strategies = ["full", "windowed", "since_change", "replay_mix", "recalibration"]
"""


def build_scenario_home(root: Path) -> Path:
    """Run the scenario into `root/home` and return that path (the config and data are in `root`)."""
    from calmops_actors.pipeline_actor import PipelineActor

    scenario = generate_scenario("sea", blocks=8, rows=600, seed=3, drift_at=5, shifts=["mean:feat_3:1.0"])
    incoming = root / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    write_scenario(scenario, incoming, "csv")
    (incoming / "block_0004b.csv").write_text("feat_1;feat_2;feat_3;target\n1;2;3;0\n")  # wrong delimiter
    (root / "sea.toml").write_text(CONFIG)
    home = root / "home"
    actor = PipelineActor(str(home), "sea")
    actor.configure(tomllib.loads(CONFIG), str(root))
    for file in sorted(incoming.glob("*.csv")):
        actor.ingest(str(file), await_rounds=True)
    first = "v1"
    if actor.state.champion != first:
        actor.rollback(first, "test: back to the first model")
    actor.store.close()
    return home
