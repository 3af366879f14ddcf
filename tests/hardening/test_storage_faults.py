"""Storage faults under a real pipeline: a full disk, a read-only home, a log locked by another process.

Each fault must give a clear error (our own exception or an `error:` line, never a raw OSError or a traceback),
leave the log and the artifacts uncorrupted (hash chain, SQLite integrity, gapless versions), and go away
when the fault clears: the same files then go in, each exactly once.

The full and read-only disks are real: a tmpfs of 2-4 MB mounted here (this needs root, or CAP_SYS_ADMIN;
`chmod` would not stop root). The pipelines wait for 1000 labelled blocks, so no round and no Ray is involved.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from calmops_actors import cli
from calmops_actors.artifacts import ArtifactError
from calmops_actors.home import Home, make_codec, stream_id
from calmops_actors.pipeline_actor import PipelineActor
from eventstore import SQLiteEventStore, StoreError

ROOT = Path(__file__).resolve().parents[2]
HEADER = "feat_1,feat_2,feat_3,target\n"
RAW = {"name": "disk", "target": "target", "training": {"initial_blocks": 1000}}
CONFIG_TOML = 'name = "disk"\ntarget = "target"\n[training]\ninitial_blocks = 1000\n'


def block(path: Path, seed: int, rows: int = 400) -> Path:
    rng = np.random.default_rng(seed)
    path.write_text(HEADER + "".join(f"{a:.4f},{b:.4f},{c:.4f},{int(a + b > 8)}\n"
                                     for a, b, c in rng.uniform(0, 10, (rows, 3))))
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    src = tmp_path / "src"
    src.mkdir()
    out = {f"b{i}": block(src / f"b{i}.csv", i) for i in range(3)}
    (src / "bad.csv").write_bytes(b"\x00not a csv")
    out["bad"] = src / "bad.csv"
    return out


@contextlib.contextmanager
def tmpfs(folder: Path, size: str):
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def remount(folder: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(folder)], check=True, capture_output=True)


def intact(home: Path, expected_files: list[Path]) -> None:
    """No corruption: SQLite integrity, the hash chain, gapless versions, each file recorded once."""
    import hashlib

    with contextlib.closing(sqlite3.connect(home / "log.sqlite")) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store = Home(home).open_store()
    try:
        assert store.verify().ok
        records = store.read(stream_id("disk"))
        assert [r.version for r in records] == list(range(1, len(records) + 1))
        shas = [r.payload["sha256"] for r in records if r.type in ("BlockArrived", "BlockRejected")]
        assert sorted(shas) == sorted(hashlib.sha256(f.read_bytes()).hexdigest() for f in expected_files)
    finally:
        store.close()


def temp_files(home: Path) -> list[Path]:
    return list((home / "artifacts").rglob(".tmp-*"))


def test_a_full_disk_is_a_clear_error_nothing_is_half_written_and_it_recovers(tmp_path: Path, files, capsys) -> None:
    with tmpfs(tmp_path / "disk", "2m") as disk:
        home = disk / "home"
        actor = PipelineActor(str(home), "disk")
        actor.configure(RAW, str(tmp_path))
        assert actor.ingest(str(files["b0"]))["outcome"] == "accepted"
        head = actor.store.head()
        filler = disk / "filler"
        with open(filler, "wb") as handle, contextlib.suppress(OSError):
            while True:  # until the disk refuses
                handle.write(b"\0" * 65536)
                handle.flush()
        # a new block: its rows cannot be stored
        with pytest.raises(ArtifactError) as caught:
            actor.ingest(str(files["b1"]))
        message = str(caught.value)
        assert "No space left on device" in message and "Free some space" in message and str(home) in message
        # a rejection: only an append, which the log refuses whole
        with pytest.raises(StoreError, match=r"the disk is full .*free some space.*nothing from this call"):
            actor.ingest(str(files["bad"]))
        assert actor.store.head() == head and not temp_files(home)
        assert cli.main(["verify", "--home", str(home)]) == 0  # reading needs no space
        capsys.readouterr()
        filler.unlink()  # the fault clears: the same files go in
        assert actor.ingest(str(files["b1"]))["outcome"] == "accepted"
        assert actor.ingest(str(files["bad"]))["reason_code"] == "not_text"
        assert actor.ingest(str(files["b1"]))["outcome"] == "duplicate"
        actor.store.close()
        intact(home, [files["b0"], files["b1"], files["bad"]])


def test_a_read_only_home_is_a_clear_error_and_is_left_untouched(tmp_path: Path, files, capsys) -> None:
    (tmp_path / "disk.toml").write_text(CONFIG_TOML)
    with tmpfs(tmp_path / "disk", "4m") as disk:
        home = disk / "home"
        actor = PipelineActor(str(home), "disk")
        actor.configure(RAW, str(tmp_path))
        assert actor.ingest(str(files["b0"]))["outcome"] == "accepted"
        actor.store.close()
        before = {p: p.read_bytes() for p in home.rglob("*") if p.is_file()}
        remount(disk, "ro")
        try:
            # the commands that record refuse at once, in one line, before starting Ray
            assert cli.main(["run", str(tmp_path / "disk.toml"), str(files["b1"]), "--home", str(home)]) == 2
            err = capsys.readouterr().err
            assert err.startswith(f"error: cannot use the home folder {home}") and "Traceback" not in err
            assert cli.main(["serve", "--config-dir", str(tmp_path), "--no-ui", "--home", str(home)]) == 2
            assert capsys.readouterr().err.startswith(f"error: cannot use the home folder {home}")
            # so does the actor itself (what a restarted actor would meet)
            with pytest.raises(StoreError, match="cannot open the log"):
                PipelineActor(str(home), "disk")
            # and a read command says it cannot open the log (SQLite's WAL needs to write beside it)
            assert cli.main(["status", "--home", str(home)]) == 2
            assert capsys.readouterr().err.startswith("error: ")
            assert {p: p.read_bytes() for p in home.rglob("*") if p.is_file()} == before
        finally:
            remount(disk, "rw")
        actor = PipelineActor(str(home), "disk")  # the fault clears: it carries on
        actor.configure(RAW, str(tmp_path))
        assert actor.ingest(str(files["b1"]))["outcome"] == "accepted"
        assert actor.ingest(str(files["bad"]))["outcome"] == "rejected"
        actor.store.close()
        intact(home, [files["b0"], files["b1"], files["bad"]])


def test_a_home_that_is_a_file_is_a_clear_error(tmp_path: Path, capsys) -> None:
    (tmp_path / "disk.toml").write_text(CONFIG_TOML)
    (tmp_path / "src").mkdir()
    block(tmp_path / "src" / "b0.csv", 0)
    not_a_folder = tmp_path / "home-is-a-file"
    not_a_folder.write_text("hello")
    assert cli.main(["run", str(tmp_path / "disk.toml"), str(tmp_path / "src" / "b0.csv"),
                     "--home", str(not_a_folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot use the home folder {not_a_folder}") and "Traceback" not in err
    assert not_a_folder.read_text() == "hello"


HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")   # the write lock, as a sqlite3 shell with an open BEGIN would hold it
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
print("released", flush=True)
sys.stdin.readline()
"""


