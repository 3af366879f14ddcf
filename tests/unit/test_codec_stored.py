"""`Codec.decode_stored` (msgspec, straight from the stored JSON text) gives what `Codec.decode` gives from the
parsed payload: the same events with the same Python types, and the same errors, on the pipeline's own event
classes and on field types where msgspec alone would answer differently."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calmops_actors.home import make_codec
from eventstore import Codec, CorruptLogError, EventData, InMemoryEventStore, Stored
from eventstore.codec import _fits_msgspec
from pipelines.core.events import ALL_EVENTS, DriftDetected

sys.path.insert(0, str(Path(__file__).parent))
from test_fast_codec import Checked  # noqa: E402 - a class with a __post_init__ check
from test_state import events  # noqa: E402 - random events of every class the fold reads


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same type all the way down (1 and 1.0 are equal but not the same)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if dataclasses.is_dataclass(a):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    return a == b


def stored(type_: str, text: str, schema_version: int = 1) -> Stored:
    return Stored(7, "s", 1, type_, schema_version, text, "2026-01-01T00:00:00.000000+00:00", "0" * 64)


def through_a_store(codec: Codec, log: list) -> list[tuple[Any, Any]]:
    with InMemoryEventStore(codec=codec) as store:
        store.append("p", log, 0)
        return [(codec.decode(r), codec.decode_stored(s))
                for r, s in zip(store.read("p"), store.iter_stored("p"), strict=True)]


def test_every_pipeline_event_class_takes_the_msgspec_path() -> None:
    assert [c.__name__ for c in ALL_EVENTS if not _fits_msgspec(c, set())] == []


@settings(max_examples=100, deadline=None)
@given(st.lists(events.map(lambda e: e if type(e) in ALL_EVENTS else DriftDetected(block_id="b", reasons=())),
                min_size=1, max_size=20))
def test_random_pipeline_events_decode_the_same_both_ways(log: list) -> None:
    for slow, fast in through_a_store(make_codec(), log):
        assert same(fast, slow)


def test_the_benchmark_log_decodes_the_same_both_ways() -> None:
    from benchmarks.replay_bench import synthetic_events

    pairs = through_a_store(make_codec(), list(synthetic_events(400)))
    assert {type(slow).__name__ for slow, _ in pairs} >= {"DriftChecked", "CandidateTrained", "ModelPromoted"}
    for slow, fast in pairs:
        assert same(fast, slow)


@dataclass(frozen=True, kw_only=True, slots=True)
class Mixed:
    first_float: float | int  # the codec tries float first: 1 becomes 1.0
    n: int = 0


def test_types_msgspec_would_answer_differently_go_the_codec_way() -> None:
    codec = Codec([Mixed, Checked])
    assert not _fits_msgspec(Mixed, set()) and not _fits_msgspec(Checked, set())
    fast = codec.decode_stored(stored("Mixed", '{"first_float":1,"n":2}'))
    assert same(fast, Mixed(first_float=1.0, n=2))
    with pytest.raises(CorruptLogError, match="position 7: Checked v1 payload does not decode.*n must be >= 0"):
        codec.decode_stored(stored("Checked", '{"n":-1}'))


@pytest.mark.parametrize("text", [
    '{"block_id":3,"reasons":[],"occurred_at":""}',  # a wrong type
    '{"reasons":[]}',  # a missing field
    '{"block_id":"b","reasons":"x"}',  # an array expected
])
def test_a_payload_that_does_not_fit_fails_with_decodes_message(text: str) -> None:
    import json

    codec = make_codec()
    with pytest.raises(CorruptLogError) as slow:
        codec.decode(EventData("DriftDetected", json.loads(text)))
    with pytest.raises(CorruptLogError) as fast:
        codec.decode_stored(stored("DriftDetected", text))
    assert str(fast.value) == str(slow.value).replace("unrecorded event", "position 7")


def test_text_that_is_not_a_json_object_is_a_corrupt_log_naming_the_position() -> None:
    codec = make_codec()
    for text in ('{"block_id": "b", ', "[1, 2]"):
        with pytest.raises(CorruptLogError, match="position 7: payload is not"):
            codec.decode_stored(stored("DriftDetected", text))
    with pytest.raises(CorruptLogError, match="position 7: unknown event type 'Nope'"):
        codec.decode_stored(stored("Nope", "{}"))
    with pytest.raises(CorruptLogError, match="only up to v1; this log was written by newer code"):
        codec.decode_stored(stored("DriftDetected", '{"block_id":"b","reasons":[]}', schema_version=2))


def test_a_key_the_class_does_not_have_is_ignored_here_and_refused_by_decode() -> None:
    """The one documented difference (msgspec's rule for dataclasses); `verify` guards the log itself."""
    codec = make_codec()
    text = '{"block_id":"b","reasons":[],"occurred_at":"","extra":1}'
    assert codec.decode_stored(stored("DriftDetected", text)).block_id == "b"
    with pytest.raises(CorruptLogError, match=r"unexpected field\(s\) \['extra'\]"):
        codec.decode(EventData("DriftDetected", {"block_id": "b", "reasons": [], "occurred_at": "", "extra": 1}))
