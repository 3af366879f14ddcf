"""Codec: registration rules, the JSON shape of encoded events, decoding from type hints, upcasters, errors.

This module uses `from __future__ import annotations` on purpose: the codec must resolve string hints.
"""

from __future__ import annotations

import dataclasses
import datetime
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import pytest

from eventstore import Codec, CorruptLogError, EventData, Recorded, StoreError


@dataclass(frozen=True, kw_only=True, slots=True)
class Artifact:
    artifact_id: str
    sha256: str


@dataclass(frozen=True, kw_only=True, slots=True)
class CandidateTrained:
    SCHEMA_VERSION: ClassVar[int] = 3
    model: Artifact
    metrics: dict[str, float]
    features: tuple[str, ...]
    window: tuple[int, int]
    history: list[float]
    strategy: Literal["full", "incremental"]
    parent: Artifact | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class Node:
    label: str
    children: tuple[Node, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class Flags:
    on: bool
    count: int
    ratio: float
    nothing: None = None


def recorded(type_: str, payload: dict, schema_version: int = 1, position: int = 42) -> Recorded:
    return Recorded(
        position, "s", 1, type_, schema_version, payload, "2026-01-01T00:00:00.000000+00:00", "0" * 64
    )


EXAMPLE = CandidateTrained(
    model=Artifact(artifact_id="m-2", sha256="ab" * 32),
    metrics={"auc": 0.91, "f1": 0.8},
    features=("x1", "x2"),
    window=(100, 200),
    history=[0.5, 0.75],
    strategy="incremental",
    parent=Artifact(artifact_id="m-1", sha256="cd" * 32),
    extra={"note": ["free", {"json": 1}]},
)


# -- registration -------------------------------------------------------------------------------------


def test_register_uses_the_class_name_and_schema_version():
    codec = Codec([CandidateTrained, Flags])
    assert codec.names() == ["CandidateTrained", "Flags"]
    assert codec.encode(EXAMPLE).schema_version == 3
    assert codec.encode(Flags(on=True, count=1, ratio=0.5)).schema_version == 1
    assert CandidateTrained in codec and "Flags" in codec and Node not in codec


def test_register_under_a_stable_name_and_as_a_decorator():
    codec = Codec()
    assert codec.register(Node, name="TreeGrown") is Node
    assert codec.encode(Node(label="x")).type == "TreeGrown"
    assert codec.decode(recorded("TreeGrown", {"label": "x", "children": []})) == Node(label="x")


def test_registering_twice_the_same_way_is_harmless():
    codec = Codec([Node])
    codec.register(Node)
    assert codec.names() == ["Node"]


def test_a_name_taken_by_another_class_is_refused():
    codec = Codec([Node])
    with pytest.raises(ValueError, match="already registered"):
        codec.register(Flags, name="Node")
    with pytest.raises(ValueError, match="already registered as 'Node'"):
        codec.register(Node, name="Other")


def test_non_dataclasses_and_mutable_dataclasses_are_refused():
    @dataclass(kw_only=True)
    class Mutable:
        x: int

    with pytest.raises(TypeError, match="not a dataclass"):
        Codec().register(dict)
    with pytest.raises(TypeError, match="not a dataclass"):
        Codec().register(Flags(on=True, count=1, ratio=1.0))  # an instance, not a class
    with pytest.raises(TypeError, match="not frozen"):
        Codec().register(Mutable)


@dataclass(frozen=True)
class WithDate:
    when: datetime.datetime


@dataclass(frozen=True)
class WithSet:
    tags: set[str]


@dataclass(frozen=True)
class WithIntKeys:
    table: dict[int, str]


def test_a_field_type_the_codec_cannot_store_is_refused_at_registration():
    for cls, match in [
        (WithDate, "WithDate.when.*datetime"),
        (WithSet, "WithSet.tags"),
        (WithIntKeys, "dict keys must be str"),
    ]:
        with pytest.raises(TypeError, match=match):
            Codec().register(cls)


def test_hints_that_cannot_be_resolved_are_reported_at_registration():
    @dataclass(frozen=True)
    class Local:
        window: LocalWindow  # noqa: F821 - defined nowhere the codec can see

    with pytest.raises(TypeError, match="cannot resolve the type hints of .*Local: name 'LocalWindow'"):
        Codec().register(Local)


def test_a_bad_schema_version_is_refused():
    @dataclass(frozen=True)
    class Bad:
        SCHEMA_VERSION: ClassVar[int] = 0

    with pytest.raises(TypeError, match="SCHEMA_VERSION"):
        Codec().register(Bad)


def test_upcaster_registration_rules():
    codec = Codec()
    codec.register_upcaster("T", 1, dict)
    codec.register_upcaster("T", 1, dict)  # the same function again is fine
    with pytest.raises(ValueError, match="already registered"):
        codec.register_upcaster("T", 1, lambda p: p)
    with pytest.raises(ValueError, match="from_version"):
        codec.register_upcaster("T", 0, dict)
    with pytest.raises(TypeError, match="not callable"):
        codec.register_upcaster("T", 2, "nope")


# -- encoding -----------------------------------------------------------------------------------------


def test_encode_gives_plain_json_with_lists_for_tuples():
    data = Codec([CandidateTrained]).encode(EXAMPLE)
    assert data == EventData(
        "CandidateTrained",
        {
            "model": {"artifact_id": "m-2", "sha256": "ab" * 32},
            "metrics": {"auc": 0.91, "f1": 0.8},
            "features": ["x1", "x2"],
            "window": [100, 200],
            "history": [0.5, 0.75],
            "strategy": "incremental",
            "parent": {"artifact_id": "m-1", "sha256": "cd" * 32},
            "extra": {"note": ["free", {"json": 1}]},
        },
        3,
    )


def test_encoding_an_unregistered_class_says_how_to_fix_it():
    with pytest.raises(StoreError, match=r"call codec.register\(Node\)"):
        Codec().encode(Node(label="x"))


def test_encoding_a_value_that_is_not_json_names_the_field():
    codec = Codec([CandidateTrained])
    bad = dataclasses.replace(EXAMPLE, extra={"when": object()})
    with pytest.raises(StoreError, match=r"CandidateTrained\.extra\['when'\] is a object"):
        codec.encode(bad)


# -- decoding -----------------------------------------------------------------------------------------


def test_decode_rebuilds_nested_dataclasses_tuples_lists_and_literals():
    codec = Codec([CandidateTrained])
    decoded = codec.decode(recorded("CandidateTrained", codec.encode(EXAMPLE).payload, 3))
    assert decoded == EXAMPLE
    assert isinstance(decoded.features, tuple) and isinstance(decoded.window, tuple)
    assert isinstance(decoded.history, list) and isinstance(decoded.model, Artifact)


def test_decode_a_recursive_dataclass():
    tree = Node(label="root", children=(Node(label="a"), Node(label="b", children=(Node(label="c"),))))
    codec = Codec([Node])
    assert codec.decode(codec.encode(tree)) == tree


def test_decode_fills_defaults_and_widens_ints_to_floats():
    codec = Codec([Flags])
    decoded = codec.decode(recorded("Flags", {"on": False, "count": 3, "ratio": 2}))
    assert decoded == Flags(on=False, count=3, ratio=2.0) and type(decoded.ratio) is float


@pytest.mark.parametrize(
    "payload, where",
    [
        ({"on": 1, "count": 3, "ratio": 1.0}, "payload.on: expected a boolean, got an integer"),
        ({"on": True, "count": True, "ratio": 1.0}, "payload.count: expected an integer, got a boolean"),
        ({"on": True, "count": 2.0, "ratio": 1.0}, "payload.count: expected an integer, got a number"),
        ({"on": True, "count": 2, "ratio": "1"}, "payload.ratio: expected a number, got a string"),
        ({"on": True, "count": 2}, r"missing field\(s\) \['ratio'\]"),
        ({"on": True, "count": 2, "ratio": 1.0, "new": 1}, r"unexpected field\(s\) \['new'\]"),
    ],
)
def test_a_payload_that_does_not_fit_names_position_type_and_field(payload, where):
    with pytest.raises(CorruptLogError, match=rf"position 42: Flags v1 payload does not decode: .*{where}"):
        Codec([Flags]).decode(recorded("Flags", payload))


def test_decode_errors_deep_inside_name_the_path():
    codec = Codec([CandidateTrained])
    payload = codec.encode(EXAMPLE).payload
    for change, where in [
        ({"features": ["x1", 2]}, r"payload\.features\[1\]: expected a string"),
        ({"window": [1, 2, 3]}, r"payload\.window: expected an array of 2, got an array of 3"),
        ({"strategy": "partial"}, r"payload\.strategy: expected one of \['full', 'incremental'\]"),
        ({"parent": {"artifact_id": "m", "sha256": 5}}, r"payload\.parent: .* fits none of"),
        ({"metrics": {"auc": "high"}}, r"payload\.metrics\['auc'\]: expected a number"),
        ({"model": ["m", "s"]}, r"payload\.model: expected an object for Artifact, got an array"),
    ]:
        with pytest.raises(CorruptLogError, match=where):
            codec.decode(recorded("CandidateTrained", {**payload, **change}, 3))


def test_a_literal_true_does_not_match_one():
    @dataclass(frozen=True)
    class Mode:
        level: Literal[1, 2]

    codec = Codec([Mode])
    assert codec.decode(recorded("Mode", {"level": 2})) == Mode(level=2)
    with pytest.raises(CorruptLogError, match="expected one of"):
        codec.decode(recorded("Mode", {"level": True}))


def test_an_unknown_type_names_position_and_type():
    with pytest.raises(CorruptLogError, match=r"position 42: unknown event type 'Vanished' \(schema v1\)"):
        Codec([Flags]).decode(recorded("Vanished", {}))


def test_a_payload_from_newer_code_is_refused():
    with pytest.raises(
        CorruptLogError, match="position 42: Flags has schema v2 but the code knows only up to v1"
    ):
        Codec([Flags]).decode(recorded("Flags", {"on": True, "count": 1, "ratio": 1.0}, schema_version=2))


# -- upcasters ----------------------------------------------------------------------------------------


def v1_to_v2(p: dict) -> dict:  # v1 had "score" and no history; mutating p must not reach the log
    p["history"] = [p.pop("score")]
    return p


def v2_to_v3(p: dict) -> dict:  # v2 had no strategy; all were full retrains
    return {**p, "strategy": "full"}


V1_PAYLOAD = {
    "model": {"artifact_id": "m", "sha256": "00"},
    "metrics": {},
    "features": [],
    "window": [0, 1],
    "score": 0.7,
}


def test_upcasters_chain_from_any_old_version():
    codec = Codec(
        [CandidateTrained], upcasters={("CandidateTrained", 1): v1_to_v2, ("CandidateTrained", 2): v2_to_v3}
    )
    from_v1 = codec.decode(recorded("CandidateTrained", V1_PAYLOAD, 1))
    assert from_v1 == CandidateTrained(
        model=Artifact(artifact_id="m", sha256="00"),
        metrics={},
        features=(),
        window=(0, 1),
        history=[0.7],
        strategy="full",
    )
    v2 = {k: v for k, v in V1_PAYLOAD.items() if k != "score"} | {"history": [0.7]}
    assert codec.decode(recorded("CandidateTrained", v2, 2)) == from_v1
    assert V1_PAYLOAD["score"] == 0.7  # the upcaster popped from a copy


def test_a_missing_upcaster_says_which_one_to_register():
    codec = Codec([CandidateTrained], upcasters={("CandidateTrained", 1): v1_to_v2})
    with pytest.raises(
        CorruptLogError,
        match=r"position 42: no upcaster for CandidateTrained v2 -> v3; "
        r"register one with Codec.register_upcaster\('CandidateTrained', 2",
    ):
        codec.decode(recorded("CandidateTrained", V1_PAYLOAD, 1))


def test_a_failing_or_misbehaving_upcaster_names_the_step():
    codec = Codec([Flags, CandidateTrained])
    codec.register_upcaster("CandidateTrained", 1, lambda p: p["absent"])
    codec.register_upcaster("CandidateTrained", 2, lambda p: [p])
    with pytest.raises(
        CorruptLogError, match=r"position 42: upcaster CandidateTrained v1 -> v2 failed: KeyError"
    ):
        codec.decode(recorded("CandidateTrained", V1_PAYLOAD, 1))
    with pytest.raises(CorruptLogError, match=r"v2 -> v3 returned list, not a dict"):
        codec.decode(recorded("CandidateTrained", V1_PAYLOAD, 2))


def test_decode_accepts_event_data_too():
    codec = Codec([Flags])
    assert codec.decode(codec.encode(Flags(on=True, count=0, ratio=0.0))) == Flags(
        on=True, count=0, ratio=0.0
    )
    with pytest.raises(CorruptLogError, match="unrecorded event: unknown event type"):
        codec.decode(EventData("Nope", {}))


@dataclass(frozen=True, kw_only=True, slots=True)
class Numbers:
    int_first: int | float
    float_first: float | int
    maybe: float | None
    table: dict[str, float]
    flag: bool | int = False


def test_unions_of_scalars_take_the_first_arm_that_fits():
    codec = Codec([Numbers])
    payload = {"int_first": 1, "float_first": 1, "maybe": 2, "table": {"a": 3}, "flag": 1}
    decoded = codec.decode(recorded("Numbers", payload))
    assert decoded == Numbers(int_first=1, float_first=1.0, maybe=2.0, table={"a": 3.0}, flag=1)
    assert type(decoded.int_first) is int and type(decoded.float_first) is float
    assert type(decoded.maybe) is float and type(decoded.table["a"]) is float and type(decoded.flag) is int
    assert type(codec.decode(recorded("Numbers", {**payload, "flag": True})).flag) is bool
    with pytest.raises(CorruptLogError, match=r"payload\.table\['a'\]: expected a number, got a string"):
        codec.decode(recorded("Numbers", {**payload, "table": {"a": "3"}}))
    with pytest.raises(CorruptLogError, match=r"payload\.maybe: a string '2' fits none of"):
        codec.decode(recorded("Numbers", {**payload, "maybe": "2"}))
