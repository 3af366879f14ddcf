"""Dependencies point inward: each layer imports only what STYLE.md allows (checked with `ast`).

The map of the layers and of where each rule lives inside `pipelines/` is docs/ARCHITECTURE.md."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FORBIDDEN = {
    "pipelines": {"ray", "sqlite3", "sqlite_utils", "gradio", "watchdog", "eventstore", "calmops_actors", "ui"},
    "eventstore": {"ray", "gradio", "calmops_actors", "ui", "pipelines", "watchdog"},
    "ui": {"ray"},
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_no_outer_layer(package: str) -> None:
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = imported_roots(path) & FORBIDDEN[package]
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not offenders, "\n".join(offenders)


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("import ray\nfrom eventstore.codec import Codec\nfrom . import sibling\n")
    assert imported_roots(sample) == {"ray", "eventstore"}
