"""Activation latency under `calmops serve`: a file landing for a passivated pipeline with a 100k-event log, to
its `DriftChecked`, against the same kind of block for the same pipeline's actor while it is active.

    python -m benchmarks.activation [--events 100000] [--repeats 5] [--quick] [--json PATH]

The pipeline is a real one, built in three steps (in this process, before `serve` starts):

1. **Real blocks.** `calmops init`'s template (`[lifecycle] idle_seconds` short), the real `PipelineActor` with a
   local Ray: a first block of 1,000 rows x 10 features trains the champion (a real model artifact), then
   blocks are checked until one is not drifted: its four events (`BlockArrived`, `PerformanceMeasured`,
   `PerformanceEstimated`, `DriftChecked`) are the template.
2. **The long log.** Copies of those four events, each copy with a new block id, file name and file hash and
   the template's stored rows (the artifact store is content-addressed: every copy points at the real block's
   Parquet), appended through the real store and codec in batches until the stream holds `--events` events.
   The state then holds that many blocks (about a quarter of the events), with the real champion, schema,
   reference and concept-detector state, so the next real block is checked as any other.
3. **Passivated.** The actor (in this process) loads that log, and `passivate` saves a snapshot and records
   `PipelinePassivated`, exactly as `serve` does; the projections are brought up to date (`update_projections`)
   so `serve`'s projector does not compete with the timing. Loading the log in this process, with and
   without the snapshot, is timed here too (the load/fold part of an activation, measured apart).

Then `serve --no-ui` runs on that home (its own Ray, a private RAY_TMPDIR), and the cycles alternate the two
variants: **with a snapshot** (the one passivation left: the normal case) and **without** (the snapshot row is
deleted while the pipeline is passivated: what an activation pays when its snapshot is refused). Each cycle:

- a block file lands (copied in as a hidden file, then renamed: the watcher takes a rename at once) for the
  passivated pipeline: the supervisor spawns the actor, which loads, is configured, records
  `PipelineActivated`, then ingests and checks the block;
- as soon as its `DriftChecked` is in the log, the next block lands for the now active actor: the same kind
  of block, the same pipeline, the same log: the same-run baseline;
- the pipeline passivates again after `idle_seconds` (the supervisor's "passivated" log line).

Times come from the clock of this process at the rename and the `recorded_at` of the events in the log (the
same machine clock), so the split is read from outside: landing -> the supervisor's "activated" log line
(watcher + spawn call), -> `PipelineActivated` (the new worker process, its imports, the load/fold and
`configure`), -> `DriftChecked` (the block: intake, model and reference loaded cold, the tests). A first,
untimed cycle (with a snapshot) warms up Ray's task workers and is reported apart.

Target (issue 23): activation adds <= 2 s to the first block of a passivated pipeline with a 100k-event log:
the median over cycles of (passivated block - active block), judged on the variant with a snapshot (what
passivation leaves); the one without is reported against the same 2 s.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks.report import Row, fmt_seconds

NAME = "cold"
FULL_EVENTS, QUICK_EVENTS = 100_000, 20_000
FULL_REPEATS, QUICK_REPEATS = 5, 2
ROWS, FEATURES = 1_000, 10
IDLE_SECONDS = 15  # [lifecycle] idle_seconds: passivated again soon after each cycle (counted from the start of
# the last call: below the passivated block's own seconds, the actor passivates before the next block lands)
TARGET_ADDED_S = 2.0
BATCH = 5_000  # events per append while building the log
VARIANTS = ("snapshot", "no snapshot")


# -- building the pipeline ------------------------------------------------------------------------------------

def write_config(folder: Path, idle_seconds: float = IDLE_SECONDS) -> Path:
    """`calmops init`'s template for NAME (source `incoming/NAME`) with a short `[lifecycle] idle_seconds`."""
    from calmops_actors.commands.init import template
    from pipelines.config.pipeline import config_from_text

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "incoming" / NAME).mkdir(parents=True, exist_ok=True)
    text = template(NAME, f"incoming/{NAME}") + f"\n[lifecycle]\nidle_seconds = {idle_seconds:g}\n"
    path = folder / f"{NAME}.toml"
    config_from_text(text, str(path))  # refuse here, not in serve
    path.write_text(text)
    return path


