"""Drift-detection quality on River streams: false alarms, sensitivity, concept drift and cost, seeded.

    python -m benchmarks.drift_quality [--quick] [--json PATH] [--seed N]

Data: a 20-feature stream of mixed types built column-wise from River generators (RandomRBF, Hyperplane,
Mixed, STAGGER, LED), drift-free unless this script injects a shift; SEA and Agrawal streams with an
abrupt concept switch for the label-based detectors. Every figure is printed next to its target;
`--json` writes them all. `--quick` runs fewer blocks and seeds (a smoke run, not the reported figures).
Sections:

1. calibration: effect sizes of a 0.02 sd shift at 100,000 rows and a 0.5 sd shift at 1,000 rows, for
   the two numeric effect candidates (normalised Wasserstein, KS statistic) and for category shares,
   on seeds not used by the later sections; this is where the `min_effect` defaults come from;
2. false alarms on drift-free streams at 500, 5,000 and 50,000 rows per block, every signal on;
3. sensitivity: a 0.02 sd shift at 100,000 rows (must not flag) and 0.5 sd at 1,000 rows (must flag);
   the same for category shares, and a correlation-only change that only the MMD test can see;
4. concept drift: SEA variant switch and Agrawal function switch, each detector, 10 seeds (ADWIN is River's;
   "adwin_frouros" is Frouros' ADWIN, which streams recorded before River's took over go on with);
5. cost: the per-feature tests against plain loops of the same tests and against the code before (scipy's
   Wasserstein distance); each signal's milliseconds per block at 5,000 x 20 and 1,000 x 10, the MMD test
   sequential and fixed-count on the same blocks, Frouros' MMD statistic alone, River's and Frouros' ADWIN.

Sections 2 and 3 also run the fixed-count MMD test next to the sequential one on every block and report how
often their decisions agree and how many permutations the sequential test used.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # 2 shared cores: scikit-learn's thread pool only adds contention

import argparse
import itertools
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
from frouros.detectors.data_drift import MMD, ChiSquareTest, KSTest
from frouros.utils.kernels import rbf_kernel
from river.datasets import synth
from scipy.stats import chi2_contingency, ks_2samp, wasserstein_distance
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from pipelines.config.drift import DriftSettings
from pipelines.drift.concept import frouros_adwin_state, performance_drift, update_concept
from pipelines.drift.decision import assess
from pipelines.drift.features import check_features, fit_reference
from pipelines.drift.multivariate import check_multivariate, mmd_test

RBF = [f"rbf_{i}" for i in range(7)] + ["rbf_7_exp"]
NUMERIC = RBF + [f"hyp_{i}" for i in range(4)] + ["mix_x2", "mix_x3"]
CATEGORICAL = ["mix_b0", "mix_b1", "size", "color", "shape", "digit"]
REF_ROWS = 10_000
DETECTORS = ("ddm", "eddm", "adwin", "page_hinkley", "adwin_frouros")
STAGGER_NAMES = {"size": ("small", "medium", "large"), "color": ("red", "green", "blue"),
                 "shape": ("circle", "square", "triangle")}


# --- streams ------------------------------------------------------------------------------------------


def _take(gen: Iterator, n: int) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for x, y in itertools.islice(gen, n):
        xs.append(list(x.values()))
        ys.append(y)
    return np.array(xs, dtype=float), np.array(ys)


class MixedStream:
    """20 drift-free features (14 numeric, 6 categorical: strings, booleans, integer codes) and a label.

    rbf_7 is exponentiated (a skewed, heavy-tailed column); the label is RandomRBF's class.
    """

    def __init__(self, seed: int) -> None:
        self.rbf = iter(synth.RandomRBF(seed_model=seed, seed_sample=seed + 1, n_classes=2, n_features=8,
                                        n_centroids=20))
        self.hyp = iter(synth.Hyperplane(seed=seed + 2, n_features=4))
        self.mix = iter(synth.Mixed(seed=seed + 3))
        self.stagger = iter(synth.STAGGER(seed=seed + 4, balance_classes=False))
        self.led = iter(synth.LED(seed=seed + 5, noise_percentage=0.1))

    def take(self, n: int) -> pd.DataFrame:
        rbf, y = _take(self.rbf, n)
        hyp, _ = _take(self.hyp, n)
        mix, _ = _take(self.mix, n)
        stagger, _ = _take(self.stagger, n)
        _, digit = _take(self.led, n)
        frame = {f"rbf_{i}": rbf[:, i] for i in range(7)}
        frame["rbf_7_exp"] = np.exp(2.0 * rbf[:, 7])
        frame |= {f"hyp_{i}": hyp[:, i] for i in range(4)}
        frame |= {"mix_x2": mix[:, 2], "mix_x3": mix[:, 3], "mix_b0": mix[:, 0] > 0.5, "mix_b1": mix[:, 1] > 0.5}
        for j, name in enumerate(("size", "color", "shape")):
            frame[name] = np.array(STAGGER_NAMES[name], dtype=object)[stagger[:, j].astype(int)]
        frame["digit"] = digit.astype(int)
        frame["y"] = y.astype(int)
        return pd.DataFrame(frame)


def shift_numeric(block: pd.DataFrame, column: str, sd: float, amount: float) -> pd.DataFrame:
    out = block.copy()
    out[column] = out[column] + amount * sd
    return out


def shift_category(block: pd.DataFrame, column: str, points: float, rng: np.random.Generator) -> pd.DataFrame:
    """Move `points` of share from the most common category to the next one."""
    out = block.copy()
    counts = out[column].value_counts()
    source, target = counts.index[0], counts.index[1]
    rows = np.flatnonzero((out[column] == source).to_numpy())
    k = min(len(rows), int(round(points * len(out))))
    picked = rng.choice(rows, size=k, replace=False)
    values = out[column].to_numpy(copy=True)
    values[picked] = target
    out[column] = values
    return out


def couple(block: pd.DataFrame, a: str, b: str, share: float, rng: np.random.Generator) -> pd.DataFrame:
    """Change only how `a` and `b` move together: in `share` of rows, b's values follow a's ranks.

    Both marginal distributions are unchanged (b's values are only reordered).
    """
    out = block.copy()
    rows = np.sort(rng.choice(len(out), size=int(share * len(out)), replace=False))
    a_ranks = np.argsort(np.argsort(out[a].to_numpy()[rows]))
    b_sorted = np.sort(out[b].to_numpy()[rows])
    values = out[b].to_numpy(copy=True)
    values[rows] = b_sorted[a_ranks]
    out[b] = values
    return out


# --- helpers ------------------------------------------------------------------------------------------


class Report:
    """Figures with their targets; printed as they come and written as JSON at the end."""

    def __init__(self) -> None:
        self.figures: dict[str, dict[str, Any]] = {}

    def add(self, key: str, value: Any, target: str | None = None, met: bool | None = None,
            note: str = "") -> None:
        self.figures[key] = {"value": value, "target": target, "met": met, "note": note}
        status = "" if met is None else ("  [met]" if met else "  [MISSED]")
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        target_text = f"   target {target}" if target else ""
        print(f"  {key:<58} {shown:>12}{target_text}{status}{('   ' + note) if note else ''}", flush=True)


def section(title: str) -> None:
    print(f"\n== {title}", flush=True)


class MMDTally:
    """The sequential MMD test (the default) next to the fixed-count test on the same blocks and seeds."""

    def __init__(self) -> None:
        self.blocks = self.agree = 0
        self.used: list[int] = []

    def run(self, ref_frame: pd.DataFrame, block: pd.DataFrame, settings: DriftSettings, seed: int):
        sequential = check_multivariate(ref_frame, block, NUMERIC, settings, seed)
        fixed = check_multivariate(ref_frame, block, NUMERIC, settings, seed, stop_early=False)
        self.blocks += 1
        self.agree += sequential.drifted == fixed.drifted
        self.used.append(sequential.permutations_used)
        return sequential

    def report(self, report: Report, prefix: str, permutations: int) -> None:
        rate = self.agree / self.blocks
        report.add(f"{prefix}.mmd_sequential_vs_fixed.decisions_agree", rate, "1 (every block)", rate == 1.0,
                   note=f"{self.agree}/{self.blocks} blocks")
        stopped = sum(u < permutations for u in self.used)
        report.add(f"{prefix}.mmd_sequential.permutations_used_median", float(statistics.median(self.used)),
                   note=f"of {permutations}; mean {statistics.mean(self.used):.0f}; stopped early on "
                        f"{stopped}/{len(self.used)} blocks")


def block_verdict(reference, ref_frame, block, settings, seed, concept=None, performance=None, tally=None):
    features = check_features(reference, block, settings)
    multivariate = None
    if settings.multivariate.enabled:
        multivariate = (tally.run(ref_frame, block, settings, seed) if tally is not None
                        else check_multivariate(ref_frame, block, NUMERIC, settings, seed))
    return assess(features, multivariate, concept, performance, settings)


def feature_of(verdict, name: str):
    return next(f for f in verdict.features if f.name == name)


# --- 1. calibration -----------------------------------------------------------------------------------


def calibrate(report: Report, quick: bool, seed: int) -> None:
    section("1. calibration of the minimum effect (seeds not used below)")
    tiny_draws, big_refs, big_blocks = (2, 3, 4) if quick else (8, 10, 5)
    candidates = {"wasserstein": DriftSettings(numeric_effect="wasserstein"),
                  "ks": DriftSettings(numeric_effect="ks")}
    tiny: dict[str, list[float]] = {k: [] for k in candidates}
    big: dict[str, list[float]] = {k: [] for k in candidates}
    cat_tiny, cat_big = [], []
    rng = np.random.default_rng(seed)
    for r in range(tiny_draws):
        stream = MixedStream(seed + 5000 + r)
        ref = stream.take(REF_ROWS)
        block = stream.take(100_000)
        column = NUMERIC[r % len(NUMERIC)]
        shifted = shift_numeric(block, column, ref[column].std(), 0.02)
        cat_column = CATEGORICAL[r % len(CATEGORICAL)]
        cat_shifted = shift_category(block, cat_column, 0.01, rng)
        for name, settings in candidates.items():
            reference = fit_reference(ref, NUMERIC, CATEGORICAL, settings)
            tiny[name].append(_effect(check_features(reference, shifted, settings), column))
            if name == "wasserstein":
                cat_tiny.append(_effect(check_features(reference, cat_shifted, settings), cat_column))
    for r in range(big_refs):
        stream = MixedStream(seed + 6000 + r)
        ref = stream.take(REF_ROWS)
        references = {name: fit_reference(ref, NUMERIC, CATEGORICAL, s) for name, s in candidates.items()}
        for j in range(big_blocks):
            block = stream.take(1000)
            column = NUMERIC[(r * big_blocks + j) % len(NUMERIC)]
            shifted = shift_numeric(block, column, ref[column].std(), 0.5)
            cat_column = CATEGORICAL[(r * big_blocks + j) % len(CATEGORICAL)]
            cat_shifted = shift_category(block, cat_column, 0.10, rng)
            for name, settings in candidates.items():
                big[name].append(_effect(check_features(references[name], shifted, settings), column))
            cat_big.append(_effect(check_features(references["wasserstein"], cat_shifted,
                                                   candidates["wasserstein"]), cat_column))
    best, best_margin = None, 0.0
    for name in candidates:
        lo, hi = max(tiny[name]), float(np.percentile(big[name], 5))
        margin = hi / lo
        report.add(f"calibration.{name}.tiny_max", lo, note="largest effect, 0.02 sd at 100k rows")
        report.add(f"calibration.{name}.big_p5", hi, note="5th percentile, 0.5 sd at 1k rows")
        report.add(f"calibration.{name}.margin", margin, note="big_p5 / tiny_max: larger separates better")
        report.add(f"calibration.{name}.suggested_min_effect", math.sqrt(lo * hi), note="geometric mean")
        if margin > best_margin:
            best, best_margin = name, margin
    report.add("calibration.numeric_effect_choice", best, note=f"default is {DriftSettings().numeric_effect!r}")
    lo, hi = max(cat_tiny), float(np.percentile(cat_big, 5))
    report.add("calibration.js.tiny_max", lo, note="largest JS distance, 1-point share move at 100k rows")
    report.add("calibration.js.big_p5", hi, note="5th percentile, 10-point share move at 1k rows")
    report.add("calibration.js.suggested_min_effect", math.sqrt(lo * hi),
               note=f"default min_effect_categorical is {DriftSettings().min_effect_categorical}")


def _effect(features, name: str) -> float:
    return next(f.effect for f in features if f.name == name)


# --- 2. false alarms ----------------------------------------------------------------------------------


def false_alarms(report: Report, quick: bool, seed: int) -> None:
    section("2. false alarms on drift-free streams (20 features, every signal on)")
    settings = DriftSettings()
    plan = [(500, 30), (5000, 15), (50_000, 5)] if quick else [(500, 100), (5000, 100), (50_000, 40)]
    for size, count in plan:
        stream = MixedStream(seed + size)
        ref = stream.take(REF_ROWS)
        holdout = stream.take(5000)
        model = HistGradientBoostingClassifier(max_iter=100, random_state=seed).fit(ref[RBF], ref["y"])
        at_promotion = float((model.predict(holdout[RBF]) == holdout["y"]).mean())
        reference = fit_reference(ref, NUMERIC, CATEGORICAL, settings)
        state = None
        tally = {"any": 0, "features": 0, "mmd": 0, "concept": 0, "performance": 0}
        mmd = MMDTally()
        started = time.perf_counter()
        for b in range(count):
            block = stream.take(size)
            errors = (model.predict(block[RBF]) != block["y"].to_numpy()).astype(int)
            concept = update_concept(settings.concept_detector, state, errors, max_rows=settings.concept_max_rows)
            state = concept.state
            performance = performance_drift("accuracy", at_promotion, 1.0 - errors.mean(),
                                            settings.performance_tolerance)
            verdict = block_verdict(reference, ref, block, settings, seed + b, concept, performance, mmd)
            tally["any"] += verdict.drifted
            tally["features"] += any(f.drifted for f in verdict.features)
            tally["mmd"] += bool(verdict.multivariate and verdict.multivariate.drifted)
            tally["concept"] += concept.drift
            tally["performance"] += performance.drifted
        rate = tally["any"] / count
        report.add(f"false_alarms.rows_{size}.any_signal", rate, "<= 0.05", rate <= 0.05,
                   note=f"{tally['any']}/{count} blocks; accuracy at promotion {at_promotion:.3f}; "
                        f"{time.perf_counter() - started:.0f} s")
        for signal in ("features", "mmd", "concept", "performance"):
            report.add(f"false_alarms.rows_{size}.{signal}", tally[signal] / count)
        mmd.report(report, f"false_alarms.rows_{size}", settings.multivariate.permutations)


# --- 3. sensitivity -----------------------------------------------------------------------------------


def sensitivity(report: Report, quick: bool, seed: int) -> None:
    section("3. sensitivity to injected shifts (features + MMD)")
    settings = DriftSettings()
    rng = np.random.default_rng(seed + 1)
    tiny_draws = 3 if quick else 10
    flagged_feature = flagged_block = 0
    mmd = MMDTally()
    for r in range(tiny_draws):
        stream = MixedStream(seed + 7000 + r)
        ref = stream.take(REF_ROWS)
        reference = fit_reference(ref, NUMERIC, CATEGORICAL, settings)
        column = NUMERIC[r % len(NUMERIC)]
        block = shift_numeric(stream.take(100_000), column, ref[column].std(), 0.02)
        verdict = block_verdict(reference, ref, block, settings, seed + r, tally=mmd)
        flagged_feature += feature_of(verdict, column).drifted
        flagged_block += verdict.drifted
    report.add("sensitivity.numeric_0.02sd_100k.shifted_feature_flagged", flagged_feature / tiny_draws, "0",
               flagged_feature == 0, note=f"{flagged_feature}/{tiny_draws} draws")
    report.add("sensitivity.numeric_0.02sd_100k.block_flagged", flagged_block / tiny_draws,
               note="any feature or MMD")

    refs, blocks = (4, 5) if quick else (10, 10)
    counts = {"num_block": 0, "num_feature": 0, "cat_block": 0, "cat_feature": 0, "corr_mmd": 0,
              "corr_features": 0}
    for r in range(refs):
        stream = MixedStream(seed + 8000 + r)
        ref = stream.take(REF_ROWS)
        reference = fit_reference(ref, NUMERIC, CATEGORICAL, settings)
        for j in range(blocks):
            k = r * blocks + j
            block = stream.take(1000)
            column = NUMERIC[k % len(NUMERIC)]
            verdict = block_verdict(reference, ref, shift_numeric(block, column, ref[column].std(), 0.5), settings,
                                    seed + k, tally=mmd)
            counts["num_block"] += verdict.drifted
            counts["num_feature"] += feature_of(verdict, column).drifted
            cat_column = CATEGORICAL[k % len(CATEGORICAL)]
            verdict = block_verdict(reference, ref, shift_category(block, cat_column, 0.10, rng), settings, seed + k,
                                    tally=mmd)
            counts["cat_block"] += verdict.drifted
            counts["cat_feature"] += feature_of(verdict, cat_column).drifted
            a, b = NUMERIC[k % 8], NUMERIC[(k + 3) % 8]
            verdict = block_verdict(reference, ref, couple(block, a, b, 1.0, rng), settings, seed + k, tally=mmd)
            counts["corr_mmd"] += bool(verdict.multivariate and verdict.multivariate.drifted)
            counts["corr_features"] += any(f.drifted for f in verdict.features)
    n = refs * blocks
    rate = counts["num_block"] / n
    report.add("sensitivity.numeric_0.5sd_1k.block_flagged", rate, ">= 0.95", rate >= 0.95, note=f"of {n} draws")
    report.add("sensitivity.numeric_0.5sd_1k.shifted_feature_flagged", counts["num_feature"] / n)
    report.add("sensitivity.categorical_10pt_1k.shifted_feature_flagged", counts["cat_feature"] / n,
               note="informational: one category's share moved 10 points")
    report.add("sensitivity.correlation_only_1k.mmd_flagged", counts["corr_mmd"] / n,
               note="informational: two columns made comonotone, marginals unchanged")
    report.add("sensitivity.correlation_only_1k.any_feature_flagged", counts["corr_features"] / n)
    mmd.report(report, "sensitivity", settings.multivariate.permutations)


# --- 4. concept drift ---------------------------------------------------------------------------------


def concept_streams(kind: str, seed: int, block: int, noise: float = 0.0):
    """(model, accuracy at promotion, error arrays per monitored block, index of the first drifted block)."""
    if kind == "sea":
        before = iter(synth.SEA(variant=seed % 4, seed=seed, noise=noise))
        after = iter(synth.SEA(variant=(seed + 2) % 4, seed=seed + 1000, noise=noise))
        model = LogisticRegression(max_iter=1000)
    else:
        before = iter(synth.Agrawal(classification_function=seed % 10, seed=seed))
        after = iter(synth.Agrawal(classification_function=(seed + 3) % 10, seed=seed + 1000))
        model = HistGradientBoostingClassifier(max_iter=100, random_state=seed)
    x, y = _take(before, 3 * block)
    model.fit(x, y.astype(int))
    xh, yh = _take(before, block)
    at_promotion = float((model.predict(xh) == yh.astype(int)).mean())
    errors = []
    for source, n in ((before, 5), (after, 3)):
        for _ in range(n):
            xb, yb = _take(source, block)
            errors.append((model.predict(xb) != yb.astype(int)).astype(int))
    return at_promotion, errors, 5


def detector_start(detector: str) -> tuple[str, str | None]:
    """`update_concept`'s detector name and starting state for one of `DETECTORS`."""
    return ("adwin", frouros_adwin_state()) if detector == "adwin_frouros" else (detector, None)


def concept_drift(report: Report, quick: bool, seed: int) -> None:
    section("4. abrupt concept drift (1,000-row blocks; 3 to train, 1 holdout, 5 before, 3 after)")
    settings = DriftSettings()
    seeds = range(seed, seed + (5 if quick else 10))
    scenarios = [("sea", 0.0, True), ("agrawal", 0.0, True), ("sea_noise_0.1", 0.1, False)]
    for name, noise, targeted in scenarios:
        kind = "sea" if name.startswith("sea") else "agrawal"
        runs = [concept_streams(kind, s, 1000, noise) for s in seeds]
        detections: dict[str, list[list[int]]] = {}
        for detector in DETECTORS:
            found = found_with_perf = false_alarms = pre_blocks = 0
            delays = []
            for at_promotion, errors, change in runs:
                name_of, state = detector_start(detector)
                flags = []
                for e in errors:
                    c = update_concept(name_of, state, e, max_rows=settings.concept_max_rows)
                    state = c.state
                    p = performance_drift("accuracy", at_promotion, 1.0 - e.mean(), settings.performance_tolerance)
                    flags.append((c.drift, assess((), None, c, p, settings).drifted, c.drift_rows))
                false_alarms += sum(f[1] for f in flags[:change])
                pre_blocks += change
                found += any(f[0] for f in flags[change:change + 2])
                found_with_perf += any(f[1] for f in flags[change:change + 2])
                hit = next((i for i, f in enumerate(flags[change:]) if f[0]), None)
                if hit is not None:
                    delays.append(hit * 1000 + flags[change + hit][2][0])
                detections.setdefault(detector, []).append([b * 1000 + r for b, f in enumerate(flags) for r in f[2]])
            n = len(runs)
            chosen = detector == settings.concept_detector
            met = (found_with_perf / n >= 0.9) if targeted and chosen else None
            report.add(f"concept.{name}.{detector}.flagged_within_2_blocks", found_with_perf / n,
                       ">= 0.9" if targeted and chosen else None, met,
                       note=f"detector alone {found}/{n}" + (" (default detector)" if chosen else ""))
            report.add(f"concept.{name}.{detector}.false_alarm_blocks_before", false_alarms / pre_blocks,
                       note=f"{false_alarms}/{pre_blocks} blocks before the change")
            report.add(f"concept.{name}.{detector}.median_rows_to_detection",
                       float(statistics.median(delays)) if delays else None)
        same = sum(a == b for a, b in zip(detections["adwin"], detections["adwin_frouros"], strict=True))
        earlier = [a[0] - b[0] for a, b in zip(detections["adwin"], detections["adwin_frouros"], strict=True)
                   if a and b]
        report.add(f"concept.{name}.adwin_river_vs_frouros.same_detection_rows", same / len(runs),
                   note=f"{same}/{len(runs)} runs; first detection River minus Frouros, median "
                        f"{statistics.median(earlier) if earlier else float('nan'):+.0f} rows over {len(earlier)} "
                        f"runs where both detected")


def steady_errors(report: Report, quick: bool, seed: int) -> None:
    section("4b. long steady error streams (no change): detections per 100,000 rows")
    rows = 20_000 if quick else 100_000
    for kind, model_noise in (("sea", 0.0), ("sea", 0.1)):
        stream = iter(synth.SEA(variant=0, seed=seed + 11, noise=model_noise))
        x, y = _take(stream, 3000)
        model = LogisticRegression(max_iter=1000).fit(x, y.astype(int))
        xs, ys = _take(stream, rows)
        errors = (model.predict(xs) != ys.astype(int)).astype(int)
        for detector in DETECTORS:
            name_of, state = detector_start(detector)
            detections = 0
            for start in range(0, rows, 2000):
                c = update_concept(name_of, state, errors[start:start + 2000])
                state, detections = c.state, detections + len(c.drift_rows)
            report.add(f"steady.{kind}_noise_{model_noise}.{detector}.detections_per_100k",
                       detections * 100_000 / rows, note=f"error rate {errors.mean():.3f}")


# --- 5. cost ------------------------------------------------------------------------------------------


def cost(report: Report, quick: bool, seed: int) -> None:
    section("5. cost: 20 features x 5,000 rows (reference 5,000 rows)")
    settings = DriftSettings()
    stream = MixedStream(seed + 9000)
    ref, block = stream.take(5000), stream.take(5000)
    reference = fit_reference(ref, NUMERIC, CATEGORICAL, settings)
    ref_np = {c: ref[c].to_numpy(dtype=float) for c in NUMERIC}
    block_np = {c: block[c].to_numpy(dtype=float) for c in NUMERIC}
    ref_cat = {c: ref[c].to_numpy() for c in CATEGORICAL}
    block_cat = {c: block[c].to_numpy() for c in CATEGORICAL}
    ks = {c: KSTest() for c in NUMERIC}
    chi = {c: ChiSquareTest() for c in CATEGORICAL}
    for c in NUMERIC:
        ks[c].fit(X=ref_np[c])
    for c in CATEGORICAL:
        chi[c].fit(X=ref_cat[c])

    def ours() -> None:
        check_features(reference, block, settings)

    def before() -> None:  # the code before: scipy's wasserstein_distance, re-sorting the reference every block
        with mock.patch("pipelines.drift.features.wasserstein_sorted", wasserstein_distance):
            check_features(reference, block, settings)

    def scipy_loop() -> None:
        for c in NUMERIC:
            ks_2samp(ref_np[c], block_np[c])
        for c in CATEGORICAL:
            a, b = ref[c].value_counts(), block[c].value_counts()
            both = a.index.union(b.index)
            chi2_contingency(np.array([b.reindex(both, fill_value=0), a.reindex(both, fill_value=0)]))

    def frouros_loop() -> None:
        for c in NUMERIC:
            ks[c].compare(X=block_np[c])
        for c in CATEGORICAL:
            chi[c].compare(X=block_cat[c])

    times = _interleaved({"ours": ours, "before": before, "scipy": scipy_loop, "frouros": frouros_loop},
                         7 if quick else 25)
    for base in ("scipy", "frouros"):
        ratio = times["ours"] / times[base]
        report.add(f"cost.per_feature_tests.ratio_vs_plain_{base}_loop", ratio, "<= 1.5", ratio <= 1.5,
                   note=f"ours {times['ours'] * 1e3:.1f} ms, plain loop {times[base] * 1e3:.1f} ms (median)")
    report.add("cost.per_feature_tests.ratio_vs_before", times["ours"] / times["before"], "< 1",
               times["ours"] < times["before"],
               note=f"ours {times['ours'] * 1e3:.1f} ms, with scipy's wasserstein_distance (the code before) "
                    f"{times['before'] * 1e3:.1f} ms")
    mv = settings.multivariate
    big_ref, big_block = stream.take(5000), stream.take(5000)
    used = check_multivariate(big_ref, big_block, NUMERIC, settings, seed).permutations_used
    seconds = statistics.median(_timed(lambda: check_multivariate(big_ref, big_block, NUMERIC, settings, seed))
                                for _ in range(3))
    report.add("cost.mmd_default_subsample_seconds", seconds, "< 2", seconds < 2.0,
               note=f"subsample {mv.subsample} per side, at most {mv.permutations} permutations "
                    f"({used} used), 14 columns")
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(5000, 20)), rng.normal(size=(5000, 20))
    seconds = statistics.median(_timed(lambda: mmd_test(x, y, subsample=mv.subsample, permutations=mv.permutations,
                                                        alpha=mv.alpha, seed=seed)) for _ in range(3))
    report.add("cost.mmd_default_subsample_20_columns_seconds", seconds, "< 2", seconds < 2.0)
    for rows, width in ((5000, 20), (1000, 10)):
        signal_costs(report, rows, width, 5 if quick else 15, seed)


