"""Closed-loop quality: does the pipeline flag real drift, stay quiet otherwise, and retrain only when it pays?

    python -m benchmarks.closed_loop [--quick] [--json PATH] [--seeds N] [--blocks N] [--rows N]
                                     [--generator sea] [--switches abrupt,gradual,...] [--stream CSV]

**Ours** is the real pipeline: each seeded scenario is written as block files by the project's own generator
(`pipelines.synthetic.scenarios.generate_scenario` + `calmops_actors.blockfiles.write_scenario`, i.e. what
`calmops generate` writes), then every file goes through the real `PipelineActor` in this process, in name
order, each round awaited (what `calmops run` does), with one local Ray (2 CPUs) for its tasks. The figures
are read back from the pipeline's event log afterwards: `DriftChecked.drifted` per block, the champion's
`PerformanceMeasured` accuracy per block (prequential: each block is scored by the model that was champion
when it arrived, before anything learned from it), `RetrainRequested` (trigger "drift") and `ModelPromoted`.
The config is the defaults (`[model]` LogisticRegression, every drift signal on, the default `[retrain]`
strategies and promotion rule) with `[training] seed` set per run. Nothing of the detection or promotion is
re-implemented here.

**Baselines**, in the same run, on the very same block files (read back from disk), the same feature schema
(the pipeline's `SchemaFixed`) and the same model class and params (`make_model` from the pipeline's
config). Each scores exactly the blocks the pipeline scored, with the model it had when the block arrived:

(a) *static*: trained once on the first `[training] initial_blocks` block(s) (all their rows; the pipeline's
    first model holds 20% of them out) and never retrained;
(b) *every block*: after each block, a fresh model from the pipeline's own `full` strategy
    (`pipelines.retraining.full`: all labelled history, most recent `row_budget` rows; no holdout is cut,
    since nothing is compared). Retrains counted: one per block after the initial one(s). For information,
    the same with the `windowed` strategy (last `window_blocks` blocks) is reported as "(b') every block,
    window";
(c) *ADWIN*: `river.drift.ADWIN` (delta 0.002, as the pipeline's detector) reads the current model's 0/1
    errors on every row of each scored block; when it fires in a block, a fresh model is trained after that
    block on the last max(ADWIN's window width, one block) labelled rows (ADWIN's window is its own
    estimate of the stretch since the change), and the detector starts again for the new model.
    River's `DriftRetrainingClassifier` was not used: it wraps River's online learners (`learn_one`) and
    swaps in a background model grown row by row, so it could not use the pipeline's scikit-learn model
    class, and the comparison would mix up the trigger with the learner.

Figures per scenario, over seeds (each switch type has its own seeds, see `scenario_seeds`). The ground
truth is the generator's manifest (`drift` per block). Block 1 trains the first model and is neither checked
nor scored.

- false alarms: flagged blocks among the checked blocks where no drift happened (before the first switch,
  or every block of a drift-free `none` scenario), pooled over seeds. Target <= 5%;
- detection delay: blocks from the switch block to the first flagged block within the drift episode (0 =
  the switch block itself; a recurring episode ends when the old concept returns). "Within 2 blocks" = the
  switch block or the next one flagged (as in docs/drift.md). Target for `abrupt`: >= 90% of seeds;
  a switch never flagged in its episode is missed;
- prequential accuracy: mean over scored blocks, then over seeds. Targets: above (a); not more than
  1 point below (b); pipeline drift rounds <= 30% of (b)'s retrains (pooled over seeds). For the drift-free
  scenario "above (a)" is information only (nothing to gain there).

`--stream CSV` also runs a real stream (a `target` column, cut into blocks of `--stream-rows` rows in file
order); it has no ground truth, so only the accuracy and retraining figures and the flagged share are given.
`--quick` (2 seeds, `abrupt` and `none`, 8 blocks of 500 rows) is a smoke run, not the reported figures.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # 2 shared cores: scikit-learn's thread pool only adds contention
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.report import Row, render

NAME = "bench"
FULL = {"seeds": 10, "blocks": 12, "rows": 1000, "switches": ("abrupt", "gradual", "recurring", "none")}
QUICK = {"seeds": 2, "blocks": 8, "rows": 500, "switches": ("abrupt", "none")}
FALSE_ALARM_MAX = 0.05
WITHIN_BLOCKS = 2
WITHIN_SHARE_MIN = 0.90
ACCURACY_SLACK = 0.01
RETRAIN_RATIO_MAX = 0.30
ADWIN_DELTA = 0.002
BASELINES = ("static", "every_block", "every_block_window", "adwin")
SEED_OFFSET = {"abrupt": 0, "gradual": 1000, "recurring": 2000, "none": 3000}


def scenario_seeds(switch: str, n: int) -> list[int]:
    """Seeds of one switch type: distinct per type, so the blocks before the switch (drawn from the same
    concept-A stream) are independent between scenarios and the pooled false-alarm rate counts no block twice.

    >>> scenario_seeds("abrupt", 2), scenario_seeds("none", 2)
    ([0, 1], [3000, 3001])
    """
    return [SEED_OFFSET[switch] + i for i in range(n)]


# --- pure: ground truth and detection --------------------------------------------------------------------


def detection(flags: Sequence[bool | None], drift: Sequence[bool]) -> dict[str, Any]:
    """False alarms before the first switch and the delay to the first flag in the drift episode.

    `flags[i]` is the pipeline's verdict on block i (None: not checked, e.g. the first block); `drift[i]` the
    manifest's truth. Positions are 0-based; `switch` is None for a drift-free stream.

    >>> detection([None, False, True, False, False, True], [False, False, False, False, True, True])
    {'clean_blocks': 3, 'false_alarms': 1, 'switch': 4, 'delay': 1, 'within': True}
    >>> detection([None, False, False], [False, True, False])["delay"] is None
    True
    """
    if len(flags) != len(drift):
        raise ValueError(f"{len(flags)} verdicts for {len(drift)} blocks")
    switch = next((i for i, d in enumerate(drift) if d), None)
    clean = [i for i, f in enumerate(flags) if f is not None and (switch is None or i < switch)]
    out: dict[str, Any] = {"clean_blocks": len(clean), "false_alarms": sum(bool(flags[i]) for i in clean),
                           "switch": switch, "delay": None, "within": None}
    if switch is None:
        return out
    end = next((i for i in range(switch, len(drift)) if not drift[i]), len(drift))
    first = next((i for i in range(switch, end) if flags[i]), None)
    out["delay"] = None if first is None else first - switch
    out["within"] = first is not None and first - switch < WITHIN_BLOCKS
    return out


def mean_accuracy(blocks: Sequence[dict], key: str) -> float | None:
    """Mean of `key` over the blocks that have it (the scored ones).

    >>> mean_accuracy([{"ours": None}, {"ours": 0.5}, {"ours": 1.0}], "ours")
    0.75
    """
    values = [b[key] for b in blocks if b.get(key) is not None]
    return sum(values) / len(values) if values else None


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def summarise(runs: Sequence[dict]) -> dict[str, Any]:
    """Aggregate per-seed runs (each with `blocks` and `retrains`) of one scenario into its figures."""
    checks = [detection([b["flagged"] for b in r["blocks"]], [b["drift"] for b in r["blocks"]]) for r in runs]
    clean = sum(c["clean_blocks"] for c in checks)
    alarms = sum(c["false_alarms"] for c in checks)
    switched = [c for c in checks if c["switch"] is not None]
    delays = [c["delay"] for c in switched if c["delay"] is not None]
    every = sum(r["retrains"]["every_block"] for r in runs)
    ours = sum(r["retrains"]["ours"] for r in runs)
    keys = ("ours", *BASELINES)
    return {
        "seeds": len(runs),
        "clean_blocks": clean,
        "false_alarms": alarms,
        "false_alarm_rate": alarms / clean if clean else None,
        "switches": len(switched),
        "detected": len(delays),
        "missed": len(switched) - len(delays),
        "within": sum(bool(c["within"]) for c in switched),
        "within_share": sum(bool(c["within"]) for c in switched) / len(switched) if switched else None,
        "delay_median": statistics.median(delays) if delays else None,
        "delay_mean": statistics.fmean(delays) if delays else None,
        "delays": [c["delay"] for c in switched],
        "accuracy": {k: _mean(mean_accuracy(r["blocks"], k) for r in runs) for k in keys},
        "retrains": {k: sum(r["retrains"][k] for r in runs) / len(runs) if runs else None
                     for k in ("ours", "every_block", "adwin")},
        "promotions": sum(r["promotions"] for r in runs) / len(runs) if runs else None,
        "retrain_ratio": ours / every if every else None,
    }


# --- pure: the report ------------------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _acc(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def accuracy_rows(label: str, s: dict, *, judge_static: bool = True) -> list[Row]:
    """The three accuracy/retraining rows of one scenario (or stream) summary."""
    acc, retr = s["accuracy"], s["retrains"]
    ours, static, every = acc.get("ours"), acc.get("static"), acc.get("every_block")
    ok = ours is not None and static is not None and every is not None
    ratio = s.get("retrain_ratio")
    rows = [
        Row(f"{label}: prequential accuracy vs (a) static", _acc(ours), f"(a) {_acc(static)}",
            "above (a)" if judge_static else "information (no drift: nothing to gain)",
            (ok and ours > static) if judge_static else None),
        Row(f"{label}: prequential accuracy vs (b) every block", _acc(ours),
            f"(b) {_acc(every)}; (b') window {_acc(acc.get('every_block_window'))}; "
            f"(c) ADWIN {_acc(acc.get('adwin'))}",
            f">= (b) - {ACCURACY_SLACK * 100:.0f} point", ok and ours >= every - ACCURACY_SLACK - 1e-12),
        Row(f"{label}: retraining rounds per run (promotions)",
            f"{retr['ours']:.1f} ({s['promotions']:.1f}); {_pct(ratio)} of (b)",
            f"(b) {retr['every_block']:.1f}; (c) ADWIN {retr['adwin']:.1f}",
            f"<= {RETRAIN_RATIO_MAX:.0%} of (b)", None if ratio is None else ratio <= RETRAIN_RATIO_MAX),
    ]
    return rows


def rows(results: dict) -> list[Row]:
    """Table rows from the JSON `main` writes: per scenario, then all scenarios pooled, then the stream."""
    out: list[Row] = []
    seeds = results.get("meta", {}).get("seeds")
    for name, scenario in results.get("scenarios", {}).items():
        s = scenario["summary"]
        switch = scenario["switch"]
        label = f"{name} ({s['seeds']} seeds)"
        out.append(Row(f"{label}: false alarms", f"{_pct(s['false_alarm_rate'])} "
                       f"({s['false_alarms']}/{s['clean_blocks']} drift-free blocks)", "",
                       f"<= {FALSE_ALARM_MAX:.0%}",
                       None if s["false_alarm_rate"] is None else s["false_alarm_rate"] <= FALSE_ALARM_MAX))
        if s["switches"]:
            judged = switch == "abrupt"
            delay = "n/a" if s["delay_median"] is None else f"{s['delay_median']:g}"
            out.append(Row(f"{label}: switch flagged within {WITHIN_BLOCKS} blocks",
                           f"{s['within']}/{s['switches']} seeds; median delay {delay} blocks; "
                           f"missed {s['missed']}", "",
                           f">= {WITHIN_SHARE_MIN:.0%} of seeds" if judged else "information",
                           (s["within_share"] >= WITHIN_SHARE_MIN) if judged else None))
        out.extend(accuracy_rows(label, s, judge_static=switch != "none"))
    pooled = results.get("pooled")
    if pooled and pooled.get("clean_blocks"):
        rate = pooled["false_alarm_rate"]
        out.append(Row(f"all scenarios{f' ({seeds} seeds each)' if seeds else ''}: false alarms",
                       f"{_pct(rate)} ({pooled['false_alarms']}/{pooled['clean_blocks']} drift-free blocks)", "",
                       f"<= {FALSE_ALARM_MAX:.0%}", rate <= FALSE_ALARM_MAX))
    stream = results.get("stream")
    if stream:
        s = stream["summary"]
        label = f"stream {stream['name']} ({stream['blocks']} blocks of {stream['rows']} rows)"
        out.append(Row(f"{label}: blocks flagged (no ground truth)",
                       f"{stream['flagged']}/{stream['checked']}", "", "information", None))
        out.extend(accuracy_rows(label, s))
    return out


def pooled_false_alarms(summaries: Iterable[dict]) -> dict[str, Any]:
    """False alarms of every scenario together.

    >>> pooled_false_alarms([{"clean_blocks": 10, "false_alarms": 1}, {"clean_blocks": 30, "false_alarms": 0}])
    {'clean_blocks': 40, 'false_alarms': 1, 'false_alarm_rate': 0.025}
    """
    clean = alarms = 0
    for s in summaries:
        clean += s["clean_blocks"]
        alarms += s["false_alarms"]
    return {"clean_blocks": clean, "false_alarms": alarms, "false_alarm_rate": alarms / clean if clean else None}


# --- pure: what the pipeline recorded --------------------------------------------------------------------


def outcome_from_events(events: Iterable[Any]) -> dict[str, Any]:
    """Per block (arrival order): drift verdict, reasons, champion and its prequential accuracy; the rounds
    with each candidate's and the champion's holdout accuracy, and the strategy promoted.

    Reads decoded `pipelines.core.events` objects by type name, so it needs no store.
    """
    blocks: dict[str, dict] = {}
    rounds: dict[str, dict] = {}
    strategies: dict[str, str] = {}  # model version -> strategy
    schema = None
    failures = rejected = 0
    for event in events:
        kind = type(event).__name__
        if kind == "SchemaFixed":
            schema = event.schema
        elif kind == "BlockArrived":
            blocks[event.block_id] = {"block": event.block_id, "flagged": None, "reasons": [], "model": None,
                                      "ours": None}
        elif kind == "BlockRejected":
            rejected += 1
        elif kind == "PerformanceMeasured":
            blocks[event.block_id]["model"] = event.model_version
            blocks[event.block_id]["ours"] = event.metrics.get("accuracy")
        elif kind == "DriftChecked":
            blocks[event.block_id]["flagged"] = bool(event.drifted)
            blocks[event.block_id]["reasons"] = [r[:160] for r in event.reasons]
        elif kind == "RetrainRequested":
            rounds[event.round_id] = {"round": event.round_id, "block": event.block_id, "trigger": event.trigger,
                                      "promoted": None, "champion": None, "candidates": {}}
        elif kind == "CandidateTrained":
            strategies[event.model_version] = event.strategy
        elif kind == "ChallengerEvaluated" and event.round_id in rounds:
            entry = rounds[event.round_id]
            entry["champion"] = event.champion_metrics.get("accuracy")
            entry["candidates"][strategies.get(event.model_version, event.model_version)] = \
                event.metrics.get("accuracy")
        elif kind == "ModelPromoted" and event.round_id in rounds:
            rounds[event.round_id]["promoted"] = event.strategy
        elif kind == "RetrainFailed" and not event.skipped:
            failures += 1
    drift_rounds = [r for r in rounds.values() if r["trigger"] != "initial"]
    return {
        "blocks": list(blocks.values()),
        "rounds": list(rounds.values()),
        "drift_rounds": len(drift_rounds),
        "promotions": sum(r["promoted"] is not None for r in drift_rounds),
        "failed_strategies": failures,
        "rejected": rejected,
        "features": list(schema.features) if schema else [],
        "categorical": list(schema.categorical) if schema else [],
    }


# --- the baselines (plain in-process scikit-learn / River) -----------------------------------------------


def run_baselines(frames: Sequence[tuple[str, pd.DataFrame]], scored: set[str], config: Any,
                  features: Sequence[str], categorical: Sequence[str]) -> dict[str, Any]:
    """Prequential accuracy per block and retrain counts of (a) static, (b) every block (+ window), (c) ADWIN."""
    from river.drift import ADWIN

    from pipelines.retraining.evaluation import per_row_errors
    from pipelines.retraining.material import LabelledBlock, TrainingMaterial
    from pipelines.retraining.models import ModelSpec
    from pipelines.retraining.strategies import full, newest_rows, windowed

    spec = ModelSpec(config.model.class_path, config.model.params)
    target, task, seed, settings = config.target, config.task, config.training.seed, config.retrain
    if task != "classification":
        raise SystemExit("closed_loop: only classification streams are supported (prequential accuracy)")
    labelled = [LabelledBlock(b, f[f[target].notna()]) for b, f in frames if target in f.columns]

    def fit(blocks: Sequence[LabelledBlock], how=full) -> Any:
        material = TrainingMaterial(blocks=tuple(blocks), new_block_ids=(), features=tuple(features),
                                    categorical=tuple(categorical), target=target, task=task)
        return how(material, spec, settings, seed).model

    initial = config.training.initial_blocks
    first = fit(labelled[:initial])
    models = {"static": first, "every_block": first, "every_block_window": first, "adwin": first}
    per_block: dict[str, dict[str, float]] = {}
    retrains = {"static": 0, "every_block": 0, "every_block_window": 0, "adwin": 0}
    adwin = ADWIN(delta=ADWIN_DELTA)
    seen: list[LabelledBlock] = list(labelled[:initial])
    for block in labelled[initial:]:
        frame = block.frame
        errors = {k: per_row_errors(m, frame, features, target, task) for k, m in models.items()}
        if block.block_id in scored:
            per_block[block.block_id] = {k: float(1.0 - e.mean()) for k, e in errors.items()}
        fired = False
        for e in errors["adwin"]:
            adwin.update(float(e))
            fired = fired or adwin.drift_detected
        seen.append(block)
        models["every_block"] = fit(seen)
        models["every_block_window"] = fit(seen, windowed)
        retrains["every_block"] += 1
        retrains["every_block_window"] += 1
        if fired:
            models["adwin"] = fit(newest_rows(seen, max(int(adwin.width), len(frame))))
            adwin = ADWIN(delta=ADWIN_DELTA)
            retrains["adwin"] += 1
    return {"per_block": per_block, "retrains": retrains}


# --- ours: the real pipeline ------------------------------------------------------------------------------


def pipeline_config(seed: int) -> dict[str, Any]:
    """The config the pipeline runs with: every default, the run's seed."""
    return {"name": NAME, "target": "target", "source": "incoming", "training": {"seed": seed}}


