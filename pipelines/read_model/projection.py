"""The UI's read tables as one pure fold over recorded events: which rows each fact adds or changes.

`fold(recorded, event, lookup)` returns the rows (`Put`) that one recorded event writes; `lookup(table,
key)` gives the current row of a table (or None). Nothing here touches a database: `TABLES` describes the
tables with plain types and `calmops_actors/projector.py` runs the fold through the event store's
`ProjectionRunner`, which commits each batch's rows with its checkpoint in one transaction.

The `pipelines` row mirrors `PipelineState` (counters, champion, circuit, `health`) so the overview needs no
replay; `tests/ui/test_queries.py` checks it against `replay` of the real log.

>>> from types import SimpleNamespace
>>> from pipelines.core.events import PipelineRegistered
>>> rec = SimpleNamespace(position=1, stream_id="pipeline-p", version=1, type="PipelineRegistered",
...                       payload={"name": "p"}, recorded_at="2026-01-01T00:00:00+00:00")
>>> rows = fold(rec, PipelineRegistered(name="p", config_sha256="ab", config={"task": "regression"}),
...             lambda table, key: None)
>>> sorted(put.table for put in rows)
['events', 'health_history', 'pipelines']
>>> [put.row for put in rows if put.table == "pipelines"][0]["metric"]
'r2'
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipelines.core.events import (
    AlertDelivered,
    AlertFailed,
    ArtifactsPruned,
    BlockArrived,
    BlockRejected,
    CandidateTrained,
    ChallengerEvaluated,
    ChallengerRejected,
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

__all__ = [
    "ALERT_TYPES",
    "alert_words",
    "RECENT_BLOCKS",
    "STREAM_PREFIX",
    "TABLES",
    "Lookup",
    "Put",
    "Table",
    "drift_signals",
    "fold",
    "health_of",
    "metric_of",
    "summarize",
]

STREAM_PREFIX = "pipeline-"
RECENT_BLOCKS = 10  # the overview's "drift over the last blocks" window
ALERT_TYPES = frozenset(
    {"DriftDetected", "BlockRejected", "ChallengerRejected", "RetrainFailed", "CircuitOpened", "ModelRolledBack"}
)


@dataclass(frozen=True, slots=True)
class Table:
    """A read table: column name -> SQLite type, primary key columns, extra indexes."""

    columns: dict[str, str]
    key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class Put:
    """Make `row` (key columns included) the row with that key."""

    table: str
    row: dict[str, Any]


Lookup = Callable[[str, tuple[Any, ...]], "dict[str, Any] | None"]

T, N, R = "TEXT", "INTEGER", "REAL"  # text, integer (N), real

TABLES: dict[str, Table] = {
    "pipelines": Table(
        {"pipeline": T, "registered_at": T, "config_sha256": T, "task": T, "metric": T, "tolerance": R,
         "features": T, "champion": T, "champion_strategy": T, "champion_since": T, "last_block": T,
         "last_block_at": T, "blocks": N, "rows": N, "rejected_files": N, "drift_checks": N, "drifts": N,
         "rounds": N, "candidates": N, "promotions": N, "challenger_rejections": N, "failures": N,
         "rollbacks": N, "current_round": T, "circuit": T, "circuit_until": T, "consecutive_failures": N,
         "openings": N, "circuit_reason": T, "last_check_drifted": N, "recent_drift": T,
         "recent_drifted": N, "recent_checked": N, "last_metric": R, "health": T, "alerts": N,
         "last_alert": T, "last_alert_type": T, "last_alert_at": T, "events": N, "last_event_at": T,
         "last_position": N, "last_metric_block": T, "last_metric_seq": N, "last_metric_version": T,
         "last_labelled_seq": N, "last_estimate": R, "last_estimate_low": R, "last_estimate_high": R,
         "last_estimate_block": T, "last_estimate_version": T, "activity": T},
        ("pipeline",)),
    "blocks": Table(
        {"pipeline": T, "block_id": T, "seq": N, "file": T, "sha256": T, "rows": N, "labelled": N,
         "arrived_at": T, "position": N, "champion": T, "drifted": N, "features_drifted": N,
         "top_feature": T, "top_effect": R, "multivariate_drifted": N, "concept_drift": N,
         "performance_drifted": N, "reasons": T, "drift_warning": N, "signals": T, "held_back": T,
         "change_point": T, "artifact_sha256": T, "artifact_kind": T, "artifact_size": N,
         "reference_blocks": T, "labels_arrived_at": T},
        ("pipeline", "block_id"), (("pipeline", "seq"),)),
    "drift_features": Table(
        {"pipeline": T, "block_id": T, "feature": T, "seq": N, "rank": N, "kind": T, "test": T,
         "statistic": R, "p_value": R, "p_adjusted": R, "effect": R, "effect_name": T, "drifted": N,
         "change": T, "note": T, "min_effect": R, "alpha": R},
        ("pipeline", "block_id", "feature"), (("pipeline", "seq"),)),
    "performance": Table(
        {"pipeline": T, "block_id": T, "seq": N, "model_version": T, "metric": T, "value": R,
         "metrics": T, "at_promotion": R, "tolerance": R, "higher_is_better": N, "drifted": N,
         "measured_at": T, "position": N, "late": N},
        ("pipeline", "block_id"), (("pipeline", "seq"),)),
    # the champion's estimated performance per block (no labels needed), beside `performance` (measured)
    "estimates": Table(
        {"pipeline": T, "block_id": T, "seq": N, "model_version": T, "metric": T, "value": R, "low": R,
         "high": R, "metrics": T, "interval": T, "method": T, "at_promotion": R, "tolerance": R, "drifted": N,
         "estimated_at": T, "position": N},
        ("pipeline", "block_id"), (("pipeline", "seq"),)),
    "models": Table(
        {"pipeline": T, "version": T, "number": N, "strategy": T, "parent": T, "round_id": T,
         "training_blocks": T, "n_training_blocks": N, "rows": N, "seconds": R, "seed": N, "params": T,
         "notes": T, "code_version": T, "artifact_sha256": T, "artifact_size": N, "artifact_format": T,
         "trained_at": T, "status": T, "holdout_metrics": T, "champion_metrics": T, "score": R,
         "champion_score": R, "promoted_at": T, "promoted_metrics": T, "promotion_reason": T,
         "retired_at": T, "position": N, "pruned": N},
        ("pipeline", "version"), (("pipeline", "number"), ("pipeline", "round_id"))),
    "rounds": Table(
        {"pipeline": T, "round_id": T, "number": N, "block_id": T, "block_seq": N, "trigger": T,
         "trial": N, "strategies": T, "training_blocks": T, "n_training_blocks": N, "holdout_blocks": T,
         "holdout": T, "seed": N, "started_at": T, "ended_at": T, "outcome": T, "promoted_version": T,
         "reason": T, "candidates": T, "failures": T, "position": N, "reasons": T, "seconds": R,
         "change_point": T, "reuse": T},
        ("pipeline", "round_id"), (("pipeline", "number"),)),
    "rejected_files": Table(
        {"pipeline": T, "position": N, "file": T, "sha256": T, "reason_code": T, "message": T,
         "block_id": T, "occurred_at": T},
        ("pipeline", "position")),
    "champion_changes": Table(
        {"pipeline": T, "position": N, "kind": T, "from_version": T, "to_version": T, "block_seq": N,
         "block_id": T, "reason": T, "occurred_at": T},
        ("pipeline", "position")),
    "health_history": Table(
        {"pipeline": T, "position": N, "occurred_at": T, "health": T, "circuit": T, "cause": T,
         "detail": T},
        ("pipeline", "position")),
    "events": Table(
        {"position": N, "pipeline": T, "stream_id": T, "version": N, "type": T, "occurred_at": T,
         "recorded_at": T, "summary": T, "payload": T},
        ("position",), (("pipeline", "position"), ("type", "position"), ("recorded_at",))),
}


def fold(recorded: Any, event: Event | None, lookup: Lookup) -> list[Put]:
    """The rows one recorded event writes; `event` is its decoded form (None when it could not be decoded).

    `recorded` needs `position, stream_id, version, type, payload, recorded_at` (an eventstore `Recorded`).
    """
    occurred = getattr(event, "occurred_at", "") or recorded.recorded_at
    name = recorded.stream_id[len(STREAM_PREFIX):] if recorded.stream_id.startswith(STREAM_PREFIX) else None
    feed = {
        "position": recorded.position, "pipeline": name, "stream_id": recorded.stream_id,
        "version": recorded.version, "type": recorded.type, "occurred_at": occurred,
        "recorded_at": recorded.recorded_at, "payload": _json(recorded.payload),
    }
    if isinstance(event, AlertDelivered | AlertFailed):  # the dispatcher's stream: shown with the pipeline it is about
        return [Put("events", {**feed, "pipeline": event.pipeline, "summary": summarize(event)})]
    if name is None or event is None:
        reason = "not a pipeline stream" if name is None else "not understood by this version of calmops"
        return [Put("events", {**feed, "summary": f"{recorded.type} ({reason})"})]
    stored = lookup("pipelines", (name,))
    p = dict(stored) if stored is not None else _new_pipeline(name)
    before = (p["health"], p["circuit"]) if stored is not None else None
    step = _Step(name, recorded.position, occurred, p, lookup)
    step.apply(event)
    # idle: stopped for lack of work (or registered, nothing done yet); a later fact means its actor ran again
    p["activity"] = "idle" if isinstance(event, PipelinePassivated | PipelineRegistered) else "active"
    p["events"] += 1
    p["last_position"] = recorded.position
    p["last_event_at"] = occurred
    summary = summarize(event, p["metric"])
    if recorded.type in ALERT_TYPES and not (isinstance(event, RetrainFailed) and event.skipped):
        p["alerts"] += 1
        p["last_alert"], p["last_alert_type"], p["last_alert_at"] = summary, recorded.type, occurred
    p["health"] = health_of(p)
    if (p["health"], p["circuit"]) != before or isinstance(event, CircuitOpened | CircuitClosed):
        step.put("health_history", {
            "pipeline": name, "position": recorded.position, "occurred_at": occurred, "health": p["health"],
            "circuit": p["circuit"], "cause": recorded.type, "detail": summary})
    return [*step.puts, Put("pipelines", p), Put("events", {**feed, "summary": summary})]


def health_of(p: dict[str, Any]) -> str:
    """The same word as `PipelineState.health`: waiting, paused, retraining, drifting or ok."""
    if p["champion"] is None:
        return "waiting"
    if p["circuit"] == "open":
        return "paused"
    if p["current_round"] is not None:
        return "retraining"
    if p["last_check_drifted"]:
        return "drifting"
    return "ok"


def metric_of(config: dict[str, Any] | None) -> str:
    """The metric promotion ranks by (as `retraining.primary_metric`): `[retrain] metric`, else by task."""
    config = config or {}
    configured = (config.get("retrain") or {}).get("metric")
    if configured:
        return str(configured)
    return "r2" if config.get("task") == "regression" else "accuracy"


def _new_pipeline(name: str) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(TABLES["pipelines"].columns)
    counters = ("blocks", "rows", "rejected_files", "drift_checks", "drifts", "rounds", "candidates",
                "promotions", "challenger_rejections", "failures", "rollbacks", "consecutive_failures",
                "openings", "recent_drifted", "recent_checked", "alerts", "events")
    row.update(dict.fromkeys(counters, 0), pipeline=name, circuit="closed", recent_drift="[]",
               metric="accuracy", health="waiting")
    return row


class _Step:
    """The row changes of one event: `p` is the pipeline row (changed in place), `puts` the other rows."""

    def __init__(self, name: str, position: int, occurred: str, p: dict[str, Any], lookup: Lookup) -> None:
        self.name, self.position, self.occurred, self.p, self.lookup = name, position, occurred, p, lookup
        self.puts: list[Put] = []
        self.pending: dict[tuple[str, tuple[Any, ...]], dict[str, Any]] = {}

    def put(self, table: str, row: dict[str, Any]) -> None:
        self.puts.append(Put(table, row))

    def row(self, table: str, *key: Any) -> dict[str, Any] | None:
        """The current row (as changed earlier in this step), to be changed and written back with `put`."""
        found = self.pending.get((table, key))
        if found is None:
            stored = self.lookup(table, (self.name, *key))
            if stored is None:
                return None
            found = self.pending[(table, key)] = dict(stored)
        return found

    def apply(self, event: Event) -> None:  # noqa: C901 - one branch per event type, as in `evolve`
        p, name, at = self.p, self.name, self.occurred
        match event:
            case PipelineRegistered(config=config, config_sha256=sha):
                p.update(registered_at=at, config_sha256=sha)
                self.configure(config)
            case ConfigChanged(config=config, config_sha256=sha):
                p["config_sha256"] = sha
                self.configure(config)
            case SchemaFixed(schema=schema):
                p["features"] = _json(list(schema.features))
            case BlockArrived():
                p["blocks"] += 1
                p["rows"] += event.rows
                p.update(last_block=event.block_id, last_block_at=at)
                if event.labelled:
                    p["last_labelled_seq"] = p["blocks"]
                self.put("blocks", {
                    "pipeline": name, "block_id": event.block_id, "seq": p["blocks"], "file": event.file,
                    "sha256": event.sha256, "rows": event.rows, "labelled": int(event.labelled),
                    "arrived_at": at, "position": self.position, "champion": p["champion"],
                    "artifact_sha256": event.artifact.sha256, "artifact_kind": event.artifact.kind,
                    "artifact_size": event.artifact.size})
            case BlockRejected():
                p["rejected_files"] += 1
                self.put("rejected_files", {
                    "pipeline": name, "position": self.position, "file": event.file, "sha256": event.sha256,
                    "reason_code": event.reason_code, "message": event.message, "block_id": event.block_id,
                    "occurred_at": at})
            case PerformanceMeasured():
                self.performance(event)
            case PerformanceEstimated():
                self.estimated(event)
            case LabelsArrived():
                block = self.row("blocks", event.block_id)
                if block is not None:
                    block.update(labelled=1, labels_arrived_at=at)
                    self.put("blocks", block)
                    p["last_labelled_seq"] = max(p["last_labelled_seq"] or 0, block["seq"])
            case LabelsChecked():
                perf = self.row("performance", event.block_id)
                if perf is not None:
                    d = event.performance
                    perf.update(late=1, drifted=int(d.drifted) if d is not None else None,
                                at_promotion=d.at_promotion if d is not None else perf["at_promotion"])
                    self.put("performance", perf)
                if event.drifted:
                    p["last_check_drifted"] = 1
            case DriftChecked():
                self.drift_checked(event)
            case DriftDetected():
                p["drifts"] += 1
                self.drift_detected(event)
            case RetrainRequested():
                p["rounds"] += 1
                p["current_round"] = event.round_id
                block = self.row("blocks", event.block_id)
                self.put("rounds", {
                    "pipeline": name, "round_id": event.round_id, "number": p["rounds"],
                    "block_id": event.block_id, "block_seq": block["seq"] if block else None,
                    "trigger": event.trigger, "trial": int(event.trial), "strategies": _json(event.strategies),
                    "training_blocks": _json(event.training_blocks),
                    "n_training_blocks": len(event.training_blocks),
                    "holdout_blocks": _json(event.holdout_blocks), "holdout": event.holdout,
                    "seed": event.seed, "started_at": at, "outcome": "running", "candidates": "[]",
                    "failures": "[]", "position": self.position, "reasons": _json(event.reasons),
                    "seconds": None, "reuse": _json(event.reuse),
                    "change_point": str(event.change_point) if event.change_point else None})
            case CandidateTrained():
                self.candidate(event)
            case ChallengerEvaluated(model_version=version):
                model = self.row("models", version)
                if model is not None:
                    metric = p["metric"]
                    model.update(holdout_metrics=_json(event.metrics),
                                 champion_metrics=_json(event.champion_metrics),
                                 score=event.metrics.get(metric),
                                 champion_score=event.champion_metrics.get(metric))
                    self.put("models", model)
            case RetrainFailed():
                p["failures"] += 1
                round_ = self.row("rounds", event.round_id)
                if round_ is not None:
                    failures = json.loads(round_["failures"])
                    failures.append({"strategy": event.strategy, "error": event.error,
                                     "skipped": event.skipped})
                    round_["failures"] = _json(failures)
                    self.put("rounds", round_)
            case ModelPromoted():
                self.promoted(event)
            case ModelRetrained(round_id=round_id):  # the round's summary: its wall time (older logs have none)
                round_ = self.row("rounds", round_id)
                if round_ is not None:
                    round_.update(seconds=event.seconds)
                    self.put("rounds", round_)
            case ChallengerRejected(model_versions=versions, round_id=round_id):
                for version in versions:
                    self.set_status(version, "rejected")
                self.end_round(round_id, "rejected", event.reason, None)
                if p["current_round"] == round_id:
                    p["current_round"] = None
                p["consecutive_failures"] = 0 if versions else p["consecutive_failures"] + 1
                p["challenger_rejections"] += 1
            case CircuitOpened():
                p.update(circuit="open", circuit_until=event.until, consecutive_failures=event.failures)
                p["openings"] += 1
            case CircuitClosed(reason=reason):
                p.update(circuit="closed", circuit_until=None, consecutive_failures=0, openings=0,
                         circuit_reason=reason)
            case ModelRolledBack(from_version=old, to_version=new):
                self.set_status(old, "retired", retired_at=at)
                model = self.set_status(new, "champion")
                p.update(champion=new, champion_since=at, last_check_drifted=None,
                         champion_strategy=model["strategy"] if model else None)
                p["rollbacks"] += 1
                self.champion_change("rolled_back", old, new, event.reason)
            case ArtifactsPruned(model_versions=versions):  # no longer loadable: not a rollback target
                for version in versions:
                    model = self.row("models", version)
                    if model is not None:
                        model["pruned"] = 1
                        self.put("models", model)
            case _:
                pass

    def configure(self, config: dict[str, Any]) -> None:
        drift = config.get("drift") or {}
        self.p.update(task=config.get("task", "classification"), metric=metric_of(config),
                      tolerance=drift.get("performance_tolerance"))

    def performance(self, event: PerformanceMeasured) -> None:
        block = self.row("blocks", event.block_id)
        if block is None:
            return
        p = self.p
        value = event.metrics.get(p["metric"])
        model = self.row("models", event.model_version)
        promoted = json.loads(model["promoted_metrics"]) if model and model["promoted_metrics"] else {}
        p.update(last_metric=value, last_metric_block=event.block_id, last_metric_seq=block["seq"],
                 last_metric_version=event.model_version)
        self.put("performance", {
            "pipeline": self.name, "block_id": event.block_id, "seq": block["seq"],
            "model_version": event.model_version, "metric": p["metric"], "value": value,
            "metrics": _json(event.metrics), "at_promotion": promoted.get(p["metric"]),
            "tolerance": p["tolerance"], "higher_is_better": int(p["metric"] not in _LOWER_IS_BETTER),
            "drifted": None, "measured_at": self.occurred, "position": self.position})

    def estimated(self, event: PerformanceEstimated) -> None:
        block = self.row("blocks", event.block_id)
        if block is None:
            return
        p = self.p
        metric = p["metric"]
        value = event.metrics.get(metric)
        low, high = event.interval.get(metric, (None, None))
        if value is not None:
            p.update(last_estimate=value, last_estimate_low=low, last_estimate_high=high,
                     last_estimate_block=event.block_id, last_estimate_version=event.version)
        self.put("estimates", {
            "pipeline": self.name, "block_id": event.block_id, "seq": block["seq"], "model_version": event.version,
            "metric": metric, "value": value, "low": low, "high": high, "metrics": _json(event.metrics),
            "interval": _json({k: list(v) for k, v in event.interval.items()}), "method": event.method,
            "at_promotion": None, "tolerance": p["tolerance"], "drifted": None, "estimated_at": self.occurred,
            "position": self.position})

    def drift_checked(self, event: DriftChecked) -> None:
        p = self.p
        p["drift_checks"] += 1
        p["last_check_drifted"] = int(event.drifted)
        recent = (json.loads(p["recent_drift"]) + [int(event.drifted)])[-RECENT_BLOCKS:]
        p.update(recent_drift=_json(recent), recent_drifted=sum(recent), recent_checked=len(recent))
        block = self.row("blocks", event.block_id)
        if block is None:
            return
        ranked = sorted(event.features, key=lambda f: -(f.effect or 0.0))
        top = ranked[0] if ranked else None
        block.update(
            drifted=int(event.drifted), features_drifted=sum(f.drifted for f in event.features),
            top_feature=top.name if top else None, top_effect=top.effect if top else None,
            multivariate_drifted=_flag(event.multivariate), concept_drift=None if event.concept is None
            else int(event.concept.drift), performance_drifted=_flag(event.performance),
            reasons=_json(event.reasons), reference_blocks=_json(list(event.reference_blocks)))
        self.put("blocks", block)
        for rank, f in enumerate(event.features, start=1):
            self.put("drift_features", {
                "pipeline": self.name, "block_id": event.block_id, "feature": f.name, "seq": block["seq"],
                "rank": rank, "kind": f.kind, "test": f.test, "statistic": f.statistic, "p_value": f.p_value,
                "p_adjusted": f.p_adjusted, "effect": f.effect, "effect_name": f.effect_name,
                "drifted": int(f.drifted), "change": f.change, "note": f.note,
                "min_effect": f.min_effect, "alpha": f.alpha})
        perf = self.row("performance", event.block_id)
        if perf is not None and event.performance is not None:
            d = event.performance
            perf.update(at_promotion=d.at_promotion, tolerance=d.tolerance,
                        higher_is_better=int(d.higher_is_better), drifted=int(d.drifted))
            self.put("performance", perf)
        estimate = self.row("estimates", event.block_id)
        if estimate is not None and event.estimated is not None:
            e = event.estimated
            estimate.update(at_promotion=e.at_promotion, tolerance=e.tolerance, drifted=int(e.drifted))
            self.put("estimates", estimate)

    def drift_detected(self, event: DriftDetected) -> None:
        """A drifted block: the signals, whether it started a round (a warning when not), and the change point
        on the block where the change began (an earlier block when the change goes on)."""
        block = self.row("blocks", event.block_id)
        if block is not None:
            block.update(drift_warning=int(not event.starts_round), signals=_json(event.signals),
                         held_back=event.held_back or None)
            self.put("blocks", block)
        point = event.change_point
        changed = self.row("blocks", point.block_id) if point is not None else None
        if changed is not None:
            changed["change_point"] = str(point)
            self.put("blocks", changed)

    def candidate(self, event: CandidateTrained) -> None:
        self.p["candidates"] += 1
        self.put("models", {
            "pipeline": self.name, "version": event.model_version, "number": _number(event.model_version),
            "strategy": event.strategy, "parent": event.parent_version, "round_id": event.round_id,
            "training_blocks": _json(event.training_blocks), "n_training_blocks": len(event.training_blocks),
            "rows": event.rows, "seconds": event.seconds, "seed": event.seed, "params": _json(event.params),
            "notes": _json(event.notes), "code_version": event.code_version,
            "artifact_sha256": event.sha256, "artifact_size": event.artifact.size,
            "artifact_format": event.artifact.format, "trained_at": self.occurred, "status": "candidate",
            "holdout_metrics": "{}", "champion_metrics": "{}", "position": self.position, "pruned": 0})
        round_ = self.row("rounds", event.round_id)
        if round_ is not None:
            round_["candidates"] = _json(json.loads(round_["candidates"]) + [event.model_version])
            self.put("rounds", round_)

    def promoted(self, event: ModelPromoted) -> None:
        p, at = self.p, self.occurred
        if p["champion"] is not None:
            self.set_status(p["champion"], "retired", retired_at=at)
        model = self.set_status(event.model_version, "champion", promoted_at=at,
                                promoted_metrics=_json(event.metrics), promotion_reason=event.reason)
        current = self.row("rounds", p["current_round"]) if p["current_round"] else None
        for version in json.loads(current["candidates"]) if current else []:
            other = self.row("models", version)
            if version != event.model_version and other is not None and other["status"] == "candidate":
                self.set_status(version, "rejected")
        if event.round_id is not None:
            self.end_round(event.round_id, "promoted", event.reason, event.model_version)
        if p["current_round"] is not None and p["current_round"] == event.round_id:
            p.update(current_round=None, consecutive_failures=0)
        p.update(champion=event.model_version, champion_since=at, last_check_drifted=None,
                 champion_strategy=model["strategy"] if model else event.strategy)
        p["promotions"] += 1
        self.champion_change("promoted", event.previous_version, event.model_version, event.reason)

    def set_status(self, version: str, status: str, **changes: Any) -> dict[str, Any] | None:
        model = self.row("models", version)
        if model is not None:
            model.update(status=status, **changes)
            self.put("models", model)
        return model

    def end_round(self, round_id: str, outcome: str, reason: str, promoted: str | None) -> None:
        round_ = self.row("rounds", round_id)
        if round_ is not None:
            round_.update(outcome=outcome, reason=reason, promoted_version=promoted, ended_at=self.occurred)
            self.put("rounds", round_)

    def champion_change(self, kind: str, old: str | None, new: str, reason: str) -> None:
        self.put("champion_changes", {
            "pipeline": self.name, "position": self.position, "kind": kind, "from_version": old,
            "to_version": new, "block_seq": self.p["blocks"], "block_id": self.p["last_block"],
            "reason": reason, "occurred_at": self.occurred})


_LOWER_IS_BETTER = frozenset({"log_loss", "mae", "rmse"})  # as pipelines.retraining.evaluation (kept free of sklearn)


def summarize(event: Event, metric: str = "accuracy") -> str:  # noqa: C901 - one line per event type
    """One line for people about one event (the events feed and the overview's recent alert)."""
    match event:
        case PipelineRegistered(config_sha256=sha):
            return f"pipeline registered (config {sha[:8]})"
        case ConfigChanged(diff=diff):
            return f"config changed: {', '.join(d.key for d in diff) or 'no key'}"
        case SchemaFixed(schema=schema):
            return f"schema fixed from {schema.source}: {len(schema.features)} features"
        case BlockArrived():
            return f"block {event.block_id} arrived: {event.rows} rows, {'' if event.labelled else 'un'}labelled"
        case BlockRejected():
            return f"file {event.file} rejected ({event.reason_code}): {event.message}"
        case PerformanceMeasured(metrics=metrics):
            return f"{event.model_version} scored {event.block_id}: {_metric_text(metrics, metric)}"
        case PerformanceEstimated(metrics=metrics, interval=interval):
            low, high = interval.get(metric, (None, None))
            band = f" [{low:.3f}, {high:.3f}]" if low is not None else ""
            return f"{event.version} estimated on {event.block_id}: {_metric_text(metrics, metric)}{band} (no labels)"
        case LabelsArrived():
            return f"labels for {event.block_id} arrived from {event.file} ({event.rows} rows)"
        case PipelinePassivated():
            return f"actor stopped after {event.idle_seconds:.0f} s idle"
        case PipelineActivated():
            return f"actor started: {event.reason}"
        case LabelsChecked():
            verdict = f"drift: {event.reasons[0]}" if event.drifted and event.reasons else "no drift"
            return f"late labels of {event.block_id} checked against {event.model_version}: {verdict}"
        case DriftChecked():
            return f"block {event.block_id} checked: {drift_signals(event)}"
        case DriftDetected(reasons=reasons):
            return (f"drift {'in' if event.starts_round else 'warning (no round) in'} {event.block_id}: "
                    f"{reasons[0] if reasons else 'no reason recorded'}"
                    + (f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else ""))
        case RetrainRequested():
            return (f"round {event.round_id} started ({event.trigger}{', trial' if event.trial else ''}): "
                    f"{len(event.strategies)} strategies on {len(event.training_blocks)} blocks")
        case CandidateTrained() if event.strategy == "reuse":
            return f"candidate {event.model_version} reuses past champion {event.parent_version} in round {event.round_id}"
        case CandidateTrained():
            parent = f", parent {event.parent_version}" if event.parent_version else ""
            return f"candidate {event.model_version} trained ({event.strategy}{parent}) in round {event.round_id}"
        case ChallengerEvaluated():
            champion = (f" vs champion {_metric_text(event.champion_metrics, metric)}"
                        if event.champion_metrics else "")
            return f"{event.model_version} evaluated: {_metric_text(event.metrics, metric)}{champion}"
        case ModelPromoted():
            return f"{event.model_version} promoted ({event.strategy}): {event.reason}"
        case ChallengerRejected():
            return f"round {event.round_id}: no promotion: {event.reason}"
        case RetrainFailed():
            what = "skipped" if event.skipped else "failed"
            return f"round {event.round_id}: {event.strategy} {what}: {event.error}"
        case CircuitOpened():
            return (f"circuit opened after {event.failures} failed rounds: retraining paused until "
                    f"{event.until}")
        case CircuitClosed(reason=reason):
            return f"circuit closed: {reason}"
        case ModelRolledBack():
            return f"rolled back {event.from_version} -> {event.to_version}: {event.reason}"
        case AlertDelivered() | AlertFailed():
            return alert_words(event)
        case _:
            return type(event).__name__


def alert_words(event: AlertDelivered | AlertFailed) -> str:
    """An alert outcome in one line: what, about which event, to which sink, and what came back."""
    what = f"digest of {event.digest_of} {event.event_type}" if event.digest_of else event.event_type
    status = "" if event.status is None else f" ({event.status})"
    tries = "" if event.attempts == 1 else f" after {event.attempts} tries"
    if isinstance(event, AlertDelivered):
        return f"alert {what} at {event.position} delivered to {event.sink}{status}{tries}"
    return f"alert {what} at {event.position} failed at {event.sink}{status}{tries}: {event.error}"


def drift_signals(event: DriftChecked) -> str:
    """What a drift check found, in a few words: "no drift" or "drift (2 features, concept)"."""
    if not event.drifted:
        return "no drift"
    n = sum(f.drifted for f in event.features)
    signals = [f"{n} feature{'s' * (n != 1)}"] if n else []
    signals += [label for label, result in (("multivariate", event.multivariate), ("concept", event.concept),
                                            ("performance", event.performance))
                if result is not None and (result.drift if label == "concept" else result.drifted)]
    return f"drift ({', '.join(signals) or 'no signal recorded'})"


def _metric_text(metrics: dict[str, float], metric: str) -> str:
    if metric in metrics:
        return f"{metric} {metrics[metric]:.4g}"
    return ", ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items())[:2]) or "no metric"


def _flag(result: Any) -> int | None:
    return None if result is None else int(result.drifted)


def _number(version: str) -> int:
    return int(version[1:]) if version[1:].isdigit() else 0


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
