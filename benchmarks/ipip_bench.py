"""IPIP against full retraining on a rare-event stream with a concept drift: minority-class F1, same run.

    python -m benchmarks.ipip_bench [--seeds 0,1,2,3,4] [--rates 0.01,0.02,0.03] [--blocks 12] [--rows 3000]
                                    [--json PATH]

The stream (`rare_event_stream`) has blocks of `rows` rows, a positive ("fraud") rate of `rate` and a concept
drift at block `drift_at`: the risk moves to other features and one feature's mean shifts. Every strategy
starts from the same `full` model of the first 3 blocks; then, block after block, each chain's current model
predicts the next block before seeing it (test-then-train), and the chain retrains on the labelled history
with that block as the new block (`build_round`, default holdout and `[retrain]` settings, window 3 blocks).
Each chain always takes its own candidate (no champion/challenger gate), so the figures compare the strategies,
not the promotion rule; the `ipip` chain passes its previous model as the champion, so its ensembles carry
over. `windowed` is a reference: a plain model on the same 3-block window IPIP trains on, which separates the
window's effect from the balanced resampling's. Reported per rate and seed: F1 of the minority class over
every predicted block (pooled), after the drift, and balanced accuracy; medians over seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score, f1_score

from pipelines.config.retrain import RetrainSettings
from pipelines.retraining.material import LabelledBlock
from pipelines.retraining.models import ModelSpec
from pipelines.retraining.strategies import build_round, run_strategy

FEATURES = ("x0", "x1", "x2", "x3", "x4", "x5", "channel")
CATEGORICAL = ("channel",)
TARGET = "label"
POSITIVE, NEGATIVE = "fraud", "ok"
SPEC = ModelSpec("sklearn.linear_model.LogisticRegression", {"max_iter": 1000})
STRATEGIES = ("ipip", "full", "windowed")
INITIAL_BLOCKS = 3

# Two concepts: before the drift the risk sits on x0, x1, x2 and the web channel; after it on x1, x3, x4 and
# the phone channel.
_WEIGHTS = (np.array([1.6, -1.2, 0.9, 0.0, 0.0, 0.5]), np.array([0.0, -1.2, 0.0, 1.6, 1.1, 0.5]))
_CHANNEL = ({"web": 0.8, "store": 0.0, "phone": -0.4}, {"web": -0.4, "store": 0.0, "phone": 0.9})


def _rows(rng: np.random.Generator, n: int, concept: int) -> tuple[pd.DataFrame, np.ndarray]:
    X = rng.normal(size=(n, 6))
    if concept == 1:
        X[:, 3] += 0.5
    channel = rng.choice(["web", "store", "phone"], size=n, p=[0.5, 0.3, 0.2])
    score = (
        X @ _WEIGHTS[concept] + np.vectorize(_CHANNEL[concept].get)(channel) + rng.normal(scale=0.6, size=n)
    )
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(6)])
    frame["channel"] = channel
    return frame, score


def rare_event_stream(
    seed: int, *, blocks: int = 12, rows: int = 3000, rate: float = 0.02, drift_at: int = 7
) -> list[LabelledBlock]:
    """Blocks b01.. of `rows` rows with about `rate` positives ("fraud", else "ok"); concept switch at `drift_at`.

    The label is "fraud" when a noisy risk score exceeds its concept's (1 - rate) quantile, taken once per
    concept on 200,000 rows of the same seed, so the positive rate stays near `rate` on both sides of the drift.

    >>> bs = rare_event_stream(0, blocks=2, rows=1000)
    >>> [b.block_id for b in bs], sorted(bs[0].frame["label"].unique())
    (['b01', 'b02'], ['fraud', 'ok'])
    """
    rng = np.random.default_rng(seed)
    cuts = [float(np.quantile(_rows(rng, 200_000, c)[1], 1.0 - rate)) for c in (0, 1)]
    out = []
    for i in range(1, blocks + 1):
        concept = int(i >= drift_at)
        frame, score = _rows(rng, rows, concept)
        frame[TARGET] = np.where(score > cuts[concept], POSITIVE, NEGATIVE)
        out.append(LabelledBlock(f"b{i:02d}", frame))
    return out


def run_chains(
    blocks: list[LabelledBlock], seed: int, settings: RetrainSettings, drift_at: int
) -> dict[str, dict[str, float]]:
    """Test-then-train over the stream for every strategy; figures per strategy."""
    first = build_round(
        blocks[:INITIAL_BLOCKS],
        [b.block_id for b in blocks[:INITIAL_BLOCKS]],
        settings,
        features=FEATURES,
        categorical=CATEGORICAL,
        target=TARGET,
        task="classification",
    )[0]
    initial = run_strategy("full", first, SPEC, settings, seed).model
    models = dict.fromkeys(STRATEGIES, initial)
    truth: list[np.ndarray] = []
    after: list[bool] = []
    preds: dict[str, list[np.ndarray]] = {s: [] for s in STRATEGIES}
    seconds = dict.fromkeys(STRATEGIES, 0.0)
    shares: list[float] = []
    for k in range(INITIAL_BLOCKS, len(blocks)):
        block = blocks[k]
        truth.append(block.frame[TARGET].to_numpy())
        after.extend([k + 1 >= drift_at] * len(block.frame))
        for name in STRATEGIES:
            preds[name].append(np.asarray(models[name].predict(block.frame[list(FEATURES)])))
        if k == len(blocks) - 1:
            break
        material, _, _ = build_round(
            blocks[: k + 1],
            [block.block_id],
            settings,
            features=FEATURES,
            categorical=CATEGORICAL,
            target=TARGET,
            task="classification",
        )
        for name in STRATEGIES:
            candidate = run_strategy(name, material, SPEC, settings, seed * 1000 + k, champion=models[name])
            models[name] = candidate.model
            seconds[name] += candidate.seconds
            if name == "ipip":
                shares.append(candidate.params["replacement_share"])
    y = np.concatenate(truth)
    late = np.array(after)
    out = {}
    for name in STRATEGIES:
        p = np.concatenate(preds[name])
        out[name] = {
            "f1_minority": float(f1_score(y, p, pos_label=POSITIVE, zero_division=0)),
            "f1_minority_after_drift": float(f1_score(y[late], p[late], pos_label=POSITIVE, zero_division=0)),
            "balanced_accuracy": float(balanced_accuracy_score(y, p)),
            "predicted_positive_rate": float(np.mean(p == POSITIVE)),
            "train_seconds": seconds[name],
        }
    out["ipip"]["mean_replacement_share"] = float(np.mean(shares))
    out["positive_rate"] = {"observed": float(np.mean(y == POSITIVE))}
    return out


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def rows(result: dict) -> list:
    """The README rows of a `--json` report (see benchmarks/report.py): one per positive rate."""
    from benchmarks.report import Row

    out = []
    for rate, s in result["median"].items():
        out.append(Row(
            f"minority-class F1, {float(rate):.0%} positives, median of {s['seeds']} seeds "
            f"(after the drift: ipip {s['ipip']['f1_minority_after_drift']:.3f} / full "
            f"{s['full']['f1_minority_after_drift']:.3f})",
            f"ipip {s['ipip']['f1_minority']:.3f} (wins {s['ipip_wins_f1_vs_full']}/{s['seeds']} seeds)",
            f"full {s['full']['f1_minority']:.3f}; windowed {s['windowed']['f1_minority']:.3f}",
            "ipip > full", s["ipip"]["f1_minority"] > s["full"]["f1_minority"]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ipip_bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds (default 0,1,2,3,4)")
    parser.add_argument("--rates", default="0.01,0.02,0.03", help="positive rates (default 0.01,0.02,0.03)")
    parser.add_argument("--blocks", type=int, default=12, help="blocks in the stream (default 12)")
    parser.add_argument("--rows", type=int, default=3000, help="rows per block (default 3000)")
    parser.add_argument("--drift-at", type=int, default=7, help="first block of the new concept (default 7)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    rates = [float(r) for r in args.rates.split(",")]
    settings = RetrainSettings(strategies=STRATEGIES, window_blocks=3)
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    runs = []
    for rate in rates:
        for seed in seeds:
            blocks = rare_event_stream(
                seed, blocks=args.blocks, rows=args.rows, rate=rate, drift_at=args.drift_at
            )
            figures = run_chains(blocks, seed, settings, args.drift_at)
            runs.append({"rate": rate, "seed": seed, **figures})
            log(
                f"rate {rate:.2f} seed {seed}: F1 minority ipip {figures['ipip']['f1_minority']:.3f}, "
                f"full {figures['full']['f1_minority']:.3f}, windowed {figures['windowed']['f1_minority']:.3f}"
            )
    summary = {}
    for rate in rates:
        mine = [r for r in runs if r["rate"] == rate]
        summary[str(rate)] = {
            name: {
                key: statistics.median(r[name][key] for r in mine)
                for key in (
                    "f1_minority",
                    "f1_minority_after_drift",
                    "balanced_accuracy",
                    "predicted_positive_rate",
                )
            }
            for name in STRATEGIES
        }
        summary[str(rate)]["ipip_wins_f1_vs_full"] = sum(
            r["ipip"]["f1_minority"] > r["full"]["f1_minority"] for r in mine
        )
        summary[str(rate)]["seeds"] = len(mine)
    result = {
        "command": " ".join(["python -m benchmarks.ipip_bench", *(sys.argv[1:] if argv is None else argv)]),
        "estimator": f"{SPEC.class_path}({SPEC.params})",
        "blocks": args.blocks,
        "rows": args.rows,
        "drift_at": args.drift_at,
        "runs": runs,
        "median": summary,
        "seconds": time.perf_counter() - started,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }
    for rate, s in summary.items():
        print(
            f"rate {rate}: median F1 minority ipip {s['ipip']['f1_minority']:.3f} vs full {s['full']['f1_minority']:.3f}"
            f" (windowed {s['windowed']['f1_minority']:.3f}); after drift ipip "
            f"{s['ipip']['f1_minority_after_drift']:.3f} vs full {s['full']['f1_minority_after_drift']:.3f}; "
            f"ipip > full in {s['ipip_wins_f1_vs_full']}/{s['seeds']} seeds"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
