"""Which files in a pipeline's source folder are candidates for ingestion (shared by `run` and the watcher)."""

from __future__ import annotations

from pathlib import Path

TEMP_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp")


def is_candidate(path: Path, source: Path) -> bool:
    """A regular file inside `source` (symlinks pointing out are refused), not hidden, not a temp file."""
    name = path.name
    if name.startswith((".", "~")) or name.endswith(TEMP_SUFFIXES) or name.endswith("~"):
        return False
    if name == "manifest.json":
        return False
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return False
    root = source.resolve()
    return resolved.is_file() and (resolved.parent == root or root in resolved.parents)


def source_files(source: Path) -> list[Path]:
    """Candidate files directly in `source`, in name order (the order `run` ingests them)."""
    if not source.is_dir():
        return []
    return sorted((p for p in source.iterdir() if is_candidate(p, source)), key=lambda p: p.name)
