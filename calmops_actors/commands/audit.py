"""`calmops audit NAME`: re-execute a pipeline's recorded decisions from its stored artifacts and report any
that do not reproduce: a determinism check, separate from replay (replay never re-runs anything).

For every `DriftChecked`: the block's rows and its recorded reference blocks are loaded (hash-verified), the
per-feature tests, the multivariate test (same seed and permutation rule), the concept detector (from the
recorded detector state, fed the champion's errors) and the performance check are run again with the config
recorded at the time, and the verdict is re-assessed; statistics must agree within `--tolerance`. For every
`PerformanceMeasured`: the champion is scored on the block again. For every candidate: its model is loaded
(hash-verified) and scored on the holdout rows its round's `RetrainRequested` describes, and so is the
champion it was compared with; then the promotion rule is applied to the new numbers and must pick the same
version. Two pure checks need no artifact and always run: every `DriftDetected` is decided again from the
recorded check (its signals, change point and whether it started a round: `[retrain] trigger`), and every
`RetrainRequested` is planned again (`plan_round`: trigger, blocks, change point, rows after it, the blocks
since the last round, and the past champions it reused). Exit 0 when everything reproduces, 1 when anything
does not (each mismatch is named).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from calmops_actors import readlog
from calmops_actors.artifact_refs import ref_for
from calmops_actors.cli_common import add_home_option, resolve_home
from calmops_actors.errors import UserError
from calmops_actors.home import Home
from pipelines.core.events import (
    ChallengerEvaluated,
    ChallengerRejected,
    DriftChecked,
    DriftDetected,
    Event,
    LabelsChecked,
    ModelPromoted,
    PerformanceEstimated,
    PerformanceMeasured,
    RetrainRequested,
)
from pipelines.core.state import PipelineState, evolve

EXAMPLES = """\
examples:
  calmops audit churn
  calmops audit churn --tolerance 1e-6 --json
  calmops audit churn --skip-drift          only the candidate evaluations

exit codes: 0 every decision checked reproduces, 1 some do not (named), or with --strict some could not be
re-checked (pruned model files), 2 unknown pipeline or no home
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="re-execute recorded drift checks and evaluations; report what does not "
                       "reproduce", description=__doc__, epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", help="the pipeline")
    p.add_argument("--tolerance", type=float, default=1e-9, metavar="T",
                   help="relative and absolute tolerance for statistics and metrics (default 1e-9)")
    p.add_argument("--skip-drift", action="store_true", help="do not re-run the drift checks")
    p.add_argument("--skip-candidates", action="store_true", help="do not re-score the candidates")
    p.add_argument("--json", action="store_true", help="print the findings as one JSON object")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 when anything could not be re-checked (e.g. candidates whose files were pruned)")
    add_home_option(p)
    p.set_defaults(func=run)


@dataclass
class Check:
    """One re-executed decision and how it compares with the record."""

    kind: str  # drift | performance | candidate | promotion
    subject: str
    position: int
    differences: list[str] = field(default_factory=list)
    error: str | None = None
    notes: list[str] = field(default_factory=list)  # differences that are not decisions (wording)

    @property
    def ok(self) -> bool:
        return not self.differences and self.error is None


# --- comparing -----------------------------------------------------------------------------------


