"""The spreads a shard-writing run reports in its summary, over the rows it wrote: the error bars of ensemble
maps (``relative_se``) and the gradient evaluations of ``--steps auto`` maps."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def error_bar_spread(parts: Sequence[np.ndarray]) -> dict[str, float] | None:
    """Median, 90th percentile and maximum of the finite error bars in ``parts`` (per-row arrays), and their
    count; None when there is none."""
    values = np.concatenate(parts) if parts else np.zeros(0)
    values = values[np.isfinite(values)]
    if not values.size:
        return None
    return {"median": round(float(np.median(values)), 6), "p90": round(float(np.percentile(values, 90)), 6),
            "max": round(float(values.max()), 6), "count": int(values.size)}


def evaluation_spread(evaluations: Sequence[np.ndarray], met: Sequence[np.ndarray]) -> dict[str, float] | None:
    """``--steps auto``: mean, median, 90th percentile and maximum of the gradient evaluations per map in
    ``evaluations`` (per-row integer arrays), their count, and ``tolerance_met``, the fraction of those maps that
    met the tolerance (``met``: per-row booleans, the same rows); None when there is no row."""
    values = np.concatenate(evaluations) if evaluations else np.zeros(0, np.int64)
    if not values.size:
        return None
    return {"mean": round(float(values.mean()), 3), "median": float(np.median(values)),
            "p90": float(np.percentile(values, 90)), "max": int(values.max()), "count": int(values.size),
            "tolerance_met": round(float(np.concatenate(met).astype(bool).mean()), 6)}
