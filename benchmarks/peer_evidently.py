"""Peer comparison: our per-feature drift check against Evidently's DataDriftPreset, on the very same blocks.

    python -m benchmarks.peer_evidently [--quick] [--json PATH] [--no-install] [--seed N]

Why: a figure of ours means more next to a widely used tool run on the same data. The blocks are made
here, in the project venv, with the streams and shifts of `benchmarks/drift_quality.py` (imported, not
copied): the 20-feature mixed stream (14 numeric, 6 categorical), a 10,000-row reference per draw and
blocks of 1,000 and 5,000 rows. Each block is checked drift-free and with one known shift applied:

- `numeric_0.5sd`: one numeric column's mean moved by 0.5 reference sd (drift_quality's "must flag" case);
- `categorical_10pt`: 10 points of share moved from a column's most common category to the next;
- `correlation_only`: two numeric columns made comonotone, marginals unchanged. No per-feature test can
  see this; it is here to show the shared blind spot (our MMD test, left out below, is what sees it).

Both tools get the same parquet files. Evidently runs in its own venv, `benchmarks/.venv-evidently/`
(created on first use with `REQUIREMENTS`, about 1 GB and a few minutes; reused afterwards), because its
dependencies clash with ours: frouros pins numpy<2.2 and scipy<1.15, while pip resolves Evidently 0.7.23
to numpy 2.4 and scipy 1.17; and Evidently 0.7.23 fails to import under pandas 3, so pandas is pinned to
2.3.3 there. The worker, `benchmarks/peer/evidently_worker.py`, writes per-block JSON. Times are measured
inside each process (imports, start-up, parquet reading and one warm-up block excluded) as the median per
block, in wall time and in the process's CPU time; the CPU time is the fairer ratio on a shared machine,
because the two tools do not run at the same moment.

Ours: `check_features` with the default `DriftSettings` on a reference fitted once (`fit_reference`, not
timed; it is done once per reference), then `assess` with the default rule "any": the block drifts when
one feature does. KS per numeric column and chi-square per categorical column, Benjamini-Hochberg at
alpha 0.05, and the effect gates (Wasserstein >= 0.1 reference sd, Jensen-Shannon >= 0.04, base 2). The
MMD test, the concept detector and the performance check are left out: Evidently's preset has no
counterpart, so both sides test the same 20 columns one by one and nothing else.

Evidently (0.7, `Report([DataDriftPreset()])`, every default; `DataDefinition` names the same 14 numeric
and 6 categorical columns so that both sides type them alike; the label is in neither). Its defaults:

- per column, the test depends on the reference size. With more than 1,000 reference rows (as here) it
  uses no statistical test, only a distance against a fixed threshold: the Wasserstein distance divided by
  the reference sd (drift when >= 0.1) for numeric columns with more than 5 distinct values, and the
  Jensen-Shannon distance (natural log, so at most 0.83; drift when >= 0.1) for categorical columns and
  numeric ones with at most 5 values. With at most 1,000 reference rows it would use KS (numeric), chi-
  square (categorical) or a Z-test of proportions (binary), each at p < 0.05, with no multiple-testing
  correction;
- dataset drift when at least half of the columns drift (`drift_share = 0.5`).

Because one shifted column out of 20 never makes Evidently's dataset-drift flag, the tables also give
Evidently's "any column drifted" reading, which is our rule. Detection counts the shifted column among
those flagged (for `correlation_only`, any column). Evidently's run time includes the plotly figures that
`Report.run` always builds (about four fifths of its CPU time in a profile of a 20-column block), and each
column's distance is computed three times (for `ValueDrift`, `DriftedColumnsCount` and the preset's table);
that is what its users pay, so it is not taken out.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # 2 shared cores: no thread pools on either side

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.report import Row, fmt_ratio, fmt_seconds, render

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# numpy, pandas, benchmarks.drift_quality and pipelines.drift (river, frouros, scikit-learn: seconds to
# import on a loaded machine) are imported inside the functions that run the benchmark, so that `rows()`
# and its tests stay fast.

EVIDENTLY_VERSION = "0.7.23"
# pandas<3: Evidently 0.7.23 imports a pandas 2 internal (infer_dtype_from_object) that pandas 3 removed.
REQUIREMENTS = (f"evidently=={EVIDENTLY_VERSION}", "pandas==2.3.3", "pyarrow==26.0.1")
HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-evidently"
STAMP = VENV / "calmops-requirements.txt"
WORKER = HERE / "peer" / "evidently_worker.py"
SIZES = (1000, 5000)
KINDS = {"none": "drift-free", "numeric_0.5sd": "0.5 sd mean shift in one numeric column",
         "categorical_10pt": "10-point category share move", "correlation_only": "correlation-only change"}
FALSE_ALARM_TARGET = 0.05


# --- the peer's venv ----------------------------------------------------------------------------------


def venv_python(venv: Path = VENV) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def venv_ready(venv: Path = VENV, requirements: tuple[str, ...] = REQUIREMENTS) -> bool:
    """True when the venv was completed by `ensure_venv` with exactly these requirements."""
    stamp = venv / STAMP.name
    return venv_python(venv).exists() and stamp.exists() and \
        stamp.read_text(encoding="utf-8").split() == list(requirements)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(HERE.parent))
    except ValueError:
        return str(path)


def ensure_venv(install: bool, venv: Path | None = None) -> tuple[Path | None, str]:
    """The peer venv's python, creating the venv when allowed; (None, why) when it is not available.

    Never raises for a failed creation (no network, no disk): the reason is returned for the report.
    """
    venv = venv or VENV
    if venv_ready(venv):
        return venv_python(venv), "reused"
    if not install:
        return None, f"{_shown(venv)} is missing or incomplete (run without --no-install to create it)"
    try:
        venv.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return None, f"cannot create {_shown(venv)}: {exc}"
    log = venv / "install.log"
    print(f"peer_evidently: creating {_shown(venv)} (one time, a few minutes): "
          f"pip install {' '.join(REQUIREMENTS)}; log in {_shown(log)}", flush=True)
    started = time.perf_counter()
    steps = {"python -m venv": [sys.executable, "-m", "venv", str(venv)],
             "pip install": [str(venv_python(venv)), "-m", "pip", "install", "--disable-pip-version-check",
                             "--timeout", "60", "--retries", "2", *REQUIREMENTS]}
    with open(log, "w", encoding="utf-8") as out:
        for name, step in steps.items():
            try:
                done = subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, timeout=1800, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                return None, f"creating the peer venv failed at `{name}`: {exc}"
            if done.returncode != 0:
                out.flush()
                tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
                return None, (f"creating the peer venv failed at `{name}` (exit {done.returncode}; no network to "
                              f"PyPI?): {' / '.join(tail)}")
    (venv / STAMP.name).write_text("\n".join(REQUIREMENTS) + "\n", encoding="utf-8")
    return venv_python(venv), f"created in {time.perf_counter() - started:.0f} s"


# --- the blocks ---------------------------------------------------------------------------------------


def plan(quick: bool) -> tuple[int, int, tuple[str, ...]]:
    """(references, blocks per reference, kinds) per block size; every block is checked once per kind.

    Evidently costs about 3 CPU seconds per 20-column block (mostly plotly), so `--quick` is kept to 12
    Evidently runs and leaves out the correlation-only kind, which neither tool's per-feature tests see.
    """
    return (1, 2, ("none", "numeric_0.5sd", "categorical_10pt")) if quick else (3, 10, tuple(KINDS))


def make_jobs(seed: int, quick: bool, folder: Path) -> tuple[dict[str, pd.DataFrame], dict[str, str], list[dict]]:
    """Write references and blocks as parquet; return references in memory, their files, and the jobs."""
    import numpy as np

    from benchmarks.drift_quality import CATEGORICAL, NUMERIC, REF_ROWS, MixedStream

    refs, blocks, kinds = plan(quick)
    columns = NUMERIC + CATEGORICAL
    references: dict[str, pd.DataFrame] = {}
    files: dict[str, str] = {}
    jobs: list[dict] = []
    rng = np.random.default_rng(seed + 20_000)
    for size in SIZES:
        for r in range(refs):
            stream = MixedStream(seed + 20_000 + size + r)  # seeds no drift_quality section uses
            name = f"ref_{size}_{r}"
            references[name] = stream.take(REF_ROWS)[columns]
            files[name] = str(folder / f"{name}.parquet")
            references[name].to_parquet(files[name], index=False)
            ref = references[name]
            for j in range(blocks):
                k = r * blocks + j
                block = stream.take(size)[columns]
                for kind in kinds:
                    frame, target = shifted(kind, block, ref, k, rng)
                    job_id = f"{size}-{r}-{j}-{kind}"
                    path = folder / f"{job_id}.parquet"
                    frame.to_parquet(path, index=False)
                    jobs.append({"id": job_id, "size": size, "kind": kind, "target": target, "reference": name,
                                 "block": str(path)})
    return references, files, jobs


def shifted(kind: str, block: pd.DataFrame, ref: pd.DataFrame, k: int,
            rng: np.random.Generator) -> tuple[pd.DataFrame, str | None]:
    """Block `k` with shift `kind` applied as drift_quality's sensitivity section does; and the shifted column."""
    from benchmarks.drift_quality import CATEGORICAL, NUMERIC, couple, shift_category, shift_numeric

    if kind == "numeric_0.5sd":
        column = NUMERIC[k % len(NUMERIC)]
        return shift_numeric(block, column, ref[column].std(), 0.5), column
    if kind == "categorical_10pt":
        column = CATEGORICAL[k % len(CATEGORICAL)]
        return shift_category(block, column, 0.10, rng), column
    if kind == "correlation_only":
        return couple(block, NUMERIC[k % 8], NUMERIC[(k + 3) % 8], 1.0, rng), None
    return block, None


