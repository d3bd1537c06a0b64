"""Attribution maps as pictures: signed diverging heatmaps and overlays, written as PNG.

Positive attribution is red, negative blue, zero white (heatmap) or transparent (overlay). Colours saturate
at a percentile of |attribution| so that a few extreme pixels do not wash out the rest.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def channel_sum(attributions: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (H, W) by summing channels; (H, W) passes through."""
    attributions = np.asarray(attributions, dtype=np.float64)
    return attributions.sum(axis=0) if attributions.ndim == 3 else attributions


def diverging_heatmap(attributions: np.ndarray, percentile: float = 99.0) -> np.ndarray:
    """(H, W, 4) uint8 RGBA: red for positive, blue for negative, opacity growing with |value|.

    Args:
        attributions: (C, H, W) or (H, W) map; channels are summed.
        percentile: |value| at this percentile (0-100] maps to full colour; larger values are clipped.
    """
    values = channel_sum(attributions)
    scale = float(np.percentile(np.abs(values), percentile)) if values.size else 0.0
    normalised = np.clip(values / scale, -1.0, 1.0) if scale > 0 else np.zeros_like(values)
    rgba = np.zeros((*values.shape, 4), dtype=np.float64)
    positive, negative = normalised > 0, normalised < 0
    rgba[positive] = [0.84, 0.15, 0.16, 1.0]
    rgba[negative] = [0.13, 0.40, 0.67, 1.0]
    rgba[..., 3] = np.abs(normalised)
    return (rgba * 255).round().astype(np.uint8)


def overlay(image: np.ndarray, attributions: np.ndarray, percentile: float = 99.0, dim: float = 0.5) -> Image.Image:
    """The heatmap composited over a dimmed grey copy of ``image`` ((H, W, 3) uint8), as a PIL image."""
    grey = Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("L").convert("RGB")
    base = Image.blend(grey, Image.new("RGB", grey.size, (255, 255, 255)), dim)
    heat = Image.fromarray(diverging_heatmap(attributions, percentile), mode="RGBA")
    if heat.size != base.size:
        heat = heat.resize(base.size, Image.Resampling.BILINEAR)
    return Image.alpha_composite(base.convert("RGBA"), heat).convert("RGB")


def side_by_side(panels: list[Image.Image], gap: int = 4) -> Image.Image:
    """Panels of equal height in one row, white gaps between them."""
    width = sum(p.width for p in panels) + gap * (len(panels) - 1)
    height = max(p.height for p in panels)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    x = 0
    for panel in panels:
        canvas.paste(panel, (x, 0))
        x += panel.width + gap
    return canvas
