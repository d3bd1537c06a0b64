"""One batch of ``igcli evaluate``: stored rows in, the registry's metrics over them, result columns out.

For B stored rows it reloads the input images where they are now and preprocesses them as the run did (only
when a metric needs the model), ranks pixels by the stored maps (``--rank``), builds a
:class:`~igcli.metrics.base.MetricBatch` for the rows each metric takes (ranking metrics: rows whose map has a
ranking; localization: rows with ground truth) and gathers every metric's values, reasons and curves into
the columns of :class:`~igcli.results_store.ResultsWriter`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..data import describe_decode_error, load_rgb, normalize, preprocess_pixels
from ..engine import Engine
from ..metrics.base import Metric, MetricBatch
from ..metrics.ranking import has_ranking, pixel_scores
from ..models import Preprocessing
from ..output import DRAW_KEYS, IMAGE_PATHS, missing_image_hint
from ..text import path_seed, shown_path

RELOAD_FAILED = "cannot reload the input image"
NONFINITE = "NaN or infinity in the model's outputs for this image or a perturbed copy of it"


@dataclass
class Scorer:
    """What every batch of one evaluation shares."""

    metrics: list[Metric]
    options: dict[str, dict[str, Any]]
    rank: str
    seed: int
    device: torch.device
    preprocessing: Preprocessing
    engine: Engine | None = None
    recompute: Callable[..., torch.Tensor] | None = None  # recipe.attribution_function(...)
    rebuild: Callable[[Any], Callable[..., torch.Tensor]] | None = None
    module: Any = None
    truth: Any = None  # igcli.metrics.ground_truth.GroundTruth
    root: Any = None
    min_pred: float | None = None
    pool: Any = None
    curve_lengths: dict[str, int] = field(default_factory=dict)

    @property
    def needs_images(self) -> bool:
        return any(metric.needs_model for metric in self.metrics)


@dataclass
class ScoredBatch:
    """The result columns of a batch's scored rows, and the images it could not score."""

    columns: dict[str, Any]
    skipped: list[tuple[str, str]]


def score_rows(scorer: Scorer, rows: dict[str, Any], say: Callable[[str], None]) -> ScoredBatch:
    """Score the stored rows ``rows`` (columns ``attributions``, ``paths``, ``abs_paths``, ``targets``,
    ``completeness_gap``, and the computed ``image_paths`` and ``draw_keys``) with every metric."""
    paths = list(rows["paths"])
    skipped: list[tuple[str, str]] = []
    usable = list(range(len(paths)))
    pixels = None
    if scorer.needs_images:
        usable, pixels = _load(scorer, paths, list(rows[IMAGE_PATHS]), skipped, say)
    maps = torch.from_numpy(np.asarray(rows["attributions"], dtype=np.float32)[usable])
    scores = pixel_scores(maps, scorer.rank)
    rankable = has_ranking(scores).tolist()
    targets = torch.as_tensor(np.asarray(rows["targets"], dtype=np.int64)[usable])
    count = len(usable)
    kept_paths = [paths[i] for i in usable]
    keys = [rows[DRAW_KEYS][i] for i in usable] if DRAW_KEYS in rows else kept_paths
    gaps = np.asarray(rows["completeness_gap"], dtype=np.float64)[usable] if "completeness_gap" in rows \
        else np.full(count, np.nan)
    whole = MetricBatch(
        maps=maps, scores=scores, paths=kept_paths, targets=targets.to(scorer.device), device=scorer.device,
        preprocessing=scorer.preprocessing, seeds=[path_seed(scorer.seed, p) for p in kept_paths], seed=scorer.seed,
        pixels=pixels, images=normalize(pixels, scorer.preprocessing) if pixels is not None else None,
        engine=scorer.engine, module=scorer.module, completeness_gap=gaps,
        min_pred=scorer.min_pred, pool=scorer.pool, wanted=tuple(m.name for m in scorer.metrics))
    if scorer.recompute is not None:
        whole.recompute = _Recompute(scorer.recompute, kept_paths, keys, scorer.rebuild)
        whole.rebuild = whole.recompute.for_module if scorer.rebuild is not None else None
    ranked = [k for k in range(count) if rankable[k]]
    subsets: dict[str, tuple[list[int], MetricBatch]] = {"all": (list(range(count)), whole)}
    columns: dict[str, Any] = {
        "paths": kept_paths, "targets": np.asarray(targets, dtype=np.int64),
        "ranked": np.asarray(rankable, dtype=np.uint8)}
    if "abs_paths" in rows and rows["abs_paths"]:
        columns["abs_paths"] = [rows["abs_paths"][i] for i in usable]
    reasons_of_rows: list[list[str]] = [[] for _ in range(count)]
    for metric in scorer.metrics:
        if metric.needs_truth:
            key = "truth"
            if key not in subsets:
                subsets[key] = _with_truth(scorer, whole, ranked, [rows[IMAGE_PATHS][i] for i in usable]
                                           if IMAGE_PATHS in rows else kept_paths, skipped, say)
        else:
            key = "ranked" if metric.ranked else "all"
            if key not in subsets:
                subsets[key] = (ranked, _subset(whole, ranked))
        members, batch = subsets[key]
        values = {name: np.full(count, np.nan) for name in metric.value_names}
        unscorable = {name: [""] * count for name in metric.value_names}
        if members:
            batch.options = scorer.options.get(metric.name, {})
            measured = metric.compute(batch)
            for name in metric.value_names:
                values[name][members] = np.asarray(measured.values[name], dtype=np.float64)
                for k, reason in zip(members, measured.unscorable.get(name, ())):
                    unscorable[name][k] = reason or ""
            for name, curves in measured.curves.items():
                curves = np.asarray(curves, dtype=np.float64)
                full = np.full((count, curves.shape[1]), np.nan)
                full[members] = curves
                columns[f"curves/{name}"] = full
            if metric.needs_model:  # NaN without a reason: the model's outputs were not finite
                for k in members:
                    if any(np.isnan(values[name][k]) and not unscorable[name][k] for name in metric.value_names):
                        reasons_of_rows[k].append(metric.name)
        for name in metric.value_names:
            columns[f"values/{name}"] = values[name]
            columns[f"unscorable/{name}"] = unscorable[name]
    for k, lost in enumerate(reasons_of_rows):
        if lost and (not skipped or skipped[-1][0] != kept_paths[k]):
            reason = f"{', '.join(lost)}: {NONFINITE}"
            skipped.append((kept_paths[k], reason))
            say(f"skipped {shown_path(kept_paths[k])}: {reason}")
    return ScoredBatch(columns, skipped)


