"""Performance estimation without labels: our CBPE against the realised metrics, and NannyML's CBPE on the same blocks.

    python -m benchmarks.estimation [--quick] [--seeds N] [--sizes 1000,10000] [--classes 2,3]
                                    [--models lr,hgb] [--scenarios covariate,concept,both]
                                    [--calibration product|isotonic|sigmoid|temperature]
                                    [--no-peer] [--no-install] [--json PATH]

Why: an estimate of accuracy before the labels come is only worth publishing if it lands near the accuracy
the labels later show, with an interval that covers it as often as it says, at a cost that can run on every
block. This measures all three on blocks whose label rule we control, and runs the best-known peer, NannyML's
CBPE, on the very same blocks and the very same fitted model.

**Data** (numpy; the rule is ours, so the true posterior is known). Six standard-normal features `x0..x5`
and a fixed nonlinear rule with label noise: binary, P(y=1|x) = sigmoid(1.5 f), f = 1.2 x0 - 1.0 x1 + 0.8 x2
+ 0.7 x0 x3 + 0.8 sin(1.5 x4) (x5 is noise); three classes, P(y|x) = softmax(1.5 s) with s0 = x0 + 0.6 x1 x2,
s1 = x1 - 0.8 x3 + 0.7 sin(1.5 x4), s2 = 0.5 x5^2 - 0.5. River's synthetic generators were not used: they
draw labels by deterministic thresholds plus flips from fixed feature distributions, while here the features
must move under a fixed posterior, which is a few lines of numpy. Scenarios, each `BLOCKS` blocks after the
training data:

- `covariate`: the rule fixed, the features' mean moved by `STEP` sd per block along a random unit direction
  (one per seed), so block 10 sits 1 sd away; accuracy may rise or fall with the direction;
- `concept`: the features fixed, the rule switched from block `SWITCH + 1` on (binary: the x1 and x2 terms
  change sign; three classes: classes 0 and 1 swap rules);
- `both`: the covariate shift, and the switch at the same block.

**Product path, mirrored**. Per seed, size and class count, `TRAIN_BLOCKS` blocks of the reference
distribution are the training blocks; the product's own `split_holdout` (20%: here the newest block) gives the
holdout; the model (`make_model` with `LogisticRegression` or `HistGradientBoostingClassifier`, defaults,
seeded) is fitted on the rest and `fit_calibration` calibrates it on the holdout (isotonic from 1,000 rows),
with the holdout's accuracy as the value "at promotion". Every later block is estimated by `estimate_block`
on its features only (the labels are not handed over) and measured by `evaluate` on its labels, which is what
the product records once the labels arrive. `--calibration` swaps in a plain `CalibratedClassifierCV` with
another method, to try one out; it is not the product's.

**The peer**: NannyML 0.13.1 `CBPE` (every default: isotonic calibration, fitted by itself on the same
holdout) in `benchmarks/.venv-nannyml/` (`benchmarks/peer_nannyml.py`), given the same model's own
probabilities and predictions for the holdout (with labels) and for each block (without), one `estimate`
call per block. Its band is `lower/upper_confidence_boundary` = estimate -/+ 3 sampling errors (~99.7% if
normal); coverage is also given at -/+ 1.96 of its sampling error, the width of our 95% interval.

**Figures** per scenario, block size, class count and model, over seeds and blocks: the mean absolute error
of the estimated accuracy against the realised one (points), the share of blocks whose realised accuracy lies
inside the interval, and the median CPU time per block (`time.process_time` around `estimate_block` alone:
scoring the model, the calibrated probabilities and the label draws; the calibration's CPU is reported
separately). NannyML's CPU is measured in its worker around `estimate` alone (it is handed the probabilities,
so the model is not scored inside it); for a like-for-like view the CPU of our `estimate_performance` on the
same precomputed probabilities is given too. A second table does the same for macro F1 and ROC AUC.
Concept shift: the label-free estimates cannot see it, which the tables say; the realised measurement does:
the product's `performance_drift(accuracy, at promotion, realised, tolerance=0.05)` on the first labelled
block after the switch, per seed.

Targets (issue 21), judged on covariate shift at 1,000 rows per class count and model: MAE <= 2 points;
coverage 85-99%; MAE no worse than NannyML's + 0.5 point; CPU per block <= 0.2x NannyML's. Concept shift:
detection on the first labelled block in >= 90% of seeds.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # 2 shared cores: HistGradientBoosting's threads thrash under load

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.report import Row, fmt_ratio, fmt_seconds, render

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# numpy, pandas, scikit-learn and pipelines.* are imported inside the functions that run the benchmark, so
# that `rows()` and its tests stay fast.

SCENARIOS = {"covariate": "covariate shift only", "concept": "concept shift only",
             "both": "covariate and concept shift"}
SIZES = (1000, 10_000)
CLASSES = (2, 3)
MODELS = {"lr": "sklearn.linear_model.LogisticRegression", "hgb": "sklearn.ensemble.HistGradientBoostingClassifier"}
CALIBRATIONS = ("product", "isotonic", "sigmoid", "temperature")
FEATURES = tuple(f"x{i}" for i in range(6))
TARGET = "target"
TRAIN_BLOCKS = 5
HOLDOUT_FRACTION = 0.2  # the product's default: with 5 equal blocks, the holdout is the newest block
BLOCKS = 10
SWITCH = 5  # index of the first block under the new rule: the 6th of 10
STEP = 0.1  # covariate shift: reference sd per block
SHARPNESS = 1.5
TOLERANCE = 0.05  # the product's default performance_tolerance
SECOND_METRICS = ("f1_macro", "roc_auc")
MAE_TARGET = 2.0  # accuracy points
COVERAGE_TARGET = (0.85, 0.99)
PEER_MARGIN = 0.5  # points
CPU_TARGET = 0.2  # ours / NannyML's
DETECTION_TARGET = 0.9
QUICK = {"seeds": 2, "sizes": (1000,)}
FULL = {"seeds": 10, "sizes": SIZES}


# --- data ---------------------------------------------------------------------------------------------


def posterior(X: np.ndarray, classes: int, switched: bool) -> np.ndarray:
    """P(class | x) under the rule (before or after the switch), one row per row of X.

    >>> import numpy as np
    >>> p = posterior(np.zeros((1, 6)), 2, False); p.round(3).tolist()
    [[0.5, 0.5]]
    >>> posterior(np.ones((4, 6)), 3, True).sum(axis=1).round(6).tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    import numpy as np

    x = X
    if classes == 2:
        sign = -1.0 if switched else 1.0
        f = 1.2 * x[:, 0] - sign * 1.0 * x[:, 1] + sign * 0.8 * x[:, 2] + 0.7 * x[:, 0] * x[:, 3] \
            + 0.8 * np.sin(1.5 * x[:, 4])
        s = np.stack([np.zeros_like(f), f], axis=1)
    else:
        s0 = x[:, 0] + 0.6 * x[:, 1] * x[:, 2]
        s1 = x[:, 1] - 0.8 * x[:, 3] + 0.7 * np.sin(1.5 * x[:, 4])
        s2 = 0.5 * x[:, 5] ** 2 - 0.5
        s = np.stack([s1, s0, s2] if switched else [s0, s1, s2], axis=1)
    s = SHARPNESS * s
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def draw_block(rng: np.random.Generator, rows: int, classes: int, mean: np.ndarray, switched: bool) -> pd.DataFrame:
    """`rows` rows: features around `mean` (unit sd), labels drawn from the rule's posterior."""
    import numpy as np
    import pandas as pd

    X = rng.normal(size=(rows, len(FEATURES))) + mean
    cumulative = np.cumsum(posterior(X, classes, switched), axis=1)
    y = (rng.random(rows)[:, None] > cumulative).sum(axis=1)
    frame = pd.DataFrame(X, columns=list(FEATURES))
    frame[TARGET] = np.minimum(y, classes - 1)
    return frame


