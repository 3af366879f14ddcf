"""The hash chain: the canonical spelling, the fast hash equals the reference definition, and the checker
names the first bad record for each kind of damage."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventstore import canonical_json
from eventstore.canonical import canonical_payload
from eventstore.hash_chain import (
    GENESIS_HASH,
    ChainChecker,
    chain_link,
    record_hash,
    record_hash_from_text,
)

AT = "2026-11-27T23:58:16.123456+00:00"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
payloads = st.dictionaries(st.text(max_size=8), json_values, max_size=5)


def chain(records: list[tuple[str, int, str, int, dict]]) -> list[tuple]:
    """Raw rows for (stream, version, type, schema_version, payload) records, hashed with the reference."""
    rows, previous = [], GENESIS_HASH
    for position, (stream, version, type_, schema_version, payload) in enumerate(records, start=1):
        digest = record_hash(
            previous,
            position=position,
            stream_id=stream,
            version=version,
            type=type_,
            schema_version=schema_version,
            payload=payload,
            recorded_at=AT,
        )
        rows.append((position, stream, version, type_, schema_version, canonical_json(payload), AT, digest))
        previous = digest
    return rows


GOOD = chain(
    [
        ("a", 1, "T", 1, {"n": 1}),
        ("b", 1, "T", 1, {"n": 2}),
        ("a", 2, "U", 2, {"x": [1, "é"]}),
        ("a", 3, "T", 1, {}),
        ("b", 2, "T", 1, {"n": 5}),
    ]
)


def test_canonical_json_sorts_keys_drops_spaces_keeps_utf8_and_refuses_nan():
    assert canonical_json({"b": [1, {"d": 1, "c": None}], "a": "ü"}) == '{"a":"ü","b":[1,{"c":null,"d":1}]}'
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


@settings(max_examples=150, deadline=None)
@given(payload=payloads)
def test_the_fast_payload_spelling_is_canonical_json_and_its_copy_is_what_json_reads_back(payload):
    text, copy = canonical_payload(payload)
    assert text == canonical_json(payload)
    assert copy == json.loads(text) and copy is not payload


def test_payload_spelling_names_what_is_not_json():
    looped: dict = {"x": [1]}
    looped["x"].append(looped)
    for bad, message in [
        ({"a": [0.5, float("nan")]}, "payload['a'][1] is nan"),
        ({"a": {3: "x"}}, "payload['a'] has a key 3 of type int"),
        (looped, "payload['x'][1] contains itself (a cycle)"),
        ({"s": "\ud800"}, "payload['s'] is a string with an unpaired surrogate"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            canonical_payload(bad)


def test_the_genesis_hash_is_64_zeros_and_the_definition_is_plain_sha256():
    assert GENESIS_HASH == "0" * 64
    record = {
        "position": 1,
        "stream_id": "s",
        "version": 1,
        "type": "T",
        "schema_version": 1,
        "payload": {"k": "v"},
        "recorded_at": AT,
    }
    by_hand = hashlib.sha256((GENESIS_HASH + canonical_json(record)).encode("utf-8")).hexdigest()
    assert record_hash(GENESIS_HASH, **record) == by_hand


@settings(max_examples=100, deadline=None)
@given(
    previous=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
    position=st.integers(1, 2**53),
    stream=st.text(min_size=1),
    version=st.integers(1, 2**31),
    type_=st.text(min_size=1),
    schema_version=st.integers(1, 99),
    payload=payloads,
    at=st.text(),
)
def test_the_fast_hash_equals_the_reference_definition(
    previous, position, stream, version, type_, schema_version, payload, at
):
    reference = record_hash(
        previous,
        position=position,
        stream_id=stream,
        version=version,
        type=type_,
        schema_version=schema_version,
        payload=payload,
        recorded_at=at,
    )
    fast = record_hash_from_text(
        previous, position, stream, version, type_, schema_version, canonical_json(payload), at
    )
    assert fast == reference
    link = chain_link(stream, at)
    assert link(previous, position, version, type_, schema_version, canonical_json(payload)) == reference


def test_a_good_chain_checks_out():
    checker = ChainChecker()
    assert checker.check_all(GOOD) == (5, None, None)
    assert checker.previous_hash == GOOD[-1][7] and checker.versions == {"a": 3, "b": 2}


def tampered(index: int, column: int, value) -> list[tuple]:
    rows = [list(r) for r in GOOD]
    rows[index][column] = value
    return [tuple(r) for r in rows]


TAMPERED = [
    (tampered(2, 5, '{"x":[1,"e"]}'), 3, "position 3: hash mismatch"),
    (tampered(2, 5, '{"x": [1, "é"]}'), 3, "position 3: hash mismatch"),  # only the spacing changed
    (tampered(1, 7, "f" * 64), 2, "position 2: hash mismatch"),
    (tampered(3, 6, "2026-11-28T00:00:00.000000+00:00"), 4, "position 4: hash mismatch"),
    (tampered(0, 3, "V"), 1, "position 1: hash mismatch"),
    (tampered(3, 5, "{not json"), 4, "position 4: payload is not JSON"),
    (tampered(3, 5, "[1, 2]"), 4, "payload is a JSON list, not an object"),
    (tampered(4, 2, 3), 5, "stream 'b' jumps to version 3, expected 2"),
    (tampered(4, 4, "1"), 5, "schema_version is '1' (str), expected int"),
    (GOOD[:2] + GOOD[3:], 3, "positions jump from 2 to 4: 1 record(s) are missing"),
    (GOOD[1:], 1, "positions jump from 0 to 2"),
    ([GOOD[0], GOOD[2], GOOD[1]] + GOOD[3:], 2, "positions jump from 1 to 3"),
    (GOOD[:3] + [GOOD[2]] + GOOD[3:], 4, "position 3 does not follow position 3"),
]


@pytest.mark.parametrize("rows, bad, message", TAMPERED)
def test_the_checker_names_the_first_bad_position(rows, bad, message):
    checked, first_bad, problem = ChainChecker().check_all(rows)
    assert (checked, first_bad) == (bad - 1, bad)
    assert message in problem


@pytest.mark.parametrize("rows", [GOOD] + [rows for rows, _, _ in TAMPERED])
def test_the_fast_loop_agrees_with_the_plain_checker(rows):
    checked, first_bad, problem = ChainChecker().check_all(rows)
    fast = ChainChecker()
    items, fast_problem = fast.check_rows(rows, lambda row, payload: (row[0], payload))
    assert (len(items), fast_problem) == (checked, problem)
    assert [payload for _, payload in items] == [json.loads(r[5]) for r in rows[:checked]]
    if problem is None:
        assert (fast.previous_hash, fast.last_position) == (rows[-1][7], len(rows))


def test_the_fast_loop_accepts_json_with_spaces_only_if_the_hash_says_so():
    row = list(chain([("a", 1, "T", 1, {"n": 1})])[0])
    row[5] = ' {"n":1} '
    row[7] = record_hash_from_text(GENESIS_HASH, 1, "a", 1, "T", 1, row[5], AT)  # hashed as stored
    items, problem = ChainChecker().check_rows([tuple(row)], lambda r, p: p)
    assert (items, problem) == ([{"n": 1}], None)


def test_a_rehashed_forgery_breaks_at_the_next_untouched_record():
    """Editing a record and recomputing its own hash still breaks the link to the record after it."""
    rows = [list(r) for r in GOOD]
    rows[1][5] = '{"n":3}'
    rows[1][7] = record_hash(
        rows[0][7],
        position=2,
        stream_id="b",
        version=1,
        type="T",
        schema_version=1,
        payload={"n": 3},
        recorded_at=AT,
    )
    checked, first_bad, problem = ChainChecker().check_all([tuple(r) for r in rows])
    assert (checked, first_bad) == (2, 3) and "hash mismatch" in problem


def test_checking_from_the_middle_continues_from_a_known_hash():
    checker = ChainChecker(GOOD[1][7], 2, track_versions=False)
    assert checker.check_all(GOOD[2:]) == (3, None, None)
    assert ChainChecker(GOOD[0][7], 2, track_versions=False).check_all(GOOD[2:])[1] == 3


def test_payload_text_is_hashed_as_stored():
    text = GOOD[2][5]
    assert json.loads(text) == {"x": [1, "é"]} and "é" in text  # UTF-8, not \\u escapes
