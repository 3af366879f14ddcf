"""Blocks on disk: one file per block (`block_0001.csv` ...) or one file with a block column, plus manifest.json.

Every file is written to a hidden temporary name in the same folder and renamed into place, so a watcher never
sees half a file. The manifest gains an `output` section and, per block, the file name and its sha256;
`read_blocks` reads the folder back to the same frames using the manifest's dtypes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from calmops_actors.errors import UserError
from pipelines.synthetic.scenarios import Scenario

FORMATS: tuple[str, ...] = ("csv", "parquet")
MANIFEST = "manifest.json"
SINGLE_FILE_STEM = "blocks"
_OURS = re.compile(r"^(manifest\.json|block_\d{4,}\.(csv|parquet)|blocks\.(csv|parquet))$")
_TEMP = re.compile(r"^\.(manifest\.json|block_\d{4,}\.(csv|parquet)|blocks\.(csv|parquet))\.\d+\.tmp$")


def block_file_name(index: int, fmt: str) -> str:
    return f"block_{index:04d}.{fmt}"


def frame_bytes(frame: pd.DataFrame, fmt: str) -> bytes:
    """Serialise a frame deterministically: same frame, same bytes."""
    if fmt == "csv":
        return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
    if fmt == "parquet":
        sink = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
        return sink.getvalue()
    raise UserError(f"unknown format {fmt!r}; use csv or parquet")


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to a hidden temp file next to `path`, flush it to disk, then rename it into place."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def prepare_out_dir(out: Path, overwrite: bool) -> None:
    """Create `out`; refuse to mix with blocks already there unless `overwrite` (which removes only those)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder for the blocks")
    out.mkdir(parents=True, exist_ok=True)
    ours = sorted(p for p in out.iterdir() if _OURS.match(p.name) or _TEMP.match(p.name))
    if ours and not overwrite:
        raise UserError(
            f"{out} already holds blocks ({ours[0].name} ...); choose an empty folder or pass --overwrite "
            "to replace them"
        )
    for path in ours:
        path.unlink()


def write_manifest(out: Path, manifest: dict) -> None:
    atomic_write(out / MANIFEST, (json.dumps(manifest, indent=2, allow_nan=False) + "\n").encode("utf-8"))


def with_output(manifest: dict, fmt: str, block_col: str | None, complete: bool) -> dict:
    """A copy of the manifest with the `output` section; block entries get `file` and `sha256` when written."""
    result = json.loads(json.dumps(manifest))
    result["output"] = {
        "format": fmt,
        "layout": "single_file" if block_col else "per_block",
        "block_col": block_col,
        "complete": complete,
    }
    for entry in result["blocks"]:
        entry.setdefault("file", None)
        entry.setdefault("sha256", None)
    return result


def write_block(out: Path, manifest: dict, index: int, frame: pd.DataFrame) -> dict:
    """Write block `index` (1-based) in the manifest's format; record its file and sha256; return its entry."""
    fmt = manifest["output"]["format"]
    data = frame_bytes(frame, fmt)
    name = block_file_name(index, fmt)
    atomic_write(out / name, data)
    entry = manifest["blocks"][index - 1]
    entry["file"] = name
    entry["sha256"] = hashlib.sha256(data).hexdigest()
    return entry


def check_block_col(scenario: Scenario, block_col: str | None) -> None:
    """Refuse a block column name that would overwrite a data column (the input's own block column is fine)."""
    own = scenario.manifest["parameters"].get("block_col")
    if block_col and block_col != own and any(block_col in f.columns for _, f in scenario.frames):
        raise UserError(
            f"the data already has a column {block_col!r}; pick another name for the block column"
        )


def write_scenario(
    scenario: Scenario,
    out: Path,
    fmt: str,
    block_col: str | None = None,
    on_block: Callable[[dict], None] | None = None,
) -> dict:
    """Write all blocks (one file each, or one file with `block_col`) and the manifest; return the manifest."""
    check_block_col(scenario, block_col)
    manifest = with_output(scenario.manifest, fmt, block_col, complete=False)
    if block_col:
        data = frame_bytes(scenario.combined(block_col), fmt)
        name = f"{SINGLE_FILE_STEM}.{fmt}"
        atomic_write(out / name, data)
        digest = hashlib.sha256(data).hexdigest()
        for entry in manifest["blocks"]:
            entry["file"], entry["sha256"] = name, digest
            if on_block:
                on_block(entry)
    else:
        for index, (_, frame) in enumerate(scenario.frames, start=1):
            entry = write_block(out, manifest, index, frame)
            if on_block:
                on_block(entry)
    manifest["output"]["complete"] = True
    write_manifest(out, manifest)
    return manifest


def read_table(path: Path) -> pd.DataFrame:
    """Read a user's CSV or Parquet file; every foreseeable failure becomes a UserError saying what to do."""
    if not path.exists():
        raise UserError(f"input file {path} does not exist; check the path")
    if not path.is_file():
        raise UserError(f"input {path} is not a file; give a .csv or .parquet file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, float_precision="round_trip")
        elif suffix in (".parquet", ".pq"):
            frame = pq.read_table(path).to_pandas()
        else:
            raise UserError(f"cannot tell the format of {path.name}; name it .csv or .parquet")
    except UserError:
        raise
    except pd.errors.EmptyDataError:
        raise UserError(f"{path} is empty; it needs a header row and data") from None
    except (pd.errors.ParserError, UnicodeDecodeError, pa.ArrowException, OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"cannot read {path} as {suffix[1:]}: {first}; check the file is valid") from None
    if frame.empty:
        raise UserError(f"{path} has no data rows")
    return frame


def _cast(frame: pd.DataFrame, dtypes: dict[str, str]) -> pd.DataFrame:
    for column in frame.columns:
        kind = dtypes.get(column)
        if kind in ("int64", "float64", "bool"):
            frame[column] = frame[column].astype(kind)
        elif kind == "string":
            values = frame[column].astype(object)
            frame[column] = values.where(values.notna(), np.nan)
    return frame


def read_manifest(out: Path) -> dict:
    path = out / MANIFEST
    if not path.exists():
        raise UserError(
            f"{out} has no {MANIFEST}; point at a folder written by `calmops generate` or `inject`"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def read_blocks(out: Path) -> list[tuple[str, pd.DataFrame]]:
    """Read the blocks written so far back as `(block_id, frame)` with the dtypes the manifest records."""
    manifest = read_manifest(out)
    output = manifest["output"]
    fmt, block_col = output["format"], output["block_col"]
    dtypes = manifest["columns"]["dtypes"]
    strings = [c for c, kind in dtypes.items() if kind == "string"]

    def load(name: str) -> pd.DataFrame:
        if fmt == "csv":
            return pd.read_csv(out / name, float_precision="round_trip", dtype=dict.fromkeys(strings, object))
        return pq.read_table(out / name).to_pandas()

    blocks: list[tuple[str, pd.DataFrame]] = []
    combined = load(f"{SINGLE_FILE_STEM}.{fmt}") if block_col and output["complete"] else None
    keep_block_col = manifest["parameters"].get("block_col") == block_col
    for entry in manifest["blocks"]:
        if entry["file"] is None:
            continue
        if combined is None:
            frame = load(entry["file"])
        else:
            frame = combined[combined[block_col].astype(str) == entry["block_id"]].reset_index(drop=True)
            if not keep_block_col:
                frame = frame.drop(columns=[block_col])
            target = manifest["columns"]["target"]
            if not entry["labelled"] and target in frame.columns:
                frame = frame.drop(columns=[target])
        blocks.append((entry["block_id"], _cast(frame, dtypes)))
    return blocks