def run_pipeline(root: Path, files: Sequence[Path], raw: dict[str, Any]) -> dict[str, Any]:
    """Ingest `files` in order through the real PipelineActor, each round awaited; read the log back."""
    from calmops_actors.home import Home, stream_id
    from calmops_actors.pipeline_actor import PipelineActor

    home = root / "home"
    actor = PipelineActor(str(home), raw["name"])
    try:
        actor.configure(raw, str(root))
        for f in files:
            actor.ingest(str(f), await_rounds=True)
    finally:
        actor.store.close()
    store = Home(home).open_store()
    try:
        events = [store.codec.decode(r) for r in store.read(stream_id(raw["name"]))]
    finally:
        store.close()
    return outcome_from_events(events)


def closed_loop(root: Path, frames: Sequence[tuple[str, pd.DataFrame]], files: Sequence[Path],
                raw: dict[str, Any]) -> dict[str, Any]:
    """Ours and the baselines on the same blocks; per block and per policy."""
    from pipelines.config.pipeline import config_from_dict

    config = config_from_dict(raw, "<closed_loop>")
    t0 = time.perf_counter()
    ours = run_pipeline(root, files, raw)
    t1 = time.perf_counter()
    scored = {b["block"] for b in ours["blocks"] if b["ours"] is not None}
    base = run_baselines(frames, scored, config, ours["features"], ours["categorical"])
    t2 = time.perf_counter()
    for b in ours["blocks"]:
        b.update(base["per_block"].get(b["block"], dict.fromkeys(BASELINES)))
    return {"blocks": ours["blocks"], "rounds": ours["rounds"],
            "retrains": {"ours": ours["drift_rounds"], **base["retrains"]}, "promotions": ours["promotions"],
            "failed_strategies": ours["failed_strategies"], "rejected": ours["rejected"],
            "seconds": {"pipeline": round(t1 - t0, 2), "baselines": round(t2 - t1, 2)}}


