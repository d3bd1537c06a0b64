"""What ``igcli evaluate`` reports: an evaluation's per-image values merged over all its parts, their aggregates
and curves, and the CSV of them. Built from the results files (:mod:`igcli.results_store`), so a part, a
resumed run and ``--summary`` all report the same numbers."""

from __future__ import annotations

import csv
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..metrics.catalog import get_metric
from ..recipe import Recipe
from ..results_store import StoredResults
from .evaluate_batch import RELOAD_FAILED


@dataclass
class EvaluateResult:
    """One evaluation of one output: per-image values over every part, their aggregates, and what this run did.

    ``rows``: one dict per stored map scored (path, target, ranked, each finite value, and
    ``NAME_unscorable`` with the reason where a value is unscorable). ``aggregate``: value name -> mean, median,
    std, count, ``value`` (the headline: the mean, or for SIC/AIC the area under the aggregate curve) and
    ``higher_is_better``. ``skipped``: images not scored (or not for some metrics), with the reason.
    """

    source: str
    settings: dict[str, Any]  # the attribution run's, as stored
    rank: str
    metrics: list[str]
    evaluation: dict[str, Any] = field(default_factory=dict)  # the evaluation's settings (results files)
    folder: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)
    aggregate: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    unrankable: int = 0
    unscorable: dict[str, int] = field(default_factory=dict)
    curves: dict[str, Any] = field(default_factory=dict)  # curve name -> (N, L) per-image curves
    seed: int = 0
    min_pred: float | None = None
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    part: str = "0/1"
    scored_now: int = 0  # images scored by this run
    images_per_second: float = 0.0  # streaming rate of this run (images scored / seconds streaming)
    seconds: float = 0.0
    rows_total: int = 0  # stored maps the evaluation covers (--limit), all parts
    rows_scored: int = 0  # of those, scored (by any run or part)
    interrupted: bool = False
    warnings: list[str] = field(default_factory=list)  # e.g. another part's damaged results file, left out

    rows_skipped: int = 0  # of those, not scored because their image could not be reloaded

    @property
    def complete(self) -> bool:
        """Every stored map the evaluation covers is scored or skipped (by some run or part)."""
        return self.rows_scored + self.rows_skipped >= self.rows_total

    @property
    def recipe(self) -> Recipe:
        return Recipe.from_settings(self.settings)

    @property
    def exit_code(self) -> int:
        from .pipeline import EXIT_INTERRUPTED, EXIT_SKIPPED

        return EXIT_INTERRUPTED if self.interrupted else EXIT_SKIPPED if self.skipped else 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: per-image rows, aggregates, the aggregate curves (``curves``: name -> x, y)."""
        data = asdict(self)
        data["curves"] = {name: {"x": list(map(float, x)), "y": y.tolist()}
                          for name, (x, y) in self.aggregate_curves().items()}
        data["complete"] = self.complete
        data["exit_code"] = self.exit_code
        return data

    def aggregate_curves(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per curve: (x, y) of the aggregate curve over images with a finite curve."""
        out = {}
        for metric in map(get_metric, self.metrics):
            for name, grid in metric.curve_x.items():
                curves = np.asarray(self.curves.get(name, np.zeros((0, 0))))
                finite = curves[np.isfinite(curves).all(axis=1)] if curves.size else curves
                if len(finite):
                    y = metric.aggregate[name](finite)[0] if name in metric.aggregate else finite.mean(axis=0)
                    out[name] = (np.asarray(grid(self.options.get(metric.name, {}))), np.asarray(y))
        return out