def config_of(path: Path) -> tuple[dict, str]:
    """The config file as `serve` reads it: its raw dict and the sha256 the supervisor compares."""
    from pipelines.config.pipeline import config_from_dict, config_sha256, parse_toml

    raw = parse_toml(path.read_bytes(), str(path))
    return raw, config_sha256(config_from_dict(raw, str(path)))


def real_prefix(home: Path, config_path: Path, files: Sequence[Path]) -> tuple[list[Any], int]:
    """Ingest real blocks through the real actor (in this process, with Ray) until one is checked without
    drift; returns that block's events (the template) and how many files were used."""
    from calmops_actors.pipeline_actor import PipelineActor

    raw, _ = config_of(config_path)
    actor = PipelineActor(str(home), NAME, str(config_path.parent))
    try:
        actor.configure(raw, str(config_path.parent))
        for used, path in enumerate(files, start=1):
            result = actor.ingest(str(path), await_rounds=True)
            if used == 1 or result.get("outcome") != "accepted":
                continue
            block_id = result["blocks"][0]
            events = [actor.store.codec.decode(r) for r in actor.store.read(actor.stream)]
            template = [e for e in events if getattr(e, "block_id", None) == block_id]
            kinds = [type(e).__name__ for e in template]
            if kinds[0] == "BlockArrived" and kinds[-1] == "DriftChecked" and not template[-1].drifted:
                return template, used  # the default config: arrived, measured, estimated, checked
        raise RuntimeError(f"no block of {len(files)} was checked without drift; cannot build the template")
    finally:
        actor.store.close()


def block_copies(template: Sequence[Any], start: int, count: int) -> Iterator[Any]:
    """`count` copies of a block's events, the i-th with block id `s{i:07d}`, file `s{i:07d}.csv` and a file
    hash of its own; everything else (its rows' artifact, the check's results) as in the template.

    >>> from pipelines.core.events import Artifact, BlockArrived
    >>> arrived = BlockArrived(block_id="block_002", file="block_002.csv", sha256="ab", rows=3, labelled=True,
    ...                        artifact=Artifact(sha256="cd", kind="frame", size=1, format="parquet"),
    ...                        occurred_at="2026-01-01T00:00:00+00:00")
    >>> [(e.block_id, e.file, e.artifact.sha256) for e in block_copies([arrived], 7, 2)]
    [('s0000007', 's0000007.csv', 'cd'), ('s0000008', 's0000008.csv', 'cd')]
    """
    for i in range(start, start + count):
        block_id = f"s{i:07d}"
        for event in template:
            changes: dict[str, Any] = {"block_id": block_id}
            if type(event).__name__ == "BlockArrived":
                changes |= {"file": f"{block_id}.csv",
                            "sha256": hashlib.sha256(f"synthetic file {block_id}".encode()).hexdigest()}
            yield dataclasses.replace(event, **changes)


