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
    """For k cells given their (k, 3) slots and (k,) widths: (k, C, H, W) float64 values; (k, C, H, W) signed
    error vectors from the cell alone, a finer rule's value less a coarser one's (``riemann``: Simpson's less the
    two-panel trapezoid's, -h/12 (v_a - 2 v_m + v_b); ``idgi``: the two left sums less the one,
    (u_m - u_a)(f_b - f_m)); and (k,) signed completeness gaps f(b) - f(a) - sum(value) (zero for ``idgi``)."""
    v_a, v_m, v_b = (pool.vectors[slots[:, j]].to(torch.float64) for j in range(3))
    f_a, f_m, f_b = (pool.scores[slots[:, j]] for j in range(3))
    view = (-1, *([1] * (v_a.dim() - 1)))
    if rule == "idgi":
        values = v_a * (f_m - f_a).view(view) + v_m * (f_b - f_m).view(view)
        return values, (v_m - v_a) * (f_b - f_m).view(view), torch.zeros_like(f_a)
    h = widths.view(view)
    values = h / 6 * (v_a + 4 * v_m + v_b)
    return values, -h / 12 * (v_a - 2 * v_m + v_b), f_b - f_a - values.flatten(1).sum(dim=1)


def pair_difference(pool: PointPool, five: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
    """(k, C, H, W) S(a, q1, m) + S(m, q3, b) - S(a, m, b) for k ``riemann`` cells halved, given their (k, 5)
    slots (a, q1, m, q3, b) and (k,) widths b - a."""
    left, _, _ = cell_values(pool, "riemann", five[:, 0:3], widths / 2)
    right, _, _ = cell_values(pool, "riemann", five[:, 2:5], widths / 2)
    whole, _, _ = cell_values(pool, "riemann", five[:, [0, 2, 4]], widths)
    return left + right - whole


def _l1(vectors: torch.Tensor) -> torch.Tensor:
    return vectors.abs().flatten(1).sum(dim=1)


def add_cells(pool: PointPool, rule: str, maps: torch.Tensor, error_vectors: torch.Tensor, new_cells: np.ndarray,
              parents: np.ndarray | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Add the new cells' values to the running ``maps`` and their error vectors to ``error_vectors`` (both
    (B, C, H, W) float64), taking out those of the parents they halve; return the new cells' (k,) error sizes
    (what bisecting them should gain: the L1 norm of their error vectors, never below their completeness gap)
    and (k,) shares.

    ``new_cells``: (k, 6) rows (image, a, b, slot_a, slot_m, slot_b); after the first round they come in pairs,
    the halves of ``parents[i]`` at 2i and 2i + 1. ``parents``: (k / 2, 12) rows (image, slot_a, slot_m, slot_b,
    width, five origin slots, origin width, share): see :func:`parent_error_vectors`.

    A ``riemann`` pair's error vector is how far its two Simpson values moved from their parent's,
    S_1 + S_2 - S_parent: the difference of two nested levels, which estimates the coarser level's error and so
    bounds the finer one's on a smooth integrand (Lyness 1969), and matches it at a jump. The halves share it in
    proportion to their own curvature (``shares``). The errors of an image's cells are added as vectors, so that
    errors of opposite signs in different cells cancel as they do in the map.
    """
    device = maps.device
    sizes = torch.zeros(len(new_cells), dtype=torch.float64, device=device)
    shares = torch.ones(len(new_cells), dtype=torch.float64, device=device)
    image_index = to_device(new_cells[:, 0].astype(np.int64), device)
    slots = to_device(new_cells[:, 3:6].astype(np.int64), device)
    widths = to_device(new_cells[:, 2] - new_cells[:, 1], device)
    if parents is not None:
        parent_rows = to_device(parents, device)
    step = CELL_CHUNK - CELL_CHUNK % 2
    for start in range(0, len(new_cells), step):
        part = slice(start, start + step)
        values, own, gap = cell_values(pool, rule, slots[part], widths[part])
        maps.index_add_(0, image_index[part], values)
        if parents is None or rule == "idgi":
            error_vectors.index_add_(0, image_index[part], own)
            sizes[part] = torch.maximum(_l1(own), gap.abs())
        if parents is None:
            continue
        halves = parent_rows[start // 2 : (start + step) // 2]
        owners = halves[:, 0].long()
        parent_slots, parent_widths = halves[:, 1:4].long(), halves[:, 4]
        parent_values, _, _ = cell_values(pool, rule, parent_slots, parent_widths)
        maps.index_add_(0, owners, -parent_values)
        error_vectors.index_add_(0, owners, -parent_error_vectors(pool, rule, halves))
        if rule == "idgi":
            continue
        pair = values[0::2] + values[1::2] - parent_values
        curvature = _l1(own).view(-1, 2)
        total = curvature.sum(dim=1, keepdim=True)
        share = torch.where(total > 0, curvature / total.clamp_min(1e-300), torch.full_like(curvature, 0.5))
        error_vectors.index_add_(0, owners, pair)
        shares[part] = share.flatten()
        sizes[part] = torch.maximum((_l1(pair).view(-1, 1) * share).flatten(), gap.abs())
    return sizes, shares


def parent_error_vectors(pool: PointPool, rule: str, parents: torch.Tensor) -> torch.Tensor:
    """The error vectors the cells in ``parents`` added when they were made: (k, 12) rows (image, slot_a,
    slot_m, slot_b, width, five origin slots, origin width, share), the origin being the cell they halve
    (``riemann``; -1 for a cell of the first partition, and always for ``idgi``, whose cells are judged alone)."""
    slots, widths = parents[:, 1:4].long(), parents[:, 4]
    _, own, _ = cell_values(pool, rule, slots, widths)
    if rule == "idgi":
        return own
    origin, origin_widths, share = parents[:, 5:10].long(), parents[:, 10], parents[:, 11]
    halved = origin[:, 0] >= 0
    paired = pair_difference(pool, origin.clamp_min(0), origin_widths) * share.view(-1, *([1] * (own.dim() - 1)))
    return torch.where(halved.view(-1, *([1] * (own.dim() - 1))), paired, own)
