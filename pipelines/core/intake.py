"""Block intake: turn a file's bytes into validated blocks, or one rejection a person can act on.

A file is accepted whole or rejected whole: nothing is half-ingested. Every rejection has a stable
`reason_code` (listed in `REASONS`, documented in docs/events.md) and a message that names the file, the
column and what to do. The caller reads the bytes; this module never touches the file system.

>>> csv = b"x,y\\n1.0,0\\n2.0,1\\n"
>>> result = parse_file("b1.csv", csv, IntakeRules(target="y"))
>>> [(b.block_id, b.rows, b.labelled) for b in result.blocks], result.schema.features
([('b1', 2, True)], ('x',))
>>> parse_file("b2.csv", b"", IntakeRules(target="y")).reason_code
'empty_file'
"""

from __future__ import annotations

import codecs
import csv
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipelines.core.schema import ColumnSchema
from pipelines.core.text import escape_char as text_escape

REASONS: dict[str, str] = {
    "unsupported_format": "the file's extension is not one of the pipeline's formats",
    "file_too_large": "the file is larger than [intake] max_file_mb",
    "empty_file": "the file has no bytes",
    "not_text": "a CSV file holds binary data",
    "bad_encoding": "a CSV file is not UTF-8",
    "unreadable_file": "the file cannot be parsed as CSV or Parquet",
    "nested_column": "a Parquet column holds lists, structs or maps instead of one value per cell",
    "bad_file_name": "the file's name cannot give a block id (not UTF-8, unprintable characters, too long)",
    "wrong_delimiter": "a CSV file seems to use another delimiter than ','",
    "duplicate_columns": "two columns share a name",
    "too_many_columns": "more columns than [intake] max_columns",
    "too_many_rows": "more rows than [intake] max_rows (all of a file's blocks together)",
    "no_rows": "the file has a header (or schema) but no rows",
    "preprocess_failed": "the preprocess hook raised or returned something other than a DataFrame",
    "block_col_missing": "the configured block_col is not in the file",
    "bad_block_id": "a block column value is empty or not a usable id",
    "missing_columns": "feature columns of the pipeline's schema are missing",
    "missing_target": "the target column is missing while the pipeline still needs labels to train",
    "missing_labels": "the target column is present but some rows have no value",
    "non_numeric_values": "a numeric feature holds values that are not numbers",
    "all_missing_feature": "a feature has no value at all in the block",
    "too_many_invalid": "a feature's share of NaN or infinite values is above [intake] max_invalid_share",
    "block_id_conflict": "a different file already delivered a block with this id",
    "missing_key": "the row key column ([labels] key) is missing, or some rows have no key",
    "duplicate_keys": "two rows of one block share a row key ([labels] key)",
    "labels_without_key": "a labels file arrived but the pipeline has no [labels] key to join it by",
    "unknown_block": "a labels file names a block this pipeline never received",
    "already_labelled": "a labels file labels a block that already has its labels",
    "unknown_rows": "a labels file has row keys that are not rows of its block",
    "incomplete_labels": "a labels file does not label every row of its block",
}

MAX_BLOCK_ID = 128  # characters of a block id, from a block column or a file name
MAX_SHOWN_NAME = 200  # characters of a file name as events and output show it


@dataclass(frozen=True, kw_only=True)
class IntakeRules:
    """What intake checks a file against: the pipeline's config plus its schema once fixed."""

    target: str
    formats: tuple[str, ...] = ("csv", "parquet")
    block_col: str | None = None
    features: tuple[str, ...] | None = None  # pinned in the config
    categorical: tuple[str, ...] | None = None
    schema: ColumnSchema | None = None  # fixed by the first accepted block
    labels_required: bool = False  # no champion yet: training needs the target
    max_file_mb: float = 512.0
    max_invalid_share: float = 0.2
    max_columns: int = 2000
    max_rows: int = 2_000_000
    preprocess: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    label_key: str | None = None  # [labels] key: kept with the rows (as text) so late labels can be joined