def direction(seed: int) -> np.ndarray:
    """The seed's unit direction of covariate shift."""
    import numpy as np

    u = np.random.default_rng([seed, 7]).normal(size=len(FEATURES))
    return u / np.linalg.norm(u)


def scenario_blocks(scenario: str, seed: int, classes: int, rows: int) -> list[tuple[float, bool, pd.DataFrame]]:
    """The scenario's blocks after training: (shift in sd, rule switched, frame)."""
    import numpy as np

    rng = np.random.default_rng([seed, classes, rows, list(SCENARIOS).index(scenario) + 1])
    moves = scenario in ("covariate", "both")
    switches = scenario in ("concept", "both")
    u = direction(seed)
    out = []
    for b in range(BLOCKS):
        shift = STEP * (b + 1) if moves else 0.0
        switched = switches and b >= SWITCH
        out.append((shift, switched, draw_block(rng, rows, classes, shift * u, switched)))
    return out


def training_blocks(seed: int, classes: int, rows: int) -> list[tuple[str, pd.DataFrame]]:
    import numpy as np

    rng = np.random.default_rng([seed, classes, rows, 0])
    zero = np.zeros(len(FEATURES))
    return [(f"train-{i}", draw_block(rng, rows, classes, zero, False)) for i in range(TRAIN_BLOCKS)]


# --- ours ---------------------------------------------------------------------------------------------


