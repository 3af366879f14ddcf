"""`PipelineState` <-> a JSON-able dict, so a folded state can be cached as a snapshot and loaded back.

A snapshot is a cache, never a source of truth: `from_dict(to_dict(s)) == s`, and a state loaded from a
snapshot plus the events after it equals the state folded from the first event. `SCHEMA` names the state's
shape and fold: it changes when a field of the state (or of a record it holds) is added, removed or retyped,
or when the code of the fold changes, so a snapshot written by other code is ignored rather than misread.

Layout: the persistent maps (`blocks`, `models`, `files`, `block_order`) are stored as columns, one flat
list per field, because a long-lived pipeline holds hundreds of thousands of blocks and flat lists parse
several times faster than one JSON object per record. A record's `Artifact` becomes four columns and a
metrics dict becomes an index into a table of key lists plus a flat list of values. A long column (at least
`PACK_FROM` values) is packed when that parses faster: a value repeated in runs as `{"runs": [[value,
count], ...]}`, consecutive ints as `{"range": [first, count]}`, all floats as `{"f64": base64 of
little-endian doubles}` (bit-exact; JSON's float parsing was half of the load), all 64-bit ints as
`{"i64": ...}`; anything else stays a JSON list.

Loading builds the small parts (models, the round, counters) and leaves the big maps (`blocks`, `files`,
`block_order`) as `ColumnMap`s over the parsed columns: a block record is built when it is first read, and
the blocks are stored in arrival order so the newest, the ones a replay's tail reads, are found without an
index. A million-event pipeline's state loads in about 0.3 s that way instead of 1.8 s.

>>> from pipelines.core.events import PipelineRegistered
>>> from pipelines.core.state import replay
>>> s = replay([PipelineRegistered(name="p", config_sha256="ab", config={"name": "p"})])
>>> from_dict(to_dict(s)) == s
True
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import inspect
import sys
from array import array
from bisect import bisect_left
from collections import deque
from itertools import accumulate, repeat
from operator import attrgetter
from typing import Any

from immutables import Map

from pipelines.core import record_copies
from pipelines.core import state as state_module
from pipelines.core.events import Artifact
from pipelines.core.record_copies import dicts_of, maker, slot_setters
from pipelines.core.schema import ColumnSchema
from pipelines.core.state import (
    Adaptation,
    BlockRecord,
    Circuit,
    Counters,
    ModelRecord,
    PipelineState,
    RoundRecord,
)
from pipelines.replay.column_map import ColumnMap, Rows

__all__ = ["SCHEMA", "from_dict", "to_dict"]

# Bump when the layout written by `to_dict` changes in a way the shape fingerprint cannot see.
LAYOUT = 3
PACK_FROM = 64  # shorter columns stay plain JSON lists

_RECORDS = (PipelineState, BlockRecord, ModelRecord, RoundRecord, Circuit, Counters, Artifact, ColumnSchema,
            Adaptation)
_ARTIFACT_FIELDS = tuple(f.name for f in dataclasses.fields(Artifact))


def _fingerprint() -> str:
    """A digest of every state record's fields (name and annotation) and of the fold's source code (with the
    generated record copies it is built on)."""
    parts = [f"layout {LAYOUT}"]
    for cls in _RECORDS:
        parts.append(cls.__qualname__ + ":" + ",".join(f"{f.name}={f.type}" for f in dataclasses.fields(cls)))
    for fn in (state_module.evolve, state_module.promote, state_module.after_round, record_copies.replacer,
               record_copies.maker, record_copies._check_plain):
        try:
            parts.append(inspect.getsource(fn))
        except (OSError, TypeError):  # no source shipped: the shape alone must do
            parts.append(fn.__qualname__)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


SCHEMA = f"pipeline-state/{_fingerprint()}"


def _kinds(cls: type) -> dict[str, str]:
    """How each field of a record is stored: artifact (4 columns), metrics (packed), tuple, or plain."""
    kinds = {}
    for f in dataclasses.fields(cls):
        annotation = str(f.type)
        if annotation == "Artifact":
            kinds[f.name] = "artifact"
        elif annotation == "Artifact | None":  # rare (late labels, calibrations): one small list or None per row
            kinds[f.name] = "optional_artifact"
        elif annotation.startswith("dict[str, float]"):
            kinds[f.name] = "metrics"
        elif annotation.startswith("tuple["):
            kinds[f.name] = "tuple"
        else:
            kinds[f.name] = "plain"
    return kinds


_BLOCK_KINDS = _kinds(BlockRecord)
_MODEL_KINDS = _kinds(ModelRecord)
_ROUND_KINDS = _kinds(RoundRecord)


# --- to_dict -------------------------------------------------------------------------------------


def to_dict(state: PipelineState) -> dict[str, Any]:
    """The state as plain JSON data (lists, dicts, str, numbers, bool, None)."""
    schema = state.schema
    return {
        "version": state.version,
        "name": state.name,
        "config": state.config,
        "config_sha256": state.config_sha256,
        "schema": None if schema is None else {
            "features": list(schema.features), "categorical": list(schema.categorical),
            "target": schema.target, "source": schema.source},
        # in arrival order, newest last: a ColumnMap finds the newest blocks, the ones a replay's tail looks up,
        # without building its index
        "blocks": _pack(sorted(state.blocks.values(), key=_seq), _BLOCK_KINDS),
        "block_order": _pair(sorted(state.block_order.items())),  # by seq: 1..n packs as a range
        "files": [_column(list(state.files.keys())), _column(list(state.files.values()))],
        "models": _pack(list(state.models.values()), _MODEL_KINDS),
        "champion": state.champion,
        "round": None if state.round is None else _pack([state.round], _ROUND_KINDS),
        "circuit": dataclasses.asdict(state.circuit),
        "concept_state": state.concept_state,
        "last_block": state.last_block,
        "last_drift_block": state.last_drift_block,
        "last_check_drifted": state.last_check_drifted,
        "retrain_pending": state.retrain_pending,
        "last_event_at": state.last_event_at,
        "counters": dataclasses.asdict(state.counters),
        "first_training": list(state.first_training),
        "drift_reasons": list(state.drift_reasons),
        "adaptation": dataclasses.asdict(state.adaptation),
        "last_round_seq": state.last_round_seq,
    }


_seq = attrgetter("seq")


def _pair(items: list[tuple[Any, Any]]) -> list:
    return [_column([k for k, _ in items]), _column([v for _, v in items])]


def _pack(records: list, kinds: dict[str, str]) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    for name, kind in kinds.items():
        values = [getattr(r, name) for r in records]
        if kind == "artifact":
            for part in _ARTIFACT_FIELDS:
                columns[f"{name}.{part}"] = _column([getattr(a, part) for a in values])
        elif kind == "optional_artifact":
            columns[name] = _column([None if a is None else [getattr(a, p) for p in _ARTIFACT_FIELDS]
                                     for a in values])
        elif kind == "metrics":
            columns[name] = _pack_metrics(values)
        elif kind == "tuple":
            columns[name] = [list(v) for v in values]
        else:
            columns[name] = _column(values)
    return columns


_RUN_TYPES = frozenset({str, int, bool, type(None)})  # immutable: a run may share one object
_INT64 = (-(2**63), 2**63 - 1)


def _column(values: list) -> list | dict[str, Any]:
    """A column as JSON: packed (runs, f64, i64) when it is long and that fits, else the list itself."""
    if len(values) < PACK_FROM:
        return values
    kinds = set(map(type, values))
    if kinds <= _RUN_TYPES:
        runs: list[list] = []
        last_kind, last = None, None
        for v in values:
            if runs and type(v) is last_kind and v == last:
                runs[-1][1] += 1
            else:
                runs.append([v, 1])
                last_kind, last = type(v), v
        if len(runs) * 8 <= len(values):
            return {"runs": runs}
    if kinds == {int} and values == list(range(values[0], values[0] + len(values))):
        return {"range": [values[0], len(values)]}
    if kinds == {float}:
        return {"f64": _b64(array("d", values))}
    if kinds == {int} and _INT64[0] <= min(values) and max(values) <= _INT64[1]:
        return {"i64": _b64(array("q", values))}
    return values


def _b64(numbers: array) -> str:
    if sys.byteorder == "big":
        numbers.byteswap()
    return base64.b64encode(numbers.tobytes()).decode("ascii")


def _values(column: Any) -> list:
    """`_column` undone: the plain list (raises ValueError/TypeError on anything else)."""
    if type(column) is list:
        return column
    if type(column) is not dict or len(column) != 1:
        raise ValueError(f"a snapshot column is a list or a packed column, got {type(column).__name__}")
    ((kind, packed),) = column.items()
    if kind == "runs":
        out: list = []
        for value, count in packed:
            if type(value) not in _RUN_TYPES or type(count) is not int or count < 1:
                raise ValueError(f"bad run in a snapshot column: {value!r:.40} x {count!r:.20}")
            out += [value] * count
        return out
    if kind == "range":
        return list(_range_of(packed))
    if kind in ("f64", "i64"):
        numbers = array("d" if kind == "f64" else "q", base64.b64decode(packed, validate=True))
        if sys.byteorder == "big":
            numbers.byteswap()
        return numbers.tolist()
    raise ValueError(f"unknown snapshot column packing {kind!r}")


def _range_of(packed: Any) -> range:
    if type(packed) is not list or len(packed) != 2 or {type(v) for v in packed} != {int} or packed[1] < 0:
        raise ValueError(f"bad range in a snapshot column: {packed!r:.40}")
    return range(packed[0], packed[0] + packed[1])


def _pack_metrics(values: list[dict[str, float] | None]) -> dict[str, list]:
    """Dicts as {keys: distinct key lists, shape: index into keys per record (-1: None), values: flat}."""
    tables: dict[tuple[str, ...], int] = {}
    shape, flat = [], []
    for metrics in values:
        if metrics is None:
            shape.append(-1)
            continue
        keys = tuple(metrics)
        shape.append(tables.setdefault(keys, len(tables)))
        flat.extend(metrics.values())
    return {"keys": [list(k) for k in tables], "shape": _column(shape), "values": _column(flat)}


# --- from_dict -----------------------------------------------------------------------------------


def from_dict(data: dict[str, Any]) -> PipelineState:
    """Rebuild the state from `to_dict`'s output (raises KeyError/TypeError/ValueError on other data)."""
    schema = data["schema"]
    round_ = data["round"]
    return PipelineState(
        version=data["version"],
        name=data["name"],
        config=data["config"],
        config_sha256=data["config_sha256"],
        schema=None if schema is None else ColumnSchema(
            features=tuple(schema["features"]), categorical=tuple(schema["categorical"]),
            target=schema["target"], source=schema["source"]),
        blocks=_lazy_keyed(data["blocks"], BlockRecord, _BLOCK_KINDS, "block_id"),
        block_order=_lazy_map_of(data["block_order"]),
        files=_lazy_map_of(data["files"]),
        models=_keyed(data["models"], ModelRecord, _MODEL_KINDS, "version"),
        champion=data["champion"],
        round=None if round_ is None else _unpack(round_, RoundRecord, _ROUND_KINDS)[0],
        circuit=Circuit(**data["circuit"]),
        concept_state=data["concept_state"],
        last_block=data["last_block"],
        last_drift_block=data["last_drift_block"],
        last_check_drifted=data["last_check_drifted"],
        retrain_pending=data["retrain_pending"],
        last_event_at=data["last_event_at"],
        counters=Counters(**data["counters"]),
        first_training=tuple(data["first_training"]),
        drift_reasons=tuple(data["drift_reasons"]),
        adaptation=Adaptation(**data["adaptation"]),
        last_round_seq=data["last_round_seq"],
    )