def signal_costs(report: Report, rows: int, width: int, blocks: int, seed: int) -> None:
    """Milliseconds per block of each signal on drift-free blocks (median over `blocks` seeded blocks, the
    candidates taking turns), with the reference as large as a 5,000-row block."""
    numeric, categorical = (NUMERIC, CATEGORICAL) if width == 20 else (NUMERIC[:7], CATEGORICAL[:3])
    section(f"5b. cost per block of each signal: {rows:,} rows x {width} features ({len(numeric)} numeric; "
            f"reference 5,000 rows; {blocks} drift-free blocks)")
    settings = DriftSettings()
    stream = MixedStream(seed + 9100 + rows)
    ref = stream.take(5000)
    reference = fit_reference(ref, numeric, categorical, settings)
    frames = [stream.take(rows)[numeric + categorical] for _ in range(blocks)]
    rng = np.random.default_rng(seed)
    errors = [(rng.random(rows) < 0.1).astype(int) for _ in range(blocks)]  # a model with 10% errors
    warm = (rng.random(2000) < 0.1).astype(int)
    states = {d: update_concept(detector_start(d)[0], detector_start(d)[1], warm).state for d in DETECTORS}
    standard = (ref[numeric] - ref[numeric].mean()) / ref[numeric].std()
    x = standard.to_numpy()[:1000]
    sigma = check_multivariate(ref, frames[0], numeric, settings, seed).bandwidth
    used: list[int] = []

    def mmd(i: int) -> None:
        used.append(check_multivariate(ref, frames[i], numeric, settings, seed + i).permutations_used)

    def frouros_mmd(i: int) -> None:  # the floor of the MMD signal: one statistic, no bandwidth, no p-value
        y = ((frames[i][numeric] - ref[numeric].mean()) / ref[numeric].std()).to_numpy()[:1000]
        detector = MMD(kernel=partial(rbf_kernel, sigma=sigma))
        detector.fit(X=x)
        detector.compare(X=y)

    fns: dict[str, Callable[[int], Any]] = {
        "features": lambda i: check_features(reference, frames[i], settings),
        "mmd": mmd,
        "mmd_fixed_count": lambda i: check_multivariate(ref, frames[i], numeric, settings, seed + i, stop_early=False),
        "frouros_mmd_statistic": frouros_mmd,
        **{f"concept_{d}": partial(_concept, d, states[d], errors, settings.concept_max_rows) for d in DETECTORS},
    }
    times = _paired(fns, blocks)
    prefix = f"cost.block_{rows}x{width}"
    notes = {"features": "per-feature tests, effect sizes and BH", "frouros_mmd_statistic": "floor: Frouros' "
             "MMD on the same 1,000 rows per side, one statistic", "mmd_fixed_count": "every permutation",
             "mmd": f"sequential; permutations used: median {statistics.median(used):.0f} of "
                    f"{settings.multivariate.permutations}",
             "concept_adwin": "River's ADWIN (the default)", "concept_adwin_frouros": "Frouros' ADWIN (before)"}
    for name, seconds in times.items():
        report.add(f"{prefix}.{name}_ms", seconds * 1e3, note=notes.get(name, ""))
    total = times["features"] + times["mmd"] + times["concept_adwin"]
    report.add(f"{prefix}.default_signals_ms", total * 1e3,
               note=f"features + MMD + ADWIN; "
                    f"{(times['features'] + times['mmd_fixed_count'] + times['concept_adwin_frouros']) * 1e3:.0f} ms "
                    f"with the fixed-count MMD and Frouros' ADWIN instead")


