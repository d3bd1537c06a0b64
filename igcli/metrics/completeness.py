"""The completeness gap the run stored (Sundararajan et al. 2017, §3, Proposition 1):
|sum(map) - (f(x) - f(x'))| / |f(x) - f(x')|, 0 for an exact path integral. No model is needed."""

from __future__ import annotations

import numpy as np

from .base import Metric, MetricBatch, MetricScores, Value


def _completeness(batch: MetricBatch) -> MetricScores:
    return MetricScores(values={"completeness_gap": np.asarray(batch.completeness_gap, dtype=np.float64)})


COMPLETENESS = Metric(
    "completeness", "path", "the stored completeness gap |sum(map) - (f(x) - f(x'))| / |f(x) - f(x')|",
    "Sundararajan et al. 2017, §3", (Value("completeness_gap", False, "relative gap (0: exact integral)"),),
    _completeness, ranked=False)
