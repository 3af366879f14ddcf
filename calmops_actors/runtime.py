"""Starting or joining Ray, and spawning pipeline actors: the one place `ray.remote(PipelineActor)` happens.

`serve` starts a local Ray for as long as it runs (`start_ray`) and advertises it in Ray's temp folder; `run`
(`RunRay`) joins that Ray when a live `serve` of the same user and the same installation advertises one, and
otherwise starts a small local Ray of its own, at its first Ray call: a run that only meets files already in the
log, or rejected ones, starts none.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

NAMESPACE = "calmops"
ADVERT_PREFIX = "calmops-serve-"  # <Ray temp folder>/calmops-serve-<pid>.json, one per live `serve`


def start_ray(address: str | None = None, num_cpus: int | None = None, dashboard: bool = False) -> dict[str, Any]:
    """Start a local Ray (default) or join a cluster at `address`; returns Ray's context info.

    A local Ray started here is advertised (`advertise`) until this process ends, so a `calmops run` of the
    same user and installation joins it instead of starting its own."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        return {"dashboard_url": None}
    kwargs: dict[str, Any] = {"namespace": NAMESPACE, "log_to_driver": False, "logging_level": logging.ERROR,
                              "configure_logging": True}
    if address:
        ctx = ray.init(address=address, **kwargs)
    else:
        # Ray's services listen beyond loopback (only the dashboard takes a host), so Ray's token
        # authentication stays on: it is this Ray's default when RAY_AUTH_MODE is unset, and Ray then
        # generates the token into ~/.ray/auth_token. Nobody without it can run code through those ports;
        # the dashboard's page asks for it once per browser (docs/SECURITY.md).
        ctx = ray.init(address="local", num_cpus=num_cpus, include_dashboard=dashboard,
                       dashboard_host="127.0.0.1", **kwargs)
        advertise(ctx.address_info)
    url = getattr(ctx, "dashboard_url", None) or None
    return {"dashboard_url": f"http://{url}" if url and not url.startswith("http") else url}


# -- serve's Ray, found by `run` ------------------------------------------------------------------------------

def installation() -> dict[str, str]:
    """What a process joining another's Ray must share with it: Ray's workers run the code of the process that
    started Ray (its Python, its `calmops_actors`), so `run` joins only a Ray started from the same ones."""
    import calmops_actors

    return {"python": os.path.realpath(sys.executable),
            "calmops_actors": os.path.realpath(Path(calmops_actors.__file__).parent),
            "version": calmops_actors.__version__}


