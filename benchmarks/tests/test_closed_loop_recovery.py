"""The closed-loop benchmark's switch figures: blocks to recover after a switch, `reuse` after a return, the
scenario table and the options (pure functions, no Ray)."""

from __future__ import annotations

import json

import pytest

from benchmarks.closed_loop import (
    SCENARIOS,
    concept_switches,
    median_blocks,
    outcome_from_events,
    parse_args,
    pipeline_config,
    recovery,
    reused_within,
    scenario_spec,
    summarise,
)
from pipelines.core.events import (
    Artifact,
    BlockArrived,
    CandidateTrained,
    ChallengerEvaluated,
    ModelPromoted,
    PerformanceMeasured,
    RetrainRequested,
)
from pipelines.synthetic.scenarios import generate_scenario


def test_the_level_is_the_best_policy_over_the_episodes_last_two_blocks_and_recovery_counts_from_the_switch():
    acc = {"ours": [None, 0.99, 0.80, 0.95, 0.97, 0.97],
           "static": [None, 0.99, 0.80, 0.80, 0.80, 0.81],
           "every_block": [None, 0.99, 0.80, 0.90, 0.96, 0.99]}
    r = recovery(acc, 2, 5)
    assert r["level"] == pytest.approx(0.975)  # every_block's (0.96 + 0.99) / 2 beats ours' 0.97
    assert r["blocks"] == {"ours": 2, "static": None, "every_block": 3}  # 0.97 >= 0.965; 0.96 is not


def test_recovery_at_the_switch_block_itself_is_zero_and_a_one_block_episode_is_its_own_tail():
    acc = {"ours": [None, 0.9, 0.9], "static": [None, 0.9, 0.5]}
    assert recovery(acc, 2, 2) == {"level": 0.9, "blocks": {"ours": 0, "static": None}}


def test_recovery_without_scored_blocks_has_no_level():
    assert recovery({"ours": [None, None]}, 1, 1) == {"level": None, "blocks": {"ours": None}}


def test_the_median_counts_a_seed_that_never_recovered_as_the_longest():
    assert median_blocks([1, 1, None]) == 1
    assert median_blocks([1, None, None]) is None
    assert median_blocks([0, 2, 4, None]) == 3
    assert median_blocks([]) is None


def test_switches_follow_the_manifest_concepts_and_mark_returns():
    abab = generate_scenario(**scenario_spec("sea/abab", rows_=20), seed=4)
    concepts = [b["concept"] for b in abab.manifest["blocks"]]
    assert [(s["start"] + 1, s["end"] + 1, s["concept"], s["return"]) for s in concept_switches(concepts)] == [
        (6, 10, "after", False), (11, 15, "before", True), (16, 20, "after", True)]
    gradual = generate_scenario(**scenario_spec("sea/gradual", rows_=20), seed=4)
    assert concept_switches([b["concept"] for b in gradual.manifest["blocks"]]) == []
    none = generate_scenario(**scenario_spec("sea/none", rows_=20), seed=4)
    assert concept_switches([b["concept"] for b in none.manifest["blocks"]]) == []


def test_reuse_counts_at_the_return_block_or_the_next_only():
    strategies = [None, "full", "since_change", "since_change", "windowed", "reuse"]
    assert reused_within(strategies, 3) is False  # the reuse serves 2 blocks after the return
    assert reused_within(strategies, 4) is True
    assert reused_within(strategies, 5) is True
    assert reused_within(strategies, 5, within=0) is True


def block(concept, ours, strategy="full", flagged=False, base=0.9):
    return {"concept": concept, "drift": concept == "after", "flagged": None if ours is None else flagged,
            "ours": ours, "strategy": strategy, "static": None if ours is None else base,
            "every_block": None if ours is None else base, "every_block_window": None if ours is None else base,
            "adwin": None if ours is None else base}


def recurring_run(return_strategy, recovered=True):
    blocks = [block("before", None), block("before", 0.99, base=0.99),
              block("after", 0.85, flagged=True, base=0.85), block("after", 0.99 if recovered else 0.9),
              block("after", 0.99), block("before", 0.86, "since_change", base=0.86),
              block("before", 0.99, return_strategy), block("before", 0.99, return_strategy)]
    return {"blocks": blocks, "retrains": {"ours": 2, "every_block": 7, "adwin": 1},
            "rounds_by_trigger": {"drift": 2}, "promotions": 2}


def test_summarise_gives_each_switch_its_median_recovery_and_the_reuse_share_of_a_return():
    runs = [recurring_run("reuse"), recurring_run("reuse"), recurring_run("windowed", recovered=False),
            recurring_run("reuse")]
    s = summarise(runs)
    to_b, back = s["recovery"]
    assert (to_b["block"], to_b["concept"], to_b["return"]) == (3, "after", False)
    assert to_b["blocks"]["ours"] == [1, 1, 2, 1]  # the third seed only reaches 0.99 on its second B block
    assert to_b["median"]["ours"] == 1
    assert to_b["median"]["static"] is None  # 0.9 never comes within a point of 0.99
    assert (back["block"], back["return"], back["reused"], back["reuse_share"]) == (6, True, 3, 0.75)
    assert back["median"]["ours"] == 1
    assert s["rounds_by_trigger"] == {"drift": 2.0}
    assert s["promote_share"] == 1.0
    json.dumps(s)


def test_summarise_has_no_switch_figures_without_concepts():
    run = recurring_run("reuse")
    for b in run["blocks"]:
        del b["concept"]
    assert summarise([run])["recovery"] == []


