"""Run Evidently's DataDriftPreset on blocks given as parquet files; write per-block results as JSON.

    benchmarks/.venv-evidently/bin/python benchmarks/peer/evidently_worker.py MANIFEST OUT

Runs inside `benchmarks/.venv-evidently/` (created by `benchmarks/peer_evidently.py`), never in the project
venv: it imports only the standard library, pandas and Evidently. MANIFEST is JSON:

    {"numeric": [...], "categorical": [...], "references": {"name": "ref.parquet"},
     "jobs": [{"id": "...", "reference": "name", "block": "block.parquet"}, ...]}

OUT gets `{"evidently_version", "drift_share", "jobs": {id: {"dataset_drift", "share", "drifted_columns",
"scores", "methods", "seconds", "cpu_seconds"}}}`. `seconds` is the wall time inside this process from the
two DataFrames to the result dictionary (Dataset wrapping, `Report.run`, `Snapshot.dict()`), `cpu_seconds` this process's CPU
time for the same span: reading parquet, imports and one warm-up run are excluded.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

DRIFT_SHARE = 0.5  # DataDriftPreset's default: the dataset drifts when >= 50% of its columns drift


def check(reference: pd.DataFrame, block: pd.DataFrame, definition) -> dict:
    """One block through the preset with every default, as a user would run it; the verdict as plain data."""
    # imported here (a dictionary lookup after the first call) so that the project's tests can import
    # `read_snapshot` without Evidently (and quickly)
    from evidently import Dataset, Report
    from evidently.presets import DataDriftPreset

    snapshot = Report([DataDriftPreset(drift_share=DRIFT_SHARE)], include_tests=True).run(
        Dataset.from_pandas(block, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition))
    return read_snapshot(snapshot.dict())


def read_snapshot(result: dict) -> dict:
    """Dataset drift, drifted columns and scores from `Snapshot.dict()` (per-column verdicts are its tests)."""
    share = None
    scores, methods = {}, {}
    for metric in result["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
        elif config.get("type", "").endswith("ValueDrift"):
            scores[config["column"]] = float(metric["value"])
            methods[config["column"]] = f"{config.get('method')} >= {config.get('threshold')}"
    drifted = sorted(t["metric_config"]["params"]["column"] for t in result["tests"]
                     if t.get("id") == "drift" and t["status"] == "FAIL")
    if share is None:
        raise RuntimeError("DriftedColumnsCount missing from the snapshot; has Evidently's preset changed?")
    return {"dataset_drift": share >= DRIFT_SHARE, "share": share, "drifted_columns": drifted,
            "scores": scores, "methods": methods}


def main(argv: list[str]) -> int:
    import pandas as pd
    from evidently import DataDefinition, __version__

    manifest_path, out_path = argv
    with open(manifest_path, encoding="utf-8") as fh:
        manifest = json.load(fh)
    definition = DataDefinition(numerical_columns=list(manifest["numeric"]),
                                categorical_columns=list(manifest["categorical"]))
    references = {name: pd.read_parquet(path) for name, path in manifest["references"].items()}
    jobs = manifest["jobs"]
    results: dict[str, dict] = {}
    if jobs:  # warm-up: lazy imports and first-call caches inside Evidently and plotly
        first = jobs[0]
        check(references[first["reference"]], pd.read_parquet(first["block"]), definition)
    started = time.perf_counter()
    for i, job in enumerate(jobs):
        block = pd.read_parquet(job["block"])
        t0, c0 = time.perf_counter(), time.process_time()
        verdict = check(references[job["reference"]], block, definition)
        verdict["seconds"], verdict["cpu_seconds"] = time.perf_counter() - t0, time.process_time() - c0
        results[job["id"]] = verdict
        if (i + 1) % 10 == 0 or i + 1 == len(jobs):
            print(f"  evidently: {i + 1}/{len(jobs)} blocks, {time.perf_counter() - started:.0f} s",
                  flush=True)
    with open(out_path, "w", encoding="utf-8") as fh:
        json.dump({"evidently_version": __version__, "drift_share": DRIFT_SHARE, "jobs": results}, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
