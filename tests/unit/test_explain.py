"""pipelines/read_model/explain.py on a log built with `decide` + `evolve`: event lines, a block's story, a version's
lineage, the state summary. Pure: no store, no artifacts."""

from __future__ import annotations

import json

import pytest
from builders import Driver, accept, artifact, at, config, failure, outcome, register, success

from pipelines.core.decide import (
    AcceptLabels,
    Activate,
    BlockLabels,
    Passivate,
    PruneArtifacts,
    RecordDriftCheck,
    RecordEstimate,
    RecordLabelsCheck,
    RecordPerformance,
    RejectFile,
    RequestRetrain,
    ResumeRetraining,
    Rollback,
)
from pipelines.core.events import ALL_EVENTS
from pipelines.core.state import replay
from pipelines.drift.results import DriftAssessment, FeatureDrift, MultivariateDrift
from pipelines.read_model import explain


def feature(name: str, effect: float, drifted: bool) -> FeatureDrift:
    return FeatureDrift(name=name, kind="numeric", test="ks", statistic=effect / 3, p_value=1e-6 if drifted else 0.4,
                        p_adjusted=2e-6 if drifted else 0.5, effect=effect, effect_name="wasserstein_sd",
                        drifted=drifted, change=f"mean moved by +{effect:.2f} sd")


def drift_check(block_id: str, t: float, drifted: bool) -> RecordDriftCheck:
    features = (feature("x1", 0.9, True), feature("x2", 0.2, False), feature("x3", 0.05, False)) if drifted else (
        feature("x2", 0.04, False), feature("x1", 0.03, False))
    mmd = MultivariateDrift(test="mmd", statistic=0.05, p_value=0.004, drifted=drifted, subsample=500,
                            permutations=200, columns=3)
    reasons = ("x1: mean moved by +0.90 sd", "joint distribution changed") if drifted else ()
    return RecordDriftCheck(block_id=block_id, reference_blocks=("b1",), occurred_at=at(t),
                            assessment=DriftAssessment(drifted=drifted, reasons=reasons, features=features,
                                                       multivariate=mmd, concept=None, performance=None))


def start(round_id: str, block_id: str, t: float, trigger: str = "drift",
          strategies: tuple[str, ...] = ("full", "windowed")) -> RequestRetrain:
    return RequestRetrain(round_id=round_id, block_id=block_id, strategies=strategies, training_blocks=("b1",),
                          holdout_blocks=(block_id,), holdout=f"2 holdout rows (last 20% of rows): {block_id}[8:10]",
                          seed=0, occurred_at=at(t), trigger=trigger, new_blocks=(block_id,))


def scenario() -> Driver:
    d = Driver()
    d(register(config(circuit_breaker={"max_consecutive_failures": 1},
                      retrain={"trigger": ["performance", "concept", "data"]}), t=0))  # data drift starts rounds
    d(accept("b1", t=1))
    d(start("r1", "b1", t=2, trigger="initial", strategies=("full",)))           # initial round -> v1
    d(outcome("r1", success("full", 0.9), t=3))
    d(accept("b2", t=4))
    d(RecordPerformance(block_id="b2", model_version="v1", metrics={"accuracy": 0.88}, occurred_at=at(5)))
    d(RecordEstimate(block_id="b2", version="v1", metrics={"accuracy": 0.87}, interval={"accuracy": (0.8, 0.93)},
                     rows=10, calibration_sha256="c" * 64, occurred_at=at(5)))
    d(drift_check("b2", 6, drifted=False))                                        # quiet block
    d(accept("b3", t=7))
    d(drift_check("b3", 8, drifted=True))                                         # drift -> r2
    d(start("r2", "b3", t=9))
    d(outcome("r2", success("full", 0.95), success("windowed", 0.93), champion=0.7, t=10))  # v2 promoted
    d(accept("b4", t=11))
    d(drift_check("b4", 12, drifted=True))
    d(start("r3", "b4", t=13))
    d(outcome("r3", success("full", 0.90), failure("windowed", "ValueError: boom"), champion=0.95, t=14))  # rejected
    d(accept("b5", t=15))
    d(drift_check("b5", 16, drifted=True))
    d(start("r4", "b5", t=17))
    d(outcome("r4", failure("full"), champion=0.95, t=18))                        # circuit opens
    d(accept("b6", t=19))
    d(drift_check("b6", 20, drifted=True))                                        # no round: circuit open
    d(RejectFile(file="bad.csv", sha256="e" * 64, reason_code="empty_file", message="bad.csv is empty",
                 occurred_at=at(21)))
    d(ResumeRetraining(reason="checked the feed", occurred_at=at(22)))
    d(Rollback(to_version="v1", reason="v2 misbehaves", occurred_at=at(23)))
    d(PruneArtifacts(keep=0, occurred_at=at(24)))                                 # retention: v3's file goes
    d(Passivate(idle_seconds=300.0, config_sha256="c" * 64, snapshot_version=0, occurred_at=at(24.5)))
    d(Activate(reason="file b7.csv", occurred_at=at(24.6)))
    d(accept("b7", labelled=False, t=25))                                         # labels come later
    d(drift_check("b7", 26, drifted=False))
    d(AcceptLabels(file="b7-labels.csv", sha256="f" * 64, key="id", occurred_at=at(27),
                   blocks=(BlockLabels(block_id="b7", rows=10, artifact=artifact("labels:b7")),)))
    d(RecordLabelsCheck(block_id="b7", model_version="v1", metrics={"accuracy": 0.61}, occurred_at=at(28),
                        assessment=DriftAssessment(drifted=False, reasons=(), features=(), multivariate=None,
                                                   concept=None, performance=None)))
    return d


