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
count], ...]}`, all floats as `{"f64": base64 of little-endian doubles}` (bit-exact; JSON's float parsing
was half of the load), all 64-bit ints as `{"i64": ...}`; anything else stays a JSON list.

>>> from pipelines.events import PipelineRegistered
>>> from pipelines.state import replay
>>> s = replay([PipelineRegistered(name="p", config_sha256="ab", config={"name": "p"})])
>>> from_dict(to_dict(s)) == s
True
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import inspect
import sys
from array import array
from collections import deque
from itertools import repeat
from typing import Any

from immutables import Map

from pipelines import state as state_module
from pipelines.events import Artifact
from pipelines.schema import ColumnSchema
from pipelines.state import (
    BlockRecord,
    Circuit,
    Counters,
    ModelRecord,
    PipelineState,
    RoundRecord,
    slot_setters,
)

__all__ = ["SCHEMA", "from_dict", "to_dict"]

# Bump when the layout written by `to_dict` changes in a way the shape fingerprint cannot see.
LAYOUT = 2
PACK_FROM = 64  # shorter columns stay plain JSON lists

_RECORDS = (PipelineState, BlockRecord, ModelRecord, RoundRecord, Circuit, Counters, Artifact, ColumnSchema)
_ARTIFACT_FIELDS = tuple(f.name for f in dataclasses.fields(Artifact))


def _fingerprint() -> str:
    """A digest of every state record's fields (name and annotation) and of the fold's source code (with the
    generated record copies it is built on)."""
    parts = [f"layout {LAYOUT}"]
    for cls in _RECORDS:
        parts.append(cls.__qualname__ + ":" + ",".join(f"{f.name}={f.type}" for f in dataclasses.fields(cls)))
    for fn in (state_module.evolve, state_module.promote, state_module.after_round, state_module.replacer,
               state_module.maker, state_module._check_plain):
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
        "blocks": _pack(list(state.blocks.values()), _BLOCK_KINDS),
        "block_order": [_column(list(state.block_order.keys())), _column(list(state.block_order.values()))],
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
    }


def _pack(records: list, kinds: dict[str, str]) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    for name, kind in kinds.items():
        values = [getattr(r, name) for r in records]
        if kind == "artifact":
            for part in _ARTIFACT_FIELDS:
                columns[f"{name}.{part}"] = _column([getattr(a, part) for a in values])
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
    if kind in ("f64", "i64"):
        numbers = array("d" if kind == "f64" else "q", base64.b64decode(packed, validate=True))
        if sys.byteorder == "big":
            numbers.byteswap()
        return numbers.tolist()
    raise ValueError(f"unknown snapshot column packing {kind!r}")


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
        blocks=_keyed(data["blocks"], BlockRecord, _BLOCK_KINDS, "block_id"),
        block_order=_map_of(data["block_order"]),
        files=_map_of(data["files"]),
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
    )


def _map_of(pair: list) -> Map:
    keys, values = (_values(c) for c in pair)
    if len(keys) != len(values):
        raise ValueError(f"snapshot map has {len(keys)} keys but {len(values)} values")
    return Map(zip(keys, values, strict=True))


def _keyed(columns: dict[str, Any], cls: type, kinds: dict[str, str], key: str) -> Map:
    """The records of `cls` in a Map by their field `key` (a later record wins, as a dict's would)."""
    records, ordered = _unpack(columns, cls, kinds, with_columns=True)
    keys = ordered[list(kinds).index(key)]
    return Map(zip(keys, records, strict=True))


_SETTERS = {cls: slot_setters(cls) for cls in (BlockRecord, ModelRecord, RoundRecord, Artifact)}


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
    ordered = []
    for name, kind in kinds.items():
        if kind == "artifact":
            parts = [_values(columns[f"{name}.{p}"]) for p in _ARTIFACT_FIELDS]
            if len({len(p) for p in parts}) > 1:
                raise ValueError(f"snapshot columns of {cls.__name__}.{name} have different lengths")
            ordered.append(_records(Artifact, parts))
        elif kind == "metrics":
            ordered.append(_unpack_metrics(columns[name]))
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
    records = _records(cls, ordered)
    return (records, ordered) if with_columns else records


def _unpack_metrics(packed: dict[str, Any]) -> list[dict[str, float] | None]:
    keys, flat, shape = packed["keys"], _values(packed["values"]), _values(packed["shape"])
    if len(keys) == 1:  # the usual case: every record has the same metrics, or none (None)
        names = tuple(keys[0])
        width, missing = len(names), shape.count(-1)
        if len(flat) != width * (len(shape) - missing) or shape.count(0) + missing != len(shape):
            raise ValueError(f"snapshot metrics hold {len(flat)} values for {len(shape)} records of {width}")
        count = len(shape) - missing
        dicts = _dicts_of(names)(*[flat[i::width] for i in range(width)]) if width else [{} for _ in range(count)]
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


@functools.lru_cache(maxsize=64)
def _dicts_of(names: tuple[str, ...]) -> Any:
    """A function `(column, column, ...) -> [{names[0]: v0, names[1]: v1, ...}, ...]` with the key names
    written into a dict display: about 2.5x faster than `dict(zip(names, values))` per record."""
    if len(set(names)) != len(names) or any(type(n) is not str for n in names):
        raise ValueError(f"snapshot metric names must be distinct strings, got {list(names)!r:.80}")
    args = ", ".join(f"c{i}" for i in range(len(names)))
    display = ", ".join(f"{n!r}: v{i}" for i, n in enumerate(names))
    values = ", ".join(f"v{i}" for i in range(len(names)))
    source = f"def dicts({args}):\n    return [{{{display}}} for {values}, in zip({args}, strict=True)]"
    env: dict[str, Any] = {}
    exec(source, env)  # noqa: S102 - key names are repr()s of str, the rest is fixed text
    return env["dicts"]