@dataclass(frozen=True)
class ParsedBlock:
    block_id: str
    frame: pd.DataFrame  # features (numeric as float64, categorical as str) and the target when labelled
    labelled: bool

    @property
    def rows(self) -> int:
        return len(self.frame)


@dataclass(frozen=True)
class Intake:
    """The outcome: either `blocks` and `schema`, or `reason_code` and `message`."""

    blocks: tuple[ParsedBlock, ...] = ()
    schema: ColumnSchema | None = None
    ignored_columns: tuple[str, ...] = ()
    reason_code: str | None = None
    message: str | None = None

    @property
    def accepted(self) -> bool:
        return self.reason_code is None


class Rejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def parse_file(name: str, data: bytes, rules: IntakeRules) -> Intake:
    """Validate one file; every foreseeable problem becomes a rejection, never an exception.

    `name` is the file's name as the OS gave it (a non-UTF-8 byte arrives as a surrogate escape); the message
    shows it through `display_name`, and is made valid UTF-8 so the event log can always record it.
    """
    try:
        return accept(name, data, rules)
    except Rejected as r:
        message = f"{display_name(name)}: {r.message}".encode("utf-8", "backslashreplace").decode("utf-8")
        return Intake(reason_code=r.code, message=message)


def accept(name: str, data: bytes, rules: IntakeRules) -> Intake:
    fmt = file_format(name, rules.formats)
    if rules.block_col is None:
        file_block_id(name)  # a name that cannot be a block id is refused before the file is read
    if len(data) > rules.max_file_mb * 1024 * 1024:
        raise Rejected("file_too_large", f"{len(data) / 1e6:.1f} MB is over the limit of {rules.max_file_mb} MB "
                                         "([intake] max_file_mb); split the file into smaller blocks")
    if not data:
        raise Rejected("empty_file", "the file is empty")
    frame = read_csv(data, rules) if fmt == "csv" else \
        read_parquet(data, rules.max_file_mb * 1024 * 1024, rules.max_rows)
    if frame.shape[1] > rules.max_columns:
        raise Rejected("too_many_columns", f"{frame.shape[1]} columns is over the limit of {rules.max_columns} "
                                           "([intake] max_columns)")
    if len(frame) == 0:
        raise Rejected("no_rows", "the file has column names but no rows")
    if rules.preprocess is not None:
        frame = run_preprocess(rules.preprocess, frame)
    refuse_rows(len(frame), rules.max_rows)  # the hook's rows; or a CSV whose line breaks undercounted them
    schema = rules.schema or infer_schema(frame, rules)
    used = (set(schema.features) | {schema.target} | ({rules.block_col} if rules.block_col else set())
            | ({rules.label_key} if rules.label_key else set()))
    ignored = tuple(c for c in frame.columns if c not in used)
    missing = [c for c in schema.features if c not in frame.columns]
    if missing:
        raise Rejected("missing_columns", f"missing feature column(s) {', '.join(map(repr, missing))} "
                                          f"(expected: {', '.join(schema.features)})")
    labelled = schema.target in frame.columns
    if not labelled and rules.labels_required:
        raise Rejected("missing_target", f"no target column {schema.target!r}: the pipeline has no model yet "
                                         "and needs labelled blocks to train one")
    if labelled and frame[schema.target].isna().any():
        n = int(frame[schema.target].isna().sum())
        raise Rejected("missing_labels", f"{n} row(s) have no value in the target column {schema.target!r}; "
                                         "fill them, or drop the column to send an unlabelled block")
    clean = clean_features(frame, schema, rules.max_invalid_share)
    if rules.label_key is not None and rules.label_key not in schema.features:
        clean[rules.label_key] = row_keys(frame, rules.label_key)
    keys = block_keys(frame, rules.block_col)
    del frame  # the columns the blocks do not share (ignored, converted) are freed before the blocks are cut
    blocks = split_blocks(name, keys, clean, labelled)
    if rules.label_key is not None:
        for block in blocks:
            refuse_duplicate_keys(block.frame[rules.label_key], block.block_id)
    return Intake(blocks=blocks, schema=schema, ignored_columns=ignored)


