"""Memory of `calmops serve`, its whole process tree, with 10, 100 and 500 registered pipelines of which 5
receive blocks (issue 23, virtual actors), against a bare `ray.init` (dashboard on) plus a one-button Gradio app
measured in the same run.

    python -m benchmarks.memory [--quick] [--registered N ...] [--all-active N ...] [--json PATH]

Each case runs in a fresh `--home`. The pipelines are configured as a user would: one TOML file per pipeline
in `<home>/pipelines` (the folder `serve` reads by default), written from `calmops init`'s template with
`source = "incoming/NAME"` so each pipeline watches its own folder (and its labels folder). `serve` runs with
`--idle-seconds 20` (`--quick`: 10). Phases of a case, each sampled:

- start-up, until the UI answers; registering, until every pipeline's `PipelineRegistered` is in the log (a
  brand-new config is registered by the supervisor without starting its actor);
- registered: a few seconds with every pipeline registered and none active;
- active: 5 pipelines receive blocks of 1,000 rows x 10 features (the first trains each champion, the others
  are drift-checked: 3 in all, `--quick` 2), until all 5 have recorded `PipelinePassivated` after 20 s idle;
- steady: `--steady` seconds more (default 20) with every pipeline idle: the state the issue's figure is about.

The figure is MB per registered pipeline: the least-squares slope of the steady PSS (median of the window)
against the number registered, next to 186 MB per pipeline measured before virtual actors (every pipeline an
actor process; benchmarks/README.md, "Memory", 2026-11-28). Target: 500 registered, 5 active, whole tree
<= 3 GB (3,072 MiB) PSS, judged on the peak over the whole case (the 5 actors, their training and drift tasks
included). A `--quick` run (10 and 30 registered) is judged by the projection of its peak to 500 along the
slope. `--all-active N ...` also runs the earlier cases (N pipelines, every one fed blocks, default idle time).

Every ~0.5 s a sampler walks the tree (the process started, its descendants, and anything else in its
session: the CLI, Ray's GCS, raylet, dashboard and agents, the actors' and tasks' workers, the UI thread lives
in the CLI) and sums, over its processes, RSS, PSS and USS (psutil's `memory_full_info`, from
`/proc/PID/smaps_rollup`). The judged sum is PSS: RSS counts every shared page once per process that maps it
(the same numpy/pyarrow/Ray libraries in 20 workers, Ray's shared-memory object store), so its sum overstates
what the tree uses; PSS splits each shared page among the processes that map it and so sums to the tree's
real footprint. The RSS sum is reported too, and the tree's CPU use while every pipeline is idle (the config
folder is scanned every 5 s).

Each process tree is started in its own session and killed by process group at the end of its case (SIGTERM,
then SIGKILL), and any process seen in the tree that is still alive is killed by its pid, even on error; a
SIGTERM to the benchmark unwinds through that cleanup, and the tree's first process gets SIGTERM if the
benchmark dies any other way (`prctl(PR_SET_PDEATHSIG)`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks.report import Row

MB = 1024 * 1024
FULL_PIPELINES = (1, 10, 20)  # --all-active: the cases before virtual actors
QUICK_PIPELINES = (1, 5)
FULL_REGISTERED = (10, 100, 500)
QUICK_REGISTERED = (10, 30)
ACTIVE = 5  # of the registered pipelines, those that receive blocks
TARGET_AT, TARGET_MB = 500, 3 * 1024  # issue 23: 500 registered, 5 active, the tree <= 3 GB PSS
BEFORE_MB_PER_PIPELINE = 186  # benchmarks/README.md, "Memory", full run of 2026-11-28 (one actor per pipeline)
BLOCK_ROWS, BLOCK_FEATURES = 1_000, 10
INTERVAL = 0.5


def import_psutil():
    """psutil: installed on its own, or the copy Ray ships in `ray/thirdparty_files` (without importing Ray)."""
    try:
        import psutil
    except ImportError:
        spec = importlib.util.find_spec("ray")
        if spec is None or not spec.submodule_search_locations:
            raise
        sys.path.insert(0, str(Path(next(iter(spec.submodule_search_locations))) / "thirdparty_files"))
        import psutil
    return psutil


def fit_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """The least-squares slope of y against x (e.g. MB per added pipeline).

    >>> round(fit_slope([1, 10, 20], [100.0, 190.0, 290.0]), 6)
    10.0
    """
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError("need at least two (x, y) pairs of equal length")
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("x values must not all be equal")
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def peaks(samples: Sequence[dict], since: float = 0.0, until: float = float("inf")) -> dict:
    """Peak of each sum (MB) over the samples taken in [since, until] seconds, and the most processes seen.

    >>> peaks([{"t": 0.0, "rss": 10.0, "pss": 5.0, "uss": 4.0, "procs": 3},
    ...        {"t": 1.0, "rss": 8.0, "pss": 6.0, "uss": 4.5, "procs": 4}])
    {'rss': 10.0, 'pss': 6.0, 'uss': 4.5, 'procs': 4}
    """
    chosen = [s for s in samples if since <= s["t"] <= until]
    if not chosen:
        return {"rss": 0.0, "pss": 0.0, "uss": 0.0, "procs": 0}
    return {key: max(s[key] for s in chosen) for key in ("rss", "pss", "uss", "procs")}


def steady(samples: Sequence[dict], since: float = 0.0, until: float = float("inf")) -> dict:
    """Median of each sum (MB) over the samples in [since, until]: the level of a quiet window, not its spikes.

    >>> steady([{"t": 0.0, "rss": 10.0, "pss": 5.0, "uss": 4.0, "procs": 3},
    ...         {"t": 1.0, "rss": 8.0, "pss": 6.0, "uss": 4.5, "procs": 4},
    ...         {"t": 2.0, "rss": 9.0, "pss": 9.0, "uss": 5.0, "procs": 4}])
    {'rss': 9.0, 'pss': 6.0, 'uss': 4.5, 'procs': 4}
    """
    import statistics

    chosen = [s for s in samples if since <= s["t"] <= until]
    if not chosen:
        return {"rss": 0.0, "pss": 0.0, "uss": 0.0, "procs": 0}
    return {key: statistics.median(s[key] for s in chosen) for key in ("rss", "pss", "uss", "procs")}


class TreeSampler:
    """Samples the memory of a process, its descendants and its session every `interval` seconds."""

    def __init__(self, root_pid: int, interval: float = INTERVAL) -> None:
        self.psutil = import_psutil()
        self.root_pid = root_pid
        self.interval = interval
        self.samples: list[dict] = []
        self.seen: dict[int, float] = {}  # pid -> create_time, for the final cleanup
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="memory-sampler", daemon=True)

    def start(self) -> TreeSampler:
        self._thread.start()
        return self

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def tree(self) -> list:
        psutil = self.psutil
        found = {}
        try:
            root = psutil.Process(self.root_pid)
            found[root.pid] = root
            for child in root.children(recursive=True):
                found[child.pid] = child
        except psutil.NoSuchProcess:
            pass
        for proc in psutil.process_iter():  # a process that left the tree but stayed in the session
            if proc.pid not in found:
                try:
                    if os.getsid(proc.pid) == self.root_pid:
                        found[proc.pid] = proc
                except OSError:
                    continue
        return list(found.values())

    def sample(self) -> dict:
        psutil = self.psutil
        total = {"t": self.elapsed(), "rss": 0.0, "pss": 0.0, "uss": 0.0, "procs": 0}
        for proc in self.tree():
            try:
                info = proc.memory_full_info()
                self.seen.setdefault(proc.pid, proc.create_time())
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            total["rss"] += info.rss / MB
            total["pss"] += info.pss / MB
            total["uss"] += info.uss / MB
            total["procs"] += 1
        return total

    def cpu(self) -> dict[int, float]:
        """CPU seconds (user + system) so far of each process of the tree, by pid."""
        out = {}
        for proc in self.tree():
            try:
                times = proc.cpu_times()
                out[proc.pid] = times.user + times.system
            except (self.psutil.NoSuchProcess, self.psutil.AccessDenied, self.psutil.ZombieProcess):
                continue
        return out

    def breakdown(self, top: int = 12) -> list[dict]:
        """The tree's processes by PSS, largest first: what is left once every pipeline is idle."""
        out = []
        for proc in self.tree():
            try:
                pss = proc.memory_full_info().pss / MB
                title = " ".join(proc.cmdline())
            except (self.psutil.NoSuchProcess, self.psutil.AccessDenied, self.psutil.ZombieProcess):
                continue
            out.append({"pid": proc.pid, "pss": pss, "process": process_label(title)})
        return sorted(out, key=lambda p: -p["pss"])[:top]

    def _loop(self) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            self.samples.append(self.sample())
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - t0)))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def alive(self) -> list:
        """The processes seen in the tree that still run (same pid and start time, not a zombie)."""
        psutil = self.psutil
        out = []
        for pid, created in self.seen.items():
            try:
                proc = psutil.Process(pid)
                if proc.create_time() == created and proc.status() != psutil.STATUS_ZOMBIE:
                    out.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return out

    def kill_leftovers(self) -> int:
        """SIGKILL every process seen in the tree that still runs; how many there were."""
        left = self.alive()
        for proc in left:
            try:
                proc.kill()
            except (self.psutil.NoSuchProcess, self.psutil.AccessDenied):
                continue
        return len(left)


