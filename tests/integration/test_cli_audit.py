"""The replay and audit commands end to end on a real home (tests/scenario_home.py: drift, rounds, promotions, a
rejected challenger, a rejected file and a rollback, built once per session by the real actor on local Ray).

Commands run in-process through `calmops_actors.cli.main` (a few in a subprocess, as a user would run them).
Any test that changes the home works on a copy.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from log_tools import rehash

from calmops_actors import cli

pytestmark = [pytest.mark.ray, pytest.mark.slow]

MINE = ("replay", "verify", "explain", "audit", "status", "events", "export", "rollback", "resume")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands, whether or not cli.COMMANDS lists them yet."""
    monkeypatch.setattr(cli, "COMMANDS", tuple(dict.fromkeys(cli.COMMANDS + MINE)))


@pytest.fixture
def calmops(capsys: pytest.CaptureFixture):
    def run(*args: str) -> tuple[int, str, str]:
        code = cli.main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture
def home_copy(scenario_home: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(scenario_home, copy)
    return copy


def query(home: Path, sql: str, args: tuple = ()) -> list[tuple]:
    with sqlite3.connect(home / "log.sqlite") as conn:
        return conn.execute(sql, args).fetchall()


def payload_of(home: Path, position: int) -> dict:
    return json.loads(query(home, "SELECT payload FROM events WHERE position = ?", (position,))[0][0])


# --- verify ----------------------------------------------------------------------------------------


def test_verify_passes_on_an_intact_home(calmops, scenario_home: Path) -> None:
    code, out, _ = calmops("verify", "--home", scenario_home)
    pruned = {sha for (p,) in query(scenario_home, "SELECT position FROM events WHERE type = 'ArtifactsPruned'")
              for sha in payload_of(scenario_home, p)["sha256s"]}  # deleted by retention on purpose
    artifacts = {json.dumps(payload_of(scenario_home, p)["artifact"], sort_keys=True) for (p,) in query(
        scenario_home, "SELECT position FROM events WHERE type IN ('BlockArrived', 'CandidateTrained')")
        if payload_of(scenario_home, p)["artifact"]["sha256"] not in pruned}
    total = query(scenario_home, "SELECT COUNT(*) FROM events")[0][0]
    assert code == 0
    assert f"{total} records, hash chain intact" in out
    assert f"artifacts: OK, {len(artifacts)} checked" in out
    assert out.rstrip().endswith("verify: intact")


def test_verify_names_the_position_of_a_payload_changed_with_sqlite(calmops, home_copy: Path) -> None:
    (position,) = query(home_copy, "SELECT position FROM events WHERE type = 'BlockArrived' ORDER BY position "
                                   "LIMIT 1 OFFSET 4")[0]
    with sqlite3.connect(home_copy / "log.sqlite") as conn:
        conn.execute("""UPDATE events SET payload = replace(payload, '"rows":600', '"rows":601')
                        WHERE position = ?""", (position,))
    code, out, _ = calmops("verify", "--home", home_copy, "--skip-artifacts")
    assert code == 1
    assert f"log: BROKEN at position {position}" in out
    assert f"FAILED (first problem: log position {position})" in out
    code, out, _ = calmops("verify", "--home", home_copy, "--json")
    report = json.loads(out)
    assert code == 1 and report["log"]["first_bad_position"] == position
    # the artifact scan reads the log too, and stops at the record it cannot trust
    assert not report["artifacts"]["ok"] and f"position {position}" in report["artifacts"]["note"]


def test_verify_names_a_modified_artifact_file(calmops, home_copy: Path) -> None:
    (position,) = query(home_copy, "SELECT position FROM events WHERE type = 'CandidateTrained' "
                                   "ORDER BY position LIMIT 1")[0]
    artifact = payload_of(home_copy, position)["artifact"]
    name = f"{artifact['sha256']}.{artifact['format']}"
    path = home_copy / "artifacts" / artifact["sha256"][:2] / name
    path.write_bytes(path.read_bytes() + b"\0")
    code, out, _ = calmops("verify", "--home", home_copy)
    assert code == 1
    assert "log: OK" in out
    assert f"{name} (model v1 of pipeline sea, recorded at position {position}): " in out
    assert "was changed after it was written" in out
    path.unlink()
    code, out, _ = calmops("verify", "--home", home_copy)
    assert code == 1 and f"artifact {name} (model-skops) is missing" in out


# --- replay, explain -----------------------------------------------------------------------------


def test_replay_rebuilds_the_state_now_and_at_earlier_points(calmops, scenario_home: Path) -> None:
    code, out, _ = calmops("replay", "sea", "--home", scenario_home)
    assert code == 0
    assert "  champion    v1 (full, round r1, trained on 1 block(s))" in out  # the scenario ends rolled back to v1
    assert "  counters    blocks 8, rejected files 1" in out and "rollbacks 1" in out
    promotions = [(p, payload_of(scenario_home, p)) for (p,) in query(
        scenario_home, "SELECT position FROM events WHERE type = 'ModelPromoted' ORDER BY position")]
    (at, second), first = promotions[1], promotions[0][1]
    code, out, _ = calmops("replay", "sea", "--home", scenario_home, "--until-version", at, "--json")
    state = json.loads(out)
    assert code == 0 and state["version"] == at
    assert state["champion"]["version"] == second["model_version"]
    assert state["lineage"] == [second["model_version"], first["model_version"]]
    code, out, _ = calmops("replay", "sea", "--home", scenario_home, "--until-version", at - 1, "--json")
    assert json.loads(out)["champion"]["version"] == first["model_version"]
    code, out, _ = calmops("replay", "sea", "--home", scenario_home, "--events", "--json", "--until-position", 3)
    lines = [json.loads(line) for line in out.splitlines()]
    assert [e["type"] for e in lines] == ["PipelineRegistered", "SchemaFixed", "BlockArrived"]
    assert set(lines[0]) == {"position", "stream", "version", "type", "recorded_at", "data"}
    assert lines[2]["data"] == payload_of(scenario_home, 3)


def test_replay_events_prints_one_readable_line_per_event(calmops, scenario_home: Path) -> None:
    total = query(scenario_home, "SELECT COUNT(*) FROM events WHERE stream_id = 'pipeline-sea'")[0][0]
    code, out, _ = calmops("replay", "sea", "--home", scenario_home, "--events")
    lines = out.splitlines()
    assert code == 0 and len(lines) == total + 1 and lines[-1] == f"{total} event(s)"
    assert "ModelRolledBack      rolled back from " in lines[-2] and "to v1: test: back to the first model" in lines[-2]
    assert any("BlockRejected        file block_0004b.csv rejected [wrong_delimiter]" in line for line in lines)


def test_a_snapshot_changes_no_answer(calmops, home_copy: Path) -> None:
    _, plain, _ = calmops("replay", "sea", "--home", home_copy, "--json", "--no-snapshot")
    code, out, _ = calmops("replay", "sea", "--home", home_copy, "--save-snapshot")
    assert code == 0 and "snapshot saved at version" in out
    _, cached, _ = calmops("replay", "sea", "--home", home_copy, "--json")
    a, b = json.loads(plain), json.loads(cached)
    assert b["from_snapshot"] == a["version"] and a.pop("from_snapshot") is None and b.pop("from_snapshot")
    assert a == b


def round_after(home: Path, block_id: str) -> tuple[dict, list[dict], dict]:
    """From the raw log: the round started after `block_id`, its candidates, and how it ended."""
    rows = [(t, json.loads(d)) for t, d in query(home, "SELECT type, payload FROM events ORDER BY position")]
    start = next(d for t, d in rows if t == "RetrainRequested" and d["block_id"] == block_id)
    candidates = [d for t, d in rows if t == "CandidateTrained" and d["round_id"] == start["round_id"]]
    end = next(d | {"type": t} for t, d in rows if t in ("ModelPromoted", "ChallengerRejected")
               and d.get("round_id") == start["round_id"])
    return start, candidates, end


def test_explain_a_known_block(calmops, scenario_home: Path) -> None:
    start, candidates, end = round_after(scenario_home, "block_0005")
    code, out, _ = calmops("explain", "sea", "--home", scenario_home, "--block", "block_0005")
    assert code == 0
    assert "  drift check against block_0001" in out and ": DRIFT (1 of 3 features drifted)" in out
    assert "    - feat_3: mean moved by +" in out  # the seeded covariate shift on feat_3 at block 5
    top = [line.split()[:2] for line in out.splitlines() if line.startswith("    feat_")]
    assert top[0] == ["feat_3", "DRIFT"] and all(mark == "ok" for _, mark in top[1:])
    assert f"decision: drift detected: retraining round {start['round_id']} started" in out
    for c in candidates:
        assert f"    candidate {c['model_version']} ({c['strategy']}): accuracy " in out
    code, out, _ = calmops("explain", "sea", "--home", scenario_home, "--block", "block_0005", "--json")
    story = json.loads(out)
    assert story["drift"]["drifted_features"] == ["feat_3"] and story["round"]["round_id"] == start["round_id"]
    if end["type"] == "ModelPromoted":
        assert story["round"]["outcome"] == {"promoted": end["model_version"], "previous": end["previous_version"],
                                             "reason": end["reason"]}
    else:
        assert story["round"]["outcome"]["rejected"] == end["model_versions"]


def test_explain_a_known_version(calmops, scenario_home: Path) -> None:
    _, candidates, end = round_after(scenario_home, "block_0005")
    version = end["model_version"] if end["type"] == "ModelPromoted" else candidates[0]["model_version"]
    trained = next(c for c in candidates if c["model_version"] == version)
    code, out, _ = calmops("explain", "sea", "--home", scenario_home, "--version", version)
    assert code == 0
    assert f"by strategy {trained['strategy']} in round {trained['round_id']}" in out
    assert f"parent: {trained['parent_version']}; lineage: {version} <- {trained['parent_version']}" in out
    assert f"training blocks: {', '.join(trained['training_blocks'])}" in out
    assert "block_0005" in trained["training_blocks"]
    assert "triggered by drift on block_0005: feat_3: mean moved by +" in out
    if end["type"] == "ModelPromoted":
        assert f"promoted: replacing {end['previous_version']}: {end['reason']}" in out
    code, out, _ = calmops("explain", "sea", "--home", scenario_home, "--version", "v1", "--json")
    story = json.loads(out)
    assert story["parent"] is None and story["round"]["trigger"] == "initial" and story["is_champion"]
    assert story["training_blocks"] == ["block_0001"]
    assert story["history"][0]["event"] == "promoted" and story["history"][-1] == {
        "event": "restored by rollback", "at": story["history"][-1]["at"], "from": story["history"][-1]["from"],
        "reason": "test: back to the first model"}


def test_explain_an_unknown_block_lists_the_known_ones(calmops, scenario_home: Path) -> None:
    code, out, err = calmops("explain", "sea", "--home", scenario_home, "--block", "block_9999")
    assert code == 2 and out == ""
    assert "error: no block 'block_9999' in pipeline 'sea'; known blocks: block_0001," in err


# --- rollback, resume ------------------------------------------------------------------------------


def test_rollback_then_replay_shows_it(calmops, home_copy: Path) -> None:
    version = query(home_copy, "SELECT MAX(version) FROM events WHERE stream_id = 'pipeline-sea'")[0][0]
    promoted = [payload_of(home_copy, p)["model_version"] for (p,) in query(
        home_copy, "SELECT position FROM events WHERE type = 'ModelPromoted' ORDER BY position")]
    target = next(v for v in reversed(promoted) if v != "v1")  # a promoted model is never pruned
    code, out, _ = calmops("rollback", "sea", "--home", home_copy, "--to", target, "--reason", "incident 42")
    assert code == 0 and f"rolled back from v1 to {target} (recorded as version {version + 1}): incident 42" in out
    code, out, _ = calmops("replay", "sea", "--home", home_copy, "--json")
    state = json.loads(out)
    assert state["champion"]["version"] == target and state["counters"]["rollbacks"] == 2
    assert state["version"] == version + 1
    code, out, _ = calmops("events", "--home", home_copy, "--type", "ModelRolledBack", "--json")
    assert [json.loads(line)["data"]["reason"] for line in out.splitlines()] == ["test: back to the first model",
                                                                                 "incident 42"]
    code, out, _ = calmops("verify", "--home", home_copy, "--skip-artifacts")
    assert code == 0  # written through the store: the chain still holds


def test_rollback_to_a_rejected_candidate_needs_force(calmops, home_copy: Path) -> None:
    def versions(kind: str, key: str) -> list[str]:
        found = []
        for (p,) in query(home_copy, f"SELECT position FROM events WHERE type = '{kind}' ORDER BY position"):
            value = payload_of(home_copy, p)[key]
            found += value if isinstance(value, list) else [value]
        return found

    never_served = set(versions("CandidateTrained", "model_version")) - set(
        versions("ModelPromoted", "model_version")) - set(versions("ArtifactsPruned", "model_versions"))
    target = max(never_served, key=lambda v: int(v[1:]))  # a candidate that lost, its file still kept
    code, _, err = calmops("rollback", "sea", "--home", home_copy, "--to", target, "--reason", "x")
    assert code == 2 and f"{target} was never the champion of 'sea'" in err and "--force" in err
    code, out, _ = calmops("rollback", "sea", "--home", home_copy, "--to", target, "--reason", "holdout bug",
                           "--force", "--json")
    assert code == 0 and json.loads(out)["recorded"][0]["forced"] is True


def test_rollback_refusals_are_user_errors(calmops, home_copy: Path) -> None:
    before = query(home_copy, "SELECT COUNT(*) FROM events")[0][0]
    code, _, err = calmops("rollback", "sea", "--home", home_copy, "--to", "v99", "--reason", "x")
    assert code == 2 and "has no model version 'v99'; known versions: v1, v2," in err
    code, _, err = calmops("rollback", "sea", "--home", home_copy, "--to", "v1", "--reason", "x")
    assert code == 2 and "v1 is already the champion of 'sea'" in err
    assert "Traceback" not in err
    assert query(home_copy, "SELECT COUNT(*) FROM events")[0][0] == before


def test_resume_with_a_closed_circuit_records_nothing(calmops, home_copy: Path) -> None:
    before = query(home_copy, "SELECT COUNT(*) FROM events")[0][0]
    code, out, _ = calmops("resume", "sea", "--home", home_copy, "--reason", "just checking")
    assert code == 0 and "the circuit is not open, nothing to resume" in out
    assert query(home_copy, "SELECT COUNT(*) FROM events")[0][0] == before


# --- audit ---------------------------------------------------------------------------------------


def test_audit_reproduces_every_recorded_decision(calmops, scenario_home: Path) -> None:
    code, out, _ = calmops("audit", "sea", "--home", scenario_home, "--json")
    report = json.loads(out)
    checks = report["checks"]
    kinds = {c["kind"] for c in checks}
    drift_checks = query(scenario_home, "SELECT COUNT(*) FROM events WHERE type = 'DriftChecked'")[0][0]
    pruned = {v for (p,) in query(scenario_home, "SELECT position FROM events WHERE type = 'ArtifactsPruned'")
              for v in payload_of(scenario_home, p)["model_versions"]}  # no file left to re-score
    evaluations = sum(payload_of(scenario_home, p)["model_version"] not in pruned for (p,) in query(
        scenario_home, "SELECT position FROM events WHERE type = 'ChallengerEvaluated'"))
    assert [c for c in checks if not c["ok"]] == []
    assert code == 0 and report["ok"] and kinds == {"drift", "performance", "candidate", "promotion", "trigger",
                                                    "round", "estimate"}
    estimates = query(scenario_home, "SELECT COUNT(*) FROM events WHERE type = 'PerformanceEstimated'")[0][0]
    assert estimates > 0 and sum(c["kind"] == "estimate" for c in checks) == estimates
    rounds = query(scenario_home, "SELECT COUNT(*) FROM events WHERE type = 'RetrainRequested'")[0][0]
    detected = query(scenario_home, "SELECT COUNT(*) FROM events WHERE type = 'DriftDetected'")[0][0]
    assert sum(c["kind"] == "round" for c in checks) == rounds and sum(c["kind"] == "trigger" for c in checks) == detected
    assert sum(c["kind"] == "drift" for c in checks) == drift_checks
    assert sum(c["kind"] == "candidate" for c in checks) == evaluations
    # what could not be re-checked is said, not hidden; --strict makes it a failure
    evaluated_pruned = [payload_of(scenario_home, p)["model_version"] for (p,) in query(
        scenario_home, "SELECT position FROM events WHERE type = 'ChallengerEvaluated'")
        if payload_of(scenario_home, p)["model_version"] in pruned]
    assert report["skipped"]["versions"] == evaluated_pruned and report["skipped"]["count"] == len(pruned)
    code, out, _ = calmops("audit", "sea", "--home", scenario_home, "--skip-drift")
    assert code == 0 and f"{len(pruned)} candidate score(s) not re-checked: model files pruned" in out
    code, _, _ = calmops("audit", "sea", "--home", scenario_home, "--skip-drift", "--strict")
    assert code == (1 if pruned else 0)


def test_audit_names_a_decision_that_does_not_reproduce(calmops, home_copy: Path) -> None:
    pruned = {v for (p,) in query(home_copy, "SELECT position FROM events WHERE type = 'ArtifactsPruned'")
              for v in payload_of(home_copy, p)["model_versions"]}  # a pruned candidate is not re-scored
    position = [p for (p,) in query(home_copy, "SELECT position FROM events WHERE type = 'ChallengerEvaluated' "
                                               "ORDER BY position")
                if payload_of(home_copy, p)["model_version"] not in pruned][2]
    data = payload_of(home_copy, position)
    data["metrics"]["accuracy"] = round(data["metrics"]["accuracy"] - 0.05, 6)
    with sqlite3.connect(home_copy / "log.sqlite") as conn:
        conn.execute("UPDATE events SET payload = ? WHERE position = ?",
                     (json.dumps(data, sort_keys=True, separators=(",", ":")), position))
    rehash(home_copy / "log.sqlite", forget_head=True)  # a valid log whose decision does not reproduce
    code, out, _ = calmops("audit", "sea", "--home", home_copy, "--skip-drift")
    assert code == 1
    line = next(line for line in out.splitlines() if line.startswith("MISMATCH"))
    assert line.startswith(f"MISMATCH candidate   {data['model_version']} (") and f"(position {position})" in line
    assert "holdout accuracy: recorded " in out
    assert out.splitlines()[-1].startswith("audit sea: 1 of ")


# --- status, events, export ----------------------------------------------------------------------


def test_status_lists_every_pipeline(calmops, scenario_home: Path) -> None:
    code, out, _ = calmops("status", "--home", scenario_home)
    header, row = out.splitlines()[:2]
    assert code == 0 and header.split()[:5] == ["pipeline", "health", "activity", "champion", "strategy"]
    assert row.split()[:6] == ["sea", "ok", "active", "v1", "full", "block_0008"]
    assert "estimate" in header.split() and " accuracy 0." in row  # the newest block's estimate, no labels
    code, out, _ = calmops("status", "--home", scenario_home, "--json")
    (summary,) = json.loads(out)
    assert summary["pipeline"] == "sea" and summary["champion"]["version"] == "v1"
    assert summary["activity"] == "active" and summary["estimate"]["metric"] == "accuracy"


def test_events_filters_by_type_time_pipeline_and_limit(calmops, scenario_home: Path) -> None:
    drifts = query(scenario_home, "SELECT position FROM events WHERE type = 'DriftChecked' ORDER BY position")
    code, out, _ = calmops("events", "--home", scenario_home, "--type", "DriftChecked", "--json")
    assert code == 0 and [json.loads(line)["position"] for line in out.splitlines()] == [p for (p,) in drifts]
    code, out, _ = calmops("events", "--home", scenario_home, "--type", "DriftChecked", "--limit", "2")
    first = payload_of(scenario_home, drifts[0][0])["block_id"]
    assert out.splitlines()[-1] == "2 event(s)" and len(out.splitlines()) == 3
    assert f"DriftChecked         {first} checked: " in out.splitlines()[0]
    (since,) = query(scenario_home, "SELECT recorded_at FROM events WHERE position = ?", (drifts[-1][0],))[0]
    code, out, _ = calmops("events", "--home", scenario_home, "--since", since, "--pipeline", "sea", "--json")
    assert json.loads(out.splitlines()[0])["position"] <= drifts[-1][0]
    assert all(json.loads(line)["recorded_at"] >= since for line in out.splitlines())
    code, _, err = calmops("events", "--home", scenario_home, "--type", "DriftDetectd")
    assert code == 2 and "unknown event type 'DriftDetectd' (did you mean DriftDetected?)" in err


def test_export_jsonl_and_parquet_hold_every_event(calmops, scenario_home: Path, tmp_path: Path) -> None:
    rows = query(scenario_home, "SELECT position, type, payload, hash FROM events WHERE stream_id = 'pipeline-sea' "
                                "ORDER BY position")
    code, out, _ = calmops("export", "sea", "--home", scenario_home, "--format", "jsonl", "--out", tmp_path / "e.jsonl")
    assert code == 0 and f"wrote {len(rows)} event(s)" in out
    lines = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert [(e["position"], e["type"], e["data"]) for e in lines] == [(p, t, json.loads(d)) for p, t, d, _ in rows]
    code, _, _ = calmops("export", "sea", "--home", scenario_home, "--format", "parquet", "--out", tmp_path / "e.pq")
    frame = pd.read_parquet(tmp_path / "e.pq")
    assert code == 0 and frame["position"].tolist() == [r[0] for r in rows]
    assert frame["hash"].tolist() == [r[3] for r in rows]
    assert [json.loads(d) for d in frame["data"]] == [json.loads(r[2]) for r in rows]
    code, _, err = calmops("export", "sea", "--home", scenario_home, "--format", "jsonl", "--out", tmp_path / "e.jsonl")
    assert code == 2 and "exists; pass --force" in err


def test_replay_rebuilds_the_projections(calmops, home_copy: Path) -> None:
    code, out, _ = calmops("replay", "--rebuild-projections", "--home", home_copy, "--json")
    result = json.loads(out)
    assert code == 0 and result["position"] == query(home_copy, "SELECT MAX(position) FROM events")[0][0]
    assert (home_copy / "projections.sqlite").is_file()


# --- user errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["replay", "nope"], ["explain", "nope", "--version", "v1"], ["audit", "nope"],
                                     ["export", "nope", "--format", "jsonl", "--out", "x.jsonl"],
                                     ["rollback", "nope", "--to", "v1", "--reason", "x"], ["resume", "nope"],
                                     ["events", "--pipeline", "nope"]])
