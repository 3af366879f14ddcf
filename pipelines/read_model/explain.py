"""Readable explanations from a pipeline's events: one line per event, a block's story, a version's lineage.

Pure: everything here reads events (in stream order) and never re-runs a test or loads a model. The
`explain_*` functions return JSON-able dicts (what `calmops explain --json` prints) and `*_lines` turn those
dicts into the lines people read, so both outputs always say the same thing.

>>> from pipelines.core.events import BlockRejected
>>> event_line(BlockRejected(file="a.csv", sha256="0" * 64, reason_code="empty_file", message="a.csv is empty"))
'file a.csv rejected [empty_file]: a.csv is empty'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from pipelines.core.events import (
    ArtifactsPruned,
    BlockArrived,
    BlockRejected,
    CandidateTrained,
    ChallengerEvaluated,
    ChallengerRejected,
    ChangePoint,
    CircuitClosed,
    CircuitOpened,
    ConfigChanged,
    DriftChecked,
    DriftDetected,
    Event,
    LabelsArrived,
    LabelsChecked,
    ModelPromoted,
    ModelRetrained,
    ModelRolledBack,
    PerformanceEstimated,
    PerformanceMeasured,
    PipelineActivated,
    PipelinePassivated,
    PipelineRegistered,
    RetrainFailed,
    RetrainRequested,
    SchemaFixed,
)
from pipelines.core.state import PipelineState, evolve

__all__ = [
    "UnknownSubject",
    "block_lines",
    "event_line",
    "explain_block",
    "explain_version",
    "headline",
    "version_lines",
]

HEADLINE_METRICS = ("accuracy", "r2", "balanced_accuracy", "f1_macro", "roc_auc", "mae", "rmse", "log_loss")


class UnknownSubject(LookupError):
    """The block or version asked about does not appear in the events; the message lists known ones."""


def number(x: float | None) -> str:
    """A metric or statistic for people: 3 decimals, or 2 significant digits when tiny."""
    if x is None:
        return "n/a"
    if x != 0 and abs(x) < 0.001:
        return f"{x:.1e}"
    return f"{x:.3f}"


def headline(metrics: dict[str, float] | None, count: int = 2) -> str:
    """The first `count` metrics people look at first (accuracy or r2 first), as `name value` pairs.

    >>> headline({"log_loss": 0.2, "accuracy": 0.91234, "roc_auc": 0.95})
    'accuracy 0.912, roc_auc 0.950'
    """
    if not metrics:
        return "no metrics"
    names = [m for m in HEADLINE_METRICS if m in metrics] + sorted(m for m in metrics if m not in HEADLINE_METRICS)
    return ", ".join(f"{m} {number(metrics[m])}" for m in names[:count])


def _more(items: Sequence[str], shown: int = 1) -> str:
    if not items:
        return ""
    extra = f" (+{len(items) - shown} more)" if len(items) > shown else ""
    return "; ".join(items[:shown]) + extra


# --- one line per event --------------------------------------------------------------------------


def event_line(event: Event) -> str:  # noqa: C901 - one branch per event type
    """What one event says, in one line (the envelope, version and time are the caller's to add)."""
    match event:
        case PipelineRegistered():
            return f"pipeline {event.name} registered (config {event.config_sha256[:8]})"
        case ConfigChanged():
            keys = ", ".join(d.key for d in event.diff) or "no key"
            return f"config changed ({keys}); now {event.config_sha256[:8]}"
        case SchemaFixed():
            s = event.schema
            return (f"schema fixed from {s.source}: {len(s.features)} feature(s) ({', '.join(s.features[:6])}"
                    f"{', ...' if len(s.features) > 6 else ''}), target {s.target!r}")
        case BlockArrived():
            return (f"block {event.block_id} arrived from {event.file}: {event.rows} rows, "
                    f"{'labelled' if event.labelled else 'unlabelled'}")
        case BlockRejected():
            return f"file {event.file} rejected [{event.reason_code}]: {event.message}"
        case PerformanceMeasured():
            return f"champion {event.model_version} scored on {event.block_id}: {headline(event.metrics)}"
        case PipelinePassivated():
            snap = f", snapshot at version {event.snapshot_version}" if event.snapshot_version else ""
            return f"actor stopped after {event.idle_seconds:.0f} s without work{snap}"
        case PipelineActivated():
            return f"actor started again: {event.reason}"
        case PerformanceEstimated():
            return f"{event.version}'s performance on {event.block_id} estimated without labels: {estimate_text(event)}"
        case LabelsArrived():
            return f"labels for {event.block_id} arrived from {event.file}: {event.rows} rows, joined by {event.key!r}"
        case LabelsChecked():
            verdict = f"DRIFT: {_more(event.reasons)}" if event.drifted else "no drift"
            note = f" ({event.note})" if event.note else ""
            return f"{event.block_id}'s late labels checked against {event.model_version}: {verdict}{note}"
        case DriftChecked():
            if event.drifted:
                return f"{event.block_id} checked: DRIFT: {_more(event.reasons)}"
            top = event.features[0] if event.features else None
            detail = f" (largest effect: {top.name} {number(top.effect)})" if top and top.effect is not None else ""
            return f"{event.block_id} checked: no drift{detail}"
        case DriftDetected():
            signals = f" ({', '.join(event.signals)})" if event.signals else ""
            warning = f"; warning only: {event.held_back}" if not event.starts_round else ""
            return f"drift detected on {event.block_id}{signals}: {_more(event.reasons)}{warning}"
        case RetrainRequested():
            trial = ", trial round" if event.trial else ""
            change = f"; adapting to the change at {event.change_point}" if event.change_point else ""
            reuse = f"; reusing {', '.join(event.reuse)}" if event.reuse else ""
            return (f"round {event.round_id} started after {event.block_id} ({event.trigger}{trial}): "
                    f"{', '.join(event.strategies)} on {len(event.training_blocks)} block(s); {event.holdout}"
                    f"{change}{reuse}")
        case CandidateTrained() if event.strategy == "reuse":
            return (f"candidate {event.model_version} reuses past champion {event.parent_version} in round "
                    f"{event.round_id} (no training)")
        case CandidateTrained():
            parent = f"parent {event.parent_version}" if event.parent_version else "no parent"
            return (f"candidate {event.model_version} trained by {event.strategy} in round {event.round_id} "
                    f"({parent}, {event.rows} rows, {event.seconds:.1f} s)")
        case ChallengerEvaluated():
            versus = f" vs champion {headline(event.champion_metrics, 1)}" if event.champion_metrics else ""
            return f"{event.model_version} scored {headline(event.metrics, 1)}{versus} on the holdout"
        case ModelPromoted():
            replacing = f" replacing {event.previous_version}" if event.previous_version else " (first model)"
            return f"{event.model_version} promoted{replacing}: {event.reason}"
        case ChallengerRejected():
            who = ", ".join(event.model_versions) or "no candidate"
            return f"round {event.round_id} rejected {who}: {event.reason}"
        case RetrainFailed():
            what = "skipped" if event.skipped else "failed"
            return f"strategy {event.strategy} {what} in round {event.round_id}: {event.error}"
        case CircuitOpened():
            return (f"circuit opened after {event.failures} failed round(s): retraining paused until "
                    f"{event.until}")
        case CircuitClosed():
            return f"circuit closed: {event.reason}"
        case ModelRolledBack():
            return f"rolled back from {event.from_version} to {event.to_version}: {event.reason}"
        case ArtifactsPruned():
            return (f"model files of rejected {', '.join(event.model_versions)} pruned ({event.reason}); "
                    "their events stay")
        case ModelRetrained():
            return retrained_line(event)
    return type(event).__name__


def retrained_line(event: ModelRetrained) -> str:
    """A finished round in one line: trigger, strategies, best candidate against the champion, outcome, time.

    >>> from pipelines.core.events import StrategyResult
    >>> retrained_line(ModelRetrained(round_id="r2", trigger="drift", trigger_block="b7", reasons=("x1 moved",),
    ...     strategies=(StrategyResult(strategy="full", outcome="trained", model_version="v2", metric=0.91),
    ...                 StrategyResult(strategy="stacking", outcome="failed", error="boom")),
    ...     metric="accuracy", best_version="v2", best_metric=0.91, champion_version="v1", champion_metric=0.85,
    ...     outcome="promoted", promoted_version="v2", reason="promote v2", seconds=3.25))
    'round r2 (drift on b7) retrained: full trained, stacking failed; best v2 accuracy 0.910 vs champion v1 0.850: promoted v2 (3.2 s)'
    """
    tried = ", ".join(f"{r.strategy} {r.outcome}" for r in event.strategies) or "no strategy"
    best = (f"best {event.best_version} {event.metric} {event.best_metric:.3f}"
            if event.best_version is not None and event.best_metric is not None else "no candidate")
    versus = (f" vs champion {event.champion_version} {event.champion_metric:.3f}"
              if event.champion_version and event.champion_metric is not None else "")
    result = f"promoted {event.promoted_version}" if event.outcome == "promoted" else event.outcome
    trigger = f"{event.trigger} on {event.trigger_block}"
    return f"round {event.round_id} ({trigger}) retrained: {tried}; {best}{versus}: {result} ({event.seconds:.1f} s)"


# --- a block's story -----------------------------------------------------------------------------


def _feature(f: Any) -> dict[str, Any]:
    return dataclasses.asdict(f)


def _round_story(events: Sequence[Event], start: int) -> dict[str, Any]:
    """What happened in the round whose `RetrainRequested` is `events[start]`."""
    req = events[start]
    assert isinstance(req, RetrainRequested)
    story: dict[str, Any] = {
        "round_id": req.round_id, "trigger": req.trigger, "trial": req.trial, "block_id": req.block_id,
        "strategies": list(req.strategies), "training_blocks": list(req.training_blocks),
        "holdout": req.holdout, "seed": req.seed, "candidates": [], "failures": [], "outcome": None,
        "change_point": dataclasses.asdict(req.change_point) if req.change_point else None,
        "reuse": list(req.reuse),
    }
    candidates: dict[str, dict[str, Any]] = {}
    for event in events[start + 1:]:
        match event:
            case CandidateTrained(round_id=req.round_id):
                candidates[event.model_version] = {"version": event.model_version, "strategy": event.strategy,
                                                   "metrics": None, "champion_metrics": None,
                                                   "reused": event.parent_version if event.strategy == "reuse"
                                                   else None}
                story["candidates"].append(candidates[event.model_version])
            case ChallengerEvaluated(round_id=req.round_id) if event.model_version in candidates:
                candidates[event.model_version]["metrics"] = event.metrics
                candidates[event.model_version]["champion_metrics"] = event.champion_metrics
            case RetrainFailed(round_id=req.round_id):
                story["failures"].append({"strategy": event.strategy, "error": event.error,
                                          "skipped": event.skipped})
            case ModelPromoted(round_id=req.round_id):
                story["outcome"] = {"promoted": event.model_version, "previous": event.previous_version,
                                    "reason": event.reason}
            case ChallengerRejected(round_id=req.round_id):
                story["outcome"] = {"rejected": list(event.model_versions), "reason": event.reason}
            case ModelRetrained(round_id=req.round_id):  # the round's summary (logs before it have none)
                story["seconds"] = event.seconds
                story["reasons"] = list(event.reasons)
                break
            case RetrainRequested():  # the next round: this one ended without a summary (an older log)
                break
    return story


def _why_no_round(state: PipelineState) -> str:
    if state.round is not None:
        return f"round {state.round.round_id} was still in flight"
    if state.circuit.open:
        return f"the circuit was open until {state.circuit.until}"
    return "no labelled data the champion had not seen yet"


def explain_block(events: Sequence[Event], block_id: str, top: int = 5) -> dict[str, Any]:
    """A block's story: arrival, the champion's score on it, its drift check (top `top` features), the
    decision that followed, and the round it led to (candidates, promotion or rejection)."""
    state = PipelineState.initial()
    story: dict[str, Any] = {"block_id": block_id, "arrival": None, "rejections": [], "performance": None,
                             "estimate": None, "late_labels": None, "drift": None, "decision": None, "round": None}
    drift_at: int | None = None
    state_after_drift: PipelineState | None = None
    for i, event in enumerate(events):
        state = evolve(state, event)
        match event:
            case BlockArrived(block_id=bid) if bid == block_id:
                story["arrival"] = {"file": event.file, "rows": event.rows, "labelled": event.labelled,
                                    "sha256": event.sha256, "artifact_sha256": event.artifact.sha256,
                                    "at": event.occurred_at, "seq": state.blocks[block_id].seq,
                                    "champion": state.champion}
            case BlockRejected(block_id=bid) if bid == block_id:
                story["rejections"].append({"file": event.file, "reason_code": event.reason_code,
                                            "message": event.message, "at": event.occurred_at})
            case PerformanceMeasured(block_id=bid) if bid == block_id:
                story["performance"] = {"model_version": event.model_version, "metrics": event.metrics}
                if story.get("late_labels") is not None:
                    story["performance"]["late"] = True
            case PerformanceEstimated(block_id=bid) if bid == block_id:
                story["estimate"] = {"model_version": event.version, "metrics": event.metrics,
                                     "interval": {k: list(v) for k, v in event.interval.items()},
                                     "method": event.method}
            case LabelsArrived(block_id=bid) if bid == block_id:
                story["late_labels"] = {"file": event.file, "rows": event.rows, "key": event.key,
                                        "at": event.occurred_at, "checked": None}
            case LabelsChecked(block_id=bid) if bid == block_id and story.get("late_labels") is not None:
                story["late_labels"]["checked"] = {"model_version": event.model_version, "drifted": event.drifted,
                                                   "reasons": list(event.reasons), "note": event.note}
            case DriftChecked(block_id=bid) if bid == block_id:
                drifted = [f.name for f in event.features if f.drifted]
                story["drift"] = {
                    "drifted": event.drifted, "reasons": list(event.reasons),
                    "reference_blocks": list(event.reference_blocks), "features_checked": len(event.features),
                    "drifted_features": drifted, "top_features": [_feature(f) for f in event.features[:top]],
                    "multivariate": _feature(event.multivariate) if event.multivariate else None,
                    "concept": _concept(event.concept) if event.concept else None,
                    "performance": _feature(event.performance) if event.performance else None,
                    "change_point": _feature(event.change_point) if event.change_point else None,
                    "signals": [], "starts_round": None, "held_back": "",
                }
                drift_at, state_after_drift = i, state
            case DriftDetected(block_id=bid) if bid == block_id and story["drift"] is not None:
                story["drift"].update(signals=list(event.signals), starts_round=event.starts_round,
                                      held_back=event.held_back)
                state_after_drift = state
            case RetrainRequested() if story["round"] is None and (
                    event.block_id == block_id or (drift_at is not None and story["drift"]["drifted"])):
                story["round"] = _round_story(events, i)
    if story["arrival"] is None and not story["rejections"]:
        known = [b.block_id for b in state.ordered_blocks()]
        raise UnknownSubject(f"no block {block_id!r} in pipeline {state.name!r}; known blocks: "
                             f"{_listing(known)}")
    story["decision"] = _decision(story, state_after_drift)
    return story


def estimate_text(event: PerformanceEstimated, limit: int = 2) -> str:
    """"accuracy 0.91 [0.89, 0.93], f1_macro 0.90 [0.88, 0.92]": the first metrics with their intervals."""
    parts = []
    for name, value in list(event.metrics.items())[:limit]:
        low, high = event.interval.get(name, (value, value))
        parts.append(f"{name} {value:.3f} [{low:.3f}, {high:.3f}]")
    return ", ".join(parts) or "nothing estimable"


def _concept(concept: Any) -> dict[str, Any]:
    data = _feature(concept)
    data.pop("state", None)  # the detector's internal state: recorded, but noise for people
    return data


def _listing(items: Sequence[str], limit: int = 20) -> str:
    if not items:
        return "none"
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit // 2]) + f", ... ({len(items) - limit} more) ..., " + ", ".join(
        items[-(limit // 2):])


def _decision(story: dict[str, Any], state_after_drift: PipelineState | None) -> str:
    round_ = story["round"]
    drift = story["drift"]
    if story["arrival"] is None:
        return "the file was rejected: nothing else changed"
    if round_ is not None and round_["trigger"] == "initial":
        return f"no model yet: initial round {round_['round_id']} trained the first model"
    late = (story.get("late_labels") or {}).get("checked")
    if late is not None and late["drifted"]:
        then = f"retraining round {round_['round_id']} started" if round_ is not None else "no round started"
        return f"its late labels showed drift (the drift check at arrival did not see it): {then}"
    if drift is None:
        if story["arrival"]["champion"] is None:
            return "no champion yet: no drift check"
        return "not checked for drift"
    if not drift["drifted"]:
        return "no drift: nothing to do"
    if drift.get("starts_round") is False:
        where = f"; round {round_['round_id']} started after {round_['block_id']}" if round_ else ""
        return f"drift recorded as a warning, no round: {drift['held_back']}{where}"
    if round_ is None:
        why = _why_no_round(state_after_drift) if state_after_drift is not None else "unknown"
        return f"drift detected; no round has started since ({why})"
    where = "" if round_["block_id"] == story["block_id"] else f" after block {round_['block_id']}"
    return f"drift detected: retraining round {round_['round_id']} started{where}"


def block_lines(story: dict[str, Any]) -> list[str]:
    """`explain_block`'s dict as lines for people."""
    lines = [f"block {story['block_id']}"]
    arrival = story["arrival"]
    if arrival is not None:
        lines.append(f"  arrived {arrival['at']} from {arrival['file']}: {arrival['rows']} rows, "
                     f"{'labelled' if arrival['labelled'] else 'unlabelled'} (block #{arrival['seq']}, "
                     f"champion then: {arrival['champion'] or 'none'})")
    for r in story["rejections"]:
        lines.append(f"  rejected {r['at']} from {r['file']} [{r['reason_code']}]: {r['message']}")
    estimate = story.get("estimate")
    if estimate is not None:
        shown = [f"{k} {v:.3f} [{estimate['interval'][k][0]:.3f}, {estimate['interval'][k][1]:.3f}]"
                 for k, v in list(estimate["metrics"].items())[:3] if k in estimate["interval"]]
        lines.append(f"  estimated ({estimate['method']}, no labels) for {estimate['model_version']}: "
                     + (", ".join(shown) or "nothing estimable"))
    late = story.get("late_labels")
    if late is not None:
        lines.append(f"  labels arrived later, {late['at']} from {late['file']} ({late['rows']} rows, key "
                     f"{late['key']!r})")
    perf = story["performance"]
    if perf is not None:
        when = "once its labels came" if perf.get("late") else "on arrival"
        lines.append(f"  champion {perf['model_version']} scored on it {when}: {headline(perf['metrics'], 3)}")
    if late is not None and late["checked"] is not None:
        checked = late["checked"]
        verdict = "DRIFT: " + "; ".join(checked["reasons"]) if checked["drifted"] else "no drift"
        lines.append(f"  late labels checked against {checked['model_version']}: {verdict}"
                     + (f" ({checked['note']})" if checked["note"] else ""))
    drift = story["drift"]
    if drift is not None:
        verdict = "DRIFT" if drift["drifted"] else "no drift"
        lines.append(f"  drift check against {', '.join(drift['reference_blocks']) or 'no reference'}: {verdict} "
                     f"({len(drift['drifted_features'])} of {drift['features_checked']} features drifted)")
        for reason in drift["reasons"]:
            lines.append(f"    - {reason}")
        if drift["top_features"]:
            lines.append("  top features by effect:")
            for f in drift["top_features"]:
                mark = "DRIFT" if f["drifted"] else "ok"
                lines.append(f"    {f['name']:<16} {mark:<5} {f['test']} {number(f['statistic'])}, "
                             f"p_adj {number(f['p_adjusted'])}, {f['effect_name']} {number(f['effect'])}"
                             + (f"  ({f['change']})" if f.get("change") else ""))
        mv = drift["multivariate"]
        if mv is not None and mv.get("statistic") is not None:
            lines.append(f"  multivariate {mv['test']}: statistic {number(mv['statistic'])}, p {number(mv['p_value'])}"
                         f" -> {'DRIFT' if mv['drifted'] else 'ok'}")
        concept = drift["concept"]
        if concept is not None:
            began = concept.get("change_rows") or []
            lines.append(f"  concept ({concept['detector']}): {'DRIFT' if concept['drift'] else 'ok'}"
                         + (f" at rows {', '.join(map(str, concept['drift_rows']))}" if concept['drift_rows'] else "")
                         + (f"; the change began near row {', '.join(map(str, began))}" if began else ""))
        point = drift.get("change_point")
        if point is not None:
            lines.append(f"  change point: {ChangePoint(**point)}")
    lines.append(f"  decision: {story['decision']}")
    round_ = story["round"]
    if round_ is not None:
        lines.extend(_round_lines(round_))
    return lines


def _round_lines(round_: dict[str, Any]) -> list[str]:
    lines = [f"  round {round_['round_id']} ({round_['trigger']}{', trial' if round_['trial'] else ''}): "
             f"{', '.join(round_['strategies'])}; holdout {round_['holdout']}"]
    point = round_.get("change_point")
    if point:
        lines.append(f"    adapting to the change at {ChangePoint(**point)}")
    for c in round_["candidates"]:
        versus = (f" vs champion {headline(c['champion_metrics'], 1)}" if c["champion_metrics"] else "")
        label = f"reuse of {c['reused']}" if c.get("reused") else c["strategy"]
        lines.append(f"    candidate {c['version']} ({label}): {headline(c['metrics'], 1)}{versus}")
    for f in round_["failures"]:
        lines.append(f"    {f['strategy']} {'skipped' if f['skipped'] else 'failed'}: {f['error']}")
    outcome = round_["outcome"]
    if outcome is None:
        lines.append("    outcome: still in flight")
    elif "promoted" in outcome:
        lines.append(f"    outcome: {outcome['promoted']} promoted: {outcome['reason']}")
    else:
        lines.append(f"    outcome: rejected: {outcome['reason']}")
    return lines


# --- a version's lineage -------------------------------------------------------------------------


def chain_text(versions: list[str], head: int = 8, tail: int = 2) -> str:
    """A lineage for people: newest first, and a long one shortened in the middle (JSON keeps it whole).

    >>> chain_text(["v3", "v2", "v1"])
    'v3 <- v2 <- v1'
    >>> chain_text([f"v{i}" for i in range(40, 0, -1)], head=3, tail=1)
    'v40 <- v39 <- v38 <- ... 36 more ... <- v1 (40 models)'
    """
    if len(versions) <= head + tail + 1:
        return " <- ".join(versions)
    hidden = len(versions) - head - tail
    return (" <- ".join(versions[:head]) + f" <- ... {hidden} more ... <- " + " <- ".join(versions[-tail:])
            + f" ({len(versions)} models)")


def explain_version(events: Sequence[Event], version: str) -> dict[str, Any]:
    """A model version's lineage: its round and the drift that triggered it, its parent, strategy and
    training blocks, its holdout metrics against the champion it was to replace, and its life since."""
    state = PipelineState.initial()
    trained: CandidateTrained | None = None
    story: dict[str, Any] = {"version": version}
    rounds: dict[str, int] = {}
    history: list[dict[str, Any]] = []
    evaluation = None
    for i, event in enumerate(events):
        state = evolve(state, event)
        match event:
            case RetrainRequested():
                rounds[event.round_id] = i
            case CandidateTrained(model_version=v) if v == version:
                trained = event
            case ChallengerEvaluated(model_version=v) if v == version:
                evaluation = event
            case ModelPromoted(model_version=v) if v == version:
                history.append({"event": "promoted", "at": event.occurred_at, "replacing": event.previous_version,
                                "reason": event.reason})
            case ModelPromoted(previous_version=v) if v == version and trained is not None:
                history.append({"event": "retired", "at": event.occurred_at, "by": event.model_version,
                                "reason": event.reason})
            case ChallengerRejected() if version in event.model_versions:
                history.append({"event": "rejected", "at": event.occurred_at, "reason": event.reason})
            case ModelRolledBack(to_version=v) if v == version:
                history.append({"event": "restored by rollback", "at": event.occurred_at,
                                "from": event.from_version, "reason": event.reason})
            case ModelRolledBack(from_version=v) if v == version:
                history.append({"event": "rolled back", "at": event.occurred_at, "to": event.to_version,
                                "reason": event.reason})
    if trained is None:
        known = sorted(state.models, key=lambda v: int(v[1:]) if v[1:].isdigit() else 0)
        raise UnknownSubject(f"no model version {version!r} in pipeline {state.name!r}; known versions: "
                             f"{_listing(known)}")
    record = state.models[version]
    req_at = rounds.get(trained.round_id)
    request = events[req_at] if req_at is not None else None
    triggers = _triggers(events, req_at)
    story.update({
        "strategy": trained.strategy, "round_id": trained.round_id, "trained_at": trained.occurred_at,
        "parent": trained.parent_version, "lineage": [m.version for m in state.lineage(version)],
        "training_blocks": list(trained.training_blocks), "rows": trained.rows, "seed": trained.seed,
        "params": trained.params, "seconds": trained.seconds, "code_version": trained.code_version,
        "notes": list(trained.notes), "artifact_sha256": trained.artifact.sha256, "status": record.status,
        "is_champion": state.champion == version,
        "metrics": evaluation.metrics if evaluation else None,
        "champion_metrics": evaluation.champion_metrics if evaluation else None,
        "round": None if request is None else {
            "trigger": request.trigger, "block_id": request.block_id, "holdout": request.holdout,
            "strategies": list(request.strategies), "trial": request.trial},
        "triggered_by": triggers,
        "history": history,
    })
    return story


def _triggers(events: Sequence[Event], req_at: int | None) -> list[dict[str, Any]]:
    """The drift detections answered by the round at `events[req_at]`: those since the previous round."""
    if req_at is None:
        return []
    found: list[dict[str, Any]] = []
    checks: dict[str, DriftChecked] = {}
    for event in reversed(events[:req_at]):
        if isinstance(event, RetrainRequested):
            break
        if isinstance(event, DriftChecked):
            checks[event.block_id] = event
        if isinstance(event, DriftDetected):
            found.append({"block_id": event.block_id, "reasons": list(event.reasons)})
    for item in found:
        check = checks.get(item["block_id"])
        item["drifted_features"] = [f.name for f in check.features if f.drifted] if check else []
    return list(reversed(found))


def version_lines(story: dict[str, Any]) -> list[str]:
    """`explain_version`'s dict as lines for people."""
    v = story["version"]
    role = "champion" if story["is_champion"] else story["status"]
    lines = [f"model {v} ({role})",
             f"  trained {story['trained_at']} by strategy {story['strategy']} in round {story['round_id']} "
             f"({story['rows']} rows, seed {story['seed']}, {story['seconds']:.1f} s, code {story['code_version']})",
             f"  parent: {story['parent'] or 'none (first model)'}; lineage: {chain_text(story['lineage'])}",
             f"  training blocks: {', '.join(story['training_blocks']) or 'none'}",
             f"  artifact sha256 {story['artifact_sha256']}"]
    if story["params"]:
        lines.append(f"  params: {', '.join(f'{k}={val}' for k, val in story['params'].items())}")
    for note in story["notes"]:
        lines.append(f"  note: {note}")
    round_ = story["round"]
    if round_ is not None:
        if round_["trigger"] == "initial":
            lines.append(f"  round {story['round_id']}: initial round (the pipeline's first model), after block "
                         f"{round_['block_id']}")
        else:
            lines.append(f"  round {story['round_id']}: started after block {round_['block_id']} "
                         f"({round_['trigger']}{', trial' if round_['trial'] else ''}); holdout {round_['holdout']}")
        for t in story["triggered_by"]:
            lines.append(f"    triggered by drift on {t['block_id']}: {_more(t['reasons'], 2)}")
    if story["metrics"] is not None:
        lines.append(f"  holdout: {headline(story['metrics'], 3)}")
        if story["champion_metrics"]:
            lines.append(f"  champion {story['parent'] or ''} on the same rows: "
                         f"{headline(story['champion_metrics'], 3)}".replace("champion  on", "champion on"))
    for h in story["history"]:
        detail = {"promoted": lambda h: f"replacing {h['replacing'] or 'nothing (first model)'}: {h['reason']}",
                  "retired": lambda h: f"replaced by {h['by']}: {h['reason']}",
                  "rejected": lambda h: h["reason"],
                  "restored by rollback": lambda h: f"from {h['from']}: {h['reason']}",
                  "rolled back": lambda h: f"to {h['to']}: {h['reason']}"}[h["event"]](h)
        lines.append(f"  {h['at']} {h['event']}: {detail}")
    return lines


# --- a state in a few lines ----------------------------------------------------------------------


def reference_blocks(state: PipelineState) -> tuple[str, list[str]]:
    """What the next block's drift check compares with: (rule in words, block ids), per `[drift] reference`."""
    drift = (state.config or {}).get("drift") or {}
    rule = drift.get("reference", "champion_training")
    if rule == "pinned":
        return "pinned blocks", [b for b in drift.get("pinned_blocks") or () if b in state.blocks]
    if rule == "last_blocks":
        n = int(drift.get("reference_blocks", 3))
        return f"last {n} blocks", [b.block_id for b in state.newest_blocks(n)]
    champion = state.champion_record()
    return "the champion's training blocks", list(champion.training_blocks) if champion else []


def state_summary(state: PipelineState) -> dict[str, Any]:
    """The state as people and scripts look at it: champion and lineage, reference, health, circuit, counters."""
    champion = state.champion_record()
    rule, reference = reference_blocks(state)
    last = state.blocks.get(state.last_block) if state.last_block else None
    return {
        "pipeline": state.name, "version": state.version, "last_event_at": state.last_event_at,
        "health": state.health,
        "champion": None if champion is None else {
            "version": champion.version, "strategy": champion.strategy, "round_id": champion.round_id,
            "parent": champion.parent, "training_blocks": list(champion.training_blocks),
            "promoted_at": champion.promoted_at, "metrics": champion.promoted_metrics or champion.holdout_metrics},
        "lineage": [m.version for m in state.lineage(state.champion)] if state.champion else [],
        "reference": {"rule": rule, "blocks": reference},
        "circuit": dataclasses.asdict(state.circuit),
        "round": None if state.round is None else {
            "round_id": state.round.round_id, "trigger": state.round.trigger, "block_id": state.round.block_id,
            "strategies": list(state.round.strategies), "candidates": list(state.round.candidates)},
        "last_block": None if last is None else {"block_id": last.block_id, "arrived_at": last.arrived_at,
                                                 "drifted": last.drifted},
        "retrain_pending": state.retrain_pending,
        # accepted blocks still waiting for a champion or for their drift check: a stuck pipeline shows here
        "pending": state.pending_count,
        "models": len(state.models),
        "counters": dataclasses.asdict(state.counters),
    }


def circuit_words(circuit: dict[str, Any]) -> str:
    if circuit["open"]:
        return f"OPEN until {circuit['until']} after {circuit['consecutive_failures']} failed round(s)"
    extra = f"; last closed: {circuit['last_reason']}" if circuit.get("last_reason") else ""
    return f"closed ({circuit['consecutive_failures']} consecutive failed round(s)){extra}"


def state_lines(summary: dict[str, Any]) -> list[str]:
    """`state_summary`'s dict as lines for people."""
    champion = summary["champion"]
    if champion is None:
        champ = "none yet"
    else:
        champ = (f"{champion['version']} ({champion['strategy']}, round {champion['round_id']}, trained on "
                 f"{len(champion['training_blocks'])} block(s)); {headline(champion['metrics'])}")
    reference = summary["reference"]
    last = summary["last_block"]
    drift = {True: "drifted", False: "no drift", None: "not checked"}[last["drifted"]] if last else ""
    round_ = summary["round"]
    counters = summary["counters"]
    return [
        f"pipeline {summary['pipeline']} at version {summary['version']} (last event {summary['last_event_at']})",
        f"  health      {summary['health']}",
        f"  champion    {champ}",
        f"  lineage     {chain_text(summary['lineage']) or '-'}",
        f"  reference   {reference['rule']}: {', '.join(reference['blocks']) or '-'}",
        f"  circuit     {circuit_words(summary['circuit'])}",
        "  round       " + (f"{round_['round_id']} in flight ({round_['trigger']}, after {round_['block_id']})"
                             if round_ else "none in flight")
        + ("; drift waiting for a round" if summary["retrain_pending"] else ""),
        "  last block  " + (f"{last['block_id']} ({drift}), arrived {last['arrived_at']}" if last else "-"),
        "  counters    " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counters.items()),
    ]