def process_label(cmdline: str) -> str:
    """A short name for a process of the tree.

    >>> process_label("ray::PipelineActor.ingest")
    'ray::PipelineActor.ingest'
    >>> process_label("/venv/bin/python -m calmops_actors serve --home /tmp/x")
    'calmops serve'
    >>> process_label("/venv/lib/python3.11/site-packages/ray/core/src/ray/raylet/raylet --raylet_socket_name=x")
    'raylet'
    """
    if cmdline.startswith("ray::") or cmdline.startswith("ray-"):
        return cmdline.split()[0][:60]
    if "calmops_actors serve" in cmdline:
        return "calmops serve"
    for name in ("gcs_server", "raylet", "dashboard.py", "log_monitor", "agent", "runtime_env", "monitor.py"):
        if name in cmdline:
            return name.removesuffix(".py")
    return cmdline.split()[0].rsplit("/", 1)[-1][:40] if cmdline else "?"


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two `TreeSampler.cpu` readings (a process new in `after` counts whole).

    >>> cpu_used({1: 10.0, 2: 5.0}, {1: 12.5, 3: 1.0})
    3.5
    """
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


def in_group(pid: int, pgid: int) -> bool:
    try:
        return os.getpgid(pid) == pgid
    except OSError:
        return False


def stop_group(proc: subprocess.Popen, sampler: TreeSampler | None, grace: float = 60.0) -> dict:
    """SIGTERM the process group (a clean stop), SIGKILL it after `grace` s, then kill any leftover by pid.

    Returns how many processes the tree had, how many outlived the group kill, and how many still run (0)."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):  # the group's other members (Ray's), if any outlived it
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait(timeout=10)
    if sampler is None:
        return {"seen": 1, "outlived_group_kill": 0, "still_running": int(proc.poll() is None)}
    sampler.stop()
    deadline = time.monotonic() + 5  # a SIGKILLed group member may take a moment to exit
    while time.monotonic() < deadline and any(in_group(p.pid, proc.pid) for p in sampler.alive()):
        time.sleep(0.1)
    outlived = killed = sampler.kill_leftovers()
    deadline = time.monotonic() + 10
    while killed and time.monotonic() < deadline:
        time.sleep(0.5)
        killed = sampler.kill_leftovers()
    return {"seen": len(sampler.seen), "outlived_group_kill": outlived, "still_running": len(sampler.alive())}