# --- the two tools ------------------------------------------------------------------------------------


def run_ours(references: dict[str, pd.DataFrame], jobs: list[dict]) -> dict[str, dict]:
    """Our per-feature check on every job, read back from its parquet file like the worker does."""
    import pandas as pd

    from benchmarks.drift_quality import CATEGORICAL, NUMERIC
    from pipelines.config.drift import DriftSettings
    from pipelines.drift.decision import assess
    from pipelines.drift.features import check_features, fit_reference

    settings = DriftSettings()
    fitted = {name: fit_reference(frame, NUMERIC, CATEGORICAL, settings) for name, frame in references.items()}

    def check(reference, block: pd.DataFrame) -> dict:
        verdict = assess(check_features(reference, block, settings), None, None, None, settings)
        return {"block_drift": verdict.drifted,
                "drifted_columns": sorted(f.name for f in verdict.features if f.drifted)}

    if jobs:
        check(fitted[jobs[0]["reference"]], pd.read_parquet(jobs[0]["block"]))  # warm-up, as for Evidently
    out: dict[str, dict] = {}
    started = time.perf_counter()
    for i, job in enumerate(jobs):
        block = pd.read_parquet(job["block"])
        t0, c0 = time.perf_counter(), time.process_time()
        result = check(fitted[job["reference"]], block)
        result["seconds"], result["cpu_seconds"] = time.perf_counter() - t0, time.process_time() - c0
        out[job["id"]] = result
        if (i + 1) % 40 == 0 or i + 1 == len(jobs):
            print(f"  ours: {i + 1}/{len(jobs)} blocks, {time.perf_counter() - started:.0f} s", flush=True)
    return out


