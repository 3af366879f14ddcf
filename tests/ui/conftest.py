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
        if (scenario_home / "artifacts").is_dir():  # the block frames the heatmap's distributions read
            shutil.copytree(scenario_home / "artifacts", home / "artifacts")
        assert update_projections(home) > 0
        return home

    return make


CHROMIUM = Path("/usr/bin/chromium")  # Debian's chromium, driven by Playwright through executable_path
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"]
PAGE_TIMEOUT_MS = 90_000  # the shared 2-core machine can be slow to render the first page


@pytest.fixture(scope="module")
def browser():
    """One chromium per test module (every browser test module shares this fixture)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (scripts/browser.sh) to run browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    yield page
    context.close()