def _lazy_map_of(pair: list) -> ColumnMap:
    """A key column and a value column as a ColumnMap (values are taken from the column as they are)."""
    keys_column, values = pair
    keys: list | range = _values(keys_column) if not _is_range(keys_column) else _range_of(keys_column["range"])
    values = _values(values)
    if len(keys) != len(values):
        raise ValueError(f"snapshot map has {len(keys)} keys but {len(values)} values")
    return ColumnMap(Rows(keys, values.__getitem__))


def _is_range(column: Any) -> bool:
    return type(column) is dict and len(column) == 1 and "range" in column


def _lazy_keyed(columns: dict[str, Any], cls: type, kinds: dict[str, str], key: str) -> ColumnMap:
    """The records of `cls` by their field `key`, as a ColumnMap that builds a record when it is first read:
    equal to `_keyed`'s Map. A long-lived pipeline's blocks: most are never read after a load."""
    ordered = _columns(columns, cls, kinds, lazy=True)
    make = _MAKERS[cls]

    def build(row: int) -> Any:
        return make(*[column[row] for column in ordered])

    return ColumnMap(Rows(ordered[list(kinds).index(key)], build))


def _keyed(columns: dict[str, Any], cls: type, kinds: dict[str, str], key: str) -> Map:
    """The records of `cls` in a Map by their field `key` (a later record wins, as a dict's would)."""
    records, ordered = _unpack(columns, cls, kinds, with_columns=True)
    keys = ordered[list(kinds).index(key)]
    return Map(zip(keys, records, strict=True))


