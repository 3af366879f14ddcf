"""Cluster mode on this machine: a two-node `ray.cluster_utils.Cluster`, the pipeline actor pinned to the node
that holds the home folder, training and drift tasks forced onto the second node (docs/cluster.md).

It runs in a subprocess: a Cluster needs its own Ray, apart from the session's shared local one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import json, os, sys, tomllib
    from pathlib import Path
    os.environ["CALMOPS_TASK_RESOURCES"] = json.dumps({"trainer": 1})  # inherited by both nodes' workers
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray
    from ray.cluster_utils import Cluster
    from calmops_actors.blockfiles import write_scenario
    from calmops_actors.home import Home, stream_id
    from calmops_actors.runtime import spawn_actor
    from pipelines.synthetic.scenarios import generate_scenario

    root = Path(sys.argv[1])
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    worker = cluster.add_node(num_cpus=2, resources={"trainer": 4})
    ray.init(address=cluster.address, namespace="calmops", log_to_driver=False)
    try:
        head_id = ray.get_runtime_context().get_node_id()
        incoming = root / "incoming"
        incoming.mkdir(parents=True)
        write_scenario(generate_scenario("sea", blocks=5, rows=400, seed=4, drift_at=3), incoming, "csv")
        text = 'name = "remote"\\ntarget = "target"\\n[retrain]\\nstrategies = ["full", "windowed"]\\n'
        actor = spawn_actor(root / "home", "remote")
        ray.get(actor.configure.remote(tomllib.loads(text), str(root)))
        for f in sorted(incoming.glob("block_*.csv")):
            ray.get(actor.ingest.remote(str(f), True))
        ping = ray.get(actor.ping.remote())
        store = Home(root / "home").open_store()
        trained = [r.payload for r in store.read(stream_id("remote")) if r.type == "CandidateTrained"]
        print(json.dumps({
            "head": head_id, "worker": worker.node_id, "actor_node": ping["node_id"],
            "notes": [n for t in trained for n in t["notes"] if n.startswith("trained on node")],
            "candidates": len(trained), "verified": store.verify().ok,
        }))
    finally:
        ray.shutdown()
        cluster.shutdown()
""")


@pytest.mark.slow
def test_actor_stays_home_and_tasks_run_on_the_second_node(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["actor_node"] == report["head"] != report["worker"]
    assert report["candidates"] >= 2 and report["verified"]
    assert report["notes"] and all(n == f"trained on node {report['worker']}" for n in report["notes"])
