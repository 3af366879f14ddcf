"""The generated copies in `pipelines.core.state` (`replacer`, `maker`) give what `dataclasses.replace` and the
constructors give, field by field, and the fold built on them equals the fold it replaced (kept below as
`reference_evolve`, the `dataclasses.replace` version) on random event sequences that reach every branch."""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from immutables import Map

from pipelines.core.events import (
    Artifact,
    ArtifactsPruned,
    BlockArrived,
    BlockRejected,
    Calibration,
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
    ModelRolledBack,
    PerformanceEstimated,
    PerformanceMeasured,
    PipelineRegistered,
    RetrainFailed,
    RetrainRequested,
    SchemaFixed,
)
from pipelines.core.record_copies import maker, replacer, slot_setters
from pipelines.core.schema import ColumnSchema
from pipelines.core.state import (
    Adaptation,
    BlockRecord,
    Circuit,
    Counters,
    ModelRecord,
    PipelineState,
    RoundRecord,
    evolve,
)
from pipelines.drift.results import ConceptDrift

ART = Artifact(sha256="a" * 64, kind="frame-parquet", size=10, format="parquet")


def sample(cls: type):
    """An instance of `cls` with every field set away from its default."""
    values = {
        PipelineState: dict(version=3, name="p", config={"a": 1}, config_sha256="c", blocks=Map({"b": 1}),
                            block_order=Map({1: "b"}), files=Map({"f": "accepted"}), models=Map({"v": 2}),
                            champion="v", round=None, circuit=Circuit(open=True), concept_state="{}",
                            last_block="b", last_drift_block="b", last_check_drifted=True, retrain_pending=True,
                            last_event_at="t", counters=Counters(blocks=1)),
        Counters: {f.name: i + 1 for i, f in enumerate(dataclasses.fields(Counters))},
        BlockRecord: dict(block_id="b", seq=1, file="f", sha256="s", rows=3, labelled=True, artifact=ART,
                          arrived_at="t", drifted=False, metrics={"accuracy": 0.5}, scored_by="v1"),
        ModelRecord: dict(version="v1", strategy="full", artifact=ART, parent="v0", training_blocks=("b",),
                          round_id="r1", trained_at="t", seconds=1.5, code_version="c", status="champion",
                          holdout_metrics={"accuracy": 0.5}, promoted_metrics={"accuracy": 0.4},
                          promoted_at="t", pruned=True),
        RoundRecord: dict(round_id="r", block_id="b", strategies=("full",), training_blocks=("b",),
                          holdout_blocks=("b",), started_at="t", trial=True, seed=4, trigger="initial",
                          new_blocks=("b",), candidates=("v1",), failures=("x",)),
        Circuit: dict(open=True, consecutive_failures=2, until="t", openings=1, last_reason="r"),
    }[cls]
    return cls(**values)


CLASSES = [PipelineState, Counters, BlockRecord, ModelRecord, RoundRecord, Circuit]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_replacer_equals_dataclasses_replace_on_every_field(cls: type) -> None:
    fast = replacer(cls)
    obj = sample(cls)
    copy = fast(obj)
    assert copy == obj and copy is not obj and type(copy) is cls
    for f in dataclasses.fields(cls):
        marker = object()
        new, old = fast(obj, **{f.name: marker}), replace(obj, **{f.name: marker})
        assert type(new) is cls and new == old
        assert all(getattr(new, g.name) is getattr(old, g.name) for g in dataclasses.fields(cls))
        assert getattr(new, f.name) is marker
    with pytest.raises(dataclasses.FrozenInstanceError):
        copy.__setattr__(dataclasses.fields(cls)[0].name, 1)
    with pytest.raises(TypeError):
        fast(obj, not_a_field=1)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_maker_equals_the_constructor_with_and_without_defaults(cls: type) -> None:
    make = maker(cls)
    obj = sample(cls)
    fields = dataclasses.fields(cls)
    values = [getattr(obj, f.name) for f in fields]
    assert make(*values) == cls(*values) == obj and type(make(*values)) is cls
    assert make(**{f.name: getattr(obj, f.name) for f in fields}) == obj
    required = [f.name for f in fields if f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING]
    minimal = {n: getattr(obj, n) for n in required}
    assert make(**minimal) == cls(**minimal)
    if cls is ModelRecord:  # a default_factory gives each record its own dict
        assert make(**minimal).holdout_metrics is not make(**minimal).holdout_metrics
    with pytest.raises(TypeError):
        make(*values, None)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_slot_setters_build_what_the_constructor_builds(cls: type) -> None:
    obj = sample(cls)
    built = object.__new__(cls)
    for setter, f in zip(slot_setters(cls), dataclasses.fields(cls), strict=True):
        setter(built, getattr(obj, f.name))
    assert built == obj and type(built) is cls