def row_keys(frame: pd.DataFrame, key: str) -> np.ndarray:
    """The row key column as text (`3.0` and `3` are the same key), refusing a missing column or value."""
    if key not in frame.columns:
        raise Rejected("missing_key", f"no row key column {key!r} ([labels] key): every block needs it, so "
                                      "labels that arrive later can be joined to its rows")
    column = frame[key]
    if column.isna().any():
        raise Rejected("missing_key", f"{int(column.isna().sum())} row(s) have no value in the row key column "
                                      f"{key!r} ([labels] key)")
    return np.array([block_id_text(v) for v in column.to_numpy()], dtype=object)


def refuse_duplicate_keys(keys: pd.Series, block_id: str) -> None:
    repeated = keys[keys.duplicated()]
    if len(repeated):
        raise Rejected("duplicate_keys", f"block {block_id!r}: {len(repeated)} row(s) repeat a row key of "
                                         f"{keys.name!r}, e.g. {str(repeated.iloc[0])[:40]!r}; each row needs its "
                                         "own key so its label can be joined")


def file_format(name: str, formats: tuple[str, ...]) -> str:
    suffix = PurePath(name).suffix.lower().lstrip(".")
    fmt = {"csv": "csv", "parquet": "parquet", "pq": "parquet"}.get(suffix)
    if fmt is None or fmt not in formats:
        raise Rejected("unsupported_format", f"'.{display_name(suffix)}' files are not read by this pipeline; "
                                             f"formats = {list(formats)}")
    return fmt


def read_csv(data: bytes, rules: IntakeRules) -> pd.DataFrame:
    """Parse a CSV file into a frame whose numeric columns are Arrow's own float64 buffers (no second copy).

    Text checks and the row count come first, each without a copy of the whole file, so a file that will be
    refused costs little more memory than its bytes.
    """
    head = data[:65536]
    if b"\x00" in head:
        raise Rejected("not_text", "the file contains binary data (NUL bytes), not CSV text")
    check_utf8(data)
    end = data.find(b"\n")
    first_line_text = (data if end < 0 else data[:end]).decode("utf-8").lstrip("\ufeff")
    header = next(csv.reader(io.StringIO(first_line_text)), [])
    header = [h.strip() for h in header]
    duplicates = sorted({h for h in header if header.count(h) > 1})
    if duplicates:
        raise Rejected("duplicate_columns", f"column name(s) {', '.join(map(repr, duplicates))} appear more "
                                            "than once in the header")
    expected = {rules.target, *(rules.features or ()), *(rules.schema.features if rules.schema else ())}
    if len(header) == 1 and not (expected & set(header)):
        for sep, label in ((";", "';'"), ("\t", "tabs"), ("|", "'|'")):
            if sep in header[0]:
                raise Rejected("wrong_delimiter", f"the header looks separated by {label}, not ','; "
                                                  "save the file with comma separators")
    refuse_long_csv(data, rules.max_rows)
    return to_frame(parse_csv(data))  # handed over: no variable here keeps the table's pieces alive


def parse_csv(data: bytes) -> pa.Table:
    reading = pacsv.ReadOptions(use_threads=False)
    try:
        table = pacsv.read_csv(pa.BufferReader(data), read_options=reading,
                               convert_options=pacsv.ConvertOptions(column_types=sample_types(data)))
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        table = None  # a value that does not fit its column's sampled type: infer over the whole file instead
    try:
        if table is None:
            table = pacsv.read_csv(pa.BufferReader(data), read_options=reading)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as err:
        reason = first_line(err)
        if "straddl" in reason:  # pyarrow reads 1 MB blocks; a row longer than that cannot be parsed
            reason = "a line is longer than 1 MB; a block file holds one row per line"
        raise Rejected("unreadable_file", f"cannot be parsed as CSV: {reason}") from None
    return table


SAMPLE_BYTES = 1 << 20  # the whole lines of a CSV file's first megabyte give its column types


