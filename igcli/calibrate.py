"""RiemannOpt (Swain and Singhi 2024, §3): sample points that minimise the Riemann-sum error bound for a model.

1. **Probe** (Algorithm 1): on calibration images, evaluate the method's integrand
   g(alpha) = grad f(gamma(alpha)) * gamma'(alpha) at k equispaced alphas, take finite differences
   |g(alpha_{j+1}) - g(alpha_j)| / (alpha_{j+1} - alpha_j) feature by feature, and reduce them over features
   (the paper's mean, or the median) and average over images: an estimate of |g'(alpha)|. Each estimate is
   placed at the midpoint of its interval, where the difference quotient is second-order accurate.
2. **Objective** (Eq. 9): for a partition 0 = a_0 < ... < a_n = 1 used as a left Riemann sum (Eq. 6), the
   paper bounds the error by 1/2 sum_i |g'(a_i)| (a_{i+1} - a_i)^2, with |g'| linearly interpolated between
   the estimates. Taken literally that sum sees |g'| only at the left ends, and an optimiser exploits it: on
   a ridge-shaped |g'| Powell puts a_0 = 0 where |g'| ~ 0 and a_1 just before the ridge, one giant cell
   "costing" nothing (seen in tests/test_calibrate.py). We therefore minimise the exact remainder form of the
   same Taylor bound, sum_i integral_{a_i}^{a_{i+1}} (a_{i+1} - t) |g'(t)| dt (|g(alpha) - g(a_i)| <=
   integral_{a_i}^{alpha} |g'|), which equals Eq. 9 when |g'| is constant on each cell, is a true upper bound,
   and cannot be gamed; Eq. 9's literal value is reported beside it.
3. **Start**: for that bound the optimal point density is proportional to sqrt(|g'|) (minimise
   integral |g'| / rho subject to integral rho = 1), so the inverse CDF of sqrt(|g'|) is a near-optimal partition
   in closed form.
4. **Search**: SciPy's Powell method from the start, over unconstrained logits whose softmax gives the n
   interval lengths (so every candidate is a valid partition). The best of uniform, start and Powell is kept:
   never worse than uniform on the objective.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from .baselines import BaselineSpec, Normalization
from .engine import Engine
from .errors import InvalidArgumentError
from .methods import get_method, resolve_method
from .methods.registry import plugin_faults
from .prologue import prepared_batch

STATISTICS = ("mean", "median")


@dataclass
class Probe:
    """|g'(alpha)| estimates for a batch of images.

    Attributes:
        alphas: (J,) float64, where each estimate sits (midpoints of the probe intervals).
        per_image: (B, J) float64, the estimate for each image (features reduced by the statistic).
        targets: (B,) int64, the classes probed.
    """

    alphas: np.ndarray
    per_image: np.ndarray
    targets: torch.Tensor


def _reduce(values: torch.Tensor, statistic: str) -> torch.Tensor:
    """(R, d) -> (R,): mean or median over features."""
    return values.mean(dim=1) if statistic == "mean" else values.median(dim=1).values


class GuidedProbe:
    """A rule for :func:`integrate_guided_path` that records finite differences of the integrand instead of
    accumulating attributions. Steps arrive in order for all images at once."""

    needs_score_deltas = False

    def __init__(self, batch: int, spacing: float, statistic: str) -> None:
        self.spacing, self.statistic = spacing, statistic
        self.previous: torch.Tensor | None = None
        self.columns: list[torch.Tensor] = []
        self.attributions = None

    def add(self, image_index, gradients, displacement, score_delta=None) -> None:
        integrand = (gradients.to(torch.float64) * displacement.to(torch.float64)).flatten(1) / self.spacing
        if self.previous is not None:
            self.columns.append(_reduce((integrand - self.previous).abs() / self.spacing, self.statistic))
        self.previous = integrand


def probe_derivative(
    model: nn.Module,
    images: torch.Tensor,
    target: Any = None,
    *,
    method: str = "ig",
    probe_steps: int = 128,
    statistic: str = "mean",
    output: str = "prob",
    baseline: BaselineSpec = "black",
    normalization: Normalization | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    amp: bool = False,
    seed: int = 0,
    **method_options: Any,
) -> Probe:
    """Estimate |g'(alpha)| of ``method``'s integrand for each image (Algorithm 1, the loop body).

    Args:
        images: (B, C, H, W) model inputs; the other arguments as for :func:`igcli.attribute`.
        probe_steps: k, the number of equispaced alphas in [0, 1] where the integrand is evaluated (Guided IG
            walks k - 1 equal steps and its integrand is taken per step).
        statistic: how the |difference quotient| of the d features is reduced: ``mean`` (paper) or ``median``.

    Returns:
        A :class:`Probe` with k - 1 estimates per image (k - 2 for Guided IG).
    """
    chosen = get_method(resolve_method(method, "riemann")[0])
    if not chosen.calibratable:
        raise InvalidArgumentError(f"method {chosen.name} cannot be calibrated (it has no path to schedule)")
    if statistic not in STATISTICS:
        raise InvalidArgumentError(f"unknown statistic {statistic!r}; choose from {', '.join(STATISTICS)}")
    if not isinstance(probe_steps, int) or probe_steps < 3:
        raise InvalidArgumentError(f"probe steps must be an integer >= 3, got {probe_steps!r}")
    options = chosen.resolve_options(method_options)
    grid = np.linspace(0.0, 1.0, probe_steps)
    with prepared_batch(model, images, target, output=output, batch_size=batch_size, device=device,
                        amp=amp) as batch:
        with plugin_faults(chosen):
            baselines = chosen.make_baselines(baseline, batch.inputs, normalization or Normalization(), seed, options)
            per_image, where = chosen.probe(batch.engine, batch.inputs, baselines, grid, batch.targets,
                                            batch.scores, statistic, options)
        batch.engine.raise_if_nonfinite()
        targets = batch.targets
    return Probe(where, per_image.cpu().numpy(), targets.cpu())


def probe_fixed_path(engine: Engine, path, grid: np.ndarray, targets: torch.Tensor, statistic: str) -> torch.Tensor:
    """(B, k - 1) reduced |finite differences| of the integrand on a fixed path, in engine-sized chunks."""
    device = targets.device
    batch, k = targets.shape[0], grid.shape[0]
    alphas = torch.as_tensor(grid, dtype=torch.float64, device=device)
    previous: dict[int, torch.Tensor] = {}  # last integrand per image: at most one (d,) vector per image
    result = torch.zeros(batch, k - 1, dtype=torch.float64, device=device)
    for part in engine.chunks(batch * k):
        rows = torch.arange(part.start, part.stop, device=device)
        image_index, point_index = rows // k, rows % k
        x, velocity = path.points_and_velocity(image_index, alphas[point_index])
        _, gradients = engine.scores_and_gradients(x, targets[image_index])
        integrand = (gradients.to(torch.float64) * velocity.to(torch.float64)).flatten(1)
        for r, (image, point) in enumerate(zip(image_index.tolist(), point_index.tolist())):
            if point > 0:
                quotient = (integrand[r] - previous[image]).abs() / float(grid[point] - grid[point - 1])
                result[image, point - 1] = _reduce(quotient[None], statistic)[0]
            previous[image] = integrand[r]
    return result


# -- the objective and its minimisation -------------------------------------------------------------------------


def interpolator(alphas: np.ndarray, derivative: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """|g'| at any alpha in [0, 1]: linear interpolation of the estimates, constant beyond the outer ones."""
    alphas, derivative = np.asarray(alphas, np.float64), np.abs(np.asarray(derivative, np.float64))
    return lambda at: np.interp(at, alphas, derivative)


