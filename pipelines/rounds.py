"""When a retraining round starts and on which blocks: pure planning over the state.

Two kinds of round: the *initial* round trains the first model once `[training] initial_blocks` labelled
blocks have arrived; a *drift* round follows a `DriftDetected` once there is labelled data the champion
has not seen. The circuit breaker and the one-round-at-a-time rule are enforced by `decide`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.config import PipelineConfig
from pipelines.state import PipelineState


@dataclass(frozen=True, kw_only=True, slots=True)
class RoundPlan:
    round_id: str
    block_id: str
    trigger: str  # "initial" | "drift"
    strategies: tuple[str, ...]
    labelled_blocks: tuple[str, ...]  # every labelled block, oldest first (the holdout is cut from the newest)
    new_blocks: tuple[str, ...]  # labelled blocks the champion was not trained on
    seed: int


def plan_round(state: PipelineState, config: PipelineConfig, block_id: str) -> RoundPlan | None:
    """The round to start after `block_id` was checked, or None when none is due.

    >>> plan_round(PipelineState(), None, "b1") is None
    True
    """
    if state.round is not None or state.schema is None:
        return None
    labelled = tuple(b.block_id for b in state.ordered_blocks() if b.labelled)
    seed = config.training.seed + state.counters.rounds
    round_id = f"r{state.counters.rounds + 1}"
    champion = state.champion_record()
    if champion is None:
        if len(labelled) < config.training.initial_blocks:
            return None
        return RoundPlan(round_id=round_id, block_id=block_id, trigger="initial", strategies=("full",),
                         labelled_blocks=labelled, new_blocks=labelled, seed=seed)
    if not state.retrain_pending:
        return None
    seen = set(champion.training_blocks)
    new = tuple(b for b in labelled if b not in seen and state.blocks[b].seq > last_seq(state, seen))
    if not new:
        return None  # drift on unlabelled data: wait for labels the champion has not seen
    return RoundPlan(round_id=round_id, block_id=block_id, trigger="drift", strategies=config.retrain.strategies,
                     labelled_blocks=labelled, new_blocks=new, seed=seed)


def last_seq(state: PipelineState, block_ids: set[str]) -> int:
    """The newest of these blocks' arrival numbers (0 when none)."""
    return max((state.blocks[b].seq for b in block_ids if b in state.blocks), default=0)