_SETTERS = {cls: slot_setters(cls) for cls in (BlockRecord, ModelRecord, RoundRecord, Artifact)}
_MAKERS = {cls: maker(cls) for cls in (BlockRecord, Artifact)}


def _records(cls: type, columns: list[list]) -> list:
    """Records of `cls` from one equally long column per field (in field order), equal to
    `[cls(*row) for row in zip(*columns)]`. Built a column at a time: the slot setters are called from C
    (`map`), which takes about a fifth less than a constructor call per record."""
    lengths = {len(column) for column in columns}
    if len(lengths) != 1:
        raise ValueError(f"snapshot columns of {cls.__name__} have different lengths: {sorted(lengths)}")
    records = list(map(object.__new__, repeat(cls, lengths.pop())))
    for setter, column in zip(_SETTERS[cls], columns, strict=True):
        deque(map(setter, records, column), maxlen=0)
    return records


def _unpack(columns: dict[str, Any], cls: type, kinds: dict[str, str], with_columns: bool = False) -> Any:
    """Records of `cls` rebuilt from `_pack`'s columns, in field order (with the columns, if asked)."""
    ordered = _columns(columns, cls, kinds, lazy=False)
    records = _records(cls, ordered)
    return (records, ordered) if with_columns else records


def _columns(columns: dict[str, Any], cls: type, kinds: dict[str, str], lazy: bool) -> list:
    """`_pack`'s columns undone, one per field of `cls` in field order, all checked to be equally long. With
    `lazy`, an artifact or metrics column builds its value for a row when that row is read."""
    ordered: list = []
    for name, kind in kinds.items():
        if kind == "artifact":
            parts = [_values(columns[f"{name}.{p}"]) for p in _ARTIFACT_FIELDS]
            if len({len(p) for p in parts}) > 1:
                raise ValueError(f"snapshot columns of {cls.__name__}.{name} have different lengths")
            ordered.append(_LazyArtifacts(parts) if lazy else _records(Artifact, parts))
        elif kind == "optional_artifact":
            ordered.append([None if v is None else _MAKERS[Artifact](*v) for v in _values(columns[name])])
        elif kind == "metrics":
            ordered.append(_LazyMetrics(columns[name]) if lazy else _unpack_metrics(columns[name]))
        elif kind == "tuple":
            ordered.append([tuple(v) for v in columns[name]])
        else:
            ordered.append(_values(columns[name]))
    expected = {n for n, k in kinds.items() if k != "artifact"} | {
        f"{n}.{p}" for n, k in kinds.items() if k == "artifact" for p in _ARTIFACT_FIELDS}
    if set(columns) != expected:
        raise ValueError(f"snapshot columns {sorted(columns)} do not match {cls.__name__}'s fields")
    lengths = {len(column) for column in ordered}
    if len(lengths) > 1:
        raise ValueError(f"snapshot columns of {cls.__name__} have different lengths: {sorted(lengths)}")
    return ordered