def run_evidently(python: Path, files: dict[str, str], jobs: list[dict], folder: Path) -> dict:
    """The worker in the peer venv on the same files; its JSON (raises RuntimeError when it fails)."""
    from benchmarks.drift_quality import CATEGORICAL, NUMERIC

    manifest, out = folder / "manifest.json", folder / "evidently.json"
    manifest.write_text(json.dumps({"numeric": NUMERIC, "categorical": CATEGORICAL, "references": files,
                                    "jobs": [{k: j[k] for k in ("id", "reference", "block")} for j in jobs]}),
                        encoding="utf-8")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore", DO_NOT_TRACK="1",
               EVIDENTLY_DISABLE_TELEMETRY="1")
    env.pop("PYTHONPATH", None)
    errors = folder / "worker.err"
    with open(errors, "w", encoding="utf-8") as err:
        done = subprocess.run([str(python), str(WORKER), str(manifest), str(out)], env=env, stderr=err, check=False)
    if done.returncode != 0:
        tail = errors.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(f"the Evidently worker failed (exit {done.returncode}): {' / '.join(tail)}")
    return json.loads(out.read_text(encoding="utf-8"))


# --- figures ------------------------------------------------------------------------------------------


def flagged(job: dict, drifted_columns: list[str]) -> bool:
    """Did a tool catch what this job holds? The shifted column when there is one, else any column.

    >>> flagged({"kind": "numeric_0.5sd", "target": "rbf_1"}, ["rbf_2"])
    False
    >>> flagged({"kind": "correlation_only", "target": None}, ["rbf_2"])
    True
    """
    return job["target"] in drifted_columns if job["target"] else bool(drifted_columns)


