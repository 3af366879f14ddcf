"""`ColumnMap` behaves as the `immutables.Map` it stands in for: after any sequence of `set`/`update`, every
version answers get, [], in, len, iteration and equality as a Map built the same way does, and older versions
are unchanged (persistence). Keys may repeat in the columns (the later row wins), be consecutive ints (an index
computed, not stored), and be looked up by equal keys of other types (1, 1.0, True)."""

from __future__ import annotations

import operator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from immutables import Map

from pipelines.replay.column_map import ColumnMap, Rows

keys = st.one_of(st.sampled_from(["a", "b", "c", "d", "e"]), st.integers(0, 6))
values = st.integers(0, 99)
operations = st.lists(st.one_of(
    st.tuples(st.just("set"), keys, values),
    st.tuples(st.just("update"), st.dictionaries(keys, values, max_size=4)),
), max_size=12)
probes = ["a", "c", "e", "z", 0, 1, 1.0, True, 2.5, 6, 7, -1, None]


def column_map(columns: list[tuple]) -> ColumnMap:
    ks = [k for k, _ in columns]
    vs = [v for _, v in columns]
    return ColumnMap(Rows(ks, vs.__getitem__))


def assert_same(ours: ColumnMap, theirs: Map) -> None:
    assert len(ours) == len(theirs)
    assert ours == theirs and theirs == ours and operator.ne(ours, theirs) is False
    assert dict(ours.items()) == dict(theirs.items()) and sorted(map(repr, ours)) == sorted(map(repr, theirs))
    for key in probes:
        assert ours.get(key, "-") == theirs.get(key, "-")
        assert (key in ours) == (key in theirs)
        if key in theirs:
            assert ours[key] == theirs[key]
        else:
            with pytest.raises(KeyError):
                ours[key]


def apply(m, op):
    return m.set(op[1], op[2]) if op[0] == "set" else m.update(op[1])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(keys, values), max_size=8), operations)
def test_every_version_answers_as_the_map_built_the_same_way(columns: list, ops: list) -> None:
    ours, theirs = column_map(columns), Map(columns)
    history = [(ours, theirs)]
    for op in ops:
        ours, theirs = apply(ours, op), apply(theirs, op)
        history.append((ours, theirs))
    for old_ours, old_theirs in history:  # persistence: no later change leaked into an older version
        assert_same(old_ours, old_theirs)


@settings(max_examples=100, deadline=None)
@given(st.integers(-3, 3), st.integers(0, 6), operations)
def test_consecutive_int_keys_as_a_range_or_a_list(first: int, count: int, ops: list) -> None:
    names = [f"v{i}" for i in range(count)]
    for ks in (range(first, first + count), list(range(first, first + count))):
        ours, theirs = ColumnMap(Rows(ks, names.__getitem__)), Map(zip(ks, names, strict=True))
        assert_same(ours, theirs)
        for op in ops:
            ours, theirs = apply(ours, op), apply(theirs, op)
            assert_same(ours, theirs)


def test_a_value_is_built_once_and_only_when_read() -> None:
    built = []

    def build(row: int) -> dict:
        built.append(row)
        return {"row": row}

    m = ColumnMap(Rows(["x", "y", "z"], build))
    assert built == [] and len(m) == 3
    first = m["y"]
    assert m.set("q", 1)["y"] is first and built == [1]
    assert sorted(v["row"] for v in m.values()) == [0, 1, 2] and sorted(built) == [0, 1, 2]


def test_the_newest_rows_are_found_without_building_the_index() -> None:
    ks = [f"k{i}" for i in range(Rows.RECENT * 4)]
    m = ColumnMap(Rows(ks, ks.__getitem__))
    assert m[ks[-1]] == ks[-1] and m[ks[-Rows.RECENT]] == ks[-Rows.RECENT] and m._rows._index is None
    assert m[ks[0]] == ks[0] and m._rows._index is not None


def test_it_is_not_hashable_and_compares_unequal_to_other_things() -> None:
    m = column_map([("a", 1)])
    with pytest.raises(TypeError):
        hash(m)
    assert m != [("a", 1)] and m != {"a": 2} and m == {"a": 1}
