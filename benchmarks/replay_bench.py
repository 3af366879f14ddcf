"""Replay speed: rebuild a pipeline's state from a log of about a million events, without and with a snapshot.

`python -m benchmarks.replay_bench [--events N | --quick] [--log PATH] [--json PATH]` writes a synthetic but
realistic log
(blocks arriving, each scored and drift-checked with per-feature results, a retraining round every 40
blocks) through `SQLiteEventStore.append` and the codec, then times, in the same run:

- baseline: a plain `sqlite3` scan of the log in position order and `json.loads` of every payload (no
  envelope objects, no decoding into events, no fold): the floor any replay pays;
- an instrumented fold that times reading (sqlite rows into `Stored` envelopes), decoding (msgspec, `decode_stored`)
  and the fold (`fast_replay.replay`) apart;
- replay without snapshot: `calmops_actors.readlog.load_state`, the path `calmops replay` takes;
- a snapshot saved 1,000 events before the head, then replay with it (snapshot load + that tail), and the
  snapshot load alone (`load_snapshot` + `snapshot.from_dict`).

`calibration_s` times a fixed pure-Python loop before and after, so figures from a slower or busier
machine can be compared (about 0.1-0.15 s on an idle 2020s laptop core).

Targets (benchmarks/README.md, "Replay"): under 30 s without snapshots, under 1 s with them, at 1,000,000
events. `--log PATH` reuses a log written by an earlier run with the same `--events` (generation takes a
while); `--json PATH` also writes the figures there as one JSON object. `--quick` is a 20,000-event log in a
temp dir (about a minute in all): a smaller log is judged by a projection to 1,000,000 events, labelled as
such (see `project`).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import Row, fmt_ratio, fmt_seconds
from calmops_actors.home import Home, stream_id
from pipelines.config.pipeline import config_from_dict, config_sha256, config_to_dict
from pipelines.core.events import (
    Artifact,
    BlockArrived,
    CandidateTrained,
    ChallengerEvaluated,
    ChallengerRejected,
    DriftChecked,
    DriftDetected,
    ModelPromoted,
    PerformanceMeasured,
    PipelineRegistered,
    RetrainRequested,
    SchemaFixed,
)
from pipelines.core.schema import ColumnSchema
from pipelines.drift.results import ConceptDrift, FeatureDrift, MultivariateDrift, PerformanceDrift
from pipelines.replay import snapshot

NAME = "bench"
TARGET_EVENTS = 1_000_000
QUICK_EVENTS = 20_000
FEATURES = ("feat_1", "feat_2", "feat_3", "feat_4", "feat_5")
TARGETS = {"without_snapshot_s": 30.0, "with_snapshot_s": 1.0}
ROUND_EVERY = 40  # blocks between retraining rounds
TAIL = 1000  # events appended after the snapshot, so the snapshot path also folds a tail


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def stamp(i: int) -> str:
    return f"2026-01-{1 + (i // 86400) % 28:02d}T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}+00:00"


def metrics(rng: random.Random) -> dict[str, float]:
    acc = rng.uniform(0.8, 0.99)
    return {"accuracy": acc, "balanced_accuracy": acc - 0.01, "f1_macro": acc - 0.02, "log_loss": 1 - acc,
            "roc_auc": min(1.0, acc + 0.01)}


def drift_check(block_id: str, rng: random.Random, drifted: bool, at: str) -> DriftChecked:
    features = tuple(
        FeatureDrift(name=f, kind="numeric", test="ks", statistic=rng.random() / 3, p_value=rng.random(),
                     p_adjusted=rng.random(), effect=rng.random() / 5, effect_name="wasserstein_sd",
                     drifted=drifted and i == 0, change=f"mean moved by +{rng.random():.2f} sd, spread x1.01",
                     rows=600, alpha=0.05, min_effect=0.1)
        for i, f in enumerate(FEATURES))
    reasons = (f"{FEATURES[0]}: mean moved by +0.80 sd (KS 0.31, p_adj 1e-39; wasserstein 0.80 sd >= 0.10)",) \
        if drifted else ()
    return DriftChecked(
        block_id=block_id, drifted=drifted, reasons=reasons, features=features,
        multivariate=MultivariateDrift(test="mmd", statistic=rng.random() / 100, p_value=rng.random(),
                                       drifted=False, subsample=600, permutations=200, columns=5,
                                       bandwidth=2.5),
        concept=ConceptDrift(detector="ddm", drift=False, warning=False, rows_seen=600 * 3,
                             state=json.dumps({"detector": "ddm", "n": rng.randrange(10_000), "p": rng.random()}),
                             block_rows=600),
        performance=PerformanceDrift(metric="accuracy", at_promotion=0.95, observed=rng.uniform(0.9, 0.99),
                                     tolerance=0.05, drifted=False),
        reference_blocks=("b000001",), occurred_at=at)


def synthetic_events(count: int, seed: int = 0):
    """Yield about `count` events of one pipeline, in the order the actor would record them."""
    rng = random.Random(seed)
    cfg = config_from_dict({"name": NAME, "target": "target"}, "bench.toml")
    yield PipelineRegistered(name=NAME, config=config_to_dict(cfg), config_sha256=config_sha256(cfg),
                             occurred_at=stamp(0))
    yield SchemaFixed(schema=ColumnSchema(features=FEATURES, categorical=(), target="target", source="first_block"),
                      block_id="b000001", occurred_at=stamp(0))
    produced, block, models, champion, rounds = 2, 0, 0, None, 0
    while produced < count:
        block += 1
        bid, at = f"b{block:06d}", stamp(block * 60)
        yield BlockArrived(block_id=bid, file=f"{bid}.csv", sha256=sha(f"file{block}"), rows=600, labelled=True,
                           artifact=Artifact(sha256=sha(f"rows{block}"), kind="frame-parquet", size=20_000,
                                             format="parquet"), occurred_at=at)
        produced += 1
        if champion is not None:
            yield PerformanceMeasured(block_id=bid, model_version=champion, metrics=metrics(rng), occurred_at=at)
            drifted = block % ROUND_EVERY == 0
            yield drift_check(bid, rng, drifted, at)
            produced += 2
            if drifted:
                yield DriftDetected(block_id=bid, reasons=("feat_1: mean moved",), occurred_at=at)
                produced += 1
        if champion is None or block % ROUND_EVERY == 0:
            rounds += 1
            rid = f"r{rounds}"
            yield RetrainRequested(round_id=rid, block_id=bid, strategies=("full", "windowed"),
                                   training_blocks=(bid,), holdout_blocks=(bid,),
                                   holdout=f"120 holdout rows (last 20% of rows of new blocks): {bid}[480:600]",
                                   seed=rounds, trigger="initial" if champion is None else "drift",
                                   new_blocks=(bid,), occurred_at=at)
            produced += 1
            scores = {}
            for strategy in ("full", "windowed"):
                models += 1
                version = f"v{models}"
                scores[version] = metrics(rng)
                yield CandidateTrained(round_id=rid, model_version=version, strategy=strategy,
                                       artifact=Artifact(sha256=sha(version), kind="model-skops", size=60_000,
                                                         format="skops"),
                                       sha256=sha(version), training_blocks=(bid,), seconds=0.5,
                                       parent_version=champion, rows=480, seed=rounds, code_version="bench",
                                       occurred_at=at)
                yield ChallengerEvaluated(round_id=rid, model_version=version, metrics=scores[version],
                                          champion_metrics={} if champion is None else metrics(rng), occurred_at=at)
                produced += 2
            best = max(scores, key=lambda v: scores[v]["accuracy"])
            if champion is None or rounds % 2:
                yield ModelPromoted(model_version=best, previous_version=champion, strategy="full",
                                    reason="best candidate beats the champion", metrics=scores[best],
                                    round_id=rid, occurred_at=at)
                champion = best
            else:
                yield ChallengerRejected(round_id=rid, model_versions=tuple(scores), reason="not better",
                                         occurred_at=at)
            produced += 1


def write_log(home: Path, count: int, batch: int = 5000) -> int:
    """Append about `count` synthetic events to `home`'s log in batches; returns the stream's version."""
    store = Home(home).create().open_store()
    stream = stream_id(NAME)
    try:
        version = store.stream_version(stream)
        if version >= count:
            return version
        pending = []
        for event in synthetic_events(count):
            pending.append(event)
            if len(pending) == batch:
                store.append(stream, pending, expected_version=version)
                version += len(pending)
                pending = []
        if pending:
            store.append(stream, pending, expected_version=version)
            version += len(pending)
        return version
    finally:
        store.close()


def baseline(log: Path) -> tuple[float, int]:
    """Plain sqlite3 scan of the log in position order and json.loads of the pipeline's payloads: the floor
    any replay pays (no envelope objects, no decoding into events, no fold)."""
    t0 = time.perf_counter()
    conn = sqlite3.connect(f"file:{log}?mode=ro", uri=True)
    stream = stream_id(NAME)
    n = 0
    for sid, payload in conn.execute("SELECT stream_id, payload FROM events ORDER BY position"):
        if sid == stream:
            json.loads(payload)
            n += 1
    conn.close()
    return time.perf_counter() - t0, n


def calibrate() -> float:
    """Seconds for a fixed pure-Python loop (sum(range(10**7))): about 0.1-0.15 s on an idle 2020s laptop core,
    so figures from a slower or busier machine can be scaled."""
    t0 = time.perf_counter()
    sum(range(10**7))
    return round(time.perf_counter() - t0, 3)


def instrumented_fold(store, stop_at: int, batch: int = 20_000):
    """Fold the stream the way `load_state` does, timing apart, wall and CPU: read (sqlite rows into `Stored`
    envelopes, `iter_stored`), decode (`codec.decode_stored`, msgspec from the JSON text) and fold
    (`fast_replay.replay`), a batch of records at a time (so the clocks are read per batch, not per event);
    also return the state at version `stop_at` (for the snapshot)."""
    from calmops_actors.readlog import gc_paused
    from pipelines.core.state import PipelineState
    from pipelines.replay.fold import fold as fold_events

    decode = store.codec.decode_stored
    wall, cpu = time.perf_counter, time.process_time
    state, at_stop = PipelineState.initial(), None
    spent = {"decode_s": 0.0, "fold_s": 0.0, "decode_cpu_s": 0.0, "fold_cpu_s": 0.0}

    def fold(records: list) -> None:
        nonlocal state, at_stop
        t0, c0 = wall(), cpu()
        events = [decode(r) for r in records]
        t1, c1 = wall(), cpu()
        cut = next((i + 1 for i, r in enumerate(records) if r.version == stop_at), len(records))
        state = fold_events(events[:cut], state)
        if cut < len(records) or records[-1].version == stop_at:
            at_stop = state
        state = fold_events(events[cut:], state)
        t2, c2 = wall(), cpu()
        spent["decode_s"] += t1 - t0
        spent["decode_cpu_s"] += c1 - c0
        spent["fold_s"] += t2 - t1
        spent["fold_cpu_s"] += c2 - c1

    t_start, c_start = wall(), cpu()
    pending: list = []
    with gc_paused():
        for record in store.iter_stored(stream_id(NAME), batch_size=batch):
            pending.append(record)
            if len(pending) == batch:
                fold(pending)
                pending = []
        if pending:
            fold(pending)
    total, total_cpu = wall() - t_start, cpu() - c_start
    split = {"read_s": total - spent["decode_s"] - spent["fold_s"],
             "read_cpu_s": total_cpu - spent["decode_cpu_s"] - spent["fold_cpu_s"], **spent}
    return state, at_stop, {k: round(v, 2) for k, v in split.items()}


def snapshot_mb(log: Path) -> float:
    """Size of the stored snapshot's JSON text, MB."""
    conn = sqlite3.connect(f"file:{log}?mode=ro", uri=True)
    try:
        (size,) = conn.execute("SELECT length(CAST(state AS BLOB)) FROM snapshots WHERE stream_id = ?",
                               (stream_id(NAME),)).fetchone()
    finally:
        conn.close()
    return round(size / 1e6, 1)