class Compare:
    """Collects the differences between recorded and re-computed values, within a tolerance."""

    def __init__(self, tolerance: float, into: list[str]) -> None:
        self.tol = tolerance
        self.out = into

    def number(self, what: str, recorded: float | None, now: float | None) -> None:
        if recorded is None or now is None:
            if recorded is not now:
                self.out.append(f"{what}: recorded {recorded}, now {now}")
            return
        if not math.isclose(recorded, now, rel_tol=self.tol, abs_tol=self.tol):
            self.out.append(f"{what}: recorded {recorded!r}, now {now!r}")

    def same(self, what: str, recorded: Any, now: Any) -> None:
        if recorded != now:
            self.out.append(f"{what}: recorded {recorded!r}, now {now!r}")

    def metrics(self, what: str, recorded: dict[str, float], now: dict[str, float]) -> None:
        if set(recorded) != set(now):
            self.out.append(f"{what}: recorded metrics {sorted(recorded)}, now {sorted(now)}")
        for name in sorted(set(recorded) & set(now)):
            self.number(f"{what} {name}", recorded[name], now[name])

    def json_like(self, what: str, recorded: Any, now: Any) -> None:
        """Nested JSON values (a detector's state): numbers within tolerance, everything else equal."""
        if isinstance(recorded, bool) or isinstance(now, bool) or not (
                isinstance(recorded, int | float) and isinstance(now, int | float)):
            if isinstance(recorded, dict) and isinstance(now, dict):
                if set(recorded) != set(now):
                    self.out.append(f"{what}: keys {sorted(recorded)} vs {sorted(now)}")
                for k in sorted(set(recorded) & set(now)):
                    self.json_like(f"{what}.{k}", recorded[k], now[k])
            elif isinstance(recorded, list) and isinstance(now, list) and len(recorded) == len(now):
                for i, (a, b) in enumerate(zip(recorded, now, strict=True)):
                    self.json_like(f"{what}[{i}]", a, b)
            else:
                self.same(what, recorded, now)
            return
        self.number(what, float(recorded), float(now))


# --- the audit -----------------------------------------------------------------------------------


