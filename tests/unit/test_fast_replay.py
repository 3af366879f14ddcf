"""`pipelines.replay.fold.fold` equals the fold it speeds up, `reduce(evolve, events, state)`, on every prefix
of random histories (the events of `test_state`, which reach every branch of `evolve` over a few
colliding ids), from a non-empty starting state, on a hand-written life and on the benchmark's log."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.core.events import BlockArrived, DriftChecked, PerformanceEstimated, PerformanceMeasured
from pipelines.core.state import BlockRecord, Counters, PipelineState
from pipelines.core.state import replay as one_event_at_a_time
from pipelines.replay.fold import fold

sys.path.insert(0, str(Path(__file__).parent))
from test_state import ART, concept, events, life  # noqa: E402 - the shared random events

# block events weighted up, as in a real log, so runs of them are long and hit blocks of earlier runs
ids = st.sampled_from(["b1", "b2", "b3", "b4"])
block_events = st.one_of(
    st.builds(BlockArrived, block_id=ids, file=st.just("f.csv"),
              sha256=st.sampled_from(["s1", "s2", "s3"]), rows=st.integers(1, 5), labelled=st.booleans(),
              artifact=st.just(ART), occurred_at=st.sampled_from(["", "2026-01-03T00:00:00+00:00"])),
    st.builds(PerformanceMeasured, block_id=ids, model_version=st.sampled_from(["v1", "v2"]),
              metrics=st.dictionaries(st.just("accuracy"), st.floats(0, 1), max_size=1)),
    st.builds(DriftChecked, block_id=ids, drifted=st.booleans(), reasons=st.just(()), features=st.just(()),
              concept=concept),
    st.builds(PerformanceEstimated, block_id=ids, version=st.sampled_from(["v1", "v2"]),
              metrics=st.dictionaries(st.just("accuracy"), st.floats(0, 1), max_size=1), interval=st.just({})),
)
histories = st.lists(st.one_of(events, block_events, block_events), max_size=60)


def assert_same(fast: PipelineState, reference: PipelineState) -> None:
    assert fast == reference
    assert type(fast.counters) is Counters
    assert all(type(b) is BlockRecord for b in fast.blocks.values())


@settings(max_examples=300, deadline=None)
@given(histories)
def test_replay_equals_the_one_event_at_a_time_fold_after_every_prefix(log: list) -> None:
    for cut in range(len(log) + 1):
        assert_same(fold(log[:cut]), one_event_at_a_time(log[:cut]))


@settings(max_examples=150, deadline=None)
@given(histories, histories)
def test_replay_from_a_state_equals_the_fold_continued_from_it(first: list, second: list) -> None:
    start = one_event_at_a_time(first)
    assert_same(fold(second, start), one_event_at_a_time(second, start))
    assert fold([], start) is start


def test_replay_equals_the_fold_on_a_whole_life_and_on_the_benchmark_log() -> None:
    from benchmarks.replay_bench import synthetic_events

    for log in (life(), list(synthetic_events(5000))):
        assert_same(fold(log), one_event_at_a_time(log))
        assert_same(fold(iter(log)), one_event_at_a_time(log))  # a generator, read once


def test_the_starting_state_is_left_as_it_was() -> None:
    log = life()
    start = one_event_at_a_time(log[:8])
    before = (start.version, dict(start.blocks.items()), start.counters)
    fold(log[8:], start)
    assert (start.version, dict(start.blocks.items()), start.counters) == before
