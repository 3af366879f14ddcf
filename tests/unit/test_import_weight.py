"""Reading the log stays light: the event catalog, the replay path and the CLI's parser import no numeric,
ML or serving library (they took 2-3 s to import, longer than a million-event replay from a snapshot), while
the code that computes (drift tests, retraining) still imports them itself when it runs."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("numpy", "pandas", "scipy", "frouros", "sklearn", "river", "pyarrow", "skops", "ray", "gradio")


def heavy_modules_after(code: str) -> list[str]:
    probe = (f"{code}\nimport json, sys\n"
             f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_event_catalog_and_the_replay_path_import_no_heavy_library() -> None:
    assert heavy_modules_after(
        "import pipelines.core.events, pipelines.replay.fold, pipelines.replay.snapshot, pipelines.read_model.explain, "
        "calmops_actors.readlog, calmops_actors.home") == []


def test_building_the_cli_imports_no_heavy_library() -> None:
    assert heavy_modules_after("from calmops_actors.cli import build_parser\nbuild_parser()") == []


def test_the_drift_tests_still_import_what_they_compute_with() -> None:
    assert {"numpy", "pandas", "frouros", "scipy"} <= set(heavy_modules_after("import pipelines.drift.features"))