def run_scenario(work: Path, generator: str, switch: str, seed: int, blocks: int, rows_: int) -> dict[str, Any]:
    """One seeded scenario: write it as `calmops generate` does, run ours and the baselines, add the truth."""
    from calmops_actors.blockfiles import read_blocks, write_scenario
    from pipelines.synthetic.scenarios import generate_scenario

    root = work / f"{generator}-{switch}-{seed}"
    folder = root / "incoming"
    folder.mkdir(parents=True)
    try:
        scenario = generate_scenario(generator, blocks=blocks, rows=rows_, seed=seed, switch=switch)
        manifest = write_scenario(scenario, folder, "csv")
        files = [folder / b["file"] for b in manifest["blocks"]]
        frames = read_blocks(folder)
        run = closed_loop(root, frames, files, pipeline_config(seed))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    truth = {b["block_id"]: b for b in manifest["blocks"]}
    for b in run["blocks"]:
        entry = truth[b["block"]]
        b["drift"] = bool(entry["drift"])
        b["share"] = next((c["new_concept_fraction"] for c in entry["changes"] if c["kind"] == "concept"), 0.0)
    return {"seed": seed, **run}


def run_stream(work: Path, path: Path, rows_: int, seed: int) -> dict[str, Any]:
    """A real stream: cut into blocks of `rows_` rows in file order, no ground truth."""
    frame = pd.read_csv(path, float_precision="round_trip")
    if "target" not in frame.columns:
        raise SystemExit(f"{path}: no `target` column; the stream needs its label in a column named target")
    root = work / "stream"
    folder = root / "incoming"
    folder.mkdir(parents=True)
    try:
        frames, files = [], []
        for i, start in enumerate(range(0, len(frame), rows_), start=1):
            block_id = f"block_{i:04d}"
            part = frame.iloc[start:start + rows_].reset_index(drop=True)
            file = folder / f"{block_id}.csv"
            part.to_csv(file, index=False)
            frames.append((block_id, pd.read_csv(file, float_precision="round_trip")))
            files.append(file)
        run = closed_loop(root, frames, files, pipeline_config(seed))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for b in run["blocks"]:
        b["drift"] = None
    checked = [b for b in run["blocks"] if b["flagged"] is not None]
    summary = {"accuracy": {k: mean_accuracy(run["blocks"], k) for k in ("ours", *BASELINES)},
               "retrains": {k: float(run["retrains"][k]) for k in ("ours", "every_block", "adwin")},
               "promotions": float(run["promotions"]),
               "retrain_ratio": run["retrains"]["ours"] / run["retrains"]["every_block"]
               if run["retrains"]["every_block"] else None}
    return {"name": path.name, "rows": rows_, "blocks": len(files), "checked": len(checked),
            "flagged": sum(b["flagged"] for b in checked), "summary": summary, "run": run}


