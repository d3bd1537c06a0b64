"""Integrated Gradients on the straight line from a baseline x' to the input x (Sundararajan et al. 2017,
Eq. 1): gamma(alpha) = x' + alpha (x - x')."""

from __future__ import annotations

from .base import BASELINE_SIGMA, Method


class IntegratedGradients(Method):
    name = "ig"
    title = "IG"
    summary = "straight path from a baseline"
    reference = "Sundararajan, Taly and Yan 2017, Eq. 1"
    options = (BASELINE_SIGMA,)
    path = "straight"
    takes_baseline = True
    joins_any_two_points = True

    def make_path(self, inputs, baselines, options):
        from ..paths import StraightPath

        return StraightPath(inputs, baselines)