def _concept(detector: str, state: str, errors: list[np.ndarray], max_rows: int, i: int) -> None:
    update_concept(detector_start(detector)[0], state, errors[i], max_rows=max_rows)


def _paired(fns: dict[str, Callable[[int], Any]], n: int) -> dict[str, float]:
    """Median seconds per call over inputs 0..n-1, every candidate on the same input in turn (order rotating)."""
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        fn(0)  # warm up
    names = list(fns)
    for i in range(n):
        for name in names[i % len(names):] + names[:i % len(names)]:
            started = time.perf_counter()
            fns[name](i)
            samples[name].append(time.perf_counter() - started)
    return {k: statistics.median(v) for k, v in samples.items()}


def _timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _interleaved(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median seconds per call, the candidates taking turns so that machine noise hits them alike."""
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()  # warm up
    for r in range(repeats):
        order = list(fns)[r % len(fns):] + list(fns)[:r % len(fns)]
        for name in order:
            samples[name].append(_timed(fns[name]))
    return {k: statistics.median(v) for k, v in samples.items()}


# --- main ---------------------------------------------------------------------------------------------


SECTIONS = {"calibration": calibrate, "false_alarms": false_alarms, "sensitivity": sensitivity,
            "concept": concept_drift, "steady": steady_errors, "cost": cost}


INFO_ROWS = ("sensitivity.categorical_10pt_1k.shifted_feature_flagged", "sensitivity.correlation_only_1k.mmd_flagged",
             "sensitivity.correlation_only_1k.any_feature_flagged")


def rows(report: dict) -> list:
    """The README rows of a `--json` report: every figure with a target, plus a few for information."""
    from benchmarks.report import Row

    def shown(value: Any) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    return [Row(key, shown(f["value"]), f["note"], f["target"] or "", f["met"])
            for key, f in report["figures"].items() if f["target"] is not None or key in INFO_ROWS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.drift_quality", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer blocks and seeds (smoke run)")
    parser.add_argument("--json", metavar="PATH", help="write every figure as JSON")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append", help="run only these sections")
    args = parser.parse_args(argv)
    report = Report()
    started = time.perf_counter()
    print(f"drift_quality: seed {args.seed}{' (quick)' if args.quick else ''}; defaults: "
          f"{_describe(DriftSettings())}", flush=True)
    for name, run in SECTIONS.items():
        if not args.only or name in args.only:
            run(report, args.quick, args.seed)
    missed = [k for k, v in report.figures.items() if v["met"] is False]
    print(f"\n{len(missed)} target(s) missed{': ' + ', '.join(missed) if missed else ''}; "
          f"{time.perf_counter() - started:.0f} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"seed": args.seed, "quick": args.quick, "figures": report.figures}, fh, indent=2)
    return 0


def _describe(settings: DriftSettings) -> str:
    mv = settings.multivariate
    return (f"alpha {settings.alpha} ({settings.correction}), {settings.numeric_effect} >= {settings.min_effect}, "
            f"JS >= {settings.min_effect_categorical}, MMD {mv.subsample}/{mv.permutations}/alpha {mv.alpha}, "
            f"{settings.concept_detector}, tolerance {settings.performance_tolerance}")


if __name__ == "__main__":
    sys.exit(main())