# --- command line ----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.closed_loop", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 seeds, abrupt + none, 8 x 500 rows")
    parser.add_argument("--json", type=Path, default=None, help="write every result to this file")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per scenario (0, 1, ...)")
    parser.add_argument("--blocks", type=int, default=None, help="blocks per scenario (the switch is mid-way)")
    parser.add_argument("--rows", type=int, default=None, help="rows per block of the scenarios")
    parser.add_argument("--generator", default="sea", help="River scenario of pipelines/synthetic/scenarios.py (default sea)")
    parser.add_argument("--switches", default=None,
                        help="comma-separated: abrupt, gradual, recurring, none (default: all four; quick: "
                             "abrupt,none)")
    parser.add_argument("--stream", type=Path, default=None, help="CSV of a real stream with a `target` column")
    parser.add_argument("--stream-rows", type=int, default=1000, help="rows per block of --stream")
    parser.add_argument("--no-scenarios", action="store_true", help="only the --stream")
    args = parser.parse_args(argv)
    preset = QUICK if args.quick else FULL
    args.seeds = preset["seeds"] if args.seeds is None else args.seeds
    args.blocks = preset["blocks"] if args.blocks is None else args.blocks
    args.rows = preset["rows"] if args.rows is None else args.rows
    args.switches = tuple(preset["switches"] if args.switches is None else args.switches.split(","))
    unknown = [s for s in args.switches if s not in SEED_OFFSET]
    if unknown:
        parser.error(f"--switches: unknown {', '.join(unknown)}; allowed: {', '.join(SEED_OFFSET)}")
    if args.blocks < 4:
        parser.error("--blocks must be at least 4 (clean blocks, then the switch)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import ray

    started = time.perf_counter()
    results: dict[str, Any] = {
        "meta": {"generator": args.generator, "seeds": args.seeds, "blocks": args.blocks, "rows": args.rows,
                 "switches": list(args.switches), "quick": args.quick, "load_before": os.getloadavg()[0],
                 "cpus": os.cpu_count(), "config": pipeline_config(0), "adwin_delta": ADWIN_DELTA},
        "scenarios": {},
    }
    work = Path(tempfile.mkdtemp(prefix="calmops-closed-loop-"))
    own_ray = not ray.is_initialized()  # a runner calling several benchmarks in one process may have started it
    if own_ray:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        for switch in () if args.no_scenarios else args.switches:
            runs = []
            for seed in scenario_seeds(switch, args.seeds):
                run = run_scenario(work, args.generator, switch, seed, args.blocks, args.rows)
                runs.append(run)
                promoted = [f"{r['block'][-2:]}:{r['promoted']}" for r in run["rounds"]
                            if r["trigger"] != "initial" and r["promoted"]]
                print(f"{args.generator}/{switch} seed {seed}: flagged blocks "
                      f"{[int(b['block'][-4:]) for b in run['blocks'] if b['flagged']]}, drift rounds "
                      f"{run['retrains']['ours']}, promoted {promoted or 'none'}, "
                      f"{run['seconds']['pipeline']:.0f} s", flush=True)
            results["scenarios"][f"{args.generator}/{switch}"] = {"switch": switch, "summary": summarise(runs),
                                                                  "runs": runs}
        results["pooled"] = pooled_false_alarms(s["summary"] for s in results["scenarios"].values())
        if args.stream is not None:
            results["stream"] = run_stream(work, args.stream, args.stream_rows, 0)
            print(f"stream {args.stream.name}: {results['stream']['flagged']}/{results['stream']['checked']} "
                  "blocks flagged", flush=True)
    finally:
        if own_ray:
            ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    results["meta"].update(seconds=round(time.perf_counter() - started, 1), load_after=os.getloadavg()[0])
    print(render(rows(results)))
    meta = results["meta"]
    print(f"{meta['seconds']:.0f} s; load average {meta['load_before']:.1f} -> {meta['load_after']:.1f} "
          f"on {meta['cpus']} CPUs")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=_jsonable))
    return 0


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


if __name__ == "__main__":
    raise SystemExit(main())