class Auditor:
    """Re-executes decisions against the state as it was just before each was recorded."""

    def __init__(self, home: Home, tolerance: float) -> None:
        from calmops_actors.artifacts import ArtifactStore

        self.artifacts = ArtifactStore(home.artifacts)
        self.tol = tolerance
        self.frames: dict[str, Any] = {}
        self.models: dict[str, Any] = {}
        self.references: dict[tuple, Any] = {}

    # artifacts, loaded once each and verified against their sha256 on load
    def frame(self, state: PipelineState, block_id: str):
        """The block's rows, with its late labels joined once the log has them (as the actor reads it)."""
        if block_id not in state.blocks:
            raise LookupError(f"block {block_id} is not in the log before this event")
        labels = state.blocks[block_id].labels
        key = (block_id, labels.sha256 if labels is not None else None)
        if key not in self.frames:
            self.frames[key] = loaded(self.artifacts.get_frame, state.blocks[block_id].artifact)
            if labels is not None and not isinstance(self.frames[key], Exception):
                from pipelines.estimation.late_labels import join_labels

                rows = loaded(self.artifacts.get_frame, labels)
                if isinstance(rows, Exception):
                    self.frames[key] = rows
                else:
                    target = state.schema.target
                    self.frames[key] = join_labels(self.frames[key], rows,
                                                   next(c for c in rows.columns if c != target), target)
        return unwrap(self.frames[key])

    def model(self, state: PipelineState, version: str):
        if version not in self.models:
            if version not in state.models:
                raise LookupError(f"model {version} is not in the log before this event")
            self.models[version] = loaded(self.artifacts.get_model, state.models[version].artifact)
        return unwrap(self.models[version])

    def calibrator(self, state: PipelineState, version: str):
        """The version's probability calibration (hash-checked), or None when it has none."""
        artifact = state.models[version].calibration if version in state.models else None
        if artifact is None:
            return None
        key = f"calibration:{artifact.sha256}"
        if key not in self.models:
            self.models[key] = loaded(self.artifacts.get_model, artifact)
        return unwrap(self.models[key])

    def reference(self, state: PipelineState, ids: tuple[str, ...], drift_settings) -> tuple[Any, Any]:
        import pandas as pd

        from pipelines.drift.features import fit_reference

        key = (ids, repr(drift_settings))
        if key not in self.references:
            frame = pd.concat([self.frame(state, b) for b in ids], ignore_index=True)
            schema = state.schema
            self.references = {key: (fit_reference(frame, schema.numeric, schema.categorical, drift_settings),
                                     frame)}
        return self.references[key]

    # -- drift: the block's check re-run (`assess_block`, the function the actor recorded it with)
    def drift(self, state: PipelineState, event: DriftChecked, check: Check) -> None:
        from pipelines.config.pipeline import config_from_dict
        from pipelines.drift.block_check import assess_block
        from pipelines.drift.concept import recheck_state
        from pipelines.drift.multivariate import check_multivariate

        c = config_from_dict(state.config, "<log>")
        block = state.blocks[event.block_id]
        frame = self.frame(state, event.block_id)
        cmp = Compare(self.tol, check.differences)
        reference, reference_frame = self.reference(state, event.reference_blocks, c.drift)
        champion = state.champion_record()
        scored = block.labelled and champion is not None
        # the rules the check was recorded with: every permutation when it predates early stopping (no
        # permutations_used), and Frouros' ADWIN for an ADWIN stream it recorded in Frouros' state format
        stop_early = event.multivariate is None or event.multivariate.permutations_used is not None
        concept_state = state.concept_state
        if event.concept is not None:
            concept_state = recheck_state(event.concept.detector, concept_state, event.concept.state)
        now = assess_block(
            frame, seq=block.seq, labelled=block.labelled, reference=reference, reference_frame=reference_frame,
            champion_model=self.model(state, champion.version) if scored else None,
            promoted_metrics=champion.promoted_metrics if champion else None, concept_state=concept_state,
            config=c, schema=state.schema,
            multivariate_test=partial(check_multivariate, stop_early=stop_early),
            serving_model=self.model(state, champion.version) if champion and champion.calibration else None,
            calibrator=self.calibrator(state, champion.version) if champion else None).assessment
        self.compare_features(cmp, event.features, now.features)
        self.compare_optional(cmp, "multivariate", event.multivariate, now.multivariate, ("statistic", "p_value"),
                              ("drifted", "columns", "subsample", "permutations", "permutations_used"))
        self.compare_optional(cmp, "concept", event.concept, now.concept, (),
                              ("detector", "drift", "warning", "rows_seen", "drift_rows", "block_rows",
                               "change_rows"))
        if event.concept is not None and now.concept is not None:
            cmp.json_like("concept state", json.loads(event.concept.state), json.loads(now.concept.state))
        self.compare_optional(cmp, "performance", event.performance, now.performance, ("at_promotion", "observed"),
                              ("metric", "drifted"))
        self.compare_optional(cmp, "estimated", event.estimated, now.estimated,
                              ("at_promotion", "estimated", "low", "high"), ("metric", "drifted"))
        cmp.same("verdict (drifted)", event.drifted, now.drifted)
        if event.drifted == now.drifted and event.reasons != now.reasons:
            check.notes.append("the reasons are worded differently by this code (same verdict and numbers)")

    @staticmethod
    def compare_features(cmp: Compare, recorded, now) -> None:
        before = {f.name: f for f in recorded}
        after = {f.name: f for f in now}
        cmp.same("features checked", sorted(before), sorted(after))
        for name in sorted(set(before) & set(after)):
            a, b = before[name], after[name]
            for attr in ("kind", "test", "drifted", "effect_name", "unseen_categories", "rows"):
                cmp.same(f"{name} {attr}", getattr(a, attr), getattr(b, attr))
            for attr in ("statistic", "p_value", "p_adjusted", "effect"):
                cmp.number(f"{name} {attr}", getattr(a, attr), getattr(b, attr))

    @staticmethod
    def compare_optional(cmp: Compare, what: str, recorded, now, numbers: tuple[str, ...],
                         exact: tuple[str, ...]) -> None:
        if recorded is None or now is None:
            if (recorded is None) != (now is None):
                cmp.out.append(f"{what}: recorded {'none' if recorded is None else 'a result'}, now "
                               f"{'none' if now is None else 'a result'}")
            return
        for attr in exact:
            cmp.same(f"{what} {attr}", getattr(recorded, attr), getattr(now, attr))
        for attr in numbers:
            cmp.number(f"{what} {attr}", getattr(recorded, attr), getattr(now, attr))

    # -- the champion's prequential score on a labelled block
    def performance(self, state: PipelineState, event: PerformanceMeasured, check: Check) -> None:
        from pipelines.config.pipeline import config_from_dict
        from pipelines.retraining.evaluation import evaluate

        c = config_from_dict(state.config, "<log>")
        schema = state.schema
        now = evaluate(self.model(state, event.model_version), self.frame(state, event.block_id),
                       schema.features, schema.target, c.task)
        Compare(self.tol, check.differences).metrics("metrics", event.metrics, now)

    def estimate(self, state: PipelineState, event: PerformanceEstimated, check: Check) -> None:
        """The block's estimate re-run from the champion and its calibration, with the block's seed."""
        from pipelines.config.pipeline import config_from_dict
        from pipelines.estimation.block import estimate_block

        c = config_from_dict(state.config, "<log>")
        calibrator = self.calibrator(state, event.version)
        if calibrator is None:
            check.differences.append(f"{event.version} has no calibration in the log, yet an estimate was recorded")
            return
        block = state.blocks[event.block_id]
        now = estimate_block(self.model(state, event.version), calibrator, self.frame(state, event.block_id),
                             state.schema.features, c.training.seed + block.seq)
        cmp = Compare(self.tol, check.differences)
        cmp.metrics("metrics", event.metrics, now.metrics)
        for name, (low, high) in event.interval.items():
            again = now.interval.get(name, (None, None))
            cmp.number(f"{name} interval low", low, again[0])
            cmp.number(f"{name} interval high", high, again[1])

    def labels(self, state: PipelineState, measured: PerformanceMeasured, event: LabelsChecked,
               detected: DriftDetected | None, check: Check) -> None:
        """A late-labels check re-run (`assess_labels` on the joined rows), then re-decided in the state before
        its append: the same measurement, detector, verdict and drift decision."""
        from pipelines.config.pipeline import config_from_dict
        from pipelines.core.decide import RecordLabelsCheck, decide
        from pipelines.drift.block_check import assess_labels

        c = config_from_dict(state.config, "<log>")
        served = state.models[event.model_version]
        now = assess_labels(self.frame(state, event.block_id), model=self.model(state, served.version),
                            still_serves=served.version == state.champion, promoted_metrics=served.promoted_metrics,
                            concept_state=state.concept_state, config=c, schema=state.schema)
        cmp = Compare(self.tol, check.differences)
        cmp.metrics("metrics", measured.metrics, now.metrics)
        self.compare_optional(cmp, "concept", event.concept, now.assessment.concept, (),
                              ("detector", "drift", "warning", "rows_seen", "drift_rows", "block_rows"))
        self.compare_optional(cmp, "performance", event.performance, now.assessment.performance,
                              ("at_promotion", "observed"), ("metric", "drifted"))
        cmp.same("verdict (drifted)", event.drifted, now.assessment.drifted)
        again = decide(state, RecordLabelsCheck(block_id=event.block_id, model_version=event.model_version,
                                                metrics=measured.metrics, assessment=now.assessment,
                                                occurred_at=event.occurred_at, note=event.note))
        decided = next((e for e in again if isinstance(e, DriftDetected)), None)
        if (decided is None) != (detected is None):
            check.differences.append(f"drift decision: recorded {'none' if detected is None else 'a drift'}, now "
                                     f"{'none' if decided is None else 'a drift'}")
        elif decided is not None:
            for attr in ("signals", "starts_round", "held_back"):
                cmp.same(attr, getattr(detected, attr), getattr(decided, attr))

    # -- a candidate (and the champion it was compared with) on its round's holdout
    def holdout(self, state: PipelineState, request: RetrainRequested):
        import pandas as pd

        parts = []
        for block_id, start, stop in holdout_spans(request):
            frame = self.frame(state, block_id)
            labelled = frame[frame[state.schema.target].notna()]
            parts.append(labelled.iloc[start:stop])
        holdout = pd.concat(parts, ignore_index=True)
        rows = int(request.holdout.split(" ", 1)[0]) if request.holdout.split(" ", 1)[0].isdigit() else None
        if rows is not None and rows != len(holdout):
            raise ValueError(f"the holdout described as {rows} rows gives {len(holdout)} rows from the blocks")
        return holdout

    def candidate(self, state: PipelineState, request: RetrainRequested, evaluated: ChallengerEvaluated,
                  champion: str | None, check: Check) -> tuple[dict[str, float], dict[str, float] | None]:
        """Re-score the candidate (and the champion it was compared with) on the round's holdout rows."""
        from pipelines.config.pipeline import config_from_dict
        from pipelines.retraining.evaluation import evaluate

        c = config_from_dict(state.config, "<log>")
        schema = state.schema
        holdout = self.holdout(state, request)
        now = evaluate(self.model(state, evaluated.model_version), holdout, schema.features, schema.target, c.task)
        cmp = Compare(self.tol, check.differences)
        cmp.metrics("holdout", evaluated.metrics, now)
        champion_now = None
        if champion is not None:
            champion_now = evaluate(self.model(state, champion), holdout, schema.features, schema.target, c.task)
            cmp.metrics(f"champion {champion} on the same rows", evaluated.champion_metrics, champion_now)
        return now, champion_now


