"""Content-addressed artifacts: round trips, tamper and loss detection, the skops trust policy, pruning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from calmops_actors.artifacts import (
    ArtifactMissing,
    ArtifactRef,
    ArtifactStore,
    ArtifactTampered,
    ArtifactUntrusted,
)
from pipelines.retraining.models import ModelSpec, make_model


def _frame(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=n)
    return pd.DataFrame({"x": x, "c": rng.choice(["a", "b"], size=n), "y": np.where(x > 0, "yes", "no")})


def _fitted(class_path: str = "sklearn.linear_model.LogisticRegression"):
    frame = _frame()
    return make_model(ModelSpec(class_path, {}), ("x", "c"), ("c",)).fit(frame, frame["y"]), frame


def test_model_round_trips_through_skops(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    model, frame = _fitted()
    ref = store.put_model(model)
    assert ref.kind == "model-skops" and ref.artifact_id == f"{ref.sha256}.skops"
    path = tmp_path / ref.sha256[:2] / ref.artifact_id
    assert path.stat().st_size == ref.size
    loaded = store.get_model(ref)
    assert np.array_equal(loaded.predict_proba(frame), model.predict_proba(frame))
    assert [p.name for p in path.parent.iterdir()] == [ref.artifact_id]  # no temp file left behind


def test_frame_round_trips_through_parquet(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    frame = _frame().assign(
        missing=[np.nan, 1.5] * 30, when=pd.date_range("2026-01-01", periods=60, freq="h")
    )
    ref = store.put_frame(frame)
    assert ref.kind == "frame-parquet"
    pd.testing.assert_frame_equal(store.get_frame(ref), frame)
    assert store.put_frame(frame) == ref  # same content, same artifact


def test_a_single_changed_byte_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    model, _ = _fitted()
    ref = store.put_model(model)
    path = store.path(ref)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactTampered) as info:
        store.get_model(ref)
    message = str(info.value)
    assert ref.artifact_id in message and f"expected sha256 {ref.sha256}" in message
    assert "found " in message and "It was not loaded" in message and "Restore the file" in message
    assert [type(e) for e in store.verify_all([ref])] == [ArtifactTampered]


def test_missing_artifact_is_reported_not_loaded(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    ref = store.put_frame(_frame())
    store.path(ref).unlink()
    with pytest.raises(ArtifactMissing, match="is missing: no file at"):
        store.get_frame(ref)


class HandRolled(ClassifierMixin, BaseEstimator):
    """A user's own estimator: outside the skops trust policy, so it is stored with pickle."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


def test_models_outside_the_trusted_families_fall_back_to_pickle_behind_the_hash(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    frame = _frame()
    model = HandRolled().fit(frame[["x"]], frame["y"])
    ref = store.put_model(model)
    assert ref.kind == "model-pickle"
    assert store.get_model(ref).predict(frame[["x"]]).tolist() == ["no"] * len(frame)
    store.path(ref).write_bytes(store.path(ref).read_bytes() + b"\x00")
    with pytest.raises(ArtifactTampered):
        store.get_model(ref)


def test_skops_file_with_types_outside_the_policy_is_refused(tmp_path: Path) -> None:
    # Written by a store that trusted the test module; read by one with the default policy.
    frame = _frame()
    lenient = ArtifactStore(tmp_path, trusted_prefixes=("sklearn.", HandRolled.__module__ + "."))
    ref = lenient.put_model(HandRolled().fit(frame[["x"]], frame["y"]))
    assert ref.kind == "model-skops"
    with pytest.raises(ArtifactUntrusted, match="HandRolled"):
        ArtifactStore(tmp_path).get_model(ref)


def test_forged_reference_is_refused(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    ref = store.put_frame(_frame())
    forged = ArtifactRef(artifact_id=ref.artifact_id, sha256="0" * 64, kind=ref.kind, size=ref.size)
    with pytest.raises(Exception, match="does not match its sha256"):
        store.get_frame(forged)


def test_prune_keeps_only_the_listed_artifacts_and_ignores_other_files(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    model, frame = _fitted()
    keep = store.put_model(model)
    drop = store.put_frame(frame)
    in_flight = store.path(keep).parent / ".tmp-abc.skops"
    in_flight.write_bytes(b"partial")
    assert store.prune({keep.artifact_id}) == [drop.artifact_id]
    assert store.verify_all([keep]) == [] and in_flight.exists()
    assert [type(e) for e in store.verify_all([keep, drop])] == [ArtifactMissing]
