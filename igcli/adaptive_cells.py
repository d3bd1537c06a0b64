"""The device side of ``--steps auto`` (:mod:`igcli.adaptive`): a pool of integrand vectors, one per gradient
taken, and the values and error estimates of the cells that the host's partition makes of them.

Every cell [a, b] has three points in the pool, a, its midpoint m and b, shared with its neighbours; the nested
rules and their estimates are those of :mod:`igcli.adaptive`'s docstring.
"""

from __future__ import annotations

import numpy as np
import torch

from .engine import Engine
from .transfer import to_device

# Cells whose values and error estimates are computed together: (cells x C x H x W) float64 temporaries.
CELL_CHUNK = 32


class PointPool:
    """Integrand vectors and scores per point, on the device, growing by doubling as points are added."""

    def __init__(self, shape: torch.Size, dtype: torch.dtype, device: torch.device, capacity: int) -> None:
        self.vectors = torch.zeros((capacity, *shape), dtype=dtype, device=device)
        self.scores = torch.zeros(capacity, dtype=torch.float64, device=device)
        self.used = 0

    def take(self, count: int) -> np.ndarray:
        """``count`` new slots."""
        needed = self.used + count
        if needed > self.vectors.shape[0]:
            capacity = max(needed, 2 * self.vectors.shape[0])
            vectors = torch.zeros((capacity, *self.vectors.shape[1:]), dtype=self.vectors.dtype,
                                  device=self.vectors.device)
            vectors[: self.used] = self.vectors[: self.used]
            scores = torch.zeros(capacity, dtype=torch.float64, device=self.scores.device)
            scores[: self.used] = self.scores[: self.used]
            self.vectors, self.scores = vectors, scores
        slots = np.arange(self.used, needed, dtype=np.int64)
        self.used = needed
        return slots


def evaluate_points(engine: Engine, path, rule: str, targets: torch.Tensor, pool: PointPool,
              points: list[tuple[int, float, int]]) -> None:
    """f and the integrand vector at every listed (image, alpha, slot), written into the pool, in engine
    chunks that mix images."""
    device = targets.device
    table = np.asarray(points, dtype=np.float64)
    image_index = to_device(table[:, 0].astype(np.int64), device)
    alphas = to_device(table[:, 1], device)
    slots = to_device(table[:, 2].astype(np.int64), device)
    for part in engine.chunks(len(points)):
        rows, at = image_index[part], alphas[part]
        if rule == "idgi":
            x = path.points(rows, at)
            f, gradients = engine.scores_and_gradients(x, targets[rows])
            squared = gradients.to(torch.float64).square()
            norm = squared.flatten(1).sum(dim=1)
            scale = torch.where(norm > 0, 1.0 / norm.clamp_min(1e-300), torch.zeros_like(norm))
            vectors = squared * scale.view(-1, *([1] * (squared.dim() - 1)))
        else:
            x, velocity = path.points_and_velocity(rows, at)
            f, gradients = engine.scores_and_gradients(x, targets[rows])
            vectors = gradients.to(torch.float64) * velocity.to(torch.float64)
        pool.vectors[slots[part]] = vectors.to(pool.vectors.dtype)
        pool.scores[slots[part]] = f.to(torch.float64)


def cell_values(pool: PointPool, rule: str, slots: torch.Tensor, widths: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For k cells given their (k, 3) slots and (k,) widths: (k, C, H, W) float64 values, (k,) error estimates
    from the cell alone, and (k,) completeness gaps (zero for ``idgi``, where every cell is complete)."""
    v_a, v_m, v_b = (pool.vectors[slots[:, j]].to(torch.float64) for j in range(3))
    f_a, f_m, f_b = (pool.scores[slots[:, j]] for j in range(3))
    view = (-1, *([1] * (v_a.dim() - 1)))
    if rule == "idgi":
        values = v_a * (f_m - f_a).view(view) + v_m * (f_b - f_m).view(view)
        errors = (f_b - f_m).abs() * (v_m - v_a).abs().flatten(1).sum(dim=1)
        return values, errors, torch.zeros_like(errors)
    h = widths.view(view)
    values = h / 6 * (v_a + 4 * v_m + v_b)
    curvature = (h / 12 * (v_a - 2 * v_m + v_b)).abs().flatten(1).sum(dim=1)
    gap = (f_b - f_a - values.flatten(1).sum(dim=1)).abs()
    return values, curvature, gap


def add_cells(pool: PointPool, rule: str, running: torch.Tensor, new_cells: list, parents: list) -> torch.Tensor:
    """Add the new cells' values to the running maps (and take out the parents they halve); (k,) the new cells'
    error estimates.

    A cell of the first partition is judged alone (:func:`cell_values`). Halves of a ``riemann`` cell are judged
    by how far their two Simpson values moved from their parent's, ||S_1 + S_2 - S_parent||_1: the difference
    of two nested levels, which estimates the coarser level's error and so bounds the finer one's on a smooth
    integrand (Lyness 1969) and matches it at a jump; it is shared between the halves in proportion to their
    own curvature estimates. A half's completeness gap, a lower bound of its L1 error, is never undercut.
    """
    device = running.device
    errors = torch.zeros(len(new_cells), dtype=torch.float64, device=device)
    table = np.asarray(new_cells, dtype=np.float64).reshape(-1, 6)
    image_index = to_device(table[:, 0].astype(np.int64), device)
    slots = to_device(table[:, 3:6].astype(np.int64), device)
    widths = to_device(table[:, 2] - table[:, 1], device)
    if parents:  # new cells come in pairs, halves of parents[i] at 2i and 2i + 1
        parent_table = np.asarray(parents, dtype=np.float64)
        parent_slots = to_device(parent_table[:, 1:4].astype(np.int64), device)
        parent_widths = to_device(parent_table[:, 4], device)
    step = CELL_CHUNK - CELL_CHUNK % 2
    for start in range(0, len(new_cells), step):
        part = slice(start, start + step)
        values, own, gap = cell_values(pool, rule, slots[part], widths[part])
        running.index_add_(0, image_index[part], values)
        if parents:
            halves = slice(start // 2, (start + step) // 2)
            parent_values, _, _ = cell_values(pool, rule, parent_slots[halves], parent_widths[halves])
            running.index_add_(0, image_index[part][0::2], -parent_values)
            if rule != "idgi":
                moved = (values[0::2] + values[1::2] - parent_values).abs().flatten(1).sum(dim=1)
                pair_own = own.view(-1, 2)
                share = torch.where(pair_own.sum(dim=1, keepdim=True) > 0,
                                    pair_own / pair_own.sum(dim=1, keepdim=True).clamp_min(1e-300),
                                    torch.full_like(pair_own, 0.5))
                own = (moved.view(-1, 1) * share).flatten()
        errors[part] = torch.maximum(own, gap)
    return errors
