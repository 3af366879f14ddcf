"""`run`'s start: which Ray it joins (a live serve's advert, never a stale or foreign one), what its imports cost
(skops only with a model), and its progress line (only on a terminal, never mixed into the file lines)."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from calmops_actors.run_report import Progress
from calmops_actors.runtime import ADVERT_PREFIX, installation, serve_ray


def advert(root: Path, pid: int, port: int, **changes) -> Path:
    session = root / f"session_{pid}"
    session.mkdir(parents=True, exist_ok=True)
    info = {"address": f"127.0.0.1:{port}", "pid": pid, "uid": os.getuid(), "session_dir": str(session),
            **installation(), **changes}
    path = root / f"{ADVERT_PREFIX}{pid}.json"
    path.write_text(json.dumps(info))
    return path


@pytest.fixture
def listening():
    """A port that accepts connections (standing in for a GCS)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(done.stdout)


def test_run_joins_a_live_serve_of_this_installation(tmp_path: Path, listening: int) -> None:
    advert(tmp_path, os.getpid(), listening)
    found = serve_ray(tmp_path)
    assert found is not None and found["address"] == f"127.0.0.1:{listening}"


@pytest.mark.parametrize("why", ["dead", "other_python", "other_code", "other_user", "port_closed", "garbled"])
def test_run_never_joins_a_stale_or_foreign_advert(tmp_path: Path, listening: int, why: str) -> None:
    if why == "dead":
        advert(tmp_path, dead_pid(), listening)
    elif why == "other_python":
        advert(tmp_path, os.getpid(), listening, python="/usr/bin/python3.9")
    elif why == "other_code":
        advert(tmp_path, os.getpid(), listening, calmops_actors="/elsewhere/calmops_actors")
    elif why == "other_user":
        advert(tmp_path, os.getpid(), listening, uid=os.getuid() + 1)
    elif why == "port_closed":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed = s.getsockname()[1]
        advert(tmp_path, os.getpid(), closed)
    else:
        (tmp_path / f"{ADVERT_PREFIX}1.json").write_text("{not json")
    assert serve_ray(tmp_path) is None


def test_no_advert_folder_means_no_serve(tmp_path: Path) -> None:
    assert serve_ray(tmp_path / "missing") is None


def test_the_artifact_store_imports_skops_only_once_a_model_is_saved() -> None:
    probe = ("import sys, calmops_actors.artifacts as a\n"
             "before = 'skops' in sys.modules\n"
             "from sklearn.linear_model import LogisticRegression\n"
             "blob = a.encode_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]))\n"
             "print(before, 'skops' in sys.modules, blob.kind)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.split() == ["False", "True", "model-skops"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_without_a_terminal_the_progress_writes_nothing_but_the_lines() -> None:
    err, out = io.StringIO(), io.StringIO()
    progress = Progress(2, stream=err, delay=0.0).start()
    for name in ("a.csv", "b.csv"):
        progress.begin(name)
        progress.status("starting Ray ...")
        progress.finished(f"{name}: accepted", out)
    progress.close()
    assert err.getvalue() == "" and out.getvalue() == "a.csv: accepted\nb.csv: accepted\n"


def test_on_a_terminal_the_bar_is_wiped_before_each_line_and_at_the_end() -> None:
    screen = Terminal()  # stdout and stderr on one terminal: the order of writes is what a person sees
    progress = Progress(2, stream=screen, delay=0.0, interval=60).start()
    progress.begin("a.csv")
    progress.finished("a.csv: accepted", screen)
    progress.begin("b.csv")
    progress.finished("b.csv: accepted", screen)
    progress.close()
    text = screen.getvalue()
    assert "[0/2] " in text and "| a.csv" in text and "[1/2] " in text and "| b.csv" in text
    for line in ("a.csv: accepted", "b.csv: accepted"):  # each line starts on a wiped row: "\r<spaces>\r<line>"
        before = text[:text.index(line)]
        assert before.endswith("\r") and before.rstrip("\r").rsplit("\r", 1)[-1].strip() == ""
    assert text.endswith("\r") and text.rstrip("\r").rsplit("\r", 1)[-1].strip() == ""  # nothing left on screen
