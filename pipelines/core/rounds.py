"""When a retraining round starts and on which blocks: pure planning over the state.

Two kinds of round: the *initial* round trains the first model once `[training] initial_blocks` labelled
blocks have arrived; a *drift* round follows a `DriftDetected` once there is labelled data the champion
has not seen. The circuit breaker and the one-round-at-a-time rule are enforced by `decide`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.config.pipeline import PipelineConfig
from pipelines.core.state import PipelineState


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
        return RoundPlan(round_id=round_id, block_id=first[-1], trigger="initial", strategies=("full",),
                         labelled_blocks=first, new_blocks=first, seed=seed,
                         reasons=(f"first model: {len(first)} labelled block(s) arrived ([training] "
                                  f"initial_blocks = {config.training.initial_blocks})",))
    if not state.retrain_pending:
        return None
    upto = state.blocks[block_id].seq
    labelled = tuple(b.block_id for b in state.ordered_blocks() if b.labelled and b.seq <= upto)
    seen = set(champion.training_blocks)
    new = tuple(b for b in labelled if b not in seen and state.blocks[b].seq > last_seq(state, seen))
    if not new:
        return None  # drift on unlabelled data: wait for labels the champion has not seen
    return RoundPlan(round_id=round_id, block_id=block_id, trigger="drift", strategies=config.retrain.strategies,
                     labelled_blocks=labelled, new_blocks=new, seed=seed,
                     reasons=(f"drift on {state.last_drift_block}",) + state.drift_reasons)


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
