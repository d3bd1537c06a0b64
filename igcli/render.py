"""Attribution maps as pictures: signed diverging heatmaps and overlays, written as PNG.

Positive attribution is red, negative blue, zero white (heatmap) or transparent (overlay). Colours saturate
at a percentile of |attribution| so that a few extreme pixels do not wash out the rest.
"""

from __future__ import annotations

import re
from pathlib import Path

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


def heatmap_on_white(attributions: np.ndarray, percentile: float = 99.0) -> Image.Image:
    """The signed heatmap alone, over white, as a PIL RGB image."""
    heat = Image.fromarray(diverging_heatmap(attributions, percentile), mode="RGBA")
    return Image.alpha_composite(Image.new("RGBA", heat.size, (255, 255, 255, 255)), heat).convert("RGB")


def render_output(source, png_dir, *, percentile: float = 99.0, limit: int | None = None,
                  on_missing_image=None) -> list:
    """Draw every row of an igcli output as ``PNG_DIR/NNNNN-STEM-tTARGET.png``.

    Each picture is the crop the model saw, the heatmap and the overlay side by side (just the heatmap when the
    input file is gone). ``source`` is anything :class:`igcli.output.Output` reads. Returns the files written.
    """
    from .data import load_rgb, preprocess_pixels
    from .models import Preprocessing
    from .output import Output

    output = Output(source)
    stored = output.settings["preprocessing"]
    preprocessing = Preprocessing.from_dict(stored)
    folder = Path(png_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    row = 0
    for rows in output.iter_rows(["attributions", "paths", "targets"]):
        for attributions, path, target in zip(rows["attributions"], rows["paths"], rows["targets"]):
            if limit is not None and row >= limit:
                return written
            heat = heatmap_on_white(attributions, percentile)
            try:
                pixels = preprocess_pixels(load_rgb(path, exif_transpose=preprocessing.exif_transpose),
                                           preprocessing).permute(1, 2, 0).numpy()
                picture = side_by_side([Image.fromarray(pixels), heat, overlay(pixels, attributions, percentile)])
            except (OSError, ValueError) as error:
                if on_missing_image is not None:
                    on_missing_image(path, error)
                picture = heat
            name = folder / f"{row:05d}-{_safe_stem(path)}-t{int(target)}.png"
            picture.save(name)
            written.append(name)
            row += 1
    return written


def _safe_stem(path: str) -> str:
    """The input's name as a short, plain file-name part: no control characters, separators or undecodable
    bytes, at most 80 characters (a 255-byte input name plus the row number would not fit)."""
    return re.sub(r"[^\w.-]+", "_", Path(path).stem)[:80] or "_"