def die_with_parent() -> None:
    """In the child, before exec: SIGTERM it when the benchmark dies, even by SIGKILL (Linux `prctl`), so a
    runner that kills only the benchmark process does not leave a serve tree behind (serve then stops Ray)."""
    import ctypes

    with contextlib.suppress(AttributeError, OSError):  # not Linux: the `finally`s and SIGTERM handler remain
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def env() -> dict:
    e = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "GRADIO_ANALYTICS_ENABLED": "False"}
    for name in ("RAY_ADDRESS", "RAY_AUTH_MODE"):  # token authentication on, as `serve` keeps it
        e.pop(name, None)
    return e


def wait_for(condition: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the process exited ({proc.returncode}) while waiting for {what}")
        if condition():
            return
        time.sleep(0.5)
    raise TimeoutError(f"{what}: not within {timeout:.0f} s")


def http_ok(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def measure_floor(settle: float, timeout: float, cleanup: list[dict]) -> dict:
    """The bare floor: `ray.init` (dashboard on) + a one-button Gradio app (e2e_bench's script)."""
    from benchmarks.e2e_bench import FLOOR_SCRIPT, free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", FLOOR_SCRIPT, str(port)], env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=die_with_parent)
    sampler = None
    try:
        sampler = TreeSampler(proc.pid).start()
        wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/"), timeout, "the floor's app to answer", proc)
        up = sampler.elapsed()
        time.sleep(settle)
        sampler.stop()
        return {"up_s": up, "seconds": sampler.elapsed(), **peaks(sampler.samples),
                "samples": len(sampler.samples)}
    finally:
        cleanup.append({"case": "floor", **stop_group(proc, sampler)})


def write_configs(home: Path, names: Sequence[str]) -> Path:
    """One config per pipeline in `<home>/pipelines`, from `calmops init`'s template, each its own folder."""
    from calmops_actors.commands.init import template

    folder = home / "pipelines"
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        text = template(name, f"incoming/{name}")
        if f'source = "incoming/{name}"' not in text:
            raise RuntimeError("calmops init's template no longer has `source = \"incoming\"`")
        (folder / "incoming" / name).mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.toml").write_text(text)
    return folder


def counts(log: Path, event_type: str) -> dict[str, int]:
    """Events of one type per stream, read from the log without writing to it."""
    if not log.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{log}?mode=ro", uri=True, timeout=5) as db:
            return dict(db.execute("SELECT stream_id, COUNT(*) FROM events WHERE type = ? GROUP BY stream_id",
                                   (event_type,)).fetchall())
    except sqlite3.Error:
        return {}


def all_reached(log: Path, event_type: str, names: Sequence[str], at_least: int) -> bool:
    have = counts(log, event_type)
    return all(have.get(f"pipeline-{name}", 0) >= at_least for name in names)


def measure_serve(pipelines: int, blocks: int, settle: float, timeout: float, cleanup: list[dict]) -> dict:
    """`calmops serve` on a fresh home with N pipelines, each fed `blocks` small blocks: peaks per phase."""
    from benchmarks.e2e_bench import free_port, make_blocks

    root = Path(tempfile.mkdtemp(prefix="calmops-memory-"))
    home = root / "home"
    names = [f"p{i:02d}" for i in range(1, pipelines + 1)]
    proc = None
    sampler = None
    try:
        config_dir = write_configs(home, names)
        base = make_blocks(root / "blocks", blocks, BLOCK_ROWS, BLOCK_FEATURES)
        staged = {}
        for name in names:
            (root / "staging" / name).mkdir(parents=True)
            staged[name] = [Path(shutil.copy(f, root / "staging" / name / f.name)) for f in base]
        port = free_port()
        log_file = (root / "serve.out").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "calmops_actors", "serve", "--home", str(home),
                                 "--ui-port", str(port), "--scan-interval", "5"], env=env(), stdout=log_file,
                                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent)
        log_file.close()
        sampler = TreeSampler(proc.pid).start()
        log = home / "log.sqlite"
        wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/"), timeout, "the UI to answer", proc)
        ui_up = sampler.elapsed()
        wait_for(lambda: all_reached(log, "PipelineRegistered", names, 1), timeout, "every pipeline registered",
                 proc)
        registered = sampler.elapsed()

        def drop(index: int) -> None:
            for name in names:
                path = staged[name][index]
                path.rename(config_dir / "incoming" / name / path.name)

        drop(0)  # trains each champion
        wait_for(lambda: all_reached(log, "ModelPromoted", names, 1), timeout, "every first model", proc)
        trained = sampler.elapsed()
        for i in range(1, blocks):
            drop(i)
        wait_for(lambda: all_reached(log, "DriftChecked", names, blocks - 1), timeout,
                 "every drift check", proc)
        ingested = sampler.elapsed()
        time.sleep(settle)
        sampler.stop()
        samples = sampler.samples
        result = {"pipelines": pipelines, "blocks": blocks, "ui_up_s": ui_up, "registered_s": registered,
                  "trained_s": trained, "ingested_s": ingested, "seconds": sampler.elapsed(),
                  "samples": len(samples), **peaks(samples),
                  "phases": {"start-up": peaks(samples, 0, ui_up), "registered": peaks(samples, ui_up, registered),
                             "ingesting": peaks(samples, registered, ingested),
                             "after": peaks(samples, ingested)},
                  "drifts": sum(counts(log, "DriftDetected").values())}
        return result
    finally:
        if proc is not None:
            cleanup.append({"case": f"serve, {pipelines}", **stop_group(proc, sampler)})
        shutil.rmtree(root, ignore_errors=True)


