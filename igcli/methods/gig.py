"""Guided IG: an adaptive path that moves the features with the smallest |gradient| first, within max_dist
of the straight line (Kapishnikov et al. 2021, §4.2-4.3, Algorithm 1; defaults are PAIR's: fraction 0.25,
max_dist 0.02, no anchors)."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidArgumentError
from .base import BASELINE_SIGMA, Method, Option


def _fraction(value: float) -> str | None:
    return None if 0 < value <= 1 else "must be in (0, 1]"


def _unit(value: float) -> str | None:
    return None if 0 <= value <= 1 else "must be in [0, 1]"


def _count(value: int) -> str | None:
    return None if value >= 0 else "must be an integer >= 0"


def check_anchors(anchors: int, steps: int) -> None:
    """K anchors cut the line into K + 1 segments, each walked in at least one step: with fewer steps the walk
    would stop short of the input (and a huge K would plan for ever), so refuse it."""
    if anchors >= steps:
        raise InvalidArgumentError(f"anchors {anchors} cut the path into {anchors + 1} segments, each needing a "
                                   f"step, but the schedule has {steps} steps; use fewer anchors or more steps")


class GuidedIntegratedGradients(Method):
    name = "gig"
    title = "Guided IG"
    summary = "adaptive path guided by the gradient"
    reference = "Kapishnikov et al. 2021, Algorithm 1"
    options = (
        Option("fraction", 0.25, float, "Fraction of features moved per step.", check=_fraction),
        Option("max_dist", 0.02, float, "Largest L1 distance from the straight path, relative.", check=_unit),
        Option("anchors", 0, int, "Anchor points on the straight path (0 = none).", check=_count),
        BASELINE_SIGMA,
    )
    path = "guided"
    takes_baseline = True
    joins_any_two_points = True
    fixed_path = False

    def check_steps(self, options: dict[str, Any], steps: int) -> None:
        check_anchors(options["anchors"], steps)

    def integrate(self, engine, inputs, baselines, schedule, rule, targets, scores, options):
        from ..integrate import integrate_guided_path

        return integrate_guided_path(engine, inputs, baselines, schedule, rule, targets, scores,
                                     fraction=options["fraction"], max_dist=options["max_dist"],
                                     anchors=options["anchors"])

    def probe(self, engine, inputs, baselines, grid, targets, scores, statistic, options: dict[str, Any]):
        """The integrand is taken per step of the guided walk over the equispaced grid (k - 2 estimates)."""
        import torch

        from ..calibrate import GuidedProbe
        from ..integrate import integrate_guided_path
        from ..schedules import Schedule

        if grid.shape[0] < 3:
            raise InvalidArgumentError("Guided IG's probe needs at least 3 alphas")
        probe = GuidedProbe(inputs.shape[0], 1.0 / (grid.shape[0] - 1), statistic)
        integrate_guided_path(engine, inputs, baselines, Schedule.from_alphas(grid), probe, targets, scores,
                              fraction=options["fraction"], max_dist=options["max_dist"], anchors=options["anchors"])
        return torch.stack(probe.columns, dim=1), (grid[:-2] + grid[1:-1]) / 2
