"""The expensive drift test (MMD with permutations) as a Ray task, so it runs outside the actor."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import ray

from pipelines.config.drift import DriftSettings
from pipelines.drift.multivariate import check_multivariate
from pipelines.drift.results import MultivariateDrift


@ray.remote(max_retries=1)
def multivariate_task(reference_frame: pd.DataFrame, block: pd.DataFrame, numeric: Sequence[str],
                      settings: DriftSettings, seed: int) -> MultivariateDrift:
    """MMD between the reference and the block on seeded, standardised subsamples (pure and repeatable)."""
    return check_multivariate(reference_frame, block, numeric, settings, seed)
