"""A labels file on its own and its join with a block (pipelines/estimation/late_labels.py): pure."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.core.intake import Rejected
from pipelines.estimation.late_labels import LabelRules, join_labels, parse_labels

RULES = LabelRules(key="id", target="y")
BLOCK = pd.DataFrame({"x": [0.1, 0.2, 0.3], "id": ["a", "b", "7"]})


def test_a_labels_file_names_its_block_by_file_name_or_by_the_block_column() -> None:
    one = parse_labels("w3.csv", b"id,y\na,1\nb,0\n7,1\n", RULES)
    assert [b.block_id for b in one.blocks] == ["w3"] and one.blocks[0].frame["id"].tolist() == ["a", "b", "7"]
    many = parse_labels("any.csv", b"week,id,y\nw1,a,1\nw2,a,0\n", LabelRules(key="id", target="y", block_col="week"))
    assert [b.block_id for b in many.blocks] == ["w1", "w2"]


def test_the_join_follows_the_block_row_order_and_matches_numbers_written_as_floats() -> None:
    labels = parse_labels("b.csv", b"id,y\n7,1\nb,0\na,1\n", RULES).blocks[0].frame
    joined = join_labels(BLOCK, labels, "id", "y")
    assert joined["y"].tolist() == [1, 0, 1] and joined["x"].tolist() == [0.1, 0.2, 0.3]
    numbered = pd.DataFrame({"x": [0.1, 0.2], "id": ["7", "8"]})  # stored from a whole-number key column
    floats = parse_labels("b.csv", b"id,y\n8.0,0\n7.0,1\n", RULES).blocks[0].frame
    assert join_labels(numbered, floats, "id", "y")["y"].tolist() == [1, 0]


@pytest.mark.parametrize(("text", "code", "fragment"), [
    (b"id,y\na,1\nb,0\nzz,1\n", "unknown_rows", "'zz'"),
    (b"id,y\na,1\n", "incomplete_labels", "labels cover 1 of the block's 3 rows"),
])
def test_keys_that_are_not_rows_or_rows_left_unlabelled_refuse_the_join(text: bytes, code: str, fragment: str) -> None:
    labels = parse_labels("b.csv", text, RULES).blocks[0].frame
    with pytest.raises(Rejected) as err:
        join_labels(BLOCK, labels, "id", "y")
    assert err.value.code == code and fragment in err.value.message


@pytest.mark.parametrize(("name", "text", "code"), [
    ("b.csv", b"id\na\n", "missing_target"),
    ("b.csv", b"y\n1\n", "missing_key"),
    ("b.csv", b"id,y\na,1\na,0\n", "duplicate_keys"),
    ("b.csv", b"id,y\na,\n", "missing_labels"),
    ("b.csv", b"", "empty_file"),
    ("b.xlsx", b"x", "unsupported_format"),
    ("b.csv", b"id,y\n", "no_rows"),
])
def test_a_bad_labels_file_is_a_rejection_with_a_reason(name: str, text: bytes, code: str) -> None:
    result = parse_labels(name, text, RULES)
    assert not result.accepted and result.reason_code == code and result.message.startswith(name)


def test_a_block_stored_without_the_key_cannot_be_joined() -> None:
    with pytest.raises(Rejected, match="arrived before"):
        join_labels(BLOCK.drop(columns="id"), pd.DataFrame({"id": ["a"], "y": [1]}), "id", "y")
