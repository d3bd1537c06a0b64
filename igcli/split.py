"""Split IG (Miglani et al. 2020): where the path saturates, and IG on either side of that point.

For a threshold psi the saturation point is (Eq. 1)

    alpha* = inf { alpha in [0, 1] : f(x' + alpha (x - x')) > f(x') + psi (f(x) - f(x')) },

found from f at the full path's sample points (the first sample above the threshold brackets the first
crossing) and refined by bisection with forward-only passes to ``tolerance`` in alpha. Crossings narrower than
the sample spacing can be missed; the refined alpha* satisfies f(alpha*) > threshold and f(alpha* - tolerance)
<= threshold within that bracket.

Left IG integrates the straight path over [0, alpha*] and Right IG over [alpha*, 1], each as a proper integral
with its own schedule of n points (IG from x' to x* = x' + alpha* (x - x'), and from x* to x). By completeness
sum(Left) = f(x*) - f(x') ~ psi (f(x) - f(x')) and sum(Right) ~ (1 - psi)(f(x) - f(x')) (§2, after Eq. 1);
with the IDGI rule these hold to float precision up to f(x*) - threshold, which ``threshold_error`` reports.
Images with f(x) <= f(x') have no such point (the path never rises): they get ``found = False`` and NaN for
alpha*, Left and Right; their full IG is still computed.

The statistics of Tables 1-3 per image and psi: ||Right|| / ||Left|| in L1 and L2, alpha*, and the cosine
similarities Left-Right, Left-Full, Right-Full (maps flattened over channels and pixels).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from .baselines import BaselineSpec, Normalization, make_baseline
from .engine import Engine
from .errors import InvalidArgumentError
from .integrate import integrate_fixed_path
from .paths import StraightPath
from .prologue import prepared_batch
from .rules import make_rule
from .schedules import ScheduleSpec, default_schedule, make_schedule

STATISTICS = ("ratio_l1", "ratio_l2", "cos_left_right", "cos_left_full", "cos_right_full")


@dataclass
class SplitResult:
    """Split IG for B images and P thresholds.

    Attributes:
        full: (B, C, H, W) IG over [0, 1].
        left, right: (B, P, C, H, W) IG over [0, alpha*] and [alpha*, 1]; NaN where ``found`` is False.
        psis: (P,) the thresholds.
        alpha_star: (B, P) float64 saturation points; NaN where not found.
        found: (B, P) bool, whether f(x) > f(x') so that alpha* exists.
        threshold_error: (B, P) |f(x*) - threshold| / |f(x) - f(x')| after refinement.
        targets, scores (f(x)), baseline_scores (f(x')): (B,).
        curve_alphas: (n,) the full path's sample points; curve_scores, curve_gradient_norms: (B, n) f and
            ||grad f||_2 there (Figure 1 a, b).
        statistics: name -> (B, P) float64 per image (see :data:`STATISTICS`).
        settings: how it was computed.
    """

    full: torch.Tensor
    left: torch.Tensor
    right: torch.Tensor
    psis: np.ndarray
    alpha_star: np.ndarray
    found: np.ndarray
    threshold_error: np.ndarray
    targets: torch.Tensor
    scores: torch.Tensor
    baseline_scores: torch.Tensor
    curve_alphas: np.ndarray
    curve_scores: np.ndarray
    curve_gradient_norms: np.ndarray
    statistics: dict[str, np.ndarray]
    settings: dict[str, Any] = field(default_factory=dict)


def parse_psis(psis: float | str | Sequence[float]) -> np.ndarray:
    """0.9, "0.9,0.95" or [0.9, 0.95] -> sorted unique array; each psi must lie in (0, 1)."""
    if isinstance(psis, str):
        try:
            values = [float(part) for part in psis.split(",") if part.strip()]
        except ValueError:
            raise InvalidArgumentError(f"--psi {psis!r}: expected comma-separated numbers in (0, 1)") from None
    elif isinstance(psis, (int, float)):
        values = [float(psis)]
    else:
        values = [float(v) for v in psis]
    if not values or any(not (0.0 < v < 1.0) for v in values):
        raise InvalidArgumentError(f"--psi {psis!r}: every psi must lie strictly between 0 and 1")
    return np.array(sorted(set(values)), dtype=np.float64)


def split(
    model: nn.Module,
    images: torch.Tensor,
    target: Any = None,
    *,
    psis: float | str | Sequence[float] = 0.9,
    steps: int = 32,
    schedule: ScheduleSpec | None = None,
    rule: str = "riemann",
    baseline: BaselineSpec = "black",
    output: str = "logit",
    tolerance: float = 1e-4,
    normalization: Normalization | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    amp: bool = False,
    seed: int = 0,
    baseline_sigma: float = 50.0,
) -> SplitResult:
    """Split IG of ``images`` (B, C, H, W model inputs) for each threshold in ``psis``.

    Args:
        steps, schedule, rule: the quadrature of each of the three integrals (Full, Left, Right), n points each
            (schedule None: the rule's reference, ``right`` for riemann, ``left`` for idgi).
        output: ``logit`` (the paper's choice, §3.3) or ``prob``.
        tolerance: alpha* is refined by bisection until its bracket is narrower than this (alpha units).
        Others as for :func:`igcli.attribute` (straight path only).
    """
    psi_values = parse_psis(psis)
    if not (0 < tolerance < 1):
        raise InvalidArgumentError(f"tolerance must be in (0, 1), got {tolerance!r}")
    path_schedule = make_schedule(default_schedule(rule) if schedule is None else schedule, steps)
    n = path_schedule.steps
    with prepared_batch(model, images, target, output=output, batch_size=batch_size, device=device,
                        amp=amp) as batch:
        engine, inputs, targets, run_device = batch.engine, batch.inputs, batch.targets, batch.device
        count, psi_count = inputs.shape[0], psi_values.shape[0]
        scores = batch.scores.to(torch.float64)
        baselines = make_baseline(baseline, inputs, normalization, blur_sigma=baseline_sigma, seed=seed)
        full_path = StraightPath(inputs, baselines)

        curve_scores = torch.full((count, n), float("nan"), dtype=torch.float64, device=run_device)
        curve_norms = torch.full((count, n), float("nan"), dtype=torch.float64, device=run_device)

        def observe(image_index, point_index, f, gradients):
            curve_scores[image_index, point_index] = f.to(torch.float64)
            curve_norms[image_index, point_index] = gradients.flatten(1).to(torch.float64).norm(dim=1)

        full_rule = make_rule(rule, inputs.shape, run_device)
        boundary_scores = integrate_fixed_path(engine, full_path, path_schedule, full_rule, targets, {n: scores},
                                               on_points=observe)
        baseline_scores = boundary_scores[:, 0]

        change = scores - baseline_scores
        found = (change > 0).cpu().numpy()[:, None].repeat(psi_count, axis=1)
        thresholds = baseline_scores[:, None] + torch.as_tensor(psi_values, device=run_device)[None, :] * change[:, None]
        low, high = _bracket(path_schedule.points, curve_scores, baseline_scores, scores, thresholds)
        alpha_star, star_scores = _bisect(engine, full_path, targets, thresholds, low, high, tolerance)
        alpha_star = torch.where(torch.as_tensor(found, device=run_device), alpha_star, torch.nan)

        # Left and Right for every (image, psi) pair at once: IG from x' to x* and from x* to x.
        pairs = torch.arange(count * psi_count, device=run_device)
        image_of_pair = pairs // psi_count
        safe_alpha = torch.nan_to_num(alpha_star, nan=0.5).reshape(-1).to(inputs.dtype).view(-1, 1, 1, 1)
        difference = (inputs - baselines)[image_of_pair]
        star_points = baselines[image_of_pair] + safe_alpha * difference
        pair_targets = targets[image_of_pair]
        star_known = torch.nan_to_num(star_scores, nan=0.0).reshape(-1)
        halves = []
        for start, end, known in ((baselines[image_of_pair], star_points, {n: star_known}),
                                  (star_points, inputs[image_of_pair], {0: star_known, n: scores[image_of_pair]})):
            half_rule = make_rule(rule, start.shape, run_device)
            integrate_fixed_path(engine, StraightPath(end, start), path_schedule, half_rule, pair_targets, known)
            halves.append(half_rule.attributions.reshape(count, psi_count, *inputs.shape[1:]))
        engine.raise_if_nonfinite()

    left, right = halves
    mask = torch.as_tensor(found, device=run_device).view(count, psi_count, 1, 1, 1)
    left = torch.where(mask, left, torch.nan)
    right = torch.where(mask, right, torch.nan)
    full = full_rule.attributions
    threshold_error = ((star_scores - thresholds).abs() / change.abs()[:, None]).cpu().numpy()
    threshold_error[~found] = np.nan
    result_device = images.device
    return SplitResult(
        full=full.to(device=result_device, dtype=images.dtype),
        left=left.to(device=result_device, dtype=images.dtype),
        right=right.to(device=result_device, dtype=images.dtype),
        psis=psi_values,
        alpha_star=alpha_star.cpu().numpy(),
        found=found,
        threshold_error=threshold_error,
        targets=targets.to(result_device),
        scores=scores.float().to(result_device),
        baseline_scores=baseline_scores.float().to(result_device),
        curve_alphas=path_schedule.points.copy(),
        curve_scores=curve_scores.cpu().numpy(),
        curve_gradient_norms=curve_norms.cpu().numpy(),
        statistics=split_statistics(full, left, right),
        settings={"method": "split-ig", "rule": rule, "path": "straight", "output": output, "steps": n,
                  "schedule": path_schedule.name, "alphas": path_schedule.points.tolist(),
                  "boundaries": path_schedule.boundaries.tolist(), "psi": psi_values.tolist(),
                  "tolerance": tolerance, "baseline": baseline if isinstance(baseline, str) else "tensor",
                  "baseline_sigma": baseline_sigma},
    )


def _bracket(points: np.ndarray, curve: torch.Tensor, start: torch.Tensor, end: torch.Tensor, thresholds: torch.Tensor):
    """For each (image, psi): (low, high) alphas with f(low) <= threshold < f(high), from the first sample point
    above the threshold (alpha = 0 counts as a sample with f(x'), alpha = 1 with f(x))."""
    device = curve.device
    alphas = torch.as_tensor(np.concatenate([[0.0], points, [1.0]]), dtype=torch.float64, device=device)
    values = torch.cat([start[:, None], curve, end[:, None]], dim=1)
    above = values[:, None, :] > thresholds[:, :, None]  # (B, P, n + 2)
    first = torch.where(above.any(dim=2), above.float().argmax(dim=2), torch.full_like(above[..., 0], values.shape[1] - 1, dtype=torch.long))
    first = first.clamp(min=1)
    return alphas[first - 1], alphas[first]


@torch.no_grad()
def _bisect(engine: Engine, path: StraightPath, targets: torch.Tensor, thresholds: torch.Tensor,
            low: torch.Tensor, high: torch.Tensor, tolerance: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Bisection of every (image, psi) bracket at once with forward-only passes; returns (alpha*, f(alpha*))
    with alpha* the bracket's upper end (f > threshold there, as Eq. 1's infimum is approached from above)."""
    count, psi_count = thresholds.shape
    image_index = torch.arange(count, device=targets.device).repeat_interleave(psi_count)
    low, high = low.reshape(-1).clone(), high.reshape(-1).clone()
    flat_thresholds = thresholds.reshape(-1)
    high_scores = _scores_at(engine, path, image_index, high, targets)
    while bool(((high - low) > tolerance).any()):
        middle = (low + high) / 2
        active = (high - low) > tolerance
        values = _scores_at(engine, path, image_index[active], middle[active], targets)
        above = values > flat_thresholds[active]
        index = active.nonzero().squeeze(1)
        high[index[above]], high_scores[index[above]] = middle[index[above]], values[above]
        low[index[~above]] = middle[index[~above]]
    return high.view(count, psi_count), high_scores.view(count, psi_count)


def _scores_at(engine: Engine, path: StraightPath, image_index: torch.Tensor, alphas: torch.Tensor,
               targets: torch.Tensor) -> torch.Tensor:
    # clone: the engine scores under inference_mode, and bisection updates these in place
    return engine.scores(path.points(image_index, alphas), targets[image_index]).to(torch.float64).clone()


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = a.flatten(-3).to(torch.float64), b.flatten(-3).to(torch.float64)
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))


def split_statistics(full: torch.Tensor, left: torch.Tensor, right: torch.Tensor) -> dict[str, np.ndarray]:
    """Per image and psi (B, P): Table 1's norm ratios Right/Left (L1, L2) and Table 3's cosine similarities."""
    flat_left, flat_right = left.flatten(-3).to(torch.float64), right.flatten(-3).to(torch.float64)
    full_expanded = full[:, None].expand_as(left)
    return {
        "ratio_l1": (flat_right.abs().sum(-1) / flat_left.abs().sum(-1)).cpu().numpy(),
        "ratio_l2": (flat_right.norm(dim=-1) / flat_left.norm(dim=-1)).cpu().numpy(),
        "cos_left_right": _cosine(left, right).cpu().numpy(),
        "cos_left_full": _cosine(left, full_expanded).cpu().numpy(),
        "cos_right_full": _cosine(right, full_expanded).cpu().numpy(),
    }
