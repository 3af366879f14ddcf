"""Model specs: turn a `model.class` path plus params into one scikit-learn Pipeline shared by every strategy.

`ModelSpec("sklearn.linear_model.LogisticRegression", {"C": 0.5})` names any importable class with
`fit`/`predict`. A user's own class is the user's own code: importing it runs that code, exactly as if the
user had imported it themselves. `make_model` wraps the estimator in the one preprocessing every strategy and
the initial model share (impute numerics, impute + one-hot categoricals), so candidates stay comparable.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

__all__ = ["ModelSpec", "ModelSpecError", "build_estimator", "make_model", "final_estimator", "seeded"]


class ModelSpecError(ValueError):
    """The configured `model.class` or its params cannot give a usable estimator; the message says what to fix."""


@dataclass(frozen=True)
class ModelSpec:
    """Which estimator to train: a dotted class path and its constructor params (JSON-able values)."""

    class_path: str
    params: dict[str, Any] = field(default_factory=dict)


def _import_class(class_path: str) -> type:
    module_name, _, class_name = class_path.rpartition(".")
    if not module_name or not class_name:
        raise ModelSpecError(
            f"model.class {class_path!r} is not a dotted path; write it as 'package.module.Class', "
            "e.g. 'sklearn.linear_model.LogisticRegression'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelSpecError(f"model.class {class_path!r} cannot be imported: {exc}") from exc
    try:
        cls = getattr(module, class_name)
    except AttributeError as exc:
        raise ModelSpecError(
            f"model.class {class_path!r} cannot be imported: module {module_name!r} has no attribute "
            f"{class_name!r}"
        ) from exc
    if not inspect.isclass(cls):
        raise ModelSpecError(f"model.class {class_path!r} is not a class")
    return cls


def build_estimator(spec: ModelSpec) -> Any:
    """Import `spec.class_path` and construct it with `spec.params`, with errors that name what is wrong.

    >>> build_estimator(ModelSpec("sklearn.linear_model.LogisticRegression", {"C": 0.5}))
    LogisticRegression(C=0.5)
    >>> build_estimator(ModelSpec("nosuchpkg.Model", {}))
    Traceback (most recent call last):
    ...
    pipelines.retraining.models.ModelSpecError: model.class 'nosuchpkg.Model' cannot be imported: No module named 'nosuchpkg'
    """
    cls = _import_class(spec.class_path)
    if not (callable(getattr(cls, "fit", None)) and callable(getattr(cls, "predict", None))):
        raise ModelSpecError(
            f"model.class {spec.class_path!r} is not a scikit-learn compatible estimator (no fit/predict)"
        )
    if not isinstance(spec.params, dict):
        raise ModelSpecError(f"model.params for {spec.class_path!r} must be a table of name = value")
    allowed = _accepted_params(cls)
    if allowed is not None:
        unknown = sorted(set(spec.params) - allowed)
        if unknown:
            raise ModelSpecError(
                f"model.params for {spec.class_path!r}: unknown param {', '.join(map(repr, unknown))}; "
                f"allowed: {', '.join(sorted(allowed)) or 'none'}"
            )
    try:
        estimator = cls(**spec.params)
    except TypeError as exc:
        raise ModelSpecError(f"model.params for {spec.class_path!r} rejected: {exc}") from exc
    # scikit-learn validates param values at fit time; check them now so a bad value fails at config load.
    validate = getattr(estimator, "_validate_params", None)
    if callable(validate) and hasattr(estimator, "_parameter_constraints"):
        try:
            validate()
        except (ValueError, TypeError) as exc:
            raise ModelSpecError(f"model.params for {spec.class_path!r}: {exc}") from exc
    return estimator


def _accepted_params(cls: type) -> set[str] | None:
    """Constructor keyword names, or None when the class takes **kwargs (then the class itself checks)."""
    try:
        signature = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return None
    names = set()
    for name, param in signature.parameters.items():
        if name == "self":
            continue
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            return None
        if param.kind is not inspect.Parameter.VAR_POSITIONAL:
            names.add(name)
    return names


def make_model(spec: ModelSpec, features: tuple[str, ...], categorical: tuple[str, ...]) -> Pipeline:
    """A fresh, unfitted Pipeline: preprocessing shared by all strategies, then the configured estimator.

    Numeric features: median imputation (an all-missing column becomes 0, so the width never changes), then
    standard scaling (linear models and gradient solvers need comparable scales: unscaled, a salary column
    kept LogisticRegression from converging on Agrawal streams; trees are unaffected by it).
    Categorical features: missing values become their own category, then one-hot with unknown categories
    ignored, so a category first seen after training does not break prediction.

    >>> m = make_model(ModelSpec("sklearn.linear_model.LinearRegression", {}), ("x", "c"), ("c",))
    >>> [name for name, _ in m.steps]
    ['prep', 'model']
    """
    features = tuple(features)
    categorical = tuple(categorical)
    unknown = [c for c in categorical if c not in features]
    if unknown:
        raise ModelSpecError(f"categorical columns {unknown} are not among the features {list(features)}")
    numeric = [f for f in features if f not in categorical]
    transformers = []
    if numeric:
        transformers.append(("num", Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                                               ("scale", StandardScaler())]), numeric))
    if categorical:
        transformers.append(
            (
                "cat",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", keep_empty_features=True)),
                        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                list(categorical),
            )
        )
    if not transformers:
        raise ModelSpecError("no features to train on: the feature list is empty")
    prep = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
    return Pipeline([("prep", prep), ("model", build_estimator(spec))])


def seeded(model: Any, seed: int, spec: ModelSpec) -> Any:
    """Set the estimator's `random_state` to `seed` unless the user fixed it in `spec.params`."""
    if "random_state" in spec.params:
        return model
    final = final_estimator(model)
    if "random_state" in final.get_params(deep=False):
        final.set_params(random_state=seed)
    return model


def final_estimator(model: Any) -> Any:
    """The last step of a Pipeline (the estimator itself otherwise)."""
    return model.steps[-1][1] if isinstance(model, Pipeline) else model
