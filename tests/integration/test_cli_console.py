"""The CLI as an operating console (issue #25): `run` checks first, says what each block led to, tells scripts
when nothing was accepted and stops cleanly on Ctrl-C; `predict` keeps the user's id columns; `status`,
`events`, `export`, `resume` and `generate` keep their flags and files consistent. Run as a user runs them:
in a subprocess, reading what they print."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from calmops_actors.blockfiles import write_scenario
from calmops_actors.cli import main
from pipelines.synthetic.scenarios import generate_scenario

ROOT = Path(__file__).resolve().parents[2]
CONFIG = 'name = "sea"\ntarget = "target"\n[retrain]\nstrategies = ["full", "windowed"]\n'


def env() -> dict[str, str]:
    out = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
    out.pop("RAY_ADDRESS", None)
    return out


def calmops(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "calmops_actors", *args], cwd=cwd, env=env(), capture_output=True,
                          text=True, timeout=600)


def sea_folder(path: Path, blocks: int = 5) -> Path:
    (path / "incoming").mkdir()
    drift_at = 3 if blocks > 3 else None
    write_scenario(generate_scenario("sea", blocks=blocks, rows=400, seed=3, drift_at=drift_at), path / "incoming", "csv")
    (path / "sea.toml").write_text(CONFIG)
    return path


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess, float]:
    """One `calmops run` of five blocks (a drift at block 3), with its wall time."""
    folder = sea_folder(tmp_path_factory.mktemp("console"))
    start = time.monotonic()
    done = calmops("run", "sea.toml", "--home", "home", cwd=folder)
    return folder, done, time.monotonic() - start


# --- run ---------------------------------------------------------------------------------------------------


def test_a_model_class_typo_is_one_line_before_ray_or_a_home(tmp_path: Path, capsys) -> None:
    sea_folder(tmp_path, blocks=1)
    (tmp_path / "sea.toml").write_text(CONFIG + '[model]\nclass = "sklearn.linear_model.LogisticRegresion"\n')
    start = time.monotonic()
    assert main(["run", str(tmp_path / "sea.toml"), "--home", str(tmp_path / "home")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "LogisticRegresion" in err
    assert "sea.toml: model.class " in err
    assert not (tmp_path / "home").exists() and time.monotonic() - start < 10


@pytest.mark.slow
def test_each_file_line_says_what_its_blocks_led_to(ran) -> None:
    _, done, _ = ran
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("[")]
    assert len(lines) == 5
    assert "round r1 (initial): v1 promoted" in lines[0]
    assert all("accepted block_000" in line for line in lines)
    assert all(": no drift" in line or ": DRIFT" in line for line in lines[1:])
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_the_summary_time_is_the_wall_time_and_no_escape_code_is_left(ran) -> None:
    _, done, wall = ran
    header, values = done.stdout.splitlines()[-2:]
    seconds = float(dict(zip(header.split(), values.split(), strict=True))["seconds"])
    assert wall - 5 < seconds <= wall  # only the interpreter's own start is outside it
    assert "\x1b" not in done.stdout + done.stderr and "\\x1b" not in done.stdout + done.stderr


@pytest.mark.slow
def test_a_run_that_accepts_nothing_exits_3_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "incoming").mkdir()
    (tmp_path / "incoming" / "a.csv").write_bytes(b"\x00\x01garbage")
    (tmp_path / "incoming" / "b.csv").write_text("x,y\n")
    (tmp_path / "sea.toml").write_text(CONFIG)
    done = calmops("run", "sea.toml", "--home", "home", "--json", cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert "error: no file was accepted (2 rejected, 0 unreadable)" in done.stderr
    outcomes = [json.loads(line) for line in done.stdout.splitlines()]
    assert [o["outcome"] for o in outcomes[:2]] == ["rejected", "rejected"]
    assert outcomes[-1]["summary"]["accepted_files"] == 0


def in_flight(home: Path) -> bool:
    """A round requested in the log and not yet ended (read straight from the SQLite file)."""
    import sqlite3

    if not (home / "log.sqlite").is_file():
        return False
    try:
        with sqlite3.connect(f"file:{home / 'log.sqlite'}?mode=ro", uri=True, timeout=1) as db:
            types = [t for (t,) in db.execute("SELECT type FROM events")]
    except sqlite3.Error:
        return False
    return types.count("RetrainRequested") > types.count("ModelRetrained")


@pytest.mark.slow
def test_ctrl_c_in_a_round_is_clean_and_the_next_run_reissues_it(tmp_path: Path) -> None:
    sea_folder(tmp_path, blocks=4)
    # a terminal's Ctrl-C goes to the whole foreground process group: the CLI and the Ray processes it started
    proc = subprocess.Popen([sys.executable, "-m", "calmops_actors", "run", "sea.toml", "--home", "home"],
                            cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while proc.poll() is None and not in_flight(tmp_path / "home") and time.monotonic() < deadline:
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.skip("every round ended before the test could interrupt one")
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted during " in err and "stays in the log" in err
    assert "was in flight: the log keeps it as requested" in err and "re-issues it with the same seed" in err
    assert "Traceback" not in err and "task_manager" not in err and ".cc:" not in err

    status = calmops("status", "--home", "home", cwd=tmp_path)
    header, row = status.stdout.splitlines()
    assert header.split()[-1] == "events" and " version" not in header
    assert "interrupted" in row.split() and "(interrupted)" in row

    again = calmops("run", "sea.toml", "--home", "home", "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    ended = [r for line in again.stdout.splitlines() for r in json.loads(line).get("rounds", [])]
    assert ended and ended[0]["outcome"] in ("promoted", "rejected", "failed")  # the re-issued round's end
    after = calmops("status", "--home", "home", "--json", cwd=tmp_path)
    summary = json.loads(after.stdout)[0]
    assert summary["round"] is None and summary["interrupted_round"] is None


# --- predict -----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_predict_keeps_the_users_id_columns_by_default(ran) -> None:
    folder, _, _ = ran
    rows = (folder / "incoming" / "block_0005.csv").read_text().splitlines()
    header, body = rows[0], rows[1:4]
    ids = ["00017", "-3", "A-9"]
    (folder / "new.csv").write_text("customer_id," + header + "\n" + "\n".join(
        f"{i},{line}" for i, line in zip(ids, body, strict=True)) + "\n")
    scored = calmops("predict", "sea", "new.csv", "--home", "home", cwd=folder)
    assert scored.returncode == 0, scored.stderr
    lines = scored.stdout.splitlines()
    assert lines[0] == "customer_id,target,model_version,prediction,proba_0,proba_1"
    assert [line.split(",")[0] for line in lines[1:]] == ["00017", "-3", "A-9"]  # as written, in order

    only = calmops("predict", "sea", "new.csv", "--home", "home", "--keep", "customer_id", cwd=folder)
    assert only.stdout.splitlines()[0] == "customer_id,model_version,prediction,proba_0,proba_1"
    none = calmops("predict", "sea", "new.csv", "--home", "home", "--no-keep", cwd=folder)
    assert none.stdout.splitlines()[0] == "model_version,prediction,proba_0,proba_1"
    bad = calmops("predict", "sea", "new.csv", "--home", "home", "--keep", "cust_id", cwd=folder)
    assert bad.returncode == 2 and "--keep: no column 'cust_id'" in bad.stderr and "customer_id" in bad.stderr


@pytest.mark.slow
def test_predict_leaves_out_an_input_column_the_output_writes(ran) -> None:
    folder, _, _ = ran
    header, *body = (folder / "incoming" / "block_0004.csv").read_text().splitlines()
    (folder / "again.csv").write_text(f"prediction,{header}\n" + "\n".join(f"old,{line}" for line in body) + "\n")
    scored = calmops("predict", "sea", "again.csv", "--home", "home", cwd=folder)
    assert scored.returncode == 0, scored.stderr
    assert scored.stdout.splitlines()[0] == "target,model_version,prediction,proba_0,proba_1"
    assert "note: input column(s) prediction not kept" in scored.stderr
    clash = calmops("predict", "sea", "again.csv", "--home", "home", "--keep", "prediction", cwd=folder)
    assert clash.returncode == 2 and "a column the output writes itself" in clash.stderr


# --- status, events, export, resume, generate ---------------------------------------------------------------


@pytest.mark.slow
def test_export_files_get_the_usual_mode(ran) -> None:
    folder, _, _ = ran
    done = calmops("export", "sea", "--format", "jsonl", "--out", "e.jsonl", "--home", "home", cwd=folder)
    assert done.returncode == 0, done.stderr
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE((folder / "e.jsonl").stat().st_mode) == 0o666 & ~mask


@pytest.mark.slow
def test_events_takes_the_pipeline_as_a_name_or_with_pipeline(ran) -> None:
    folder, _, _ = ran
    by_name = calmops("events", "sea", "--limit", "3", "--json", "--home", "home", cwd=folder)
    by_flag = calmops("events", "--pipeline", "sea", "--limit", "3", "--json", "--home", "home", cwd=folder)
    assert by_name.returncode == 0 and by_name.stdout == by_flag.stdout and by_name.stdout.count("\n") == 3
    both = calmops("events", "sea", "--pipeline", "other", "--home", "home", cwd=folder)
    assert both.returncode == 2 and "give one" in both.stderr


@pytest.mark.slow
def test_resume_without_a_reason_records_nothing_when_the_circuit_is_closed(ran) -> None:
    folder, _, _ = ran
    done = calmops("resume", "sea", "--home", "home", cwd=folder)
    assert done.returncode == 0 and "not open, nothing to resume" in done.stdout and not done.stderr


def test_generate_takes_force_as_well_as_overwrite(tmp_path: Path, capsys) -> None:
    args = ["generate", "sea", "--blocks", "2", "--rows", "50", "--out", str(tmp_path)]
    assert main(args) == 0
    assert main(args) == 2
    assert main([*args, "--force"]) == 0
    assert main([*args, "--overwrite"]) == 0