def loaded(load, artifact) -> Any:
    """The artifact's content, or the error loading it raised (kept, so a bad file is read only once)."""
    from calmops_actors.artifacts import ArtifactError

    try:
        return load(ref_for(artifact))
    except ArtifactError as err:
        return err


def unwrap(value: Any) -> Any:
    if isinstance(value, Exception):
        raise value
    return value


HOLDOUT_SPAN = r"\[(\d+):(\d+)\]"


def holdout_spans(request: RetrainRequested) -> list[tuple[str, int, int]]:
    """The (block, start, stop) spans of labelled rows held out, parsed from the recorded description.

    >>> r = RetrainRequested(round_id="r1", block_id="b2", strategies=("full",), training_blocks=("b1", "b2"),
    ...                      holdout_blocks=("b1", "b2"), holdout="30 holdout rows (rule): b1[90:100], b2[0:20]",
    ...                      seed=0)
    >>> holdout_spans(r)
    [('b1', 90, 100), ('b2', 0, 20)]
    """
    spans = []
    for block_id in request.holdout_blocks:
        found = re.search(re.escape(block_id) + HOLDOUT_SPAN, request.holdout)
        if found is None:
            raise ValueError(f"round {request.round_id}: the holdout description {request.holdout!r} names no "
                             f"rows of block {block_id}")
        spans.append((block_id, int(found.group(1)), int(found.group(2))))
    return spans


