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
from .transfer import to_device


# Guided IG's inner loop on a CPU: checked (it stops as soon as every image has settled) unless True. On a GPU
# it always runs a count of rounds fixed on the host, never asking the device (tests set this to count that).
SYNC_FREE_ON_HOST = False

class _DeferredCells:
    """IDGI cells whose score change is not known yet, kept with their gradients.

    Which cells wait, and for which chunk, follows from the schedule alone (which boundaries are scored before
    the loop and which point lands on which boundary), so the whole plan is worked out on the host first and
    copied to the device in one go: the loop then indexes slices of it and never waits for a host-to-device
    copy (one from pageable memory makes the host wait for the device).
    """

    def __init__(
        self, known: np.ndarray, point_boundary: np.ndarray, chunks: list[slice], device: torch.device
    ) -> None:
        steps = point_boundary.shape[0]
        known = known.copy()
        held_images = held_cells = np.zeros(0, dtype=np.int64)
        parts: list[np.ndarray] = []
        self._plan: list[tuple[int, int, int]] = []  # per chunk: (offset in the packed plan, ready, waiting)
        self._held_after: list[int] = []
        offset = 0
        for part in chunks:
            rows = np.arange(part.start, part.stop)
            images, cells = rows // steps, rows % steps
            on_boundary = point_boundary[cells] >= 0
            known[images[on_boundary], point_boundary[cells[on_boundary]]] = True
            images, cells = np.concatenate([held_images, images]), np.concatenate([held_cells, cells])
            ready = known[images, cells] & known[images, cells + 1]
            pick, waiting = np.flatnonzero(ready), np.flatnonzero(~ready)
            parts += [pick, images[ready], cells[ready], waiting]
            self._plan.append((offset, len(pick), len(waiting)))
            offset += 3 * len(pick) + len(waiting)
            held_images, held_cells = images[waiting], cells[waiting]
            self._held_after.append(len(waiting))
        packed = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        self._indices = to_device(packed.astype(np.int64), device)  # the one copy
        self._chunk = -1
        self.gradients: torch.Tensor | None = None  # held cells first, then the current chunk's rows

    def add(self, gradients: torch.Tensor) -> None:
        """The next chunk's gradients (its rows in order), after those of the cells still held."""
        self._chunk += 1
        self.gradients = gradients if self.gradients is None else torch.cat([self.gradients, gradients])

    def flush(self, rule: IdgiRule, scores: torch.Tensor) -> None:
        """Hand every cell whose two end scores are known to ``rule``; keep the rest."""
        offset, ready, waiting = self._plan[self._chunk]
        pick, image_index, cell_index, keep = self._indices[offset : offset + 3 * ready + waiting].split(
            [ready, ready, ready, waiting]
        )
        if ready:
            delta = scores[image_index, cell_index + 1] - scores[image_index, cell_index]
            rule.add(image_index, self.gradients.index_select(0, pick), None, delta)
        self.gradients = self.gradients.index_select(0, keep) if waiting else None

    def __len__(self) -> int:
        return self._held_after[self._chunk] if self._chunk >= 0 else 0


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

    Nothing in the loop over chunks makes the host wait for the device: row indices are made on the device,
    and the IDGI bookkeeping is planned on the host and copied once (see :class:`_DeferredCells`).

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
    # One column more than there are boundaries: the f of a point on no boundary is written there and
    # dropped, so recording the boundary scores needs no selection of rows (no data-dependent shape).
    scores = torch.full((batch, steps + 2), float("nan"), dtype=torch.float64, device=device)
    known = np.zeros((batch, steps + 1), dtype=bool)
    for boundary, values in (known_boundary_scores or {}).items():
        scores[:, boundary] = values.to(torch.float64)
        known[:, boundary] = True

    point_boundary = schedule.boundary_index_of_points()
    needed = set(range(steps + 1)) if rule.needs_score_deltas else {0, steps}
    free = {int(b) for b in point_boundary if b >= 0}
    missing = sorted(b for b in needed - free if not known[0, b])
    boundaries = to_device(schedule.boundaries, device, torch.float64)
    if missing:
        _score_boundaries(engine, path, boundaries, missing, targets, scores)
        known[:, missing] = True

    points = to_device(schedule.points, device, torch.float64)
    weights = to_device(schedule.weights, device, torch.float64)
    score_column = to_device(np.where(point_boundary >= 0, point_boundary, steps + 1), device)
    chunks = list(engine.chunks(batch * steps))
    deferred = _DeferredCells(known, point_boundary, chunks, device) if rule.needs_score_deltas else None
    for part in chunks:
        rows = torch.arange(part.start, part.stop, device=device)
        image_index, cell_index = rows // steps, rows % steps
        alphas = points[cell_index]
        if rule.needs_score_deltas:
            x, velocity = path.points(image_index, alphas), None
        else:
            x, velocity = path.points_and_velocity(image_index, alphas)
        f, gradients = engine.scores_and_gradients(x, targets[image_index])
        if on_points is not None:
            on_points(image_index, cell_index, f, gradients)
        scores[image_index, score_column[cell_index]] = f.to(torch.float64)

        if deferred is not None:
            deferred.add(gradients)
            deferred.flush(rule, scores)
        else:
            displacement = velocity * weights[cell_index].to(velocity.dtype).view(-1, 1, 1, 1)
            rule.add(image_index, gradients, displacement)
    if deferred is not None and len(deferred):
        raise RuntimeError("internal error: IDGI cells left without scores")  # every boundary is scored above
    return scores[:, : steps + 1]


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
    missing_device = to_device(missing, device)
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

    The steps run without the host ever waiting for the device (see :func:`guided.advance`); the host reads
    one flag at the end. Should rounding have left a step unsettled (never seen), the path is walked again
    with the checked inner loop, so the result is always the checked loop's.

    Args:
        inputs, baselines: (B, C, H, W) on the engine's device.
        input_scores: (B,) f(x), closing the last IDGI cell.

    Returns:
        (B,) float64 f at the path start (the baselines).
    """
    plan = guided.plan_steps(schedule.boundaries.tolist(), anchors)
    start64, difference64 = baselines.to(torch.float64), (inputs - baselines).to(torch.float64)

    def walk(unsettled: torch.Tensor | None) -> torch.Tensor:
        """The walk; ``unsettled`` as in :func:`guided.advance` (None: the checked inner loop)."""
        x = start64.clone()
        image_index = torch.arange(inputs.shape[0], device=inputs.device)
        baseline_scores = None
        waiting: tuple[torch.Tensor, torch.Tensor] | None = None  # (gradients, f) of the last cell, for IDGI
        segment_bounds: tuple[int, torch.Tensor, torch.Tensor] | None = None
        for step in plan:
            if segment_bounds is None or segment_bounds[0] != step.segment:
                end = inputs.to(torch.float64) if step.segment_end >= 1.0 else None
                segment_bounds = (
                    step.segment,
                    start64 + difference64 * step.segment_start,
                    start64 + difference64 * step.segment_end if end is None else end,
                )
            f, gradients = engine.scores_and_gradients_chunked(x.to(inputs.dtype), targets)
            if baseline_scores is None:
                baseline_scores = f.to(torch.float64)
            if waiting is not None:
                rule.add(image_index, waiting[0], None, f.to(torch.float64) - waiting[1])
            x_next = guided.advance(x, gradients, segment_bounds[1], segment_bounds[2], step.alpha, fraction, max_dist,
                                    unsettled=unsettled)
            if rule.needs_score_deltas:
                waiting = (gradients, f.to(torch.float64))
            else:
                rule.add(image_index, gradients, x_next - x)
            x = x_next
        if waiting is not None:
            rule.add(image_index, waiting[0], None, input_scores.to(torch.float64) - waiting[1])
        return baseline_scores

    if inputs.device.type == "cpu" and not SYNC_FREE_ON_HOST:
        # On the host a "settled yet?" check costs nothing, and stopping there saves the fixed rounds' extra
        # selection work (14% of Guided IG's time on EfficientNet-Lite0, benchmarks/RESULTS.md).
        return walk(None)
    unsettled = torch.zeros((), dtype=torch.bool, device=inputs.device)
    baseline_scores = walk(unsettled)
    if bool(unsettled):  # the one wait for the device on this path
        rule.attributions.zero_()
        baseline_scores = walk(None)
    return baseline_scores
