"""Blur IG: the path from a fully blurred image (sigma = max_sigma) to the input, sigma falling to 0
(Xu et al. 2020; written out in Yang et al. 2023, Eq. 4-5); defaults are PAIR's reference values (max_sigma 50, reflect padding)."""

from __future__ import annotations

from .base import Method, Option, positive


class BlurIntegratedGradients(Method):
    name = "blurig"
    title = "Blur IG"
    summary = "blur path from a blurred image"
    reference = "Xu et al. 2020; Yang et al. 2023, Eq. 4-5"
    options = (
        Option("max_sigma", 50.0, float, "Blur sigma at the path start, pixels.", check=positive),
        Option("blur_padding", "reflect", str, "How the blur treats the border.", choices=("reflect", "constant")),
        Option("blur_derivative", "exact", str, "d gamma / d sigma: exact (sigma times the Laplacian of the "
               "blurred image) or finite (PAIR's difference).", choices=("exact", "finite")),
    )
    path = "blur"

    def make_path(self, inputs, baselines, options):
        from ..paths import BlurPath

        return BlurPath(inputs, options["max_sigma"], padding=options["blur_padding"],
                        derivative=options["blur_derivative"])