class ErrorBound:
    """The Riemann-error bound of a partition for a given |g'| (see the module docstring).

    ``bound(partition)`` is the remainder form sum_i integral_{a_i}^{a_{i+1}} (a_{i+1} - t)|g'(t)| dt, computed
    from cumulative integrals of |g'| and t |g'| on a fine grid; ``bound.eq9(partition)`` is Eq. 9 verbatim.
    """

    def __init__(self, derivative: Callable[[np.ndarray], np.ndarray], resolution: int = 8193) -> None:
        self.derivative = derivative
        self.grid = np.linspace(0.0, 1.0, resolution)
        values = np.abs(derivative(self.grid))
        step = np.diff(self.grid)
        self.first = np.concatenate([[0.0], np.cumsum((values[1:] + values[:-1]) / 2 * step)])
        moment = self.grid * values
        self.second = np.concatenate([[0.0], np.cumsum((moment[1:] + moment[:-1]) / 2 * step)])

    def __call__(self, partition: np.ndarray) -> float:
        partition = np.asarray(partition, np.float64)
        first = np.interp(partition, self.grid, self.first)
        second = np.interp(partition, self.grid, self.second)
        cells = partition[1:] * np.diff(first) - np.diff(second)
        return float(np.sum(np.maximum(cells, 0.0)))

    def eq9(self, partition: np.ndarray) -> float:
        """Swain and Singhi 2024, Eq. 9: 1/2 sum_i |g'(a_i)| (a_{i+1} - a_i)^2."""
        partition = np.asarray(partition, np.float64)
        return float(0.5 * np.sum(np.abs(self.derivative(partition[:-1])) * np.diff(partition) ** 2))


