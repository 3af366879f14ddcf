"""Intake against files built to hurt: Parquet cells that hide millions of values, and file names that are not
text (bytes that are not UTF-8, terminal escapes, newlines, a right-to-left override, 300 characters)."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.core.intake import MAX_SHOWN_NAME, IntakeRules, display_name, parse_file

GOOD_CSV = b"x,y\n1.0,0\n2.0,1\n"
RULES = IntakeRules(target="y")
SMALL = IntakeRules(target="y", max_file_mb=1.0)


def parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def list_bomb(values: int = 2_000_000) -> bytes:
    """One row whose cell is a list of `values` zeros: a kilobyte on disk, 8 bytes a value once decoded."""
    cell = pa.ListArray.from_arrays(pa.array([0, values], pa.int32()), pa.array(np.zeros(values)))
    return parquet(pa.table({"x": [1.0], "hidden": cell, "y": [0]}))


NESTED = {
    "list": pa.array([[1.0, 2.0]]),
    "large_list": pa.array([[1.0, 2.0]], pa.large_list(pa.float64())),
    "fixed_size_list": pa.array([[1.0, 2.0]], pa.list_(pa.float64(), 2)),
    "struct": pa.array([{"a": 1.0, "b": 2.0}]),
    "map": pa.array([[("a", 1.0)]], pa.map_(pa.string(), pa.float64())),
}


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to read a Parquet file's data (not its footer) fails the test."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("the Parquet data was read")

    for name in ("read", "read_row_group", "read_row_groups", "iter_batches"):
        monkeypatch.setattr(pq.ParquetFile, name, refuse)
    monkeypatch.setattr(pq, "read_table", refuse)


def test_a_list_bomb_is_refused_from_its_schema_before_any_data_is_decoded(no_decoding) -> None:
    data = list_bomb()
    assert len(data) < 4096  # 16 MB of doubles, 16 times the limit, in a few kilobytes
    result = parse_file("bomb.parquet", data, SMALL)
    assert result.reason_code == "nested_column"
    assert result.message == ("bomb.parquet: nested column(s) 'hidden' (list<element: double>): a block holds one "
                              "number or text per cell, not lists, structs or maps; flatten them into one column "
                              "per value, or leave them out of the file")


@pytest.mark.parametrize("kind", sorted(NESTED))
def test_a_nested_column_of_any_kind_is_refused_naming_the_column_and_its_type(kind: str, no_decoding) -> None:
    result = parse_file("b.parquet", parquet(pa.table({"x": [1.0], "odd": NESTED[kind], "y": [0]})), RULES)
    assert result.reason_code == "nested_column"
    assert f"'odd' ({kind}<" in result.message and "flatten" in result.message


HOSTILE_NAMES = {
    "not_utf8": "a11_\udcff\udcfe.csv",  # os.fsdecode(b"a11_\xff\xfe.csv")
    "escape_code": "x\x1b[31mred.csv",
    "newline": "b7.csv\n[2 of 2] ok.csv",  # a fake line of output
    "right_to_left": "invoice_\u202ecod.csv",
    "zero_width": "b\u200b1.csv",
    "backslash": "a\\b.csv",
    "300_characters": "x" * 296 + ".csv",
}


@pytest.mark.parametrize("name", HOSTILE_NAMES.values(), ids=HOSTILE_NAMES.keys())
def test_a_display_name_is_utf8_printable_one_line_and_bounded(name: str) -> None:
    shown = display_name(name)
    shown.encode("utf-8")  # strict: the event log's encoder accepts it
    assert shown.isprintable() and "\n" not in shown and len(shown) <= MAX_SHOWN_NAME
    assert shown.endswith(".csv")  # a cut keeps the end, so the extension stays visible


def test_a_display_name_shows_each_odd_character_as_an_escape() -> None:
    assert display_name("a11_\udcff\udcfe.csv") == "a11_\\xff\\xfe.csv"
    assert display_name("x\x1b[31m\n.csv") == "x\\x1b[31m\\x0a.csv"
    assert display_name("invoice_\u202ecod.csv") == "invoice_\\u202ecod.csv"
    assert display_name("a\\x1b.csv") == "a\\\\x1b.csv"  # a real backslash doubles: an escape means one thing
    assert display_name("2024-05.csv") == "2024-05.csv" and display_name("名前 (1).csv") == "名前 (1).csv"


@pytest.mark.parametrize("name", HOSTILE_NAMES.values(), ids=HOSTILE_NAMES.keys())
def test_a_file_whose_name_cannot_be_a_block_id_is_rejected_with_a_printable_message(name: str) -> None:
    result = parse_file(name, GOOD_CSV, RULES)
    assert result.reason_code == "bad_file_name"
    result.message.encode("utf-8")
    assert result.message.isprintable() and result.message.startswith(f"{display_name(name)}: ")
    assert "rename the file" in result.message


def test_the_bad_file_name_message_says_what_is_wrong() -> None:
    not_utf8 = parse_file("a11_\udcff\udcfe.csv", GOOD_CSV, RULES).message
    assert "bytes that are not UTF-8 or characters that cannot be printed (\\xff, \\xfe)" in not_utf8
    assert "292 characters long, over 128" in parse_file("x" * 292 + ".csv", GOOD_CSV, RULES).message
    assert "it holds '\\\\'" in parse_file("a\\b.csv", GOOD_CSV, RULES).message


def test_a_file_name_must_be_a_block_id_only_when_it_names_the_block() -> None:
    data, name = b"week,x,y\nw1,1.0,0\nw2,2.0,1\n", "a11_\udcff\x1b.csv"
    assert parse_file(name, data, RULES).reason_code == "bad_file_name"
    result = parse_file(name, data, IntakeRules(target="y", block_col="week"))  # ids come from the column
    assert result.accepted and [b.block_id for b in result.blocks] == ["w1", "w2"]


@pytest.mark.parametrize("value", ["invoice_\u202ecod", "b\u200b1", "\x7fdel", "\x9bcsi"])
def test_block_column_values_follow_the_same_printable_rule(value: str) -> None:
    data = f"week,x,y\n{value},1.0,0\nok,2.0,1\n".encode()
    assert parse_file("b.csv", data, IntakeRules(target="y", block_col="week")).reason_code == "bad_block_id"


def test_a_rejection_message_is_valid_utf8_whatever_the_name() -> None:
    result = parse_file("report.\udcff", GOOD_CSV, RULES)  # rejected for its extension, which is not UTF-8
    assert result.reason_code == "unsupported_format"
    assert result.message.encode("utf-8") == b"report.\\xff: '.\\xff' files are not read by this pipeline; " \
                                             b"formats = ['csv', 'parquet']"
