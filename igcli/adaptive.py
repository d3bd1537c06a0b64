"""Error-controlled path integration per image (``--steps auto``): the fewest gradients for a stated accuracy.

The map of a fixed path is a vector integral, A = int_0^1 v(alpha) d alpha with v = grad f(gamma) * gamma'
(Sundararajan et al. 2017, Eq. 1; the ``riemann`` rule), or for the ``idgi`` rule the Stieltjes sum
sum_j u(t_j) (f(gamma(t_{j+1})) - f(gamma(t_j))), u = g^2 / ||g||^2 (Yang et al. 2023, Algorithm 1). Both are
refined here per image on a partition of [0, 1] into cells [a, b], each with a gradient at a, at its midpoint m
and (``riemann``) at b, so every gradient taken is reused when a cell is bisected (nested rules, as in
adaptive Simpson quadrature, Lyness 1969):

- ``riemann``: a cell is worth Simpson's S = h/6 (v_a + 4 v_m + v_b). Its error estimate is the larger of
  ||S - T2||_1 = h/12 ||v_a - 2 v_m + v_b||_1 (the Richardson estimate of the embedded two-panel trapezoid rule
  T2, which S never does worse than on a smooth integrand, and which bounds S's error at a kink or a jump within
  the cell up to a small factor), and the cell's completeness gap |f(b) - f(a) - sum(S)|, exact and free: it is a
  lower bound of the cell's L1 error (the summed map of a cell must equal its change in f), and catches a steep
  rise of f that falls between the cell's three points.
- ``idgi``: a cell is worth u_a (f_m - f_a) + u_m (f_b - f_m), Algorithm 1's left sums over its two halves; its
  error estimate is the change from the coarse one-panel sum u_a (f_b - f_a): |f_b - f_m| ||u_m - u_a||_1
  (a first-order rule: the difference of two levels estimates the finer level's error). Completeness holds
  exactly on every partition.

The estimated relative error of an image's map is sum_cells E_c / ||A||_1 (an upper bound of ||error||_1 up to
the estimates themselves). While it exceeds the tolerance T, the cells with the largest E_c are bisected: the
fewest that leave the others' errors below T / 2 (bulk marking, Dörfler 1996, with QUADPACK QAG's global
largest-error-first order, Piessens et al. 1983), within the image's budget of gradient evaluations.

Rounds are batched across images: each round gathers the new points of every image still refining into one set
of engine rows; an image that converges costs nothing more. The host decides which cells to split from one copy
per round (the cells' error estimates and the maps' norms): one wait for the device per round, whatever the
number of images. Memory: one integrand vector per gradient taken (at most ``max_steps`` per image), in a pool
that grows with the points actually used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .adaptive_cells import CELL_CHUNK, PointPool, add_cells, evaluate_points
from .engine import Engine
from .errors import InvalidArgumentError
from .transfer import to_device

DEFAULT_TOLERANCE = 0.05
DEFAULT_MIN_STEPS = 8
DEFAULT_MAX_STEPS = 256
# A cell narrower than this is never bisected: its ends would round to the same alpha in float32 inputs.
_MIN_WIDTH = 2.0**-30
# Bulk marking leaves the cells it does not split this fraction of the target error, so that the split ones'
# remaining error (a quarter on a smooth integrand, half at a jump) still fits in the rest.
_UNSPLIT_SHARE = 0.5


@dataclass(frozen=True)
class AdaptiveSteps:
    """What ``--steps auto`` asks for.

    Attributes:
        tolerance: the estimated relative L1 error of each map to reach, ||error||_1 / ||map||_1, in (0, 1).
        min_steps: gradient evaluations of the first, uniform partition (rounded up to whole cells: ``riemann``
            takes 2n + 1 for n cells, ``idgi`` 2n, since f at the input is known).
        max_steps: the most gradient evaluations spent on one image.
    """

    tolerance: float = DEFAULT_TOLERANCE
    min_steps: int = DEFAULT_MIN_STEPS
    max_steps: int = DEFAULT_MAX_STEPS

    def initial_cells(self, rule: str) -> int:
        """Cells of the first partition for ``rule``."""
        if rule == "idgi":
            return max(1, math.ceil(self.min_steps / 2))
        return max(1, math.ceil((self.min_steps - 1) / 2))

    def initial_evaluations(self, rule: str) -> int:
        cells = self.initial_cells(rule)
        return 2 * cells if rule == "idgi" else 2 * cells + 1

    def checked(self, rule: str) -> "AdaptiveSteps":
        """These settings with their types checked; InvalidArgumentError names the one that is wrong."""
        from .schedules import MAX_STEPS

        tolerance = self.tolerance
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not (
                math.isfinite(tolerance) and 0 < tolerance < 1):
            raise InvalidArgumentError(f"tolerance must be a number in (0, 1) (a relative L1 error), got {tolerance!r}")
        for name in ("min_steps", "max_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= MAX_STEPS:
                raise InvalidArgumentError(f"{name} must be an integer in 1..{MAX_STEPS}, got {value!r}")
        first = self.initial_evaluations(rule)
        if self.max_steps < first:
            raise InvalidArgumentError(
                f"max_steps {self.max_steps} is below the first partition's {first} gradient evaluations "
                f"(min_steps {self.min_steps}, rule {rule}); raise max_steps or lower min_steps")
        return AdaptiveSteps(float(tolerance), int(self.min_steps), int(self.max_steps))


def check_auto_steps(method, rule: str, schedule, ensemble: bool, settings: AdaptiveSteps) -> AdaptiveSteps:
    """``settings`` checked for ``method`` (a :class:`~igcli.methods.Method`) and ``rule``; InvalidArgumentError,
    in one line, where steps auto cannot apply: a method without a fixed path (its points would move with its
    gradients: an ODE step-size problem, not quadrature), an explicit ``schedule``, or an ensemble."""
    if not method.has_path or not method.fixed_path:
        kind = "has no path to integrate" if not method.has_path else "walks a path that its own gradients steer"
        raise InvalidArgumentError(
            f"steps auto needs a fixed path (ig, blurig): method {method.name} {kind}; give a number of steps")
    if schedule is not None:
        raise InvalidArgumentError("steps auto places its own points: leave the schedule unset, or give a number "
                                   "of steps with the schedule")
    if ensemble:
        raise InvalidArgumentError("steps auto does not combine with an ensemble (noise samples, several baselines "
                                   "or drawn references) yet; give a number of steps")
    return settings.checked(rule)


@dataclass
class AdaptiveOutcome:
    """What :func:`integrate_adaptive` found for B images.

    Attributes:
        attributions: (B, C, H, W) float64, each image's map on its final partition.
        start_scores: (B,) float64, f at the path start (alpha = 0).
        evaluations: (B,) int64 gradient evaluations spent.
        error_estimate: (B,) float64, the estimated relative L1 error of the map.
        tolerance_met: (B,) bool.
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