@dataclass
class RoundAudit:
    """What the candidate checks of one round found, for the promotion check at its end."""

    champion: str | None
    candidates: dict[str, dict[str, float]] = field(default_factory=dict)
    champion_metrics: dict[str, float] | None = None
    failed: list[str] = field(default_factory=list)


def audit(home: Home, events: list[tuple[Any, Event]], tolerance: float, *, drift: bool, candidates: bool,
          progress, skipped: list[str] | None = None) -> list[Check]:
    """Walk the events with the state folded up to (not including) each; re-execute the decisions asked for.

    Candidates whose model files retention deleted cannot be re-scored: their versions go to `skipped` (their
    recorded scores still feed the promotion checks), so the report says what it did not check."""
    skipped = [] if skipped is None else skipped
    auditor = Auditor(home, tolerance)
    checks: list[Check] = []
    state = PipelineState.initial()
    requests: dict[str, RetrainRequested] = {}
    rounds: dict[str, RoundAudit] = {}
    # candidates whose files retention deleted: their recorded scores stand in for a re-score
    pruned = {v for _, e in events if type(e).__name__ == "ArtifactsPruned" for v in e.model_versions}
    before_check: tuple[PipelineState, DriftChecked] | None = None
    before_measure: tuple[PipelineState, PerformanceMeasured] | None = None
    for i, (record, event) in enumerate(events, 1):
        progress(i, len(events))
        check = None
        match event:
            case DriftDetected() if (before_check is not None and before_check[1].block_id == event.block_id
                                     and recorded_with(record, "signals")):
                check = Check("trigger", f"drift on {event.block_id}", record.position)
                guarded(check, partial(trigger_check, *before_check, event, check))
            case RetrainRequested() if recorded_with(record, "recent_blocks"):
                check = Check("round", f"round {event.round_id} ({event.trigger})", record.position)
                guarded(check, partial(round_check, state, event, check))
        if check is not None:
            checks.append(check)
            check = None
        if isinstance(event, DriftChecked):
            before_check = (state, event)
        elif isinstance(event, LabelsChecked):
            before_check = None  # the drift that follows is the late labels' (re-decided by `labels_check`)
        if isinstance(event, PerformanceMeasured):
            before_measure = (state, event)
        match event:
            case PerformanceEstimated() if drift:
                check = Check("estimate", f"{event.version} on {event.block_id}", record.position)
                guarded(check, partial(auditor.estimate, state, event, check))
            case LabelsChecked() if drift and before_measure is not None:
                check = Check("labels", f"late labels of {event.block_id}", record.position)
                following = events[i][1] if i < len(events) else None
                detected = following if isinstance(following, DriftDetected) else None
                guarded(check, partial(auditor.labels, *before_measure, event, detected, check))
            case PerformanceMeasured() if drift:
                check = Check("performance", f"champion {event.model_version} on {event.block_id}", record.position)
                guarded(check, partial(auditor.performance, state, event, check))
            case DriftChecked() if drift:
                check = Check("drift", f"block {event.block_id}", record.position)
                guarded(check, partial(auditor.drift, state, event, check))
            case RetrainRequested():
                requests[event.round_id] = event
                rounds[event.round_id] = RoundAudit(champion=state.champion)
            case ChallengerEvaluated() if candidates and event.round_id in requests and event.model_version in pruned:
                skipped.append(event.model_version)
                round_ = rounds[event.round_id]
                round_.candidates[event.model_version] = dict(event.metrics)
                if round_.champion_metrics is None:
                    round_.champion_metrics = dict(event.champion_metrics)
            case ChallengerEvaluated() if candidates and event.round_id in requests:
                round_ = rounds[event.round_id]
                model = state.models.get(event.model_version)
                check = Check("candidate", f"{event.model_version} ({model.strategy if model else '?'}, round "
                              f"{event.round_id})", record.position)

                guarded(check, partial(rescore, auditor, state, requests[event.round_id], event, round_, check))
                if check.error is not None:
                    round_.failed.append(event.model_version)
            case ModelPromoted() | ChallengerRejected() if candidates and event.round_id in rounds:
                check = promotion_check(state, event, rounds[event.round_id], record.position, tolerance)
        if check is not None:
            checks.append(check)
        state = evolve(state, event)
    return checks