D = scenario()
LOG = D.log


def test_every_event_type_gets_its_own_readable_line() -> None:
    seen = {type(e).__name__ for e in LOG}
    assert seen >= set(e.__name__ for e in ALL_EVENTS) - {"ConfigChanged"}
    for event in LOG:
        line = explain.event_line(event)
        assert line and line != type(event).__name__ and "\n" not in line
    lines = {type(e).__name__: explain.event_line(e) for e in LOG}
    assert lines["ModelRolledBack"] == "rolled back from v2 to v1: v2 misbehaves"
    assert lines["ArtifactsPruned"] == ("model files of rejected v3, v4 pruned (retain_rejected = 0); "
                                        "their events stay")
    assert lines["CircuitOpened"].startswith("circuit opened after 1 failed round(s): retraining paused until ")
    assert lines["BlockRejected"] == "file bad.csv rejected [empty_file]: bad.csv is empty"


def test_a_drifted_block_tells_its_features_decision_and_round() -> None:
    story = explain.explain_block(LOG, "b3", top=2)
    json.dumps(story)  # JSON-able, as `explain --json` prints it
    assert story["drift"]["drifted"] and story["drift"]["drifted_features"] == ["x1"]
    assert [f["name"] for f in story["drift"]["top_features"]] == ["x1", "x2"]  # top 2 of 3
    assert story["decision"] == "drift detected: retraining round r2 started"
    round_ = story["round"]
    assert round_["round_id"] == "r2" and [c["version"] for c in round_["candidates"]] == ["v2", "v3"]
    assert round_["outcome"]["promoted"] == "v2"
    text = "\n".join(explain.block_lines(story))
    assert "x1               DRIFT ks 0.300, p_adj 2.0e-06, wasserstein_sd 0.900" in text
    assert "candidate v2 (full): accuracy 0.950 vs champion accuracy 0.700" in text
    assert "outcome: v2 promoted" in text


def test_a_block_tells_its_estimate_and_its_late_labels() -> None:
    quiet = explain.explain_block(LOG, "b2")
    assert quiet["estimate"]["metrics"] == {"accuracy": 0.87} and quiet["estimate"]["interval"]["accuracy"] == [0.8, 0.93]
    late = explain.explain_block(LOG, "b7")
    json.dumps(late)
    assert late["late_labels"]["key"] == "id" and late["late_labels"]["checked"]["model_version"] == "v1"
    assert late["performance"] == {"model_version": "v1", "metrics": {"accuracy": 0.61}, "late": True}
    text = "\n".join(explain.block_lines(late))
    assert "labels arrived later" in text and "scored on it once its labels came: accuracy 0.610" in text
    assert "estimated (cbpe, no labels) for v1: accuracy 0.870 [0.800, 0.930]" in "\n".join(explain.block_lines(quiet))
    lines = [explain.event_line(e) for e in LOG if type(e).__name__ == "PerformanceEstimated"]
    assert lines == ["v1's performance on b2 estimated without labels: accuracy 0.870 [0.800, 0.930]"]


