"""Fixtures for the UI tests: private, projected copies of the session's scenario home."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from calmops_actors.projector import update_projections


@pytest.fixture(scope="session")
def projected_copy(scenario_home, tmp_path_factory) -> Callable[[str], Path]:
    """`projected_copy(label)`: a new home holding a copy of the scenario log, with its read tables built."""

    def make(label: str) -> Path:
        home = tmp_path_factory.mktemp(label) / "home"
        home.mkdir()
        for name in ("log.sqlite", "log.sqlite-wal", "log.sqlite-shm"):
            if (scenario_home / name).exists():
                shutil.copy2(scenario_home / name, home / name)
        assert update_projections(home) > 0
        return home

    return make