def ray_temp_root() -> Path:
    """The folder Ray keeps its sessions in when none is given: $RAY_TMPDIR, else $TMPDIR, else /tmp, then `ray`
    (Ray's own rule, for the platforms we run on); `serve`'s advert lives there."""
    return Path(os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp") / "ray"


def advertise(address_info: dict[str, Any]) -> Path | None:
    """Write where this process's local Ray answers (GCS address, session, installation) beside Ray's sessions,
    readable by this user only; removed when the process exits (a killed process leaves it: readers check the
    pid). Best effort: a folder that refuses the file costs only the join."""
    try:
        path = Path(address_info["session_dir"]).parent / f"{ADVERT_PREFIX}{os.getpid()}.json"
        text = json.dumps({"address": address_info["gcs_address"], "pid": os.getpid(), "uid": os.getuid(),
                           "session_dir": address_info["session_dir"], **installation()})
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except (OSError, KeyError, TypeError):
        return None
    atexit.register(lambda: path.unlink(missing_ok=True))
    return path


def serve_ray(root: Path | None = None, timeout: float = 0.5) -> dict[str, Any] | None:
    """The newest advertised Ray of a live `serve` that this process may join, or None.

    Joinable: written by this user, by a process still alive, from this installation (`installation`), and its
    GCS port accepts a connection. Ray's token (~/.ray/auth_token unless $RAY_AUTH_TOKEN says otherwise) must be
    the one serve's Ray generated: the same user with the same home directory; `RunRay` falls back to a Ray of
    its own when joining fails anyway."""
    root = root if root is not None else ray_temp_root()
    try:
        paths = sorted(root.glob(f"{ADVERT_PREFIX}*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return None
    mine = installation()
    for path in paths:
        try:
            info = json.loads(path.read_text())
            pid, address = int(info["pid"]), str(info["address"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if info.get("uid") != os.getuid() or any(info.get(k) != v for k, v in mine.items()):
            continue
        if not alive(pid) or not Path(str(info.get("session_dir"))).is_dir():
            continue
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout):
                pass
        except (OSError, ValueError):
            continue
        return info
    return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- `run`'s Ray: joined or started at its first use -------------------------------------------------------------

class RunRay:
    """The Ray a `calmops run` uses, decided up front and connected at the first Ray call.

    `address`: "local" starts a Ray of our own; any other value joins that cluster; None joins serve's Ray when
    `serve_ray` finds one, else starts our own. Our own is as small as `run` needs: no dashboard (so no
    dashboard modules), the machine's CPUs for the round's parallel strategies, no runtime env."""

    def __init__(self, address: str | None = None, announce: Callable[[str], None] | None = None) -> None:
        import ray

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        self.preexisting = ray.is_initialized()  # an in-process caller's (tests): used, never stopped
        self.serve = None if address or self.preexisting else serve_ray()
        self.address = address if address and address != "local" else (self.serve or {}).get("address")
        self.announce = announce or (lambda text: None)
        self.mode = "existing" if self.preexisting else "not started"

    def describe(self) -> str:
        """What this run will use, for its first line."""
        if self.preexisting:
            return "the Ray this process already runs"
        if self.serve is not None:
            return f"joins serve's Ray at {self.address} (pid {self.serve['pid']}) when a block needs it"
        if self.address:
            return f"joins Ray at {self.address} when a block needs it"
        return "starts a local Ray when a block needs it"

    def connect(self) -> None:
        """Join or start Ray now (called by Ray's first-use hook, or directly)."""
        import ray

        if ray.is_initialized():
            return
        kwargs: dict[str, Any] = {"namespace": NAMESPACE, "log_to_driver": False, "logging_level": logging.ERROR,
                                  "configure_logging": True}
        if self.address:
            try:
                ray.init(address=self.address, **kwargs)
                self.mode = "joined"
                self.announce("")
                return
            except Exception as err:  # noqa: BLE001 - serve's Ray went away, refused the token, another version
                if self.serve is None:
                    raise  # an address the user gave: their cluster, their error
                self.announce(f"warning: could not join serve's Ray at {self.address} ({type(err).__name__}: "
                              f"{err}); starting a local one")
                self.serve = self.address = None
        self.announce("starting Ray ...")
        ray.init(address="local", include_dashboard=False, **kwargs)
        self.mode = "started"
        self.announce("")  # started: the progress line drops its note

    @contextlib.contextmanager
    def on_first_use(self) -> Iterator[RunRay]:
        """Inside the block, the first Ray call (`ray.put`, `ray.get`, a task's `.remote`) joins or starts Ray
        through `connect` instead of Ray's own `ray.init()` with its defaults: Ray's auto-init hook points here.
        Where a Ray release no longer has that hook, Ray is connected at once."""
        import ray

        try:
            from ray._private import auto_init_hook as hook
        except ImportError:
            hook = None
        if hook is None or not callable(getattr(hook, "auto_init_ray", None)):
            self.connect()
            yield self
            return
        original = hook.auto_init_ray

        def auto_init_ray() -> None:
            if not ray.is_initialized():
                with hook.auto_init_lock:
                    self.connect()

        hook.auto_init_ray = auto_init_ray
        try:
            yield self
        finally:
            hook.auto_init_ray = original

    def stop(self, quiet: bool = False) -> None:
        """Stop the Ray we started (or leave the one we joined); an in-process caller's stays up. `quiet` sends
        file descriptor 2 to /dev/null meanwhile: after Ctrl-C Ray's workers die mid-task, and its C++ core
        prints their failures (`task_manager.cc ...`) straight to the process's stderr, past Python."""
        import ray

        if self.mode not in ("started", "joined") or not ray.is_initialized():
            return
        if not quiet:
            ray.shutdown()
            return
        saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        try:
            ray.shutdown()
        except KeyboardInterrupt:
            pass
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)


def local_dashboard() -> bool:
    """True when `ray[default]` (the dashboard's dependencies) is installed."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("aiohttp", "aiohttp_cors", "opencensus"))


def home_node() -> str:
    """The Ray node of this process: the one whose disk holds the home folder."""
    import ray

    return ray.get_runtime_context().get_node_id()


def actor_name(pipeline: str) -> str:
    return f"pipeline:{pipeline}"


def spawn_actor(home: Path, pipeline: str, resources: dict[str, float] | None = None,
                config_dir: Path | None = None) -> Any:
    """The pipeline's named actor (created, or found if it already runs), restarted by Ray if it dies.

    A restarted actor replays its stream in its constructor; calls in flight are retried on it
    (`max_task_retries`), which is safe because every method is idempotent over the log. Ray re-runs the
    constructor with the same arguments, so `config_dir` (where the config's `preprocess` hook lives) lets a
    restarted actor load its hook before its first call, as the one it replaces had.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from calmops_actors.pipeline_actor import PipelineActor

    options: dict[str, Any] = {
        "name": actor_name(pipeline), "namespace": NAMESPACE, "get_if_exists": True,
        "max_restarts": -1, "max_task_retries": 3, "num_cpus": 0,
        # The log and the artifacts live on this node's disk: the actor must run (and restart) here.
        "scheduling_strategy": NodeAffinitySchedulingStrategy(node_id=home_node(), soft=False),
    }
    if resources:
        options["resources"] = resources
    return ray.remote(PipelineActor).options(**options).remote(
        str(home), pipeline, str(config_dir) if config_dir is not None else None)