def fit_unit(train: list[tuple[str, pd.DataFrame]], model_key: str, seed: int, calibration: str) -> dict:
    """The product's round in miniature: split the holdout, fit the model, calibrate it on the holdout."""
    import pandas as pd
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    from pipelines.estimation.calibration import expected_calibration_error, fit_calibration
    from pipelines.retraining.evaluation import evaluate, split_holdout
    from pipelines.retraining.models import ModelSpec, make_model, seeded

    fit_blocks, holdout, _ = split_holdout(train, [bid for bid, _ in train], holdout_fraction=HOLDOUT_FRACTION)
    frame = pd.concat([f for _, f in fit_blocks], ignore_index=True)
    spec = ModelSpec(MODELS[model_key], {})
    c0 = time.process_time()
    model = seeded(make_model(spec, FEATURES, ()), seed, spec).fit(frame[list(FEATURES)], frame[TARGET])
    fit_cpu = time.process_time() - c0
    c0 = time.process_time()
    if calibration == "product":
        fitted = fit_calibration(model, holdout, FEATURES, TARGET, seed)
        calibrator, method, ece, ece_raw, note = (fitted.calibrator, fitted.method, fitted.ece,
                                                  fitted.ece_uncalibrated, fitted.note)
    else:  # an experiment: a plain calibration with another method (no out-of-fold ECE)
        X, y = holdout[list(FEATURES)], holdout[TARGET].to_numpy()
        calibrator = CalibratedClassifierCV(FrozenEstimator(model), method=calibration).fit(X, y)
        method, note = calibration, "benchmark experiment, not the product's calibration"
        ece_raw = expected_calibration_error(model.predict_proba(X), model.predict(X), y, model.classes_)
        ece = None
    cal_cpu = time.process_time() - c0
    return {"model": model, "calibrator": calibrator, "holdout": holdout,
            "info": {"method": method, "holdout_rows": len(holdout), "ece": ece, "ece_uncalibrated": ece_raw,
                     "note": note, "fit_cpu_seconds": fit_cpu, "calibration_cpu_seconds": cal_cpu,
                     "at_promotion": evaluate(model, holdout, FEATURES, TARGET, "classification")}}


def peer_frame(model: Any, frame: pd.DataFrame, scores: np.ndarray, predicted: np.ndarray,
               with_labels: bool) -> pd.DataFrame:
    """The model's own probabilities (`p_<class>`) and prediction, and the label when asked: NannyML's input.

    Binary labels stay 0/1 (NannyML's binary metrics read them as numbers); more classes become strings.
    """
    import pandas as pd

    classes = [str(c) for c in model.classes_]
    out = pd.DataFrame(scores, columns=[f"p_{c}" for c in classes])
    binary = len(classes) == 2
    out["y_pred"] = predicted.astype(int) if binary else predicted.astype(str)
    if with_labels:
        out["y_true"] = frame[TARGET].to_numpy().astype(int) if binary else frame[TARGET].astype(str).to_numpy()
    return out