def test_a_log_locked_by_another_process_is_a_clear_error_then_recovers(tmp_path: Path, files, capsys) -> None:
    home = tmp_path / "home"
    actor = PipelineActor(str(home), "disk")
    actor.configure(RAW, str(tmp_path))
    assert actor.ingest(str(files["b0"]))["outcome"] == "accepted"
    # the actor's store with a short busy_timeout (30 s by default): the same class, a public parameter
    actor.store.close()
    actor.store = SQLiteEventStore(home / "log.sqlite", codec=make_codec(), busy_timeout=1.0)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(home / "log.sqlite")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        head, version = actor.store.head(), actor.state.version
        for name in ("b1", "bad"):
            with pytest.raises(StoreError) as caught:
                actor.ingest(str(files[name]))
            message = str(caught.value)
            assert "stayed locked for longer than busy_timeout=1s" in message
            assert "another program holding a write lock" in message and str(home / "log.sqlite") in message
        assert actor.store.head() == head and actor.state.version == version
        assert cli.main(["status", "--home", str(home)]) == 0  # readers are not blocked (WAL)
        capsys.readouterr()
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "released"
        assert actor.ingest(str(files["b1"]))["outcome"] == "accepted"
        assert actor.ingest(str(files["bad"]))["outcome"] == "rejected"
    finally:
        holder.kill()
        holder.wait()
    # a lock shorter than busy_timeout is simply waited for
    actor.store.close()
    actor.store = SQLiteEventStore(home / "log.sqlite", codec=make_codec(), busy_timeout=30.0)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(home / "log.sqlite")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        import threading

        release = threading.Timer(0.5, lambda: (holder.stdin.write("\n"), holder.stdin.flush()))
        release.start()
        assert actor.ingest(str(files["b2"]))["outcome"] == "accepted"
        release.join()
    finally:
        holder.kill()
        holder.wait()
    actor.store.close()
    intact(home, [files["b0"], files["b1"], files["bad"], files["b2"]])
