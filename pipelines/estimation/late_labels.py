"""Labels that arrive after their block: read a labels file, and join it to the stored block's rows.

A labels file holds the row key (`[labels] key`), the target, and either the pipeline's block column or
nothing (then its name gives the block id, as for blocks: `b7.csv` labels block `b7`). It is accepted whole
or refused whole, with a reason code and a message (`pipelines.core.intake.REASONS`): a block the pipeline
never received, a block that has its labels already, keys that are not rows of the block, or rows of the
block left without a label (a block is labelled completely or not at all: a round trains on whole blocks).

>>> import pandas as pd
>>> rules = LabelRules(key="id", target="y")
>>> parsed = parse_labels("b1.csv", b"id,y\\n1,0\\n2,1\\n", rules)
>>> [(b.block_id, len(b.frame)) for b in parsed.blocks]
[('b1', 2)]
>>> block = pd.DataFrame({"x": [0.5, 0.7], "id": ["2", "1"]})
>>> join_labels(block, parsed.blocks[0].frame, "id", "y")["y"].tolist()
[1, 0]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.core.intake import IntakeRules as _CsvRules
from pipelines.core.intake import (
    Rejected,
    block_keys,
    display_name,
    file_block_id,
    file_format,
    read_csv,
    read_parquet,
    refuse_duplicate_keys,
    refuse_rows,
    row_keys,
    split_blocks,
)

__all__ = ["LabelRules", "LabelsIntake", "join_labels", "parse_labels"]


@dataclass(frozen=True, kw_only=True)
class LabelRules:
    key: str
    target: str
    block_col: str | None = None
    formats: tuple[str, ...] = ("csv", "parquet")
    max_file_mb: float = 512.0
    max_rows: int = 2_000_000


@dataclass(frozen=True)
class LabelledRows:
    block_id: str
    frame: pd.DataFrame  # two columns: the key (text) and the target


@dataclass(frozen=True)
class LabelsIntake:
    blocks: tuple[LabelledRows, ...] = ()
    reason_code: str | None = None
    message: str | None = None

    @property
    def accepted(self) -> bool:
        return self.reason_code is None


def parse_labels(name: str, data: bytes, rules: LabelRules) -> LabelsIntake:
    """Validate a labels file on its own (the join with each block comes next); never raises."""
    try:
        return LabelsIntake(blocks=_parse(name, data, rules))
    except Rejected as r:
        message = f"{display_name(name)}: {r.message}".encode("utf-8", "backslashreplace").decode("utf-8")
        return LabelsIntake(reason_code=r.code, message=message)


def _parse(name: str, data: bytes, rules: LabelRules) -> tuple[LabelledRows, ...]:
    fmt = file_format(name, rules.formats)
    if len(data) > rules.max_file_mb * 1024 * 1024:
        raise Rejected("file_too_large", f"{len(data) / 1e6:.1f} MB is over the limit of {rules.max_file_mb} MB "
                                         "([intake] max_file_mb)")
    if not data:
        raise Rejected("empty_file", "the file is empty")
    csv_rules = _CsvRules(target=rules.target, max_file_mb=rules.max_file_mb, max_rows=rules.max_rows)
    frame = read_csv(data, csv_rules) if fmt == "csv" else \
        read_parquet(data, rules.max_file_mb * 1024 * 1024, rules.max_rows)
    if len(frame) == 0:
        raise Rejected("no_rows", "the labels file has column names but no rows")
    refuse_rows(len(frame), rules.max_rows)
    has_block_col = rules.block_col is not None and rules.block_col in frame.columns
    if not has_block_col:
        file_block_id(name)  # its name must give the block id
    if rules.target not in frame.columns:
        raise Rejected("missing_target", f"no target column {rules.target!r}: a labels file holds the row key "
                                         f"{rules.key!r} and the target")
    if frame[rules.target].isna().any():
        n = int(frame[rules.target].isna().sum())
        raise Rejected("missing_labels", f"{n} row(s) have no value in the target column {rules.target!r}")
    rows = pd.DataFrame({rules.key: row_keys(frame, rules.key), rules.target: frame[rules.target].to_numpy()})
    keys = block_keys(frame, rules.block_col) if has_block_col else None
    blocks = split_blocks(name, keys, rows, labelled=True)
    for block in blocks:
        refuse_duplicate_keys(block.frame[rules.key], block.block_id)
    return tuple(LabelledRows(b.block_id, b.frame) for b in blocks)


def join_labels(block: pd.DataFrame, labels: pd.DataFrame, key: str, target: str) -> pd.DataFrame:
    """The block's rows with the target joined by `key`, in the block's row order; `Rejected` when a key is
    not a row of the block or a row of the block has no label."""
    if key not in block.columns:
        raise Rejected("missing_key", f"the stored block has no row key column {key!r}: it arrived before "
                                      "[labels] key was set, so its rows cannot be matched to labels")
    by_key = pd.Series(labels[target].to_numpy(), index=pd.Index(labels[key].to_numpy(), dtype=object))
    block_keys_text = pd.Index(block[key].to_numpy(), dtype=object)
    unknown = by_key.index.difference(block_keys_text)
    if len(unknown):
        examples = ", ".join(repr(str(k))[:40] for k in list(unknown)[:3])
        raise Rejected("unknown_rows", f"{len(unknown)} row key(s) are not rows of the block, e.g. {examples}")
    values = by_key.reindex(block_keys_text)
    missing = int(values.isna().sum())
    if missing:
        raise Rejected("incomplete_labels", f"labels cover {len(block) - missing} of the block's {len(block)} "
                                            "rows; send a label for every row of a block (a round trains on "
                                            "whole blocks)")
    out = block.copy(deep=False)
    out[target] = values.to_numpy() if values.dtype != object else np.asarray(values.tolist())
    return out
