"""When a retraining round starts and on which blocks: pure planning over the state.

Three kinds of round: the *initial* round trains the first model once `[training] initial_blocks` labelled
blocks have arrived; a *drift* round follows a `DriftDetected` that starts a round (`[retrain] trigger`) once
there is labelled data the champion has not seen; an *adapt* round follows a change point when enough more
rows of the new concept have arrived to train a better model than the last round could (`adapt_due`). The
circuit breaker and the one-round-at-a-time rule are enforced by `decide`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.config.pipeline import PipelineConfig
from pipelines.core.decide import version_number
from pipelines.core.events import ChangePoint
from pipelines.core.state import PipelineState
from pipelines.core.triggers import post_change_rows


@dataclass(frozen=True, kw_only=True, slots=True)
class RoundPlan:
    round_id: str
    block_id: str
    trigger: str  # "initial" | "drift"
    strategies: tuple[str, ...]
    labelled_blocks: tuple[str, ...]  # every labelled block, oldest first (the holdout is cut from the newest)
    new_blocks: tuple[str, ...]  # labelled blocks the champion was not trained on
    seed: int
    reasons: tuple[str, ...] = ()  # why, in words (recorded in RetrainRequested and ModelRetrained)
    change_point: ChangePoint | None = None
    change_rows: int = 0
    recent_blocks: tuple[str, ...] = ()  # labelled blocks since the previous round started
    reuse: tuple[str, ...] = ()  # set when a recorded round is re-issued (a new round picks them after the holdout)


def plan_round(state: PipelineState, config: PipelineConfig, block_id: str) -> RoundPlan | None:
    """The round to start after `block_id` was checked, or None when none is due.

    A round learns only from blocks that arrived up to `block_id`: every one of them has had its check, so
    no block is ever checked against a model trained on it. The first model learns from the first
    `[training] initial_blocks` labelled blocks, however many more arrived before it was trained; the rest
    wait for it (`PipelineState.pending_blocks`).

    >>> plan_round(PipelineState(), None, "b1") is None
    True
    """
    if state.round is not None or state.schema is None or block_id not in state.blocks:
        return None
    seed = config.training.seed + state.counters.rounds
    round_id = f"r{state.counters.rounds + 1}"
    champion = state.champion_record()
    if champion is None:
        first = first_labelled(state, config.training.initial_blocks)
        if len(first) < config.training.initial_blocks:
            return None
        start = None
        if config.retrain.adapt_from_start:  # history growing on a stable stream earns adapt rounds too
            start = ChangePoint(block_id=first[0], row=0, signal="start")
        return RoundPlan(round_id=round_id, block_id=first[-1], trigger="initial", strategies=("full",),
                         labelled_blocks=first, new_blocks=first, seed=seed, change_point=start,
                         change_rows=sum(state.blocks[b].rows for b in first) if start else 0,
                         recent_blocks=first,
                         reasons=(f"first model: {len(first)} labelled block(s) arrived ([training] "
                                  f"initial_blocks = {config.training.initial_blocks})",))
    upto = state.blocks[block_id].seq
    if state.retrain_pending:
        trigger = "drift"
        reasons = (f"drift on {state.last_drift_block}",) + state.drift_reasons
    else:
        why = adapt_due(state, config, upto)
        if why is None:
            return None
        trigger, reasons = "adapt", (why,)
    labelled = tuple(b.block_id for b in state.ordered_blocks() if b.labelled and b.seq <= upto)
    seen = set(champion.training_blocks)
    new = tuple(b for b in labelled if b not in seen and state.blocks[b].seq > last_seq(state, seen))
    if not new:
        return None  # drift on unlabelled data: wait for labels the champion has not seen
    point = labelled_change_point(state)
    recent = tuple(b for b in labelled if state.blocks[b].seq > state.last_round_seq)
    return RoundPlan(round_id=round_id, block_id=block_id, trigger=trigger, strategies=config.retrain.strategies,
                     labelled_blocks=labelled, new_blocks=new, seed=seed, reasons=reasons, change_point=point,
                     change_rows=post_change_rows(state, upto), recent_blocks=recent)


def adapt_due(state: PipelineState, config: PipelineConfig, upto_seq: int) -> str | None:
    """Why an "adapt" round is due after block number `upto_seq`, in words; None when it is not.

    Rule: after a change point, the first round learns from the few new-concept rows there are; the model it
    promotes (or the champion it kept) is half adapted. Another round starts once the labelled rows after the
    change point have grown by `[retrain] adapt_growth` (x3: 1 block of rows, then 3, 9) since the last
    round for this change, for at most `adapt_max_rounds` rounds, and never again for this change once an
    adapt round promoted nothing (`Adaptation.settled`: more rows did not help). So a change costs at most
    1 + `adapt_max_rounds` rounds, spaced ever wider: no round storm.
    """
    a, settings = state.adaptation, config.retrain
    if a.block_id is None or a.settled or a.rounds == 0 or a.adapt_rounds >= settings.adapt_max_rounds:
        return None
    rows = post_change_rows(state, upto_seq)
    if rows < settings.adapt_growth * max(a.rows_at_last_round, 1):
        return None
    return (f"{rows} labelled rows since the change at {a.block_id} row {a.row} ({a.signal}), "
            f"x{rows / max(a.rows_at_last_round, 1):.1f} the {a.rows_at_last_round} of the last round for it "
            f"([retrain] adapt_growth = {settings.adapt_growth:g}; adapt round {a.adapt_rounds + 1} of at most "
            f"{settings.adapt_max_rounds})")


def labelled_change_point(state: PipelineState) -> ChangePoint | None:
    """The recorded change point, moved to the first labelled block at or after it (row 0 when moved): data
    drift may place a change on a block without labels, and rounds learn from labelled rows."""
    a = state.adaptation
    if a.block_id is None or a.block_id not in state.blocks:
        return None
    if state.blocks[a.block_id].labelled:
        return ChangePoint(block_id=a.block_id, row=a.row, signal=a.signal)
    for seq in range(a.seq + 1, len(state.block_order) + 1):
        block = state.blocks[state.block_order[seq]]
        if block.labelled:
            return ChangePoint(block_id=block.block_id, row=0, signal=a.signal)
    return None


def reusable(state: PipelineState, n: int, holdout_blocks: tuple[str, ...]) -> tuple[str, ...]:
    """The past champions a round scores as `reuse` candidates: the newest `n` distinct models (by artifact)
    that served before, not the champion, not pruned, and not trained on any holdout block (so no candidate's
    score comes from rows it learned).

    >>> reusable(PipelineState(), 5, ())
    ()
    """
    if n <= 0:
        return ()
    champion = state.champion_record()
    seen = {champion.artifact.sha256} if champion is not None else set()
    held = set(holdout_blocks)
    chosen: list[str] = []
    served = sorted((m for m in state.models.values() if m.promoted_at is not None and not m.pruned),
                    key=lambda m: (m.promoted_at, version_number(m.version)), reverse=True)
    for m in served:
        if len(chosen) == n:
            break
        if m.version == state.champion or m.artifact.sha256 in seen or held & set(m.training_blocks):
            continue
        seen.add(m.artifact.sha256)
        chosen.append(m.version)
    return tuple(chosen)


def first_labelled(state: PipelineState, n: int) -> tuple[str, ...]:
    """The first `n` labelled blocks in arrival order (fewer when fewer arrived)."""
    first: list[str] = []
    for b in state.ordered_blocks():
        if len(first) == n:
            break
        if b.labelled:
            first.append(b.block_id)
    return tuple(first)


def last_seq(state: PipelineState, block_ids: set[str]) -> int:
    """The newest of these blocks' arrival numbers (0 when none)."""
    return max((state.blocks[b].seq for b in block_ids if b in state.blocks), default=0)
