"""Expected Gradients (Erion, Janizek, Sturmfels, Lundberg and Lee 2021, Nature Machine Intelligence 3, Eq. 4):

    EG(x)_i = E_{x' ~ D, alpha ~ U(0, 1)} [ (x_i - x'_i) df/dx_i (x' + alpha (x - x')) ],

IG's path integral and an expectation over baselines x' from a reference distribution D, estimated together by
K samples per image, one gradient each: a reference drawn from ``--baseline-dir`` (or a fresh draw of a named
distribution such as ``uniform``) and a uniform random alpha. Its reference implementation, ``path_explain``'s
``attributions(use_expectation=True)``, draws 50 samples and distinct references per image; Captum's
``GradientShap`` is the same estimator (with ``stdevs=0``).
"""

from __future__ import annotations

from .base import BASELINE_SIGMA, Method, Option


def _at_least_one(value: int) -> str | None:
    return None if value >= 1 else "must be >= 1"


class ExpectedGradients(Method):
    name = "eg"
    title = "Expected Gradients"
    summary = "IG averaged over references drawn per image, one random point each"
    reference = "Erion et al. 2021, Eq. 4"
    options = (Option("samples", 50, int, "Samples per image: one reference, one alpha and one gradient each.",
                      check=_at_least_one), BASELINE_SIGMA)
    path = None  # no schedule and no rule: its points are drawn, not placed
    takes_baseline = True
    calibratable = False
    stochastic_samples = "samples"

    def sample_maps(self, engine, inputs, baselines, alphas, targets, options):
        import torch

        difference = inputs - baselines
        points = baselines + alphas.to(inputs.dtype).view(-1, 1, 1, 1) * difference
        _, gradients = engine.scores_and_gradients_chunked(points, targets)
        return gradients.to(torch.float64) * difference.to(torch.float64)
