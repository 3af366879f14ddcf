"""benchmarks/peer_evidently.py and its worker: the pure parts only (no venv, no network, no Evidently)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from benchmarks import peer_evidently as peer
from benchmarks.peer.evidently_worker import read_snapshot
from benchmarks.report import Row, render


def _job(size: int, kind: str, i: int, target: str | None = None) -> dict:
    return {"id": f"{size}-{kind}-{i}", "size": size, "kind": kind, "target": target}


def _jobs_and_results() -> tuple[list[dict], dict, dict]:
    """1,000 rows: 4 drift-free blocks and 2 numeric shifts of rbf_1; ours and Evidently's verdicts."""
    jobs = [_job(1000, "none", i) for i in range(4)] + [_job(1000, "numeric_0.5sd", i, "rbf_1") for i in range(2)]
    ours = {j["id"]: {"block_drift": False, "drifted_columns": [], "seconds": 0.01, "cpu_seconds": 0.008}
            for j in jobs}
    theirs = {j["id"]: {"dataset_drift": False, "drifted_columns": [], "seconds": 2.0, "cpu_seconds": 1.0}
              for j in jobs}
    ours["1000-none-0"] |= {"block_drift": True, "drifted_columns": ["hyp_0"]}
    ours["1000-numeric_0.5sd-0"] |= {"block_drift": True, "drifted_columns": ["rbf_1"]}
    ours["1000-numeric_0.5sd-1"] |= {"block_drift": True, "drifted_columns": ["rbf_2"]}  # flagged the wrong column
    theirs["1000-none-1"] |= {"drifted_columns": ["rbf_7_exp"]}
    theirs["1000-none-2"] |= {"drifted_columns": ["rbf_7_exp", "digit"], "dataset_drift": True}
    theirs["1000-numeric_0.5sd-0"] |= {"drifted_columns": ["rbf_1"], "scores": {"rbf_1": 0.4, "rbf_2": 0.0}}
    theirs["1000-numeric_0.5sd-1"] |= {"drifted_columns": ["rbf_1"], "seconds": 4.0, "cpu_seconds": 3.0,
                                       "scores": {"rbf_1": 0.6}}
    return jobs, ours, theirs


def test_flagged_needs_the_shifted_column_and_otherwise_any_column() -> None:
    assert peer.flagged({"target": "a"}, ["a", "b"])
    assert not peer.flagged({"target": "a"}, ["b"])
    assert peer.flagged({"target": None}, ["b"])
    assert not peer.flagged({"target": None}, [])


def test_summarise_counts_per_tool_and_kind_and_takes_medians() -> None:
    jobs, ours, theirs = _jobs_and_results()
    sizes = peer.summarise(jobs, ours, theirs)
    assert list(sizes) == ["1000"]
    o, t = sizes["1000"]["ours"], sizes["1000"]["evidently"]
    assert o["none"] == {"n": 4, "flagged": 1, "block_drift": 1}
    assert o["numeric_0.5sd"] == {"n": 2, "flagged": 1, "block_drift": 2}
    assert t["none"] == {"n": 4, "flagged": 2, "any_column": 2, "block_drift": 1}
    assert t["numeric_0.5sd"] == {"n": 2, "flagged": 2, "any_column": 2, "block_drift": 0,
                                  "median_target_score": pytest.approx(0.5)}
    assert o["median_seconds"] == pytest.approx(0.01)
    assert t["median_seconds"] == pytest.approx(2.0)  # median of five 2.0 s and one 4.0 s
    assert t["median_cpu_seconds"] == pytest.approx(1.0)
    assert t["false_alarm_columns"] == {"digit": 1, "rbf_7_exp": 2}
    assert o["false_alarm_columns"] == {"hyp_0": 1}


def _results() -> dict:
    jobs, ours, theirs = _jobs_and_results()
    return {"available": True, "evidently_version": "0.7.23", "sizes": peer.summarise(jobs, ours, theirs)}


def test_rows_put_evidently_in_the_baseline_and_judge_only_our_false_alarms() -> None:
    rows = peer.rows(_results())
    by_figure = {r.figure: r for r in rows}
    alarms = by_figure["false alarms, 1,000 rows (drift-free blocks; ours: any feature)"]
    assert alarms == Row("false alarms, 1,000 rows (drift-free blocks; ours: any feature)", "1/4 (25%)",
                         "2/4 (50%) any column; 1/4 (25%) dataset drift", "<= 5%", False)
    shift = by_figure["0.5 sd mean shift in one numeric column, 1,000 rows: shifted column flagged"]
    assert (shift.measured, shift.baseline, shift.met) == ("1/2 (50%)", "2/2 (100%); 0/2 (0%) dataset drift", None)
    assert by_figure["median time per block, 1,000 rows (20 columns, 10,000-row reference)"].baseline == "2.00 s"
    assert by_figure["time per block ours / Evidently, 1,000 rows"].measured == "0.01x"
    assert [r.met for r in rows].count(None) == len(rows) - 1