class _LazyArtifacts:
    """An artifact column: row i's `Artifact` built from its four part columns when asked."""

    __slots__ = ("parts",)

    def __init__(self, parts: list[list]) -> None:
        self.parts = parts

    def __len__(self) -> int:
        return len(self.parts[0])

    def __getitem__(self, row: int) -> Artifact:
        return _MAKERS[Artifact](*[part[row] for part in self.parts])


class _LazyMetrics:
    """A metrics column (`_pack_metrics`'s layout, checked as `_unpack_metrics` checks it): row i's dict, or
    None, built when asked."""

    __slots__ = ("keys", "shape", "flat", "none_rows", "starts")

    def __init__(self, packed: dict[str, Any]) -> None:
        self.keys = [tuple(k) for k in packed["keys"]]
        self.flat, self.shape = _values(packed["values"]), _values(packed["shape"])
        for names in self.keys:
            if len(set(names)) != len(names) or any(type(n) is not str for n in names):
                raise ValueError(f"snapshot metric names must be distinct strings, got {list(names)!r:.80}")
        shape, widths = self.shape, [len(k) for k in self.keys]
        if shape and (not set(map(type, shape)) <= {int} or min(shape) < -1 or max(shape) >= len(widths)):
            raise ValueError("snapshot metrics shape holds an index out of range")
        # where row i's values start in `flat` (its dict is None when shape[i] is -1): with one key list, from
        # the rows without metrics before it (usually a handful), else summed up front
        self.none_rows: list[int] | None = None
        self.starts: list[int] | None = None
        if len(widths) == 1:
            self.none_rows, at = [], -1
            while (at := _index_of(shape, -1, at + 1)) >= 0:
                self.none_rows.append(at)
            used = (len(shape) - len(self.none_rows)) * widths[0]
        else:
            sizes = [widths[i] if i >= 0 else 0 for i in shape]
            self.starts = list(accumulate(sizes, initial=0))
            used = self.starts[-1]
        if used != len(self.flat):
            raise ValueError(f"snapshot metrics hold {len(self.flat)} values but the shapes use {used}")

    def __len__(self) -> int:
        return len(self.shape)

    def __getitem__(self, row: int) -> dict[str, float] | None:
        index = self.shape[row]
        if index < 0:
            return None
        names = self.keys[index]
        if self.starts is None:
            start = (row - bisect_left(self.none_rows, row)) * len(names)  # type: ignore[arg-type]
        else:
            start = self.starts[row]
        return dict(zip(names, self.flat[start:start + len(names)], strict=True))


