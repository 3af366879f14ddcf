"""Closed-loop quality: does the pipeline flag real drift, stay quiet otherwise, and retrain only when it pays?

    python -m benchmarks.closed_loop [--quick] [--json PATH] [--seeds N] [--scenarios sea/abrupt,...]
                                     [--models lr,hgb] [--trigger performance,concept,data] [--label NAME]
                                     [--blocks N] [--rows N] [--stream CSV] [--stream-rows N] [--no-scenarios]

The reported run: `python -m benchmarks.closed_loop --stream ../shared/data/elec2.csv --json closed_loop.json`
(6 scenarios x 10 seeds x 2 models, plus Elec2 x 2 models: about 30 minutes on 2 quiet cores; one seed of
every scenario and model took 150 s, Elec2 with both models 210 s).

**Ours** is the real pipeline: each seeded scenario is written as block files by the project's own generator
(`pipelines.synthetic.scenarios.generate_scenario` + `calmops_actors.blockfiles.write_scenario`, i.e. what
`calmops generate` writes), then every file goes through the real `PipelineActor` in this process, in name
order, each round awaited (what `calmops run` does), with one local Ray (2 CPUs) for its tasks. The figures
are read back from the pipeline's event log afterwards: `DriftChecked.drifted` per block, the champion's
`PerformanceMeasured` accuracy per block (prequential: each block is scored by the model that was champion
when it arrived, before anything learned from it) and the strategy that champion was trained by
(`CandidateTrained.strategy`, "reuse" for a past champion brought back), `RetrainRequested` (every round but
the "initial" one counts: "drift" and "adapt") and `ModelPromoted`. The config is the defaults with
`[training] seed` set per run, `[model]` set per `--models` (`lr`: LogisticRegression, the config's default;
`hgb`: HistGradientBoostingClassifier, both with default params) and, with `--trigger`, `[retrain] trigger`
(which drift signals start a round; omitted: the pipeline's default, recorded in the JSON's meta). Run once per
trigger choice, each with its own `--label`, to compare them. Nothing of the detection or promotion is
re-implemented here.

**Baselines**, in the same run, on the very same block files (read back from disk), the same feature schema
(the pipeline's `SchemaFixed`) and the same model class and params (`make_model` from the pipeline's
config). Each scores exactly the blocks the pipeline scored, with the model it had when the block arrived:

(a) *static*: trained once on the first `[training] initial_blocks` block(s) (all their rows; the pipeline's
    first model holds 20% of them out) and never retrained;
(b) *every block*: after each block, a fresh model from the pipeline's own `full` strategy
    (`pipelines.retraining.full`: all labelled history, most recent `row_budget` rows; no holdout is cut,
    since nothing is compared). Retrains counted: one per block after the initial one(s).
    (b') *every block, window*: the same with the `windowed` strategy (last `window_blocks` blocks);
(c) *ADWIN*: `river.drift.ADWIN` (delta 0.002, as the pipeline's detector) reads the current model's 0/1
    errors on every row of each scored block; when it fires in a block, a fresh model is trained after that
    block on the last max(ADWIN's window width, one block) labelled rows (ADWIN's window is its own
    estimate of the stretch since the change), and the detector starts again for the new model.
    River's `DriftRetrainingClassifier` was not used: it wraps River's online learners (`learn_one`) and
    swaps in a background model grown row by row, so it could not use the pipeline's scikit-learn model
    class, and the comparison would mix up the trigger with the learner.

**Scenarios** (`SCENARIOS`; 1000-row blocks; each has its own seeds, see `scenario_seeds`). A block count of
k episodes' worth puts the first switch after blocks // k blocks (`timing`):

- `sea/abrupt`: SEA variant 0 -> 3 at block 7 of 12; `sea/gradual`: the same along ConceptDriftStream's
  sigmoid (two blocks wide); `sea/none`: 12 blocks, no drift;
- `sea/recurring` (A-B-A): B in blocks 5-8 of 12, then A returns;
- `sea/abab` (A-B-A-B, a longer stream): 20 blocks, B in 6-10, A in 11-15, B in 16-20
  (`generate_scenario(..., switch="recurring", alternate=True)`);
- `agrawal/abrupt`: Agrawal function 0 -> 2, 16 blocks, blocks 1-8 A and 9-16 B (the issue's setting).

`--blocks`/`--rows` override every chosen scenario's size (the switches keep their share of the stream).
`--quick` (2 seeds, `sea/abrupt` and `sea/none`, `lr` only, 8 blocks of 500 rows) is a smoke run, not the
reported figures.

**Figures** per scenario and model, over seeds. The ground truth is the generator's manifest (`drift` and
`concept` per block). Block 1 trains the first model and is neither checked nor scored.

- false alarms: flagged blocks among the checked blocks where no drift happened (before the first switch,
  or every block of `sea/none`), pooled over seeds; and pooled over every scenario per model. Target <= 5%.
  How many of them started a round (the rest only warned, by `[retrain] trigger`) is shown beside it;
- detection delay: blocks from the first switch to the first flagged block within that drift episode (0 =
  the switch block itself). Target for `abrupt`: flagged within 2 blocks in >= 90% of seeds;
- prequential accuracy: mean over scored blocks, then over seeds. Target for every scenario: ours >=
  max((a), (b), (b'), (c)) - 0.5 point; and rounds (every non-initial round, pooled over seeds) <= 30% of
  (b)'s retrains. Recurring scenarios also: above (a) and >= (c) - 0.5 point;
- blocks to recover after a switch (abrupt and recurring scenarios, each switch into another concept): the
  concept's level is the best mean accuracy any policy reaches on the last 2 blocks of that concept episode
  (a ceiling measured in the same run, the same for every policy); a policy has recovered at the first block
  of the episode whose accuracy is within 1 point of that level, counted in blocks after the switch block
  (0: the switch block itself, which every policy scores with a model that has not seen the new concept).
  Median over seeds per policy (a seed that never recovers in the episode counts as the longest). Target:
  ours <= 2 blocks after each switch;
- reuse after a return (recurring scenarios): the share of seeds in which the switch back to the old concept
  A is served, at the return block or the next one, by a champion of strategy `reuse`. Target >= 80%.
  A return to B (the last switch of `sea/abab`) is shown for information.

`--stream CSV` also runs a real stream (a `target` column, cut into blocks of `--stream-rows` rows in file
order; Elec2: `../shared/data/elec2.csv`, 46 blocks of 1000 rows, the last one 313), once per model. It has
no ground truth, so: accuracy >= max baselines - 0.5 point, rounds <= 60% of (b), at least half of the
rounds promote; the flagged share is information.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # 2 shared cores: scikit-learn's thread pool only adds contention
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import argparse
import json
import math
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.report import Row, render

NAME = "bench"
# Each scenario: the generator, how the concept switches, its size, and how many equal stretches (episodes)
# its timing splits the stream into (`timing`).
SCENARIOS: dict[str, dict[str, Any]] = {
    "sea/abrupt": {"generator": "sea", "switch": "abrupt", "blocks": 12, "rows": 1000, "episodes": 2},
    "sea/gradual": {"generator": "sea", "switch": "gradual", "blocks": 12, "rows": 1000, "episodes": 2},
    "sea/recurring": {"generator": "sea", "switch": "recurring", "blocks": 12, "rows": 1000, "episodes": 3},
    "sea/abab": {"generator": "sea", "switch": "recurring", "alternate": True, "blocks": 20, "rows": 1000,
                 "episodes": 4},
    "agrawal/abrupt": {"generator": "agrawal", "switch": "abrupt", "blocks": 16, "rows": 1000, "episodes": 2},
    "sea/none": {"generator": "sea", "switch": "none", "blocks": 12, "rows": 1000, "episodes": 2},
}
# Distinct per scenario (the first four as before this table existed, so their figures stay comparable).
SEED_OFFSET = {"sea/abrupt": 0, "sea/gradual": 1000, "sea/recurring": 2000, "sea/none": 3000,
               "sea/abab": 4000, "agrawal/abrupt": 5000}
MODELS: dict[str, dict[str, Any]] = {
    "lr": {"class": "sklearn.linear_model.LogisticRegression", "params": {}},
    "hgb": {"class": "sklearn.ensemble.HistGradientBoostingClassifier", "params": {}},
}
TRIGGER_SIGNALS = ("performance", "concept", "data")
FULL = {"seeds": 10, "scenarios": tuple(SCENARIOS), "models": ("lr", "hgb"), "blocks": None, "rows": None}
QUICK = {"seeds": 2, "scenarios": ("sea/abrupt", "sea/none"), "models": ("lr",), "blocks": 8, "rows": 500}
FALSE_ALARM_MAX = 0.05
WITHIN_BLOCKS = 2
WITHIN_SHARE_MIN = 0.90
ACCURACY_MARGIN = 0.005  # ours may be this far below the best baseline (half a point)
RETRAIN_RATIO_MAX = 0.30
STREAM_RETRAIN_RATIO_MAX = 0.60
PROMOTE_SHARE_MIN = 0.5
RECOVERY_TOLERANCE = 0.01  # within 1 point of the concept's level
RECOVERY_TAIL = 2  # the level: the best policy's mean over the episode's last 2 blocks
RECOVERY_BLOCKS_MAX = 2
REUSE_WITHIN = 1
REUSE_SHARE_MIN = 0.80
ADWIN_DELTA = 0.002
BASELINES = ("static", "every_block", "every_block_window", "adwin")
POLICIES = ("ours", *BASELINES)
SHORT = {"ours": "ours", "static": "(a)", "every_block": "(b)", "every_block_window": "(b')", "adwin": "(c)"}


def scenario_seeds(scenario: str, n: int) -> list[int]:
    """Seeds of one scenario: distinct per scenario, so the blocks before the switch (drawn from the same
    concept-A stream) are independent between scenarios and the pooled false-alarm rate counts no block twice.

    >>> scenario_seeds("sea/abrupt", 2), scenario_seeds("agrawal/abrupt", 2)
    ([0, 1], [5000, 5001])
    """
    return [SEED_OFFSET[scenario] + i for i in range(n)]


def timing(blocks: int, episodes: int) -> dict[str, int]:
    """Where the first switch falls (1-based block) and how long a recurring concept stays, so a scenario
    keeps its shape when `--blocks` changes its length: `episodes` equal stretches, the first one concept A.

    >>> timing(12, 2), timing(12, 3), timing(20, 4)
    ({'drift_at': 7, 'recur_after': 6}, {'drift_at': 5, 'recur_after': 4}, {'drift_at': 6, 'recur_after': 5})
    """
    stretch = blocks // episodes
    return {"drift_at": stretch + 1, "recur_after": stretch}


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


def concept_switches(concepts: Sequence[str]) -> list[dict[str, Any]]:
    """Each switch from one settled concept to the other: the episode it starts (0-based, end inclusive), the
    concept it brings, and whether that concept was seen before (a return). Blocks in transition (a gradual
    drift) are no settled concept, so a gradual stream has no switch here.

    >>> concept_switches(["before", "before", "after", "after", "before", "after"])
    [{'start': 2, 'end': 3, 'concept': 'after', 'return': False}, {'start': 4, 'end': 4, 'concept': 'before', 'return': True}, {'start': 5, 'end': 5, 'concept': 'after', 'return': True}]
    >>> concept_switches(["before", "transition", "transition"])
    []
    """
    runs: list[list] = []
    for i, c in enumerate(concepts):
        if runs and runs[-1][2] == c:
            runs[-1][1] = i
        else:
            runs.append([i, i, c])
    out, seen = [], set()
    for prev, (start, end, concept) in zip([None, *runs], runs, strict=False):
        if prev is not None and {prev[2], concept} <= {"before", "after"}:
            out.append({"start": start, "end": end, "concept": concept, "return": concept in seen})
        seen.add(concept)
    return out


def recovery(accuracy: Mapping[str, Sequence[float | None]], start: int, end: int) -> dict[str, Any]:
    """Blocks each policy needs after a switch to come within `RECOVERY_TOLERANCE` of the new concept's level.

    `accuracy[policy][i]` is the policy's accuracy on block i (None: not scored). The level is the best mean
    any policy reaches over the last `RECOVERY_TAIL` blocks of the episode `start..end` (inclusive), the same
    ceiling for every policy; a policy's figure is the first block of the episode within the tolerance of it,
    counted from `start` (None: not within the episode).

    >>> acc = {"ours": [0.9, 0.7, 0.95, 0.96], "static": [0.9, 0.7, 0.8, 0.8], "every_block": [0.9, 0.7, 0.9, 0.97]}
    >>> recovery(acc, 1, 3)
    {'level': 0.955, 'blocks': {'ours': 1, 'static': None, 'every_block': 2}}
    """
    tails = []
    for values in accuracy.values():
        tail = [v for v in values[max(start, end - RECOVERY_TAIL + 1):end + 1] if v is not None]
        if tail:
            tails.append(sum(tail) / len(tail))
    if not tails:
        return {"level": None, "blocks": dict.fromkeys(accuracy)}
    level = max(tails)
    blocks = {}
    for policy, values in accuracy.items():
        blocks[policy] = next((i - start for i in range(start, end + 1)
                               if values[i] is not None and values[i] >= level - RECOVERY_TOLERANCE - 1e-12), None)
    return {"level": round(level, 6), "blocks": blocks}


def median_blocks(values: Sequence[int | None]) -> float | None:
    """The median of per-seed recovery blocks, a seed that never recovered counting as the longest; None when
    the median itself is a seed that never recovered (or there is nothing).

    >>> median_blocks([0, 1, 2]), median_blocks([1, None, None]), median_blocks([1, 3, None, 0])
    (1, None, 2.0)
    """
    if not values:
        return None
    m = statistics.median([math.inf if v is None else v for v in values])
    return None if math.isinf(m) else m


def reused_within(strategies: Sequence[str | None], start: int, within: int = REUSE_WITHIN) -> bool:
    """Whether the block at `start` (a return to a known concept) or one of the next `within` blocks was
    scored by a champion whose strategy is `reuse` (a past champion brought back).

    >>> reused_within([None, "full", "since_change", "reuse"], 2), reused_within(["full", "full", "full"], 1)
    (True, False)
    """
    return any(s == "reuse" for s in strategies[start:start + within + 1])


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


def false_rounds(blocks: Sequence[dict]) -> int:
    """Drift-free checked blocks (before the first switch) whose drift started a round: the false alarms that
    cost a retraining, as opposed to a warning only (`DriftDetected.starts_round`, `[retrain] trigger`).

    >>> false_rounds([{"flagged": None, "drift": False}, {"flagged": True, "drift": False, "starts_round": False},
    ...               {"flagged": True, "drift": False, "starts_round": True}, {"flagged": True, "drift": True}])
    1
    """
    out = 0
    for b in blocks:
        if b.get("drift"):
            break
        out += bool(b.get("flagged") and b.get("starts_round"))
    return out


def switch_figures(runs: Sequence[dict]) -> list[dict[str, Any]]:
    """Per switch of the scenario (the same positions in every seed): recovery blocks per seed and their
    median per policy, and for a return the seeds whose champion was a `reuse` within `REUSE_WITHIN` blocks."""
    per_run = []
    for r in runs:
        blocks = r["blocks"]
        if not all("concept" in b for b in blocks):
            return []
        accuracy = {p: [b.get(p) for b in blocks] for p in POLICIES}
        strategies = [b.get("strategy") for b in blocks]
        per_run.append([(s, recovery(accuracy, s["start"], s["end"]), reused_within(strategies, s["start"]))
                        for s in concept_switches([b["concept"] for b in blocks])])
    if not per_run or len({len(p) for p in per_run}) != 1:
        return []
    out = []
    for j, (first, _, _) in enumerate(per_run[0]):
        recs = [p[j][1] for p in per_run]
        entry = {"block": first["start"] + 1, "concept": first["concept"], "return": first["return"],
                 "blocks": {k: [rec["blocks"][k] for rec in recs] for k in POLICIES},
                 "median": {k: median_blocks([rec["blocks"][k] for rec in recs]) for k in POLICIES},
                 "levels": [rec["level"] for rec in recs]}
        if first["return"]:
            reused = sum(p[j][2] for p in per_run)
            entry.update(reused=reused, reuse_share=reused / len(per_run))
        out.append(entry)
    return out


def summarise(runs: Sequence[dict]) -> dict[str, Any]:
    """Aggregate per-seed runs (each with `blocks` and `retrains`) of one scenario into its figures."""
    checks = [detection([b["flagged"] for b in r["blocks"]], [b["drift"] for b in r["blocks"]]) for r in runs]
    clean = sum(c["clean_blocks"] for c in checks)
    alarms = sum(c["false_alarms"] for c in checks)
    switched = [c for c in checks if c["switch"] is not None]
    delays = [c["delay"] for c in switched if c["delay"] is not None]
    every = sum(r["retrains"]["every_block"] for r in runs)
    ours = sum(r["retrains"]["ours"] for r in runs)
    promoted = sum(r["promotions"] for r in runs)
    triggers: dict[str, float] = {}
    for r in runs:
        for trigger, n in r.get("rounds_by_trigger", {}).items():
            triggers[trigger] = triggers.get(trigger, 0) + n / len(runs)
    return {
        "seeds": len(runs),
        "clean_blocks": clean,
        "false_alarms": alarms,
        "false_alarm_rate": alarms / clean if clean else None,
        "false_rounds": sum(false_rounds(r["blocks"]) for r in runs),
        "switches": len(switched),
        "detected": len(delays),
        "missed": len(switched) - len(delays),
        "within": sum(bool(c["within"]) for c in switched),
        "within_share": sum(bool(c["within"]) for c in switched) / len(switched) if switched else None,
        "delay_median": statistics.median(delays) if delays else None,
        "delay_mean": statistics.fmean(delays) if delays else None,
        "delays": [c["delay"] for c in switched],
        "accuracy": {k: _mean(mean_accuracy(r["blocks"], k) for r in runs) for k in POLICIES},
        "retrains": {k: sum(r["retrains"][k] for r in runs) / len(runs) if runs else None
                     for k in ("ours", "every_block", "adwin")},
        "rounds_by_trigger": triggers,
        "promotions": promoted / len(runs) if runs else None,
        "promote_share": promoted / ours if ours else None,
        "retrain_ratio": ours / every if every else None,
        "recovery": switch_figures(runs),
    }


# --- pure: the report ------------------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _acc(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def _blocks(x: float | None) -> str:
    return "never" if x is None else f"{x:g}"


def best_baseline(acc: Mapping[str, float | None]) -> float | None:
    """The best of (a), (b), (b'), (c) (None when one is missing: no verdict on partial figures).

    >>> best_baseline({"static": 0.8, "every_block": 0.9, "every_block_window": 0.85, "adwin": 0.88})
    0.9
    """
    values = [acc.get(k) for k in BASELINES]
    return None if any(v is None for v in values) else max(values)


def accuracy_rows(label: str, s: dict, *, ratio_max: float = RETRAIN_RATIO_MAX, recurring: bool = False,
                  stream: bool = False) -> list[Row]:
    """The accuracy and retraining rows of one scenario (or stream) summary for one model."""
    acc, retr = s["accuracy"], s["retrains"]
    ours, best = acc.get("ours"), best_baseline(acc)
    ratio = s.get("retrain_ratio")
    baseline = "; ".join(f"{SHORT[k]} {_acc(acc.get(k))}" for k in BASELINES)
    triggers = ", ".join(f"{k} {v:.1f}" for k, v in sorted(s.get("rounds_by_trigger", {}).items())
                         if k != "initial")
    out = [
        Row(f"{label}: prequential accuracy vs the best baseline", _acc(ours), baseline,
            f">= max((a), (b), (b'), (c)) - {ACCURACY_MARGIN * 100:.1f} point",
            None if ours is None or best is None else ours >= best - ACCURACY_MARGIN - 1e-12),
        Row(f"{label}: rounds per run (promotions)",
            f"{retr['ours']:.1f} ({s['promotions']:.1f}); {_pct(ratio)} of (b)" + (f"; {triggers}" if triggers else ""),
            f"(b) {retr['every_block']:.1f}; (c) ADWIN {retr['adwin']:.1f}",
            f"<= {ratio_max:.0%} of (b)", None if ratio is None else ratio <= ratio_max + 1e-12),
    ]
    if recurring:
        static, adwin = acc.get("static"), acc.get("adwin")
        ok = None if None in (ours, static, adwin) else ours > static and ours >= adwin - ACCURACY_MARGIN - 1e-12
        out.append(Row(f"{label}: prequential accuracy vs (a) static and (c) ADWIN", _acc(ours),
                       f"(a) {_acc(static)}; (c) {_acc(adwin)}",
                       f"above (a) and >= (c) - {ACCURACY_MARGIN * 100:.1f} point", ok))
    if stream:
        share = s.get("promote_share")
        out.append(Row(f"{label}: rounds that promote", _pct(share), "", f">= {PROMOTE_SHARE_MIN:.0%}",
                       None if share is None else share >= PROMOTE_SHARE_MIN - 1e-12))
    return out


def recovery_rows(label: str, s: dict) -> list[Row]:
    """Blocks to recover after each switch (ours judged) and `reuse` after each return."""
    out = []
    for sw in s.get("recovery", ()):
        what = ("back to A" if sw["concept"] == "before" else "back to B") if sw["return"] else "to B"
        med = sw["median"]
        out.append(Row(f"{label}: blocks to recover after the switch {what} (block {sw['block']}, median)",
                       _blocks(med["ours"]), "; ".join(f"{SHORT[k]} {_blocks(med[k])}" for k in BASELINES),
                       f"<= {RECOVERY_BLOCKS_MAX} blocks",
                       med["ours"] is not None and med["ours"] <= RECOVERY_BLOCKS_MAX))
        if sw["return"]:
            judged = sw["concept"] == "before"
            out.append(Row(f"{label}: `reuse` champion within {REUSE_WITHIN} block of the return {what[5:]} "
                           f"(block {sw['block']})", f"{sw['reused']}/{len(sw['levels'])} seeds", "",
                           f">= {REUSE_SHARE_MIN:.0%} of seeds" if judged else "information",
                           sw["reuse_share"] >= REUSE_SHARE_MIN - 1e-12 if judged else None))
    return out


def false_alarm_row(label: str, s: dict) -> Row:
    rate = s["false_alarm_rate"]
    started = "" if s.get("false_rounds") is None else f"; {s['false_rounds']} started a round"
    return Row(f"{label}: false alarms",
               f"{_pct(rate)} ({s['false_alarms']}/{s['clean_blocks']} drift-free blocks{started})",
               "", f"<= {FALSE_ALARM_MAX:.0%}", None if rate is None else rate <= FALSE_ALARM_MAX)


def rows(results: dict) -> list[Row]:
    """Table rows from the JSON `main` writes: per scenario and model, then the pooled false alarms per model,
    then the stream per model."""
    out: list[Row] = []
    pooled: dict[str, list[dict]] = {}
    for name, scenario in results.get("scenarios", {}).items():
        switch = scenario["switch"]
        for model, entry in scenario["models"].items():
            s = entry["summary"]
            pooled.setdefault(model, []).append(s)
            label = f"{name} {model} ({s['seeds']} seeds)"
            out.append(false_alarm_row(label, s))
            if s["switches"]:
                judged = switch == "abrupt"
                delay = "n/a" if s["delay_median"] is None else f"{s['delay_median']:g}"
                out.append(Row(f"{label}: switch flagged within {WITHIN_BLOCKS} blocks",
                               f"{s['within']}/{s['switches']} seeds; median delay {delay} blocks; "
                               f"missed {s['missed']}", "",
                               f">= {WITHIN_SHARE_MIN:.0%} of seeds" if judged else "information",
                               (s["within_share"] >= WITHIN_SHARE_MIN) if judged else None))
            out.extend(accuracy_rows(label, s, recurring=switch == "recurring"))
            out.extend(recovery_rows(label, s))
    for model, summaries in pooled.items():
        p = pooled_false_alarms(summaries)
        if p["clean_blocks"]:
            out.append(false_alarm_row(f"all scenarios {model}", p))
    stream = results.get("stream")
    if stream:
        for model, entry in stream["models"].items():
            label = f"stream {stream['name']} {model} ({stream['blocks']} blocks of {stream['rows']} rows)"
            out.append(Row(f"{label}: blocks flagged (no ground truth)", f"{entry['flagged']}/{entry['checked']}",
                           "", "information", None))
            out.extend(accuracy_rows(label, entry["summary"], ratio_max=STREAM_RETRAIN_RATIO_MAX, stream=True))
    return out


def pooled_false_alarms(summaries: Iterable[dict]) -> dict[str, Any]:
    """False alarms of every scenario together.

    >>> pooled_false_alarms([{"clean_blocks": 10, "false_alarms": 1}, {"clean_blocks": 30, "false_alarms": 0}])
    {'clean_blocks': 40, 'false_alarms': 1, 'false_alarm_rate': 0.025}
    """
    clean = alarms = 0
    started: int | None = 0
    for s in summaries:
        clean += s["clean_blocks"]
        alarms += s["false_alarms"]
        started = None if started is None or s.get("false_rounds") is None else started + s["false_rounds"]
    out = {"clean_blocks": clean, "false_alarms": alarms, "false_alarm_rate": alarms / clean if clean else None}
    return out if started is None else {**out, "false_rounds": started}


# --- pure: what the pipeline recorded --------------------------------------------------------------------


def outcome_from_events(events: Iterable[Any]) -> dict[str, Any]:
    """Per block (arrival order): drift verdict, reasons, champion, its strategy and its prequential accuracy;
    the rounds with each candidate's and the champion's holdout accuracy, and the strategy promoted.

    Reads decoded `pipelines.core.events` objects by type name, so it needs no store.
    """
    blocks: dict[str, dict] = {}
    rounds: dict[str, dict] = {}
    strategies: dict[str, str] = {}  # model version -> strategy
    reused: dict[str, str] = {}  # model version -> the past champion a `reuse` candidate brought back
    schema = None
    failures = rejected = 0
    for event in events:
        kind = type(event).__name__
        if kind == "SchemaFixed":
            schema = event.schema
        elif kind == "BlockArrived":
            blocks[event.block_id] = {"block": event.block_id, "flagged": None, "reasons": [], "model": None,
                                      "strategy": None, "ours": None}
        elif kind == "BlockRejected":
            rejected += 1
        elif kind == "PerformanceMeasured":
            entry = blocks[event.block_id]
            entry["model"] = event.model_version
            entry["strategy"] = strategies.get(event.model_version)
            if event.model_version in reused:
                entry["reused"] = reused[event.model_version]
            entry["ours"] = event.metrics.get("accuracy")
        elif kind == "DriftChecked":
            blocks[event.block_id]["flagged"] = bool(event.drifted)
            blocks[event.block_id]["reasons"] = [r[:160] for r in event.reasons]
        elif kind == "DriftDetected" and event.block_id in blocks:
            blocks[event.block_id]["starts_round"] = bool(getattr(event, "starts_round", True))
        elif kind == "RetrainRequested":
            rounds[event.round_id] = {"round": event.round_id, "block": event.block_id, "trigger": event.trigger,
                                      "promoted": None, "champion": None, "candidates": {}}
        elif kind == "CandidateTrained":
            strategies[event.model_version] = event.strategy
            if event.strategy == "reuse":
                reused[event.model_version] = (getattr(event, "params", None) or {}).get("reused_version")
        elif kind == "ChallengerEvaluated" and event.round_id in rounds:
            entry = rounds[event.round_id]
            entry["champion"] = event.champion_metrics.get("accuracy")
            name = strategies.get(event.model_version, event.model_version)
            if name == "reuse":  # several past champions may be scored in one round
                name = f"reuse:{reused.get(event.model_version)}"
            entry["candidates"][name] = event.metrics.get("accuracy")
        elif kind == "ModelPromoted" and event.round_id in rounds:
            rounds[event.round_id]["promoted"] = event.strategy
        elif kind == "RetrainFailed" and not event.skipped:
            failures += 1
    drift_rounds = [r for r in rounds.values() if r["trigger"] != "initial"]
    by_trigger: dict[str, int] = {}
    for r in drift_rounds:
        by_trigger[r["trigger"]] = by_trigger.get(r["trigger"], 0) + 1
    return {
        "blocks": list(blocks.values()),
        "rounds": list(rounds.values()),
        "drift_rounds": len(drift_rounds),
        "rounds_by_trigger": by_trigger,
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


def pipeline_config(seed: int, model: str = "lr", trigger: Sequence[str] | None = None,
                    retrain: dict[str, Any] | None = None) -> dict[str, Any]:
    """The config the pipeline runs with: every default, the run's seed, the model, and `[retrain] trigger`
    when one is given (None: the pipeline's default), plus any other `[retrain]` keys from `--set`.

    >>> pipeline_config(3, "hgb", ["concept"])["model"]["class"], pipeline_config(3)["training"]
    ('sklearn.ensemble.HistGradientBoostingClassifier', {'seed': 3})
    >>> "retrain" in pipeline_config(3), pipeline_config(3, trigger=[])["retrain"]
    (False, {'trigger': []})
    """
    raw: dict[str, Any] = {"name": NAME, "target": "target", "source": "incoming", "training": {"seed": seed},
                           "model": {"class": MODELS[model]["class"], "params": dict(MODELS[model]["params"])}}
    if trigger is not None:
        raw["retrain"] = {"trigger": list(trigger)}
    if retrain:
        raw["retrain"] = {**raw.get("retrain", {}), **retrain}
    return raw


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
            "retrains": {"ours": ours["drift_rounds"], **base["retrains"]},
            "rounds_by_trigger": ours["rounds_by_trigger"], "promotions": ours["promotions"],
            "failed_strategies": ours["failed_strategies"], "rejected": ours["rejected"],
            "seconds": {"pipeline": round(t1 - t0, 2), "baselines": round(t2 - t1, 2)}}


def scenario_spec(name: str, blocks: int | None = None, rows_: int | None = None) -> dict[str, Any]:
    """The generator's arguments of scenario `name`, its size overridden by `blocks`/`rows_` when given.

    >>> scenario_spec("sea/abab")
    {'name': 'sea', 'blocks': 20, 'rows': 1000, 'switch': 'recurring', 'drift_at': 6, 'recur_after': 5, 'alternate': True}
    >>> scenario_spec("agrawal/abrupt", rows_=500)["drift_at"], scenario_spec("sea/abrupt", blocks=8)["drift_at"]
    (9, 5)
    """
    s = SCENARIOS[name]
    blocks = s["blocks"] if blocks is None else blocks
    spec = {"name": s["generator"], "blocks": blocks, "rows": s["rows"] if rows_ is None else rows_,
            "switch": s["switch"], "drift_at": timing(blocks, s["episodes"])["drift_at"]}
    if s["switch"] == "recurring":
        spec["recur_after"] = timing(blocks, s["episodes"])["recur_after"]
        if s.get("alternate"):
            spec["alternate"] = True
    return spec


def run_scenario(work: Path, spec: dict[str, Any], seed: int, raw: dict[str, Any]) -> dict[str, Any]:
    """One seeded scenario: write it as `calmops generate` does, run ours and the baselines, add the truth."""
    from calmops_actors.blockfiles import read_blocks, write_scenario
    from pipelines.synthetic.scenarios import generate_scenario

    root = work / f"{spec['name']}-{spec['switch']}-{seed}"
    folder = root / "incoming"
    folder.mkdir(parents=True)
    try:
        scenario = generate_scenario(seed=seed, **spec)
        manifest = write_scenario(scenario, folder, "csv")
        files = [folder / b["file"] for b in manifest["blocks"]]
        frames = read_blocks(folder)
        run = closed_loop(root, frames, files, raw)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    truth = {b["block_id"]: b for b in manifest["blocks"]}
    for b in run["blocks"]:
        entry = truth[b["block"]]
        b["drift"] = bool(entry["drift"])
        b["concept"] = entry["concept"]
        b["share"] = next((c["new_concept_fraction"] for c in entry["changes"] if c["kind"] == "concept"), 0.0)
    return {"seed": seed, **run}


def write_stream(folder: Path, path: Path, rows_: int) -> tuple[list, list[Path]]:
    """Cut a real stream into block files of `rows_` rows in file order; the frames as read back."""
    frame = pd.read_csv(path, float_precision="round_trip")
    if "target" not in frame.columns:
        raise SystemExit(f"{path}: no `target` column; the stream needs its label in a column named target")
    frames, files = [], []
    for i, start in enumerate(range(0, len(frame), rows_), start=1):
        block_id = f"block_{i:04d}"
        file = folder / f"{block_id}.csv"
        frame.iloc[start:start + rows_].reset_index(drop=True).to_csv(file, index=False)
        frames.append((block_id, pd.read_csv(file, float_precision="round_trip")))
        files.append(file)
    return frames, files


def run_stream(work: Path, path: Path, rows_: int, raw: dict[str, Any]) -> dict[str, Any]:
    """A real stream: cut into blocks of `rows_` rows in file order, no ground truth."""
    root = work / "stream"
    folder = root / "incoming"
    folder.mkdir(parents=True)
    try:
        frames, files = write_stream(folder, path, rows_)
        run = closed_loop(root, frames, files, raw)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for b in run["blocks"]:
        b["drift"] = None
    checked = [b for b in run["blocks"] if b["flagged"] is not None]
    ours, every = run["retrains"]["ours"], run["retrains"]["every_block"]
    summary = {"accuracy": {k: mean_accuracy(run["blocks"], k) for k in POLICIES},
               "retrains": {k: float(run["retrains"][k]) for k in ("ours", "every_block", "adwin")},
               "rounds_by_trigger": run["rounds_by_trigger"], "promotions": float(run["promotions"]),
               "promote_share": run["promotions"] / ours if ours else None,
               "retrain_ratio": ours / every if every else None}
    return {"blocks": len(files), "checked": len(checked), "flagged": sum(b["flagged"] for b in checked),
            "summary": summary, "run": run}


# --- command line ----------------------------------------------------------------------------------------


def _listed(parser: argparse.ArgumentParser, option: str, text: str, allowed: Sequence[str]) -> tuple[str, ...]:
    items = tuple(x.strip() for x in text.split(",") if x.strip())
    unknown = [x for x in items if x not in allowed]
    if unknown:
        parser.error(f"{option}: unknown {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    return items


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.closed_loop", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 seeds, sea/abrupt + sea/none, lr only, 8 x 500 rows")
    parser.add_argument("--json", type=Path, default=None, help="write every result to this file")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per scenario (default 10; quick 2)")
    parser.add_argument("--scenarios", default=None,
                        help=f"comma-separated subset of {', '.join(SCENARIOS)} (default: all; quick: "
                             "sea/abrupt,sea/none)")
    parser.add_argument("--models", default=None,
                        help=f"comma-separated: {', '.join(MODELS)} (default: both; quick: lr)")
    parser.add_argument("--trigger", default=None,
                        help=f"[retrain] trigger, comma-separated: {', '.join(TRIGGER_SIGNALS)} (an empty "
                             "string: drift only warns; default: the pipeline's own)")
    parser.add_argument("--label", default=None, help="a name for this run, kept in the JSON's meta")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a [retrain] key for the pipeline, TOML value (e.g. adapt_growth=4); repeatable")
    parser.add_argument("--blocks", type=int, default=None, help="blocks per scenario, overriding each one's own")
    parser.add_argument("--rows", type=int, default=None, help="rows per block, overriding each scenario's own")
    parser.add_argument("--stream", type=Path, default=None, help="CSV of a real stream with a `target` column")
    parser.add_argument("--stream-rows", type=int, default=1000, help="rows per block of --stream")
    parser.add_argument("--no-scenarios", action="store_true", help="only the --stream")
    args = parser.parse_args(argv)
    preset = QUICK if args.quick else FULL
    args.seeds = preset["seeds"] if args.seeds is None else args.seeds
    args.blocks = preset["blocks"] if args.blocks is None else args.blocks
    args.rows = preset["rows"] if args.rows is None else args.rows
    args.scenarios = preset["scenarios"] if args.scenarios is None else \
        _listed(parser, "--scenarios", args.scenarios, tuple(SCENARIOS))
    args.models = preset["models"] if args.models is None else _listed(parser, "--models", args.models, tuple(MODELS))
    if args.trigger is not None:
        args.trigger = _listed(parser, "--trigger", args.trigger, TRIGGER_SIGNALS)
    import tomllib

    settings: dict[str, Any] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        try:
            settings.update(tomllib.loads(f"{key.strip()} = {value.strip()}") if sep else {})
        except tomllib.TOMLDecodeError as err:
            parser.error(f"--set {item!r}: {err}; allowed: KEY=VALUE with a TOML value")
        if not sep:
            parser.error(f"--set {item!r}: allowed: KEY=VALUE")
    args.set = settings
    if args.no_scenarios:
        args.scenarios = ()
    for name in args.scenarios:
        blocks = SCENARIOS[name]["blocks"] if args.blocks is None else args.blocks
        if blocks // SCENARIOS[name]["episodes"] < 2:
            parser.error(f"--blocks {blocks} is too few for {name}: each of its {SCENARIOS[name]['episodes']} "
                         "stretches needs at least 2 blocks")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import ray

    from pipelines.config.pipeline import config_from_dict

    started = time.perf_counter()
    trigger = list(config_from_dict(pipeline_config(0, trigger=args.trigger, retrain=args.set), "<closed_loop>").retrain.trigger)
    results: dict[str, Any] = {
        "meta": {"label": args.label, "seeds": args.seeds, "scenarios": list(args.scenarios),
                 "models": list(args.models), "trigger": trigger, "trigger_option": args.trigger,
                 "blocks": args.blocks, "rows": args.rows, "quick": args.quick,
                 "load_before": os.getloadavg()[0], "cpus": os.cpu_count(),
                 "config": {m: pipeline_config(0, m, args.trigger, args.set) for m in args.models},
                 "adwin_delta": ADWIN_DELTA},
        "scenarios": {},
    }
    work = Path(tempfile.mkdtemp(prefix="calmops-closed-loop-"))
    own_ray = not ray.is_initialized()  # a runner calling several benchmarks in one process may have started it
    if own_ray:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        for name in args.scenarios:
            spec = scenario_spec(name, args.blocks, args.rows)
            entry = results["scenarios"][name] = {"switch": spec["switch"], "spec": spec, "models": {}}
            for model in args.models:
                runs = []
                for seed in scenario_seeds(name, args.seeds):
                    run = run_scenario(work, spec, seed, pipeline_config(seed, model, args.trigger, args.set))
                    runs.append(run)
                    promoted = [f"{r['block'][-2:]}:{r['promoted']}" for r in run["rounds"]
                                if r["trigger"] != "initial" and r["promoted"]]
                    print(f"{name} {model} seed {seed}: flagged "
                          f"{[int(b['block'][-4:]) for b in run['blocks'] if b['flagged']]}, rounds "
                          f"{run['rounds_by_trigger'] or 0}, promoted {promoted or 'none'}, "
                          f"{run['seconds']['pipeline']:.0f} + {run['seconds']['baselines']:.0f} s", flush=True)
                entry["models"][model] = {"summary": summarise(runs), "runs": runs}
        if args.stream is not None:
            stream = results["stream"] = {"name": args.stream.name, "rows": args.stream_rows, "models": {}}
            for model in args.models:
                out = run_stream(work, args.stream, args.stream_rows, pipeline_config(0, model, args.trigger, args.set))
                stream["blocks"] = out.pop("blocks")
                stream["models"][model] = out
                print(f"stream {args.stream.name} {model}: {out['flagged']}/{out['checked']} blocks flagged, "
                      f"rounds {out['run']['rounds_by_trigger'] or 0}, {out['run']['seconds']['pipeline']:.0f} + "
                      f"{out['run']['seconds']['baselines']:.0f} s", flush=True)
    finally:
        if own_ray:
            ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    results["meta"].update(seconds=round(time.perf_counter() - started, 1), load_after=os.getloadavg()[0])
    print(render(rows(results)))
    meta = results["meta"]
    print(f"{meta['label'] or 'run'}: trigger {', '.join(meta['trigger']) or 'none'}; {meta['seconds']:.0f} s; "
          f"load average {meta['load_before']:.1f} -> {meta['load_after']:.1f} on {meta['cpus']} CPUs")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=_jsonable))
    return 0


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


if __name__ == "__main__":
    raise SystemExit(main())