def model_outputs(model: Any, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The model's probabilities (columns in `model.classes_` order) and predictions."""
    import numpy as np

    features = frame[list(FEATURES)]
    return np.asarray(model.predict_proba(features), dtype=float), np.asarray(model.predict(features))


def estimate_one(fit: dict, frame: pd.DataFrame, scores: np.ndarray, predicted: np.ndarray, seed: int,
                 arithmetic: bool) -> dict:
    """Our estimate of one block (timed), the truth, and with `arithmetic` the CPU of the estimator's arithmetic
    alone on precomputed probabilities (NannyML is handed those; our `estimate_block` scores the model itself)."""
    import numpy as np

    from pipelines.estimation.block import estimate_block, estimated_drift
    from pipelines.estimation.calibration import calibrated_proba
    from pipelines.estimation.cbpe import estimate_performance
    from pipelines.retraining.evaluation import evaluate

    model, calibrator = fit["model"], fit["calibrator"]
    features = frame[list(FEATURES)]  # the labels are not handed over
    c0 = time.process_time()
    estimate = estimate_block(model, calibrator, features, FEATURES, seed)
    cpu = time.process_time() - c0
    cpu_cbpe = None
    if arithmetic:
        # the calibrated probabilities in the model's class order, taken as estimate_block takes them (the column
        # selection also gives the column-major layout that the label draws run about twice as fast on)
        order = {c: i for i, c in enumerate(calibrator.classes_)}
        calibrated = calibrated_proba(calibrator, features)[:, [order[c] for c in model.classes_]]
        c0 = time.process_time()
        estimate_performance(calibrated, scores, predicted, np.asarray(model.classes_), seed=seed)
        cpu_cbpe = time.process_time() - c0
    realised = evaluate(model, frame, FEATURES, TARGET, "classification")
    flagged = estimated_drift(estimate, "accuracy", fit["info"]["at_promotion"]["accuracy"], TOLERANCE)
    keep = ("accuracy", *SECOND_METRICS)
    return {"realised": {m: realised[m] for m in keep if m in realised},
            "metrics": {m: estimate.metrics[m] for m in keep if m in estimate.metrics},
            "interval": {m: list(estimate.interval[m]) for m in keep if m in estimate.interval},
            "estimated_drop": bool(flagged.drifted) if flagged else None,
            "cpu_seconds": cpu, "cbpe_cpu_seconds": cpu_cbpe}


def run_job(rows: int, classes: int, seed: int, config: dict, folder: str) -> tuple[list[dict], list[dict], list[dict]]:
    """One seed, size and class count: its data, then per model: fit, calibrate, estimate each block, and the
    peer's files. Runs in a worker process of its own."""
    units, blocks, manifest = [], [], []
    train = training_blocks(seed, classes, rows)
    scenarios = {s: scenario_blocks(s, seed, classes, rows) for s in config["scenarios"]}
    for model_key in config["models"]:
        unit_id = f"{rows}-{classes}-{model_key}-{seed}"
        fit = fit_unit(train, model_key, seed, config["calibration"])
        units.append({"id": unit_id, "rows": rows, "classes": classes, "model": model_key, "seed": seed,
                      **fit["info"]})
        if fit["calibrator"] is None:
            print(f"  {unit_id}: no calibration ({fit['info']['note']}); skipped", flush=True)
            continue
        reference = Path(folder) / f"{unit_id}-reference.parquet"
        peer_frame(fit["model"], fit["holdout"], *model_outputs(fit["model"], fit["holdout"]), True).to_parquet(
            reference, index=False)
        entry = {"id": unit_id, "classes": [str(c) for c in fit["model"].classes_], "reference": str(reference),
                 "blocks": [], "batch": []}
        for scenario, items in scenarios.items():
            for b, (shift, switched, frame) in enumerate(items):
                block_id = f"{unit_id}-{scenario}-{b}"
                scores, predicted = model_outputs(fit["model"], frame)
                record = estimate_one(fit, frame, scores, predicted, seed * 1000 + b, scenario == "covariate")
                blocks.append({"id": block_id, "unit": unit_id, "scenario": scenario, "rows": rows,
                               "classes": classes, "model": model_key, "seed": seed, "block": b, "shift": shift,
                               "switched": switched, **record})
                path = Path(folder) / f"{block_id}.parquet"
                peer_frame(fit["model"], frame, scores, predicted, False).to_parquet(path, index=False)
                entry["blocks"].append({"id": block_id, "path": str(path)})
                if scenario == "covariate":
                    entry["batch"].append(block_id)
        manifest.append(entry)
    return units, blocks, manifest


class _InProcess:
    """`--jobs 1`: the same calls in this process, each run when its result is asked for."""

    def __enter__(self) -> _InProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def submit(self, fn: Any, *args: Any) -> Any:
        class Deferred:
            def result(self) -> Any:
                return fn(*args)

        return Deferred()


def run_ours(config: dict, folder: Path, jobs: int) -> tuple[list[dict], list[dict], list[dict]]:
    """Every seed x size x classes (x model) in `jobs` worker processes (1: in this one); results in order.

    Each block's CPU time is its own process's, so running two workers side by side does not inflate it.
    """
    from concurrent.futures import ProcessPoolExecutor

    plan = [(rows, classes, seed) for rows in config["sizes"] for classes in config["classes"]
            for seed in range(config["seeds"])]
    units, blocks, manifest = [], [], []
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=jobs) if jobs > 1 else _InProcess() as pool:
        futures = [pool.submit(run_job, *job, config, str(folder)) for job in plan]
        for i, future in enumerate(futures):
            u, b, m = future.result()
            units += u
            blocks += b
            manifest += m
            if (i + 1) % 5 == 0 or i + 1 == len(plan):
                print(f"  ours: {i + 1}/{len(plan)} seed x size x classes, {len(blocks)} blocks, "
                      f"{time.perf_counter() - started:.0f} s", flush=True)
    return units, blocks, manifest


# --- figures ------------------------------------------------------------------------------------------


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def metric_figures(blocks: list[dict], peer: dict[str, dict] | None, metric: str) -> dict[str, Any]:
    """MAE (points) and coverage of one metric over these blocks, ours and NannyML's (where it gives one).

    >>> b = [{"id": "a", "realised": {"accuracy": 0.80}, "metrics": {"accuracy": 0.82},
    ...       "interval": {"accuracy": [0.79, 0.85]}}]
    >>> p = {"a": {"metrics": {"accuracy": 0.85}, "sampling_error": {"accuracy": 0.01},
    ...            "lower": {"accuracy": 0.82}, "upper": {"accuracy": 0.88}}}
    >>> f = metric_figures(b, p, "accuracy")
    >>> round(f["ours"]["mae"], 2), f["ours"]["coverage"], round(f["nannyml"]["mae"], 2), f["nannyml"]["coverage"]
    (2.0, 1.0, 5.0, 0.0)
    """
    out: dict[str, Any] = {}
    mine = [b for b in blocks if metric in b["realised"] and metric in b["metrics"]]
    if mine:
        out["ours"] = {"n": len(mine),
                       "mae": _mean([100 * abs(b["metrics"][metric] - b["realised"][metric]) for b in mine]),
                       "bias": _mean([100 * (b["metrics"][metric] - b["realised"][metric]) for b in mine]),
                       "coverage": _mean([float(b["interval"][metric][0] <= b["realised"][metric]
                                                <= b["interval"][metric][1]) for b in mine]),
                       "width": _mean([100 * (b["interval"][metric][1] - b["interval"][metric][0]) for b in mine])}
    if peer is not None:
        theirs = [(b, peer[b["id"]]) for b in blocks if b["id"] in peer and metric in b["realised"]
                  and peer[b["id"]]["metrics"].get(metric) is not None]
        if theirs:
            def inside(b: dict, p: dict, z: float | None) -> float:
                truth, value = b["realised"][metric], p["metrics"][metric]
                if z is None:
                    return float(p["lower"][metric] <= truth <= p["upper"][metric])
                return float(abs(truth - value) <= z * p["sampling_error"][metric])

            out["nannyml"] = {"n": len(theirs),
                              "mae": _mean([100 * abs(p["metrics"][metric] - b["realised"][metric])
                                            for b, p in theirs]),
                              "bias": _mean([100 * (p["metrics"][metric] - b["realised"][metric]) for b, p in theirs]),
                              "coverage": _mean([inside(b, p, None) for b, p in theirs]),
                              "coverage_1.96se": _mean([inside(b, p, 1.96) for b, p in theirs]),
                              "width": _mean([100 * (p["upper"][metric] - p["lower"][metric]) for b, p in theirs])}
    return out


