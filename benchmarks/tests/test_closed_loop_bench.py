"""The closed-loop benchmark's pure parts: ground-truth scoring, aggregation over seeds, the log fold, rows()."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from benchmarks.closed_loop import (
    SCENARIOS,
    detection,
    mean_accuracy,
    outcome_from_events,
    rows,
    scenario_seeds,
    summarise,
)
from benchmarks.report import render
from pipelines.core.events import (
    Artifact,
    BlockArrived,
    CandidateTrained,
    ChallengerEvaluated,
    ChallengerRejected,
    DriftChecked,
    ModelPromoted,
    PerformanceMeasured,
    RetrainRequested,
)
from pipelines.retraining.material import LabelledBlock
from pipelines.retraining.strategies import newest_rows


def test_false_alarms_count_only_checked_blocks_before_the_switch():
    flags = [None, True, False, True, True, False]
    drift = [False, False, False, True, True, True]
    d = detection(flags, drift)
    assert (d["clean_blocks"], d["false_alarms"]) == (2, 1)  # block 0 unchecked; 3.. are drift
    assert (d["switch"], d["delay"], d["within"]) == (3, 0, True)


def test_delay_counts_blocks_from_the_switch_and_within_means_the_switch_block_or_the_next():
    drift = [False, False, True, True, True, True]
    assert detection([None, False, False, True, False, False], drift)["within"] is True  # delay 1
    late = detection([None, False, False, False, True, False], drift)
    assert (late["delay"], late["within"]) == (2, False)


def test_a_flag_after_a_recurring_episode_ended_is_a_miss_not_a_detection():
    drift = [False, False, True, True, False, False]
    d = detection([None, False, False, False, True, True], drift)
    assert (d["delay"], d["within"]) == (None, False)


def test_a_drift_free_stream_has_every_checked_block_clean_and_no_switch():
    d = detection([None, False, True, False], [False] * 4)
    assert d == {"clean_blocks": 3, "false_alarms": 1, "switch": None, "delay": None, "within": None}


def test_detection_refuses_mismatched_lengths():
    with pytest.raises(ValueError, match="3 verdicts for 2 blocks"):
        detection([None, False, True], [False, True])


def block(flagged, drift, ours=None, static=None, every=None, window=None, adwin=None):
    return {"flagged": flagged, "drift": drift, "ours": ours, "static": static, "every_block": every,
            "every_block_window": window, "adwin": adwin}


def run(blocks, ours=1, every=5, adwin=1, promotions=1):
    return {"blocks": blocks, "retrains": {"ours": ours, "every_block": every, "every_block_window": every,
                                           "adwin": adwin, "static": 0}, "promotions": promotions}


def two_seeds():
    a = run([block(None, False), block(False, False, 0.9, 0.9, 0.9, 0.9, 0.9),
             block(True, True, 0.7, 0.7, 0.7, 0.7, 0.7), block(False, True, 0.9, 0.7, 0.8, 0.85, 0.95)])
    b = run([block(None, False), block(True, False, 1.0, 1.0, 1.0, 1.0, 1.0),
             block(False, True, 0.6, 0.6, 0.6, 0.6, 0.6), block(False, True, 0.6, 0.6, 0.9, 0.9, 0.9)],
            ours=0, every=5, adwin=2, promotions=0)
    return [a, b]


def test_summarise_pools_false_alarms_and_averages_accuracy_over_blocks_then_seeds():
    s = summarise(two_seeds())
    assert (s["clean_blocks"], s["false_alarms"], s["false_alarm_rate"]) == (2, 1, 0.5)
    assert (s["switches"], s["detected"], s["missed"], s["within"], s["within_share"]) == (2, 1, 1, 1, 0.5)
    assert s["delays"] == [0, None]
    assert s["accuracy"]["ours"] == pytest.approx(((0.9 + 0.7 + 0.9) / 3 + (1.0 + 0.6 + 0.6) / 3) / 2)
    assert s["accuracy"]["static"] == pytest.approx(((0.9 + 0.7 + 0.7) / 3 + (1.0 + 0.6 + 0.6) / 3) / 2)
    assert s["retrains"] == {"ours": 0.5, "every_block": 5.0, "adwin": 1.5}
    assert s["retrain_ratio"] == pytest.approx(0.1)
    json.dumps(s)  # what main writes with --json


def test_mean_accuracy_skips_unscored_blocks():
    assert mean_accuracy([{"ours": None}, {"ours": 0.25}], "ours") == 0.25
    assert mean_accuracy([{"ours": None}], "ours") is None


def summary(**over):
    s = {"seeds": 10, "clean_blocks": 100, "false_alarms": 5, "false_alarm_rate": 0.05, "switches": 10,
         "detected": 10, "missed": 0, "within": 9, "within_share": 0.9, "delay_median": 0, "delay_mean": 0.1,
         "accuracy": {"ours": 0.925, "static": 0.85, "every_block": 0.91, "every_block_window": 0.92,
                      "adwin": 0.93},
         "retrains": {"ours": 3.3, "every_block": 11.0, "adwin": 2.0}, "promotions": 2.0,
         "rounds_by_trigger": {"drift": 2.0, "adapt": 1.3}, "promote_share": 0.6, "retrain_ratio": 0.3,
         "recovery": []}
    s.update(over)
    return s


def results(switch="abrupt", stream=None, name=None, **over):
    s = summary(**over)
    return {"meta": {"seeds": 10}, "scenarios": {name or f"sea/{switch}": {"switch": switch, "models": {"lr": {"summary": s}}}},
            "stream": stream}


def verdicts(table):
    return {r.figure.split(": ", 1)[1]: r.met for r in table}


def test_rows_at_the_edge_of_every_target_are_met():
    v = verdicts(rows(results()))
    assert v == {"false alarms": True, "switch flagged within 2 blocks": True,
                 "prequential accuracy vs the best baseline": True, "rounds per run (promotions)": True}


def test_rows_just_past_every_target_are_missed():
    table = rows(results(false_alarms=6, false_alarm_rate=0.06, within=8, within_share=0.8,
                         accuracy={"ours": 0.9249, "static": 0.85, "every_block": 0.91, "every_block_window": 0.9,
                                   "adwin": 0.93}, retrain_ratio=0.31))
    assert set(verdicts(table).values()) == {False}
    assert "**missed**" in render(table)


def test_the_best_baseline_sets_the_bar_whichever_it_is():
    for best in ("static", "every_block", "every_block_window", "adwin"):
        acc = {"ours": 0.90, "static": 0.80, "every_block": 0.80, "every_block_window": 0.80, "adwin": 0.80}
        acc[best] = 0.906
        assert verdicts(rows(results(accuracy=acc)))["prequential accuracy vs the best baseline"] is False
        acc[best] = 0.905
        assert verdicts(rows(results(accuracy=acc)))["prequential accuracy vs the best baseline"] is True


def test_detection_speed_is_judged_for_abrupt_switches_only():
    gradual = verdicts(rows(results("gradual", within_share=0.1)))
    assert gradual["switch flagged within 2 blocks"] is None
    none = verdicts(rows(results("none", switches=0, accuracy={"ours": 0.9, "static": 0.9, "every_block": 0.9,
                                                               "every_block_window": 0.9, "adwin": 0.9})))
    assert "switch flagged within 2 blocks" not in none
    assert none["prequential accuracy vs the best baseline"] is True


def switch_entry(block, concept, ret, ours, reused=None, seeds=10):
    entry = {"block": block, "concept": concept, "return": ret, "levels": [0.99] * seeds,
             "median": {"ours": ours, "static": None, "every_block": 3, "every_block_window": 1, "adwin": 1}}
    if ret:
        entry.update(reused=reused, reuse_share=reused / seeds)
    return entry


def test_recurring_scenarios_judge_static_adwin_recovery_and_reuse_of_a_but_not_of_b():
    recovery = [switch_entry(6, "after", False, 2), switch_entry(11, "before", True, 1, reused=8),
                switch_entry(16, "after", True, None, reused=0)]
    v = verdicts(rows(results("recurring", name="sea/abab", recovery=recovery,
                              accuracy={"ours": 0.9251, "static": 0.92, "every_block": 0.9,
                                        "every_block_window": 0.9, "adwin": 0.93})))
    assert v["prequential accuracy vs (a) static and (c) ADWIN"] is True
    assert v["blocks to recover after the switch to B (block 6, median)"] is True
    assert v["blocks to recover after the switch back to A (block 11, median)"] is True
    assert v["blocks to recover after the switch back to B (block 16, median)"] is False  # never
    assert v["`reuse` champion within 1 block of the return to A (block 11)"] is True  # 8/10 = 80%
    assert v["`reuse` champion within 1 block of the return to B (block 16)"] is None  # information
    worse = verdicts(rows(results("recurring", recovery=[switch_entry(9, "before", True, 3, reused=7)],
                                  accuracy={"ours": 0.92, "static": 0.92, "every_block": 0.9,
                                            "every_block_window": 0.9, "adwin": 0.92})))
    assert worse["prequential accuracy vs (a) static and (c) ADWIN"] is False  # not above (a)
    assert worse["blocks to recover after the switch back to A (block 9, median)"] is False
    assert worse["`reuse` champion within 1 block of the return to A (block 9)"] is False


def test_false_alarms_are_pooled_per_model_over_every_scenario():
    res = results()
    res["scenarios"]["sea/none"] = {"switch": "none", "models": {
        "lr": {"summary": summary(switches=0, clean_blocks=100, false_alarms=6, false_alarm_rate=0.06)},
        "hgb": {"summary": summary(switches=0, clean_blocks=10, false_alarms=0, false_alarm_rate=0.0)}}}
    pooled = {r.figure: (r.measured, r.met) for r in rows(res) if r.figure.startswith("all scenarios")}
    assert pooled == {"all scenarios lr: false alarms": ("5.5% (11/200 drift-free blocks)", False),
                      "all scenarios hgb: false alarms": ("0.0% (0/10 drift-free blocks)", True)}


def stream_entry(**over):
    return {"checked": 45, "flagged": 12, "summary": summary(**over)}


def test_the_stream_is_judged_by_its_own_rules():
    stream = {"name": "elec2.csv", "rows": 1000, "blocks": 46,
              "models": {"lr": stream_entry(retrain_ratio=0.6, promote_share=0.5),
                         "hgb": stream_entry(retrain_ratio=0.61, promote_share=0.49)}}
    table = rows(results(stream=stream))
    text = render(table)
    assert "| sea/abrupt lr (10 seeds): false alarms | 5.0% (5/100 drift-free blocks) |  | <= 5%: met |" in text
    assert "stream elec2.csv lr (46 blocks of 1000 rows): blocks flagged (no ground truth) | 12/45" in text
    got = {r.figure: r.met for r in table if r.figure.startswith("stream")}
    assert got["stream elec2.csv lr (46 blocks of 1000 rows): rounds per run (promotions)"] is True
    assert got["stream elec2.csv lr (46 blocks of 1000 rows): rounds that promote"] is True
    assert got["stream elec2.csv hgb (46 blocks of 1000 rows): rounds per run (promotions)"] is False
    assert got["stream elec2.csv hgb (46 blocks of 1000 rows): rounds that promote"] is False


def art(i):
    return Artifact(sha256=f"{i:064d}", kind="frame", size=1, format="parquet")


def test_outcome_reads_verdicts_prequential_accuracy_and_drift_rounds_from_the_events():
    events = [
        BlockArrived(block_id="b1", file="b1.csv", sha256="1", rows=10, labelled=True, artifact=art(1)),
        RetrainRequested(round_id="r1", block_id="b1", strategies=("full",), training_blocks=("b1",),
                         holdout_blocks=("b1",), holdout="", seed=0, trigger="initial"),
        ModelPromoted(model_version="v1", previous_version=None, strategy="full", reason="first", metrics={},
                      round_id="r1"),
        BlockArrived(block_id="b2", file="b2.csv", sha256="2", rows=10, labelled=True, artifact=art(2)),
        PerformanceMeasured(block_id="b2", model_version="v1", metrics={"accuracy": 0.6}),
        DriftChecked(block_id="b2", drifted=True, reasons=("accuracy fell",), features=()),
        RetrainRequested(round_id="r2", block_id="b2", strategies=("full",), training_blocks=("b1", "b2"),
                         holdout_blocks=("b2",), holdout="", seed=1),
        CandidateTrained(round_id="r2", model_version="v2", strategy="full", artifact=art(4), sha256="4",
                         training_blocks=("b1", "b2"), seconds=0.1),
        CandidateTrained(round_id="r2", model_version="v3", strategy="windowed", artifact=art(5), sha256="5",
                         training_blocks=("b2",), seconds=0.1),
        ChallengerEvaluated(round_id="r2", model_version="v2", metrics={"accuracy": 0.7},
                            champion_metrics={"accuracy": 0.6}),
        ChallengerEvaluated(round_id="r2", model_version="v3", metrics={"accuracy": 0.8},
                            champion_metrics={"accuracy": 0.6}),
        ModelPromoted(model_version="v3", previous_version="v1", strategy="windowed", reason="better",
                      metrics={}, round_id="r2"),
        BlockArrived(block_id="b3", file="b3.csv", sha256="3", rows=10, labelled=True, artifact=art(3)),
        PerformanceMeasured(block_id="b3", model_version="v3", metrics={"accuracy": 0.9}),
        DriftChecked(block_id="b3", drifted=True, reasons=("x",), features=()),
        RetrainRequested(round_id="r3", block_id="b3", strategies=("full",), training_blocks=("b1", "b2", "b3"),
                         holdout_blocks=("b3",), holdout="", seed=2),
        ChallengerRejected(round_id="r3", model_versions=("v4",), reason="no better"),
    ]
    out = outcome_from_events(events)
    assert [(b["block"], b["flagged"], b["model"], b["ours"]) for b in out["blocks"]] == [
        ("b1", None, None, None), ("b2", True, "v1", 0.6), ("b3", True, "v3", 0.9)]
    assert (out["drift_rounds"], out["promotions"]) == (2, 1)
    assert out["blocks"][1]["reasons"] == ["accuracy fell"]
    assert out["rounds"][1] == {"round": "r2", "block": "b2", "trigger": "drift", "promoted": "windowed",
                                "champion": 0.6, "candidates": {"full": 0.7, "windowed": 0.8}}


def test_tail_rows_keeps_the_newest_rows_across_blocks():
    blocks = [LabelledBlock(f"b{i}", pd.DataFrame({"x": range(i * 10, i * 10 + 4)})) for i in range(3)]
    kept = newest_rows(blocks, 6)
    assert [(b.block_id, list(b.frame["x"])) for b in kept] == [("b1", [12, 13]), ("b2", [20, 21, 22, 23])]


def test_each_scenario_gets_its_own_seeds():
    seeds = [scenario_seeds(name, 10) for name in SCENARIOS]
    assert len({s for group in seeds for s in group}) == 10 * len(SCENARIOS)
    assert scenario_seeds("sea/abrupt", 2) == [0, 1]  # as before the scenario table: figures stay comparable