def measure_registered(registered: int, active: int, blocks: int, idle_seconds: float, steady_seconds: float,
                       timeout: float, cleanup: list[dict]) -> dict:
    """`calmops serve` on a fresh home with `registered` pipelines of which `active` receive blocks: the tree's
    memory while registered and idle, while the active ones work, and once they passivated (steady)."""
    from benchmarks.e2e_bench import free_port, make_blocks

    root = Path(tempfile.mkdtemp(prefix="calmops-memory-"))
    home = root / "home"
    names = [f"p{i:04d}" for i in range(1, registered + 1)]
    fed = names[:active]
    proc = None
    sampler = None
    try:
        config_dir = write_configs(home, names)
        base = make_blocks(root / "blocks", blocks, BLOCK_ROWS, BLOCK_FEATURES)
        staged = {}
        for name in fed:
            (root / "staging" / name).mkdir(parents=True)
            staged[name] = [Path(shutil.copy(f, root / "staging" / name / f.name)) for f in base]
        port = free_port()
        log_file = (root / "serve.out").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "calmops_actors", "serve", "--home", str(home),
                                 "--ui-port", str(port), "--scan-interval", "5", "--idle-seconds", f"{idle_seconds:g}"],
                                env=env(), stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=die_with_parent)
        log_file.close()
        sampler = TreeSampler(proc.pid).start()
        log = home / "log.sqlite"
        wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/"), timeout, "the UI to answer", proc)
        ui_up = sampler.elapsed()
        wait_for(lambda: all_reached(log, "PipelineRegistered", names, 1), timeout, "every pipeline registered",
                 proc)
        registered_at = sampler.elapsed()
        time.sleep(min(10.0, steady_seconds))  # every pipeline registered, none active
        first_drop = sampler.elapsed()

        def drop(index: int) -> None:
            for name in fed:
                path = staged[name][index]
                path.rename(config_dir / "incoming" / name / path.name)

        drop(0)  # trains each champion
        wait_for(lambda: all_reached(log, "ModelPromoted", fed, 1), timeout, "every first model", proc)
        trained = sampler.elapsed()
        for i in range(1, blocks):
            drop(i)
        wait_for(lambda: all_reached(log, "DriftChecked", fed, blocks - 1), timeout, "every drift check", proc)
        ingested = sampler.elapsed()
        wait_for(lambda: all_reached(log, "PipelinePassivated", fed, 1), idle_seconds + timeout,
                 "the active pipelines to passivate", proc)
        passivated = sampler.elapsed()
        time.sleep(2.0)  # the killed actors' processes exit
        quiet = sampler.elapsed()
        cpu_before = sampler.cpu()
        time.sleep(steady_seconds)
        cpu_after = sampler.cpu()
        left = sampler.breakdown()
        sampler.stop()
        samples = sampler.samples
        end = sampler.elapsed()
        return {"registered": registered, "active": active, "blocks": blocks, "idle_seconds": idle_seconds,
                "ui_up_s": ui_up, "registered_s": registered_at, "trained_s": trained, "ingested_s": ingested,
                "passivated_s": passivated, "seconds": end, "samples": len(samples), **peaks(samples),
                "phases": {"start-up": peaks(samples, 0, ui_up), "registering": peaks(samples, ui_up, registered_at),
                           "registered": peaks(samples, registered_at, first_drop),
                           "active": peaks(samples, first_drop, passivated), "steady": peaks(samples, quiet, end)},
                "steady": steady(samples, quiet, end), "registered_level": steady(samples, registered_at, first_drop),
                "steady_cpu_s": cpu_used(cpu_before, cpu_after), "steady_window_s": end - quiet,
                "serve_cpu_s": cpu_after.get(proc.pid, 0.0) - cpu_before.get(proc.pid, 0.0),
                "left": left,
                "drifts": sum(counts(log, "DriftDetected").values()),
                "passivations": sum(counts(log, "PipelinePassivated").values())}
    finally:
        if proc is not None:
            cleanup.append({"case": f"serve, {registered} registered", **stop_group(proc, sampler)})
        shutil.rmtree(root, ignore_errors=True)


