"""decode(encode(e)) == e for generated events, directly and through a store (JSON text and back)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from hypothesis import given, settings
from hypothesis import strategies as st

from eventstore import Codec, InMemoryEventStore, canonical_json

JSON = Any  # a plain JSON value


@dataclass(frozen=True, kw_only=True, slots=True)
class Artifact:
    artifact_id: str
    sha256: str


@dataclass(frozen=True, kw_only=True, slots=True)
class FeatureDrift:
    feature: str
    statistic: float
    p_value: float | None
    test: Literal["ks", "chi2", "psi"]


@dataclass(frozen=True, kw_only=True, slots=True)
class DriftChecked:
    SCHEMA_VERSION: ClassVar[int] = 2
    block: int
    features: tuple[FeatureDrift, ...]
    drifted: bool
    window: tuple[int, int]
    model: Artifact | None = None
    notes: dict[str, JSON] = field(default_factory=dict)
    history: list[float] = field(default_factory=list)
    label: str | int | None = None


finite = st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)
artifacts = st.builds(
    Artifact, artifact_id=st.text(), sha256=st.text(alphabet="0123456789abcdef", max_size=64)
)
feature_drifts = st.builds(
    FeatureDrift,
    feature=st.text(),
    statistic=finite,
    p_value=st.none() | finite,
    test=st.sampled_from(["ks", "chi2", "psi"]),
)
events = st.builds(
    DriftChecked,
    block=st.integers(),
    features=st.lists(feature_drifts, max_size=4).map(tuple),
    drifted=st.booleans(),
    window=st.tuples(st.integers(), st.integers()),
    model=st.none() | artifacts,
    notes=st.dictionaries(st.text(max_size=6), json_values, max_size=4),
    history=st.lists(finite, max_size=5),
    label=st.none() | st.text() | st.integers(),
)

CODEC = Codec([DriftChecked])


@settings(max_examples=150, deadline=None)
@given(event=events)
def test_decode_of_encode_is_the_identity(event):
    assert CODEC.decode(CODEC.encode(event)) == event


@settings(max_examples=60, deadline=None)
@given(batch=st.lists(events, min_size=1, max_size=4))
def test_events_survive_the_store_and_its_json_text(batch):
    with InMemoryEventStore(codec=CODEC) as store:
        recorded = store.append("p", batch, expected_version=0)
        assert [store.codec.decode(r) for r in store.read("p")] == batch
        assert [r.payload for r in recorded] == [
            json.loads(canonical_json(CODEC.encode(e).payload)) for e in batch
        ]
        assert store.verify().ok