def recorded_with(record: Any, key: str) -> bool:
    """Whether the stored event has field `key`: events recorded by older code lack the fields a newer rule
    decides, so that rule is not re-checked on them (it did not exist when they were decided)."""
    payload = getattr(record, "payload", None)
    if isinstance(payload, dict):
        return key in payload
    return f'"{key}"' in getattr(record, "payload_json", "")


def trigger_check(state: PipelineState, checked: DriftChecked, detected: DriftDetected, check: Check) -> None:
    """`decide` on the recorded check, in the state before it, must give the recorded drift decision."""
    from pipelines.core.decide import RecordDriftCheck, decide
    from pipelines.drift.results import DriftAssessment

    assessment = DriftAssessment(drifted=checked.drifted, reasons=checked.reasons, features=checked.features,
                                 multivariate=checked.multivariate, concept=checked.concept,
                                 performance=checked.performance, estimated=checked.estimated)
    now = decide(state, RecordDriftCheck(block_id=checked.block_id, assessment=assessment,
                                         reference_blocks=checked.reference_blocks, occurred_at=checked.occurred_at))
    again = next((e for e in now if isinstance(e, DriftDetected)), None)
    cmp = Compare(0.0, check.differences)
    if again is None:
        check.differences.append("the recorded check no longer concludes drift")
        return
    for attr in ("signals", "starts_round", "held_back", "change_point"):
        cmp.same(attr, getattr(detected, attr), getattr(again, attr))


def round_check(state: PipelineState, request: RetrainRequested, check: Check) -> None:
    """`plan_round` in the state before the round must plan what was recorded; the past champions it reused
    must be the ones `reusable` picks for its holdout."""
    from pipelines.config.pipeline import config_from_dict
    from pipelines.core.rounds import plan_round, reusable

    config = config_from_dict(state.config, "<log>")
    plan = plan_round(state, config, request.block_id)
    cmp = Compare(0.0, check.differences)
    if plan is None:
        check.differences.append(f"no round is due after {request.block_id} in the state before it")
        return
    cmp.same("trigger", request.trigger, plan.trigger)
    cmp.same("training blocks", request.training_blocks, plan.labelled_blocks)
    cmp.same("new blocks", request.new_blocks, plan.new_blocks)
    cmp.same("change point", request.change_point, plan.change_point)
    cmp.same("rows after the change", request.change_rows, plan.change_rows)
    cmp.same("blocks since the last round", request.recent_blocks, plan.recent_blocks)
    if request.trigger != "initial":
        cmp.same("reused past champions", request.reuse,
                 reusable(state, config.retrain.reuse_champions, request.holdout_blocks))