def sample_types(data: bytes) -> dict[str, pa.DataType]:
    """Column types inferred from the first megabyte of whole lines, for a typed read of the whole file.

    Inferring over the whole file, pyarrow keeps every parsed block to the end (it may have to convert them again
    for a wider type), several times the table's memory; given the types, it converts each block as it goes. A
    later value that does not fit a sampled type fails the typed read, which `read_csv` then repeats with
    inference over the whole file: either way a column gets the type inference over the whole file gives it.
    """
    if len(data) <= SAMPLE_BYTES:
        return {}
    sample = data[:SAMPLE_BYTES]
    try:
        table = pacsv.read_csv(pa.BufferReader(sample[: sample.rfind(b"\n") + 1]),
                               read_options=pacsv.ReadOptions(use_threads=False))
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return {}
    return {f.name: f.type for f in table.schema if not pa.types.is_null(f.type)}


RELEASE_BYTES = 8 * 1024 * 1024  # joined columns between two hand-backs of the freed pieces' memory


def to_frame(table: pa.Table) -> pd.DataFrame:
    """The table as pandas, one block per column, a numeric column without nulls shared with Arrow (read-only).

    A column read in pieces (CSV blocks, row groups) is joined into one piece first, one column at a time, and the
    memory its pieces held is handed back to the system before the next column: converted straight to pandas,
    or joined without that, every column would be copied while Arrow's allocator keeps the pieces' memory. So
    pass the table straight from the call that made it, `to_frame(parse_csv(data))`: a caller's variable holding
    it would keep every piece alive.
    """
    schema, columns = table.schema, table.columns
    del table  # its columns now live in `columns` alone: replacing one there frees its pieces
    joined = 0
    for i in range(len(columns)):
        if columns[i].num_chunks > 1:
            columns[i] = columns[i].combine_chunks()
            joined += columns[i].nbytes
        if joined > RELEASE_BYTES or (joined and i == len(columns) - 1):
            pa.default_memory_pool().release_unused()
            joined = 0
    table = pa.Table.from_arrays(columns, schema=schema)
    del columns  # the table alone holds the columns, so converting frees each one
    return table.to_pandas(split_blocks=True, self_destruct=True)


def check_utf8(data: bytes) -> None:
    """Refuse text that is not UTF-8, decoding a megabyte at a time so a large file is never held twice.

    >>> check_utf8("caf\u00e9".encode() * 300_000)
    >>> check_utf8(b"x" * 2_000_000 + "caf\u00e9".encode("latin-1"))
    Traceback (most recent call last):
    pipelines.core.intake.Rejected: the file is not UTF-8 (byte 0xe9 at offset 2000003); save it as UTF-8
    """
    if data.isascii():
        return
    view, start, size = memoryview(data), 0, len(data)
    while start < size:
        end = min(start + (1 << 20), size)
        for _ in range(3):  # end a piece on a character's first byte, not inside it (at most 3 bytes follow it)
            if end < size and data[end] & 0xC0 == 0x80:
                end -= 1
        try:
            codecs.utf_8_decode(view[start:end], "strict", True)
        except UnicodeDecodeError as err:
            at = start + err.start
            raise Rejected("bad_encoding", f"the file is not UTF-8 (byte 0x{data[at]:02x} at offset {at}); "
                                           "save it as UTF-8") from None
        start = end


def refuse_long_csv(data: bytes, max_rows: int) -> None:
    """Refuse a CSV of more than `max_rows` rows before parsing its columns.

    Line breaks bound the rows from above (a quoted cell may hold one, a blank line is no row; `\\r` alone
    ends a line too), and counting them costs no memory: only a file over the limit by that count has its
    rows counted exactly, a megabyte at a time as text of one column.
    """
    if max(data.count(b"\n"), data.count(b"\r")) <= max_rows:
        return
    options = pacsv.ConvertOptions(include_columns=["f0"], column_types={"f0": pa.string()})
    reading = pacsv.ReadOptions(use_threads=False, skip_rows=1, autogenerate_column_names=True)
    try:
        rows = sum(batch.num_rows for batch in pacsv.open_csv(pa.BufferReader(data), read_options=reading,
                                                              convert_options=options))
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return  # the full read says what is wrong with the file
    refuse_rows(rows, max_rows)