def test_a_quiet_block_and_a_rejected_round_and_a_paused_circuit() -> None:
    quiet = explain.explain_block(LOG, "b2")
    assert quiet["decision"] == "no drift: nothing to do" and quiet["round"] is None
    assert quiet["performance"] == {"model_version": "v1", "metrics": {"accuracy": 0.88}}
    rejected = explain.explain_block(LOG, "b4")
    assert rejected["round"]["outcome"]["rejected"] == ["v4"]
    assert rejected["round"]["failures"][0]["strategy"] == "windowed"
    paused = explain.explain_block(LOG, "b6")
    assert paused["decision"].startswith("drift detected; no round has started since (the circuit was open until ")
    first = explain.explain_block(LOG, "b1")
    assert first["decision"] == "no model yet: initial round r1 trained the first model"


def test_unknown_block_or_version_lists_the_known_ones() -> None:
    with pytest.raises(explain.UnknownSubject, match="known blocks: b1, b2, b3, b4, b5, b6"):
        explain.explain_block(LOG, "b9")
    with pytest.raises(explain.UnknownSubject, match="known versions: v1, v2, v3, v4"):
        explain.explain_version(LOG, "v9")


def test_a_version_knows_its_lineage_trigger_metrics_and_life() -> None:
    story = explain.explain_version(LOG, "v2")
    json.dumps(story)
    assert story["parent"] == "v1" and story["lineage"] == ["v2", "v1"] and story["strategy"] == "full"
    assert story["training_blocks"] == ["b1"]
    assert story["metrics"] == {"accuracy": 0.95} and story["champion_metrics"] == {"accuracy": 0.7}
    assert story["triggered_by"] == [{"block_id": "b3", "reasons": ["x1: mean moved by +0.90 sd",
                                                                    "joint distribution changed"],
                                      "drifted_features": ["x1"]}]
    assert [h["event"] for h in story["history"]] == ["promoted", "rolled back"]
    assert story["status"] == "retired" and not story["is_champion"]
    text = "\n".join(explain.version_lines(story))
    assert "parent: v1; lineage: v2 <- v1" in text
    assert "champion v1 on the same rows: accuracy 0.700" in text
    assert "triggered by drift on b3: x1: mean moved by +0.90 sd; joint distribution changed" in text
    first = explain.explain_version(LOG, "v1")
    assert first["round"]["trigger"] == "initial" and first["triggered_by"] == [] and first["is_champion"]
    assert [h["event"] for h in first["history"]] == ["promoted", "retired", "restored by rollback"]


def test_state_summary_names_champion_reference_circuit_and_counters() -> None:
    state = replay(LOG)
    summary = explain.state_summary(state)
    json.dumps(summary)
    assert summary["champion"]["version"] == "v1" and summary["lineage"] == ["v1"]
    assert summary["reference"] == {"rule": "the champion's training blocks", "blocks": ["b1"]}
    assert summary["counters"]["rollbacks"] == 1 and summary["counters"]["rejected_files"] == 1
    assert not summary["circuit"]["open"] and summary["circuit"]["last_reason"] == "resumed by operator: checked the feed"
    lines = explain.state_lines(summary)
    assert lines[0].startswith("pipeline p at version ")
    assert "  circuit     closed (0 consecutive failed round(s)); last closed: resumed by operator: checked the feed" \
        in lines


def test_reference_follows_the_configured_rule() -> None:
    d = Driver()
    d(register(config(drift={"reference": "last_blocks", "reference_blocks": 2})))
    for i in range(1, 5):
        d(accept(f"b{i}", t=i))
    assert explain.reference_blocks(d.state) == ("last 2 blocks", ["b3", "b4"])


@pytest.mark.parametrize(("value", "text"), [(0.91234, "0.912"), (0.0004, "4.0e-04"), (0.0, "0.000"), (None, "n/a")])
def test_numbers_for_people(value, text) -> None:
    assert explain.number(value) == text