def summarise(jobs: list[dict], ours: dict[str, dict], theirs: dict[str, dict]) -> dict[str, Any]:
    """Counts per block size, tool and kind, and median seconds per block: the `sizes` part of the JSON."""
    sizes: dict[str, Any] = {}
    for size in sorted({j["size"] for j in jobs}):
        mine = [j for j in jobs if j["size"] == size]
        entry: dict[str, Any] = {"ours": {}, "evidently": {}}
        for kind in KINDS:
            of_kind = [j for j in mine if j["kind"] == kind]
            if not of_kind:
                continue
            entry["ours"][kind] = {
                "n": len(of_kind),
                "flagged": sum(flagged(j, ours[j["id"]]["drifted_columns"]) for j in of_kind),
                "block_drift": sum(bool(ours[j["id"]]["block_drift"]) for j in of_kind)}
            entry["evidently"][kind] = {
                "n": len(of_kind),
                "flagged": sum(flagged(j, theirs[j["id"]]["drifted_columns"]) for j in of_kind),
                "any_column": sum(bool(theirs[j["id"]]["drifted_columns"]) for j in of_kind),
                "block_drift": sum(bool(theirs[j["id"]]["dataset_drift"]) for j in of_kind)}
            scores = [theirs[j["id"]]["scores"][j["target"]] for j in of_kind
                      if j["target"] and j["target"] in theirs[j["id"]].get("scores", {})]
            if scores:  # Evidently's distance for the shifted column, to set against its 0.1 threshold
                entry["evidently"][kind]["median_target_score"] = statistics.median(scores)
        for tool, results in (("ours", ours), ("evidently", theirs)):
            entry[tool]["median_seconds"] = statistics.median(results[j["id"]]["seconds"] for j in mine)
            entry[tool]["median_cpu_seconds"] = statistics.median(results[j["id"]]["cpu_seconds"] for j in mine)
            quiet = [j for j in mine if j["kind"] == "none"]
            entry[tool]["false_alarm_columns"] = dict(sorted(Counter(
                c for j in quiet for c in results[j["id"]]["drifted_columns"]).items()))
        sizes[str(size)] = entry
    return sizes


def _share(k: int, n: int) -> str:
    """
    >>> _share(3, 40)
    '3/40 (7.5%)'
    """
    return f"{k}/{n} ({100 * k / n:.3g}%)" if n else "0/0"


