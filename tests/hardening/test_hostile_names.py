"""`calmops run` on a folder whose file names are not text: bytes that are not UTF-8, a terminal escape code and a
newline. The run finishes, each odd name is one recorded rejection shown safely, and the good files go through."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from calmops_actors.home import Home, stream_id

ROOT = Path(__file__).resolve().parents[2]
HEADER = "feat_1,feat_2,target\n"


def calmops(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)
    return subprocess.run([sys.executable, "-m", "calmops_actors", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def block(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return (HEADER + "".join(f"{a:.3f},{b:.3f},{int(a > b)}\n" for a, b in rng.uniform(0, 10, (20, 2)))).encode()


def write(folder: Path, name: bytes, data: bytes) -> None:
    """A file named by raw bytes, as another program (an unzip, a Latin-1 system) may leave it."""
    fd = os.open(os.path.join(os.fsencode(folder), name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


@pytest.mark.slow
def test_run_records_files_with_hostile_names_as_rejections_and_prints_no_control_character(tmp_path: Path) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    write(incoming, b"a11_\xff\xfe.csv", block(1))  # not UTF-8
    write(incoming, b"a12_\x1b[31mred\n[4 of 4] ok.csv", block(2))  # an escape code and a fake line of output
    write(incoming, b"b1.csv", block(3))
    write(incoming, b"b2.csv", block(4))
    (tmp_path / "names.toml").write_text('name = "names"\ntarget = "target"\nsource = "incoming"\n'
                                         "[training]\ninitial_blocks = 1000\n")

    done = calmops("run", "names.toml", "--home", "home", cwd=tmp_path)

    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert all(c.isprintable() for line in done.stdout.splitlines() for c in line), done.stdout
    progress = [line for line in done.stdout.splitlines() if line.startswith("[")]
    assert len(progress) == 4 and not any(line.startswith("[4 of 4]") for line in progress), done.stdout
    assert "a11_\\xff\\xfe.csv: REJECTED [bad_file_name]" in done.stdout
    assert "a12_\\x1b[31mred\\x0a[4 of 4] ok.csv: REJECTED [bad_file_name]" in done.stdout

    store = Home(tmp_path / "home").open_store()
    try:
        recorded = [(r.type, r.payload["file"], r.payload.get("reason_code")) for r in store.read(stream_id("names"))
                    if r.type in ("BlockArrived", "BlockRejected")]
        assert store.verify().ok
    finally:
        store.close()
    assert sorted(recorded) == [
        ("BlockArrived", "b1.csv", None), ("BlockArrived", "b2.csv", None),
        ("BlockRejected", "a11_\\xff\\xfe.csv", "bad_file_name"),
        ("BlockRejected", "a12_\\x1b[31mred\\x0a[4 of 4] ok.csv", "bad_file_name"),
    ]


def test_every_command_prints_control_characters_from_an_old_log_as_escapes(tmp_path) -> None:
    """A log written before names were escaped can hold raw escape codes and bytes that are not UTF-8; what any
    command prints shows them as escapes (`cli.PrintableStream`), and never fails on them."""
    import contextlib
    import io

    from calmops_actors import cli

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = cli.main(["status", "--home", str(tmp_path / "no\x1b[31mhome\udcff")])
    assert code == 2 and "no\\x1b[31mhome\\xff" in out.getvalue() and "\x1b" not in out.getvalue()
