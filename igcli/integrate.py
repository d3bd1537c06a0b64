"""Path integration drivers: walk a path, ask the engine for f and grad f, feed the rule.

``integrate_fixed_path`` serves paths whose points are known in advance (straight, blur): all (image, point)
rows of a batch are flattened image-major and cut into engine chunks, so a chunk may mix images and points.
``integrate_guided_path`` serves Guided IG, whose next point depends on the current gradient: it advances all
images together, one step at a time.

The IDGI rule needs f at both ends of every cell. Where a cell end coincides with a gradient point its score
comes free with that gradient; the other ends are evaluated by forward-only passes first. A cell whose second
score is not known yet (the left end of a left-Riemann cell waits for the next point) is held until it is:
at most one cell per image, so memory stays flat.
"""

from __future__ import annotations

import numpy as np
import torch

from .engine import Engine
from .paths import guided
from .rules import IdgiRule, RiemannRule
from .schedules import Schedule


class _DeferredCells:
    """IDGI cells whose score change is not known yet, kept with their gradients."""

    def __init__(self) -> None:
        self.images: list[np.ndarray] = []
        self.cells: list[np.ndarray] = []
        self.gradients: list[torch.Tensor] = []

    def add(self, images: np.ndarray, cells: np.ndarray, gradients: torch.Tensor) -> None:
        if len(images):
            self.images.append(images)
            self.cells.append(cells)
            self.gradients.append(gradients)

    def flush(self, rule: IdgiRule, scores: torch.Tensor, known: np.ndarray, device: torch.device) -> None:
        """Hand every cell whose two end scores are known to ``rule``; keep the rest."""
        if not self.images:
            return
        images, cells = np.concatenate(self.images), np.concatenate(self.cells)
        gradients = torch.cat(self.gradients)
        ready = known[images, cells] & known[images, cells + 1]
        if ready.any():
            pick = torch.from_numpy(np.flatnonzero(ready)).to(device)
            image_index = torch.from_numpy(images[ready]).to(device)
            cell_index = torch.from_numpy(cells[ready]).to(device)
            delta = scores[image_index, cell_index + 1] - scores[image_index, cell_index]
            rule.add(image_index, gradients.index_select(0, pick), None, delta)
        waiting = ~ready
        self.images, self.cells = ([images[waiting]], [cells[waiting]]) if waiting.any() else ([], [])
        self.gradients = (
            [gradients.index_select(0, torch.from_numpy(np.flatnonzero(waiting)).to(device))] if waiting.any() else []
        )

    def __len__(self) -> int:
        return sum(len(i) for i in self.images)


def integrate_fixed_path(
    engine: Engine,
    path,
    schedule: Schedule,
    rule: RiemannRule | IdgiRule,
    targets: torch.Tensor,
    known_boundary_scores: dict[int, torch.Tensor] | None = None,
    on_points=None,
) -> torch.Tensor:
    """Accumulate the path integral of every image into ``rule.attributions``.

    Args:
        engine: evaluates f and grad f.
        path: a fixed path (``points``/``points_and_velocity`` over (image, alpha) rows) for B images.
        schedule: where to sample (m points, m + 1 cell boundaries).
        rule: the accumulator.
        targets: (B,) int64 class per image, on the engine's device.
        known_boundary_scores: scores already computed, {boundary index: (B,) f(gamma(a_index))}.
        on_points: optional ``callback(image_index, point_index, f, gradients)`` per engine chunk, to observe
            the path (e.g. Split IG's curves f(alpha) and |grad f(alpha)|) without a second pass.

    Returns:
        (B, m + 1) float64 scores f(gamma(a_k)) at the cell boundaries; NaN where not computed (the IDGI rule
        computes all, the Riemann rule at least both ends, k = 0 and k = m).
    """
    device = targets.device
    batch, steps = targets.shape[0], schedule.steps
    scores = torch.full((batch, steps + 1), float("nan"), dtype=torch.float64, device=device)
    known = np.zeros((batch, steps + 1), dtype=bool)
    for boundary, values in (known_boundary_scores or {}).items():
        scores[:, boundary] = values.to(torch.float64)
        known[:, boundary] = True

    point_boundary = schedule.boundary_index_of_points()
    needed = set(range(steps + 1)) if rule.needs_score_deltas else {0, steps}
    free = {int(b) for b in point_boundary if b >= 0}
    missing = sorted(b for b in needed - free if not known[0, b])
    boundaries = torch.as_tensor(schedule.boundaries, dtype=torch.float64, device=device)
    if missing:
        _score_boundaries(engine, path, boundaries, missing, targets, scores)
        known[:, missing] = True

    points = torch.as_tensor(schedule.points, dtype=torch.float64, device=device)
    weights = torch.as_tensor(schedule.weights, dtype=torch.float64, device=device)
    point_boundary_device = torch.as_tensor(point_boundary, device=device)
    deferred = _DeferredCells()
    for part in engine.chunks(batch * steps):
        rows = np.arange(part.start, part.stop)
        images_host, cells_host = rows // steps, rows % steps
        image_index = torch.from_numpy(images_host).to(device)
        cell_index = torch.from_numpy(cells_host).to(device)
        alphas = points[cell_index]
        if rule.needs_score_deltas:
            x, velocity = path.points(image_index, alphas), None
        else:
            x, velocity = path.points_and_velocity(image_index, alphas)
        f, gradients = engine.scores_and_gradients(x, targets[image_index])
        if on_points is not None:
            on_points(image_index, cell_index, f, gradients)

        on_boundary_host = point_boundary[cells_host] >= 0
        if on_boundary_host.any():
            pick = torch.from_numpy(np.flatnonzero(on_boundary_host)).to(device)
            scores[image_index[pick], point_boundary_device[cell_index[pick]]] = f[pick].to(torch.float64)
            known[images_host[on_boundary_host], point_boundary[cells_host[on_boundary_host]]] = True

        if rule.needs_score_deltas:
            deferred.add(images_host, cells_host, gradients)
            deferred.flush(rule, scores, known, device)
        else:
            displacement = velocity * weights[cell_index].to(velocity.dtype).view(-1, 1, 1, 1)
            rule.add(image_index, gradients, displacement)
    if len(deferred):
        raise RuntimeError("internal error: IDGI cells left without scores")  # every boundary is scored above
    return scores