def test_only_plain_frozen_slots_dataclasses_get_fast_copies() -> None:
    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        x: int = 0

    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        x: int = 0

        def __post_init__(self) -> None:
            pass

    for cls in (NoSlots, Checked):
        for fast in (replacer, maker, slot_setters):
            with pytest.raises(TypeError):
                fast(cls)


# --- the fold before fast copies, as the reference -----------------------------------------------

def reference_evolve(state: PipelineState, event: Event) -> PipelineState:
    """Apply one recorded fact. Total: an event this fold does not use only advances the version."""
    state = replace(state, version=state.version + 1, last_event_at=event.occurred_at or state.last_event_at)
    c = state.counters
    match event:
        case PipelineRegistered(name=name, config=config, config_sha256=sha):
            return replace(state, name=name, config=config, config_sha256=sha)
        case ConfigChanged(config=config, config_sha256=sha):
            return replace(state, config=config, config_sha256=sha)
        case SchemaFixed(schema=schema):
            return replace(state, schema=schema)
        case BlockArrived():
            seq = len(state.block_order) + 1
            record = BlockRecord(
                block_id=event.block_id, seq=seq, file=event.file, sha256=event.sha256, rows=event.rows,
                labelled=event.labelled, artifact=event.artifact, arrived_at=event.occurred_at,
            )
            return replace(
                state,
                blocks=state.blocks.set(event.block_id, record),
                block_order=state.block_order.set(seq, event.block_id),
                files=state.files.set(event.sha256, "accepted"),
                last_block=event.block_id,
                counters=replace(c, blocks=c.blocks + 1),
            )
        case BlockRejected(sha256=sha):
            files = state.files
            if files.get(sha) != "accepted":
                files = files.set(sha, f"rejected:{state.config_sha256}")
            return replace(state, files=files, counters=replace(c, rejected_files=c.rejected_files + 1))
        case PerformanceMeasured(block_id=block_id, metrics=metrics, model_version=version):
            block = state.blocks.get(block_id)
            if block is None:
                return state
            return replace(state, blocks=state.blocks.set(
                block_id, replace(block, metrics=metrics, scored_by=version)))
        case DriftChecked(block_id=block_id, drifted=drifted, concept=concept):
            block = state.blocks.get(block_id)
            blocks = (state.blocks.set(block_id, replace(block, drifted=drifted, served_by=state.champion))
                      if block else state.blocks)
            return replace(
                state, blocks=blocks, last_check_drifted=drifted,
                concept_state=concept.state if concept is not None else state.concept_state,
                counters=replace(c, drift_checks=c.drift_checks + 1),
            )
        case PerformanceEstimated(block_id=block_id, version=version):
            block = state.blocks.get(block_id)
            if block is None:
                return state
            return replace(state, blocks=state.blocks.set(block_id, replace(block, estimated_by=version)))
        case LabelsArrived(block_id=block_id, artifact=labels, sha256=sha):
            state = replace(state, files=state.files.set(sha, "accepted"),
                            counters=replace(c, labels_arrived=c.labels_arrived + 1))
            block = state.blocks.get(block_id)
            if block is None:
                return state
            return replace(state, blocks=state.blocks.set(block_id, replace(block, labelled=True, labels=labels)))
        case LabelsChecked(block_id=block_id, model_version=checked_by, concept=concept, drifted=drifted):
            block = state.blocks.get(block_id)
            if block is not None:
                state = replace(state, blocks=state.blocks.set(block_id, replace(block, labels_checked_by=checked_by)))
            state = replace(state, counters=replace(c, labels_checked=c.labels_checked + 1))
            return replace(state, last_check_drifted=True if drifted else state.last_check_drifted,
                           concept_state=concept.state if concept is not None else state.concept_state)
        case DriftDetected(block_id=block_id, reasons=reasons, change_point=point):
            adaptation = state.adaptation
            if point is not None and (point.block_id, point.row) != (adaptation.block_id, adaptation.row):
                changed = state.blocks.get(point.block_id)
                adaptation = Adaptation(block_id=point.block_id, row=point.row, signal=point.signal,
                                        seq=changed.seq if changed else 0)
            state = replace(state, last_drift_block=block_id, adaptation=adaptation,
                            counters=replace(c, drifts=c.drifts + 1))
            return replace(state, retrain_pending=True, drift_reasons=reasons) if event.starts_round else state
        case RetrainRequested():
            point = event.change_point
            round_ = RoundRecord(
                round_id=event.round_id, block_id=event.block_id, strategies=event.strategies,
                training_blocks=event.training_blocks, holdout_blocks=event.holdout_blocks,
                started_at=event.occurred_at, trial=event.trial, seed=event.seed, trigger=event.trigger,
                new_blocks=event.new_blocks, reasons=event.reasons,
                change_block=point.block_id if point else None, change_row=point.row if point else 0,
                change_signal=point.signal if point else "", change_rows=event.change_rows,
                recent_blocks=event.recent_blocks, reuse=event.reuse,
            )
            a = state.adaptation
            if point is not None and (point.block_id, point.row) == (a.block_id, a.row):
                a = replace(a, rounds=a.rounds + 1, adapt_rounds=a.adapt_rounds + (event.trigger == "adapt"),
                            rows_at_last_round=event.change_rows)
            elif point is not None:
                changed = state.blocks.get(point.block_id)
                a = Adaptation(block_id=point.block_id, row=point.row, signal=point.signal,
                               seq=changed.seq if changed else 0, rounds=1, rows_at_last_round=event.change_rows)
            started = state.blocks.get(event.block_id)
            return replace(state, round=round_, retrain_pending=False, adaptation=a,
                           last_round_seq=started.seq if started else state.last_round_seq,
                           counters=replace(c, rounds=c.rounds + 1))
        case CandidateTrained():
            record = ModelRecord(
                version=event.model_version, strategy=event.strategy, artifact=event.artifact,
                parent=event.parent_version, training_blocks=event.training_blocks, round_id=event.round_id,
                trained_at=event.occurred_at, seconds=event.seconds, code_version=event.code_version,
                calibration=event.calibration.artifact if event.calibration else None,
            )
            round_ = state.round
            if round_ is not None and round_.round_id == event.round_id:
                round_ = replace(round_, candidates=round_.candidates + (event.model_version,))
            return replace(state, models=state.models.set(event.model_version, record), round=round_,
                           counters=replace(c, candidates=c.candidates + 1))
        case ChallengerEvaluated(model_version=version, metrics=metrics):
            record = state.models.get(version)
            if record is None:
                return state
            return replace(state, models=state.models.set(version, replace(record, holdout_metrics=metrics)))
        case RetrainFailed(round_id=round_id, strategy=strategy):
            round_ = state.round
            if round_ is not None and round_.round_id == round_id:
                round_ = replace(round_, failures=round_.failures + (strategy,))
            return replace(state, round=round_, counters=replace(c, failures=c.failures + 1))
        case ModelPromoted():
            return reference_promote(state, event)
        case ChallengerRejected(model_versions=versions, round_id=round_id):
            models = state.models
            for v in versions:
                if v in models:
                    models = models.set(v, replace(models[v], status="rejected"))
            r = state.round
            if r is not None and r.round_id == round_id and r.trigger == "adapt" \
                    and r.change_block == state.adaptation.block_id:
                state = replace(state, adaptation=replace(state.adaptation, settled=True))
            return replace(
                state, models=models, round=None if state.round and state.round.round_id == round_id
                else state.round,
                circuit=reference_after_round(state.circuit, succeeded=bool(versions)),
                counters=replace(c, challenger_rejections=c.challenger_rejections + 1),
            )
        case CircuitOpened(until=until, failures=failures):
            return replace(state, circuit=replace(state.circuit, open=True, until=until,
                                                  consecutive_failures=failures,
                                                  openings=state.circuit.openings + 1))
        case CircuitClosed(reason=reason):
            return replace(state, circuit=Circuit(last_reason=reason))
        case ModelRolledBack(from_version=old, to_version=new):
            models = state.models
            if old in models:
                models = models.set(old, replace(models[old], status="retired"))
            if new in models:
                models = models.set(new, replace(models[new], status="champion"))
            return replace(state, models=models, champion=new, last_check_drifted=None, concept_state=None,
                           counters=replace(c, rollbacks=c.rollbacks + 1))
        case ArtifactsPruned(model_versions=versions):
            models = state.models
            for v in versions:
                if v in models:
                    models = models.set(v, replace(models[v], pruned=True))
            return replace(state, models=models)
        case _:
            return state