def stopped(c: dict) -> str:
    """
    >>> stopped({"case": "floor", "seen": 21, "outlived_group_kill": 1, "still_running": 0})
    'stopped: 21 processes, 1 killed by pid after the group, 0 still running'
    """
    return (f"stopped: {c['seen']} processes, {c['outlived_group_kill']} killed by pid after the group, "
            f"{c['still_running']} still running")


def run(registered: Sequence[int], all_active: Sequence[int], blocks: int, idle_seconds: float,
        steady_seconds: float, timeout: float) -> dict:
    results: dict = {"cpus": os.cpu_count(), "load_before": os.getloadavg()[0], "interval_s": INTERVAL,
                     "block": [BLOCK_ROWS, BLOCK_FEATURES], "blocks": blocks, "active": ACTIVE,
                     "idle_seconds": idle_seconds, "registered": [], "serve": [], "cleanup": []}
    started = time.monotonic()
    floor = measure_floor(3.0, timeout, results["cleanup"])
    results["floor"] = floor
    print(f"  bare ray.init + Gradio: peak PSS {floor['pss']:,.0f} MB (RSS sum {floor['rss']:,.0f} MB, "
          f"{floor['procs']} processes; {floor['seconds']:.0f} s); {stopped(results['cleanup'][-1])}", flush=True)
    for n in registered:
        load = os.getloadavg()[0]
        case = measure_registered(n, min(ACTIVE, n), blocks, idle_seconds, steady_seconds, timeout,
                                  results["cleanup"])
        case["load"] = [load, os.getloadavg()[0]]
        results["registered"].append(case)
        print(f"  serve, {n} registered, {case['active']} active: peak PSS {case['pss']:,.0f} MB while active "
              f"({case['phases']['active']['procs']} processes), steady {case['steady']['pss']:,.0f} MB "
              f"({case['steady']['procs']} processes, {case['steady_cpu_s'] / case['steady_window_s']:.2f} CPU); "
              f"registered in {case['registered_s'] - case['ui_up_s']:.1f} s; {case['seconds']:.0f} s; "
              f"{stopped(results['cleanup'][-1])}", flush=True)
    for n in all_active:
        case = measure_serve(n, blocks, 3.0, timeout, results["cleanup"])
        results["serve"].append(case)
        print(f"  serve, {n} pipeline(s), all fed: peak PSS {case['pss']:,.0f} MB (RSS sum {case['rss']:,.0f} MB, "
              f"{case['procs']} processes; {case['seconds']:.0f} s); {stopped(results['cleanup'][-1])}", flush=True)
    results["seconds"] = time.monotonic() - started
    results["load_after"] = os.getloadavg()[0]
    return results


