"""matplotlib figures of the analysis commands: calibrate's schedule, split's curves and maps, evaluate's
curves. Drawn on the file-only Agg backend, so they work on headless cluster nodes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .render import heatmap_on_white


def _save_figure(plt, figure, path, layout: bool = True) -> Path:
    """Lay out (``tight_layout``, unless the figure lays itself out), write (creating the folder) and close
    ``figure``; the PNG's path."""
    if layout:
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
    """Write :func:`schedule_figure` as a PNG; its path."""
    return _save_figure(_pyplot(), schedule_figure(alphas, derivative, partition, title=title), path, layout=False)


def schedule_figure(alphas, derivative, partition, *, title: str = ""):
    """RiemannOpt's Figure 2: the estimated |g'(alpha)| (an axis from 0: a magnitude is never negative) and,
    in a strip below it on the same alpha axis, the calibrated sample points (the left ends of the
    partition's cells, where gradients are taken) over uniform ones. A matplotlib Figure: axes[0] the curve,
    axes[1] the strip."""
    plt = _pyplot()
    partition = np.asarray(partition, dtype=np.float64)
    steps = partition.shape[0] - 1
    figure, (axis, strip) = plt.subplots(2, 1, figsize=(7, 4.6), dpi=120, sharex=True, layout="constrained",
                                         gridspec_kw={"height_ratios": [4, 1]})
    axis.plot(alphas, derivative, color="black", linewidth=1.4)
    top = float(np.max(derivative)) if len(derivative) else 1.0
    axis.set_ylim(0, top * 1.05 if top > 0 else 1.0)
    axis.set_ylabel("|g'(alpha)|\nmean over features and images")
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3)
    rows = ((partition[:-1], "#d62728", f"calibrated ({steps})"),
            (np.linspace(0, 1, steps + 1)[:-1], "#1f77b4", f"uniform ({steps})"))
    for height, (points, colour, _) in zip((1, 0), rows):
        strip.vlines(points, height - 0.35, height + 0.35, color=colour, linewidth=1.0)
    strip.set_yticks([1, 0], [label for _, _, label in rows])
    for tick, (_, colour, _) in zip(strip.get_yticklabels(), rows):
        tick.set_color(colour)
    strip.set_ylim(-0.6, 1.6)
    strip.tick_params(axis="y", length=0)
    strip.set_xlim(-0.01, 1.01)
    strip.set_xlabel("alpha (path position); ticks: where gradients are taken")
    return figure


# One colour and one line style per psi, the same in the curve, its threshold and the legend: told apart in
# print and by colour-blind readers too.
PSI_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
PSI_STYLES = ((0, (4, 2)), (0, (1, 1.5)), (0, (6, 2, 1, 2)), "--", ":", "-.")


def psi_style(index: int) -> dict:
    """Matplotlib line keywords of the ``index``-th psi."""
    return {"color": PSI_COLOURS[index % len(PSI_COLOURS)], "linestyle": PSI_STYLES[index % len(PSI_STYLES)],
            "linewidth": 1.6}


def _map_panel(axis, attributions, percentile: float = 99.0, title: str = "") -> None:
    """One signed map, titled with ``title`` and the +/- clip value its colours saturate at."""
    from .render import clip_value

    if np.isnan(attributions).all():
        axis.text(0.5, 0.5, "no alpha*", ha="center", va="center", transform=axis.transAxes, fontsize=10)
    else:
        values = np.nan_to_num(attributions)
        axis.imshow(heatmap_on_white(values, percentile))
        title = f"{title}\nfull colour at \u00b1{clip_value(values, percentile):.2e}"
    axis.set_title(title, fontsize=9)
    axis.axis("off")


def plot_split_image(path, *args, **kwargs) -> Path:
    """Write :func:`split_figure` (same arguments after ``path``) as a PNG; its path."""
    return _save_figure(_pyplot(), split_figure(*args, **kwargs), path, layout=False)