def rescore(auditor: Auditor, state: PipelineState, request: RetrainRequested, evaluated: ChallengerEvaluated,
            round_: RoundAudit, check: Check) -> None:
    now, champion_now = auditor.candidate(state, request, evaluated, round_.champion, check)
    round_.candidates[evaluated.model_version] = now
    round_.champion_metrics = champion_now


def promotion_check(state: PipelineState, event: ModelPromoted | ChallengerRejected, round_: RoundAudit,
                    position: int, tolerance: float) -> Check:
    """The promotion rule applied to the re-scored metrics must pick what was recorded."""
    from pipelines.config.pipeline import config_from_dict
    from pipelines.core.promotion import decide_promotion

    check = Check("promotion", f"round {event.round_id}", position)
    if round_.failed:
        check.error = f"not re-applied: candidate(s) {', '.join(round_.failed)} could not be re-scored"
        return check

    def rule() -> None:
        settings = config_from_dict(state.config, "<log>").retrain
        champion_metrics = (round_.champion_metrics or {}) if state.champion else None
        verdict = decide_promotion(champion_metrics, round_.candidates, settings)
        recorded = event.model_version if isinstance(event, ModelPromoted) else None
        Compare(tolerance, check.differences).same("promoted version", recorded, verdict.promote)

    guarded(check, rule)
    return check


def guarded(check: Check, fn) -> None:
    """Run one re-execution; a missing or tampered artifact, or any failure, is that check's error."""
    try:
        fn()
    except Exception as err:  # noqa: BLE001 - every failure is reported against its check, never hidden
        check.error = f"{type(err).__name__}: {err}"


@readlog.user_errors
def run(args: argparse.Namespace) -> int:
    if not args.tolerance >= 0:
        raise UserError(f"--tolerance must be 0 or more, got {args.tolerance}")
    if args.skip_drift and args.skip_candidates:
        raise UserError("--skip-drift and --skip-candidates together leave nothing to audit")
    home = Home(resolve_home(args))
    with readlog.open_log(home.root) as store:
        loaded = readlog.load_state(store, args.name, keep_events=True)
    progress = readlog.Progress(f"auditing {args.name}")
    skipped: list[str] = []
    try:
        checks = audit(home, loaded.events, args.tolerance, drift=not args.skip_drift,
                       candidates=not args.skip_candidates, progress=progress, skipped=skipped)
    finally:
        progress.close()
    bad = [c for c in checks if not c.ok]
    out = sys.stdout
    if args.json:
        print(json.dumps({"pipeline": args.name, "ok": not bad and not (args.strict and skipped),
                          "checked": len(checks), "failed": len(bad),
                          "skipped": {"count": len(skipped), "reason": "model files pruned by retention",
                                      "versions": skipped},
                          "tolerance": args.tolerance,
                          "checks": [{**asdict(c), "ok": c.ok} for c in checks]}), file=out)
    else:
        for c in checks:
            mark = "ok      " if c.ok else "MISMATCH" if c.error is None else "ERROR   "
            print(f"{mark} {c.kind:<11} {c.subject} (position {c.position})", file=out)
            for d in c.differences:
                print(f"           {d}", file=out)
            if c.error:
                print(f"           {c.error}", file=out)
            for note in c.notes:
                print(f"           note: {note}", file=out)
        kinds = sorted({c.kind for c in checks})
        also = (f"; {len(skipped)} candidate score(s) not re-checked: model files pruned by retention "
                f"({', '.join(skipped)})" if skipped else "")
        if bad:
            print(f"audit {args.name}: {len(bad)} of {len(checks)} decision(s) do NOT reproduce{also}", file=out)
        else:
            print(f"audit {args.name}: all {len(checks)} decision(s) checked reproduce ({', '.join(kinds)}; "
                  f"tolerance {args.tolerance:g}){also}", file=out)
    return 1 if bad or (args.strict and skipped) else 0
