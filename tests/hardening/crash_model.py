"""A scikit-learn style classifier whose `fit` kills the process it runs in: a training task's worker dying.

Ray workers import it as `tests.hardening.crash_model` (their working directory is the repository root, where
pytest runs), the same way a user's own `model.class` is imported.
"""

from __future__ import annotations

import os

from sklearn.base import BaseEstimator, ClassifierMixin


class WorkerKillingClassifier(ClassifierMixin, BaseEstimator):
    """`fit` ends its process at once (as the OOM killer or a segfault in native code would)."""

    def fit(self, X, y):
        os._exit(137)

    def predict(self, X):  # pragma: no cover - never reached
        raise RuntimeError("never fitted")