def test_an_unknown_pipeline_is_a_clear_user_error(calmops, scenario_home: Path, command) -> None:
    code, out, err = calmops(*command, "--home", scenario_home)
    assert code == 2 and out == ""
    assert err == f"error: no pipeline named 'nope' in {scenario_home}; known pipelines: sea\n"


@pytest.mark.parametrize("command", [["replay", "sea"], ["verify"], ["status"], ["events"], ["audit", "sea"],
                                     ["rollback", "sea", "--to", "v1", "--reason", "x"]])
def test_a_missing_home_is_a_user_error_and_is_not_created(calmops, tmp_path: Path, command) -> None:
    missing = tmp_path / "no-home"
    code, _, err = calmops(*command, "--home", missing)
    assert code == 2 and err.startswith(f"error: no calmops home at {missing}: give --home")
    assert not missing.exists()


@pytest.mark.parametrize("name", MINE)
def test_every_command_has_help_with_examples_and_exit_codes(capsys, name: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main([name, "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and "--home" in out and "exit codes:" in out and "examples:" in out


# --- as a user runs them ---------------------------------------------------------------------------

def subprocess_run(*args: str) -> subprocess.CompletedProcess:
    """`python -m calmops_actors ...` as a user runs it (needs the commands in cli.COMMANDS)."""
    return subprocess.run([sys.executable, "-m", "calmops_actors", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)


def test_in_a_subprocess_verify_fails_with_exit_1_on_tampering(home_copy: Path) -> None:
    with sqlite3.connect(home_copy / "log.sqlite") as conn:
        conn.execute("""UPDATE events SET payload = replace(payload, '"labelled":true', '"labelled":false')
                        WHERE position = 3""")
    done = subprocess_run("verify", "--home", home_copy, "--skip-artifacts")
    assert done.returncode == 1 and "log: BROKEN at position 3" in done.stdout


def test_in_a_subprocess_an_unknown_pipeline_exits_2_without_a_traceback(scenario_home: Path) -> None:
    done = subprocess_run("replay", "nope", "--home", scenario_home)
    assert done.returncode == 2 and done.stdout == ""
    assert "known pipelines: sea" in done.stderr and "Traceback" not in done.stderr


def test_a_damaged_log_is_a_user_error_and_verify_names_it(calmops, home_copy: Path) -> None:
    with sqlite3.connect(home_copy / "log.sqlite") as conn:
        conn.execute("UPDATE events SET payload = '{\"broken' WHERE position = 5")
    code, out, err = calmops("replay", "sea", "--home", home_copy)
    assert code == 2 and out == "" and "position 5" in err and "run `calmops verify`" in err
    assert "Traceback" not in err
    code, out, _ = calmops("verify", "--home", home_copy)
    assert code == 1 and "log: BROKEN at position 5" in out


def test_audit_names_a_round_or_a_drift_decision_the_rules_would_not_take(calmops, home_copy: Path) -> None:
    (detected,) = query(home_copy, "SELECT position FROM events WHERE type = 'DriftDetected' LIMIT 1")[0]
    data = payload_of(home_copy, detected)
    data["starts_round"] = not data["starts_round"]
    (request,) = query(home_copy, "SELECT position FROM events WHERE type = 'RetrainRequested' "
                                  "AND json_extract(payload, '$.trigger') = 'adapt' LIMIT 1")[0]
    planned = payload_of(home_copy, request)
    planned["change_rows"] += 1
    with sqlite3.connect(home_copy / "log.sqlite") as conn:
        for position, payload in ((detected, data), (request, planned)):
            conn.execute("UPDATE events SET payload = ? WHERE position = ?",
                         (json.dumps(payload, sort_keys=True, separators=(",", ":")), position))
    rehash(home_copy / "log.sqlite", forget_head=True)
    code, out, _ = calmops("audit", "sea", "--home", home_copy, "--skip-candidates")
    assert code == 1
    assert f"MISMATCH trigger     drift on {data['block_id']} (position {detected})" in out
    assert f"starts_round: recorded {data['starts_round']}, now {not data['starts_round']}" in out
    assert "no round is due after" in out  # the drift round that the flipped decision would not have started
    assert f"rows after the change: recorded {planned['change_rows']}, now {planned['change_rows'] - 1}" in out
