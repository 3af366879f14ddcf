"""End-to-end cost: blocks per second through the pipeline actor against a plain loop doing the same work,
and the time from `calmops serve` start to a UI that answers.

    python -m benchmarks.e2e_bench [--blocks 8] [--rows 5000] [--features 20] [--json PATH]

The floor is a plain loop, in this process, doing what the actor must do per block and nothing else: read the
file with pyarrow, score the champion and compute its per-row errors, run the per-feature tests against a
reference fitted once, the MMD test and the concept detector. The actor does the same plus validation,
content-addressed storage of the block, the event log, and the hash chain. Both sides run in the same run on
the same blocks (no drift, so no retraining: this measures the monitoring path). Ratio target: <= 1.5x.

The serve start-up time is absolute (target < 20 s on 2 cores); a bare `ray.init` plus a one-button Gradio app
started in the same run gives the floor for context.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd


def make_blocks(folder: Path, blocks: int, rows: int, features: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=features)
    files = []
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(blocks):
        x = rng.normal(size=(rows, features))
        y = (x @ weights + rng.normal(scale=1.0, size=rows) > 0).astype(int)
        frame = pd.DataFrame(x, columns=[f"f{j:02d}" for j in range(features)]).assign(target=y)
        path = folder / f"block_{i + 1:03d}.csv"
        frame.to_csv(path, index=False)
        files.append(path)
    return files


CONFIG = """\
name = "bench"
target = "target"
source = "incoming"
[training]
seed = 1
"""


def actor_side(root: Path, files: list[Path]) -> tuple[float, dict]:
    """Ingest every block through the real PipelineActor (in-process; its MMD runs as a Ray task)."""
    from calmops_actors.pipeline_actor import PipelineActor

    actor = PipelineActor(str(root / "home"), "bench")
    actor.configure(tomllib.loads(CONFIG), str(root))
    actor.ingest(str(files[0]), await_rounds=True)  # the first block trains the champion: not timed
    start = time.perf_counter()
    for f in files[1:]:
        actor.ingest(str(f), await_rounds=True)
    elapsed = time.perf_counter() - start
    summary = actor.summary()
    actor.store.close()
    return elapsed, summary


def floor_side(root: Path, files: list[Path]) -> float:
    """The same monitoring work in a plain loop: read, predict, errors, per-feature tests, MMD, concept."""
    import pyarrow.csv as pacsv
    import ray

    from calmops_actors.artifact_refs import ref_for
    from calmops_actors.artifacts import ArtifactStore
    from calmops_actors.drift_tasks import multivariate_task
    from calmops_actors.home import Home
    from pipelines.config.pipeline import config_from_text
    from pipelines.core.state import replay
    from pipelines.drift.concept import update_concept
    from pipelines.drift.features import check_features, fit_reference
    from pipelines.retraining.evaluation import evaluate, per_row_errors

    store = Home(root / "home").open_store()
    state = replay(store.codec.decode(r) for r in store.read("pipeline-bench"))
    store.close()
    config = config_from_text(CONFIG, "bench.toml")
    artifacts = ArtifactStore(root / "home" / "artifacts")
    model = artifacts.get_model(ref_for(state.models[state.champion].artifact))
    schema = state.schema
    reference_frame = pacsv.read_csv(files[0]).to_pandas()
    reference = fit_reference(reference_frame, schema.numeric, schema.categorical, config.drift)
    concept = None
    start = time.perf_counter()
    for f in files[1:]:
        frame = pacsv.read_csv(f).to_pandas()
        evaluate(model, frame, schema.features, schema.target, "classification")
        errors = per_row_errors(model, frame, schema.features, schema.target, "classification")
        check_features(reference, frame, config.drift)
        ray.get(multivariate_task.remote(reference_frame, frame, schema.numeric, config.drift, 1))
        concept = update_concept(config.drift.concept_detector, concept.state if concept else None, errors,
                                 max_rows=config.drift.concept_max_rows)
    return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.monotonic()
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(url)


def serve_startup(root: Path) -> float:
    """Seconds from `calmops serve` process start to the UI answering HTTP 200 (no pipelines)."""
    port = free_port()
    (root / "configs").mkdir(exist_ok=True)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "calmops_actors", "serve", "--config-dir", str(root / "configs"),
                             "--home", str(root / "serve-home"), "--ui-port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        return wait_http(f"http://127.0.0.1:{port}/", 180) - start
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=60)


FLOOR_SCRIPT = """
import os, sys, time
t0 = time.monotonic()
import ray, gradio as gr
ray.init(address="local", include_dashboard=True, dashboard_host="127.0.0.1", log_to_driver=False)
with gr.Blocks() as app:
    gr.Button("hello")
