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
                  on_missing_image=None, root=None) -> list:
    """Draw every row of an igcli output as ``PNG_DIR/NNNNN-STEM-tTARGET.png``.

    Each picture is the crop the model saw, the heatmap and the overlay side by side (just the heatmap when the
    input file is gone). ``source`` is anything :class:`igcli.output.Output` reads; ``root`` is where the input
    images are now when they moved (``--root``, see :func:`igcli.output.locate_image`). Returns the files
    written; ``on_missing_image(path, error)`` is told of each image that cannot be read (``path`` as given;
    the error names the file looked at).
    """
    from .data import load_rgb, preprocess_pixels
    from .models import Preprocessing
    from .output import IMAGE_PATHS, Output

    output = Output(source, root=root)
    stored = output.settings["preprocessing"]
    preprocessing = Preprocessing.from_dict(stored)
    folder = Path(png_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    row = 0
    for rows in output.iter_rows(["attributions", "paths", IMAGE_PATHS, "targets"]):
        for attributions, path, image_path, target in zip(rows["attributions"], rows["paths"], rows[IMAGE_PATHS],
                                                          rows["targets"]):
            if limit is not None and row >= limit:
                return written
            heat = heatmap_on_white(attributions, percentile)
            try:
                pixels = preprocess_pixels(load_rgb(image_path, exif_transpose=preprocessing.exif_transpose),
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


def _save_figure(plt, figure, path) -> Path:
    """Lay out, write (creating the folder) and close ``figure``; the PNG's path."""
    figure.tight_layout()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target)
    plt.close(figure)
    return target


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend (works on headless cluster nodes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_schedule(path, alphas, derivative, partition, *, title: str = "") -> Path:
    """RiemannOpt's Figure 2: the estimated |g'(alpha)| with the calibrated sample points (the left ends of the
    partition's cells, where gradients are taken) above the curve and uniform ones below it. Writes a PNG."""
    plt = _pyplot()
    partition = np.asarray(partition, dtype=np.float64)
    steps = partition.shape[0] - 1
    figure, axis = plt.subplots(figsize=(7, 4.0), dpi=120)
    axis.plot(alphas, derivative, color="black", linewidth=1.4, label="estimated |g'(alpha)|")
    top = float(np.max(derivative)) if len(derivative) else 1.0
    axis.vlines(partition[:-1], top * 1.04, top * 1.14, color="#d62728", linewidth=1.0,
                label=f"calibrated points ({steps})")
    axis.vlines(np.linspace(0, 1, steps + 1)[:-1], -top * 0.14, -top * 0.04, color="#1f77b4", linewidth=1.0,
                label=f"uniform points ({steps})")
    axis.set_xlim(-0.01, 1.01)
    axis.set_ylim(-top * 0.18, top * 1.2)
    axis.set_xlabel("alpha (path position)")
    axis.set_ylabel("|g'(alpha)|, mean over features and images")
    axis.set_title(title, fontsize=9)
    axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, frameon=False)
    return _save_figure(plt, figure, path)


def _map_panel(axis, attributions, percentile: float = 99.0, title: str = "") -> None:
    if np.isnan(attributions).all():
        axis.text(0.5, 0.5, "no alpha*", ha="center", va="center", transform=axis.transAxes)
    else:
        axis.imshow(heatmap_on_white(np.nan_to_num(attributions), percentile))
    axis.set_title(title, fontsize=8)
    axis.axis("off")


def plot_split_image(path, picture, alphas, curve, gradient_norms, start_score, end_score, psis, alpha_star,
                     left, right, full, *, title: str = "") -> Path:
    """Split IG's Figure 1 for one image: (a) f(alpha) with alpha* per psi, (b) ||grad f(alpha)||, then the
    image and the Left / Right / Full maps per psi. ``left``/``right``: (P, C, H, W) or (P, H, W)."""
    plt = _pyplot()
    rows = 1 + len(psis)
    figure = plt.figure(figsize=(9, 2.6 * rows), dpi=100)
    grid = figure.add_gridspec(rows, 4)
    curve_axis = figure.add_subplot(grid[0, :2])
    all_alphas = np.concatenate([[0.0], alphas])
    curve_axis.plot(all_alphas, np.concatenate([[start_score], curve]), color="black")
    colours = plt.cm.viridis(np.linspace(0.2, 0.8, len(psis)))
    for psi, star, colour in zip(psis, alpha_star, colours):
        if np.isfinite(star):
            curve_axis.axvline(star, linestyle=":", color=colour, label=f"alpha* (psi={psi:g}) = {star:.3f}")
    curve_axis.set_xlabel("alpha")
    curve_axis.set_ylabel("f(alpha)")
    curve_axis.legend(fontsize=7)
    curve_axis.set_title("(a) " + title, fontsize=8)
    norm_axis = figure.add_subplot(grid[0, 2:])
    norm_axis.plot(alphas, gradient_norms, color="#d62728")
    norm_axis.set_xlabel("alpha")
    norm_axis.set_ylabel("||grad f(alpha)||_2")
    norm_axis.set_title("(b) gradient magnitude", fontsize=8)
    for row, psi in enumerate(psis, start=1):
        image_axis = figure.add_subplot(grid[row, 0])
        image_axis.imshow(picture)
        image_axis.axis("off")
        image_axis.set_title(f"psi = {psi:g}", fontsize=8)
        _map_panel(figure.add_subplot(grid[row, 1]), left[row - 1], title="Left IG")
        _map_panel(figure.add_subplot(grid[row, 2]), right[row - 1], title="Right IG")
        _map_panel(figure.add_subplot(grid[row, 3]), full, title="Full IG")
    return _save_figure(plt, figure, path)


def plot_split_aggregate(path, alphas, mean_f, mean_gradient, psis, mean_alpha_star, *, count: int) -> Path:
    """Mean curves over images: f normalised to 0 at x' and 1 at x, and ||grad f|| over its path mean, with the
    mean alpha* per psi."""
    plt = _pyplot()
    figure, (left_axis, right_axis) = plt.subplots(1, 2, figsize=(9, 3.2), dpi=100)
    left_axis.plot(np.concatenate([[0.0], alphas]), np.concatenate([[0.0], mean_f]), color="black")
    for psi, star in zip(psis, mean_alpha_star):
        left_axis.axvline(star, linestyle=":", label=f"mean alpha* (psi={psi:g}) = {star:.3f}")
    left_axis.set_xlabel("alpha")
    left_axis.set_ylabel("(f - f(x')) / (f(x) - f(x'))")
    left_axis.legend(fontsize=7)
    left_axis.set_title(f"mean over {count} images", fontsize=8)
    right_axis.plot(alphas, mean_gradient, color="#d62728")
    right_axis.set_xlabel("alpha")
    right_axis.set_ylabel("||grad f|| / its mean along the path")
    return _save_figure(plt, figure, path)


def plot_metric_curves(path, curves: dict[str, dict[str, tuple]], *, title: str = "") -> Path:
    """One panel per curve metric (insertion, deletion, sic, aic, ...), one line per evaluated output.

    ``curves``: output label -> metric name -> (x, y)."""
    plt = _pyplot()
    names = list(dict.fromkeys(name for per_output in curves.values() for name in per_output))
    columns = min(3, max(1, len(names)))
    rows = -(-len(names) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), dpi=100, squeeze=False)
    for axis, name in zip(axes.flat, names):
        for label, per_output in curves.items():
            if name in per_output:
                x, y = per_output[name]
                axis.plot(x, y, label=label)
        axis.set_title(name, fontsize=9)
        axis.set_xlabel("fraction of pixels" if name in ("insertion", "deletion") else "information level")
        axis.set_ylabel("probability" if name in ("insertion", "deletion") else "normalised score")
        axis.legend(fontsize=7)
    for axis in list(axes.flat)[len(names):]:
        axis.axis("off")
    figure.suptitle(title, fontsize=10)
    return _save_figure(plt, figure, path)
