"""ModelSpec -> estimator: clear errors for bad class paths and params; one shared preprocessing Pipeline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from pipelines.retraining.models import (
    ModelSpec,
    ModelSpecError,
    build_estimator,
    final_estimator,
    make_model,
    seeded,
)


def test_builds_the_named_class_with_params() -> None:
    est = build_estimator(ModelSpec("sklearn.linear_model.LogisticRegression", {"C": 0.25, "max_iter": 50}))
    assert type(est).__name__ == "LogisticRegression"
    assert (est.C, est.max_iter) == (0.25, 50)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (ModelSpec("x.Y", {}), "model.class 'x.Y' cannot be imported: No module named 'x'"),
        (ModelSpec("sklearn.linear_model.NoSuchModel", {}), "module 'sklearn.linear_model' has no attribute"),
        (ModelSpec("LogisticRegression", {}), "is not a dotted path"),
        (
            ModelSpec("sklearn.preprocessing.StandardScaler", {}),
            "model.class 'sklearn.preprocessing.StandardScaler' is not a scikit-learn compatible estimator "
            "(no fit/predict)",
        ),
        (ModelSpec("sklearn.linear_model.LogisticRegression", {"Cee": 1.0}), "unknown param 'Cee'"),
        (ModelSpec("sklearn.linear_model.LogisticRegression", {"C": -1.0}), "The 'C' parameter"),
        (ModelSpec("sklearn.linear_model.PoissonRegressor", {"solver": "magic"}), "The 'solver' parameter"),
    ],
)
def test_bad_specs_raise_model_spec_error_naming_the_problem(spec: ModelSpec, message: str) -> None:
    with pytest.raises(ModelSpecError) as info:
        build_estimator(spec)
    assert message in str(info.value)


def test_make_model_one_hot_encodes_categoricals_and_survives_unseen_and_missing_values() -> None:
    train = pd.DataFrame({"x": [0.0, 1.0, np.nan, 3.0] * 5, "c": ["a", "b", "a", None] * 5})
    y = (train["c"] == "a").astype(int)
    model = make_model(ModelSpec("sklearn.tree.DecisionTreeClassifier", {}), ("x", "c"), ("c",)).fit(train, y)
    assert isinstance(model, Pipeline)
    # 1 numeric column + categories a, b and the "missing" category
    assert model[:-1].transform(train).shape == (20, 4)
    assert model.predict(train).tolist() == y.tolist()
    unseen = pd.DataFrame({"x": [np.nan], "c": ["zzz"]})
    assert model.predict(unseen).shape == (1,)


def test_numeric_column_entirely_missing_keeps_its_width() -> None:
    frame = pd.DataFrame({"x": [np.nan] * 6, "z": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    model = make_model(ModelSpec("sklearn.linear_model.LinearRegression", {}), ("x", "z"), ()).fit(
        frame, frame["z"]
    )
    assert model[:-1].transform(frame).shape == (6, 2)


def test_categorical_not_among_features_is_refused() -> None:
    with pytest.raises(ModelSpecError, match="categorical columns"):
        make_model(ModelSpec("sklearn.linear_model.LinearRegression", {}), ("x",), ("c",))


def test_seeded_sets_random_state_unless_the_user_fixed_it() -> None:
    spec = ModelSpec("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 3})
    model = seeded(make_model(spec, ("x",), ()), 17, spec)
    assert final_estimator(model).random_state == 17
    fixed = ModelSpec("sklearn.ensemble.RandomForestClassifier", {"random_state": 3})
    assert final_estimator(seeded(make_model(fixed, ("x",), ()), 17, fixed)).random_state == 3
