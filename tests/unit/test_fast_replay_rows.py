"""`benchmarks.replay_bench.rows`: a small run is judged by its projection to 1M events, labelled as such; a
1M run by its measurement."""

from __future__ import annotations

from benchmarks.replay_bench import project, rows

RUN = {"events": 20_002, "baseline_s": 2.4, "baseline_cpu_s": 0.61, "read_s": 4.28, "read_cpu_s": 0.76,
       "decode_s": 1.91, "fold_s": 1.04, "decode_cpu_s": 0.49, "fold_cpu_s": 0.27, "without_snapshot_s": 7.85,
       "without_snapshot_cpu_s": 1.5, "with_snapshot_s": 0.679, "with_snapshot_cpu_s": 0.117,
       "snapshot_parse_s": 0.048, "snapshot_build_s": 0.178, "snapshot_load_s": 0.227, "snapshot_load_cpu_s": 0.046,
       "without_snapshot_vs_baseline": 3.27, "blocks": 6299, "calibration_s": 1.14, "calibration_after_s": 2.3,
       "load_average": [11.6, 14.5]}


def test_a_small_run_is_judged_by_its_labelled_projection() -> None:
    table = rows({**RUN, **project(RUN)})
    judged = [r for r in table if r.met is not None]
    assert len(judged) == 2 and all("projected" in r.figure for r in judged)
    assert [r.met for r in judged] == [False, False]
    assert judged[0].measured.startswith("392 s wall")  # 7.85 s x 1,000,000 / 20,002
    assert any(r.figure.startswith("where the time goes (CPU") for r in table)


def test_a_million_event_run_is_judged_by_its_measurement() -> None:
    run = {**RUN, "events": 1_000_004, "without_snapshot_s": 29.0, "with_snapshot_s": 0.9}
    table = rows({**run, **project(run)})
    judged = [r for r in table if r.met is not None]
    assert [r.met for r in judged] == [True, True]
    assert not any("projected" in r.figure for r in table)
