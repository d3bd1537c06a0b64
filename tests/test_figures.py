"""The --plot figures of calibrate and split: what a reader needs is on them."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import to_hex

from igcli.figures import plot_schedule, psi_style, schedule_figure, split_figure


def test_schedule_ticks_sit_in_their_own_strip_not_below_zero(tmp_path):
    alphas = np.linspace(0.01, 0.99, 50)
    derivative = np.exp(-5 * alphas)
    partition = np.array([0.0, 0.05, 0.15, 0.4, 1.0])
    figure = schedule_figure(alphas, derivative, partition, title="t")
    curve, strip = figure.axes
    assert curve.get_ylim()[0] == 0 and curve.get_ylim()[1] >= derivative.max()
    # The strip holds the calibrated points (left ends of the cells) over the uniform ones, labelled.
    calibrated, uniform = (np.sort(np.unique(np.concatenate([path.vertices[:, 0] for path in c.get_paths()])))
                           for c in strip.collections)
    np.testing.assert_allclose(calibrated, partition[:-1])
    np.testing.assert_allclose(uniform, [0, 0.25, 0.5, 0.75])
    assert [t.get_text() for t in strip.get_yticklabels()] == ["calibrated (4)", "uniform (4)"]
    assert strip.get_shared_x_axes().joined(curve, strip)
    assert plot_schedule(tmp_path / "s.png", alphas, derivative, partition).stat().st_size > 1000


def test_split_figure_has_a_title_and_one_distinct_line_per_psi():
    assert len({to_hex(psi_style(i)["color"]) for i in range(8)}) == 8
    steps = 8
    alphas = np.arange(steps) / steps
    curve = 1 - np.exp(-6 * alphas)
    maps = np.random.default_rng(0).normal(size=(3, 3, 6, 6))
    maps[2] = np.nan  # a psi without alpha*
    figure = split_figure(np.zeros((6, 6, 3), np.uint8), alphas, curve, np.exp(-alphas), 0.0, curve[-1],
                          [0.9, 0.95, 0.999], np.array([0.4, 0.5, np.nan]), maps, maps, maps[0],
                          title="cat.jpg: tabby (281), logit f(x) = 1", score_name="logit")
    assert figure.get_suptitle() == "cat.jpg: tabby (281), logit f(x) = 1"
    curve_axis = figure.subfigs[0].axes[0]
    legend = curve_axis.get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["logit along the path", "psi = 0.9: alpha* = 0.400", "psi = 0.95: alpha* = 0.500",
                      "psi = 0.999: no alpha*"]
    colours = [to_hex(line.get_color()) for line in legend.get_lines()[1:]]
    assert len(set(colours)) == 3
    # The vertical alpha* lines stand where alpha* is, in their psi's colour.
    vertical = [(line.get_xdata()[0], to_hex(line.get_color())) for line in curve_axis.get_lines()
                if len(line.get_xdata()) == 2 and line.get_xdata()[0] == line.get_xdata()[1]]
    assert vertical == [(0.4, colours[0]), (0.5, colours[1])]
    titles = [axis.get_title() for axis in figure.subfigs[1].axes]
    assert titles[0] == "psi = 0.9: alpha* = 0.400" and "full colour at \u00b1" in titles[1]
