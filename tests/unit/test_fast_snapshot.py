"""Packed snapshot columns (runs, f64, i64) round-trip exactly, only where they fit, and damaged ones are
refused with the errors `readlog` treats as a cache miss."""

from __future__ import annotations

import json
import math

import pytest

from benchmarks.replay_bench import synthetic_events
from eventstore import canonical_json
from pipelines.core.events import BlockArrived, PerformanceMeasured
from pipelines.core.state import PipelineState, evolve, replay
from pipelines.replay import snapshot
from pipelines.replay.column_map import ColumnMap


def through_json(state: PipelineState) -> PipelineState:
    return snapshot.from_dict(json.loads(canonical_json(snapshot.to_dict(state))))


LONG = replay(synthetic_events(3 * snapshot.PACK_FROM * 3))  # hundreds of blocks: every packing is used


def test_a_long_state_round_trips_through_packed_columns() -> None:
    data = json.loads(canonical_json(snapshot.to_dict(LONG)))
    blocks = data["blocks"]
    assert set(blocks["rows"]) == {"runs"} and blocks["seq"] == {"range": [1, len(LONG.blocks)]}
    assert data["block_order"][0] == {"range": [1, len(LONG.blocks)]}
    assert set(blocks["metrics"]["values"]) == {"f64"} and isinstance(blocks["block_id"], list)
    assert None in [b.metrics for b in LONG.blocks.values()]  # the first block was never scored
    back = snapshot.from_dict(data)
    assert back == LONG
    for key, block in LONG.blocks.items():  # same types, not only equal values
        other = back.blocks[key]
        assert type(other.rows) is int and type(other.labelled) is bool
        assert block.metrics is None or all(type(v) is float for v in other.metrics.values())
        assert block.metrics is None or list(block.metrics) == list(other.metrics)


def test_values_that_do_not_pack_exactly_stay_json_lists() -> None:
    n = snapshot.PACK_FROM
    assert snapshot._column([1.0] * (n - 1)) == [1.0] * (n - 1)  # short
    mixed = [1.5, 2] * n  # an int among floats would come back as a float
    assert snapshot._column(mixed) == mixed
    huge = [2**63 + 2 * i for i in range(n)]  # beyond int64
    assert snapshot._column(huge) == huge
    floats = [-0.0, 5e-324, 1.7976931348623157e308, 0.1, -2.5] * n
    packed = json.loads(canonical_json(snapshot._column(floats)))
    unpacked = snapshot._values(packed)
    assert [math.copysign(1, v) for v in unpacked] == [math.copysign(1, v) for v in floats] and unpacked == floats
    flags = [True, 1, None, "1"] * n  # runs keep types apart: True, 1 and "1" are different runs
    assert snapshot._values(json.loads(canonical_json(snapshot._column(flags)))) == flags
    same = [True] * n + [1] * n
    back = snapshot._values(json.loads(canonical_json(snapshot._column(same))))
    assert [type(v) for v in back] == [bool] * n + [int] * n


def test_metrics_with_other_keys_or_ints_round_trip() -> None:
    state = LONG
    first = next(iter(state.blocks))
    state = evolve(state, PerformanceMeasured(block_id=first, model_version="v1", metrics={"auc": 1, "f1": 0.5}))
    state = evolve(state, BlockArrived(block_id="new", file="n.csv", sha256="n", rows=3, labelled=False,
                                       artifact=state.blocks[first].artifact))
    back = through_json(state)
    assert back == state and type(back.blocks[first].metrics["auc"]) is int


@pytest.mark.parametrize("damage", [
    lambda d: d["blocks"]["rows"]["runs"].append(["x", 1]),
    lambda d: d["blocks"]["rows"]["runs"][0].__setitem__(1, -1),
    lambda d: d["blocks"]["rows"].__setitem__("runs", [[{"a": 1}, 2]]),
    lambda d: d["blocks"].__setitem__("seq", {"i64": "AAAAAAAAAAA="}),
    lambda d: d["blocks"].__setitem__("seq", {"i64": "not base64!"}),
    lambda d: d["blocks"].__setitem__("seq", {"range": [1, -5]}),
    lambda d: d["blocks"].__setitem__("seq", {"range": [1.5, 3]}),
    lambda d: d["block_order"].__setitem__(0, {"range": [1]}),
    lambda d: d["block_order"].__setitem__(0, {"range": [1, 3]}),
    lambda d: d["blocks"].__setitem__("seq", {"i32": ""}),
    lambda d: d["blocks"].__setitem__("seq", {"i64": "", "runs": []}),
    lambda d: d["blocks"]["metrics"]["values"].__setitem__("f64", ""),
    lambda d: d["blocks"]["metrics"]["keys"][0].append("accuracy"),
    lambda d: d["blocks"]["metrics"].__setitem__("shape", [5] * len(LONG.blocks)),
])
def test_damaged_packed_columns_are_refused(damage) -> None:
    data = json.loads(canonical_json(snapshot.to_dict(LONG)))
    damage(data)
    with pytest.raises((KeyError, TypeError, ValueError)):
        snapshot.from_dict(data)


def test_consecutive_ints_pack_as_a_range_and_nothing_else_does() -> None:
    n = snapshot.PACK_FROM
    for values in ([*range(5, 5 + n)], [*range(-3, n)]):
        packed = snapshot._column(values)
        assert packed == {"range": [values[0], len(values)]} and snapshot._values(packed) == values
    for values in ([*range(n)][::-1], [*range(n), n + 1], [True, *range(2, n + 1)]):
        assert "range" not in snapshot._column(values)


def test_a_loaded_state_keeps_its_blocks_in_columns_until_they_are_read() -> None:
    back = through_json(LONG)
    blocks = back.blocks
    assert isinstance(blocks, ColumnMap) and isinstance(back.files, ColumnMap)
    newest = LONG.block_order[len(LONG.block_order)]
    assert blocks[newest] == LONG.blocks[newest]
    assert blocks._rows._index is None  # the newest block was found without building the index
    assert blocks.get("nope") is None and blocks._rows._index is not None
    assert len(back.block_order) == len(LONG.block_order) and back.block_order._rows._index is not None


def test_a_tail_folded_onto_a_loaded_state_equals_the_fold_from_the_first_event() -> None:
    from pipelines.replay.fold import fold as fast

    log = list(synthetic_events(3000))
    for cut in (len(log) // 3, len(log) - 40, len(log) - 1):
        loaded = through_json(replay(log[:cut]))
        expected = replay(log)
        assert fast(log[cut:], loaded) == expected
        assert replay(log[cut:], loaded) == expected
        assert through_json(fast(log[cut:], loaded)) == expected  # a snapshot of a loaded state, again


def test_newest_blocks_are_the_tail_of_the_ordered_blocks() -> None:
    for state in (LONG, through_json(LONG)):
        for n in (-2, 0, 1, 3, len(LONG.block_order) + 2):
            assert state.newest_blocks(n) == LONG.ordered_blocks()[-n:]
