"""The scaling and memory benchmarks' pure parts: the fits, the peaks, and the rows they report (no Ray)."""

from __future__ import annotations

import doctest
import math
import tomllib

import pytest

from benchmarks import memory, scaling


def point(size: int, actor: float, floor: float, drifts: int = 0, rows: int = 1000, features: int = 20) -> dict:
    return {"size": size, "rows": rows, "features": features, "timed_blocks": 3, "actor_s": actor,
            "floor_s": floor, "drifts": drifts, "retrain_rounds": 0, "wall_s": 1.0}


def scaling_results(rows_points: list[dict], pipeline_points: list[dict] | None = None) -> dict:
    dims = {"rows": {"points": rows_points}}
    if pipeline_points is not None:
        dims["pipelines"] = {"points": pipeline_points}
    return {"quick": False, "target_exponent": 1.1, "dimensions": dims}


@pytest.mark.parametrize("b", [0.25, 1.0, 1.3, 2.0])
def test_fit_exponent_recovers_a_power_law(b):
    sizes = [1_000, 10_000, 100_000]
    assert scaling.fit_exponent(sizes, [0.003 * s**b for s in sizes]) == pytest.approx(b)


def test_fit_exponent_is_least_squares_on_log_log():
    # log2 sizes 0, 1, 2; log2 times 0, 2, 2: slope of the best line is 1 (not 2, not 0)
    assert scaling.fit_exponent([1, 2, 4], [1.0, 4.0, 4.0]) == pytest.approx(1.0)


@pytest.mark.parametrize("sizes, times", [([1], [1.0]), ([1, 2], [1.0]), ([0, 2], [1.0, 2.0]),
                                          ([1, 2], [1.0, -1.0]), ([3, 3], [1.0, 2.0])])
def test_fit_exponent_refuses_what_it_cannot_fit(sizes, times):
    with pytest.raises(ValueError):
        scaling.fit_exponent(sizes, times)


def test_scaling_rows_judge_the_actor_exponent_and_show_the_floors():
    linear = [point(1_000, 0.1, 0.08), point(10_000, 1.0, 0.8), point(100_000, 10.0, 8.0)]
    steep = [point(1_000, 0.1, 0.1), point(10_000, 1.5, 0.2), point(100_000, 22.5, 0.4)]
    for points, met in ((linear, True), (steep, False)):
        out = scaling.rows(scaling_results(points))
        assert len(out) == 2
        judged, ratios = out
        assert judged.met is met
        assert judged.target == "b <= 1.1"
        assert judged.figure.startswith("time per block vs rows per block (1,000, 10,000, 100,000; 20 features)")
        b = scaling.fit_exponent([1_000, 10_000, 100_000], [p["actor_s"] for p in points])
        assert judged.measured.startswith(f"b = {b:.2f} (")
        floor_b = scaling.fit_exponent([1_000, 10_000, 100_000], [p["floor_s"] for p in points])
        assert judged.baseline.startswith(f"plain loop b = {floor_b:.2f} (")
        assert ratios.met is None
    assert scaling.rows(scaling_results(linear))[1].measured == (
        "1,000: 1.25x, 10,000: 1.25x, 100,000: 1.25x; top b = 1.00")
    flat_then_steep = [point(1_000, 1.0, 1.0), point(10_000, 1.0, 1.0), point(100_000, 100.0, 10.0)]
    judged, info = scaling.rows(scaling_results(flat_then_steep))
    assert judged.measured.startswith("b = 1.00 (") and judged.met is True
    assert info.measured.endswith("; top b = 2.00") and info.baseline == "plain loop = 1.00x; top b = 1.00"
    assert scaling.rows(scaling_results(steep))[0].measured.startswith("b = 1.18 (")


def test_scaling_rows_say_when_drift_made_it_more_than_monitoring():
    clean = [point(1, 1.0, 1.0), point(5, 5.0, 5.0)]
    drifted = [point(1, 1.0, 1.0), point(5, 5.0, 5.0, drifts=2)]
    assert "drift" not in scaling.rows(scaling_results(clean, clean))[2].measured
    out = scaling.rows(scaling_results(clean, drifted))
    assert "2 drift(s) seen" in out[2].measured
    assert out[2].figure.startswith("wall time for all pipelines vs concurrent pipelines (1, 5; 3 blocks of")


def test_scaling_rows_take_the_json_the_module_writes():
    import json

    results = scaling_results([point(1_000, 0.5, 0.4), point(10_000, 0.9, 0.6)])
    assert scaling.rows(json.loads(json.dumps(results))) == scaling.rows(results)


