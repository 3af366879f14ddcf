"""Compatibility name for models stored before the `pipelines` package was split: a pickled IPIP model names
its class `pipelines.ipip.IPIPClassifier`. New code imports `pipelines.retraining.ipip`."""

from pipelines.retraining.ipip import EnsembleInfo, IPIPClassifier  # noqa: F401 - the stored name