def concept_figures(blocks: list[dict], units: dict[str, dict], peer: dict[str, dict] | None) -> dict[str, Any]:
    """Per seed, does the realised accuracy of the first labelled block after the switch trip the product's
    `performance_drift`? And what did the label-free estimate say about the blocks after the switch?"""
    from pipelines.drift.concept import performance_drift

    first = [b for b in blocks if b["block"] == SWITCH]
    after = [b for b in blocks if b["switched"]]
    before = [b for b in blocks if not b["switched"]]

    def trips(b: dict) -> bool:
        at = units[b["unit"]]["at_promotion"]["accuracy"]
        return performance_drift("accuracy", at, b["realised"]["accuracy"], TOLERANCE).drifted

    return {"seeds": len(first), "detected": sum(trips(b) for b in first),
            "flagged_before_switch": _mean([float(trips(b)) for b in before]),
            "realised_drop": _mean([100 * (units[b["unit"]]["at_promotion"]["accuracy"] - b["realised"]["accuracy"])
                                    for b in first]),
            "estimated_drop_after_switch": _mean([float(bool(b["estimated_drop"])) for b in after]),
            "mae_before": metric_figures(before, None, "accuracy").get("ours", {}).get("mae"),
            "mae_after": metric_figures(after, None, "accuracy").get("ours", {}).get("mae"),
            "nannyml_mae_after": metric_figures(after, peer, "accuracy").get("nannyml", {}).get("mae")}


def summarise(units: list[dict], blocks: list[dict], peer: dict | None) -> dict[str, Any]:
    """Figures per scenario, size, classes and model: the `summary` part of the JSON.

    Cells are keyed 'scenario/rows/classes/model'; the calibration's figures 'rows/classes/model'.
    """
    by_unit = {u["id"]: u for u in units}
    peer_blocks = peer["blocks"] if peer else None
    cells: dict[str, Any] = {}
    keys = sorted({(b["scenario"], b["rows"], b["classes"], b["model"]) for b in blocks},
                  key=lambda k: (list(SCENARIOS).index(k[0]), k[1], k[2], list(MODELS).index(k[3])))
    for scenario, rows, classes, model in keys:
        mine = [b for b in blocks
                if (b["scenario"], b["rows"], b["classes"], b["model"]) == (scenario, rows, classes, model)]
        cell: dict[str, Any] = {"scenario": scenario, "rows": rows, "classes": classes, "model": model,
                                "seeds": len({b["seed"] for b in mine}), "blocks": len(mine)}
        for metric in ("accuracy", *SECOND_METRICS):
            cell[metric] = metric_figures(mine, peer_blocks, metric)
        cell["cpu"] = {"ours": _median([b["cpu_seconds"] for b in mine]),
                       "ours_cbpe_only": _median([b["cbpe_cpu_seconds"] for b in mine
                                                  if b["cbpe_cpu_seconds"] is not None])}
        if peer_blocks:
            cell["cpu"]["nannyml"] = _median([peer_blocks[b["id"]]["cpu_seconds"] for b in mine
                                              if b["id"] in peer_blocks])
            batch = [peer["units"][u]["batch_cpu_seconds_per_block"] for u in {b["unit"] for b in mine}
                     if "batch_cpu_seconds_per_block" in peer["units"].get(u, {})]
            if batch and scenario == "covariate":
                cell["cpu"]["nannyml_batched"] = _median(batch)
        if scenario in ("concept", "both"):
            cell["concept"] = concept_figures(mine, by_unit, peer_blocks)
        cells[f"{scenario}/{rows}/{classes}/{model}"] = cell
    calibration = {}
    for rows, classes, model in sorted({(u["rows"], u["classes"], u["model"]) for u in units}):
        mine = [u for u in units if (u["rows"], u["classes"], u["model"]) == (rows, classes, model)]
        entry = {"rows": rows, "classes": classes, "model": model, "methods": sorted({u["method"] for u in mine}),
                 "cpu_seconds": _median([u["calibration_cpu_seconds"] for u in mine]),
                 "ece": _mean([u["ece"] for u in mine if u["ece"] is not None]),
                 "ece_uncalibrated": _mean([u["ece_uncalibrated"] for u in mine if u["ece_uncalibrated"] is not None])}
        if peer:
            entry["nannyml_fit_cpu_seconds"] = _median([peer["units"][u["id"]]["fit_cpu_seconds"] for u in mine
                                                        if u["id"] in peer["units"]])
        calibration[f"{rows}/{classes}/{model}"] = entry
    return {"cells": cells, "calibration": calibration}