def mb(x: float) -> str:
    """
    >>> mb(1234.4)
    '1,234 MB'
    """
    return f"{x:,.0f} MB"


def rows(results: dict) -> list[Row]:
    """Per registered count: the peak while the active pipelines work (the target at 500) and the steady level
    once they are idle; then MB per registered pipeline against the figure before virtual actors; then the
    earlier all-active cases, if run (information)."""
    floor = results["floor"]
    base = f"bare ray.init + Gradio: {mb(floor['pss'])} PSS ({mb(floor['rss'])} RSS sum)"
    out = []
    cases = results.get("registered", [])
    for case in cases:
        n, a = case["registered"], case["active"]
        active = case["phases"]["active"]
        judged = n >= TARGET_AT
        out.append(Row(f"peak memory of the `calmops serve` tree, {n} registered pipelines, {a} of them fed "
                       f"{case['blocks']} blocks (whole case)",
                       f"{mb(case['pss'])} PSS ({mb(case['rss'])} RSS sum, {active['procs']} processes at most)",
                       base, f"<= {TARGET_MB / 1024:g} GB at {TARGET_AT} registered" if judged else "",
                       case["pss"] <= TARGET_MB if judged else None))
        level = case["steady"]
        out.append(Row(f"steady, {n} registered, all idle (the {a} fed ones passivated after "
                       f"{case['idle_seconds']:g} s): median PSS over {case['steady_window_s']:.0f} s",
                       f"{mb(level['pss'])} PSS ({mb(level['rss'])} RSS sum, {level['procs']:.0f} processes); "
                       f"CPU {case['steady_cpu_s'] / case['steady_window_s']:.2f} cores",
                       f"registered, before any block: {mb(case['registered_level']['pss'])} PSS; registering took "
                       f"{fmt_s(case['registered_s'] - case['ui_up_s'])}"))
    if len(cases) >= 2:
        ns = [c["registered"] for c in cases]
        slope = fit_slope(ns, [c["steady"]["pss"] for c in cases])
        peak_slope = fit_slope(ns, [c["pss"] for c in cases])
        out.append(Row(f"memory per registered pipeline (slope of the steady PSS over {', '.join(map(str, ns))} "
                       "registered)", f"{slope:,.2f} MB PSS (of the peak: {peak_slope:,.2f} MB)",
                       f"before virtual actors: {BEFORE_MB_PER_PIPELINE} MB PSS per pipeline (an actor process "
                       "each; 2026-11-28)"))
        top = max(cases, key=lambda c: c["registered"])
        if top["registered"] < TARGET_AT:
            # a slope below 0 is noise between two small cases: the projection never goes below the measured peak
            projected = top["pss"] + max(0.0, peak_slope) * (TARGET_AT - top["registered"])
            out.append(Row(f"peak at {TARGET_AT} registered, **projected** along the slope of the peak from "
                           f"{top['registered']} (a negative slope counted as 0)", f"{mb(projected)} PSS", "",
                           f"<= {TARGET_MB / 1024:g} GB", projected <= TARGET_MB))
    old = results.get("serve", [])
    for case in old:
        n = case["pipelines"]
        out.append(Row(f"peak memory of the `calmops serve` tree, {n} pipeline{'s' if n > 1 else ''}, every one fed "
                       f"({case['blocks']} blocks each)",
                       f"{mb(case['pss'])} PSS ({mb(case['rss'])} RSS sum, {case['procs']} processes); "
                       f"{case['pss'] / floor['pss']:.2f}x the floor", base))
    if len(old) >= 2:
        ns = [c["pipelines"] for c in old]
        slope = fit_slope(ns, [c["pss"] for c in old])
        rss_slope = fit_slope(ns, [c["rss"] for c in old])
        out.append(Row(f"memory per added pipeline, every one fed (slope of peak over {', '.join(map(str, ns))} "
                       "pipelines)", f"{mb(slope)} PSS ({mb(rss_slope)} RSS sum)",
                       f"serve with {ns[0]} pipeline{'s' if ns[0] > 1 else ''} over the floor: "
                       f"{mb(old[0]['pss'] - floor['pss'])} PSS"))
        idle = fit_slope(ns, [c["phases"]["registered"]["pss"] for c in old])
        out.append(Row("of which once registered, before any block", f"{mb(idle)} PSS",
                       f"start-up peak of serve before its pipelines: {mb(old[0]['phases']['start-up']['pss'])}"
                       " PSS"))
    return out