def refuse_rows(rows: int, max_rows: int) -> None:
    """A file's rows are decoded at once: a bound on them is a bound on the memory one file takes.

    >>> refuse_rows(2_500_000, 2_000_000)
    Traceback (most recent call last):
    pipelines.core.intake.Rejected: 2,500,000 rows is over the limit of 2,000,000 rows ([intake] max_rows); split \
the file into smaller files, or raise max_rows if the machine has the memory (docs/config.md gives the need)
    """
    if rows > max_rows:
        raise Rejected("too_many_rows", f"{rows:,} rows is over the limit of {max_rows:,} rows ([intake] max_rows); "
                                        "split the file into smaller files, or raise max_rows if the machine has "
                                        "the memory (docs/config.md gives the need)")


def read_parquet(data: bytes, max_bytes: float = float("inf"), max_rows: float = float("inf")) -> pd.DataFrame:
    """Read a Parquet file whose data, once uncompressed and decoded, fits in `max_bytes` ([intake] max_file_mb),
    of at most `max_rows` rows ([intake] max_rows, from the footer's count).

    A few kilobytes of Parquet can hold gigabytes (a compressed page, a long run of one dictionary entry, one cell
    holding a list of millions of values), so the schema and the sizes are checked from the footer before any
    decoding, and row groups are read one at a time with string columns still dictionary-encoded.
    """
    try:
        return to_frame(parquet_table(data, max_bytes, max_rows))  # handed over: no variable keeps its pieces
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as err:
        raise Rejected("unreadable_file", f"has column types that cannot be used: {first_line(err)}") from None


def parquet_table(data: bytes, max_bytes: float, max_rows: float) -> pa.Table:
    limit = f"over the limit of {max_bytes / 1024 / 1024:g} MB ([intake] max_file_mb)"
    try:
        source = pq.ParquetFile(pa.BufferReader(data))
        meta, schema = source.metadata, source.schema_arrow
        refuse_nested(schema, meta.num_columns)
        names = schema.names
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise Rejected("duplicate_columns", f"column name(s) {', '.join(map(repr, duplicates))} appear more "
                                                "than once")
        check_footer_sizes(meta, max_bytes, limit)
        refuse_rows(meta.num_rows, max_rows)
        texts = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
                 or pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)]
        table = read_row_groups(pq.ParquetFile(pa.BufferReader(data), read_dictionary=texts or None),
                                max_bytes, limit)
        for name in texts:  # decode them now that the size is known (pandas gets plain strings, as before)
            i = table.schema.get_field_index(name)
            table = table.set_column(i, name, table.column(i).cast(schema.field(name).type))
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError) as err:
        raise Rejected("unreadable_file", f"cannot be read as Parquet: {first_line(err)}") from None
    return table


def refuse_nested(schema: pa.Schema, leaf_columns: int) -> None:
    """Blocks are tables of one value per cell; a list, struct or map column is refused from the schema alone,
    because its cells can hide any number of values that the footer's row count does not show."""
    nested = [f for f in schema if is_nested(f.type)]
    if nested or leaf_columns != len(schema):
        shown = ", ".join(f"{f.name!r} ({f.type})" for f in nested[:3]) or \
            f"{leaf_columns} stored columns for {len(schema)} names"
        raise Rejected("nested_column", f"nested column(s) {shown}: a block holds one number or text per cell, "
                                        "not lists, structs or maps; flatten them into one column per value, "
                                        "or leave them out of the file")


def is_nested(kind: pa.DataType) -> bool:
    return pa.types.is_nested(kind) or (pa.types.is_dictionary(kind) and is_nested(kind.value_type))


