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

from ..text import path_seed
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
    """(B,) -ln MSE between max-|value|-normalised maps of the crops (B, 3, H, W) uint8 and of their JPEG."""
    compressed = torch.stack([torch.from_numpy(jpeg(p.permute(1, 2, 0).cpu().numpy())).permute(2, 0, 1) for p in pixels])
    original_maps = recompute(to_input(pixels), targets).flatten(1).to(torch.float64)
    jpeg_maps = recompute(to_input(compressed.to(pixels.device)), targets).flatten(1).to(torch.float64)

    def scaled(maps: torch.Tensor) -> torch.Tensor:
        return maps / maps.abs().max(dim=1, keepdim=True).values.clamp_min(1e-300)

    mse = (scaled(original_maps) - scaled(jpeg_maps)).square().mean(dim=1)
    return -torch.log(mse.clamp_min(1e-300)).cpu()


def closed_path_error(recompute: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
                      images: torch.Tensor, targets: torch.Tensor, paths: Sequence[str], seed: int, normalization,
                      *, count: int = CLOSED_PATHS) -> torch.Tensor:
    """(B,) mean squared attribution of closed paths A -> B -> C -> A; ``recompute(end, targets, start)``
    attributes the segment from ``start`` to ``end`` (both model inputs)."""
    generators = [torch.Generator().manual_seed(path_seed(seed, p, 0x5EED)) for p in paths]
    total = torch.zeros(images.shape[0], dtype=torch.float64)
    for _ in range(count):
        corners = [normalization.from_pixels(torch.stack([torch.rand(images.shape[1:], generator=g) for g in generators])
                                             .to(images.device, images.dtype)) for _ in range(2)]
        points = [images, *corners, images]
        summed = sum(recompute(end, targets, start).flatten(1).to(torch.float64)
                     for start, end in zip(points[:-1], points[1:]))
        total += summed.square().mean(dim=1).cpu()
    return total / count
