"""`calmops run`, `init` and `predict` as a user runs them: in a subprocess, reading what they print."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import pytest

from calmops_actors.blockfiles import write_scenario
from calmops_actors.cli import main
from calmops_actors.sources import source_files
from pipelines.synthetic.scenarios import generate_scenario

ROOT = Path(__file__).resolve().parents[2]


def calmops(*args: str, cwd: Path, ray_tmp: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "calmops_actors", *args], cwd=cwd, env=cli_env(ray_tmp),
                          capture_output=True, text=True, timeout=600)


def cli_env(ray_tmp: Path | None = None) -> dict[str, str]:
    """The CLI's environment; `ray_tmp` gives its Ray a private temp folder (no serve's Ray found elsewhere)."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)
    if ray_tmp is not None:
        env["RAY_TMPDIR"] = str(ray_tmp)
    return env


IGNORED = {"occurred_at", "seconds", "notes",  # times, wall-clock seconds, the Ray node a task ran on
           "calibration_sha256"}  # a calibrator's bytes (see MODEL_BYTES)
MODEL_BYTES = {"artifact", "sha256", "sha256s"}  # skops zips carry their write time: a model is its version + metrics


def decisions(home: Path, name: str) -> list[tuple]:
    """Every recorded event as (type, payload without times, wall-clock seconds and model bytes), in order."""
    from calmops_actors.home import Home, stream_id

    store = Home(home).open_store()
    try:
        return [(r.type, without(r.payload, IGNORED | (MODEL_BYTES if r.type in ("CandidateTrained",
                                                                                 "ArtifactsPruned") else set())))
                for r in store.read(stream_id(name))]
    finally:
        store.close()


def without(value, keys: set[str]):
    """`value` with `keys` dropped from every dict at any depth, and every model's artifact (a promoted model's
    calibrator is one too) reduced to its kind."""
    if isinstance(value, dict):
        if str(value.get("kind", "")).startswith("model-"):
            return {"kind": value["kind"]}
        return {k: without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list | tuple):
        return [without(v, keys) for v in value]
    return value


def ray_sessions(ray_tmp: Path) -> list[str]:
    """The Ray sessions started with this temp folder (Ray keeps each one's folder after it stops)."""
    return sorted(p.name for p in (ray_tmp / "ray").glob("session_2*"))


def drifting_folder(folder: Path, name: str) -> tuple[Path, list[Path]]:
    """Seeded SEA blocks with a concept switch (drift, rounds, a promotion), a broken file, and their config."""
    scenario = generate_scenario("sea", blocks=6, rows=500, seed=2, drift_at=4)
    (folder / "incoming").mkdir(parents=True)
    write_scenario(scenario, folder / "incoming", "csv")
    (folder / "incoming" / "broken.csv").write_bytes(b"\x00\x01garbage")
    config = folder / f"{name}.toml"
    config.write_text(f'name = "{name}"\ntarget = "target"\nsource = "incoming"\n[retrain]\n'
                      'strategies = ["full", "windowed"]\n')
    return config, source_files(folder / "incoming")  # what `run` takes, in its order


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


@pytest.mark.slow
@pytest.mark.ray
def test_run_records_the_decisions_the_actor_records_under_ray_and_starts_ray_only_when_needed(
        ray_local, tmp_path: Path) -> None:
    """`run` drives the actor class in its own process; the decisions are those of the same class as a Ray actor
    (as `serve` drives it) fed the same files the same way. A second run meets only files already in the log:
    it starts no Ray at all."""
    from calmops_actors.runtime import spawn_actor

    config, files = drifting_folder(tmp_path, "same")
    reference = tmp_path / "reference"
    actor = spawn_actor(reference.resolve(), "same", config_dir=tmp_path)
    try:
        ray_local.get(actor.configure.remote(tomllib.loads(config.read_text()), str(tmp_path)))
        outcomes = [ray_local.get(actor.ingest.remote(str(f), True))["outcome"] for f in files]
    finally:
        ray_local.kill(actor, no_restart=True)
    assert outcomes.count("accepted") == 6 and outcomes.count("rejected") == 1

    ray_tmp = Path(tempfile.mkdtemp(prefix="cr", dir="/tmp"))  # short: Ray's socket paths must stay < 108 bytes
    try:
        first = calmops("run", str(config), "--home", "home", "--json", cwd=tmp_path, ray_tmp=ray_tmp)
        assert first.returncode == 0, first.stderr
        assert json.loads(first.stdout.splitlines()[-1])["summary"]["ray"] == "started"
        expected, actual = decisions(reference, "same"), decisions(tmp_path / "home", "same")
        assert any(t == "ModelPromoted" for t, _ in expected) and any(t == "DriftDetected" for t, _ in expected)
        assert [t for t, _ in actual] == [t for t, _ in expected]
        for i, (want, got) in enumerate(zip(expected, actual, strict=True), 1):
            assert got == want, f"event {i} ({want[0]}) differs between `run` and the Ray actor"

        sessions = ray_sessions(ray_tmp)
        assert len(sessions) == 1  # the first run's
        again = calmops("run", str(config), "--home", "home", cwd=tmp_path, ray_tmp=ray_tmp)
        assert again.returncode == 0, again.stderr
        assert again.stdout.count("already in the log, skipped") == 7
        assert ray_sessions(ray_tmp) == sessions  # no Ray was started for it
        assert decisions(tmp_path / "home", "same") == actual
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.mark.slow
def test_run_joins_the_ray_of_a_serve_running_on_the_machine(tmp_path: Path) -> None:
    """A live `serve` advertises its Ray beside Ray's sessions; `run` (another home) joins it instead of starting
    one, and the advert goes when serve stops."""
    config, files = drifting_folder(tmp_path, "joiner")
    (tmp_path / "serve-configs").mkdir()
    ray_tmp = Path(tempfile.mkdtemp(prefix="cr", dir="/tmp"))
    serve = subprocess.Popen([sys.executable, "-m", "calmops_actors", "serve", "--no-ui", "--config-dir",
                              str(tmp_path / "serve-configs"), "--home", str(tmp_path / "serve-home")],
                             cwd=tmp_path, env=cli_env(ray_tmp), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, start_new_session=True)
    try:
        seen = []
        for line in serve.stdout:  # "Ctrl-C stops." once its Ray, supervisor and watcher are up
            seen.append(line)
            if line.startswith("Ctrl-C stops."):
                break
        assert seen and seen[-1].startswith("Ctrl-C stops."), "".join(seen)
        adverts = list((ray_tmp / "ray").glob("calmops-serve-*.json"))
        assert [json.loads(a.read_text())["pid"] for a in adverts] == [serve.pid]
        sessions = ray_sessions(ray_tmp)
        done = calmops("run", str(config), str(files[0]), str(files[1]), "--home", "home", cwd=tmp_path,
                       ray_tmp=ray_tmp)
        assert done.returncode == 0, done.stderr
        assert "Ray: joins serve's Ray at " in done.stdout and f"(pid {serve.pid})" in done.stdout
        assert ray_sessions(ray_tmp) == sessions  # serve's only: the run started none
        summary = [line.split() for line in done.stdout.splitlines() if line.startswith("joiner ")]
        assert len(summary) == 1 and summary[0][1] == "2" and summary[0][7] == "v1"  # blocks, champion
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        serve.wait(timeout=120)
        deadline = time.monotonic() + 30
        while list((ray_tmp / "ray").glob("calmops-serve-*.json")) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = list((ray_tmp / "ray").glob("calmops-serve-*.json"))
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert not left, "serve left its advert behind"


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
