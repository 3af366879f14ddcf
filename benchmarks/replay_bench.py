"""Replay speed: rebuild a pipeline's state from a log of about a million events, without and with a snapshot.

`python -m benchmarks.replay_bench [--events N] [--log PATH] [--keep]` writes a synthetic but realistic log
(blocks arriving, each scored and drift-checked with per-feature results, a retraining round every 40
blocks) through `SQLiteEventStore.append` and the codec, then times, in the same run:

- baseline: a plain `sqlite3` scan of the log in position order and `json.loads` of every payload (no
  envelope objects, no decoding into events, no fold): the floor any replay pays;
- an instrumented fold that times reading (sqlite + json.loads), decoding (the codec) and `evolve` apart;
- replay without snapshot: `calmops_actors.readlog.load_state`, the path `calmops replay` takes;
- a snapshot saved 1,000 events before the head, then replay with it (snapshot load + that tail).

`calibration_s` times a fixed pure-Python loop before and after, so figures from a slower or busier
machine can be compared (about 0.1-0.15 s on an idle 2020s laptop core).

Targets (benchmarks/README.md, "Replay"): under 30 s without snapshots, under 1 s with them, at 1,000,000
events. `--log PATH` reuses a log written by an earlier run with the same `--events` (generation takes a
while); `--json` prints the figures as one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from calmops_actors.home import Home, stream_id
from pipelines.concept_drift import ConceptDrift, PerformanceDrift
from pipelines.config import config_from_dict, config_sha256, config_to_dict
from pipelines.drift_multivariate import MultivariateDrift
from pipelines.drift_tests import FeatureDrift
from pipelines.events import (
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
from pipelines.schema import ColumnSchema

NAME = "bench"
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


def instrumented_fold(store, stop_at: int):
    """Fold the stream timing read (sqlite + json, inside iter_all), decode and evolve apart; also return the
    state at version `stop_at` (for the snapshot)."""
    from calmops_actors.readlog import gc_paused
    from pipelines.state import PipelineState, evolve

    decode = store.codec.decode
    stream = stream_id(NAME)
    clock = time.perf_counter
    state, at_stop = PipelineState.initial(), None
    decoding = folding = 0.0
    t_start = clock()
    with gc_paused():
        for record in store.iter_all(batch_size=20_000):
            if record.stream_id != stream:
                continue
            t0 = clock()
            event = decode(record)
            t1 = clock()
            state = evolve(state, event)
            t2 = clock()
            decoding += t1 - t0
            folding += t2 - t1
            if record.version == stop_at:
                at_stop = state
    total = clock() - t_start
    return state, at_stop, {"read_s": round(total - decoding - folding, 2), "decode_s": round(decoding, 2),
                            "fold_s": round(folding, 2)}


def run(events: int, log_home: Path | None) -> dict:
    from calmops_actors import readlog

    work = None
    if log_home is None:
        work = tempfile.TemporaryDirectory(prefix="replay-bench-")
        log_home = Path(work.name) / "home"
    figures: dict = {"events_requested": events, "calibration_s": calibrate()}
    t0 = time.perf_counter()
    written = write_log(log_home, events)
    figures["generate_s"] = round(time.perf_counter() - t0, 2)
    home = Home(log_home)
    figures["events"] = written
    figures["log_mb"] = round(home.log_path.stat().st_size / 1e6, 1)
    with readlog.open_log(log_home) as store:
        store.delete_snapshots()
        figures["baseline_s"] = round(baseline(home.log_path)[0], 2)

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
        del at_snapshot, loaded

        t0, c0 = time.perf_counter(), time.process_time()
        cached = readlog.load_state(store, NAME)
        figures["with_snapshot_s"] = round(time.perf_counter() - t0, 2)
        figures["with_snapshot_cpu_s"] = round(time.process_time() - c0, 2)
        figures["snapshot_version"] = cached.snapshot_version
        assert cached.snapshot_version == written - TAIL
        assert cached.state == full, "the state with a snapshot differs from the full replay"
        store.delete_snapshots()
    figures["without_snapshot_vs_baseline"] = round(figures["without_snapshot_s"] / figures["baseline_s"], 2)
    figures["blocks"] = full.counters.blocks
    figures["models"] = len(full.models)
    figures["calibration_after_s"] = calibrate()
    figures["targets"] = TARGETS
    figures["met"] = {k: figures[k] < v for k, v in TARGETS.items()}
    if work is not None:
        work.cleanup()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replay_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the log (default 1,000,000)")
    parser.add_argument("--log", type=Path, default=None,
                        help="home folder to write the log into and reuse on later runs (default: a temp dir)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    figures = run(args.events, args.log)
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            if key not in ("targets", "met"):
                print(f"{key:22} {value}")
        for key, target in TARGETS.items():
            verdict = "met" if figures["met"][key] else "MISSED"
            print(f"target {key}: {figures[key]} s < {target} s: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