def rows(results: dict) -> list[Row]:
    """Table rows from the JSON that `main` writes; Evidently's figures go in `baseline`.

    The only target is ours: false alarms on drift-free blocks at most 5% of blocks.
    """
    if not results.get("available"):
        return [Row("Evidently peer comparison", "peer not available", results.get("reason", ""))]
    out: list[Row] = []
    for size, entry in sorted(results["sizes"].items(), key=lambda item: int(item[0])):
        at = f"{int(size):,} rows"
        ours, theirs = entry["ours"], entry["evidently"]
        for kind, label in KINDS.items():
            if kind not in ours:
                continue
            o, t = ours[kind], theirs[kind]
            if kind == "none":
                rate = o["block_drift"] / o["n"]
                out.append(Row(f"false alarms, {at} (drift-free blocks; ours: any feature)",
                               _share(o["block_drift"], o["n"]),
                               f"{_share(t['any_column'], t['n'])} any column; "
                               f"{_share(t['block_drift'], t['n'])} dataset drift",
                               f"<= {FALSE_ALARM_TARGET:.0%}", rate <= FALSE_ALARM_TARGET))
                continue
            what = "any column flagged" if kind == "correlation_only" else "shifted column flagged"
            out.append(Row(f"{label}, {at}: {what}", _share(o["flagged"], o["n"]),
                           f"{_share(t['flagged'], t['n'])}; {_share(t['block_drift'], t['n'])} dataset drift"))
        mine, peer = ours["median_seconds"], theirs["median_seconds"]
        out.append(Row(f"median time per block, {at} (20 columns, 10,000-row reference)", fmt_seconds(mine),
                       fmt_seconds(peer)))
        out.append(Row(f"time per block ours / Evidently, {at}", fmt_ratio(mine / peer) if peer else "n/a"))
        mine, peer = ours["median_cpu_seconds"], theirs["median_cpu_seconds"]
        out.append(Row(f"median CPU time per block, {at} (less sensitive to other load)",
                       f"{fmt_seconds(mine)} ({fmt_ratio(mine / peer) if peer else 'n/a'})", fmt_seconds(peer)))
    return out


# --- main ---------------------------------------------------------------------------------------------


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peer_evidently", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 blocks per kind and size, no correlation-only kind: 12 Evidently blocks, about a "
                        "minute of CPU (a smoke run, not the reported figures)")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument("--no-install", action="store_true",
                        help="do not create the Evidently venv; report the peer as unavailable when it is missing")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results: dict[str, Any] = {"benchmark": "peer_evidently", "seed": args.seed, "quick": args.quick,
                               "requirements": list(REQUIREMENTS), "load_average_start": _load()}
    python, how = ensure_venv(install=not args.no_install)
    code = 0
    if python is None:
        results |= {"available": False, "reason": how}
        print(f"peer_evidently: peer not available: {how}", flush=True)
    else:
        print(f"peer_evidently: Evidently venv {how}; seed {args.seed}{' (quick)' if args.quick else ''}",
              flush=True)
        with tempfile.TemporaryDirectory(prefix="peer-evidently-") as tmp:
            folder = Path(tmp)
            t0 = time.perf_counter()
            references, files, jobs = make_jobs(args.seed, args.quick, folder)
            print(f"  {len(jobs)} blocks written ({time.perf_counter() - t0:.0f} s)", flush=True)
            ours = run_ours(references, jobs)
            results["load_average_after_ours"] = _load()
            try:
                peer = run_evidently(python, files, jobs, folder)
            except (RuntimeError, OSError, ValueError) as exc:
                peer, code = None, 1
                results |= {"available": False, "reason": str(exc)}
                print(f"peer_evidently: {exc}", flush=True)
        if peer is not None:
            results |= {"available": True, "evidently_version": peer["evidently_version"],
                        "evidently_drift_share": peer["drift_share"],
                        "blocks_per_kind": plan(args.quick)[0] * plan(args.quick)[1],
                        "sizes": summarise(jobs, ours, peer["jobs"])}
    results["load_average_end"] = _load()
    results["seconds"] = round(time.perf_counter() - started, 1)
    print(render(rows(results)))
    print(f"peer_evidently: {results['seconds']:.0f} s; load average {results['load_average_end']}", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
    return code


if __name__ == "__main__":
    sys.exit(main())
