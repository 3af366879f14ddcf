"""Helpers for the hardening tests: CLI subprocesses in their own session, killing a whole process tree (Ray
included), reading a home from outside while a writer runs, and the invariants a home must keep after any crash.

A `calmops serve`/`run` subprocess is started with `start_new_session=True`, so its pid is the session id of
every process it spawns: its local Ray (gcs_server, raylet, agents) and Ray's workers, which Ray puts in process
groups of their own. `kill_tree` SIGKILLs the process group, then every remaining member of the session by pid,
and waits until none is left, so no stale Ray process survives into the next start.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """\
name = "{name}"
target = "target"
source = "{source}"

[training]
seed = {seed}

[retrain]
strategies = ["full", "windowed"]

[trigger]
settle_seconds = 0.2
"""


# -- scenario ------------------------------------------------------------------------------------------


def write_scenario_files(folder: Path, *, blocks: int = 40, rows: int = 300, seed: int = 11) -> list[Path]:
    """A seeded SEA stream with a recurring concept switch and a covariate shift: drift, rounds, promotions."""
    from calmops_actors.blockfiles import write_scenario
    from pipelines.synthetic.scenarios import generate_scenario

    folder.mkdir(parents=True, exist_ok=True)
    scenario = generate_scenario("sea", blocks=blocks, rows=rows, seed=seed, switch="recurring",
                                 drift_at=max(2, blocks * 3 // 10), recur_after=max(1, blocks * 3 // 10),
                                 shifts=["mean:feat_3:1.0"])
    write_scenario(scenario, folder, "csv")
    return sorted(folder.glob("block_*.csv"))


def write_config(config_dir: Path, name: str, source: Path, seed: int = 4) -> Path:
    config_dir.mkdir(parents=True, exist_ok=True)
    path = config_dir / f"{name}.toml"
    path.write_text(CONFIG.format(name=name, source=source.as_posix(), seed=seed))
    return path


class Feeder:
    """Drops the scenario's files into the source folder (write, then rename, as a careful producer does): the
    first `backlog` at once before `serve` starts (last month's files copied in), then one by one, staying
    `ahead` files ahead of what the log has taken, so a running `serve` always has work."""

    def __init__(self, files: list[Path], source: Path, home: Path, ahead: int = 1, backlog: int = 0) -> None:
        import threading

        self.files, self.source, self.home, self.ahead, self.backlog = files, source, home, ahead, backlog
        self.fed = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.loop, name="feeder", daemon=True)

    def start(self) -> Feeder:
        self.source.mkdir(parents=True, exist_ok=True)
        while self.fed < min(self.backlog, len(self.files)):
            self.drop()
        self.thread.start()
        return self

    def drop(self) -> None:
        src = self.files[self.fed]
        tmp = self.source / f".{src.name}.part"
        tmp.write_bytes(src.read_bytes())
        os.replace(tmp, self.source / src.name)
        self.fed += 1

    def loop(self) -> None:
        while not self.stopping.wait(0.1) and self.fed < len(self.files):
            if self.fed - look(self.home).blocks < self.ahead:
                self.drop()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- processes -----------------------------------------------------------------------------------------


def ray_tmpdir() -> Path:
    """A short private folder for a subprocess's Ray sessions (Unix socket paths must stay under 108 bytes)."""
    return Path(tempfile.mkdtemp(prefix="cr", dir="/tmp"))


def cli_env(ray_tmp: Path) -> dict[str, str]:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT), "RAY_TMPDIR": str(ray_tmp),
           "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    return env


def start_cli(args: list[str], *, cwd: Path, env: dict[str, str], out: Path) -> subprocess.Popen:
    """`python -m calmops_actors ARGS` in a new session (its pid is the session id of its whole tree)."""
    with open(out, "ab") as sink:
        return subprocess.Popen([sys.executable, "-m", "calmops_actors", *args], cwd=cwd, env=env,
                                stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)


