"""Starting or joining Ray, and spawning pipeline actors: the one place `ray.remote(PipelineActor)` happens."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

NAMESPACE = "calmops"


def start_ray(address: str | None = None, num_cpus: int | None = None, dashboard: bool = False) -> dict[str, Any]:
    """Start a local Ray (default) or join a cluster at `address`; returns Ray's context info."""
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
    url = getattr(ctx, "dashboard_url", None) or None
    return {"dashboard_url": f"http://{url}" if url and not url.startswith("http") else url}


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