# --- tables -------------------------------------------------------------------------------------------


def _pt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _points(share: float | None) -> str:
    """
    >>> _points(0.0123), _points(None)
    ('1.23 pt', 'n/a')
    """
    return "n/a" if share is None else f"{100 * share:.2f} pt"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def _ms(x: float | None) -> str:
    return "n/a" if x is None else fmt_seconds(x)


def _label(cell: dict) -> str:
    return f"{cell['scenario']}, {cell['rows']:,} rows, {cell['classes']} classes, {cell['model']}"


def judged(cell: dict) -> bool:
    return cell["scenario"] == "covariate" and cell["rows"] == 1000


def rows(results: dict) -> list[Row]:
    """Table rows from the JSON that `main` writes; NannyML's figures go in `baseline`.

    Judged: covariate shift at 1,000 rows (MAE, coverage, MAE against NannyML's, CPU against NannyML's), and
    the realised detection of concept shift; the other cells are information.
    """
    summary = results.get("summary")
    if not summary:
        return [Row("performance estimation", "no results", results.get("reason", ""))]
    peer_ok = bool(results.get("peer", {}).get("available"))
    out: list[Row] = []
    if not peer_ok:
        out.append(Row("NannyML peer", "not available", results.get("peer", {}).get("reason", "")))
    for cell in summary["cells"].values():
        acc = cell["accuracy"]
        ours, theirs = acc.get("ours", {}), acc.get("nannyml", {})
        cpu = cell["cpu"]
        label = _label(cell)
        peer_text = (f"{_pt(theirs.get('mae'))} pt, {_pct(theirs.get('coverage'))} in band "
                     f"({_pct(theirs.get('coverage_1.96se'))} at 1.96 se)") if theirs else "n/a"
        if judged(cell):
            mae = ours.get("mae")
            out.append(Row(f"accuracy MAE, {label}", f"{_pt(mae)} pt", f"NannyML {_pt(theirs.get('mae'))} pt",
                           f"<= {MAE_TARGET:g} pt", mae is not None and mae <= MAE_TARGET))
            if theirs:
                out.append(Row(f"accuracy MAE against NannyML's, {label}", f"{_pt(mae)} pt",
                               f"NannyML {_pt(theirs['mae'])} pt", f"<= NannyML + {PEER_MARGIN:g} pt",
                               mae is not None and mae <= theirs["mae"] + PEER_MARGIN))
            coverage = ours.get("coverage")
            low, high = COVERAGE_TARGET
            out.append(Row(f"interval coverage, {label}", _pct(coverage),
                           f"NannyML {_pct(theirs.get('coverage'))} (band), {_pct(theirs.get('coverage_1.96se'))} "
                           "(1.96 se)" if theirs else "", f"{low:.0%}-{high:.0%}",
                           coverage is not None and low <= coverage <= high))
            if cpu.get("nannyml"):
                ratio = cpu["ours"] / cpu["nannyml"]
                out.append(Row(f"CPU per block, {label}", f"{_ms(cpu['ours'])} ({fmt_ratio(ratio)})",
                               f"NannyML {_ms(cpu['nannyml'])}", f"<= {CPU_TARGET:g}x", ratio <= CPU_TARGET))
            continue
        concept = cell.get("concept")
        if concept:  # the estimate's figures are summed up in the row; the wide tables hold them all
            rate = concept["detected"] / concept["seeds"] if concept["seeds"] else 0.0
            out.append(Row(f"concept switch flagged by the realised accuracy on the first labelled block, {label}",
                           f"{concept['detected']}/{concept['seeds']} seeds; the estimate flagged "
                           f"{_pct(concept['estimated_drop_after_switch'])} of the blocks after the switch "
                           f"(MAE {_pt(concept['mae_after'])} pt there)",
                           f"realised drop {_pt(concept['realised_drop'])} pt; NannyML's MAE after the switch "
                           f"{_pt(concept['nannyml_mae_after'])} pt",
                           f">= {DETECTION_TARGET:.0%} of seeds", rate >= DETECTION_TARGET))
            continue
        text = (f"{_pt(ours.get('mae'))} pt, {_pct(ours.get('coverage'))} covered, "
                f"{_ms(cpu['ours'])}/block")
        out.append(Row(f"accuracy, {label}", text, peer_text + (f", {_ms(cpu['nannyml'])}/block"
                                                                  if cpu.get("nannyml") else "")))
    return out


