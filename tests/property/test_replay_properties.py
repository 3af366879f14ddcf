"""Hypothesis properties of the fold: replay composes, and random command sequences keep the invariants."""

from __future__ import annotations

import contextlib
from collections import Counter

from builders import Driver, accept, failure, outcome, register, request, success
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.core.decide import CommandRejected, ResumeRetraining, Rollback
from pipelines.core.events import BlockArrived, ModelPromoted
from pipelines.core.state import replay

block_ids = st.sampled_from(["b1", "b2", "b3", "b4"])
contents = st.sampled_from(["A", "B"])


@st.composite
def commands(draw):
    """One command of any kind, with arguments that collide often (same blocks, same rounds)."""
    kind = draw(st.sampled_from(["accept", "accept", "request", "outcome", "rollback", "resume"]))
    t = draw(st.integers(0, 10_000))
    if kind == "accept":
        bid = draw(block_ids)
        return accept(bid, content=bid + draw(contents), labelled=draw(st.booleans()), t=t)
    round_id = f"r{draw(st.integers(1, 4))}"
    if kind == "request":
        return request(round_id, t=t)
    if kind == "outcome":
        results = draw(st.lists(st.one_of(
            st.builds(success, st.sampled_from(["full", "windowed"]), st.floats(0.5, 1.0)),
            st.builds(failure, st.sampled_from(["stacking"]))), max_size=3))
        champ = draw(st.one_of(st.none(), st.floats(0.5, 1.0)))
        return outcome(round_id, *results, champion=champ, t=t)
    if kind == "rollback":
        return Rollback(to_version=f"v{draw(st.integers(1, 4))}", reason="test", occurred_at="2026-01-01T00:00:00+00:00")
    return ResumeRetraining(reason="test", occurred_at="2026-01-01T00:00:00+00:00")


def run(cmds) -> Driver:
    d = Driver()
    d(register())
    for cmd in cmds:
        with contextlib.suppress(CommandRejected):  # a refused command records nothing
            d(cmd)
    return d


@settings(max_examples=150, deadline=None)
@given(st.lists(commands(), max_size=25), st.integers(0, 25))
def test_replay_of_a_split_log_equals_replay_of_the_whole(cmds, cut) -> None:
    log = run(cmds).log
    cut = min(cut, len(log))
    assert replay(log[cut:], replay(log[:cut])) == replay(log)


@settings(max_examples=150, deadline=None)
@given(st.lists(commands(), max_size=30))
def test_random_commands_never_record_a_block_twice_and_versions_stay_gapless(cmds) -> None:
    d = run(cmds)
    arrived = Counter(e.block_id for e in d.log if isinstance(e, BlockArrived))
    assert all(n == 1 for n in arrived.values())
    assert d.state.version == len(d.log)  # one version per recorded event, no gaps
    assert d.state == replay(d.log)
    assert d.state.counters.blocks == len(d.state.blocks) == len(d.state.block_order)


@settings(max_examples=100, deadline=None)
@given(st.lists(commands(), max_size=30))
def test_the_champion_is_always_a_known_model_and_rounds_close(cmds) -> None:
    d = run(cmds)
    if d.state.champion is not None:
        assert d.state.champion in d.state.models
        assert d.state.models[d.state.champion].status == "champion"
    champions = [v for v, m in d.state.models.items() if m.status == "champion"]
    assert len(champions) <= 1
    promoted = [e for e in d.log if isinstance(e, ModelPromoted)]
    assert all(e.model_version in d.state.models for e in promoted)