def reference_promote(state: PipelineState, event: ModelPromoted) -> PipelineState:
    models = state.models
    if (event.strategy == "reuse" and state.round is not None and state.round.round_id == event.round_id
            and state.round.change_block == state.adaptation.block_id):
        state = replace(state, adaptation=replace(state.adaptation, settled=True))
    if state.champion and state.champion in models:
        models = models.set(state.champion, replace(models[state.champion], status="retired"))
    record = models.get(event.model_version)
    if record is not None:
        models = models.set(event.model_version, replace(
            record, status="champion", promoted_metrics=event.metrics, promoted_at=event.occurred_at))
    if state.round is not None:  # the other candidates of the round lost
        for v in state.round.candidates:
            if v != event.model_version and v in models and models[v].status == "candidate":
                models = models.set(v, replace(models[v], status="rejected"))
    closing = state.round is not None and state.round.round_id == event.round_id
    first_training = state.first_training
    if state.champion is None and not first_training:
        first_training = tuple(dict.fromkeys(
            (state.round.training_blocks if closing else ()) + (record.training_blocks if record else ())))
    c = state.counters
    return replace(
        state, models=models, champion=event.model_version, first_training=first_training,
        round=None if closing else state.round,
        circuit=reference_after_round(state.circuit, succeeded=True) if closing else state.circuit,
        last_check_drifted=None, concept_state=None,  # a new champion starts a fresh error stream
        counters=replace(c, promotions=c.promotions + 1),
    )


