"""Stability: how much a map moves when the input barely does.

- ``sensitivity``: max-sensitivity, now in :mod:`igcli.metrics.max_sensitivity` (re-exported here for the callers
  that import it from this module).
- ``closed-path`` (Kapishnikov et al. 2021, §5.1, Table 1): the attribution of a closed path A -> B -> C -> A should be
  zero for every feature; with B, C random images (uniform pixels, seeded per image) and each segment
  attributed by the run's method (the segment's start as its baseline), the mean over features of the squared
  summed attribution, averaged over ``CLOSED_PATHS`` random paths (the paper uses 50 per image).
- ``jpeg-stability`` (Singhi and Kumari 2024, §4.5.2, Table 5): -ln MSE between the map of the crop the model
  sees and the map of that crop after JPEG compression at quality 75 (PIL), each map divided by its largest
  |value| first so that the number does not depend on the map's scale (the paper does not state its
  normalisation; this is ours).
"""

from __future__ import annotations

import io

from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from ..text import path_seed, torch_seed
from .base import Metric, MetricBatch, MetricScores, Value
from .max_sensitivity import SENSITIVITY_RADIUS, SENSITIVITY_SAMPLES, ZERO_MAP, sensitivity  # noqa: F401

JPEG_QUALITY = 75
CLOSED_PATHS = 10


def jpeg(pixels: np.ndarray, quality: int = JPEG_QUALITY) -> np.ndarray:
    """(H, W, 3) uint8 through a JPEG round trip at ``quality``."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    return np.array(Image.open(buffer).convert("RGB"))  # a writable copy, for torch.from_numpy


def jpeg_stability(recompute: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], pixels: torch.Tensor,
                   to_input: Callable[[torch.Tensor], torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
    """(B,) -ln MSE between max-|value|-normalised maps of the crops (B, 3, H, W) uint8 and of their JPEG.

    Both maps of every image come from ONE ``recompute`` call on 2B rows, image-major (rows 2i, 2i + 1: image
    i and its JPEG), as :attr:`~igcli.metrics.base.MetricBatch.recompute` takes copies: full engine chunks."""
    compressed = torch.stack([torch.from_numpy(jpeg(p.permute(1, 2, 0).cpu().numpy())).permute(2, 0, 1) for p in pixels])
    both = torch.stack([pixels, compressed.to(pixels.device)], dim=1).flatten(0, 1)
    maps = recompute(to_input(both), targets.repeat_interleave(2)).flatten(1).to(torch.float64)
    original_maps, jpeg_maps = maps[0::2], maps[1::2]

    def scaled(maps: torch.Tensor) -> torch.Tensor:
        return maps / maps.abs().max(dim=1, keepdim=True).values.clamp_min(1e-300)

    mse = (scaled(original_maps) - scaled(jpeg_maps)).square().mean(dim=1)
    return -torch.log(mse.clamp_min(1e-300)).cpu()


def closed_path_error(recompute: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
                      images: torch.Tensor, targets: torch.Tensor, paths: Sequence[str], seed: int, normalization,
                      *, count: int = CLOSED_PATHS) -> torch.Tensor:
    """(B,) mean squared attribution of closed paths A -> B -> C -> A; ``recompute(end, targets, start)``
    attributes the segment from ``start`` to ``end`` (both model inputs).

    The three segments of a path, for every image, are ONE ``recompute`` call on 3B rows, image-major (rows
    3i .. 3i + 2: image i's A -> B, B -> C, C -> A), each row with its own start."""
    generators = [torch.Generator().manual_seed(torch_seed(path_seed(seed, p, 0x5EED))) for p in paths]
    total = torch.zeros(images.shape[0], dtype=torch.float64)
    for _ in range(count):
        corners = [normalization.from_pixels(torch.stack([torch.rand(images.shape[1:], generator=g) for g in generators])
                                             .to(images.device, images.dtype)) for _ in range(2)]
        starts = torch.stack([images, *corners], dim=1).flatten(0, 1)
        ends = torch.stack([*corners, images], dim=1).flatten(0, 1)
        maps = recompute(ends, targets.repeat_interleave(3), starts).flatten(1).to(torch.float64)
        summed = maps[0::3] + maps[1::3] + maps[2::3]  # the order the per-segment sum added them in
        total += summed.square().mean(dim=1).cpu()
    return total / count


# -- registry entries (igcli.metrics.catalog) ------------------------------------------------------------------


def _jpeg_stability(batch: MetricBatch) -> MetricScores:
    from ..data import normalize

    measured = jpeg_stability(batch.recompute, batch.pixels, lambda stack: normalize(stack, batch.preprocessing),
                              batch.targets)
    return MetricScores(values={"jpeg_stability": measured.numpy()})


def _closed_path(batch: MetricBatch) -> MetricScores:
    measured = closed_path_error(batch.recompute, batch.images, batch.targets, batch.paths, batch.seed,
                                 batch.preprocessing.normalization)
    return MetricScores(values={"closed_path_mse": measured.numpy()})


def _check_closed_path(recipe) -> None:
    from ..errors import InvalidArgumentError

    try:
        joins = recipe.method_object().joins_any_two_points
    except InvalidArgumentError:  # a plugin's method that is not installed cannot tell
        joins = False
    if not joins:
        raise InvalidArgumentError(f"--metric closed-path needs a method whose path runs between any two points "
                                   f"(ig, gig); the maps are {recipe.method}")
    if recipe.is_ensemble:
        raise InvalidArgumentError("--metric closed-path walks one path between two points; the maps are ensemble "
                                   "maps (noise, several or drawn baselines), which average many paths")


JPEG_STABILITY = Metric(
    "jpeg-stability", "robustness", "-ln MSE between the max-normalised maps of the crop and of its JPEG (q=75)",
    "Singhi and Kumari 2024, §4.5.2", (Value("jpeg_stability", True, "-ln MSE (higher: more alike)"),),
    _jpeg_stability, needs_model=True, recomputes=True, ranked=False)
CLOSED_PATH = Metric(
    "closed-path", "path", "mean squared attribution of closed paths A -> B -> C -> A (0 for path independence)",
    "Kapishnikov et al. 2021, §5.1", (Value("closed_path_mse", False, "mean over features of the squared sum"),),
    _closed_path, needs_model=True, recomputes=True, ranked=False, check=_check_closed_path)
