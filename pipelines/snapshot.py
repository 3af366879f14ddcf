"""`PipelineState` <-> a JSON-able dict, so a folded state can be cached as a snapshot and loaded back.

A snapshot is a cache, never a source of truth: `from_dict(to_dict(s)) == s`, and a state loaded from a
snapshot plus the events after it equals the state folded from the first event. `SCHEMA` names the state's
shape and fold: it changes when a field of the state (or of a record it holds) is added, removed or retyped,
or when the code of the fold changes, so a snapshot written by other code is ignored rather than misread.

Layout: the persistent maps (`blocks`, `models`, `files`, `block_order`) are stored as columns, one flat
list per field, because a long-lived pipeline holds hundreds of thousands of blocks and flat lists parse
several times faster than one JSON object per record. A record's `Artifact` becomes four columns and a
metrics dict becomes an index into a table of key lists plus a flat list of values.

>>> from pipelines.events import PipelineRegistered
>>> from pipelines.state import replay
>>> s = replay([PipelineRegistered(name="p", config_sha256="ab", config={"name": "p"})])
>>> from_dict(to_dict(s)) == s
True
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
from typing import Any

from immutables import Map

from pipelines import state as state_module
from pipelines.events import Artifact
from pipelines.schema import ColumnSchema
from pipelines.state import BlockRecord, Circuit, Counters, ModelRecord, PipelineState, RoundRecord

__all__ = ["SCHEMA", "from_dict", "to_dict"]

# Bump when the layout written by `to_dict` changes in a way the shape fingerprint cannot see.
LAYOUT = 1

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
        "block_order": [list(state.block_order.keys()), list(state.block_order.values())],
        "files": [list(state.files.keys()), list(state.files.values())],
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
                columns[f"{name}.{part}"] = [getattr(a, part) for a in values]
        elif kind == "metrics":
            columns[name] = _pack_metrics(values)
        elif kind == "tuple":
            columns[name] = [list(v) for v in values]
        else:
            columns[name] = values
    return columns


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
    return {"keys": [list(k) for k in tables], "shape": shape, "values": flat}


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
        blocks=Map(_keyed(_unpack(data["blocks"], BlockRecord, _BLOCK_KINDS), "block_id")),
        block_order=_map_of(data["block_order"]),
        files=_map_of(data["files"]),
        models=Map(_keyed(_unpack(data["models"], ModelRecord, _MODEL_KINDS), "version")),
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


def _map_of(pair: list[list]) -> Map:
    keys, values = pair
    if len(keys) != len(values):
        raise ValueError(f"snapshot map has {len(keys)} keys but {len(values)} values")
    return Map(zip(keys, values, strict=True))


def _keyed(records: list, key: str) -> dict[Any, Any]:
    return {getattr(r, key): r for r in records}


def _unpack(columns: dict[str, Any], cls: type, kinds: dict[str, str]) -> list:
    """Records of `cls` rebuilt from `_pack`'s columns (positional: the record classes are not kw_only)."""
    ordered = []
    for name, kind in kinds.items():
        if kind == "artifact":
            parts = [columns[f"{name}.{p}"] for p in _ARTIFACT_FIELDS]
            ordered.append([Artifact(sha256=s, kind=k, size=z, format=f) for s, k, z, f in zip(*parts, strict=True)])
        elif kind == "metrics":
            ordered.append(_unpack_metrics(columns[name]))
        elif kind == "tuple":
            ordered.append([tuple(v) for v in columns[name]])
        else:
            ordered.append(columns[name])
    expected = {n for n, k in kinds.items() if k != "artifact"} | {
        f"{n}.{p}" for n, k in kinds.items() if k == "artifact" for p in _ARTIFACT_FIELDS}
    if set(columns) != expected:
        raise ValueError(f"snapshot columns {sorted(columns)} do not match {cls.__name__}'s fields")
    lengths = {len(column) for column in ordered}
    if len(lengths) > 1:
        raise ValueError(f"snapshot columns of {cls.__name__} have different lengths: {sorted(lengths)}")
    return [cls(*row) for row in zip(*ordered, strict=True)]


def _unpack_metrics(packed: dict[str, list]) -> list[dict[str, float] | None]:
    keys, flat, shape = packed["keys"], packed["values"], packed["shape"]
    if len(keys) == 1 and -1 not in shape:  # the usual case: every record has the same metrics
        names = keys[0]
        width = len(names)
        if len(flat) != width * len(shape):
            raise ValueError(f"snapshot metrics hold {len(flat)} values for {len(shape)} records of {width}")
        chunks = zip(*[iter(flat)] * width, strict=True) if width else ((),) * len(shape)
        return [dict(zip(names, chunk, strict=True)) for chunk in chunks]
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
