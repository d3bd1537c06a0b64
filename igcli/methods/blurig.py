"""Blur IG: the path from a fully blurred image (sigma = max_sigma) to the input, sigma falling to 0
(Xu et al. 2020; written out in Yang et al. 2023, Eq. 4-5). Defaults are the reference code's (PAIR
``blur_ig.py``): max_sigma 50 and zero (constant) padding, as its ``gaussian_filter(..., mode='constant')``;
``reflect`` keeps more of the image's mass at the border and is an option."""

from __future__ import annotations

from .base import Method, Option, positive


class BlurIntegratedGradients(Method):
    name = "blurig"
    title = "Blur IG"
    summary = "blur path from a blurred image"
    reference = "Xu et al. 2020; Yang et al. 2023, Eq. 4-5"
    options = (
        Option("max_sigma", 50.0, float, "Blur sigma at the path start, pixels.", check=positive),
        Option("blur_padding", "constant", str, "How the blur treats the border: constant (zeros, the reference "
               "code's) or reflect.", choices=("constant", "reflect")),
        Option("blur_derivative", "exact", str, "d gamma / d sigma: exact (sigma times the Laplacian of the "
               "blurred image) or finite (PAIR's difference).", choices=("exact", "finite")),
    )
    path = "blur"

    def make_path(self, inputs, baselines, options):
        from ..paths import BlurPath

        return BlurPath(inputs, options["max_sigma"], padding=options["blur_padding"],
                        derivative=options["blur_derivative"])
