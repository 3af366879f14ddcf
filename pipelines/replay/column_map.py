"""`ColumnMap`: a persistent map whose bulk stays in columns until a value is asked for (the snapshot's maps).

Why: the snapshot of a long-lived pipeline holds hundreds of thousands of blocks. Building every block record and
an `immutables.Map` of them took 1.8 s of a 2.2 s load, for a state whose next reader usually looks at a
handful of blocks (the last one, the reference, the champion's training blocks). A `ColumnMap` keeps the
snapshot's columns as parsed plus an index from key to row, and builds a value the first time it is read (then
keeps it: the values are immutable records, safe to share). Changes made after the load, the fold's `set` and
`update`, go to an `immutables.Map` on top, so a `ColumnMap` is as persistent as the map it stands in for:
`set` returns a new map and leaves the old one as it was.

It answers the part of `immutables.Map`'s interface the state's readers use (get, [], in, len, iteration,
keys/values/items, set, update) and equals any mapping with the same items.

>>> rows = Rows(["a", "b"], ["A", "B"].__getitem__)
>>> m = ColumnMap(rows)
>>> m2 = m.set("c", "C").set("a", "A2")
>>> m["b"], m2["a"], m["a"], len(m), len(m2), sorted(m2.items())
('B', 'A2', 'A', 2, 3, [('a', 'A2'), ('b', 'B'), ('c', 'C')])
>>> from immutables import Map
>>> m2 == Map({"a": "A2", "b": "B", "c": "C"})
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from immutables import Map

__all__ = ["ColumnMap", "Rows"]

_MISSING: Any = object()


class Rows:
    """The shared, read-only base of ColumnMaps: keys in row order, and `build(row)` for a row's value.

    A key given twice maps to its later row (as `dict(zip(keys, values))` would). Values are built once and
    kept, so every map over these rows hands out the same object for the same row. The index from key to
    row (a tenth of a second for 300k keys) is built only when a key is looked up that is not among the
    newest `RECENT` rows: a replay's tail after a snapshot looks up only the blocks that arrived just before.
    """

    __slots__ = ("_keys", "_index", "build", "_built")
    RECENT = 256

    def __init__(self, keys: list | range, build: Callable[[int], Any]) -> None:
        self._keys = keys
        self._index: dict[Any, int] | _Consecutive | None = None
        self.build = build
        self._built: list = [_MISSING] * len(keys)

    @property
    def index(self) -> dict[Any, int] | _Consecutive:
        if self._index is None:
            keys = self._keys
            self._index = (_Consecutive(keys[0], len(keys)) if _consecutive(keys)
                           else dict(zip(keys, range(len(keys)), strict=True)))
        return self._index

    def row_of(self, key: Any) -> int | None:
        """The row of `key` (its last row when it is there twice), or None."""
        if self._index is None:
            keys = self._keys
            for row in range(len(keys) - 1, max(len(keys) - self.RECENT, 0) - 1, -1):
                if keys[row] == key and hash(keys[row]) == hash(key):
                    return row
        return self.index.get(key)

    def value(self, row: int) -> Any:
        value = self._built[row]
        if value is _MISSING:
            value = self._built[row] = self.build(row)
        return value


def _consecutive(keys: list | range) -> bool:
    """Whether `keys` are the ints k, k+1, ..., as a block order's sequence numbers are."""
    if type(keys) is range:
        return keys.step == 1 and len(keys) > 0
    return bool(keys) and type(keys[0]) is int and set(map(type, keys)) == {int} and \
        keys == list(range(keys[0], keys[0] + len(keys)))


class _Consecutive:
    """The index of consecutive int keys, computed instead of stored (what `Rows.index` needs of a dict)."""

    __slots__ = ("first", "count")

    def __init__(self, first: int, count: int) -> None:
        self.first, self.count = first, count

    def get(self, key: Any, default: Any = None) -> Any:
        """The row of `key`, found as a dict finds it: by value (1, 1.0 and True are the same key)."""
        try:
            row = key - self.first
            if 0 <= row < self.count and row == int(row):
                return int(row)
        except (TypeError, ValueError, OverflowError):
            pass
        return default

    def __contains__(self, key: object) -> bool:
        return self.get(key) is not None

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.first, self.first + self.count))

    def __len__(self) -> int:
        return self.count


class ColumnMap(Mapping):
    """A persistent mapping: `Rows` underneath, later changes in an `immutables.Map` on top."""

    __slots__ = ("_rows", "_over", "_len")  # _len is a cache: the map never changes

    def __init__(self, rows: Rows, over: Map | None = None) -> None:
        self._rows = rows
        self._over = Map() if over is None else over
        self._len: int | None = None  # counted when first asked: counting looks every changed key up

    def get(self, key: Any, default: Any = None) -> Any:
        value = self._over.get(key, _MISSING)
        if value is not _MISSING:
            return value
        row = self._rows.row_of(key)
        return default if row is None else self._rows.value(row)

    def __getitem__(self, key: Any) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._over or self._rows.row_of(key) is not None

    def __len__(self) -> int:
        if self._len is None:
            index = self._rows.index
            self._len = len(index) + sum(1 for k in self._over if k not in index)
        return self._len

    def __iter__(self) -> Iterator:
        index = self._rows.index
        yield from index
        for key in self._over:
            if key not in index:
                yield key

    def set(self, key: Any, value: Any) -> ColumnMap:
        """A new map with `key` set to `value`; this one is unchanged."""
        return ColumnMap(self._rows, self._over.set(key, value))

    def update(self, changes: Mapping) -> ColumnMap:
        """A new map with every item of `changes` set; this one is unchanged."""
        return ColumnMap(self._rows, self._over.update(changes)) if changes else self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        if len(self) != len(other):
            return False
        missing = object()
        return all(other.get(key, missing) == value for key, value in self.items())

    __hash__ = None  # type: ignore[assignment] - like a dict: the values (records with dicts) are not hashable

    def __repr__(self) -> str:
        return f"ColumnMap({len(self)} items, {len(self._over)} changed since the snapshot)"
