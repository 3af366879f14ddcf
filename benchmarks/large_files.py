"""Peak memory of one large file going through `PipelineActor.ingest`, against the size of the frame it decodes to.

    python -m benchmarks.large_files [--quick] [--json PATH]

Each case writes one file of N rows x 20 numeric features (normal values with 3 decimals) plus a 0/1 target, as
CSV or Parquet, and ingests it in a fresh subprocess: a plain `PipelineActor` (no Ray: the pipeline waits for
1,000 labelled blocks, so no round starts and no drift check runs) that has already accepted a small block of
the same columns (so every import is loaded and the schema is fixed). The figure is the growth of the process's
peak RSS during that one `ingest` (Linux: VmHWM, reset through /proc/self/clear_refs just before), divided by
the decoded frame's size (`frame.memory_usage(deep=True).sum()` of the block `parse_file` returns for the same
bytes, measured in the same subprocess afterwards). The target is a peak within 3x the frame: the file's bytes,
the frame, and one more frame's worth of working space.

The last case of each format is a file over `[intake] max_rows`: it must be refused as `too_many_rows` at a
small cost (the frame it would have needed is given as rows x columns x 8 bytes). Full: 200,000, 1,000,000 and
2,000,000 rows accepted (the default `max_rows`), 3,000,000 refused. `--quick`: 100,000 and 300,000 accepted,
300,000 refused under `max_rows = 100000`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from benchmarks.report import Row, render

MB = 1024 * 1024
FEATURES = 20
TARGET_RATIO = 3.0
CHUNK_ROWS = 250_000
FULL = ((200_000, None), (1_000_000, None), (2_000_000, None), (3_000_000, None))  # (rows, max_rows or default)
QUICK = ((100_000, None), (300_000, None), (300_000, 100_000))
ROOT = Path(__file__).resolve().parents[1]


def columns(rows: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    data = {f"f{i}": np.round(rng.normal(0.0, 1.0, rows), 3) for i in range(FEATURES)}
    data["target"] = (data["f0"] + data["f1"] > 0).astype(np.int64)
    return data


def write_file(path: Path, rows: int, seed: int = 0) -> None:
    """Write `rows` rows in chunks, so the benchmark's own process never holds the whole table."""
    rng = np.random.default_rng(seed)
    writer = None
    try:
        for start in range(0, rows, CHUNK_ROWS):
            table = pa.table(columns(min(CHUNK_ROWS, rows - start), rng))
            if writer is None:
                writer = (pacsv.CSVWriter(str(path), table.schema) if path.suffix == ".csv"
                          else pq.ParquetWriter(str(path), table.schema))
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def config(max_rows: int | None) -> dict:
    """A pipeline that never starts a round here: only intake and storing the block are measured."""
    intake = {"max_file_mb": 4096} | ({"max_rows": max_rows} if max_rows is not None else {})
    return {"name": "large", "target": "target", "training": {"initial_blocks": 1000},
            "drift": {"multivariate": {"enabled": False}}, "intake": intake}


CHILD = """
import json, re, sys, time
from pathlib import Path
from calmops_actors.pipeline_actor import PipelineActor
from pipelines.core.intake import parse_file

def status(key):
    return int(re.search(key + r":\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1)) * 1024

home, warm, big, raw = sys.argv[1:5]
a = PipelineActor(home, "large")
a.configure(json.loads(raw), home)
assert a.ingest(warm)["outcome"] == "accepted"
before = status("VmRSS")
Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
started = time.perf_counter()
result = a.ingest(big)
seconds = time.perf_counter() - started
peak = status("VmHWM")
frame = 0
if result["outcome"] == "accepted":  # the frame intake gives for the same bytes, measured after the peak
    intake = parse_file(Path(big).name, Path(big).read_bytes(), a.intake_rules())
    frame = int(sum(b.frame.memory_usage(deep=True).sum() for b in intake.blocks))
print(json.dumps({"outcome": result["outcome"], "reason_code": result.get("reason_code"), "before": before,
                  "peak": peak, "frame": frame, "seconds": seconds}))
"""


def measure(work: Path, fmt: str, rows: int, max_rows: int | None) -> dict:
    """Ingest one file of `rows` rows in a fresh subprocess; its peak RSS growth and decoded frame size (bytes)."""
    big = work / f"rows{rows}.{fmt}"
    if not big.exists():
        write_file(big, rows)
    warm = work / f"warm.{fmt}"
    if not warm.exists():
        write_file(warm, 1_000, seed=1)
    home = work / f"home-{fmt}-{rows}-{max_rows}"
    shutil.rmtree(home, ignore_errors=True)
    done = subprocess.run([sys.executable, "-c", CHILD, str(home), str(warm), str(big), json.dumps(config(max_rows))],
                          cwd=ROOT, capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    shutil.rmtree(home, ignore_errors=True)
    if done.returncode != 0:
        raise RuntimeError(f"{fmt} {rows} rows: the measuring subprocess failed:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out.update(format=fmt, rows=rows, columns=FEATURES + 1, max_rows=max_rows, file_bytes=big.stat().st_size,
               estimated_frame=rows * (FEATURES + 1) * 8)
    return out


def run(cases: tuple[tuple[int, int | None], ...]) -> dict:
    started, load = time.monotonic(), os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="calmops-large-"))
    try:
        measured = [measure(work, fmt, rows, max_rows) for fmt in ("csv", "parquet") for rows, max_rows in cases]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"cases": measured, "seconds": time.monotonic() - started, "load_before": load,
            "load_after": os.getloadavg()[0]}


def ratio(case: dict) -> float:
    """Peak RSS growth over the decoded frame (the estimated one when the file was refused).

    >>> ratio({"before": 100 * 2**20, "peak": 400 * 2**20, "frame": 100 * 2**20, "estimated_frame": 1})
    3.0
    """
    return (case["peak"] - case["before"]) / (case["frame"] or case["estimated_frame"])


def rows(results: dict) -> list[Row]:
    out = []
    for c in results["cases"]:
        growth = (c["peak"] - c["before"]) / MB
        figure = f"{c['format']}, {c['rows']:,} rows x {c['columns']} columns, {c['file_bytes'] / MB:.0f} MB file"
        if c["outcome"] == "accepted":
            out.append(Row(figure, f"peak +{growth:,.0f} MB ({ratio(c):.2f}x the frame), {c['seconds']:.1f} s",
                           f"decoded frame {c['frame'] / MB:,.0f} MB", f"<= {TARGET_RATIO:g}x",
                           met=ratio(c) <= TARGET_RATIO))
        else:
            out.append(Row(f"{figure}, max_rows {c['max_rows'] or 'default'}",
                           f"{c['reason_code'] or c['outcome']}: peak +{growth:,.0f} MB ({ratio(c):.2f}x), "
                           f"{c['seconds']:.1f} s", f"would decode to {c['estimated_frame'] / MB:,.0f} MB",
                           "refused, peak < the file + 100 MB",
                           met=growth * MB < c["file_bytes"] + 100 * MB))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100,000 and 300,000 rows")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if not Path("/proc/self/clear_refs").exists():
        print("large_files needs Linux (/proc/self/clear_refs resets the peak RSS)", file=sys.stderr)
        return 2
    command = "python -m benchmarks.large_files" + (" --quick" if args.quick else "")
    results = run(QUICK if args.quick else FULL)
    print(f"`{command}` ({results['seconds']:.0f} s, load average {results['load_before']:.1f} -> "
          f"{results['load_after']:.1f} on {os.cpu_count()} CPUs)\n")
    print(render(rows(results)))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
