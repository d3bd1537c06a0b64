"""What ``igcli evaluate`` returns: per-image values, their aggregates and curves, and the CSV of them."""

from __future__ import annotations

import csv
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..metrics import pic
from ..metrics.catalog import METRIC_VALUES, PIC_METRICS
from ..metrics.directions import HIGHER_IS_BETTER
from ..metrics.perturbation import INSERTION_FRACTIONS
from ..recipe import Recipe


@dataclass
class EvaluateResult:
    """Per-image values and their aggregates for one output."""

    source: str
    settings: dict[str, Any]
    rank: str
    metrics: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)  # path, target, and one value per metric value
    aggregate: dict[str, dict[str, float]] = field(default_factory=dict)  # value -> mean, median, std, count
    skipped: list[dict[str, str]] = field(default_factory=list)
    unrankable: int = 0
    unscorable: dict[str, int] = field(default_factory=dict)  # metric -> images it cannot score (PIC, sensitivity)
    curves: dict[str, list] = field(default_factory=dict)  # PIC metric -> per-image curves (for the aggregate)
    seed: int = 0
    min_pred: float | None = None  # SIC/AIC's threshold on the original's score, when set
    seconds: float = 0.0

    @property
    def recipe(self) -> Recipe:
        """How the evaluated maps were made (``settings`` is the recipe as stored, for the JSON output)."""
        return Recipe.from_settings(self.settings)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: per-image rows, aggregates, and for SIC/AIC the aggregate curve (x: pic.curve_grid())."""
        data = asdict(self)
        data["curves"] = {name: {"x": x.tolist(), "y": y.tolist()} for name, (x, y) in self.aggregate_curves().items()}
        return data

    def aggregate_curves(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per curve metric: (x, y) of the aggregate curve (SIC: median over images; the others: mean)."""
        out = {}
        for name, curves in self.curves.items():
            if curves:
                x = INSERTION_FRACTIONS if name in ("insertion", "deletion") else pic.curve_grid()
                stacked = np.asarray(curves)
                out[name] = (x, np.median(stacked, axis=0) if name.startswith("sic") else stacked.mean(axis=0))
        return out


def aggregate(result: EvaluateResult, metrics: list[str]) -> dict[str, dict[str, float]]:
    """Per value: mean, median, std and count over images, ``value``, the headline number (the mean, or for
    SIC/AIC the area under the aggregate curve: median curve for SIC, mean for AIC, as the reference), and
    ``higher_is_better`` (:mod:`igcli.metrics.directions`)."""
    aggregate = {}
    for metric in metrics:
        for name in METRIC_VALUES[metric]:
            values = np.array([r[name] for r in result.rows if isinstance(r.get(name), float) and np.isfinite(r[name])],
                              dtype=np.float64)
            entry = {
                "mean": float(values.mean()) if values.size else float("nan"),
                "median": float(np.median(values)) if values.size else float("nan"),
                "std": float(values.std()) if values.size else float("nan"),
                "count": int(values.size),
                "higher_is_better": HIGHER_IS_BETTER[name],
            }
            entry["value"] = entry["mean"]
            if name in result.unscorable or name in PIC_METRICS:
                entry["unscorable"] = result.unscorable.get(name, 0)
            if name in PIC_METRICS:  # the curves of PIC_METRICS are in result.curves under the same names
                entry["value"] = pic.aggregate(result.curves[name], name)[1] if result.curves.get(name) else float("nan")
            aggregate[name] = entry
    return aggregate


def write_csv(results: list[EvaluateResult], path: str | os.PathLike) -> None:
    """One row per (output, image): source, rank, path, target, every metric value."""
    names = sorted({k for r in results for row in r.rows for k in row} - {"path", "target", "ranked"})
    # surrogateescape: a file name that is not UTF-8 is written back as its own bytes
    with open(path, "w", newline="", encoding="utf-8", errors="surrogateescape") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "method", "rule", "rank", "path", "target", "ranked", *names])
        for result in results:
            for row in result.rows:
                writer.writerow([result.source, result.recipe.method, result.recipe.rule, result.rank,
                                 row["path"], row["target"], row["ranked"], *(row.get(n, "") for n in names)])
