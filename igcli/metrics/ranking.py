"""From an attribution map to a ranking of pixels, explicitly (the choice matters more than the method).

Pixels are ranked by the channel sum of the attribution (``signed``: most positive first), of its absolute
value (``abs``), or of its positive part (``positive``: negative evidence ties at zero, ranked last). Ties are
broken by pixel index, so rankings are deterministic. A map whose scores are all equal has no ranking.
"""

from __future__ import annotations

import numpy as np
import torch

RANKINGS = ("signed", "abs", "positive")


def pixel_scores(maps: torch.Tensor, rank: str = "signed") -> torch.Tensor:
    """(B, C, H, W) or (B, H, W) attributions -> (B, H, W) float64 scores, higher = more important."""
    if rank not in RANKINGS:
        raise ValueError(f"unknown ranking {rank!r}; choose from {', '.join(RANKINGS)}")
    maps = maps.to(torch.float64)
    if rank == "abs":
        maps = maps.abs()
    scores = maps.sum(dim=1) if maps.dim() == 4 else maps
    return scores.clamp_min(0.0) if rank == "positive" else scores


def has_ranking(scores: torch.Tensor) -> torch.Tensor:
    """(B,) bool: False where every pixel has the same score (or any score is NaN)."""
    flat = scores.flatten(1)
    return (flat.max(dim=1).values > flat.min(dim=1).values) & torch.isfinite(flat).all(dim=1)


def top_masks(scores: torch.Tensor, fractions: np.ndarray, *, from_bottom: bool = False) -> torch.Tensor:
    """(B, L, H, W) bool: for each fraction f, the round(f H W) highest-scoring pixels (lowest with
    ``from_bottom``), ties broken by pixel index."""
    batch, height, width = scores.shape
    flat = scores.flatten(1)
    order = torch.argsort(flat if from_bottom else -flat, dim=1, stable=True)
    position = torch.empty_like(order)
    position.scatter_(1, order, torch.arange(height * width, device=scores.device).expand(batch, -1))
    counts = torch.as_tensor(np.round(np.asarray(fractions) * height * width).astype(np.int64), device=scores.device)
    return (position[:, None, :] < counts[None, :, None]).view(batch, len(fractions), height, width)