def snapshot_load(store) -> dict:
    """The snapshot part of a load alone: `load_snapshot` (the store's json.loads) and `from_dict`."""
    gc.disable()
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        snap = store.load_snapshot(stream_id(NAME), snapshot.SCHEMA)
        t1 = time.perf_counter()
        snapshot.from_dict(snap.state)
        t2, c2 = time.perf_counter(), time.process_time()
    finally:
        gc.enable()
    return {"snapshot_parse_s": round(t1 - t0, 3), "snapshot_build_s": round(t2 - t1, 3),
            "snapshot_load_s": round(t2 - t0, 3), "snapshot_load_cpu_s": round(c2 - c0, 3)}


def project(figures: dict) -> dict:
    """Figures at TARGET_EVENTS events from a run on `events`: a replay from the first event is linear in the
    events (each costs the same read, decode and fold), so it scales by TARGET_EVENTS / events; with a
    snapshot, the snapshot load scales with the state (blocks, i.e. events) and the 1,000-event tail does not.
    At TARGET_EVENTS or more the projection is the measurement itself. Wall and CPU seconds both: on a
    shared machine the CPU figure is what one free core would take.

    >>> project({"events": 20_000, "without_snapshot_s": 0.5, "with_snapshot_s": 0.05, "snapshot_load_s": 0.03,
    ...          "without_snapshot_cpu_s": 0.4, "with_snapshot_cpu_s": 0.04, "snapshot_load_cpu_s": 0.02})
    {'scale': 50.0, 'projected_without_snapshot_s': 25.0, 'projected_with_snapshot_s': 1.52, \
'projected_without_snapshot_cpu_s': 20.0, 'projected_with_snapshot_cpu_s': 1.02}
    """
    scale = max(1.0, TARGET_EVENTS / figures["events"])
    out: dict = {"scale": round(scale, 2)}
    for suffix in ("_s", "_cpu_s"):
        without, with_ = figures[f"without_snapshot{suffix}"], figures[f"with_snapshot{suffix}"]
        load = figures[f"snapshot_load{suffix}"]
        out[f"projected_without_snapshot{suffix}"] = round(without * scale, 2)
        out[f"projected_with_snapshot{suffix}"] = round(load * scale + max(0.0, with_ - load), 2) \
            if scale > 1 else with_
    return out


