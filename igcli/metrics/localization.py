"""Weakly supervised localization (Yang et al. 2023, §4.6): how well a map separates object pixels from the rest.

Per image, against a ground-truth mask (True = object): ROC-AUC of the pixel scores (Mann-Whitney, ties
counted half), and over every threshold on the scores the best F1 and the lowest MAE (mean absolute error
between the thresholded map and the mask: the fraction of misclassified pixels).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from .base import Metric, MetricBatch, MetricScores, Value


def roc_auc(scores: np.ndarray, mask: np.ndarray) -> float:
    """ROC-AUC of ``scores`` for the positives in ``mask`` (NaN when the mask is all one class)."""
    scores, mask = np.asarray(scores, np.float64).ravel(), np.asarray(mask, bool).ravel()
    positives, negatives = int(mask.sum()), int((~mask).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[mask].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def best_f1_and_mae(scores: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(best F1, lowest MAE) over thresholds "score >= t" for every distinct score t (and t = +inf)."""
    scores, mask = np.asarray(scores, np.float64).ravel(), np.asarray(mask, bool).ravel()
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_mask = scores[order], mask[order]
    true_positives = np.cumsum(sorted_mask)
    predicted = np.arange(1, scores.size + 1)
    last_of_value = np.r_[np.flatnonzero(np.diff(sorted_scores) != 0), scores.size - 1]  # cut only between values
    tp, pp = true_positives[last_of_value], predicted[last_of_value]
    positives = int(mask.sum())
    f1 = np.where(pp + positives > 0, 2 * tp / (pp + positives), 0.0)
    errors = (pp - tp) + (positives - tp)
    mae = np.minimum(errors.min(initial=scores.size), positives) / scores.size  # t = +inf predicts nothing
    return float(f1.max(initial=0.0)), float(mae)


# -- registry entries (igcli.metrics.catalog) ------------------------------------------------------------------


def _localization(batch: MetricBatch) -> MetricScores:
    count = len(batch)
    values = {name: np.full(count, np.nan) for name in ("roc_auc", "best_f1", "best_mae")}
    for i in range(count):  # rankdata and the sweep over thresholds are per image on the host
        flat, mask = batch.scores[i].numpy(), batch.truth[i].cpu().numpy()
        values["roc_auc"][i] = roc_auc(flat, mask)
        values["best_f1"][i], values["best_mae"][i] = best_f1_and_mae(flat, mask)
    return MetricScores(values=values)


LOCALIZATION = Metric(
    "localization", "localization", "how well the pixel scores separate the object (masks or boxes) from the rest",
    "Yang et al. 2023 (IDGI), §4.6", (Value("roc_auc", True, "ROC-AUC of the scores for object pixels"),
                                      Value("best_f1", True, "best F1 over thresholds"),
                                      Value("best_mae", False, "lowest fraction of misclassified pixels")),
    _localization, needs_truth=True)
