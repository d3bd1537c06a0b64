"""Error-controlled path integration per image (``--steps auto``): the fewest gradients for a stated accuracy.

The map of a fixed path is a vector integral, A = int_0^1 v(alpha) d alpha with v = grad f(gamma) * gamma'
(Sundararajan et al. 2017, Eq. 1; the ``riemann`` rule), or for the ``idgi`` rule the Stieltjes sum
sum_j u(t_j) (f(gamma(t_{j+1})) - f(gamma(t_j))), u = g^2 / ||g||^2 (Yang et al. 2023, Algorithm 1). Both are
refined here per image on a partition of [0, 1] into cells [a, b], each with a gradient at a, at its midpoint m
and (``riemann``) at b, so every gradient taken is reused when a cell is bisected (nested rules, as in
adaptive Simpson quadrature, Lyness 1969):

- ``riemann``: a cell is worth Simpson's S = h/6 (v_a + 4 v_m + v_b). A cell of the first partition is judged by
  S less the embedded two-panel trapezoid rule's value, -h/12 (v_a - 2 v_m + v_b); the halves of a cell by how
  far their two Simpson values moved from their parent's (the difference of two nested levels, Lyness 1969),
  shared between them in proportion to their own curvature.
- ``idgi``: a cell is worth u_a (f_m - f_a) + u_m (f_b - f_m), Algorithm 1's left sums over its two halves, and
  is judged by the change from the one-panel sum: (u_m - u_a)(f_b - f_m), the difference of two levels of a
  first-order rule. Completeness holds exactly on every partition, so the gap below tells nothing; instead the
  change in f that the cell's sampled slopes df/d alpha leave unexplained bounds its size and the image's
  estimate from below (:func:`~igcli.adaptive_cells.unexplained_change`).

These judgements are signed vectors (:mod:`igcli.adaptive_cells`). The estimated relative error of an image's
map is ||sum_cells e_c||_1 / ||A||_1: added as the map adds the cells' values, errors of opposite signs in
different cells cancel as they do in the map (a real network's gradients change in many small jumps along the
path: adding the cells' norms instead overstates its error about tenfold). The estimate is never below the
completeness gap's share |f(1) - f(0) - sum(A)| / ||A||_1, exact and free: a lower bound of the L1 error, which
catches a steep rise of f between two points; a cell's own gap bounds its size the same way. An image is done
when the estimate and the completeness gap relative to f(1) - f(0) (IG's own criterion, Sundararajan et al.
2017 §3) are both at most the tolerance T. Until then the cells with the largest errors are bisected: those that
hold half the error (bulk marking, Dörfler 1996, in QUADPACK QAG's largest-error-first order, Piessens et al.
1983), or near the target the fewest that leave the rest below T / 2, within the image's budget of gradient
evaluations.

Rounds are batched across images: each round gathers the new points of every image still refining into one set
of engine rows; an image that converges costs nothing more. The host decides which cells to split from one copy
per round (the new cells' error sizes; per image the norms of its map and error, and its completeness gap): one
wait for the device per round, whatever the number of images. Memory: one integrand vector per gradient taken
(at most ``max_steps`` per image), in a pool that grows with the points actually used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .adaptive_cells import CELL_CHUNK, PointPool, RunningMaps, add_first_cells, add_halves, evaluate_points
from .adaptive_settings import AdaptiveSteps
from .engine import Engine
from .transfer import to_device

# A cell narrower than this is never bisected: its ends would round to the same alpha in float32 inputs.
_MIN_WIDTH = 2.0**-30
# Bulk marking leaves the cells it does not split this fraction of the target error, so that the split ones'
# remaining error (a quarter on a smooth integrand, half at a jump) still fits in the rest.
_UNSPLIT_SHARE = 0.5
# ...but while the error is far above the target, a round splits only the largest cells that hold this share of
# it (Dörfler 1996): the next round's sizes place the following points better than one big uniform step would,
# which matters most when the budget runs out first.
_MARKED_SHARE = 0.5


@dataclass
class AdaptiveOutcome:
    """What :func:`integrate_adaptive` found for B images.

    Attributes:
        attributions: (B, C, H, W) float64, each image's map on its final partition.
        start_scores: (B,) float64, f at the path start (alpha = 0).
        evaluations: (B,) int64 gradient evaluations spent.
        error_estimate: (B,) float64, the estimated relative L1 error of the map.
        tolerance_met: (B,) bool: both the estimate and the completeness gap |sum(map) - (f(x) - f(x'))| /
            |f(x) - f(x')| (exact) are at most the tolerance.
        points: B sorted (n_b,) float64 arrays, the alphas where gradients were taken.
        weights: B (n_b,) float64 arrays: the map is sum_k weights[k] v(points[k]) (``riemann``: Simpson weights
            of the cells; ``idgi``: the score change over the point's sub-cell).
    """

    attributions: torch.Tensor
    start_scores: torch.Tensor
    evaluations: np.ndarray
    error_estimate: np.ndarray
    tolerance_met: np.ndarray
    points: list[np.ndarray]
    weights: list[np.ndarray]

    def padded_points(self, width: int | None = None) -> np.ndarray:
        """(B, width) float64 points, NaN after each image's last (width: the most points of any image)."""
        width = width if width is not None else max((len(p) for p in self.points), default=0)
        table = np.full((len(self.points), width), np.nan)
        for row, points in enumerate(self.points):
            table[row, : len(points)] = points
        return table


class _Partition:
    """One image's partition on the host: per cell its ends, the pool slots of (a, m, b), its error size, and
    where its error vector came from (the five slots and width of the cell it halves, -1 for none; its share)."""

    def __init__(self) -> None:
        self.left = self.right = self.sizes = self.origin_width = self.share = np.zeros(0)
        self.slots = np.zeros((0, 3), dtype=np.int64)
        self.origin = np.zeros((0, 5), dtype=np.int64)
        self.slot_alpha: dict[int, float] = {}
        self.evaluated: list[int] = []  # slots whose gradient was taken

    def add(self, rows: np.ndarray, sizes: np.ndarray, shares: np.ndarray, origin: np.ndarray,
            origin_width: np.ndarray) -> None:
        """Append cells: ``rows`` (k, 6) as :func:`~igcli.adaptive_cells.add_first_cells` takes them."""
        self.left, self.right = np.concatenate([self.left, rows[:, 1]]), np.concatenate([self.right, rows[:, 2]])
        self.slots = np.concatenate([self.slots, rows[:, 3:6].astype(np.int64)])
        self.sizes, self.share = np.concatenate([self.sizes, sizes]), np.concatenate([self.share, shares])
        self.origin = np.concatenate([self.origin, origin])
        self.origin_width = np.concatenate([self.origin_width, origin_width])

    def split(self, image: int, cells: np.ndarray, pool: PointPool):
        """Halve ``cells``: (new points (image, alpha, slot), new cell rows (image, a, b, slots), their origins,
        parent rows for :func:`~igcli.adaptive_cells.add_halves`)."""
        points, rows, origins, parents = [], [], [], []
        for cell in cells:
            a, b = self.left[cell], self.right[cell]
            slot_a, slot_m, slot_b = (int(slot) for slot in self.slots[cell])
            m = self.slot_alpha[slot_m]
            quarter, three_quarters = (int(slot) for slot in pool.take(2))
            for slot, alpha in ((quarter, (a + m) / 2), (three_quarters, (m + b) / 2)):
                self.slot_alpha[slot] = float(alpha)
                self.evaluated.append(slot)
                points.append((image, float(alpha), slot))
            rows += [(image, a, m, slot_a, quarter, slot_m), (image, m, b, slot_m, three_quarters, slot_b)]
            origins += [(slot_a, quarter, slot_m, three_quarters, slot_b, b - a)] * 2
            parents.append((image, slot_a, slot_m, slot_b, b - a, *self.origin[cell], self.origin_width[cell],
                            self.share[cell]))
        keep = np.setdiff1d(np.arange(len(self.left)), cells)
        for name in ("left", "right", "slots", "sizes", "share", "origin", "origin_width"):
            setattr(self, name, getattr(self, name)[keep])
        return points, rows, origins, parents

    @property
    def width(self) -> np.ndarray:
        return self.right - self.left


def integrate_adaptive(
    engine: Engine,
    path,
    rule: str,
    targets: torch.Tensor,
    input_scores: torch.Tensor,
    settings: AdaptiveSteps,
    on_round: Callable[[float], None] | None = None,
) -> AdaptiveOutcome:
    """Each image's path integral to the estimated relative L1 error ``settings.tolerance`` (module docstring).

    Args:
        engine: evaluates f and grad f.
        path: a fixed path for B images (``points`` / ``points_and_velocity`` over (image, alpha) rows).
        rule: ``riemann`` or ``idgi``.
        targets: (B,) int64 class per image, on the engine's device.
        input_scores: (B,) f(x) at alpha = 1, already computed (closes the last IDGI cell).
        settings: checked :class:`AdaptiveSteps`.
        on_round: called after every round with the fraction (0 to 1] of the images settled (host counts).
    """
    device = targets.device
    batch = targets.shape[0]
    probe = path.points(torch.zeros(1, dtype=torch.int64, device=device),
                        torch.zeros(1, dtype=torch.float64, device=device))
    shape = probe.shape[1:]
    pool = PointPool(shape, torch.float64 if probe.dtype == torch.float64 else torch.float32, device,
                     capacity=max(1, batch * (settings.initial_evaluations(rule) + 1) * 2),
                     limit=batch * (settings.max_steps + 1))
    complete = bool(getattr(path, "exact_velocity", True))
    running = RunningMaps(batch, shape, pool.vectors.dtype, device, complete)
    # f's own rounding: a completeness gap within a few units of it is noise, not a coarse partition: a few units
    # of the precision the model computes f in (bfloat16 with amp on the CPU) at both ends, and of the inputs'
    # precision over the map's many summed entries
    score_resolution = 4 * torch.finfo(_compute_dtype(engine, probe.dtype)).eps
    sum_resolution = 16 * torch.finfo(probe.dtype).eps
    images = [_Partition() for _ in range(batch)]
    points, rows, start_slots = _first_partition(images, pool, rule, settings.initial_cells(rule))
    if rule == "idgi":  # f at alpha = 1 is the input's score: no gradient is taken there (nor df/d alpha)
        ends = to_device(rows[rows[:, 2] == 1.0, 5].astype(np.int64), device)
        pool.scores[ends] = input_scores.to(torch.float64)
        pool.slopes[ends] = float("nan")
    start_slots = to_device(start_slots, device)
    origins = np.full((len(rows), 6), -1.0)
    parents = None
    active = np.ones(batch, dtype=bool)
    estimate = np.full(batch, np.inf)
    met = np.zeros(batch, dtype=bool)
    while points:
        evaluate_points(engine, path, rule, targets, pool, points)
        if parents is None:
            sizes, shares = add_first_cells(pool, rule, running, rows)
        else:
            sizes, shares = add_halves(pool, rule, running, rows, parents)
        # The one wait per round: the new cells' sizes and shares, and per image still refining, the size of
        # its map, of its summed error vector, and its completeness gap (an exact lower bound of the error).
        which = to_device(np.flatnonzero(active), device)
        start_scores = pool.scores[start_slots]
        change = input_scores.to(torch.float64) - start_scores
        gaps = (change - running.sums).abs()
        norms = running.maps.abs().flatten(1).sum(dim=1).to(torch.float64)
        # the gap's share f cannot resolve: rounding of f at both ends and of the map's sum
        floor = score_resolution * (input_scores.to(torch.float64).abs() + start_scores.abs()) + sum_resolution * norms
        copied = torch.cat([sizes, shares, *(values.index_select(0, which) for values in (
            norms, running.errors.abs().flatten(1).sum(dim=1).to(torch.float64), gaps, change.abs(), floor,
            running.unexplained))])
        copied = copied.cpu().numpy()
        k = len(rows)
        sizes, shares = copied[:k], copied[k : 2 * k]
        norms, errors, gaps, changes, floors, unexplained = copied[2 * k :].reshape(6, -1)
        if not complete:  # the gap is not the sum's error: neither a bound nor a criterion
            gaps = changes = np.zeros_like(gaps)
        owner = rows[:, 0].astype(np.int64)
        for image in np.unique(owner):
            mine = owner == image
            images[image].add(rows[mine], sizes[mine], shares[mine], origins[mine, :5].astype(np.int64),
                              origins[mine, 5])
        points, rows_list, origin_list, parent_list = [], [], [], []
        for image, norm, error, gap, change_size, floor, missed in zip(np.flatnonzero(active), norms, errors, gaps,
                                                                       changes, floors, unexplained):
            state = images[image]
            gap = max(0.0, gap - floor)
            # idgi: the change of f its samples do not explain (zero for riemann, whose gap says the same)
            missed = max(0.0, missed - floor)
            total = max(error, gap, missed) if np.all(np.isfinite(state.sizes)) else math.inf
            estimate[image] = total / norm if norm > 0 else (0.0 if total == 0 else math.inf)
            # How far from done: the map's estimated error against T, and (the sum's error, known exactly)
            # the completeness gap against T, IG's own criterion (Sundararajan et al. 2017 §3).
            completeness = gap / change_size if change_size > 0 else 0.0
            behind = max(estimate[image], completeness) / settings.tolerance
            met[image] = behind <= 1
            budget = (settings.max_steps - len(state.evaluated)) // 2
            split = np.zeros(0, dtype=np.int64)
            if behind > 1 and math.isfinite(behind) and budget >= 1:
                # Errors of different cells partly cancel in the map: the cells' sizes add up to more than the
                # summed vector. Keep unsplit a share of the sizes in proportion to the target over the total.
                split = _mark(state.sizes, state.width, max(_UNSPLIT_SHARE / behind, 1.0 - _MARKED_SHARE), budget)
            if not len(split):
                active[image] = False  # converged, out of budget, or non-finite (the engine will say so)
                continue
            new_points, new_rows, new_origins, new_parents = state.split(int(image), split, pool)
            points += new_points
            rows_list += new_rows
            origin_list += new_origins
            parent_list += new_parents
        if on_round is not None:
            on_round(1.0 - float(active.sum()) / max(1, batch))
        if points:
            rows, parents = np.asarray(rows_list, dtype=np.float64), np.asarray(parent_list, dtype=np.float64)
            origins = np.asarray(origin_list, dtype=np.float64) if rule != "idgi" else np.full((len(rows), 6), -1.0)
            if rule == "idgi":
                parents[:, 5:10] = -1
    return _finish(pool, rule, images, shape, device, estimate, met)


def _compute_dtype(engine: Engine, dtype: torch.dtype) -> torch.dtype:
    """The dtype the model computes f in: autocast's (bfloat16 on the CPU, float16 on CUDA), else the inputs'."""
    if getattr(engine, "amp", False):
        return torch.float16 if engine.device.type == "cuda" else torch.bfloat16
    return dtype


def _first_partition(images: list[_Partition], pool: PointPool, rule: str, cells: int):
    """n uniform cells per image: (points to evaluate, (k, 6) cell rows, (B,) slots of alpha = 0)."""
    grid = np.linspace(0.0, 1.0, 2 * cells + 1)
    points, rows, start_slots = [], [], []
    for image, state in enumerate(images):
        slots = [int(slot) for slot in pool.take(len(grid))]
        start_slots.append(slots[0])
        for alpha, slot in zip(grid, slots):
            state.slot_alpha[slot] = float(alpha)
            if rule != "idgi" or alpha < 1.0:
                points.append((image, float(alpha), slot))
                state.evaluated.append(slot)
        rows += [(image, grid[2 * k], grid[2 * k + 2], *slots[2 * k : 2 * k + 3]) for k in range(cells)]
    return points, np.asarray(rows, dtype=np.float64), np.asarray(start_slots, dtype=np.int64)


def _mark(sizes: np.ndarray, widths: np.ndarray, keep: float, budget: int) -> np.ndarray:
    """The cells to bisect: largest error size first, the fewest that leave at most the fraction ``keep`` of
    the sizes' sum unsplit, at most ``budget``; never a cell too narrow to halve or one with no error."""
    candidates = np.flatnonzero((widths > _MIN_WIDTH) & (sizes > 0))
    if not len(candidates):
        return candidates
    order = candidates[np.argsort(-sizes[candidates], kind="stable")]
    remaining = sizes.sum() - np.cumsum(sizes[order])
    enough = np.flatnonzero(remaining <= keep * sizes.sum())
    count = int(enough[0]) + 1 if len(enough) else len(order)
    return np.sort(order[: min(count, budget)])


def _finish(pool: PointPool, rule: str, images: list[_Partition], shape: torch.Size, device: torch.device,
            estimate: np.ndarray, met: np.ndarray) -> AdaptiveOutcome:
    """Each image's map as sum_k w_k v(t_k) over its final partition, and what was spent."""
    scores = pool.scores[: pool.used].cpu().numpy()  # the IDGI weights are score changes
    batch = len(images)
    attributions = torch.zeros((batch, *shape), dtype=torch.float64, device=device)
    all_points, all_weights, rows, slots, weights = [], [], [], [], []
    for image, state in enumerate(images):
        weight_of: dict[int, float] = {}
        for (slot_a, slot_m, slot_b), a, b in zip(state.slots, state.left, state.right):
            if rule == "idgi":
                contributions = ((slot_a, scores[slot_m] - scores[slot_a]), (slot_m, scores[slot_b] - scores[slot_m]))
            else:
                h = b - a
                contributions = ((slot_a, h / 6), (slot_m, 4 * h / 6), (slot_b, h / 6))
            for slot, weight in contributions:
                weight_of[int(slot)] = weight_of.get(int(slot), 0.0) + float(weight)
        evaluated = sorted(state.evaluated, key=lambda slot: state.slot_alpha[slot])
        all_points.append(np.asarray([state.slot_alpha[s] for s in evaluated], dtype=np.float64))
        all_weights.append(np.asarray([weight_of.get(s, 0.0) for s in evaluated], dtype=np.float64))
        rows += [image] * len(evaluated)
        slots += evaluated
        weights += all_weights[-1].tolist()
    row_index = to_device(np.asarray(rows, dtype=np.int64), device)
    slot_index = to_device(np.asarray(slots, dtype=np.int64), device)
    weight_values = to_device(np.asarray(weights, dtype=np.float64), device)
    view = (-1, *([1] * len(shape)))
    for start in range(0, len(rows), CELL_CHUNK):
        part = slice(start, start + CELL_CHUNK)
        contribution = pool.vectors[slot_index[part]].to(torch.float64) * weight_values[part].view(view)
        attributions.index_add_(0, row_index[part], contribution)
    start_slots = [min(state.evaluated, key=lambda slot: state.slot_alpha[slot]) for state in images]
    start_scores = to_device(scores[start_slots].astype(np.float64), device)
    evaluations = np.asarray([len(state.evaluated) for state in images], dtype=np.int64)
    return AdaptiveOutcome(attributions, start_scores, evaluations, estimate, met, all_points, all_weights)
