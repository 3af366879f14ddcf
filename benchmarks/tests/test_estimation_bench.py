"""benchmarks/estimation.py, benchmarks/peer_nannyml.py and the NannyML worker: bookkeeping and a tiny run
(no NannyML venv, no network); shapes and rules, never a measured figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import estimation as bench
from benchmarks import peer_nannyml as peer
from benchmarks.report import Row, render


def _block(i: int, scenario: str = "covariate", *, switched: bool = False, block: int = 0, realised: float = 0.80,
           estimate: float = 0.82, interval: tuple[float, float] = (0.79, 0.85)) -> dict:
    return {"id": f"b{i}", "unit": "u", "scenario": scenario, "rows": 1000, "classes": 2, "model": "lr", "seed": 0,
            "block": block, "shift": 0.0, "switched": switched, "realised": {"accuracy": realised},
            "metrics": {"accuracy": estimate}, "interval": {"accuracy": list(interval)}, "estimated_drop": False,
            "cpu_seconds": 0.02, "cbpe_cpu_seconds": 0.01 if scenario == "covariate" else None}


def _peer(ids: list[str], value: float = 0.85, se: float = 0.01) -> dict:
    return {"units": {"u": {"fit_cpu_seconds": 0.1, "batch_cpu_seconds_per_block": 0.004}},
            "blocks": {i: {"metrics": {"accuracy": value}, "sampling_error": {"accuracy": se},
                           "lower": {"accuracy": value - 3 * se}, "upper": {"accuracy": value + 3 * se},
                           "cpu_seconds": 0.01} for i in ids}}


UNIT = {"id": "u", "rows": 1000, "classes": 2, "model": "lr", "seed": 0, "method": "isotonic", "ece": 0.02,
        "ece_uncalibrated": 0.03, "calibration_cpu_seconds": 0.2, "at_promotion": {"accuracy": 0.80}}


def test_metric_figures_count_absolute_error_in_points_and_coverage_inclusive() -> None:
    blocks = [_block(0), _block(1, realised=0.87)]
    figures = bench.metric_figures(blocks, _peer(["b0", "b1"])["blocks"], "accuracy")
    assert figures["ours"]["n"] == 2
    assert figures["ours"]["mae"] == pytest.approx(3.5)  # |0.82 - 0.80| and |0.82 - 0.87|: 2 and 5 points
    assert figures["ours"]["coverage"] == pytest.approx(0.5)  # 0.87 is outside 0.79-0.85
    assert figures["nannyml"]["coverage"] == pytest.approx(0.5)  # 0.80 is outside 0.82-0.88, 0.87 inside
    assert figures["nannyml"]["coverage_1.96se"] == pytest.approx(0.0)  # both more than 0.0196 from 0.85


def test_summarise_gives_one_cell_per_scenario_and_concept_figures_where_the_rule_switches() -> None:
    blocks = [_block(i, block=i) for i in range(3)]
    blocks += [_block(10 + i, "concept", switched=i >= 1, block=bench.SWITCH - 1 + i,
                      realised=0.80 if i == 0 else 0.60) for i in range(3)]
    summary = bench.summarise([UNIT], blocks, _peer([b["id"] for b in blocks]))
    assert list(summary["cells"]) == ["covariate/1000/2/lr", "concept/1000/2/lr"]
    covariate, concept = summary["cells"].values()
    assert "concept" not in covariate and covariate["cpu"]["nannyml_batched"] == pytest.approx(0.004)
    assert concept["cpu"]["ours_cbpe_only"] is None  # the arithmetic alone is timed on covariate blocks only
    k = concept["concept"]
    assert (k["seeds"], k["detected"]) == (1, 1)  # 0.80 at promotion, 0.60 on the first block after the switch
    assert k["flagged_before_switch"] == pytest.approx(0.0)
    assert k["realised_drop"] == pytest.approx(20.0)
    assert set(summary["calibration"]) == {"1000/2/lr"}


def test_rows_judge_the_covariate_cells_at_1000_rows_and_the_concept_detection() -> None:
    blocks = [_block(i, block=i) for i in range(3)]
    blocks += [_block(10 + i, "concept", switched=i >= 1, block=bench.SWITCH - 1 + i, realised=0.6)
               for i in range(3)]
    results = {"peer": {"available": True}, "summary": bench.summarise([UNIT], blocks,
                                                                        _peer([b["id"] for b in blocks]))}
    rows = bench.rows(results)
    judged = [r for r in rows if r.met is not None]
    assert {r.figure.split(",")[0] for r in judged} == {
        "accuracy MAE", "accuracy MAE against NannyML's", "interval coverage", "CPU per block",
        "concept switch flagged by the realised accuracy on the first labelled block"}
    assert all("covariate, 1,000 rows" in r.figure for r in judged if not r.figure.startswith("concept"))
    text = render(rows)
    assert text.count("\n") == 1 + len(rows)
    assert "NannyML" in bench.markdown_tables(results)


def test_rows_say_when_the_peer_did_not_run() -> None:
    results = {"peer": {"available": False, "reason": "no network"},
               "summary": bench.summarise([UNIT], [_block(0)], None)}
    rows = bench.rows(results)
    assert rows[0] == Row("NannyML peer", "not available", "no network")
    assert all(r.figure != "accuracy MAE against NannyML's, covariate, 1,000 rows, 2 classes, lr" for r in rows)


def test_the_rule_switch_moves_labels_and_the_shift_moves_features_only() -> None:
    import numpy as np

    covariate = bench.scenario_blocks("covariate", 0, 3, 200)
    concept = bench.scenario_blocks("concept", 0, 3, 200)
    assert len(covariate) == len(concept) == bench.BLOCKS
    assert [s for s, _, _ in covariate][-1] == pytest.approx(bench.STEP * bench.BLOCKS)
    assert not any(switched for _, switched, _ in covariate)
    assert [switched for _, switched, _ in concept] == [b >= bench.SWITCH for b in range(bench.BLOCKS)]
    assert {s for s, _, _ in concept} == {0.0}
    X = np.random.default_rng(0).normal(size=(500, len(bench.FEATURES)))
    assert np.abs(bench.posterior(X, 2, True) - bench.posterior(X, 2, False)).mean() > 0.1


def test_venv_counts_as_ready_only_with_the_stamp_of_the_same_requirements(tmp_path: Path) -> None:
    python = peer.venv_python(tmp_path)
    python.parent.mkdir(parents=True)
    python.write_text("")
    assert not peer.venv_ready(tmp_path)
    (tmp_path / peer.STAMP_NAME).write_text("\n".join(peer.REQUIREMENTS) + "\n")
    assert peer.venv_ready(tmp_path)
    assert not peer.venv_ready(tmp_path, ("nannyml==0.0.1",))


def test_worker_reads_estimates_bands_and_sampling_errors_from_the_result_table() -> None:
    pd = pytest.importorskip("pandas")
    from benchmarks.peer.nannyml_worker import read_rows

    columns = pd.MultiIndex.from_tuples([("chunk", "key"), ("accuracy", "value"), ("accuracy", "sampling_error"),
                                         ("accuracy", "lower_confidence_boundary"),
                                         ("accuracy", "upper_confidence_boundary"), ("f1", "value"),
                                         ("f1", "sampling_error"), ("f1", "lower_confidence_boundary"),
                                         ("f1", "upper_confidence_boundary")])
    table = pd.DataFrame([["[0:999]", 0.8, 0.01, 0.77, 0.83, 0.7, float("nan"), 0.6, 0.8]], columns=columns)
    (entry,) = read_rows(table)
    assert entry["metrics"] == {"accuracy": 0.8, "f1_macro": 0.7}
    assert entry["sampling_error"] == {"accuracy": 0.01, "f1_macro": None}
    assert (entry["lower"]["accuracy"], entry["upper"]["accuracy"]) == (0.77, 0.83)


def test_a_tiny_run_without_the_peer_writes_every_cell(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    argv = ["--quick", "--seeds", "1", "--sizes", "300", "--models", "lr", "--classes", "2",
            "--scenarios", "covariate,concept", "--jobs", "1", "--no-peer", "--json", str(out)]
    assert bench.main(argv) == 0
    results = json.loads(out.read_text())
    assert results["peer"] == {"available": False, "reason": "not run (--no-peer)"}
    assert list(results["summary"]["cells"]) == ["covariate/300/2/lr", "concept/300/2/lr"]
    assert len(results["blocks"]) == 2 * bench.BLOCKS
    block = results["blocks"][0]
    assert set(block["metrics"]) <= set(block["realised"]) and "accuracy" in block["interval"]
    low, high = block["interval"]["accuracy"]
    assert 0.0 <= low <= block["metrics"]["accuracy"] <= high <= 1.0
    unit = results["units"][0]
    assert unit["holdout_rows"] == 300 and unit["method"] and unit["note"] == ""  # the product's calibration
    assert bench.rows(results)[0] == Row("NannyML peer", "not available", "not run (--no-peer)")