app.launch(server_name="127.0.0.1", server_port=int(sys.argv[1]), prevent_thread_lock=True)
print("up", flush=True)
time.sleep(600)
"""


def startup_floor() -> float:
    port = free_port()
    # Ray's token authentication stays on, as `serve` keeps it: the floor pays the same token set-up
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "GRADIO_ANALYTICS_ENABLED": "False"}
    for name in ("RAY_ADDRESS", "RAY_AUTH_MODE"):
        env.pop(name, None)
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", FLOOR_SCRIPT, str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        return wait_http(f"http://127.0.0.1:{port}/", 180) - start
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=60)


def rows(results: dict) -> list:
    """The README rows of a `--json` report (see benchmarks/report.py)."""
    from benchmarks.report import Row, fmt_seconds

    out = [Row(f"blocks/s through the actor ({results['blocks'] - 1} blocks of {results['rows']:,} rows x "
               f"{results['features']} features, monitoring path)",
               f"{results['actor_blocks_per_s']:.2f} blocks/s, ratio {results['ratio']:.2f}x",
               f"plain loop {results['floor_blocks_per_s']:.2f} blocks/s", "ratio <= 1.5x",
               results["ratio"] <= 1.5)]
    if "serve_ui_seconds" in results:
        out.append(Row("`calmops serve` start to UI answering HTTP 200", fmt_seconds(results["serve_ui_seconds"]),
                       f"bare `ray.init` (dashboard) + one-button Gradio app "
                       f"{fmt_seconds(results['startup_floor_seconds'])}", "< 20 s",
                       results["serve_ui_seconds"] < 20))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--skip-serve", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="4 blocks (3 timed) instead of --blocks")
    args = parser.parse_args(argv)
    if args.quick:
        args.blocks = 4
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    root = Path(tempfile.mkdtemp(prefix="calmops-e2e-"))
    results: dict = {"load_before": os.getloadavg()[0], "cpus": os.cpu_count(), "blocks": args.blocks,
                     "rows": args.rows, "features": args.features}
    try:
        files = make_blocks(root / "incoming", args.blocks, args.rows, args.features)
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        actor_seconds, summary = actor_side(root, files)
        floor_seconds = floor_side(root, files)
        ray.shutdown()
        n = len(files) - 1
        results.update(actor_blocks_per_s=n / actor_seconds, floor_blocks_per_s=n / floor_seconds,
                       ratio=actor_seconds / floor_seconds, drifts=summary["drifts"], rounds=summary["rounds"])
        print(f"monitoring path, {n} blocks of {args.rows} rows x {args.features} features:")
        print(f"  actor {n / actor_seconds:.2f} blocks/s, plain loop {n / floor_seconds:.2f} blocks/s, "
              f"ratio {actor_seconds / floor_seconds:.2f}x (target <= 1.5x: "
              f"{'met' if actor_seconds / floor_seconds <= 1.5 else 'MISSED'}); drifts {summary['drifts']}, "
              f"rounds {summary['rounds']}")
        if not args.skip_serve:
            floor = startup_floor()
            serve = serve_startup(root)
            results.update(serve_ui_seconds=serve, startup_floor_seconds=floor)
            print(f"serve start to UI answering: {serve:.1f} s (target < 20 s: {'met' if serve < 20 else 'MISSED'});"
                  f" bare ray.init + Gradio app: {floor:.1f} s")
        results["load_after"] = os.getloadavg()[0]
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