def extend_log(home: Path, template: Sequence[Any], events: int) -> int:
    """Append template copies to NAME's stream until it holds at least `events` events; its version."""
    from calmops_actors.home import Home, stream_id

    store = Home(home).open_store()
    stream = stream_id(NAME)
    try:
        version = store.stream_version(stream)
        per_batch = max(1, BATCH // len(template))
        copy = 1
        while version < events:
            blocks = min(per_batch, -(-(events - version) // len(template)))
            batch = list(block_copies(template, copy, blocks))
            store.append(stream, batch, expected_version=version)
            version += len(batch)
            copy += blocks
        return version
    finally:
        store.close()


def timed_load(home: Path, config_dir: Path) -> tuple[float, int]:
    """Seconds to construct the actor (open the log, load the snapshot if any, fold the tail) in this process;
    and the snapshot's version it started from (0: none)."""
    from calmops_actors.pipeline_actor import PipelineActor

    start = time.perf_counter()
    actor = PipelineActor(str(home), NAME, str(config_dir))
    seconds = time.perf_counter() - start
    actor.store.close()
    return seconds, actor.snapshot_version


FRESH = """
import json, sys, time
wall, cpu = time.perf_counter, time.process_time
marks = [(wall(), cpu())]
import ray  # a Ray worker has it imported already
marks.append((wall(), cpu()))
from calmops_actors.pipeline_actor import PipelineActor
from benchmarks.activation import NAME, config_of
from pathlib import Path
marks.append((wall(), cpu()))
home, config_path = sys.argv[1], Path(sys.argv[2])
actor = PipelineActor(home, NAME, str(config_path.parent))
marks.append((wall(), cpu()))
actor.configure(config_of(config_path)[0], str(config_path.parent))
marks.append((wall(), cpu()))
version = actor.state.champion
actor.model(version), actor.calibrator(version), actor.reference(actor.reference_blocks(actor.state.last_block))
marks.append((wall(), cpu()))
steps = ("import_ray", "import_actor", "load", "configure", "caches")
print(json.dumps({"snapshot_version": actor.snapshot_version, **{
    f"{step}{suffix}": marks[i + 1][k] - marks[i][k] for i, step in enumerate(steps)
    for k, suffix in ((0, "_s"), (1, "_cpu_s"))}}))
"""


def fresh_process(home: Path, config_path: Path) -> dict:
    """What an activation's new process does, timed step by step in a fresh Python without Ray running (wall
    and CPU): import Ray (a Ray worker has it already), import the actor's module, construct (load), configure,
    and fill the first block's caches (the champion model, its calibration, the fitted reference). It records
    no event; `configure` saves a snapshot when the state is SNAPSHOT_EVERY events past the last (as the actor
    under `serve` does on activation), so it runs before the pipeline is passivated."""
    proc = subprocess.run([sys.executable, "-c", FRESH, str(home), str(config_path)], capture_output=True,
                          text=True, timeout=600, cwd=Path(__file__).resolve().parents[1],
                          env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    if proc.returncode != 0:
        raise RuntimeError(f"the fresh-process steps failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def passivate(home: Path, config_path: Path) -> dict:
    """Load the log, configure, and passivate the actor as `serve` would (snapshot + `PipelinePassivated`)."""
    from calmops_actors.pipeline_actor import PipelineActor

    raw, sha = config_of(config_path)
    actor = PipelineActor(str(home), NAME, str(config_path.parent))
    try:
        configured = actor.configure(raw, str(config_path.parent))
        outcome = actor.passivate(0.0, sha)
    finally:
        actor.store.close()
    if not outcome.get("ok") or configured["recorded"]:
        raise RuntimeError(f"the built pipeline did not passivate cleanly: {configured}, {outcome}")
    return outcome


def build(root: Path, events: int, blocks_needed: int) -> dict:
    """The home, config and block files of the benchmark; returns what was built and how long it took."""
    import ray

    from benchmarks.e2e_bench import make_blocks
    from calmops_actors.projector import update_projections

    home, config_dir = root / "home", root / "pipelines"
    config_path = write_config(config_dir)
    spare = 8  # blocks the prefix may use before one is checked without drift
    files = make_blocks(root / "blocks", spare + blocks_needed, ROWS, FEATURES)
    out: dict = {}
    t0 = time.monotonic()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        template, used = real_prefix(home, config_path, files[:spare])
    finally:
        ray.shutdown()
    out["prefix_s"] = time.monotonic() - t0
    out["prefix_files"] = used
    t0 = time.monotonic()
    out["events"] = extend_log(home, template, events)
    out["extend_s"] = time.monotonic() - t0
    out["load_without_snapshot_s"], _ = timed_load(home, config_dir)
    out["fresh_without_snapshot"] = fresh_process(home, config_path)
    t0 = time.monotonic()
    outcome = passivate(home, config_path)
    out["passivate_s"] = time.monotonic() - t0
    # the snapshot is saved by `passivate` when the tail is 200+ events, or already by `configure` (the actor
    # saves one whenever its state is SNAPSHOT_EVERY events past the last, even when a call appends nothing)
    out["passivation_snapshot_version"] = outcome["snapshot_version"]
    out["snapshot_version"] = snapshot_version(home / "log.sqlite")
    out["load_with_snapshot_s"], from_version = timed_load(home, config_dir)
    out["fresh_with_snapshot"] = fresh_process(home, config_path)
    if not from_version or {from_version, out["fresh_with_snapshot"]["snapshot_version"]} != {out["snapshot_version"]}:
        raise RuntimeError("the actor did not load from the snapshot left at its passivation")
    t0 = time.monotonic()
    update_projections(home)
    out["projections_s"] = time.monotonic() - t0
    out["log_mb"] = (home / "log.sqlite").stat().st_size / 1e6
    out["blocks"] = [str(f) for f in files[spare:]]
    return out


# -- driving serve --------------------------------------------------------------------------------------------

def iso_epoch(text: str) -> float:
    """
    >>> iso_epoch("1970-01-01T00:00:01.500000+00:00")
    1.5
    """
    return dt.datetime.fromisoformat(text).timestamp()


LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \S+ calmops\.supervisor: pipeline (\S+) (activated|"
                      r"passivated)(?:: (.*))?")


def supervisor_lines(path: Path) -> list[tuple[float, str, str, str]]:
    """(epoch, pipeline, "activated"/"passivated", rest) for each such line of serve.log (local time, ms).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "serve.log"
    >>> _ = p.write_text("2026-01-01 00:00:01,250 INFO calmops.supervisor: pipeline cold activated: file b.csv\\n"
    ...                  "2026-01-01 00:00:09,000 INFO calmops.supervisor: pipeline cold passivated after 2 s idle\\n")
    >>> [(kind, rest) for _, _, kind, rest in supervisor_lines(p)]
    [('activated', 'file b.csv'), ('passivated', 'after 2 s idle')]
    >>> round(supervisor_lines(p)[1][0] - supervisor_lines(p)[0][0], 3)
    7.75
    """
    out = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        m = LOG_LINE.match(line)
        if m:
            when = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            rest = m.group(4) or ""
            if m.group(3) == "passivated":
                rest = line.split(" passivated ", 1)[1]
            out.append((when, m.group(2), m.group(3), rest))
    return out


def stream_events(log: Path, after_version: int = 0) -> list[tuple[int, str, dict, float]]:
    """(version, type, payload, recorded epoch) of NAME's events after `after_version`, read-only."""
    with contextlib.closing(sqlite3.connect(f"file:{log}?mode=ro", uri=True, timeout=10)) as db:
        rows = db.execute("SELECT version, type, payload, recorded_at FROM events WHERE stream_id = ? AND "
                          "version > ? ORDER BY version", (f"pipeline-{NAME}", after_version)).fetchall()
    return [(v, t, json.loads(p), iso_epoch(at)) for v, t, p, at in rows]


def head_version(log: Path) -> int:
    """NAME's stream version, read-only."""
    with contextlib.closing(sqlite3.connect(f"file:{log}?mode=ro", uri=True, timeout=10)) as db:
        (version,) = db.execute("SELECT MAX(version) FROM events WHERE stream_id = ?", (f"pipeline-{NAME}",)).fetchone()
    return version or 0


def snapshot_version(log: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{log}?mode=ro", uri=True, timeout=10)) as db:
        row = db.execute("SELECT version FROM snapshots WHERE stream_id = ?", (f"pipeline-{NAME}",)).fetchone()
    return row[0] if row else 0


def drop_snapshot(log: Path) -> None:
    """Delete the pipeline's snapshot row (a cache: the next load folds the whole log)."""
    with contextlib.closing(sqlite3.connect(log, timeout=30)) as db, db:
        db.execute("DELETE FROM snapshots WHERE stream_id = ?", (f"pipeline-{NAME}",))


def land(block: Path, folder: Path) -> tuple[float, str]:
    """Copy a block in as a hidden file, then rename it into place; the epoch of the rename and its block id."""
    hidden = folder / f".{block.name}.part"
    shutil.copyfile(block, hidden)
    landed = time.time()
    os.rename(hidden, folder / block.name)
    return landed, block.stem


def wait_until(condition, timeout: float, what: str, proc: subprocess.Popen, tick: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited ({proc.returncode}) while waiting for {what}")
        found = condition()
        if found:
            return found
        time.sleep(tick)
    raise TimeoutError(f"{what}: not within {timeout:.0f} s")


def block_times(log: Path, block_id: str, after_version: int) -> dict | None:
    """Epochs of the block's `BlockArrived` and `DriftChecked` and of the `PipelineActivated` before it (if
    recorded after `after_version`); None until its `DriftChecked` is in the log."""
    out: dict = {}
    for _version, kind, payload, at in stream_events(log, after_version):
        if kind == "PipelineActivated":
            out["activated"] = at
        elif payload.get("block_id") == block_id and kind in ("BlockArrived", "DriftChecked"):
            out[kind] = at
    return out if "DriftChecked" in out else None


def one_block(ctx: dict, block: Path) -> dict:
    """Land one block and wait for its `DriftChecked`; seconds from the landing to each step."""
    log, proc = ctx["log"], ctx["proc"]
    before = head_version(log)
    landed, block_id = land(block, ctx["incoming"])
    times = wait_until(lambda: block_times(log, block_id, before), ctx["timeout"], f"DriftChecked of {block_id}",
                       proc)
    out = {"block": block_id, "total_s": times["DriftChecked"] - landed,
           "arrived_s": times["BlockArrived"] - landed}
    if "activated" in times:
        out["activated_s"] = times["activated"] - landed
        spawned = [w for w, name, kind, rest in supervisor_lines(ctx["serve_log"])
                   if name == NAME and kind == "activated" and rest.endswith(block.name)]
        if spawned:
            out["spawn_call_s"] = spawned[-1] - landed
    return out


def cycle(ctx: dict, variant: str, cold_block: Path, warm_block: Path) -> dict:
    """One passivated block, then one for the active actor; waits until the pipeline is passivated again."""
    log = ctx["log"]
    if variant == "no snapshot":
        drop_snapshot(log)
    snap = snapshot_version(log)
    if (variant == "no snapshot") != (snap == 0):
        raise RuntimeError(f"variant {variant!r} but the snapshot is at version {snap}")
    passivations = sum(1 for _, name, kind, _ in supervisor_lines(ctx["serve_log"])
                       if name == NAME and kind == "passivated")
    cold = one_block(ctx, cold_block)
    if "activated_s" not in cold:
        raise RuntimeError(f"{cold_block.name} did not activate the pipeline: was it passivated?")
    warm = one_block(ctx, warm_block)
    if "activated_s" in warm:
        raise RuntimeError(f"{warm_block.name} found the pipeline passivated: raise idle_seconds")
    wait_until(lambda: sum(1 for _, name, kind, _ in supervisor_lines(ctx["serve_log"])
                           if name == NAME and kind == "passivated") > passivations,
               IDLE_SECONDS + ctx["timeout"], "the pipeline to passivate again", ctx["proc"], tick=0.2)
    return {"variant": variant, "snapshot_version": snap, "load": list(os.getloadavg()), "cold": cold,
            "warm": warm, "added_s": cold["total_s"] - warm["total_s"]}


def run_serve(root: Path, built: dict, repeats: int, timeout: float) -> dict:
    """`serve --no-ui` on the built home; a warm-up cycle, then `repeats` cycles of each variant, alternating."""
    from benchmarks.memory import TreeSampler, die_with_parent, env, peaks, stop_group

    home, config_dir = root / "home", root / "pipelines"
    blocks = [Path(b) for b in built["blocks"]]
    environment = env() | {"RAY_TMPDIR": str(root / "ray"), "PYTHONUNBUFFERED": "1"}
    out_file = (root / "serve.out").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "calmops_actors", "serve", "--home", str(home), "--config-dir",
                             str(config_dir), "--no-ui", "--scan-interval", "5"], env=environment, stdout=out_file,
                            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent)
    out_file.close()
    sampler = TreeSampler(proc.pid, interval=5.0).start()
    result: dict = {"cycles": []}
    try:
        t0 = time.monotonic()
        wait_until(lambda: "Ctrl-C stops." in (root / "serve.out").read_text(errors="replace"), timeout,
                   "serve to start", proc, tick=0.2)
        result["serve_start_s"] = time.monotonic() - t0
        started = (root / "serve.out").read_text(errors="replace")
        if not re.search(rf"^\s+idle\s+.*\b{NAME}\b", started, re.MULTILINE):
            raise RuntimeError(f"serve did not keep the passivated pipeline idle at start:\n{started}")
        ctx = {"log": home / "log.sqlite", "serve_log": home / "logs" / "serve.log", "proc": proc,
               "incoming": config_dir / "incoming" / NAME, "timeout": timeout}
        result["first"] = cycle(ctx, "snapshot", blocks[0], blocks[1])
        print_cycle("first (untimed)", result["first"])
        order = [VARIANTS[i % 2] for i in range(2 * repeats)]
        for i, variant in enumerate(order):
            c = cycle(ctx, variant, blocks[2 + 2 * i], blocks[3 + 2 * i])
            result["cycles"].append(c)
            print_cycle(f"{i + 1}/{len(order)}", c)
        sampler.stop()
        result["tree"] = peaks(sampler.samples)
    finally:
        result["cleanup"] = stop_group(proc, sampler)
    return result


def print_cycle(label: str, c: dict) -> None:
    cold, warm = c["cold"], c["warm"]
    print(f"  cycle {label} [{c['variant']}]: passivated block {cold['total_s']:.2f} s (actor spawned "
          f"{cold.get('spawn_call_s', float('nan')):.2f} s, PipelineActivated {cold['activated_s']:.2f} s, "
          f"BlockArrived {cold['arrived_s']:.2f} s); active block {warm['total_s']:.2f} s; added "
          f"{c['added_s']:.2f} s; load {c['load'][0]:.1f}", flush=True)


# -- figures --------------------------------------------------------------------------------------------------

def summarize(cycles: Sequence[dict]) -> dict:
    """Per variant: medians (and ranges) of the passivated and active blocks, the added seconds (paired per
    cycle), and the split of the passivated block.

    >>> c = {"variant": "snapshot", "added_s": 1.0, "load": [3.0], "warm": {"total_s": 1.0, "arrived_s": 0.1},
    ...      "cold": {"total_s": 2.0, "spawn_call_s": 0.1, "activated_s": 1.5, "arrived_s": 1.6}}
    >>> s = summarize([c, c | {"added_s": 3.0, "cold": c["cold"] | {"total_s": 4.0}}])["snapshot"]
    >>> s["added_s"], s["cold_s"], s["cold_range"], s["n"]
    (2.0, 3.0, [2.0, 4.0], 2)
    """
    out = {}
    for variant in VARIANTS:
        chosen = [c for c in cycles if c["variant"] == variant]
        if not chosen:
            continue

        def med(values: list[float]) -> float:
            return statistics.median(values)

        cold = [c["cold"] for c in chosen]
        warm = [c["warm"] for c in chosen]
        out[variant] = {
            "n": len(chosen),
            "cold_s": med([x["total_s"] for x in cold]),
            "cold_range": [min(x["total_s"] for x in cold), max(x["total_s"] for x in cold)],
            "warm_s": med([x["total_s"] for x in warm]),
            "warm_range": [min(x["total_s"] for x in warm), max(x["total_s"] for x in warm)],
            "added_s": med([c["added_s"] for c in chosen]),
            "added_range": [min(c["added_s"] for c in chosen), max(c["added_s"] for c in chosen)],
            "spawn_call_s": med([x.get("spawn_call_s", 0.0) for x in cold]),
            "to_activated_s": med([x["activated_s"] for x in cold]),
            "activated_to_checked_s": med([x["total_s"] - x["activated_s"] for x in cold]),
            "warm_arrived_to_checked_s": med([x["total_s"] - x["arrived_s"] for x in warm]),
            "load": [min(c["load"][0] for c in chosen), max(c["load"][0] for c in chosen)],
        }
    return out


def rows(results: dict) -> list[Row]:
    """The README rows: per variant, the passivated block against the active one (the added seconds judged on
    the variant with a snapshot), where the passivated block's time goes, and the load measured apart."""
    out = []
    events, build = results["events"], results["build"]
    for variant, s in results["summary"].items():
        judged = variant == "snapshot"
        what = "with the snapshot passivation left" if judged else "without a snapshot (the whole log folded)"
        out.append(Row(
            f"file landing -> `DriftChecked`, passivated pipeline, {events:,}-event log, {what} (median of {s['n']})",
            f"{fmt_seconds(s['cold_s'])} ({fmt_seconds(s['cold_range'][0])}-{fmt_seconds(s['cold_range'][1])}); "
            f"activation adds {fmt_seconds(s['added_s'])} ({fmt_seconds(s['added_range'][0])}-"
            f"{fmt_seconds(s['added_range'][1])})",
            f"the same pipeline's active actor, next block: {fmt_seconds(s['warm_s'])} "
            f"({fmt_seconds(s['warm_range'][0])}-{fmt_seconds(s['warm_range'][1])})",
            f"adds <= {TARGET_ADDED_S:g} s" + ("" if judged else " (information)"),
            s["added_s"] <= TARGET_ADDED_S if judged else None))
        out.append(Row(
            f"where the passivated block's time goes ({variant}): landing to the spawn call / spawn call to "
            "`PipelineActivated` / `PipelineActivated` to `DriftChecked`",
            f"{fmt_seconds(s['spawn_call_s'])} / {fmt_seconds(s['to_activated_s'] - s['spawn_call_s'])} / "
            f"{fmt_seconds(s['activated_to_checked_s'])}",
            f"active actor, `BlockArrived` -> `DriftChecked`: {fmt_seconds(s['warm_arrived_to_checked_s'])}"))
    out.append(Row(f"the actor's load alone (constructor in one process), {events:,}-event log: with the "
                   "snapshot / without",
                   f"{fmt_seconds(build['load_with_snapshot_s'])} / {fmt_seconds(build['load_without_snapshot_s'])}",
                   f"log {build['log_mb']:,.0f} MB; snapshot at version {build['snapshot_version']:,}"))
    for variant, key in (("snapshot", "fresh_with_snapshot"), ("no snapshot", "fresh_without_snapshot")):
        f = build.get(key)
        if f:
            steps = ("import_actor", "load", "configure", "caches")
            out.append(Row(
                f"the new process's steps apart ({variant}; a fresh Python, no Ray): import the actor's module / "
                "load / configure / the first block's caches (model, calibration, reference)",
                " / ".join(fmt_seconds(f[f"{k}_s"]) for k in steps) + " wall; "
                + " / ".join(fmt_seconds(f[f"{k}_cpu_s"]) for k in steps) + " CPU",
                f"`import ray` (a Ray worker has it already): {fmt_seconds(f['import_ray_s'])} wall"))
    first = results["serve"]["first"]
    out.append(Row("first activation after `serve` started (untimed warm-up, with the snapshot)",
                   f"{fmt_seconds(first['cold']['total_s'])}; active block {fmt_seconds(first['warm']['total_s'])}",
                   f"load average {results['load_before']:.1f} -> {results['load_after']:.1f}"))
    return out


def run(events: int, repeats: int, timeout: float) -> dict:
    results: dict = {"cpus": os.cpu_count(), "load_before": os.getloadavg()[0], "repeats": repeats,
                     "idle_seconds": IDLE_SECONDS, "block": [ROWS, FEATURES]}
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="calmops-act-"))
    previous_tmp = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = str(root / "ray")  # this process's Ray (the build) too: private
    try:
        built = build(root, events, 2 + 4 * repeats)
        results["events"] = built["events"]
        results["build"] = {k: v for k, v in built.items() if k != "blocks"}
        print(f"  built: {built['events']:,} events ({built['log_mb']:.0f} MB) in "
              f"{built['prefix_s'] + built['extend_s']:.0f} s; load in-process {built['load_with_snapshot_s']:.2f} s "
              f"with the snapshot, {built['load_without_snapshot_s']:.2f} s without; projections "
              f"{built['projections_s']:.0f} s", flush=True)
        for key in ("fresh_with_snapshot", "fresh_without_snapshot"):
            print(f"  {key}: " + ", ".join(f"{k} {v:.2f}" for k, v in built[key].items()), flush=True)
        results["serve"] = run_serve(root, built, repeats, timeout)
        results["summary"] = summarize(results["serve"]["cycles"])
    finally:
        if previous_tmp is None:
            os.environ.pop("RAY_TMPDIR", None)
        else:
            os.environ["RAY_TMPDIR"] = previous_tmp
        shutil.rmtree(root, ignore_errors=True)
    results["seconds"] = time.monotonic() - started
    results["load_after"] = os.getloadavg()[0]
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.activation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=None, help=f"events in the log (default {FULL_EVENTS:,})")
    parser.add_argument("--repeats", type=int, default=None,
                        help=f"timed cycles of each variant (default {FULL_REPEATS}; --quick {QUICK_REPEATS})")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_EVENTS:,} events, {QUICK_REPEATS} repeats")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed for each wait")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    events = args.events or (QUICK_EVENTS if args.quick else FULL_EVENTS)
    repeats = args.repeats or (QUICK_REPEATS if args.quick else FULL_REPEATS)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # a SIGTERM (e.g. from the benchmark runner) unwinds through the `finally` that stops serve's tree
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    print(f"activation: {events:,}-event log, {repeats} cycle(s) of each variant; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    try:
        results = run(events, repeats, args.timeout)
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"done in {results['seconds']:.0f} s, load average {results['load_after']:.1f}")
    for row in rows(results):
        verdict = f"  [{row.verdict()}]" if row.target else ""
        print(f"- {row.figure}: {row.measured}; {row.baseline}{verdict}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