def rows(results: dict) -> list[Row]:
    """The README rows: the baseline, replay without and with a snapshot against their targets (projected to
    1,000,000 events when the log is smaller, and labelled so), and where the time goes (information)."""
    n, scale = results["events"], results["scale"]
    per_event = results["without_snapshot_s"] / n * 1e6
    at = f"{n:,} events"
    base = f"baseline {fmt_seconds(results['baseline_s'])}"
    out = [
        Row(f"baseline: sqlite3 scan + json.loads, {at}",
            f"{fmt_seconds(results['baseline_s'])} wall, {fmt_seconds(results.get('baseline_cpu_s', 0))} CPU",
            f"{results['baseline_s'] / n * 1e6:.1f} us/event"),
        Row(f"replay without snapshot (`load_state`), {at}",
            f"{fmt_seconds(results['without_snapshot_s'])} wall, {fmt_seconds(results['without_snapshot_cpu_s'])} "
            f"CPU ({per_event:.1f} us/event)", f"{fmt_ratio(results['without_snapshot_vs_baseline'])} {base}",
            "< 30 s at 1M" if scale > 1 else "< 30 s",
            None if scale > 1 else results["without_snapshot_s"] < TARGETS["without_snapshot_s"]),
    ]
    if scale > 1:
        out.append(Row(f"replay without snapshot, **projected** to 1,000,000 events (x{scale:g}, linear)",
                       f"{fmt_seconds(results['projected_without_snapshot_s'])} wall, "
                       f"{fmt_seconds(results['projected_without_snapshot_cpu_s'])} CPU", "", "< 30 s",
                       results["projected_without_snapshot_s"] < TARGETS["without_snapshot_s"]))
    out.append(Row(f"replay with a snapshot {TAIL:,} events before the head, {results['blocks']:,} blocks",
                   f"{fmt_seconds(results['with_snapshot_s'])} wall, {fmt_seconds(results['with_snapshot_cpu_s'])} CPU",
                   f"snapshot load timed apart {fmt_seconds(results['snapshot_load_s'])} (parse "
                   f"{fmt_seconds(results['snapshot_parse_s'])}, build {fmt_seconds(results['snapshot_build_s'])})",
                   "< 1 s at 1M" if scale > 1 else "< 1 s",
                   None if scale > 1 else results["with_snapshot_s"] < TARGETS["with_snapshot_s"]))
    if scale > 1:
        out.append(Row(f"replay with a snapshot, **projected** to 1,000,000 events (load x{scale:g}, same tail)",
                       f"{fmt_seconds(results['projected_with_snapshot_s'])} wall, "
                       f"{fmt_seconds(results['projected_with_snapshot_cpu_s'])} CPU", "", "< 1 s",
                       results["projected_with_snapshot_s"] < TARGETS["with_snapshot_s"]))
    for clock in ("wall", "CPU"):
        suffix = "_s" if clock == "wall" else "_cpu_s"
        if f"read{suffix}" not in results:  # a JSON from before the CPU split
            continue
        split = [results.get(f"{k}{suffix}", 0.0) for k in ("read", "decode", "fold")]
        total = sum(split) or 1.0
        out.append(Row(f"where the time goes ({clock}, instrumented fold): read / decode / fold",
                       " / ".join(f"{fmt_seconds(v)} ({v / total:.0%})" for v in split),
                       " / ".join(f"{v / n * 1e6:.1f}" for v in split) + " us/event"))
    calibration = f"{results['calibration_s']:.2f} s before, {results['calibration_after_s']:.2f} s after"
    load = results.get("load_average")
    out.append(Row("machine: calibration `sum(range(10**7))` (about 0.12 s on an idle laptop core)", calibration,
                   f"load average {load[0]:.1f} -> {load[1]:.1f}" if load else ""))
    return out