def density_start(derivative: Callable[[np.ndarray], np.ndarray], steps: int, resolution: int = 8193) -> np.ndarray:
    """The partition with point density proportional to sqrt(|g'|): the inverse CDF at 0, 1/n, ..., 1.

    A floor of 1e-6 of the mean density keeps the CDF strictly increasing where |g'| vanishes."""
    grid = np.linspace(0.0, 1.0, resolution)
    density = np.sqrt(derivative(grid))
    density = np.maximum(density, 1e-6 * max(float(density.mean()), 1e-300))
    cumulative = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(grid))])
    cumulative /= cumulative[-1]
    partition = np.interp(np.linspace(0.0, 1.0, steps + 1), cumulative, grid)
    partition[0], partition[-1] = 0.0, 1.0
    return partition


def _partition_from_logits(logits: np.ndarray) -> np.ndarray:
    widths = np.exp(logits - logits.max())
    widths /= widths.sum()
    partition = np.concatenate([[0.0], np.cumsum(widths)])
    partition[-1] = 1.0
    return partition


@dataclass
class Optimized:
    """A calibrated partition and the bound (remainder form; Eq. 9 verbatim in ``eq9``) along the way."""

    alphas: np.ndarray  # (n + 1,) partition, 0 ... 1
    objective_uniform: float
    objective_start: float
    objective_powell: float
    objective: float  # of ``alphas``: the least of the three
    chosen: str  # "powell", "start" or "uniform"
    evaluations: int
    eq9: dict[str, float] = field(default_factory=dict)  # Eq. 9 verbatim at uniform, start, result


def optimize_partition(derivative: Callable[[np.ndarray], np.ndarray], steps: int, *, max_evaluations: int | None = None) -> Optimized:
    """Minimise the error bound over partitions with ``steps`` cells: closed-form start, then Powell (SciPy)."""
    from scipy.optimize import minimize

    if not isinstance(steps, int) or steps < 1:
        raise InvalidArgumentError(f"steps must be a positive integer, got {steps!r}")
    bound = ErrorBound(derivative)
    uniform = np.linspace(0.0, 1.0, steps + 1)
    start = density_start(derivative, steps)
    objective_uniform, objective_start = bound(uniform), bound(start)
    evaluations, powell, objective_powell = 0, uniform, objective_uniform
    if steps > 1:
        widths = np.maximum(np.diff(start), 1e-12)
        result = minimize(
            lambda logits: bound(_partition_from_logits(logits)),
            np.log(widths / widths.sum()),
            method="Powell",
            options={"xtol": 1e-6, "ftol": 1e-12, "maxfev": max_evaluations or 4000 * steps},
        )
        powell, evaluations = _partition_from_logits(result.x), int(result.nfev)
        objective_powell = bound(powell)
    candidates = [("powell", powell, objective_powell), ("start", start, objective_start), ("uniform", uniform, objective_uniform)]
    chosen, alphas, objective = min(candidates, key=lambda c: c[2])
    eq9 = {"uniform": bound.eq9(uniform), "start": bound.eq9(start), "result": bound.eq9(alphas)}
    return Optimized(alphas, objective_uniform, objective_start, objective_powell, objective, chosen, evaluations, eq9)


def average_probes(probes: list[Probe]) -> tuple[np.ndarray, np.ndarray]:
    """(alphas, mean over all images of the per-image estimates): Algorithm 1's A / m."""
    if not probes:
        raise InvalidArgumentError("no calibration images could be used")
    alphas = probes[0].alphas
    return alphas, np.concatenate([p.per_image for p in probes]).mean(axis=0)