def _score_boundaries(
    engine: Engine,
    path,
    boundaries: torch.Tensor,
    missing: list[int],
    targets: torch.Tensor,
    scores: torch.Tensor,
) -> None:
    """Forward-only f at the listed boundaries of every image, written into ``scores`` (B, m + 1)."""
    device = targets.device
    batch, count = targets.shape[0], len(missing)
    missing_device = torch.as_tensor(missing, device=device)
    for part in engine.chunks(batch * count):
        rows = torch.arange(part.start, part.stop, device=device)
        image_index, which = rows // count, missing_device[rows % count]
        x = path.points(image_index, boundaries[which])
        scores[image_index, which] = engine.scores(x, targets[image_index]).to(torch.float64)


def integrate_guided_path(
    engine: Engine,
    inputs: torch.Tensor,
    baselines: torch.Tensor,
    schedule: Schedule,
    rule: RiemannRule | IdgiRule,
    targets: torch.Tensor,
    input_scores: torch.Tensor,
    *,
    fraction: float,
    max_dist: float,
    anchors: int,
) -> torch.Tensor:
    """Guided IG (Kapishnikov et al. 2021, §4.2-4.3) for a batch, accumulating into ``rule.attributions``.

    Gradients are taken at the start of every step (the path is built from them), so only the schedule's
    boundaries matter: step k moves from a_k to a_{k+1} in L1 fraction. With ``anchors`` > 0 the steps are
    spread uniformly over the anchored segments instead.

    Args:
        inputs, baselines: (B, C, H, W) on the engine's device.
        input_scores: (B,) f(x), closing the last IDGI cell.

    Returns:
        (B,) float64 f at the path start (the baselines).
    """
    plan = guided.plan_steps(schedule.boundaries.tolist(), anchors)
    start64, difference64 = baselines.to(torch.float64), (inputs - baselines).to(torch.float64)
    x = start64.clone()
    image_index = torch.arange(inputs.shape[0], device=inputs.device)
    baseline_scores = None
    waiting: tuple[torch.Tensor, torch.Tensor] | None = None  # (gradients, f) of the last cell, for IDGI
    segment_bounds: tuple[int, torch.Tensor, torch.Tensor] | None = None
    for step in plan:
        if segment_bounds is None or segment_bounds[0] != step.segment:
            segment_bounds = (
                step.segment,
                start64 + difference64 * step.segment_start,
                start64 + difference64 * step.segment_end if step.segment_end < 1.0 else inputs.to(torch.float64),
            )
        f, gradients = engine.scores_and_gradients_chunked(x.to(inputs.dtype), targets)
        if baseline_scores is None:
            baseline_scores = f.to(torch.float64)
        if waiting is not None:
            rule.add(image_index, waiting[0], None, f.to(torch.float64) - waiting[1])
        x_next = guided.advance(x, gradients, segment_bounds[1], segment_bounds[2], step.alpha, fraction, max_dist)
        if rule.needs_score_deltas:
            waiting = (gradients, f.to(torch.float64))
        else:
            rule.add(image_index, gradients, x_next - x)
        x = x_next
    if waiting is not None:
        rule.add(image_index, waiting[0], None, input_scores.to(torch.float64) - waiting[1])
    return baseline_scores