def _load(scorer: Scorer, paths: list[str], image_paths: list[str], skipped: list[tuple[str, str]],
          say: Callable[[str], None]) -> tuple[list[int], torch.Tensor | None]:
    """Decode and preprocess each row's image (once per image: topK rows share it)."""
    loaded: dict[str, torch.Tensor | None] = {}
    usable, pixels = [], []
    for i, path in enumerate(paths):
        where = image_paths[i]
        if where not in loaded:
            try:
                loaded[where] = preprocess_pixels(load_rgb(where, exif_transpose=scorer.preprocessing.exif_transpose),
                                                  scorer.preprocessing)
            except Exception as error:  # any decoder failure is this image's, not the run's
                loaded[where] = None
                reason = f"{RELOAD_FAILED}: {describe_decode_error(error)}"
                if isinstance(error, FileNotFoundError):
                    reason += f" at {shown_path(where)} ({missing_image_hint(scorer.root)})"
                skipped.append((path, reason))
                say(f"skipped {shown_path(path)}: {reason}")
        if loaded[where] is not None:
            usable.append(i)
            pixels.append(loaded[where])
    return usable, (torch.stack(pixels).to(scorer.device) if pixels else None)


def _subset(batch: MetricBatch, members: list[int]) -> MetricBatch:
    """The rows ``members`` of ``batch`` (its own ``shared`` cache: work shared between metrics is per subset)."""
    if len(members) == len(batch):
        return replace(batch, shared={})
    index = torch.as_tensor(members, dtype=torch.long)
    on_device = index.to(batch.device)
    subset = replace(
        batch, maps=batch.maps[index], scores=batch.scores[index], paths=[batch.paths[k] for k in members],
        targets=batch.targets[on_device], seeds=[batch.seeds[k] for k in members],
        images=batch.images[on_device] if batch.images is not None else None,
        pixels=batch.pixels[on_device] if batch.pixels is not None else None,
        completeness_gap=batch.completeness_gap[members] if batch.completeness_gap is not None else None,
        shared={})
    if batch.recompute is not None:
        subset.recompute = batch.recompute.subset(members)
        subset.rebuild = subset.recompute.for_module if batch.rebuild is not None else None
    return subset


def _with_truth(scorer: Scorer, whole: MetricBatch, ranked: list[int], image_paths: Sequence[str],
                skipped: list[tuple[str, str]], say: Callable[[str], None]) -> tuple[list[int], MetricBatch]:
    """The ranked rows that have a ground-truth mask, with the masks; the others are recorded as skipped."""
    members, masks = [], []
    for k in ranked:
        try:
            masks.append(torch.from_numpy(scorer.truth(whole.paths[k], image_paths[k])))
        except (FileNotFoundError, OSError) as error:
            reason = f"localization: {error}"
            skipped.append((whole.paths[k], reason))
            say(f"skipped {shown_path(whole.paths[k])}: {reason}")
            continue
        members.append(k)
    batch = _subset(whole, members)
    batch.truth = torch.stack(masks).to(scorer.device) if masks else None
    return members, batch


class _Recompute:
    """``recompute(images, targets, start=None)`` for B rows, or M image-major copies of each: every copy gets
    its image's path and draw key, so an ensemble recomputes with the draws the run had."""

    def __init__(self, recompute: Callable[..., torch.Tensor], paths: list[str], keys: list[str],
                 rebuild: Callable[[Any], Callable[..., torch.Tensor]] | None = None) -> None:
        self.recompute, self.paths, self.keys, self.rebuild = recompute, paths, keys, rebuild

    def __call__(self, images: torch.Tensor, targets: torch.Tensor, start: torch.Tensor | None = None) -> torch.Tensor:
        copies = images.shape[0] // max(1, len(self.paths))
        if copies * len(self.paths) != images.shape[0]:
            raise ValueError(f"recompute: {images.shape[0]} rows are not copies of {len(self.paths)} images")
        return self.recompute(images, targets, [p for p in self.paths for _ in range(copies)], start,
                              keys=[k for k in self.keys for _ in range(copies)])

    def subset(self, members: list[int]) -> "_Recompute":
        return _Recompute(self.recompute, [self.paths[k] for k in members], [self.keys[k] for k in members],
                          self.rebuild)

    def for_module(self, module: Any) -> "_Recompute":
        """The same rows recomputed with another module (a randomised copy of the model)."""
        return _Recompute(self.rebuild(module), self.paths, self.keys, self.rebuild)
