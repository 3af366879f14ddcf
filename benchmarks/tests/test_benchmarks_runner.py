"""The benchmark runner's README handling and every benchmark's rows(): pure, no benchmark is run."""

from __future__ import annotations

import importlib

import pytest

from benchmarks.__main__ import BENCHES, BY_KEY, table_block, update_readme
from benchmarks.report import Row, render


def record(rows: list[Row]) -> dict:
    return {"command": "python -m benchmarks.x --quick", "seconds": 12.0, "load_before": 1.0, "load_after": 2.0,
            "rows": [r.as_dict() for r in rows]}


def test_a_new_table_goes_under_its_own_heading_then_is_replaced_in_place() -> None:
    bench = BY_KEY["drift"]
    text = "# Benchmarks\n\nprose\n"
    first = update_readme(text, bench, "quick", table_block(bench, "quick", record([Row("a", "1")]), "2026-11-28"))
    assert first.startswith(text.rstrip("\n")) and f"## {bench.title}" in first and "| a | 1 |" in first
    second = update_readme(first, bench, "quick", table_block(bench, "quick", record([Row("b", "2")]), "2026-11-29"))
    assert "| a | 1 |" not in second and "| b | 2 |" in second
    assert second.count(f"## {bench.title}") == 1 and second.count("<!-- results:drift:quick -->") == 1


def test_the_full_table_is_placed_after_the_quick_one_and_both_survive() -> None:
    bench = BY_KEY["replay"]
    text = update_readme("# B\n", bench, "quick", table_block(bench, "quick", record([Row("q", "1")]), "d"))
    text = update_readme(text + "\n## Later section\n", bench, "full",
                         table_block(bench, "full", record([Row("f", "2")]), "d"))
    assert text.index("| q | 1 |") < text.index("| f | 2 |") < text.index("## Later section")


def test_a_missed_target_says_so_plainly() -> None:
    table = render([Row("replay", "35 s", "24 s", "< 30 s", met=False), Row("append", "1.3x", "", "<= 2x", True)])
    assert "< 30 s: **missed**" in table and "<= 2x: met" in table


def test_every_registered_benchmark_module_has_main_and_rows() -> None:
    for bench in BENCHES:
        try:
            module = importlib.import_module(f"benchmarks.{bench.module}")
        except ModuleNotFoundError as exc:  # pragma: no cover - a benchmark still being written
            pytest.fail(f"{bench.key}: {exc}")
        assert callable(module.main) and callable(module.rows), bench.key


def test_eventstore_rows_extrapolate_and_judge_the_1m_replay() -> None:
    from benchmarks.eventstore_bench import rows

    report = {"results": [
        {"case": "append 1/txn, NORMAL", "events": 10, "store_per_s": 100.0, "floor_per_s": 150.0, "ratio": 1.5,
         "cpu_ratio": 1.4, "target": "<= 2x", "met": True},
        {"case": "replay + verify", "events": 1000, "store_s": 0.05, "floor_s": 0.025, "ratio": 2.0,
         "seconds_for_1m": 50.0, "cpu_seconds_for_1m": 20.0, "measured_1m": False, "met": False},
    ]}
    out = rows(report)
    assert out[0].met is True and out[1].met is False
    assert "extrapolated from 1,000" in out[1].figure and "25.00 s" in out[1].baseline
