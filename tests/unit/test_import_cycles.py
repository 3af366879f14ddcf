"""`pipelines/` has no import cycle, and deciding loads no numeric library.

A cycle is what forced the function-level imports this package used to carry (settings living inside the
numeric modules that the config needed); settings now live in their own light modules, which the numeric
modules import, never the reverse.
"""

from __future__ import annotations

import ast
from pathlib import Path

from test_import_weight import heavy_modules_after

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"


def module_imports(path: Path) -> set[str]:
    """The `pipelines` modules a module imports when it is imported (top level; not under TYPE_CHECKING)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node) if isinstance(node, ast.Import | ast.ImportFrom | ast.If | ast.Try) else ():
            if isinstance(sub, ast.ImportFrom) and sub.module and sub.module.startswith("pipelines."):
                found.add(sub.module)
                found |= {f"{sub.module}.{a.name}" for a in sub.names}  # `from pipelines.x import module`
            elif isinstance(sub, ast.Import):
                found |= {a.name for a in sub.names if a.name.startswith("pipelines.")}
    return found


def graph() -> dict[str, set[str]]:
    modules = {}
    for p in PIPELINES.rglob("*.py"):
        parts = p.relative_to(PIPELINES.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = module_imports(p)
    return modules


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle found by a depth-first walk (each reported once, from its smallest module)."""
    found, seen = [], set()

    def walk(node: str, path: list[str]) -> None:
        for nxt in sorted(edges.get(node, ())):
            if nxt in path:
                cycle = path[path.index(nxt):]
                key = tuple(sorted(cycle))
                if key not in seen:
                    seen.add(key)
                    found.append(cycle + [nxt])
            elif len(path) < 40:
                walk(nxt, path + [nxt])

    for start in sorted(edges):
        walk(start, [start])
    return found


def test_pipelines_has_no_import_cycle() -> None:
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_one() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_deciding_and_reading_the_config_load_no_numeric_library() -> None:
    assert heavy_modules_after("import pipelines.core.decide, pipelines.config.pipeline, pipelines.core.rounds") == []
