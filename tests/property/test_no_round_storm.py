"""No round storm, whatever the drift: a change point costs at most one drift round and `adapt_max_rounds`
adapt rounds, adapt rounds need the new concept's rows to have grown by `adapt_growth`, and drift that the
trigger does not list never starts a round."""

from __future__ import annotations

from collections import Counter

from builders import accept
from hypothesis import given, settings
from hypothesis import strategies as st
from loop_builders import DROP, MOVED, check, concept, finish, model, pipeline, start

from pipelines.core.events import RetrainRequested
from pipelines.core.rounds import plan_round

SIGNALS = st.sampled_from(["none", "none", "performance", "concept", "data", "both"])


@settings(max_examples=60, deadline=None)
@given(signals=st.lists(SIGNALS, min_size=5, max_size=40), promotes=st.lists(st.booleans(), min_size=40,
                                                                              max_size=40))
def test_every_change_point_costs_a_bounded_number_of_rounds(signals: list[str], promotes: list[bool]) -> None:
    run, cfg = pipeline()  # v1 learned from b1
    outcomes = iter(promotes)
    for i, signal in enumerate(signals, start=2):
        block = f"b{i}"
        run(accept(block))
        kw = {"none": {}, "performance": {"performance": DROP}, "concept": {"concept_": concept(i % 10)},
              "data": {"features": (MOVED,)}, "both": {"performance": DROP, "concept_": concept(0)}}[signal]
        run(check(block, **kw))
        plan = plan_round(run.state, cfg, block)
        if plan is None:
            continue
        assert signal not in ("none", "data") or plan.trigger == "adapt", "only the trigger's signals start drift rounds"
        start(run, plan)
        better = next(outcomes)
        finish(run, plan.round_id, model(f"m{i}", 0.95 if better else 0.5, ("b1",)), champion=0.6)

    rounds = [e for e in run.log if isinstance(e, RetrainRequested) and e.trigger != "initial"]
    per_change = Counter((e.change_point.block_id, e.change_point.row) for e in rounds)
    limit = 1 + cfg.retrain.adapt_max_rounds
    assert all(n <= limit for n in per_change.values()), per_change
    adapt = [e for e in rounds if e.trigger == "adapt"]
    by_change: dict = {}
    for e in rounds:
        by_change.setdefault((e.change_point.block_id, e.change_point.row), []).append(e)
    for chain in by_change.values():
        for before, after in zip(chain, chain[1:], strict=False):
            if after.trigger == "adapt":
                assert after.change_rows >= cfg.retrain.adapt_growth * max(before.change_rows, 1)
    assert len(adapt) <= cfg.retrain.adapt_max_rounds * max(1, len(per_change))
