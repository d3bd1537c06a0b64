"""Weakly supervised localization (Yang et al. 2023, §4.6): how well a map separates object pixels from the rest.

Per image, against a ground-truth mask (True = object): ROC-AUC of the pixel scores (Mann-Whitney, ties
counted half), and over every threshold on the scores the best F1 and the lowest MAE (mean absolute error
between the thresholded map and the mask: the fraction of misclassified pixels).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


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