def reference_after_round(circuit: Circuit, succeeded: bool) -> Circuit:
    """A round that produced a candidate resets the failure count; one that produced none adds to it."""
    if succeeded:
        return replace(circuit, consecutive_failures=0)
    return replace(circuit, consecutive_failures=circuit.consecutive_failures + 1)


# --- random event sequences over a few colliding ids ---------------------------------------------

blocks = st.sampled_from(["b1", "b2", "b3"])
versions = st.sampled_from(["v1", "v2", "v3", "v4"])
rounds = st.sampled_from(["r1", "r2"])
times = st.sampled_from(["", "2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+00:00"])
shas = st.sampled_from(["s1", "s2", "s3"])
metrics = st.dictionaries(st.sampled_from(["accuracy", "f1_macro"]), st.floats(0, 1), max_size=2)
names = st.tuples(st.sampled_from(["full", "windowed", "v1", "v2"]))
concept = st.one_of(st.none(), st.builds(ConceptDrift, detector=st.just("ddm"), drift=st.booleans(),
                                         warning=st.booleans(), rows_seen=st.integers(0, 9),
                                         state=st.sampled_from(["{}", '{"n": 1}'])))

change_points = st.one_of(st.none(), st.builds(ChangePoint, block_id=blocks, row=st.integers(0, 3),
                                               signal=st.sampled_from(["concept", "performance"])))