def check_footer_sizes(meta: pq.FileMetaData, max_bytes: float, limit: str) -> None:
    """Refuse, from the footer alone, data that would take more than `max_bytes` once uncompressed or loaded."""
    groups = [meta.row_group(g) for g in range(meta.num_row_groups)]
    rows = sum(g.num_rows for g in groups)
    cells = sum(max(g.num_rows, g.column(c).num_values) for g in groups for c in range(g.num_columns))
    if cells * 8 > max_bytes:
        raise Rejected("file_too_large", f"{rows} rows x {meta.num_columns} columns would take "
                                         f"{cells * 8 / 1e6:.1f} MB in memory, {limit}")
    unpacked = max(sum(g.total_byte_size for g in groups),
                   sum(g.column(c).total_uncompressed_size for g in groups for c in range(g.num_columns)))
    if unpacked > max_bytes:
        raise Rejected("file_too_large", f"its pages uncompress to {unpacked / 1e6:.1f} MB, {limit}")


def read_row_groups(source: pq.ParquetFile, max_bytes: float, limit: str) -> pa.Table:
    """Read the row groups one at a time, text still dictionary-encoded, adding up what they decode to.

    Past `max_bytes` nothing more is kept and nothing is decoded; the remaining groups are only measured (each
    is small while encoded, by the footer checks) so the message gives the file's full size.
    """
    kept, decoded = [], 0
    for g in range(source.num_row_groups):
        group = source.read_row_group(g)
        decoded += group.num_rows * max(1, group.num_columns) * 8 + sum(
            dictionary_bytes(column) for column in group.columns if pa.types.is_dictionary(column.type))
        if decoded <= max_bytes:
            kept.append(group)
        else:
            kept.clear()
    if decoded > max_bytes:
        raise Rejected("file_too_large", f"its data decodes to {decoded / 1e6:.1f} MB in memory, {limit}")
    return pa.concat_tables(kept) if kept else source.schema_arrow.empty_table()