def _index_of(values: list, value: Any, start: int) -> int:
    """`values.index(value, start)`, or -1 when it is not there."""
    try:
        return values.index(value, start)
    except ValueError:
        return -1


def _unpack_metrics(packed: dict[str, Any]) -> list[dict[str, float] | None]:
    keys, flat, shape = packed["keys"], _values(packed["values"]), _values(packed["shape"])
    if len(keys) == 1:  # the usual case: every record has the same metrics, or none (None)
        names = tuple(keys[0])
        width, missing = len(names), shape.count(-1)
        if len(flat) != width * (len(shape) - missing) or shape.count(0) + missing != len(shape):
            raise ValueError(f"snapshot metrics hold {len(flat)} values for {len(shape)} records of {width}")
        count = len(shape) - missing
        dicts = dicts_of(names)(*[flat[i::width] for i in range(width)]) if width else [{} for _ in range(count)]
        if not missing:
            return dicts
        following = iter(dicts).__next__
        return [None if index < 0 else following() for index in shape]
    out: list[dict[str, float] | None] = []
    at = 0
    for index in shape:
        if index < 0:
            out.append(None)
            continue
        names = keys[index]
        out.append(dict(zip(names, flat[at:at + len(names)], strict=True)))
        at += len(names)
    if at != len(flat):
        raise ValueError(f"snapshot metrics hold {len(flat)} values but the shapes use {at}")
    return out