def test_block_shapes_and_timed_blocks():
    assert scaling.block_shape("rows", 100_000) == (100_000, scaling.FIXED_FEATURES)
    assert scaling.block_shape("features", 200) == (scaling.FIXED_ROWS, 200)
    assert scaling.block_shape("pipelines", 20) == scaling.SMALL
    assert scaling.timed_blocks("rows", 100_000, quick=False) < scaling.timed_blocks("rows", 1_000, quick=False)
    assert scaling.QUICK["rows"][-1] < scaling.FULL["rows"][-1]
    assert scaling.FULL == {"rows": (1_000, 10_000, 100_000), "features": (10, 50, 200), "pipelines": (1, 5, 20)}


def test_renamed_copies_change_the_bytes_not_the_values(tmp_path):
    src = tmp_path / "a" / "block_001.csv"
    src.parent.mkdir()
    src.write_text("f00,f01,target\n1.5,2.0,1\n-0.5,3.0,0\n")
    assert scaling.renamed_copies([src], tmp_path / "b", "bench") == [src]
    (copy,) = scaling.renamed_copies([src], tmp_path / "b", "bench-01")
    assert copy.read_text() == "bench-01_f00,bench-01_f01,target\n1.5,2.0,1\n-0.5,3.0,0\n"


def test_fit_slope():
    assert memory.fit_slope([1, 10, 20], [1100.0, 2000.0, 3000.0]) == pytest.approx(100.0, rel=0.01)
    assert memory.fit_slope([1, 5], [10.0, 10.0]) == 0.0
    with pytest.raises(ValueError):
        memory.fit_slope([4, 4], [1.0, 2.0])


def test_peaks_keep_the_window_and_the_maximum_of_each_sum():
    samples = [{"t": float(t), "rss": rss, "pss": pss, "uss": pss - 1, "procs": procs}
               for t, rss, pss, procs in ((0, 100.0, 50.0, 2), (1, 300.0, 80.0, 9), (2, 200.0, 120.0, 7))]
    assert memory.peaks(samples) == {"rss": 300.0, "pss": 120.0, "uss": 119.0, "procs": 9}
    assert memory.peaks(samples, since=1.5) == {"rss": 200.0, "pss": 120.0, "uss": 119.0, "procs": 7}
    assert memory.peaks(samples, until=0.5)["pss"] == 50.0
    assert memory.peaks(samples, since=5)["pss"] == 0.0


def memory_results(pss: list[float]) -> dict:
    """The earlier cases only: N pipelines, every one fed."""
    ns = [1, 10, 20][: len(pss)]
    return {"floor": {"pss": 800.0, "rss": 1200.0, "procs": 8}, "registered": [],
            "serve": [{"pipelines": n, "blocks": 3, "pss": p, "rss": 2 * p, "procs": 10 + n,
                       "phases": {"start-up": {"pss": 850.0}, "registered": {"pss": 900.0 + 50 * n}}}
                      for n, p in zip(ns, pss, strict=True)]}


def registered_case(n: int, peak: float, level: float) -> dict:
    return {"registered": n, "active": 5, "blocks": 3, "idle_seconds": 20, "pss": peak, "rss": 2 * peak,
            "phases": {"active": {"pss": peak, "procs": 30}}, "steady": {"pss": level, "rss": 2 * level, "procs": 20},
            "registered_level": {"pss": level - 5}, "steady_cpu_s": 4.0, "steady_window_s": 20.0,
            "registered_s": 30.0 + n / 10, "ui_up_s": 25.0}


def registered_results(points: list[tuple[int, float, float]]) -> dict:
    return {"floor": {"pss": 800.0, "rss": 1200.0, "procs": 8}, "serve": [],
            "registered": [registered_case(*p) for p in points]}


def test_memory_rows_report_the_earlier_cases_against_the_floor_and_the_increment():
    out = memory.rows(memory_results([1000.0, 1900.0, 2900.0]))
    assert len(out) == 5
    assert out[0].figure == "peak memory of the `calmops serve` tree, 1 pipeline, every one fed (3 blocks each)"
    assert out[0].measured == "1,000 MB PSS (2,000 MB RSS sum, 11 processes); 1.25x the floor"
    assert out[0].baseline == "bare ray.init + Gradio: 800 MB PSS (1,200 MB RSS sum)"
    assert out[2].figure.endswith("20 pipelines, every one fed (3 blocks each)")
    slope = memory.fit_slope([1, 10, 20], [1000.0, 1900.0, 2900.0])
    assert out[3].measured == f"{memory.mb(slope)} PSS ({memory.mb(2 * slope)} RSS sum)"
    assert math.isclose(slope, 100.0, abs_tol=0.01)
    assert out[3].baseline == "serve with 1 pipeline over the floor: 200 MB PSS"
    assert out[4].measured == "50 MB PSS"
    assert out[4].baseline == "start-up peak of serve before its pipelines: 850 MB PSS"
    assert all(r.met is None for r in out)  # information only


def test_memory_rows_without_a_second_case_have_no_increment():
    assert len(memory.rows(memory_results([1000.0]))) == 1