def from_stored(stored: StoredResults, source: str, attribution_settings: dict[str, Any],
                keys: dict[tuple[str, int], int] | None = None) -> EvaluateResult:
    """The merged result of an evaluation folder's files; ``keys``: only these (path, target) rows (``--limit``),
    in the order of their positions (the attribution output's), so every split into parts sums alike."""
    settings = stored.settings or {}
    metrics = list(settings.get("metrics", []))
    result = EvaluateResult(source, attribution_settings, settings.get("rank", "signed"), metrics, evaluation=settings,
                            seed=settings.get("seed", 0), min_pred=settings.get("min_pred"),
                            options=settings.get("options", {}))
    values = {name: np.concatenate(parts) for name, parts in stored.values.items()}
    curves = {name: np.concatenate(parts) for name, parts in stored.curves.items()}
    chosen = [i for i, key in enumerate(zip(stored.paths, stored.targets)) if keys is None or key in keys]
    seen: set[tuple[str, int]] = set()
    keep = []
    for i in chosen:  # a row scored twice (two runs raced past the lock): the first counts
        key = (stored.paths[i], stored.targets[i])
        if key not in seen:
            seen.add(key)
            keep.append(i)
    if keys is not None:
        keep.sort(key=lambda i: keys[(stored.paths[i], stored.targets[i])])
    value_names = [name for metric in map(get_metric, metrics) for name in metric.value_names]
    for i in keep:
        row: dict[str, Any] = {"path": stored.paths[i], "target": int(stored.targets[i]), "ranked": stored.ranked[i]}
        for name in value_names:
            value = float(values[name][i]) if name in values else float("nan")
            reason = stored.unscorable.get(name, [""] * (i + 1))[i]
            if np.isfinite(value):
                row[name] = value
            elif reason:
                row[f"{name}_unscorable"] = reason
                result.unscorable[name] = result.unscorable.get(name, 0) + 1
        result.rows.append(row)
    result.unrankable = sum(not stored.ranked[i] for i in keep)
    result.curves = {name: array[keep] for name, array in curves.items()}
    result.rows_scored = len(keep)
    scored_paths = {stored.paths[i] for i in keep}
    covered_paths = {key[0] for key in keys} if keys is not None else set()
    result.skipped = [{"path": path, "reason": reason} for path, reason in dict.fromkeys(stored.skipped)
                      if keys is None or path in covered_paths]
    # An image that could not be reloaded once and was scored by a later run (--resume --root) is not skipped.
    result.skipped = [entry for entry in result.skipped
                      if entry["path"] not in scored_paths or not entry["reason"].startswith(RELOAD_FAILED)]
    if keys is not None:
        unreadable = {entry["path"] for entry in result.skipped if entry["reason"].startswith(RELOAD_FAILED)}
        result.rows_skipped = sum(1 for path, _ in keys if path in unreadable and path not in scored_paths)
    result.aggregate = aggregate(result)
    return result


def aggregate(result: EvaluateResult) -> dict[str, dict[str, Any]]:
    """Per value: mean, median, std and count over images with a finite value, ``value`` (the headline) and
    ``higher_is_better`` (from the metric registry)."""
    out = {}
    for metric in map(get_metric, result.metrics):
        for entry in metric.values:
            name = entry.name
            values = np.array([row[name] for row in result.rows if name in row], dtype=np.float64)
            stats: dict[str, Any] = {
                "mean": float(values.mean()) if values.size else float("nan"),
                "median": float(np.median(values)) if values.size else float("nan"),
                "std": float(values.std()) if values.size else float("nan"),
                "count": int(values.size),
                "higher_is_better": entry.higher_is_better,
            }
            stats["value"] = stats["mean"]
            if name in metric.aggregate:
                curves = np.asarray(result.curves.get(name, np.zeros((0, 0))))
                finite = curves[np.isfinite(curves).all(axis=1)] if curves.size else curves
                stats["value"] = metric.aggregate[name](finite)[1] if len(finite) else float("nan")
            if name in result.unscorable or name in metric.aggregate:
                stats["unscorable"] = result.unscorable.get(name, 0)
            out[name] = stats
    return out


def write_csv(results: list[EvaluateResult], path: str | os.PathLike) -> None:
    """One row per (output, image): source, method, rule, rank, path, target, ranked, every metric value."""
    names = sorted({k for r in results for row in r.rows for k in row} - {"path", "target", "ranked"})
    # surrogateescape: a file name that is not UTF-8 is written back as its own bytes
    with open(path, "w", newline="", encoding="utf-8", errors="surrogateescape") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "method", "rule", "rank", "path", "target", "ranked", *names])
        for result in results:
            for row in result.rows:
                writer.writerow([result.source, result.recipe.method, result.recipe.rule, result.rank,
                                 row["path"], row["target"], row["ranked"], *(row.get(n, "") for n in names)])


def short_source(result: EvaluateResult) -> str:
    return Path(result.source).name
