"""`calmops run`, `init` and `predict` as a user runs them: in a subprocess, reading what they print."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from calmops_actors.blockfiles import write_scenario
from calmops_actors.cli import main
from pipelines.synthetic.scenarios import generate_scenario

ROOT = Path(__file__).resolve().parents[2]


def calmops(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)
    return subprocess.run([sys.executable, "-m", "calmops_actors", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_run_end_to_end_resumes_and_predicts(tmp_path: Path) -> None:
    scenario = generate_scenario("sea", blocks=6, rows=500, seed=2, drift_at=4)
    (tmp_path / "incoming").mkdir()
    write_scenario(scenario, tmp_path / "incoming", "csv")
    (tmp_path / "incoming" / "broken.csv").write_bytes(b"\x00\x01garbage")
    (tmp_path / "sea.toml").write_text('name = "sea"\ntarget = "target"\n[retrain]\nstrategies = ["full", '
                                       '"windowed"]\n')
    first = calmops("run", "sea.toml", "--home", "home", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    lines = [json.loads(line) for line in first.stdout.splitlines()]
    outcomes = {line["file"]: line["outcome"] for line in lines if "file" in line}
    assert outcomes["broken.csv"] == "rejected" and outcomes["block_0006.csv"] == "accepted"
    summary = lines[-1]["summary"]
    assert summary["blocks"] == 6 and summary["rejected_files"] == 1 and summary["champion"] is not None
    assert "Traceback" not in first.stderr

    again = calmops("run", "sea.toml", "--home", "home", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already in the log, skipped") == 7
    assert f" {summary['champion']} " in again.stdout

    scored = calmops("predict", "sea", "incoming/block_0001.csv", "--home", "home", "--out", "p.csv", cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr
    header, *rows = (tmp_path / "p.csv").read_text().splitlines()
    assert header == "target,model_version,prediction,proba_0,proba_1" and len(rows) == 500  # target kept


def test_run_with_a_bad_config_says_what_to_fix(tmp_path: Path, capsys) -> None:
    (tmp_path / "x.toml").write_text('name = "x"\ntarget = "y"\n[training]\ninitial_blocks = "two"\n')
    assert main(["run", str(tmp_path / "x.toml"), "--home", str(tmp_path / "h")]) == 2
    err = capsys.readouterr().err
    assert "x.toml: training.initial_blocks: must be a whole number, got a string ('two')" in err
    assert not (tmp_path / "h").exists()


def test_run_with_no_files_says_where_it_looked(tmp_path: Path, capsys) -> None:
    (tmp_path / "x.toml").write_text('name = "x"\ntarget = "y"\nsource = "in"\n')
    assert main(["run", str(tmp_path / "x.toml"), "--home", str(tmp_path / "h")]) == 2
    assert "no files to process in" in capsys.readouterr().err


def test_init_writes_a_valid_template_and_refuses_to_overwrite(tmp_path: Path, capsys) -> None:
    assert main(["init", "churn", "--dir", str(tmp_path)]) == 0
    from pipelines.config.pipeline import load_config

    assert load_config(tmp_path / "churn.toml").name == "churn"
    assert main(["init", "churn", "--dir", str(tmp_path)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert main(["init", "../evil", "--dir", str(tmp_path)]) == 2


def test_a_second_pipeline_in_the_same_folder_gets_its_own_input_folder(tmp_path: Path, capsys) -> None:
    from pipelines.config.pipeline import load_config

    assert main(["init", "churn", "--dir", str(tmp_path)]) == 0
    assert main(["init", "fraud", "--dir", str(tmp_path)]) == 0
    assert "incoming-fraud" in capsys.readouterr().out and (tmp_path / "incoming-fraud").is_dir()
    assert load_config(tmp_path / "churn.toml").source == "incoming"
    assert load_config(tmp_path / "fraud.toml").source == "incoming-fraud"
    assert main(["init", "churn", "--dir", str(tmp_path), "--force"]) == 0  # rewriting churn keeps its folder
    assert load_config(tmp_path / "churn.toml").source == "incoming"


def test_every_command_has_help(capsys) -> None:
    from calmops_actors.cli import COMMANDS

    for command in COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert "usage: calmops" in capsys.readouterr().out