def test_registered_rows_judge_the_peak_at_500_and_give_mb_per_registered_pipeline():
    points = [(10, 1900.0, 1000.0), (100, 1950.0, 1045.0), (500, 2150.0, 1245.0)]
    out = memory.rows(registered_results(points))
    assert len(out) == 7  # peak and steady per case, then the slope
    peaks, levels, slope = out[0:6:2], out[1:6:2], out[6]
    assert [r.met for r in peaks] == [None, None, True]
    assert peaks[2].target == "<= 3 GB at 500 registered"
    assert peaks[2].figure.startswith("peak memory of the `calmops serve` tree, 500 registered pipelines, 5 of them")
    assert all(r.figure.startswith("steady, ") and "CPU 0.20 cores" in r.measured for r in levels)
    expected = memory.fit_slope([10, 100, 500], [1000.0, 1045.0, 1245.0])
    assert slope.measured.startswith(f"{expected:,.2f} MB PSS")
    assert "186 MB PSS per pipeline" in slope.baseline
    assert memory.rows(registered_results([(10, 1900.0, 1000.0), (500, 3500.0, 1245.0)]))[2].met is False


def test_a_quick_run_is_judged_by_its_projection_to_500():
    out = memory.rows(registered_results([(10, 1900.0, 1000.0), (30, 1920.0, 1010.0)]))
    assert len(out) == 6 and all(r.met is None for r in out[:5])
    projected = out[5]
    assert "**projected**" in projected.figure
    assert projected.measured == f"{memory.mb(1920.0 + 1.0 * 470)} PSS" and projected.met is True
    steep = memory.rows(registered_results([(10, 1900.0, 1000.0), (30, 2100.0, 1010.0)]))[5]
    assert steep.met is False  # 10 MB per registered pipeline would reach 6.8 GB at 500
    noisy = memory.rows(registered_results([(10, 1920.0, 1000.0), (30, 1900.0, 1010.0)]))[5]
    assert noisy.measured == f"{memory.mb(1900.0)} PSS"  # a falling peak is noise, not a saving


def test_the_memory_rows_take_the_json_the_module_writes():
    import json

    results = registered_results([(10, 1900.0, 1000.0), (30, 1920.0, 1010.0)])
    assert memory.rows(json.loads(json.dumps(results))) == memory.rows(results)


def test_configs_are_calmops_init_templates_each_with_its_own_folder(tmp_path):
    from pipelines.config.pipeline import config_from_text

    folder = memory.write_configs(tmp_path / "home", ["p01", "p02"])
    assert folder == tmp_path / "home" / "pipelines"
    sources = set()
    for name in ("p01", "p02"):
        text = (folder / f"{name}.toml").read_text()
        config = config_from_text(text, f"{name}.toml")
        assert config.name == name
        sources.add(tomllib.loads(text)["source"])
        assert (folder / "incoming" / name).is_dir()
    assert sources == {"incoming/p01", "incoming/p02"}


def test_the_doctests_of_both_modules_pass():
    for module in (scaling, memory):
        failed, attempted = doctest.testmod(module)
        assert attempted > 0 and failed == 0, module.__name__


ESCAPER = """
import subprocess, sys, time
subprocess.Popen(["setsid", "sleep", "60"])  # leaves the session and, once this exits, the tree
subprocess.Popen(["sleep", "60"])
time.sleep(60)
"""


def test_stop_group_kills_the_whole_tree_even_a_process_that_left_the_session():
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-c", ESCAPER], start_new_session=True)
    sampler = memory.TreeSampler(proc.pid, interval=0.05).start()
    try:
        deadline = time.monotonic() + 10
        while len(sampler.seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(sampler.seen) == 3
        escaped = [p for p in sampler.alive() if p.pid != proc.pid and memory.os.getsid(p.pid) != proc.pid]
        assert len(escaped) == 1  # the setsid'd sleep: not in the group, only known from the samples
    finally:
        outcome = memory.stop_group(proc, sampler, grace=5)
    assert outcome == {"seen": 3, "outlived_group_kill": 1, "still_running": 0}
    assert sampler.samples and sampler.samples[-1]["procs"] >= 1


ORPHANING_PARENT = """
import os, subprocess, sys
sys.path.insert(0, sys.argv[1])
from benchmarks.memory import die_with_parent
child = subprocess.Popen(["sleep", "30"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True, preexec_fn=die_with_parent)
print(child.pid, flush=True)
os._exit(0)  # dies without cleaning up, as under a runner's SIGKILL
"""


def test_a_tree_started_by_the_benchmark_is_told_to_stop_when_the_benchmark_dies():
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = str(Path(memory.__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", ORPHANING_PARENT, root], capture_output=True, text=True, timeout=30)
    pid = int(out.stdout.split()[0])
    psutil = memory.import_psutil()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    else:
        psutil.Process(pid).kill()
        raise AssertionError("the child outlived its parent")