events = st.one_of(
    st.builds(PipelineRegistered, name=st.just("p"), config_sha256=shas, config=st.just({"name": "p"}),
              occurred_at=times),
    st.builds(ConfigChanged, config_sha256=shas, config=st.just({"name": "q"}), diff=st.just(()), occurred_at=times),
    st.builds(SchemaFixed, schema=st.just(ColumnSchema(features=("x",), categorical=(), target="y",
                                                       source="config")), occurred_at=times),
    st.builds(BlockArrived, block_id=blocks, file=st.just("f.csv"), sha256=shas, rows=st.integers(1, 5),
              labelled=st.booleans(), artifact=st.just(ART), occurred_at=times),
    st.builds(BlockRejected, file=st.just("f.csv"), sha256=shas, reason_code=st.just("empty_file"),
              message=st.just("m"), occurred_at=times),
    st.builds(PerformanceMeasured, block_id=blocks, model_version=versions, metrics=metrics, occurred_at=times),
    st.builds(DriftChecked, block_id=blocks, drifted=st.booleans(), reasons=st.just(()), features=st.just(()),
              concept=concept, occurred_at=times),
    st.builds(DriftDetected, block_id=blocks, reasons=st.just(("x",)), starts_round=st.booleans(),
              change_point=change_points, occurred_at=times),
    st.builds(RetrainRequested, round_id=rounds, block_id=blocks, strategies=st.just(("full", "windowed")),
              training_blocks=st.just(("b1",)), holdout_blocks=st.just(("b1",)), holdout=st.just("h"),
              seed=st.integers(0, 3), trial=st.booleans(), trigger=st.sampled_from(["drift", "adapt"]),
              change_point=change_points, change_rows=st.integers(0, 9), occurred_at=times),
    st.builds(CandidateTrained, round_id=rounds, model_version=versions, strategy=st.just("full"),
              artifact=st.just(ART), sha256=shas, training_blocks=st.just(("b1",)), seconds=st.just(1.0),
              parent_version=st.one_of(st.none(), versions), occurred_at=times,
              calibration=st.one_of(st.none(), st.just(Calibration(artifact=ART, method="isotonic", rows=5)))),
    st.builds(ChallengerEvaluated, round_id=rounds, model_version=versions, metrics=metrics,
              champion_metrics=metrics, occurred_at=times),
    st.builds(ModelPromoted, model_version=versions, previous_version=st.none(),
              strategy=st.sampled_from(["full", "reuse"]),
              reason=st.just("r"), metrics=metrics, round_id=st.one_of(st.none(), rounds), occurred_at=times),
    st.builds(ChallengerRejected, round_id=rounds, model_versions=st.lists(versions, max_size=2).map(tuple),
              reason=st.just("r"), occurred_at=times),
    st.builds(RetrainFailed, round_id=rounds, strategy=st.just("full"), error=st.just("e"), occurred_at=times),
    st.builds(CircuitOpened, until=times, failures=st.integers(1, 3), backoff_seconds=st.just(60.0),
              occurred_at=times),
    st.builds(CircuitClosed, reason=st.just("r"), occurred_at=times),
    st.builds(ModelRolledBack, from_version=versions, to_version=versions, reason=st.just("r"), occurred_at=times),
    st.builds(ArtifactsPruned, model_versions=st.lists(versions, max_size=2).map(tuple), sha256s=st.just(()),
              reason=st.just("r"), occurred_at=times),
    st.builds(PerformanceEstimated, block_id=blocks, version=versions, metrics=metrics, interval=st.just({}),
              occurred_at=times),
    st.builds(LabelsArrived, block_id=blocks, file=st.just("l.csv"), sha256=shas, rows=st.integers(1, 5),
              artifact=st.just(ART), key=st.just("id"), occurred_at=times),
    st.builds(LabelsChecked, block_id=blocks, model_version=versions, drifted=st.booleans(), reasons=st.just(()),
              concept=concept, occurred_at=times),
    st.builds(Event, occurred_at=times),  # an event the fold does not use: only the version moves
)


@settings(max_examples=300, deadline=None)
@given(st.lists(events, max_size=40))
def test_the_fold_equals_the_dataclasses_replace_fold_after_every_event(log: list) -> None:
    fast, reference = PipelineState(), PipelineState()
    for event in log:
        fast, reference = evolve(fast, event), reference_evolve(reference, event)
        assert fast == reference
        assert type(fast.counters) is Counters and type(fast.circuit) is Circuit
        assert all(type(b) is BlockRecord for b in fast.blocks.values())
        assert all(type(m) is ModelRecord for m in fast.models.values())
        assert fast.round is None or type(fast.round) is RoundRecord


