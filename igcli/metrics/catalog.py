"""Which metrics ``igcli evaluate`` computes, the values each gives per image, and what each needs."""

from __future__ import annotations

from typing import Sequence

from ..errors import InvalidArgumentError

METRICS = ("insertion", "deletion", "abpc", "sic", "aic", "sic-msssim", "aic-msssim", "sensitivity", "jpeg-stability",
           "closed-path", "localization", "completeness")
RECOMPUTING = ("sensitivity", "jpeg-stability", "closed-path")
PIC_METRICS = ("sic", "aic", "sic-msssim", "aic-msssim")
# Values each metric contributes per image.
METRIC_VALUES = {
    "insertion": ("insertion", "insertion_ratio"),
    "deletion": ("deletion", "deletion_ratio"),
    "abpc": ("abpc",),
    **{name: (name,) for name in ("sic", "aic", "sic-msssim", "aic-msssim")},
    "sensitivity": ("sensitivity",),
    "jpeg-stability": ("jpeg_stability",),
    "closed-path": ("closed_path_mse",),
    "localization": ("roc_auc", "best_f1", "best_mae"),
    "completeness": ("completeness_gap",),
}
NEEDS_MODEL = {"insertion", "deletion", "abpc", *PIC_METRICS, *RECOMPUTING}
SCORED_BY_MODEL = ("insertion", "deletion", "abpc", *PIC_METRICS)  # through the Engine, NaN for a non-finite output


def parse_metrics(text: str | Sequence[str]) -> list[str]:
    """``--metric``: comma-separated names (or a sequence), each known, in order, without repeats."""
    names = [m.strip() for m in (text.split(",") if isinstance(text, str) else text) if m.strip()]
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise InvalidArgumentError(f"--metric {','.join(unknown) or text!r}: choose from {', '.join(METRICS)}")
    return list(dict.fromkeys(names))
