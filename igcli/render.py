"""Attribution maps as pictures: signed diverging heatmaps and overlays, written as PNG.

Positive attribution is red, negative blue, zero white (heatmap) or transparent (overlay). Colours saturate
at a percentile of |attribution| so that a few extreme pixels do not wash out the rest.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import InvalidArgumentError

# A sheet is one picture; past this many rows it grows beyond what viewers open comfortably.
SHEET_MAX_ROWS = 100
SHEET_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def channel_sum(attributions: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (H, W) by summing channels; (H, W) passes through."""
    attributions = np.asarray(attributions, dtype=np.float64)
    return attributions.sum(axis=0) if attributions.ndim == 3 else attributions


def clip_value(attributions: np.ndarray, percentile: float = 99.0) -> float:
    """The |channel sum| at ``percentile``: values of +/- this much and beyond get full colour (0 for an
    empty map). The colour bar of a rendered picture is labelled with it."""
    values = channel_sum(attributions)
    return float(np.percentile(np.abs(values), percentile)) if values.size else 0.0


def diverging_heatmap(attributions: np.ndarray, percentile: float = 99.0) -> np.ndarray:
    """(H, W, 4) uint8 RGBA: red for positive, blue for negative, opacity growing with |value|.

    Args:
        attributions: (C, H, W) or (H, W) map; channels are summed.
        percentile: |value| at this percentile (0-100] maps to full colour (:func:`clip_value`); larger
            values are clipped.
    """
    values = channel_sum(attributions)
    scale = clip_value(values, percentile)
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


def render_output(source, png_dir=None, *, percentile: float = 99.0, limit: int | None = None,
                  on_missing_image=None, bare: bool = False, sheet=None, root=None) -> list[Path]:
    """Draw rows of an igcli output: one PNG per row in ``png_dir`` and/or one contact sheet.

    Each picture is the crop the model saw, the heatmap and the overlay side by side. Titled (the default):
    enlarged to at least 224 pixels, with the title (file, class name, score, rank for ``topK``; model,
    method, rule, steps) and a colour bar labelled with +/- the clip value. ``bare``: the panels alone at the
    model's resolution (just the heatmap when the input file is gone), for composing figures yourself.

    Args:
        source: anything :class:`igcli.output.Output` reads.
        png_dir: folder for ``NNNNN-STEM-tTARGET.png``, one per row; None for none.
        percentile: |channel sum| at this percentile gets full colour.
        limit: draw only the first ``limit`` rows.
        on_missing_image: called with (path, error) for an input that cannot be reloaded (``path`` as given;
            the error names the file looked at); its row is drawn without the image.
        bare: per-row files without title, colour bar or enlargement.
        sheet: a PNG file for all drawn rows as one picture (rows: image | heatmap | overlay, titled); at most
            :data:`SHEET_MAX_ROWS` rows.
        root: where the input images are now when they moved (``--root``; see
            :func:`igcli.output.locate_image`); the images are reopened at the recorded absolute path otherwise.

    Returns the files written (the sheet last). Raises InvalidArgumentError for a sheet of too many rows.
    """
    from .captions import method_title, row_title, titled_picture
    from .data import load_rgb, preprocess_pixels
    from .models import Preprocessing, model_categories
    from .output import IMAGE_PATHS, Output

    output = Output(source, root=root)
    count = len(output) if limit is None else min(limit, len(output))
    if sheet is not None and count > SHEET_MAX_ROWS:
        raise InvalidArgumentError(
            f"--sheet {sheet}: {count} rows would make one picture about {count * 260} pixels high; pass "
            f"--limit N (at most {SHEET_MAX_ROWS}), and -o DIR for one PNG per row"
        )
    if sheet is not None and Path(sheet).suffix.lower() not in SHEET_FORMATS:
        raise InvalidArgumentError(f"--sheet {sheet}: name the file .png (or .jpg, .webp)")
    settings = output.settings
    preprocessing = Preprocessing.from_dict(settings["preprocessing"])
    categories = model_categories(str(settings.get("model", ""))) if not bare or sheet is not None else None
    header = method_title(settings, percentile)
    folder = Path(png_dir) if png_dir is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    sheet_rows = []
    row = 0
    for rows in output.iter_rows(["attributions", "paths", IMAGE_PATHS, "targets", "scores", "target_rank"]):
        ranks = rows.get("target_rank", [None] * len(rows["paths"]))
        for attributions, path, image_path, target, score, rank in zip(
                rows["attributions"], rows["paths"], rows[IMAGE_PATHS], rows["targets"], rows["scores"], ranks):
            if row >= count:
                break
            heat = heatmap_on_white(attributions, percentile)
            try:
                pixels = preprocess_pixels(load_rgb(image_path, exif_transpose=preprocessing.exif_transpose),
                                           preprocessing).permute(1, 2, 0).numpy()
                panels = [Image.fromarray(pixels), heat, overlay(pixels, attributions, percentile)]
            except (OSError, ValueError) as error:
                if on_missing_image is not None:
                    on_missing_image(path, error)
                panels = None
            title = row_title(path, int(target), float(score), settings, categories, rank)
            scale = clip_value(attributions, percentile)
            if folder is not None:
                if bare:
                    picture = heat if panels is None else side_by_side(panels)
                else:
                    picture = titled_picture(panels or _without_image(heat), [title, header], scale, heatmap_on_white)
                name = folder / f"{row:05d}-{_safe_stem(path)}-t{int(target)}.png"
                picture.save(name)
                written.append(name)
            if sheet is not None:
                sheet_rows.append((panels or _without_image(heat), title, scale))
            row += 1
    if sheet is not None and sheet_rows:
        from .captions import sheet as draw_sheet

        target = Path(sheet)
        target.parent.mkdir(parents=True, exist_ok=True)
        format_name = SHEET_FORMATS[target.suffix.lower()]
        draw_sheet(sheet_rows, header, heatmap_on_white).save(target, format=format_name,
                                                              **({"quality": 90} if format_name == "JPEG" else {}))
        written.append(target)
    return written


def _without_image(heat: Image.Image) -> list[Image.Image]:
    """Panels for a row whose input cannot be reloaded: grey, saying so, where the crop and the overlay would be."""
    from .captions import missing_panel

    blank = missing_panel(heat.size)
    return [blank, heat, blank]


def _safe_stem(path: str) -> str:
    """The input's name as a short, plain file-name part: no control characters, separators or undecodable
    bytes, at most 80 characters (a 255-byte input name plus the row number would not fit)."""
    return re.sub(r"[^\w.-]+", "_", Path(path).stem)[:80] or "_"