def life() -> list:
    """A hand-written history through every branch: rounds whose other candidates lose at promotion, a
    rejection, failures that open the circuit, a close, a rollback, a prune, a config change."""
    t = "2026-01-01T00:00:00+00:00"
    m = {"accuracy": 0.9}

    def round_(rid: str, *versions: str) -> list:
        return [RetrainRequested(round_id=rid, block_id="b1", strategies=("full", "windowed"), training_blocks=("b1",),
                                 holdout_blocks=("b1",), holdout="h", seed=1, occurred_at=t),
                *[e for v in versions for e in (
                    CandidateTrained(round_id=rid, model_version=v, strategy="full", artifact=ART, sha256=v,
                                     training_blocks=("b1",), seconds=1.0, occurred_at=t,
                                     calibration=Calibration(artifact=ART, method="sigmoid", rows=9, ece=0.02)),
                    ChallengerEvaluated(round_id=rid, model_version=v, metrics=m, champion_metrics={}, occurred_at=t))]]

    return [
        PipelineRegistered(name="p", config_sha256="c1", config={"name": "p"}, occurred_at=t),
        BlockArrived(block_id="b1", file="f1", sha256="s1", rows=5, labelled=True, artifact=ART, occurred_at=t),
        BlockRejected(file="f2", sha256="s2", reason_code="empty_file", message="m", occurred_at=t),
        BlockRejected(file="f1", sha256="s1", reason_code="empty_file", message="m", occurred_at=t),
        *round_("r1", "v1", "v2"),
        ModelPromoted(model_version="v1", previous_version=None, strategy="full", reason="first", metrics=m,
                      round_id="r1", occurred_at=t),
        PerformanceMeasured(block_id="b1", model_version="v1", metrics=m, occurred_at=t),
        PerformanceMeasured(block_id="nope", model_version="v1", metrics=m, occurred_at=t),
        DriftChecked(block_id="b1", drifted=True, reasons=("x",), features=(), occurred_at=t),
        DriftChecked(block_id="nope", drifted=False, reasons=(), features=(),
                     concept=ConceptDrift(detector="ddm", drift=False, warning=False, rows_seen=3, state="{}"),
                     occurred_at=t),
        DriftDetected(block_id="b1", reasons=("x",), occurred_at=t),
        PerformanceEstimated(block_id="b1", version="v1", metrics=m, interval={"accuracy": (0.8, 0.95)},
                             occurred_at=t),
        PerformanceEstimated(block_id="nope", version="v1", metrics=m, interval={}, occurred_at=t),
        BlockArrived(block_id="b2", file="f3", sha256="s3", rows=5, labelled=False, artifact=ART, occurred_at=t),
        LabelsArrived(block_id="b2", file="l1", sha256="s4", rows=5, artifact=ART, key="id", occurred_at=t),
        LabelsArrived(block_id="nope", file="l1", sha256="s4", rows=5, artifact=ART, key="id", occurred_at=t),
        LabelsChecked(block_id="b2", model_version="v1", drifted=True, reasons=("acc fell",), occurred_at=t,
                      concept=ConceptDrift(detector="ddm", drift=True, warning=False, rows_seen=5, state="{1}")),
        LabelsChecked(block_id="b2", model_version="v1", drifted=False, reasons=(), occurred_at=t),
        *round_("r2", "v3", "v4"),
        ChallengerRejected(round_id="r2", model_versions=("v3", "v4"), reason="worse", occurred_at=t),
        *round_("r3"),
        RetrainFailed(round_id="r3", strategy="full", error="e", occurred_at=t),
        ChallengerRejected(round_id="r3", model_versions=(), reason="none", occurred_at=t),
        CircuitOpened(until=t, failures=3, backoff_seconds=60.0, occurred_at=t),
        CircuitClosed(reason="resumed", occurred_at=""),
        *round_("r4", "v5", "v6"),
        ModelPromoted(model_version="v6", previous_version="v1", strategy="full", reason="better", metrics=m,
                      round_id="r4", occurred_at=t),
        ModelRolledBack(from_version="v6", to_version="v1", reason="bad", occurred_at=t),
        ArtifactsPruned(model_versions=("v3", "v9"), sha256s=("v3",), reason="retention", occurred_at=t),
        ConfigChanged(config_sha256="c2", config={"name": "p", "x": 1}, diff=(), occurred_at=t),
        SchemaFixed(schema=ColumnSchema(features=("x",), categorical=(), target="y", source="config"), occurred_at=t),
        Event(occurred_at=t),
    ]


def test_the_fold_equals_the_reference_on_a_whole_life_and_on_the_benchmark_log() -> None:
    from benchmarks.replay_bench import synthetic_events

    for log in (life(), list(synthetic_events(3000))):
        fast, reference = PipelineState(), PipelineState()
        for event in log:
            fast, reference = evolve(fast, event), reference_evolve(reference, event)
            assert fast == reference
    final = PipelineState()
    for event in life():
        final = evolve(final, event)
    assert {m.status for m in final.models.values()} >= {"champion", "retired", "rejected"}
    assert any(m.pruned for m in final.models.values()) and final.counters.rollbacks == 1


def test_no_event_class_is_a_subclass_of_another_so_the_order_of_the_cases_is_free() -> None:
    from pipelines.core.events import ALL_EVENTS

    assert not [(a, b) for a in ALL_EVENTS for b in ALL_EVENTS if a is not b and issubclass(a, b)]