def test_false_alarms_within_five_percent_are_met() -> None:
    results = _results()
    results["sizes"]["1000"]["ours"]["none"] = {"n": 40, "flagged": 2, "block_drift": 2}
    results["sizes"]["1000"]["evidently"]["none"] |= {"n": 40}
    row = next(r for r in peer.rows(results) if r.figure.startswith("false alarms"))
    assert (row.measured, row.met) == ("2/40 (5%)", True)


def test_rows_skip_kinds_that_were_not_run_and_render() -> None:
    text = render(peer.rows(_results()))
    assert "category share" not in text and "correlation" not in text
    assert text.count("\n") == 1 + len(peer.rows(_results()))


def test_rows_when_the_peer_is_unavailable() -> None:
    rows = peer.rows({"available": False, "reason": "no network"})
    assert rows == [Row("Evidently peer comparison", "peer not available", "no network")]


def test_quick_plan_is_small_and_the_full_plan_has_every_kind() -> None:
    refs, blocks, kinds = peer.plan(quick=True)
    assert refs * blocks * len(kinds) * len(peer.SIZES) <= 16  # about 3 CPU seconds per Evidently block
    assert peer.plan(quick=False)[2] == tuple(peer.KINDS)


def test_venv_counts_as_ready_only_with_the_stamp_of_the_same_requirements(tmp_path: Path) -> None:
    python = peer.venv_python(tmp_path)
    python.parent.mkdir(parents=True)
    python.write_text("")
    assert not peer.venv_ready(tmp_path)
    (tmp_path / peer.STAMP.name).write_text("\n".join(peer.REQUIREMENTS) + "\n")
    assert peer.venv_ready(tmp_path)
    assert not peer.venv_ready(tmp_path, ("evidently==0.0.1",))


SNAPSHOT = {  # the shape of Snapshot.dict() from Evidently 0.7.23, trimmed
    "metrics": [
        {"config": {"type": "evidently:metric_v2:DriftedColumnsCount", "drift_share": 0.5},
         "value": {"count": 1.0, "share": 0.5}},
        {"config": {"type": "evidently:metric_v2:ValueDrift", "column": "a",
                    "method": "Wasserstein distance (normed)", "threshold": 0.1}, "value": 0.47},
        {"config": {"type": "evidently:metric_v2:ValueDrift", "column": "c",
                    "method": "Jensen-Shannon distance", "threshold": 0.1}, "value": 0.01},
    ],
    "tests": [
        {"id": "15e8", "status": "FAIL"},  # the dataset-level share test
        {"id": "drift", "metric_config": {"params": {"column": "a"}}, "status": "FAIL"},
        {"id": "drift", "metric_config": {"params": {"column": "c"}}, "status": "SUCCESS"},
    ],
}


def test_worker_reads_dataset_drift_and_drifted_columns_from_the_snapshot() -> None:
    verdict = read_snapshot(SNAPSHOT)
    assert verdict["dataset_drift"] is True  # share 0.5 >= drift_share 0.5
    assert verdict["drifted_columns"] == ["a"]
    assert verdict["scores"] == {"a": 0.47, "c": 0.01}
    assert verdict["methods"]["c"] == "Jensen-Shannon distance >= 0.1"
    below = {**SNAPSHOT, "metrics": [{**SNAPSHOT["metrics"][0], "value": {"count": 1.0, "share": 0.45}}]}
    assert read_snapshot(below)["dataset_drift"] is False


def test_worker_refuses_a_snapshot_without_the_count() -> None:
    with pytest.raises(RuntimeError, match="DriftedColumnsCount"):
        read_snapshot({"metrics": [], "tests": []})


def test_no_install_reports_the_peer_unavailable_and_exits_0(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(peer, "VENV", tmp_path / "missing-venv")
    out = tmp_path / "r.json"
    assert peer.main(["--quick", "--no-install", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["available"] is False and "--no-install" in results["reason"]
    assert "peer not available" in capsys.readouterr().out
    assert peer.rows(results)[0].measured == "peer not available"


def test_a_failed_venv_creation_is_a_reason_not_a_traceback(tmp_path: Path, monkeypatch) -> None:
    def offline(cmd, **kwargs):
        kwargs["stdout"].write("ERROR: Could not find a version that satisfies the requirement evidently\n")
        return subprocess.CompletedProcess(cmd, 1 if "pip" in cmd else 0)

    monkeypatch.setattr(peer.subprocess, "run", offline)
    python, reason = peer.ensure_venv(install=True, venv=tmp_path / "venv")
    assert python is None
    assert "pip install" in reason and "Could not find a version" in reason
    assert not (tmp_path / "venv" / peer.STAMP.name).exists()
