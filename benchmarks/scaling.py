"""How the end-to-end cost per block grows with rows per block, features and concurrent pipelines, against the
plain loop's growth at the same sizes: the fitted exponent b of time ~ size^b for each.

    python -m benchmarks.scaling [--quick] [--json PATH]

Three dimensions, each on blocks without drift (so no retraining: the monitoring path, as in `e2e_bench`):

- rows per block: 1,000, 10,000, 100,000 rows of 20 features (`--quick`: 1,000, 10,000, 50,000);
- features: 10, 50, 200 features of 5,000 rows (`--quick`: 10, 50, 100);
- concurrent pipelines: 1, 5, 20 pipelines (`--quick`: 1, 3, 6), each a real Ray actor spawned by
  `runtime.spawn_actor` into one shared home (one log, as under `calmops serve`), each ingesting the same
  number of blocks of 1,000 rows x 10 features at once; the figure is the wall time until all are done.

For rows and features the actor side is `e2e_bench.actor_side` (the real `PipelineActor` in this process; its
MMD test runs as a Ray task), the time per block being the mean over the timed blocks; the first block of each
pipeline trains the champion and is not timed, and a small untimed pipeline warms Ray's workers up first. The
baseline, measured in the same run on the same files, is `e2e_bench.floor_side`: the same monitoring work in a
plain loop (read, score, errors, per-feature tests, MMD, concept detector). For concurrency the floor is that
plain loop over all N x K timed blocks, one after the other in one process.

b comes from least squares on log(time) against log(size). The issue asks that cost grow linearly; the target
is b <= 1.1 for the actor side. The floor's exponent says how much of the growth the tests themselves bring.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import tempfile
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path

from benchmarks.report import Row, fmt_ratio, fmt_seconds

TARGET_EXPONENT = 1.1

# the sizes each dimension runs at
FULL = {"rows": (1_000, 10_000, 100_000), "features": (10, 50, 200), "pipelines": (1, 5, 20)}
QUICK = {"rows": (1_000, 10_000, 50_000), "features": (10, 50, 100), "pipelines": (1, 3, 6)}
FIXED_FEATURES = 20  # rows dimension
FIXED_ROWS = 5_000  # features dimension
SMALL = (1_000, 10)  # rows, features of each block in the concurrency dimension

LABELS = {"rows": "rows per block", "features": "features", "pipelines": "concurrent pipelines"}


def fit_exponent(sizes: Sequence[float], times: Sequence[float]) -> float:
    """The b of time = a * size^b that fits best in the least-squares sense on log-log axes.

    >>> round(fit_exponent([1, 10, 100], [2.0, 20.0, 200.0]), 6)
    1.0
    >>> round(fit_exponent([1, 2, 4], [3.0, 12.0, 48.0]), 6)
    2.0
    """
    if len(sizes) != len(times) or len(sizes) < 2:
        raise ValueError("need at least two (size, time) pairs of equal length")
    if any(s <= 0 for s in sizes) or any(t <= 0 for t in times):
        raise ValueError("sizes and times must be positive")
    xs = [math.log(s) for s in sizes]
    ys = [math.log(t) for t in times]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("sizes must not all be equal")
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def timed_blocks(dimension: str, size: int, quick: bool) -> int:
    """How many blocks are timed per pipeline at this size (fewer where one block takes long)."""
    if dimension == "pipelines":
        return 2 if quick else 3
    if quick:
        return 2
    return 3 if (dimension == "rows" and size >= 100_000) else 4


def block_shape(dimension: str, size: int) -> tuple[int, int]:
    """(rows, features) of each block at this point of the dimension."""
    if dimension == "rows":
        return size, FIXED_FEATURES
    if dimension == "features":
        return FIXED_ROWS, size
    return SMALL


def measure_single(size: int, dimension: str, quick: bool) -> dict:
    """One pipeline, in process: seconds per block through the actor and through the plain loop."""
    from benchmarks.e2e_bench import actor_side, floor_side, make_blocks

    rows, features = block_shape(dimension, size)
    n = timed_blocks(dimension, size, quick)
    root = Path(tempfile.mkdtemp(prefix=f"calmops-scaling-{dimension}-"))
    try:
        files = make_blocks(root / "incoming", n + 1, rows, features)
        actor_seconds, summary = actor_side(root, files)
        floor_seconds = floor_side(root, files)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"size": size, "rows": rows, "features": features, "timed_blocks": n,
            "actor_s": actor_seconds / n, "floor_s": floor_seconds / n,
            "drifts": summary["drifts"], "retrain_rounds": summary["rounds"] - 1}


def renamed_copies(files: list[Path], folder: Path, prefix: str) -> list[Path]:
    """Copies of `files` whose feature columns carry `prefix`: other bytes (so other artifacts and file hashes),
    the same values (so the same decisions in every pipeline: a false alarm in one would start a round and
    time training instead of monitoring)."""
    if prefix == "bench":
        return files
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for f in files:
        header, _, body = f.read_text().partition("\n")
        names = [c if c == "target" else f"{prefix}_{c}" for c in header.split(",")]
        out.append(folder / f.name)
        out[-1].write_text(",".join(names) + "\n" + body)
    return out


def measure_concurrent(levels: Sequence[int], quick: bool) -> list[dict]:
    """max(levels) real Ray actors in one home; at each level the first N ingest K new blocks each at once.

    The actors are spawned and their champions trained once, before any timing, so each level times only the
    ingestion: total wall time until all N x K blocks are recorded, and the plain loop over the same blocks.
    """
    import ray

    from benchmarks.e2e_bench import CONFIG, floor_side, make_blocks
    from calmops_actors.runtime import spawn_actor

    rows, features = SMALL
    k = timed_blocks("pipelines", max(levels), quick)
    root = Path(tempfile.mkdtemp(prefix="calmops-scaling-pipelines-"))
    names = ["bench"] + [f"bench-{i:02d}" for i in range(1, max(levels))]  # floor_side reads pipeline "bench"
    actors: list = []
    points = []
    try:
        base = make_blocks(root / "incoming" / "bench", 1 + k * len(levels), rows, features)
        files = {name: renamed_copies(base, root / "incoming" / name, name) for name in names}
        actors = [spawn_actor(root / "home", name) for name in names]
        configs = [tomllib.loads(CONFIG.replace('name = "bench"', f'name = "{name}"')) for name in names]
        ray.get([a.configure.remote(c, str(root)) for a, c in zip(actors, configs, strict=True)])
        # the first block of each trains its champion: not timed
        ray.get([a.ingest.remote(str(files[name][0]), True) for a, name in zip(actors, names, strict=True)])
        for j, n in enumerate(levels):
            t0 = time.monotonic()
            chunk = slice(1 + j * k, 1 + (j + 1) * k)
            before = ray.get([a.summary.remote() for a in actors[:n]])
            start = time.perf_counter()
            ray.get([a.ingest.remote(str(f), True) for a, name in zip(actors[:n], names, strict=False)
                     for f in files[name][chunk]])
            actor_seconds = time.perf_counter() - start
            after = ray.get([a.summary.remote() for a in actors[:n]])
            floor_seconds = floor_side(root, [base[0], *base[chunk] * n])
            points.append({"size": n, "rows": rows, "features": features, "timed_blocks": k,
                           "actor_s": actor_seconds, "floor_s": floor_seconds,
                           "drifts": sum(a["drifts"] - b["drifts"] for a, b in zip(after, before, strict=True)),
                           "retrain_rounds": sum(a["rounds"] - b["rounds"]
                                                 for a, b in zip(after, before, strict=True)),
                           "wall_s": time.monotonic() - t0})
            print_point("pipelines", points[-1])
    finally:
        for a in actors:
            ray.kill(a)
        shutil.rmtree(root, ignore_errors=True)
    return points


def print_point(dimension: str, point: dict) -> None:
    print(f"  {LABELS[dimension]} {point['size']:>7,}: actor {fmt_seconds(point['actor_s'])}, "
          f"plain loop {fmt_seconds(point['floor_s'])} ({fmt_ratio(point['actor_s'] / point['floor_s'])}; "
          f"drifts {point['drifts']}; {point['wall_s']:.0f} s in all)", flush=True)


def run(quick: bool, dimensions: Sequence[str]) -> dict:
    import ray

    sizes = QUICK if quick else FULL
    results: dict = {"quick": quick, "cpus": os.cpu_count(), "load_before": os.getloadavg()[0],
                     "target_exponent": TARGET_EXPONENT, "dimensions": {}}
    started = time.monotonic()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        # not recorded: the first MMD and training tasks start and import into Ray's workers, which would land
        # in the first timed point and flatten the curve
        t0 = time.monotonic()
        measure_single(500, "rows", quick=True)
        results["warm_up_s"] = time.monotonic() - t0
        for dimension in dimensions:
            t0, load0 = time.monotonic(), os.getloadavg()[0]
            if dimension == "pipelines":
                points = measure_concurrent(sizes[dimension], quick)
            else:
                points = []
                for size in sizes[dimension]:
                    t1 = time.monotonic()
                    points.append(measure_single(size, dimension, quick))
                    points[-1]["wall_s"] = time.monotonic() - t1  # set-up, training and both sides
                    print_point(dimension, points[-1])
            results["dimensions"][dimension] = {
                "points": points, "seconds": time.monotonic() - t0, "load_before": load0,
                "load_after": os.getloadavg()[0],
                "exponent": fit_exponent([p["size"] for p in points], [p["actor_s"] for p in points]),
                "floor_exponent": fit_exponent([p["size"] for p in points], [p["floor_s"] for p in points])}
    finally:
        ray.shutdown()
    results["seconds"] = time.monotonic() - started
    results["load_after"] = os.getloadavg()[0]
    return results


def _sizes(points: list[dict]) -> str:
    return ", ".join(f"{p['size']:,}" for p in points)


def _times(points: list[dict], key: str) -> str:
    return " / ".join(fmt_seconds(p[key]) for p in points)


def rows(results: dict) -> list[Row]:
    """Per dimension: the actor's exponent against the plain loop's (judged), then the ratio at each size and
    the exponent between the two largest sizes alone (information: fixed per-block costs, such as the MMD
    test's fixed subsample, flatten the curve at small sizes, so the fit over all sizes can hide the top end's
    growth)."""
    out = []
    target = results.get("target_exponent", TARGET_EXPONENT)
    for dimension, d in results["dimensions"].items():
        points = d["points"]
        sizes = [p["size"] for p in points]
        b = fit_exponent(sizes, [p["actor_s"] for p in points])
        floor_b = fit_exponent(sizes, [p["floor_s"] for p in points])
        first = points[0]
        if dimension == "rows":
            what = f"time per block vs rows per block ({_sizes(points)}; {first['features']} features)"
        elif dimension == "features":
            what = f"time per block vs features ({_sizes(points)}; {first['rows']:,} rows)"
        else:
            what = (f"wall time for all pipelines vs concurrent pipelines ({_sizes(points)}; "
                    f"{first['timed_blocks']} blocks of {first['rows']:,} rows x {first['features']} each)")
        drifts = sum(p["drifts"] for p in points)
        note = "" if drifts == 0 else f"; {drifts} drift(s) seen, so not only the monitoring path"
        out.append(Row(f"{what}: exponent b", f"b = {b:.2f} ({_times(points, 'actor_s')}{note})",
                       f"plain loop b = {floor_b:.2f} ({_times(points, 'floor_s')})",
                       f"b <= {target:g}", met=b <= target))
        ratios = ", ".join(f"{p['size']:,}: {fmt_ratio(p['actor_s'] / p['floor_s'])}" for p in points)
        top = fit_exponent(sizes[-2:], [p["actor_s"] for p in points[-2:]])
        floor_top = fit_exponent(sizes[-2:], [p["floor_s"] for p in points[-2:]])
        out.append(Row(f"{LABELS[dimension]}: actor / plain loop at each size; b between the two largest sizes",
                       f"{ratios}; top b = {top:.2f}", f"plain loop = 1.00x; top b = {floor_top:.2f}"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="smaller top sizes (50k rows, 100 features, 6 pipelines) and fewer blocks")
    parser.add_argument("--only", choices=sorted(FULL), action="append", default=None,
                        help="run only this dimension (repeatable); default: all three")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    dimensions = args.only or list(FULL)
    print(f"scaling ({'quick' if args.quick else 'full'}), load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs", flush=True)
    results = run(args.quick, dimensions)
    print(f"done in {results['seconds']:.0f} s, load average {results['load_after']:.1f}")
    for row in rows(results):
        verdict = f"  [{row.verdict()}]" if row.target else ""
        print(f"- {row.figure}: {row.measured}; {row.baseline}{verdict}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
