"""Run NannyML's CBPE on a model's outputs given as parquet files; write per-block estimates as JSON.

    benchmarks/.venv-nannyml/bin/python benchmarks/peer/nannyml_worker.py MANIFEST OUT

Runs inside `benchmarks/.venv-nannyml/` (created by `benchmarks/peer_nannyml.py`), never in the project venv:
it imports only the standard library, pandas and NannyML. MANIFEST is JSON:

    {"units": [{"id": "...", "classes": ["0", "1"], "reference": "ref.parquet",
                "blocks": [{"id": "...", "path": "block.parquet"}, ...], "batch": ["block id", ...]}]}

Each file holds the model's own (uncalibrated) probability of each class in `p_<class>`, its prediction in
`y_pred` and, in the reference only, the label in `y_true`; class names are strings. One CBPE per unit is
fitted on the reference (the rows our calibration is fitted on) with every default (isotonic calibration)
and `chunk_number=1`, so that each `estimate` call on one block is one chunk: a block is estimated when it
arrives, as the product does. Metrics: accuracy and ROC AUC, and for more than two classes F1 (NannyML's
multiclass F1 is the macro average; its binary F1 is the positive class's, which is not ours, so it is left
out).

OUT gets `{"nannyml_version", "units": {id: {"fit_cpu_seconds", "batch_cpu_seconds_per_block"}},
"blocks": {id: {"metrics", "sampling_error", "lower", "upper", "cpu_seconds"}}}`. `cpu_seconds` is this
process's CPU time for the `estimate` call on the block's DataFrame; reading parquet, imports and one
warm-up unit are excluded. `lower`/`upper` are NannyML's confidence band (`lower_confidence_boundary`,
`upper_confidence_boundary`: the estimate -/+ 3 sampling errors, clipped to [0, 1]). `batch` names blocks
(of one scenario) that are also estimated in one call, one chunk per block (`chunk_size` = the block's
rows), to show what NannyML costs per block when it is given many at once.
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

METRICS = {"accuracy": "accuracy", "roc_auc": "roc_auc", "f1": "f1_macro"}  # NannyML's name -> ours


def make_estimator(classes: list[str], **chunking: Any):
    """A CBPE for these classes (binary: the second class is the positive one), with every other default."""
    import nannyml as nml

    binary = len(classes) == 2
    metrics = ["accuracy", "roc_auc"] + ([] if binary else ["f1"])
    return nml.CBPE(problem_type="classification_binary" if binary else "classification_multiclass",
                    y_pred_proba=f"p_{classes[1]}" if binary else {c: f"p_{c}" for c in classes},
                    y_pred="y_pred", y_true="y_true", metrics=metrics, **chunking)


def read_rows(table: pd.DataFrame) -> list[dict]:
    """Per chunk: each metric's estimate, sampling error and band, from `Result.to_df()` (two-level columns)."""
    out = []
    for _, row in table.iterrows():
        entry: dict[str, dict[str, float | None]] = {"metrics": {}, "sampling_error": {}, "lower": {}, "upper": {}}
        for theirs, ours in METRICS.items():
            if (theirs, "value") not in table.columns:
                continue
            for key, column in (("metrics", "value"), ("sampling_error", "sampling_error"),
                                ("lower", "lower_confidence_boundary"), ("upper", "upper_confidence_boundary")):
                value = float(row[(theirs, column)])
                entry[key][ours] = value if math.isfinite(value) else None
        out.append(entry)
    return out


def run_unit(unit: dict, blocks: dict[str, pd.DataFrame]) -> tuple[dict, dict[str, dict]]:
    """Fit on the unit's reference, estimate each block alone, then the batch blocks in one call."""
    import pandas as pd

    reference = pd.read_parquet(unit["reference"])
    estimator = make_estimator(unit["classes"], chunk_number=1)
    c0 = time.process_time()
    estimator.fit(reference)
    info: dict[str, Any] = {"fit_cpu_seconds": time.process_time() - c0}
    results: dict[str, dict] = {}
    for block in unit["blocks"]:
        frame = blocks[block["id"]]
        c0 = time.process_time()
        result = estimator.estimate(frame)
        cpu = time.process_time() - c0
        (entry,) = read_rows(result.filter(period="analysis").to_df())
        results[block["id"]] = entry | {"cpu_seconds": cpu}
    batch = [blocks[b] for b in unit.get("batch", [])]
    if batch:
        batched = make_estimator(unit["classes"], chunk_size=len(batch[0]))
        batched.fit(reference)
        frame = pd.concat(batch, ignore_index=True)
        c0 = time.process_time()
        batched.estimate(frame)
        info["batch_cpu_seconds_per_block"] = (time.process_time() - c0) / len(batch)
    return info, results


def main(argv: list[str]) -> int:
    import pandas as pd
    from nannyml import __version__

    manifest_path, out_path = argv
    with open(manifest_path, encoding="utf-8") as fh:
        units = json.load(fh)["units"]
    warnings.simplefilter("ignore")  # "the resulting number of chunks is too low": one chunk per block is meant
    units_out: dict[str, dict] = {}
    blocks_out: dict[str, dict] = {}
    started = time.perf_counter()
    for i, unit in enumerate(units):
        blocks = {b["id"]: pd.read_parquet(b["path"]) for b in unit["blocks"]}
        if i == 0:  # warm-up: lazy imports and first-call caches inside NannyML, pandas and scikit-learn
            run_unit(unit, blocks)
        units_out[unit["id"]], results = run_unit(unit, blocks)
        blocks_out.update(results)
        if (i + 1) % 10 == 0 or i + 1 == len(units):
            print(f"  nannyml: {i + 1}/{len(units)} fitted models, {len(blocks_out)} blocks, "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
    with open(out_path, "w", encoding="utf-8") as fh:
        json.dump({"nannyml_version": __version__, "units": units_out, "blocks": blocks_out}, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