class _Cells:
    """One image's partition on the host: cell ends, the pool slots of its points, and the cells' errors."""

    def __init__(self) -> None:
        self.left = np.zeros(0)
        self.right = np.zeros(0)
        self.slots = np.zeros((0, 3), dtype=np.int64)  # pool slot of (a, m, b)
        self.errors = np.zeros(0)
        self.slot_alpha: dict[int, float] = {}
        self.evaluated: list[int] = []  # slots whose gradient was taken

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
    probe = path.points(torch.zeros(1, dtype=torch.int64, device=device), torch.zeros(1, dtype=torch.float64,
                                                                                     device=device))
    shape = probe.shape[1:]
    vector_dtype = torch.float64 if probe.dtype == torch.float64 else torch.float32
    first = settings.initial_evaluations(rule)
    pool = PointPool(shape, vector_dtype, device, capacity=max(1, batch * (first + 1) * 2))
    running = torch.zeros((batch, *shape), dtype=torch.float64, device=device)
    images = [_Cells() for _ in range(batch)]

    # The first partition: n uniform cells per image, with a slot per cell end and midpoint.
    cells = settings.initial_cells(rule)
    grid = np.linspace(0.0, 1.0, 2 * cells + 1)
    new_points: list[tuple[int, float, int]] = []  # (image, alpha, slot) to evaluate
    fixed_ends: list[tuple[int, int]] = []  # (image, slot) of alpha = 1 for idgi: f known, no gradient
    new_cells: list[tuple[int, float, float, int, int, int]] = []  # (image, a, b, slot_a, slot_m, slot_b)
    for image, state in enumerate(images):
        slots = pool.take(len(grid))
        for alpha, slot in zip(grid, slots):
            state.slot_alpha[int(slot)] = float(alpha)
            if rule == "idgi" and alpha == 1.0:
                fixed_ends.append((image, int(slot)))
            else:
                new_points.append((image, float(alpha), int(slot)))
                state.evaluated.append(int(slot))
        for k in range(cells):
            new_cells.append((image, grid[2 * k], grid[2 * k + 2], int(slots[2 * k]), int(slots[2 * k + 1]),
                              int(slots[2 * k + 2])))
    if fixed_ends:
        ends = np.asarray(fixed_ends, dtype=np.int64)
        pool.scores[to_device(ends[:, 1], device)] = input_scores.to(torch.float64)[to_device(ends[:, 0], device)]

    active = np.ones(batch, dtype=bool)
    estimate = np.full(batch, np.inf)
    norms = np.zeros(batch)
    removed: list[tuple[int, int, int, int, float]] = []  # the cells halved: (image, slots..., width)
    while new_points:
        evaluate_points(engine, path, rule, targets, pool, new_points)
        errors = add_cells(pool, rule, running, new_cells, removed)
        norm_rows = to_device(np.flatnonzero(active), device)
        copied = torch.cat([errors, running.index_select(0, norm_rows).abs().flatten(1).sum(dim=1)]).cpu().numpy()
        _record(images, new_cells, copied[: len(new_cells)])
        norms[active] = copied[len(new_cells):]

        new_points, new_cells, removed = [], [], []
        for image in np.flatnonzero(active):
            state = images[image]
            total = float(state.errors.sum()) if np.all(np.isfinite(state.errors)) else math.inf
            estimate[image] = total / norms[image] if norms[image] > 0 else (0.0 if total == 0 else math.inf)
            target = settings.tolerance * norms[image]
            budget = (settings.max_steps - len(state.evaluated)) // 2
            if total <= target or not math.isfinite(total) or budget < 1:
                active[image] = False  # converged, out of budget, or non-finite (the engine will say so)
                continue
            split = _mark(state.errors, state.width, target, budget)
            if not len(split):
                active[image] = False
                continue
            for cell in split:
                a, b = state.left[cell], state.right[cell]
                slot_a, slot_m, slot_b = (int(s) for s in state.slots[cell])
                m = state.slot_alpha[slot_m]
                quarter, three_quarters = pool.take(2)
                for slot, alpha in ((quarter, (a + m) / 2), (three_quarters, (m + b) / 2)):
                    state.slot_alpha[int(slot)] = float(alpha)
                    state.evaluated.append(int(slot))
                    new_points.append((int(image), float(alpha), int(slot)))
                new_cells.append((int(image), a, m, slot_a, int(quarter), slot_m))
                new_cells.append((int(image), m, b, slot_m, int(three_quarters), slot_b))
                removed.append((int(image), slot_a, slot_m, slot_b, b - a))
            keep = np.setdiff1d(np.arange(len(state.errors)), split)
            state.left, state.right = state.left[keep], state.right[keep]
            state.slots, state.errors = state.slots[keep], state.errors[keep]
        if on_round is not None:
            on_round(1.0 - float(active.sum()) / max(1, batch))

    return _finish(pool, rule, images, shape, device, settings, estimate)


