"""Which way is better for every value ``igcli evaluate`` reports: the one table the printed results, the JSON
(``higher_is_better`` per aggregate) and the README read.

Sources: insertion/deletion, Petsiuk et al. 2018 (RISE) and Yang et al. 2023 §4.3 (a good map makes the score rise
fast when its top pixels are put back, fall fast when they are removed); ABPC, Miglani et al. 2020 §3.2
(bottom-first minus top-first curve: larger means the ranking beats its reverse); SIC/AIC, Kapishnikov et al.
2019 (area under the performance-information curve); max-sensitivity, Yeh et al. 2019 (the largest relative
change of the map under small noise); JPEG stability here is -ln MSE between maps (higher: more alike); the
closed-path error is 0 for a path-independent method; localization ROC-AUC and best F1 rise, MAE falls with
better maps (Yang et al. 2023 §4.6); the completeness gap |sum(attr) - (f(x) - f(x'))| / |f(x) - f(x')| is 0 for an
exact integral (Sundararajan et al. 2017 §3).
"""

from __future__ import annotations

HIGHER_IS_BETTER: dict[str, bool] = {
    "insertion": True,
    "insertion_ratio": True,
    "deletion": False,
    "deletion_ratio": False,
    "abpc": True,
    "sic": True,
    "aic": True,
    "sic-msssim": True,
    "aic-msssim": True,
    "sensitivity": False,
    "jpeg_stability": True,
    "closed_path_mse": False,
    "roc_auc": True,
    "best_f1": True,
    "best_mae": False,
    "completeness_gap": False,
}


def better_mark(name: str) -> str:
    """``↑ higher`` or ``↓ lower`` for a reported value, for tables."""
    return "↑ higher" if HIGHER_IS_BETTER[name] else "↓ lower"