def _stat(pid: int) -> tuple[int, str] | None:
    """(session id, state) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[3]), fields[0]


def session_members(sid: int) -> list[int]:
    """Live (not zombie) processes of session `sid`."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and stat[0] == sid and stat[1] not in ("Z", "X"):
                members.append(int(entry))
    return members


def kill_tree(proc: subprocess.Popen, timeout: float = 60.0) -> int:
    """SIGKILL the process group of `proc`, then every straggler of its session; wait until none is left.

    Returns how many processes the session had when it was killed.
    """
    sid = proc.pid
    before = session_members(sid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(sid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while True:
        left = session_members(sid)
        for pid in left:  # Ray's workers sit in process groups of their own
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if not left:
            break
        assert time.monotonic() < deadline, f"processes of session {sid} survived SIGKILL: {left}"
        time.sleep(0.05)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    return len(before)


def stale_ray_processes(ray_tmp: Path) -> list[str]:
    """Processes whose command line names this test's Ray folder (none may survive a kill)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _stat(int(entry))
        if stat is None or stat[1] in ("Z", "X"):
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(ray_tmp) in cmdline:
            found.append(f"{entry}: {cmdline[:120]}")
    return found


# -- reading a home from outside -----------------------------------------------------------------------


def ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)


@dataclass
class LogView:
    """What a poller sees of a home while a writer runs (never blocks the writer: read-only, WAL)."""

    head: int = 0
    types: list[str] = field(default_factory=list)
    open_round: bool = False
    blocks: int = 0
    checkpoint: int = 0
    rounds: int = 0
    promotions: int = 0


def look(home: Path) -> LogView:
    view = LogView()
    log_path, proj = home / "log.sqlite", home / "projections.sqlite"
    if log_path.exists():
        with contextlib.suppress(sqlite3.Error), contextlib.closing(ro(log_path)) as conn:
            rows = conn.execute("SELECT type, payload FROM events ORDER BY position").fetchall()
            view.head = len(rows)
            view.types = [t for t, _ in rows]
            opened: set[str] = set()
            for t, payload in rows:
                if t == "RetrainRequested":
                    opened.add(json.loads(payload)["round_id"])
                elif t in ("ModelPromoted", "ChallengerRejected"):
                    opened.discard(json.loads(payload).get("round_id"))
            view.open_round = bool(opened)
            view.blocks = view.types.count("BlockArrived")
            view.rounds = view.types.count("RetrainRequested")
            view.promotions = view.types.count("ModelPromoted")
    if proj.exists():
        with contextlib.suppress(sqlite3.Error), contextlib.closing(ro(proj)) as conn:
            row = conn.execute("SELECT position FROM projection_checkpoints WHERE name = 'read_model'").fetchone()
            view.checkpoint = row[0] if row else 0
    return view


def wait_for(condition: Callable[[], bool], timeout: float, what: str, tick: float = 0.05,
             alive: subprocess.Popen | None = None) -> bool:
    """Poll `condition` until true; False on timeout. Fails at once if `alive` exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if alive is not None and alive.poll() is not None:
            raise AssertionError(f"the process exited with {alive.returncode} while waiting for {what}")
        time.sleep(tick)
    return False


# -- invariants ----------------------------------------------------------------------------------------


def check_log_invariants(home: Path, name: str, files: list[Path]) -> dict:
    """Everything a home must satisfy after any sequence of crashes; returns a few numbers for reporting."""
    from calmops_actors.home import Home, stream_id
    from pipelines.core.state import replay

    store = Home(home).open_store()
    try:
        verified = store.verify()
        assert verified.ok, verified.message
        records = store.read_all()
        stream = store.read(stream_id(name))
        state = replay(store.codec.decode(r) for r in stream)
    finally:
        store.close()
    assert [r.position for r in records] == list(range(1, len(records) + 1))
    assert [r.version for r in stream] == list(range(1, len(stream) + 1))  # versions gapless
    by_type = Counter(r.type for r in stream)
    # every file ingested exactly once, by content hash; nothing rejected
    arrived = Counter(r.payload["sha256"] for r in stream if r.type == "BlockArrived")
    assert arrived == Counter({sha256_file(f): 1 for f in files})
    assert by_type["BlockRejected"] == 0
    assert by_type["PipelineRegistered"] == 1 and by_type["SchemaFixed"] == 1
    # every block but the first model's own was scored and checked exactly once, whenever it arrived
    due = [b.block_id for b in state.ordered_blocks() if b.block_id not in state.first_training]
    checked = Counter(r.payload["block_id"] for r in stream if r.type == "DriftChecked")
    measured = Counter(r.payload["block_id"] for r in stream if r.type == "PerformanceMeasured")
    assert checked == Counter(due), f"drift checks {checked} != blocks due {due}"
    assert measured == Counter(due)
    assert not any(r.payload["block_id"] in r.payload["reference_blocks"] for r in stream if r.type == "DriftChecked")
    drifted = [r.payload["block_id"] for r in stream if r.type == "DriftChecked" and r.payload["drifted"]]
    assert [r.payload["block_id"] for r in stream if r.type == "DriftDetected"] == drifted
    # every round started once and closed exactly once; model versions v1..vN, each once
    started = [r.payload["round_id"] for r in stream if r.type == "RetrainRequested"]
    assert started == [f"r{i}" for i in range(1, len(started) + 1)]
    closed = Counter(r.payload["round_id"] for r in stream if r.type in ("ModelPromoted", "ChallengerRejected"))
    assert closed == Counter(started), f"rounds {started} closed {closed}"
    versions = [r.payload["model_version"] for r in stream if r.type == "CandidateTrained"]
    assert versions == [f"v{i}" for i in range(1, len(versions) + 1)]
    assert Counter(r.payload["model_version"] for r in stream if r.type == "ChallengerEvaluated") == Counter(versions)
    assert state.round is None and state.counters.blocks == len(files)
    return {"events": len(stream), "rounds": len(started), "champion": state.champion,
            "promotions": by_type["ModelPromoted"], "drift_checks": len(due)}


TABLE_ORDER_SQL = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"


def dump_tables(path: Path) -> dict[str, list[tuple]]:
    with contextlib.closing(ro(path)) as conn:
        names = [n for (n,) in conn.execute(TABLE_ORDER_SQL)]
        return {n: sorted(conn.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr) for n in names}


def check_projections_equal_rebuild(home: Path, scratch: Path) -> int:
    """The incrementally updated (and crash-interrupted) read tables equal a rebuild from position 0."""
    from calmops_actors.projector import rebuild_projections

    copy = scratch / "rebuilt-home"
    shutil.rmtree(copy, ignore_errors=True)
    copy.mkdir(parents=True)
    shutil.copy2(home / "log.sqlite", copy / "log.sqlite")
    for suffix in ("-wal", "-shm"):
        if (home / f"log.sqlite{suffix}").exists():
            shutil.copy2(home / f"log.sqlite{suffix}", copy / f"log.sqlite{suffix}")
    rebuild_projections(copy)
    live, rebuilt = dump_tables(home / "projections.sqlite"), dump_tables(copy / "projections.sqlite")
    assert live.keys() == rebuilt.keys()
    for table in live:
        assert live[table] == rebuilt[table], f"table {table} differs from a rebuild"
    return sum(len(rows) for rows in live.values())


def run_audit(home: Path, name: str) -> str:
    """`calmops audit NAME` must say every recorded decision reproduces (exit 0)."""
    from calmops_actors import cli

    with contextlib.redirect_stdout(_Sink()) as sink:
        code = cli.main(["audit", name, "--home", str(home)])
    assert code == 0, sink.text[-3000:]
    return sink.text


class _Sink:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    @property
    def text(self) -> str:
        return "".join(self.parts)


def seeded(seed: int) -> random.Random:
    return random.Random(seed)


def tail(path: Path, n: int = 4000) -> str:
    """The end of a process's output file, for an assertion message."""
    return path.read_text(errors="replace")[-n:] if path.exists() else ""
