"""Block intake: one test per rejection reason, on files the tests write themselves, plus acceptance."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.core.intake import REASONS, IntakeRules, parse_file
from pipelines.core.schema import ColumnSchema

SCHEMA = ColumnSchema(features=("x", "c"), categorical=("c",), target="y", source="first_block")
FIXED = IntakeRules(target="y", schema=SCHEMA)


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    return sink.getvalue()


def good_frame(n: int = 20) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.normal(size=n), "c": rng.choice(["a", "b"], size=n), "y": rng.integers(0, 2, n)})


def test_a_good_csv_is_accepted_with_an_inferred_schema() -> None:
    result = parse_file("2024-01.csv", csv_bytes(good_frame()), IntakeRules(target="y"))
    assert result.accepted
    assert result.schema == ColumnSchema(features=("x", "c"), categorical=("c",), target="y", source="first_block")
    (block,) = result.blocks
    assert (block.block_id, block.rows, block.labelled) == (
        "2024-01", 20, True)
    assert block.frame["x"].dtype == np.float64


def test_parquet_and_csv_give_the_same_block() -> None:
    frame = good_frame()
    a = parse_file("b.csv", csv_bytes(frame), FIXED).blocks[0].frame
    b = parse_file("b.parquet", parquet_bytes(frame), FIXED).blocks[0].frame
    pd.testing.assert_frame_equal(a, b, check_dtype=False, atol=1e-12)


def test_extra_columns_are_ignored_and_recorded() -> None:
    frame = good_frame().assign(note="hello")
    result = parse_file("b.csv", csv_bytes(frame), FIXED)
    assert result.accepted and result.ignored_columns == ("note",)
    assert "note" not in result.blocks[0].frame.columns


def test_a_block_column_splits_one_file_into_blocks() -> None:
    frame = good_frame().assign(week=[1] * 10 + [2] * 10)
    result = parse_file("weeks.csv", csv_bytes(frame), IntakeRules(target="y", block_col="week"))
    assert [(b.block_id, len(b.frame)) for b in result.blocks] == [("1", 10), ("2", 10)]
    assert "week" not in result.schema.features


def test_an_unlabelled_block_is_accepted_once_labels_are_not_required() -> None:
    result = parse_file("b.csv", csv_bytes(good_frame().drop(columns="y")), FIXED)
    assert result.accepted and not result.blocks[0].labelled


def rejected(name: str, data: bytes, rules: IntakeRules = FIXED) -> tuple[str, str]:
    result = parse_file(name, data, rules)
    assert not result.accepted, result
    assert result.reason_code in REASONS
    assert result.message.startswith(f"{name}: ")
    return result.reason_code, result.message


def fail_hook(frame: pd.DataFrame) -> pd.DataFrame:
    raise KeyError("column 'amount' not found")


CASES = {
    "unsupported_format": ("b.xlsx", b"whatever", FIXED, "'.xlsx' files are not read"),
    "file_too_large": ("b.csv", csv_bytes(good_frame(2000)), IntakeRules(target="y", max_file_mb=0.001), "limit"),
    "empty_file": ("b.csv", b"", FIXED, "empty"),
    "not_text": ("b.csv", b"x,c,y\n\x00\x01\x02\xff", FIXED, "binary"),
    "bad_encoding": ("b.csv", "x,c,y\n1,caf\xe9,0\n".encode("latin-1"), FIXED, "not UTF-8"),
    "unreadable_file": ("b.parquet", zlib.compress(b"not parquet at all" * 10), FIXED, "Parquet"),
    "wrong_delimiter": ("b.csv", b"x;c;y\n1;a;0\n", FIXED, "separated by ';'"),
    "duplicate_columns": ("b.csv", b"x,c,x,y\n1,a,2,0\n", FIXED, "'x' appear more than once"),
    "too_many_columns": ("b.csv", b"a,b,c,d\n1,2,3,4\n", IntakeRules(target="d", max_columns=3), "4 columns"),
    "too_many_rows": ("b.csv", csv_bytes(good_frame()), IntakeRules(target="y", max_rows=19), "20 rows is over"),
    "no_rows": ("b.csv", b"x,c,y\n", FIXED, "no rows"),
    "preprocess_failed": ("b.csv", csv_bytes(good_frame()), IntakeRules(target="y", preprocess=fail_hook),
                          "fail_hook raised KeyError"),
    "block_col_missing": ("b.csv", csv_bytes(good_frame()), IntakeRules(target="y", block_col="week"), "'week'"),
    "bad_block_id": ("b.csv", csv_bytes(good_frame(2).assign(week=["a/b", "c"])),
                     IntakeRules(target="y", block_col="week"), "cannot be block ids"),
    "missing_columns": ("b.csv", csv_bytes(good_frame().drop(columns="c")), FIXED, "'c'"),
    "missing_target": ("b.csv", csv_bytes(good_frame().drop(columns="y")),
                       IntakeRules(target="y", schema=SCHEMA, labels_required=True), "needs labelled blocks"),
    "missing_labels": ("b.csv", b"x,c,y\n1,a,0\n2,b,\n", FIXED, "1 row(s) have no value"),
    "non_numeric_values": ("b.csv", b"x,c,y\n1,a,0\nabc,b,1\n", FIXED, "'abc'"),
    "all_missing_feature": ("b.csv", b"x,c,y\n,a,0\n,b,1\n", FIXED, "no finite values"),
    "too_many_invalid": ("b.csv", b"x,c,y\ninf,a,0\n1,b,1\n2,a,1\n", FIXED, "33% NaN or infinite"),
    "nested_column": ("b.parquet", parquet_bytes(good_frame(2).assign(z=[[1.0], [2.0]])), FIXED, "'z' (list<"),
    "bad_file_name": ("b" * 129 + ".csv", csv_bytes(good_frame()), FIXED, "129 characters long, over 128"),
    "missing_key": ("b.csv", csv_bytes(good_frame()), IntakeRules(target="y", label_key="id"), "no row key column 'id'"),
    "duplicate_keys": ("b.csv", csv_bytes(good_frame(3).assign(id=[1, 2, 1])), IntakeRules(target="y", label_key="id"),
                       "1 row(s) repeat a row key of 'id'"),
}
# the late-labels reasons: a labels file's checks (tests/unit/test_labels_join.py) and its join with the stored
# block (tests/integration/test_late_labels.py)
LABELS_REASONS = {"labels_without_key", "unknown_block", "already_labelled", "unknown_rows", "incomplete_labels"}


@pytest.mark.parametrize("code", sorted(CASES))
def test_each_rejection_reason(code: str) -> None:
    name, data, rules, fragment = CASES[code]
    got_code, message = rejected(name, data, rules)
    assert got_code == code
    assert fragment in message


def test_every_documented_reason_has_a_test_or_is_decided_elsewhere() -> None:
    assert set(REASONS) - set(CASES) - LABELS_REASONS == {"block_id_conflict"}  # decided by `decide`, tested there


def test_the_row_key_is_kept_as_text_and_is_never_a_feature() -> None:
    frame = good_frame(3).assign(id=[7.0, 8.0, 9.0])
    result = parse_file("b.csv", csv_bytes(frame), IntakeRules(target="y", label_key="id"))
    assert result.accepted and "id" not in result.schema.features
    assert result.blocks[0].frame["id"].tolist() == ["7", "8", "9"]


def test_a_partly_bad_file_is_rejected_whole() -> None:
    frame = good_frame().assign(week=[1] * 10 + [2] * 10)
    frame["x"] = frame["x"].astype(object)
    frame.loc[15, "x"] = "oops"  # only block 2 is bad
    code, _ = rejected("weeks.csv", csv_bytes(frame), IntakeRules(target="y", schema=SCHEMA, block_col="week"))
    assert code == "non_numeric_values"


def test_a_hook_that_returns_no_frame_is_a_rejection() -> None:
    code, message = rejected("b.csv", csv_bytes(good_frame()), IntakeRules(target="y", preprocess=lambda f: None))
    assert code == "preprocess_failed" and "NoneType" in message


def test_invalid_values_below_the_share_become_nan() -> None:
    data = b"x,c,y\n" + b"".join(f"{v},a,0\n".encode() for v in ["inf"] + list(range(9)))
    result = parse_file("b.csv", data, FIXED)
    assert result.accepted
    assert np.isnan(result.blocks[0].frame["x"].iloc[0])
