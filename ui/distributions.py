"""One feature's values in a block and in the reference it was compared with, read on demand for the heatmap.

The read tables hold each drift test's result, not the data: the rows live in the artifact store as the
Parquet frames `BlockArrived` recorded. When someone clicks a heatmap cell, this module reads that feature's
column from the block's frame and from the reference blocks' frames (the ones the check recorded in
`DriftChecked.reference_blocks`), read-only and bounded:

- every file is hash-checked against the sha256 the log recorded before it is parsed
  (`ArtifactStore.read_verified`: a changed file raises `ArtifactTampered`, a missing one `ArtifactMissing`);
- at most `MAX_REFERENCE_BLOCKS` reference blocks (the latest) and `MAX_FRAME_BYTES` per file are read,
  only the one column is decoded, and each side is thinned to `MAX_VALUES` values (a fixed stride, so the
  same click shows the same picture).

Nothing is cached or written; a click costs one verified read per file.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["MAX_FRAME_BYTES", "MAX_REFERENCE_BLOCKS", "MAX_VALUES", "Distributions", "load_distributions"]

MAX_REFERENCE_BLOCKS = 20
MAX_FRAME_BYTES = 64 * 2**20
MAX_VALUES = 20_000


@dataclass(frozen=True, slots=True)
class Distributions:
    """A feature's values in the block and the reference, and what could not be read (in words)."""

    feature: str
    block: pd.Series
    reference: pd.Series
    reference_blocks: tuple[str, ...]
    notes: list[str] = field(default_factory=list)


def load_distributions(artifacts_root: Path, queries: Any, name: str, cell: dict[str, Any]) -> Distributions:
    """The block's and the reference's values of `cell["feature"]` (a `Queries.drift_cell` row)."""
    feature, notes = cell["feature"], []
    wanted = list(cell["reference_blocks"])
    if len(wanted) > MAX_REFERENCE_BLOCKS:
        notes.append(f"reference: the latest {MAX_REFERENCE_BLOCKS} of its {len(wanted)} blocks")
        wanted = wanted[-MAX_REFERENCE_BLOCKS:]
    block = _column(artifacts_root, cell, feature, notes, cell["block_id"])
    refs = queries.block_artifacts(name, wanted)
    parts = [_column(artifacts_root, r, feature, notes, r["block_id"]) for r in refs.to_dict("records")]
    parts = [p for p in parts if len(p)]
    reference = pd.concat(parts, ignore_index=True) if parts else pd.Series([], dtype=float)
    return Distributions(feature, _thin(block), _thin(reference), tuple(wanted), notes)


def _column(root: Path, row: dict[str, Any], feature: str, notes: list[str], block_id: str) -> pd.Series:
    from calmops_actors.artifacts import ArtifactError, ArtifactStore, ref_of

    sha, kind, size = row.get("artifact_sha256"), row.get("artifact_kind"), row.get("artifact_size")
    if not sha or not kind:
        notes.append(f"{block_id}: no stored frame recorded")
        return pd.Series([], dtype=float)
    if size is not None and size > MAX_FRAME_BYTES:
        notes.append(f"{block_id}: frame of {size / 2**20:.0f} MiB not read (over {MAX_FRAME_BYTES // 2**20} MiB)")
        return pd.Series([], dtype=float)
    try:
        data = ArtifactStore(root).read_verified(ref_of(sha, kind, int(size or 0)))
        frame = pd.read_parquet(io.BytesIO(data), columns=[feature], engine="pyarrow")
    except ArtifactError as err:
        notes.append(f"{block_id}: {err}")
        return pd.Series([], dtype=float)
    except (KeyError, ValueError, OSError) as err:  # the column is absent from this frame, or it does not parse
        notes.append(f"{block_id}: {feature} not readable ({type(err).__name__})")
        return pd.Series([], dtype=float)
    return frame[feature].dropna().reset_index(drop=True)


def _thin(values: pd.Series) -> pd.Series:
    if len(values) <= MAX_VALUES:
        return values
    step = int(np.ceil(len(values) / MAX_VALUES))
    return values.iloc[::step].reset_index(drop=True)