def run(events: int, log_home: Path | None) -> dict:
    from calmops_actors import readlog

    work = None
    if log_home is None:
        work = tempfile.TemporaryDirectory(prefix="replay-bench-")
        log_home = Path(work.name) / "home"
    load_before = os.getloadavg()[0]
    figures: dict = {"events_requested": events, "calibration_s": calibrate()}
    t0 = time.perf_counter()
    written = write_log(log_home, events)
    figures["generate_s"] = round(time.perf_counter() - t0, 2)
    home = Home(log_home)
    figures["events"] = written
    figures["log_mb"] = round(home.log_path.stat().st_size / 1e6, 1)
    with readlog.open_log(log_home) as store:
        store.delete_snapshots()
        c0 = time.process_time()
        figures["baseline_s"] = round(baseline(home.log_path)[0], 2)
        figures["baseline_cpu_s"] = round(time.process_time() - c0, 2)

        full, at_snapshot, split = instrumented_fold(store, max(1, written - TAIL))
        figures.update(split)

        t0, c0 = time.perf_counter(), time.process_time()
        loaded = readlog.load_state(store, NAME, use_snapshot=False)
        figures["without_snapshot_s"] = round(time.perf_counter() - t0, 2)
        figures["without_snapshot_cpu_s"] = round(time.process_time() - c0, 2)
        assert loaded.state == full, "load_state differs from the instrumented fold"

        t0 = time.perf_counter()
        readlog.save_snapshot(store, NAME, at_snapshot)
        figures["save_snapshot_s"] = round(time.perf_counter() - t0, 2)
        figures["snapshot_mb"] = snapshot_mb(home.log_path)
        del at_snapshot, loaded

        t0, c0 = time.perf_counter(), time.process_time()
        cached = readlog.load_state(store, NAME)
        figures["with_snapshot_s"] = round(time.perf_counter() - t0, 3)
        figures["with_snapshot_cpu_s"] = round(time.process_time() - c0, 3)
        figures["snapshot_version"] = cached.snapshot_version
        assert cached.snapshot_version == written - TAIL
        assert cached.state == full, "the state with a snapshot differs from the full replay"
        del cached
        figures.update(snapshot_load(store))
        store.delete_snapshots()
    figures["without_snapshot_vs_baseline"] = round(figures["without_snapshot_s"] / figures["baseline_s"], 2)
    figures["blocks"] = full.counters.blocks
    figures["models"] = len(full.models)
    figures["calibration_after_s"] = calibrate()
    figures["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    figures.update(project(figures))
    figures["targets"] = TARGETS
    figures["met"] = {k: figures[f"projected_{k}"] < v for k, v in TARGETS.items()}
    if work is not None:
        work.cleanup()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replay_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--events", type=int, default=TARGET_EVENTS, help="events in the log (default 1,000,000)")
    size.add_argument("--quick", action="store_true",
                      help=f"a {QUICK_EVENTS:,}-event log (about a minute), judged by its projection to 1M")
    parser.add_argument("--log", type=Path, default=None,
                        help="home folder to write the log into and reuse on later runs (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="also write the figures to PATH as one JSON object")
    args = parser.parse_args(argv)
    figures = run(QUICK_EVENTS if args.quick else args.events, args.log)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))
    for key, value in figures.items():
        if key not in ("targets", "met"):
            print(f"{key:30} {value}")
    for key, target in TARGETS.items():
        verdict = "met" if figures["met"][key] else "MISSED"
        label = "projected" if figures["scale"] > 1 else "measured"
        print(f"target {key}: {figures[f'projected_{key}']} s ({label} at 1M) < {target} s: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
