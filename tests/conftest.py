"""Shared fixtures. Ray is started once per session (num_cpus=2) and only by tests that ask for it."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the whole session (num_cpus=2); never attaches to a cluster already on the machine."""
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    yield ray
    ray.shutdown()

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))  # `import builders` from any test folder


@pytest.fixture(scope="session")
def scenario_home(ray_local, tmp_path_factory):
    """A home folder with a realistic log (drift, rounds, promotion, rejection, rollback): see scenario_home.py."""
    from scenario_home import build_scenario_home

    return build_scenario_home(tmp_path_factory.mktemp("scenario"))
