"""Vanilla gradient: d f / d x at the input (Simonyan, Vedaldi and Zisserman 2014, "Deep inside convolutional networks", §3), the degenerate path method."""

from __future__ import annotations

from .base import Method


class VanillaGradient(Method):
    name = "vg"
    title = "vanilla gradient"
    summary = "plain gradient at the input"
    reference = "Simonyan, Vedaldi and Zisserman 2014, §3"
    path = None
    calibratable = False
