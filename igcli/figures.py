"""matplotlib figures of the analysis commands: calibrate's schedule, split's curves and maps, evaluate's
curves. Drawn on the file-only Agg backend, so they work on headless cluster nodes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .render import heatmap_on_white


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
