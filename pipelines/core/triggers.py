"""Which drift starts a round, and where the change began: the rules `decide` applies to a drifted check.

Why a rule and not "any drift retrains": data drift that does not hurt the model is common (a feature's
distribution moves, the decision boundary does not), and a round after every such block costs training and
buys nothing (benchmarks/closed_loop.py: on Elec2 every block drifts). `[retrain] trigger` names the signals
that start a round; any other drift is still recorded (`DriftDetected.starts_round = False`) and shown as a
warning. `cooldown_blocks` holds drift back for a few blocks after a round started. A drift that only
restates a change a round already answered (same change point: a performance drop that goes on block after
block) starts no second round either: the "adapt" rule (`pipelines.core.rounds.adapt_due`) decides when more
rows of that concept are worth another round.

The change point says where the new concept's rows begin, so `since_change` learns from them only and the
holdout is cut from them. It comes from the concept detector's evidence when that fired (its row within the
block, `drift.concept.change_row`), else from the first block that showed the change: a performance drop or
data drift that goes on block after block keeps the change point of its first block, until a model trained
after it serves.

>>> from pipelines.drift.results import DriftAssessment, PerformanceDrift
>>> drop = PerformanceDrift(metric="accuracy", at_promotion=0.9, observed=0.7, tolerance=0.05, drifted=True)
>>> drift_signals(DriftAssessment(drifted=True, reasons=(), features=(), multivariate=None, concept=None,
...                               performance=drop))
('performance',)
"""

from __future__ import annotations

from pipelines.config.retrain import RetrainSettings
from pipelines.core.events import ChangePoint
from pipelines.core.state import PipelineState
from pipelines.drift.results import DriftAssessment

__all__ = ["change_point_of", "drift_signals", "held_back", "post_change_rows"]


def drift_signals(a: DriftAssessment) -> tuple[str, ...]:
    """The signals that fired in a check, in a fixed order: performance, concept, data, estimated."""
    signals = []
    if a.performance is not None and a.performance.drifted:
        signals.append("performance")
    if a.concept is not None and a.concept.drift:
        signals.append("concept")
    if any(f.drifted for f in a.features) or (a.multivariate is not None and a.multivariate.drifted):
        signals.append("data")
    if a.estimated is not None and a.estimated.drifted:
        signals.append("estimated")
    return tuple(signals)


def held_back(state: PipelineState, settings: RetrainSettings, block_id: str, signals: tuple[str, ...],
              point: ChangePoint | None = None) -> str:
    """Why this drift does not start a round, in words; "" when it does.

    >>> held_back(PipelineState(), RetrainSettings(), "b2", ("data",))
    'data drift only warns ([retrain] trigger = performance, concept)'
    """
    if not any(s in settings.trigger for s in signals):
        allowed = ", ".join(settings.trigger) or "nothing"
        return f"{' and '.join(signals) or 'this'} drift only warns ([retrain] trigger = {allowed})"
    block = state.blocks.get(block_id)
    if settings.cooldown_blocks and block is not None and state.last_round_seq:
        since = block.seq - state.last_round_seq
        if since <= settings.cooldown_blocks:
            return (f"within the cooldown: {since} block(s) since round {state.counters.rounds} started "
                    f"([retrain] cooldown_blocks = {settings.cooldown_blocks})")
    a = state.adaptation
    if point is not None and a.rounds and (point.block_id, point.row) == (a.block_id, a.row):
        return (f"the change at {a.block_id} row {a.row} already had {a.rounds} round(s); an adapt round "
                "follows when enough new rows arrive ([retrain] adapt_growth)")
    return ""


def change_point_of(state: PipelineState, block_id: str, a: DriftAssessment,
                    signals: tuple[str, ...], settings: RetrainSettings) -> ChangePoint | None:
    """Where the change this check saw began, by the signals `[retrain] trigger` listens to; None when none of
    them fired (data drift that only warns moves no change point)."""
    heard = [s for s in signals if s in settings.trigger]
    if not heard:
        return None
    if "concept" in heard and a.concept is not None and a.concept.change_rows:
        return ChangePoint(block_id=block_id, row=int(a.concept.change_rows[-1]), signal="concept")
    current = state.adaptation
    champion = state.champion_record()
    known = max((state.blocks[b].seq for b in champion.training_blocks if b in state.blocks), default=0) \
        if champion is not None else 0
    if current.block_id is not None and current.seq > known:
        # the champion learned nothing after the recorded change: this is the same change going on
        return ChangePoint(block_id=current.block_id, row=current.row, signal=current.signal)
    return ChangePoint(block_id=block_id, row=0, signal=heard[0])


def post_change_rows(state: PipelineState, upto_seq: int) -> int:
    """Labelled rows from the recorded change point up to block number `upto_seq` (0 without a change point).

    Counts whole blocks' rows (a partly labelled block counts all its rows): a measure of how much of the
    new concept has arrived, for the "adapt" rule, not a training set.
    """
    a = state.adaptation
    if a.block_id is None or a.seq == 0:
        return 0
    total = 0
    for seq in range(a.seq, upto_seq + 1):
        block = state.blocks.get(state.block_order.get(seq))
        if block is None or not block.labelled:
            continue
        total += block.rows - (a.row if seq == a.seq else 0)
    return max(0, total)
