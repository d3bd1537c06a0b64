"""Stability: how much a map moves when the input barely does.

- ``sensitivity`` (Miglani et al. 2020, §3.2, after Yeh et al.): max over 10 samples delta uniform in the
  L-infinity ball of radius r = 0.05 around the normalised input of ||Phi(x + delta) - Phi(x)||_2 / ||Phi(x)||_2,
  the attributions recomputed with the run's settings. Noise is seeded per image, so results do not depend on
  batching.
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

SENSITIVITY_RADIUS = 0.05
SENSITIVITY_SAMPLES = 10
JPEG_QUALITY = 75
CLOSED_PATHS = 10


ZERO_MAP = "the map is all zero: max-sensitivity divides by its norm"


def sensitivity(recompute: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], images: torch.Tensor,
                targets: torch.Tensor, paths: Sequence[str], seed: int, *, radius: float = SENSITIVITY_RADIUS,
                samples: int = SENSITIVITY_SAMPLES) -> torch.Tensor:
    """(B,) max-sensitivity; ``recompute(images, targets)`` returns the maps (B, ...) as the run made them.
    NaN where the map is all zero: the relative change divides by its norm (Captum reports 0 there; a zero map
    is not maximally stable, it is unscorable, see :data:`ZERO_MAP`)."""
    reference = recompute(images, targets).flatten(1).to(torch.float64)
    generators = [torch.Generator().manual_seed(path_seed(seed, p)) for p in paths]
    worst = torch.zeros(images.shape[0], dtype=torch.float64)
    for _ in range(samples):
        noise = torch.stack([(torch.rand(images.shape[1:], generator=g) * 2 - 1) * radius for g in generators])
        moved = recompute(images + noise.to(images.device, images.dtype), targets).flatten(1).to(torch.float64)
        change = (moved - reference).norm(dim=1) / reference.norm(dim=1)
        worst = torch.maximum(worst, change.cpu())
    return torch.where(reference.norm(dim=1).cpu() > 0, worst, torch.full_like(worst, float("nan")))


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