def fmt_s(x: float) -> str:
    """
    >>> fmt_s(12.34)
    '12.3 s'
    """
    return f"{x:.1f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="10 and 30 registered, 2 blocks each for the fed ones, 10 s idle, 10 s steady")
    parser.add_argument("--registered", type=int, nargs="+", default=None,
                        help="registered pipeline counts (default 10 100 500; --quick 10 30)")
    parser.add_argument("--all-active", type=int, nargs="*", default=(),
                        help="also the earlier cases: N pipelines, every one fed (e.g. 1 10 20)")
    parser.add_argument("--idle-seconds", type=float, default=None, help="serve --idle-seconds (default 20; --quick 10)")
    parser.add_argument("--steady", type=float, default=None, help="seconds of the steady window (default 20)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed for each wait")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    # a SIGTERM (e.g. from the benchmark runner) unwinds through the `finally`s that kill the process trees
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    registered = args.registered or (QUICK_REGISTERED if args.quick else FULL_REGISTERED)
    blocks = 2 if args.quick else 3
    idle = args.idle_seconds or (10.0 if args.quick else 20.0)
    steady_seconds = args.steady or (10.0 if args.quick else 20.0)
    print(f"memory ({'quick' if args.quick else 'full'}): registered {', '.join(map(str, registered))} ({ACTIVE} "
          f"fed); all fed {', '.join(map(str, args.all_active)) or '-'}; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs", flush=True)
    try:
        results = run(registered, args.all_active, blocks, idle, steady_seconds, args.timeout)
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"done in {results['seconds']:.0f} s, load average {results['load_after']:.1f}")
    for row in rows(results):
        verdict = f"  [{row.verdict()}]" if row.target else ""
        print(f"- {row.figure}: {row.measured}; {row.baseline}{verdict}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