def split_figure(picture, alphas, curve, gradient_norms, start_score, end_score, psis, alpha_star, left, right,
                 full, *, title: str = "", score_name: str = "f"):
    """Split IG's Figure 1 for one image: (a) f(alpha) with each psi's threshold and alpha*, (b) ||grad
    f(alpha)||, then per psi the image and the Left / Right / Full maps (red: for the class, blue: against).

    ``left``/``right``: (P, C, H, W) or (P, H, W); ``title``: the image and class; ``score_name``: what f is
    (``logit``, ``probability``). A matplotlib Figure; its first axes is the score curve (a)."""
    plt = _pyplot()
    figure = plt.figure(figsize=(10, 3.0 + 2.75 * len(psis)), dpi=100, layout="constrained")
    figure.suptitle(title, fontsize=12)
    # Two sub-figures, so that the curves' axis labels do not widen the gaps between the map columns.
    top, bottom = figure.subfigures(2, 1, height_ratios=[1.15, len(psis)])
    curve_axis, norm_axis = top.subplots(1, 2)
    grid = bottom.add_gridspec(len(psis), 4)
    curve_axis.plot(np.concatenate([[0.0], alphas]), np.concatenate([[start_score], curve]), color="black",
                    linewidth=1.6, label=f"{score_name} along the path")
    for index, (psi, star) in enumerate(zip(psis, alpha_star)):
        style = psi_style(index)
        threshold = start_score + psi * (end_score - start_score)
        curve_axis.axhline(threshold, **{**style, "linewidth": 0.8}, alpha=0.6)
        found = f"alpha* = {star:.3f}" if np.isfinite(star) else "no alpha*"
        if np.isfinite(star):
            curve_axis.axvline(star, **style, label=f"psi = {psi:g}: {found}")
        else:
            curve_axis.plot([], [], **style, label=f"psi = {psi:g}: {found}")
    curve_axis.set_xlim(0, 1)
    curve_axis.set_xlabel("alpha (0: baseline x', 1: image x)")
    curve_axis.set_ylabel(f"{score_name} f(alpha)")
    curve_axis.legend(fontsize=8, loc="lower right")
    curve_axis.set_title("(a) score along the path; horizontal: f(x') + psi (f(x) - f(x'))", fontsize=9)
    norm_axis.plot(alphas, gradient_norms, color="#d62728", linewidth=1.6)
    for index, star in enumerate(alpha_star):
        if np.isfinite(star):
            norm_axis.axvline(star, **psi_style(index))
    norm_axis.set_xlim(0, 1)
    norm_axis.set_xlabel("alpha")
    norm_axis.set_ylabel("||grad f(alpha)||\u2082")
    norm_axis.set_title("(b) gradient magnitude along the path", fontsize=9)
    for row, (psi, star) in enumerate(zip(psis, alpha_star)):
        image_axis = bottom.add_subplot(grid[row, 0])
        image_axis.imshow(picture)
        image_axis.axis("off")
        found = f"alpha* = {star:.3f}" if np.isfinite(star) else "no alpha*"
        image_axis.set_title(f"psi = {psi:g}: {found}", fontsize=10, color=psi_style(row)["color"])
        _map_panel(bottom.add_subplot(grid[row, 1]), left[row], title="Left IG, alpha in [0, alpha*]")
        _map_panel(bottom.add_subplot(grid[row, 2]), right[row], title="Right IG, alpha in [alpha*, 1]")
        _map_panel(bottom.add_subplot(grid[row, 3]), full, title="Full IG, alpha in [0, 1]")
    return figure


def plot_split_aggregate(path, alphas, mean_f, mean_gradient, psis, mean_alpha_star, *, count: int) -> Path:
    """Mean curves over images: f normalised to 0 at x' and 1 at x, and ||grad f|| over its path mean, with the
    mean alpha* per psi."""
    plt = _pyplot()
    figure, (left_axis, right_axis) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=100, layout="constrained")
    figure.suptitle(f"Split IG: mean over {count} images whose score rises along the path", fontsize=11)
    left_axis.plot(np.concatenate([[0.0], alphas]), np.concatenate([[0.0], mean_f]), color="black", linewidth=1.6)
    for index, (psi, star) in enumerate(zip(psis, mean_alpha_star)):
        left_axis.axhline(psi, **{**psi_style(index), "linewidth": 0.8}, alpha=0.6)
        left_axis.axvline(star, **psi_style(index), label=f"psi = {psi:g}: mean alpha* = {star:.3f}")
    left_axis.set_xlim(0, 1)
    left_axis.set_xlabel("alpha (0: baseline x', 1: image x)")
    left_axis.set_ylabel("(f - f(x')) / (f(x) - f(x'))")
    left_axis.legend(fontsize=8, loc="lower right")
    left_axis.set_title("normalised score", fontsize=9)
    right_axis.plot(alphas, mean_gradient, color="#d62728", linewidth=1.6)
    for index, star in enumerate(mean_alpha_star):
        right_axis.axvline(star, **psi_style(index))
    right_axis.set_xlim(0, 1)
    right_axis.set_xlabel("alpha")
    right_axis.set_ylabel("||grad f|| / its mean along the path")
    right_axis.set_title("normalised gradient magnitude", fontsize=9)
    return _save_figure(plt, figure, path, layout=False)


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
        pixels = name in ("insertion", "deletion") or name.startswith("road")
        axis.set_xlabel("fraction of pixels" if pixels else "information level")
        axis.set_ylabel("probability" if pixels else "normalised score")
        axis.legend(fontsize=7)
    for axis in list(axes.flat)[len(names):]:
        axis.axis("off")
    figure.suptitle(title, fontsize=10)
    return _save_figure(plt, figure, path)