def art(i):
    return Artifact(sha256=f"{i:064d}", kind="frame", size=1, format="parquet")


def test_outcome_maps_each_scored_block_to_its_champions_strategy_and_counts_adapt_rounds():
    events = [
        BlockArrived(block_id="b1", file="b1.csv", sha256="1", rows=10, labelled=True, artifact=art(1)),
        RetrainRequested(round_id="r1", block_id="b1", strategies=("full",), training_blocks=("b1",),
                         holdout_blocks=("b1",), holdout="", seed=0, trigger="initial"),
        CandidateTrained(round_id="r1", model_version="v1", strategy="full", artifact=art(4), sha256="4",
                         training_blocks=("b1",), seconds=0.1),
        ModelPromoted(model_version="v1", previous_version=None, strategy="full", reason="first", metrics={},
                      round_id="r1"),
        BlockArrived(block_id="b2", file="b2.csv", sha256="2", rows=10, labelled=True, artifact=art(2)),
        PerformanceMeasured(block_id="b2", model_version="v1", metrics={"accuracy": 0.6}),
        RetrainRequested(round_id="r2", block_id="b2", strategies=("since_change",), training_blocks=("b2",),
                         holdout_blocks=("b2",), holdout="", seed=1, trigger="drift"),
        CandidateTrained(round_id="r2", model_version="v2", strategy="since_change", artifact=art(5), sha256="5",
                         training_blocks=("b2",), seconds=0.1),
        ModelPromoted(model_version="v2", previous_version="v1", strategy="since_change", reason="better",
                      metrics={}, round_id="r2"),
        BlockArrived(block_id="b3", file="b3.csv", sha256="3", rows=10, labelled=True, artifact=art(3)),
        PerformanceMeasured(block_id="b3", model_version="v2", metrics={"accuracy": 0.7}),
        RetrainRequested(round_id="r3", block_id="b3", strategies=("since_change",), training_blocks=("b3",),
                         holdout_blocks=("b3",), holdout="", seed=2, trigger="adapt"),
        CandidateTrained(round_id="r3", model_version="v3", strategy="reuse", artifact=art(4), sha256="4",
                         training_blocks=("b1",), seconds=0.0, params={"reused_version": "v1"}),
        ChallengerEvaluated(round_id="r3", model_version="v3", metrics={"accuracy": 0.95},
                            champion_metrics={"accuracy": 0.7}),
        ModelPromoted(model_version="v3", previous_version="v2", strategy="reuse", reason="better", metrics={},
                      round_id="r3"),
        BlockArrived(block_id="b4", file="b4.csv", sha256="6", rows=10, labelled=True, artifact=art(6)),
        PerformanceMeasured(block_id="b4", model_version="v3", metrics={"accuracy": 0.95}),
    ]
    out = outcome_from_events(events)
    assert [b["strategy"] for b in out["blocks"]] == [None, "full", "since_change", "reuse"]
    assert out["blocks"][3]["reused"] == "v1"
    assert (out["drift_rounds"], out["promotions"], out["rounds_by_trigger"]) == (2, 2, {"drift": 1, "adapt": 1})
    assert out["rounds"][2]["candidates"] == {"reuse:v1": 0.95}


def test_every_scenario_is_generated_with_its_documented_timing():
    assert scenario_spec("sea/recurring") == {"name": "sea", "blocks": 12, "rows": 1000, "switch": "recurring",
                                              "drift_at": 5, "recur_after": 4}
    assert scenario_spec("agrawal/abrupt") == {"name": "agrawal", "blocks": 16, "rows": 1000, "switch": "abrupt",
                                               "drift_at": 9}
    for name in SCENARIOS:
        manifest = generate_scenario(**scenario_spec(name, rows_=10), seed=1).manifest
        assert manifest["scenario"] == name.split("/")[0]


def test_options_pick_scenarios_models_trigger_and_a_label():
    args = parse_args(["--scenarios", "sea/abrupt,agrawal/abrupt", "--models", "hgb", "--trigger",
                       "performance,data", "--label", "perf+data"])
    assert (args.scenarios, args.models, args.trigger, args.label) == (
        ("sea/abrupt", "agrawal/abrupt"), ("hgb",), ("performance", "data"), "perf+data")
    assert pipeline_config(0, "hgb", args.trigger)["retrain"] == {"trigger": ["performance", "data"]}
    quick = parse_args(["--quick"])
    assert (quick.seeds, quick.scenarios, quick.models, quick.blocks, quick.rows, quick.trigger) == (
        2, ("sea/abrupt", "sea/none"), ("lr",), 8, 500, None)
    full = parse_args([])
    assert (full.seeds, full.scenarios, full.models, full.blocks) == (10, tuple(SCENARIOS), ("lr", "hgb"), None)
    assert parse_args(["--trigger", ""]).trigger == ()
    for bad in (["--scenarios", "sea/sudden"], ["--models", "svm"], ["--trigger", "labels"],
                ["--scenarios", "sea/abab", "--blocks", "7"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


def test_false_alarms_that_started_a_round_are_counted_apart_from_warnings():
    run = recurring_run("reuse")
    run["blocks"][1].update(flagged=True, starts_round=False)
    s = summarise([run, recurring_run("reuse")])
    assert (s["false_alarms"], s["false_rounds"]) == (1, 0)
    run["blocks"][1]["starts_round"] = True
    assert summarise([run])["false_rounds"] == 1