def dictionary_bytes(column: pa.ChunkedArray) -> int:
    """Bytes a dictionary-encoded column takes once decoded, computed without decoding it."""
    total = 0
    for chunk in column.chunks:
        values = chunk.dictionary
        if not len(chunk) or not len(values):
            continue
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type) or \
                pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type):
            total += int(pc.sum(pc.binary_length(values).take(chunk.indices)).as_py() or 0)
        else:
            total += len(chunk) * (values.nbytes // len(values) + 1)
    return total


def run_preprocess(hook: Callable[[pd.DataFrame], pd.DataFrame], frame: pd.DataFrame) -> pd.DataFrame:
    name = getattr(hook, "__name__", "preprocess")
    try:
        out = hook(frame.copy())
    except Exception as err:  # the user's code: any failure rejects this file only
        raise Rejected("preprocess_failed", f"the preprocess hook {name} raised "
                                            f"{type(err).__name__}: {first_line(err)}") from None
    if not isinstance(out, pd.DataFrame):
        raise Rejected("preprocess_failed", f"the preprocess hook {name} returned {type(out).__name__}, "
                                            "not a pandas DataFrame")
    if len(out) == 0:
        raise Rejected("no_rows", f"the preprocess hook {name} left no rows")
    return out


def infer_schema(frame: pd.DataFrame, rules: IntakeRules) -> ColumnSchema:
    """The first block fixes the schema: config features if pinned, else every other column."""
    if rules.block_col is not None and rules.block_col not in frame.columns:
        raise Rejected("block_col_missing", f"the block column {rules.block_col!r} (block_col) is not in the "
                                            "file")
    if rules.features is not None:
        features = rules.features
    else:
        features = tuple(str(c) for c in frame.columns if c not in (rules.target, rules.block_col, rules.label_key))
        if not features:
            raise Rejected("missing_columns", f"no feature columns besides the target {rules.target!r}")
    if rules.categorical is not None:
        categorical = tuple(c for c in features if c in rules.categorical)
    else:
        categorical = tuple(c for c in features if c in frame.columns and not is_numeric(frame[c]))
    source = "config" if rules.features is not None else "first_block"
    return ColumnSchema(features=tuple(features), categorical=categorical, target=rules.target, source=source)


def is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def clean_features(frame: pd.DataFrame, schema: ColumnSchema, max_invalid: float) -> pd.DataFrame:
    """Numeric features as float64 (after checks), categorical as strings (missing stays missing), then the
    target as it is when the block has one.

    A float64 column that holds no infinity is used as it is, not copied, and the columns are not consolidated
    into one block (which would copy them all once more): the frame costs its columns, once.
    """
    out: dict[str, object] = {}
    categorical = set(schema.categorical)
    for col in schema.features:
        series = frame[col]
        if col in categorical:
            values = series.astype(object).where(series.notna(), None)
            if values.isna().all():
                raise Rejected("all_missing_feature", f"feature {col!r} has no values at all")
            out[col] = values.map(lambda v: v if v is None else str(v))
            continue
        numbers = to_numbers(col, series)
        invalid = ~np.isfinite(numbers)
        if invalid.all():
            raise Rejected("all_missing_feature", f"feature {col!r} has no finite values at all")
        share = float(invalid.mean())
        if share > max_invalid:
            raise Rejected("too_many_invalid", f"feature {col!r} is {share:.0%} NaN or infinite, over the limit "
                                               f"of {max_invalid:.0%} ([intake] max_invalid_share)")
        if np.isinf(numbers).any():  # infinities become missing values, in a copy (the input may be read-only)
            numbers = np.where(invalid, np.nan, numbers)
        out[col] = numbers
    if schema.target in frame.columns:
        out[schema.target] = frame[schema.target].to_numpy()
    return pd.DataFrame(out, index=frame.index, copy=False)


def to_numbers(col: str, series: pd.Series) -> np.ndarray:
    """The column as float64: the column's own array when it already is (no copy), else converted."""
    if pd.api.types.is_bool_dtype(series) or is_numeric(series):
        return series.to_numpy(dtype="float64")
    converted = pd.to_numeric(series, errors="coerce")
    bad = converted.isna() & series.notna() & (series.astype(str).str.strip() != "")
    if bad.any():
        rows = np.flatnonzero(bad.to_numpy())
        examples = ", ".join(repr(str(series.iloc[i]))[:40] for i in rows[:3])
        raise Rejected("non_numeric_values", f"numeric feature {col!r} has {len(rows)} value(s) that are not "
                                             f"numbers, e.g. {examples} (first at data row {rows[0] + 1})")
    return converted.astype("float64").to_numpy()


def block_keys(raw: pd.DataFrame, block_col: str | None) -> pd.Series | None:
    """The block column alone (a copy, so it does not keep the raw frame's memory alive), or None without one."""
    if block_col is None:
        return None
    if block_col not in raw.columns:
        raise Rejected("block_col_missing", f"the block column {block_col!r} (block_col) is not in the file")
    return raw[block_col].copy()


def split_blocks(name: str, keys: pd.Series | None, clean: pd.DataFrame, labelled: bool) -> tuple[ParsedBlock, ...]:
    if keys is None:
        return (ParsedBlock(block_id=file_block_id(name), frame=renumbered(clean), labelled=labelled),)
    block_col = keys.name
    if keys.isna().any():
        raise Rejected("bad_block_id", f"{int(keys.isna().sum())} row(s) have no value in the block column "
                                       f"{block_col!r}")
    ids = keys.map(block_id_text)
    bad = sorted({i for i in ids.unique() if not is_block_id(i)})
    if bad:
        raise Rejected("bad_block_id", f"block column value(s) {bad[:3]} cannot be block ids ({BLOCK_ID_RULE})")
    blocks = []
    for block_id in pd.unique(ids):
        rows = renumbered(clean[(ids == block_id).to_numpy()])
        blocks.append(ParsedBlock(block_id=block_id, frame=rows, labelled=labelled))
    return tuple(blocks)


def renumbered(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its rows numbered 0..n-1, set in place: `reset_index` would copy every column (pandas 2)."""
    frame.index = pd.RangeIndex(len(frame))
    return frame


def block_id_text(value: object) -> str:
    """`3.0` and `3` name the same block: integral floats lose their `.0`."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value)


BLOCK_ID_RULE = f"1-{MAX_BLOCK_ID} printable characters, no '/' or '\\\\'"


def is_block_id(text: str) -> bool:
    """Block ids are shown in tables, logs and the UI and key the log's rows: short, printable, never a path.

    Printable (`str.isprintable`) leaves out control characters (terminal escapes, newlines), format characters
    (the right-to-left override U+202E) and lone surrogates (bytes of a file name that were not UTF-8).

    >>> [is_block_id(t) for t in ("2024-05", "名前", "a/b", "x" * 129, "a\\x1b[31m", "cod\\u202egpj.exe")]
    [True, True, False, False, False, False]
    """
    return 0 < len(text) <= MAX_BLOCK_ID and text.isprintable() and "/" not in text and "\\" not in text


def file_block_id(name: str) -> str:
    """A file without a block column is one block named after the file; a name that cannot be an id is refused
    rather than rewritten, so a block id always reads as the name of the file it came from.

    >>> file_block_id("2024-05.csv")
    '2024-05'
    >>> file_block_id("a11_\\udcff\\udcfe.csv")
    Traceback (most recent call last):
    pipelines.core.intake.Rejected: the file name cannot be a block id: it holds bytes that are not UTF-8 or \
characters that cannot be printed (\\xff, \\xfe); rename the file (1-128 printable characters, no '/' or '\\\\' \
before the extension), or set block_col to take block ids from a column
    """
    stem = PurePath(name).stem
    if is_block_id(stem):
        return stem
    if len(stem) > MAX_BLOCK_ID:
        problem = f"the part before the extension is {len(stem)} characters long, over {MAX_BLOCK_ID}"
    elif not stem.isprintable():
        shown = list(dict.fromkeys(escape_char(c) for c in stem if not c.isprintable()))  # in order, once
        problem = ("it holds bytes that are not UTF-8 or characters that cannot be printed "
                   f"({', '.join(shown[:5])})")
    else:
        problem = "it holds '\\\\'" if "\\" in stem else "the part before the extension is empty"
    raise Rejected("bad_file_name", f"the file name cannot be a block id: {problem}; rename the file "
                                    f"({BLOCK_ID_RULE} before the extension), or set block_col to take block "
                                    "ids from a column")


def display_name(name: str) -> str:
    """A file name as events and output show it: valid UTF-8, printable, one line, at most 200 characters.

    A name can hold anything but '/' and NUL: bytes that are not UTF-8 (which Python gives as surrogate
    escapes, and which the event log cannot encode), terminal escape codes, newlines (a fake output line),
    a right-to-left override. Those become `\\xNN` / `\\uNNNN` escapes, and `\\` doubles so an escape always means
    one; a long name keeps its start and its end (the extension).

    >>> for name in ("a11_\\udcff\\udcfe.csv", "x\\x1b[31m\\nok.csv", "cod\\u202egpj.exe", "a\\\\x1b.csv"):
    ...     print(display_name(name))
    a11_\\xff\\xfe.csv
    x\\x1b[31m\\x0aok.csv
    cod\\u202egpj.exe
    a\\\\x1b.csv
    >>> len(display_name("é" * 300 + ".csv")), display_name("é" * 300 + ".csv")[-8:]
    (200, 'éééé.csv')
    """
    pieces = [escape_char(c) for c in name]
    if sum(map(len, pieces)) <= MAX_SHOWN_NAME:
        return "".join(pieces)
    budget = MAX_SHOWN_NAME - len("...")  # two thirds from the start, the rest from the end
    head = "".join(fitting(pieces, budget * 2 // 3))
    tail = "".join(reversed(fitting(pieces[::-1], budget - len(head))))
    return f"{head}...{tail}"


def fitting(pieces: list[str], width: int) -> list[str]:
    """The longest run of whole pieces from the start that fits in `width` characters: an escape is never cut."""
    out, used = [], 0
    for piece in pieces:
        if used + len(piece) > width:
            break
        out.append(piece)
        used += len(piece)
    return out


def escape_char(c: str) -> str:
    """One character of a name as shown: itself if printable, else an escape; `\\` doubles, so an escape in a
    shown name always means one (`pipelines.core.text`, the one rule)."""
    return text_escape(c, backslash="\\\\")


def first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__