def markdown_tables(results: dict) -> str:
    """The README's tables: accuracy, F1/AUC, concept shift, calibration cost."""
    summary = results["summary"]
    cells = list(summary["cells"].values())
    lines = ["Accuracy: MAE (points) of the estimate against the realised accuracy, share of blocks whose realised "
             "accuracy is inside the interval (ours: 95%; NannyML: its band of -/+ 3 se, and -/+ 1.96 se), "
             "median CPU per block.", "",
             "| scenario | rows | classes | model | MAE ours | MAE NannyML | coverage ours | coverage NannyML "
             "(3 se / 1.96 se) | CPU/block ours | CPU/block NannyML | ours / NannyML | our CBPE arithmetic alone |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in cells:
        o, t, cpu = c["accuracy"].get("ours", {}), c["accuracy"].get("nannyml", {}), c["cpu"]
        ratio = fmt_ratio(cpu["ours"] / cpu["nannyml"]) if cpu.get("nannyml") else "n/a"
        lines.append(f"| {c['scenario']} | {c['rows']:,} | {c['classes']} | {c['model']} | {_pt(o.get('mae'))} | "
                     f"{_pt(t.get('mae'))} | {_pct(o.get('coverage'))} | {_pct(t.get('coverage'))} / "
                     f"{_pct(t.get('coverage_1.96se'))} | {_ms(cpu['ours'])} | {_ms(cpu.get('nannyml'))} | {ratio} | "
                     f"{_ms(cpu['ours_cbpe_only'])} |")
    lines += ["", "Macro F1 and ROC AUC, the same figures (NannyML's binary F1 is the positive class's, not macro: "
              "n/a).", "",
              "| scenario | rows | classes | model | metric | MAE ours | MAE NannyML | coverage ours | coverage "
              "NannyML (3 se / 1.96 se) |", "|---|---:|---:|---|---|---:|---:|---:|---:|"]
    for c in cells:
        for metric in SECOND_METRICS:
            o, t = c[metric].get("ours", {}), c[metric].get("nannyml", {})
            if not o:
                continue
            lines.append(f"| {c['scenario']} | {c['rows']:,} | {c['classes']} | {c['model']} | {metric} | "
                         f"{_pt(o.get('mae'))} | {_pt(t.get('mae'))} | {_pct(o.get('coverage'))} | "
                         f"{_pct(t.get('coverage'))} / {_pct(t.get('coverage_1.96se'))} |")
    concept = [c for c in cells if "concept" in c]
    if concept:
        lines += ["", f"Concept shift (switch at block {SWITCH + 1} of {BLOCKS}): the product's "
                  f"`performance_drift` (tolerance {TOLERANCE}) on the realised accuracy of the first labelled "
                  "block after the switch, against the holdout accuracy at promotion; what the label-free estimate "
                  "said.", "",
                  "| scenario | rows | classes | model | detected (seeds) | realised drop, pt | flagged before "
                  "the switch (blocks) | estimate flagged a drop after the switch (blocks) | MAE ours before / "
                  "after | MAE NannyML after |", "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
        for c in concept:
            k = c["concept"]
            lines.append(f"| {c['scenario']} | {c['rows']:,} | {c['classes']} | {c['model']} | "
                         f"{k['detected']}/{k['seeds']} | {_pt(k['realised_drop'])} | "
                         f"{_pct(k['flagged_before_switch'])} | {_pct(k['estimated_drop_after_switch'])} | "
                         f"{_pt(k['mae_before'])} / {_pt(k['mae_after'])} | {_pt(k['nannyml_mae_after'])} |")
    lines += ["", "Calibration at promotion (once per model; not in the per-block CPU): median CPU, mean ECE "
              "(product: out of fold) before and after; NannyML's `fit` on the same holdout.", "",
              "| rows | classes | model | method | CPU ours | CPU NannyML fit | ECE uncalibrated | ECE calibrated |",
              "|---:|---:|---|---|---:|---:|---:|---:|"]
    for e in summary["calibration"].values():
        lines.append(f"| {e['rows']:,} | {e['classes']} | {e['model']} | {', '.join(e['methods'])} | "
                     f"{_ms(e['cpu_seconds'])} | {_ms(e.get('nannyml_fit_cpu_seconds'))} | "
                     f"{_points(e['ece_uncalibrated'])} | {_points(e['ece'])} |")
    return "\n".join(lines)


# --- main ---------------------------------------------------------------------------------------------


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def estimator_sources() -> dict[str, str]:
    """sha256 (first 12 hex digits) of the estimator's source files: which version a run measured."""
    import hashlib

    folder = Path(__file__).resolve().parent.parent / "pipelines" / "estimation"
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:12] for p in sorted(folder.glob("*.py"))}


