"""The Guided IG path (Kapishnikov et al. 2021, §4.2, Eq. 4-6; bounded variant §4.3), batched over images.

At every step the features with the smallest |gradient| among those not yet at their target move toward
the input, until the L1 distance to the segment end has shrunk to its scheduled value. PAIR's reference
(``saliency.core.guided_ig.guided_ig_impl``) bounds the path by ``max_dist``: in alpha units, no feature may
lag behind (alpha - max_dist) or run ahead of (alpha + max_dist) of the straight line. The anchored variant
(§4.3) cuts the straight line into K + 1 segments and runs Guided IG within each.

Here one call advances every image of a batch by one step on the device; the per-image choices (quantile
threshold, the inner "while gamma > 1" loop) become masked tensor operations, so no Python loop runs over
images or features. The inner loop runs a count of iterations fixed in advance (:func:`settling_rounds`)
rather than asking the device after each one whether every image is done, so the host never waits for the
device inside a step. The state is kept in float64, as in the reference,
because the selection compares coordinates for equality with the bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..methods.gig import check_anchors

# PAIR's tolerance for "the L1 distance has reached its target".
L1_TOLERANCE = 1e-9


@dataclass(frozen=True)
class GuidedStep:
    """One step of the plan: move from the current point to L1 fraction ``alpha`` of segment ``segment``.

    ``segment_start``/``segment_end`` are the segment's ends as fractions of the straight line (0 and 1 with
    no anchors)."""

    segment: int
    segment_start: float
    segment_end: float
    alpha: float


def plan_steps(boundaries: list[float], anchors: int) -> list[GuidedStep]:
    """The sequence of steps for a schedule's ``boundaries`` (a_0 = 0 < ... < a_n = 1).

    Without anchors, step j moves to a_{j+1}. With K anchors the n steps are spread as evenly as possible
    over K + 1 equal segments of the straight line, uniform within each segment (Kapishnikov et al. 2021, §4.3).
    """
    steps = len(boundaries) - 1
    check_anchors(anchors, steps)
    if anchors == 0:
        return [GuidedStep(0, 0.0, 1.0, float(a)) for a in boundaries[1:]]
    segments = anchors + 1
    plan = []
    for segment in range(segments):
        count = steps // segments + (1 if segment < steps % segments else 0)
        start, end = segment / segments, (segment + 1) / segments
        plan.extend(GuidedStep(segment, start, end, (i + 1) / count) for i in range(count))
    return plan


def settling_rounds(features: int, fraction: float) -> int:
    """Inner iterations after which no image of a step can change any more, for ``features`` per image.

    Every iteration that does not end an image's step pins each selected feature at ``x_max``, and at least
    kth = floor(fraction (features - 1)) + 1 of them (or all the free ones, when fewer are left), so
    ceil(features / kth) such iterations pin them all; one more iteration ends the step. Iterations after
    that change nothing (inactive images are masked out), so :func:`advance` can run this many without
    asking the device whether every image is done.
    """
    kth = int(math.floor(fraction * (features - 1))) + 1
    return -(-features // kth) + 1


def max_rounds(fraction: float) -> int:
    """The guard on inner iterations when :func:`advance` checks for the end (a floating-point stall)."""
    return int(4 / max(fraction, 1e-6)) + 64


def advance(
    x: torch.Tensor,
    gradients: torch.Tensor,
    segment_start: torch.Tensor,
    segment_end: torch.Tensor,
    alpha: float,
    fraction: float,
    max_dist: float,
    *,
    unsettled: torch.Tensor | None = None,
) -> torch.Tensor:
    """One Guided IG step for a batch, following PAIR's ``guided_ig_impl`` inner loop.

    Args:
        x: (B, C, H, W) float64, the current points on the path (inside the segment's box).
        gradients: (B, C, H, W), d f / d x at ``x``.
        segment_start, segment_end: (B, C, H, W) float64, the segment's ends (baseline and input without
            anchors).
        alpha: the fraction of the segment's L1 length that should be covered after this step, in (0, 1].
        fraction: share of features (0, 1] moved per inner iteration: those with the smallest |gradient|.
        max_dist: how far, in alpha units, a feature may stray from the straight line (0: IG's path).
        unsettled: None, or a 0-dim bool tensor on the device. None: iterate until every image is done,
            asking the device after each inner iteration (the host waits up to twice per iteration). Given: run
            :func:`settling_rounds` iterations without ever asking, then OR into ``unsettled`` whether a further
            iteration would still have changed a point (it cannot in exact arithmetic; floating-point rounding
            could unpin a feature). The caller reads the flag once per path and redoes the path with None if
            it is set, so the result is always that of the checked loop.

    Returns:
        (B, C, H, W) float64, the points after the step. Images whose segment has zero length stay put.
    """
    batch = x.shape[0]
    flat_x = x.reshape(batch, -1).clone()
    flat_grad = gradients.reshape(batch, -1).to(torch.float64).abs()
    start = segment_start.reshape(batch, -1)
    end = segment_end.reshape(batch, -1)
    difference = end - start
    features = flat_x.shape[1]

    alpha_min = max(alpha - max_dist, 0.0)
    alpha_max = min(alpha + max_dist, 1.0)
    x_min = start + difference * alpha_min
    x_max = start + difference * alpha_max
    l1_total = difference.abs().sum(dim=1)
    l1_target = l1_total * (1.0 - alpha)
    # np.quantile(..., interpolation="lower") picks the element of rank floor(q (n - 1)) (0-based).
    kth = int(math.floor(fraction * (features - 1))) + 1
    moving = difference != 0
    # Feature-wise alpha of the current point; features with no extent count as being ahead (PAIR).
    safe_difference = torch.where(moving, difference, torch.ones_like(difference))
    checked = unsettled is None

    def behind_of(points: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        feature_alpha = torch.where(moving, (points - start) / safe_difference, torch.full_like(points, alpha_max))
        return (feature_alpha < alpha_min) & active.unsqueeze(1)

    active = l1_total > 0
    # Checked: each inner iteration pins at least the selected ~fraction of remaining features at x_max; the
    # cap is a guard against floating-point stalls, far above what a valid step needs. Unchecked: every
    # operation below is masked by ``active``, so iterations after an image is done leave it unchanged.
    for _ in range(max_rounds(fraction) if checked else settling_rounds(features, fraction)):
        if checked and not bool(active.any()):
            break
        flat_x = torch.where(behind_of(flat_x, active), x_min, flat_x)

        l1_current = (flat_x - end).abs().sum(dim=1)
        reached = (l1_current - l1_target).abs() <= torch.maximum(
            L1_TOLERANCE * torch.maximum(l1_current.abs(), l1_target.abs()), torch.full_like(l1_target, L1_TOLERANCE)
        )
        active = active & ~reached
        if checked and not bool(active.any()):
            break

        ranked = torch.where(flat_x == x_max, torch.full_like(flat_grad, math.inf), flat_grad)
        threshold = torch.kthvalue(ranked, kth, dim=1).values.unsqueeze(1)
        selected = (ranked <= threshold) & (ranked != math.inf) & active.unsqueeze(1)
        l1_selected = ((flat_x - x_max).abs() * selected).sum(dim=1)
        gamma = torch.where(
            l1_selected > 0, (l1_current - l1_target) / l1_selected.clamp_min(1e-300), torch.full_like(l1_selected, math.inf)
        )
        overshoot = (gamma > 1.0).unsqueeze(1)
        moved = torch.where(overshoot, x_max, flat_x + (x_max - flat_x) * gamma.clamp(max=1.0).unsqueeze(1))
        flat_x = torch.where(selected, moved, flat_x)
        active = active & (gamma > 1.0)
    if not checked:
        # A further iteration changes an active image only through a feature behind x_min or one not pinned
        # at x_max (which the selection would move).
        movable = behind_of(flat_x, active) | ((flat_x != x_max) & active.unsqueeze(1))
        unsettled |= movable.any()
    return flat_x.reshape(x.shape)