def _record(images: list[_Cells], new_cells: list, errors: np.ndarray) -> None:
    """Append the new cells, with their errors, to their images' partitions."""
    table = np.asarray(new_cells, dtype=np.float64).reshape(-1, 6)
    owner = table[:, 0].astype(np.int64)
    for image in np.unique(owner):
        state, mine = images[image], owner == image
        state.left = np.concatenate([state.left, table[mine, 1]])
        state.right = np.concatenate([state.right, table[mine, 2]])
        state.slots = np.concatenate([state.slots, table[mine, 3:6].astype(np.int64)])
        state.errors = np.concatenate([state.errors, errors[mine]])


def _mark(errors: np.ndarray, widths: np.ndarray, target: float, budget: int) -> np.ndarray:
    """The cells to bisect: largest error first, the fewest that leave the rest under a share of ``target``,
    at most ``budget``; never a cell too narrow to halve or one with no error."""
    candidates = np.flatnonzero((widths > _MIN_WIDTH) & (errors > 0))
    if not len(candidates):
        return candidates
    order = candidates[np.argsort(-errors[candidates], kind="stable")]
    remaining = errors.sum() - np.cumsum(errors[order])
    enough = np.flatnonzero(remaining <= _UNSPLIT_SHARE * target)
    count = int(enough[0]) + 1 if len(enough) else len(order)
    return np.sort(order[: min(count, budget)])


def _finish(pool: PointPool, rule: str, images: list[_Cells], shape: torch.Size, device: torch.device,
            settings: AdaptiveSteps, estimate: np.ndarray) -> AdaptiveOutcome:
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
    met = estimate <= settings.tolerance
    return AdaptiveOutcome(attributions, start_scores, evaluations, estimate, met, all_points, all_weights)