def _choices(text: str, allowed: tuple, cast=str) -> tuple:
    values = tuple(cast(v) for v in text.split(",") if v)
    unknown = [v for v in values if v not in allowed]
    if unknown or not values:
        raise argparse.ArgumentTypeError(f"{text!r}: allowed values are {', '.join(map(str, allowed))}")
    return values


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.estimation", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK['seeds']} seeds, 1,000-row blocks only: a smoke run, not the reported figures")
    parser.add_argument("--seeds", type=int, default=None, help="seeds (default 10; quick 2)")
    parser.add_argument("--sizes", type=lambda t: tuple(int(v) for v in t.split(",")), default=None,
                        help="rows per block (default 1000,10000; quick 1000)")
    parser.add_argument("--classes", type=lambda t: _choices(t, CLASSES, int), default=CLASSES)
    parser.add_argument("--models", type=lambda t: _choices(t, tuple(MODELS)), default=tuple(MODELS))
    parser.add_argument("--scenarios", type=lambda t: _choices(t, tuple(SCENARIOS)), default=tuple(SCENARIOS))
    parser.add_argument("--calibration", choices=CALIBRATIONS, default="product",
                        help="product: fit_calibration (the default); otherwise a plain CalibratedClassifierCV with "
                             "this method, to try one out")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="worker processes for our side (default 2); CPU per block is per process")
    parser.add_argument("--no-peer", action="store_true", help="do not run NannyML")
    parser.add_argument("--no-install", action="store_true",
                        help="do not create the NannyML venv; report the peer as unavailable when it is missing")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    args.seeds = args.seeds or plan["seeds"]
    args.sizes = args.sizes or plan["sizes"]
    if args.seeds < 1 or args.jobs < 1 or any(s < 50 for s in args.sizes):
        parser.error("--seeds and --jobs must be >= 1 and every size >= 50 rows")
    return args


def main(argv: list[str] | None = None) -> int:
    from benchmarks import peer_nannyml

    args = parse(argv)
    started = time.perf_counter()
    config = {"seeds": args.seeds, "sizes": list(args.sizes), "classes": list(args.classes),
              "models": list(args.models), "scenarios": list(args.scenarios), "calibration": args.calibration,
              "jobs": args.jobs, "train_blocks": TRAIN_BLOCKS, "blocks": BLOCKS, "switch": SWITCH, "step": STEP,
              "tolerance": TOLERANCE}
    results: dict[str, Any] = {"benchmark": "estimation", "quick": args.quick, "config": config,
                               "estimator_sources": estimator_sources(), "cpus": os.cpu_count(),
                               "load_average_start": _load()}
    print(f"estimation: {args.seeds} seeds x sizes {list(args.sizes)} x classes {list(args.classes)} x models "
          f"{list(args.models)} x scenarios {list(args.scenarios)}; calibration {args.calibration}", flush=True)
    code = 0
    with tempfile.TemporaryDirectory(prefix="bench-estimation-") as tmp:
        folder = Path(tmp)
        units, blocks, manifest = run_ours(config, folder, args.jobs)
        results["load_average_after_ours"] = _load()
        peer: dict | None = None
        if args.no_peer:
            results["peer"] = {"available": False, "reason": "not run (--no-peer)"}
        else:
            python, how = peer_nannyml.ensure_venv(install=not args.no_install)
            if python is None:
                results["peer"] = {"available": False, "reason": how}
                print(f"estimation: NannyML not available: {how}; our figures only", flush=True)
            else:
                print(f"estimation: NannyML venv {how}; {len(manifest)} fitted models", flush=True)
                try:
                    peer = peer_nannyml.run_worker(python, {"units": manifest}, folder)
                    results["peer"] = {"available": True, "nannyml_version": peer["nannyml_version"],
                                       "requirements": list(peer_nannyml.REQUIREMENTS)}
                except (RuntimeError, OSError, ValueError) as exc:
                    code = 1
                    results["peer"] = {"available": False, "reason": str(exc)}
                    print(f"estimation: {exc}", flush=True)
    results["summary"] = summarise(units, blocks, peer)
    results["units"] = units
    results["blocks"] = blocks
    if peer:
        results["peer"] |= {"units": peer["units"], "blocks": peer["blocks"]}
    results["load_average_end"] = _load()
    results["seconds"] = round(time.perf_counter() - started, 1)
    print(render(rows(results)))
    print()
    print(markdown_tables(results))
    print(f"estimation: {results['seconds']:.0f} s; load average {results['load_average_start']} -> "
          f"{results['load_average_end']} on {os.cpu_count()} CPUs", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf-8")
    return code


if __name__ == "__main__":
    sys.exit(main())
