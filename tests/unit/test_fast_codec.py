"""The codec's fast paths decode exactly as the field-by-field walk did: records built without `__init__`
only where `__init__` just stores the fields, lists and dicts taken in one pass only when nothing needs
converting, the same errors (with the same paths) otherwise."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pytest

from eventstore import Codec, CorruptLogError, EventData
from eventstore.generated import slot_setters


@dataclass(frozen=True, kw_only=True, slots=True)
class Point:
    x: float
    y: float = 0.0


@dataclass(frozen=True, kw_only=True, slots=True)
class Track:
    points: tuple[Point, ...]
    names: tuple[str, ...] = ()
    counts: list[int] = dataclasses.field(default_factory=list)
    scores: dict[str, float] = dataclasses.field(default_factory=dict)
    free: dict[str, Any] = dataclasses.field(default_factory=dict)
    widths: tuple[float, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class Checked:
    n: int

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ValueError("n must be >= 0")


@dataclass(frozen=True, kw_only=True, slots=True, init=False)
class Normalised:
    name: str

    def __init__(self, *, name: str) -> None:
        object.__setattr__(self, "name", name.lower())


@dataclass(frozen=True, kw_only=True)
class Plain:  # no slots
    n: int


def decode(cls: type, payload: dict) -> Any:
    return Codec([cls]).decode(EventData(cls.__name__, payload))


def test_records_are_built_without_init_only_where_init_just_stores_the_fields() -> None:
    assert slot_setters(Point, list(dataclasses.fields(Point))) is not None
    for cls in (Checked, Normalised, Plain):
        assert slot_setters(cls, list(dataclasses.fields(cls))) is None
    track = decode(Track, {"points": [{"x": 1, "y": 2.5}, {"x": 0.5}]})
    assert track == Track(points=(Point(x=1.0, y=2.5), Point(x=0.5)))
    assert type(track.points[0].x) is float and track.counts == [] and track.scores == {}
    with pytest.raises(dataclasses.FrozenInstanceError):
        track.points[0].__setattr__("x", 2.0)
    assert decode(Normalised, {"name": "ABC"}).name == "abc"
    assert decode(Plain, {"n": 3}) == Plain(n=3)
    with pytest.raises(CorruptLogError, match="n must be >= 0"):
        decode(Checked, {"n": -1})


def test_lists_and_dicts_are_fresh_copies_converted_where_needed() -> None:
    payload = {"points": [], "names": ["a", "b"], "counts": [1, 2], "scores": {"a": 1, "b": 0.5},
               "free": {"k": [1, {"z": None}]}, "widths": [1, 2.5, True]}
    with pytest.raises(CorruptLogError, match=r"payload\.widths\[2\]: expected a number, got a boolean"):
        decode(Track, payload)
    payload["widths"] = [1, 2.5]
    track = decode(Track, payload)
    assert track.names == ("a", "b") and type(track.names) is tuple
    assert track.widths == (1.0, 2.5) and [type(w) for w in track.widths] == [float, float]
    assert track.scores == {"a": 1.0, "b": 0.5} and type(track.scores["a"]) is float
    assert track.counts is not payload["counts"] and track.scores is not payload["scores"]
    assert track.free == payload["free"] and track.free is not payload["free"]


@pytest.mark.parametrize("change, where", [
    ({"points": [{"x": 1.0}, {"x": "a"}]}, r"payload\.points\[1\]\.x: expected a number, got a string"),
    ({"points": [{"x": 1.0}, {"y": 1.0}]}, r"payload\.points\[1\]: missing field\(s\) \['x'\]"),
    ({"names": ["a", None]}, r"payload\.names\[1\]: expected a string, got null"),
    ({"counts": [1, 2.0]}, r"payload\.counts\[1\]: expected an integer, got a number"),
    ({"counts": [True]}, r"payload\.counts\[0\]: expected an integer, got a boolean"),
    ({"scores": {"a": 1.0, "b": "x"}}, r"payload\.scores\['b'\]: expected a number, got a string"),
    ({"names": "ab"}, r"payload\.names: expected an array, got a string"),
    ({"scores": []}, r"payload\.scores: expected an object, got an array"),
])
def test_a_bad_element_is_named_by_its_path(change: dict, where: str) -> None:
    with pytest.raises(CorruptLogError, match=where):
        decode(Track, {"points": [], **change})
