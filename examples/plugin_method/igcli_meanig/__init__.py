"""Mean-colour IG: Integrated Gradients on the straight line from a flat image of the input's own mean colour.

An example igcli plugin. IG is Sundararajan, Taly and Yan 2017 (Eq. 1); the path start here is not from that
paper: a flat image of each input's mean colour is a common baseline in practice (it carries the image's
average brightness and tint but no structure, so the map explains the structure). ``blend`` moves the start
from that colour towards black.

igcli finds the method through this package's entry point (``pyproject.toml``)::

    [project.entry-points."igcli.methods"]
    meanig = "igcli_meanig:MeanColourIG"

This module imports nothing heavy at import time: igcli loads it to check ``--method meanig`` and its options
before it imports torch, so torch is imported inside the functions that compute.
"""

from __future__ import annotations

from igcli.methods import Method, Option

__all__ = ["MeanColourIG"]


def _fraction(value: float) -> str | None:
    """An :class:`Option` check: the problem, or None when ``value`` is in [0, 1]."""
    return None if 0.0 <= value <= 1.0 else "must be between 0 and 1"


class MeanColourIG(Method):
    """IG from each image's mean colour (per channel), optionally blended towards black."""

    name = "meanig"  # what --method takes; must equal the entry point's name
    title = "Mean-colour IG"
    summary = "straight path from the image's mean colour (plugin igcli-meanig)"
    reference = ("Sundararajan, Taly and Yan 2017, Eq. 1 (IG); the mean-colour baseline is a common choice, "
                 "not from that paper")
    # Options are declared once: the library takes blend=0.5, the CLI --option blend=0.5 (text, converted to
    # `kind` and checked here), and every run records the value in its output folder.
    options = (
        Option("blend", 0.0, float, "How far the path start goes from the mean colour towards black: 0 is the "
               "mean colour, 1 black (fraction).", check=_fraction),
    )
    path = "straight"  # recorded in the output; the straight path x' + alpha (x - x')
    takes_baseline = False  # the path start is the method's own: --baseline does not apply
    joins_any_two_points = True  # a straight line joins any two points (evaluate's closed-path metric)

    def start(self, inputs, normalization, options):
        """(B, C, H, W) path starts in model-input space: every pixel of image b is image b's mean colour,
        moved a fraction ``blend`` towards black. (An explicit start, a tensor ``baseline``, wins over this:
        :meth:`igcli.methods.Method.make_baselines`.)

        ``inputs``: (B, C, H, W) model inputs. The model's normalisation is affine per channel, so the mean of
        the model inputs is the normalised mean of the pixels.
        """
        import torch

        mean = inputs.mean(dim=(2, 3), keepdim=True).expand_as(inputs)  # (B, C, 1, 1) -> (B, C, H, W)
        black = normalization.from_pixels(torch.zeros_like(inputs))
        return torch.lerp(mean, black, options["blend"]).contiguous()

    def make_path(self, inputs, baselines, options):
        """The straight line from ``baselines`` to ``inputs`` (both (B, C, H, W)), as igcli's own IG walks it."""
        from igcli.paths import StraightPath

        return StraightPath(inputs, baselines)
