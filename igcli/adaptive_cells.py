"""The device side of ``--steps auto`` (:mod:`igcli.adaptive`): a pool of integrand vectors, one per gradient
taken, and what the cells that the host's partition makes of them add to each image's map and error.

Every cell [a, b] has three points in the pool, a, its midpoint m and b, shared with its neighbours. A cell's
value is its nested rule's (``riemann``: Simpson, h/6 (v_a + 4 v_m + v_b); ``idgi``: the left sums of its two
halves, u_a (f_m - f_a) + u_m (f_b - f_m)), and its error vector is a finer rule's value less a coarser one's
(``riemann``: Simpson's less the two-panel trapezoid's, -h/12 (v_a - 2 v_m + v_b), for a cell of the first
partition; ``idgi``: the two left sums less the one, (u_m - u_a)(f_b - f_m)).

Halving a ``riemann`` cell (a, m, b) at its quarter points q1, q3 moves the map by S(a, q1, m) + S(m, q3, b) -
S(a, m, b) = h/12 (-v_a + 4 v_q1 - 6 v_m + 4 v_q3 - v_b): the difference of two nested levels, which estimates
the coarser level's error and so bounds the finer one's on a smooth integrand (Lyness 1969), and matches it at
a jump. It becomes the halves' error vector, shared between them in proportion to their own curvature.
Everything is a weighted sum of at most five pool vectors per cell, so the bookkeeping per gradient taken is a
few passes over one map; sums of maps (for the completeness gaps) come from each point's summed vector, kept
in float64.
"""

from __future__ import annotations

import numpy as np
import torch

from .engine import Engine
from .transfer import to_device

# Cells whose values and error estimates are computed together: (cells x C x H x W) temporaries.
CELL_CHUNK = 32


class PointPool:
    """Per point, on the device: its integrand vector (in the inputs' dtype), the vector's sum, df/d alpha and f
    (float64);
    growing by doubling as points are added, never beyond ``limit`` points."""

    def __init__(self, shape: torch.Size, dtype: torch.dtype, device: torch.device, capacity: int, limit: int) -> None:
        self.limit = limit  # the most points there can be (max_steps + 1 per image): growth stops there
        self.vectors = torch.zeros((min(capacity, limit), *shape), dtype=dtype, device=device)
        self.sums = torch.zeros(capacity, dtype=torch.float64, device=device)
        self.slopes = torch.zeros(capacity, dtype=torch.float64, device=device)  # df/d alpha = grad f . gamma'
        self.scores = torch.zeros(capacity, dtype=torch.float64, device=device)
        self.used = 0

    def take(self, count: int) -> np.ndarray:
        """``count`` new slots."""
        needed = self.used + count
        if needed > self.vectors.shape[0]:
            capacity = max(needed, min(2 * self.vectors.shape[0], self.limit))
            for name in ("vectors", "sums", "slopes", "scores"):
                old = getattr(self, name)
                grown = torch.zeros((capacity, *old.shape[1:]), dtype=old.dtype, device=old.device)
                grown[: self.used] = old[: self.used]
                setattr(self, name, grown)
        slots = np.arange(self.used, needed, dtype=np.int64)
        self.used = needed
        return slots


def evaluate_points(engine: Engine, path, rule: str, targets: torch.Tensor, pool: PointPool,
                    points: list[tuple[int, float, int]]) -> None:
    """f and the integrand vector at every listed (image, alpha, slot), written into the pool, in engine
    chunks that mix images. The vector is grad f * gamma' (``riemann``) or grad f^2 / ||grad f||^2 (``idgi``)."""
    device = targets.device
    table = np.asarray(points, dtype=np.float64)
    image_index = to_device(table[:, 0].astype(np.int64), device)
    alphas = to_device(table[:, 1], device)
    slots = to_device(table[:, 2].astype(np.int64), device)
    for part in engine.chunks(len(points)):
        rows, at = image_index[part], alphas[part]
        x, velocity = path.points_and_velocity(rows, at)
        f, gradients = engine.scores_and_gradients(x, targets[rows])
        along = gradients.to(torch.float64) * velocity.to(torch.float64)
        pool.slopes[slots[part]] = along.flatten(1).sum(dim=1)
        if rule == "idgi":
            squared = gradients.to(torch.float64).square()
            norm = squared.flatten(1).sum(dim=1)
            scale = torch.where(norm > 0, 1.0 / norm.clamp_min(1e-300), torch.zeros_like(norm))
            vectors = squared * scale.view(-1, *([1] * (squared.dim() - 1)))
        else:
            vectors = along
        pool.vectors[slots[part]] = vectors.to(pool.vectors.dtype)
        pool.sums[slots[part]] = vectors.flatten(1).sum(dim=1)
        pool.scores[slots[part]] = f.to(torch.float64)


class RunningMaps:
    """Per image, on the device: the map on the current partition, the sum of its cells' error vectors (both
    (B, C, H, W), the pool's dtype: they only steer the refinement; the final map is summed again in float64)
    and the map's sum (float64, for the completeness gap)."""

    def __init__(self, batch: int, shape: torch.Size, dtype: torch.dtype, device: torch.device,
                 complete: bool = True) -> None:
        # Whether a cell's value sums to its change in f (the path's velocity is exact): only then is a cell's
        # completeness gap a lower bound of its error.
        self.complete = complete
        self.maps = torch.zeros((batch, *shape), dtype=dtype, device=device)
        self.errors = torch.zeros_like(self.maps)
        self.sums = torch.zeros(batch, dtype=torch.float64, device=device)
        # idgi: the change of f that the cells' df/d alpha samples leave unexplained (see unexplained_change)
        self.unexplained = torch.zeros(batch, dtype=torch.float64, device=device)


def unexplained_change(pool: PointPool, a: torch.Tensor, m: torch.Tensor, b: torch.Tensor, widths: torch.Tensor
                       ) -> torch.Tensor:
    """(k,) how much of an ``idgi`` cell's change in f its sampled slopes df/d alpha fail to explain:
    |f_m - f_a - h/4 (d_a + d_m)| + |f_b - f_m - h/4 (d_m + d_b)| (the trapezoid rule on each half; at the input,
    where ``idgi`` takes no gradient and d_b is NaN, d_b = 2 d_m - d_a). IDGI's own estimate looks at the gradients'
    directions only, and its completeness holds by construction: this is what catches a rise of f between two
    points whose gradients are small, as the completeness gap does for ``riemann``."""
    f_a, f_m, f_b = pool.scores[a], pool.scores[m], pool.scores[b]
    d_a, d_m, d_b = pool.slopes[a], pool.slopes[m], pool.slopes[b]
    d_b = torch.where(torch.isnan(d_b), 2 * d_m - d_a, d_b)  # at the input: the slope extrapolated linearly
    right = widths / 4 * (d_m + d_b)
    return (f_m - f_a - widths / 4 * (d_a + d_m)).abs() + (f_b - f_m - right).abs()


def _l1(vectors: torch.Tensor) -> torch.Tensor:
    return vectors.abs().flatten(1).sum(dim=1).to(torch.float64)


def _times(vectors: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """(k, C, H, W) vectors times (k,) float64 scales, in the vectors' dtype."""
    return vectors * scale.to(vectors.dtype).view(-1, *([1] * (vectors.dim() - 1)))


def add_first_cells(pool: PointPool, rule: str, running: RunningMaps, rows: np.ndarray
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Add the first partition's cells, (k, 6) rows (image, a, b, slot_a, slot_m, slot_b), to ``running``;
    return their (k,) error sizes (the L1 norm of the error vector, never below the cell's completeness gap
    |f(b) - f(a) - sum(value)|, an exact lower bound of its L1 error) and (k,) shares (all 1)."""
    device = running.maps.device
    image_index = to_device(rows[:, 0].astype(np.int64), device)
    slots = to_device(rows[:, 3:6].astype(np.int64), device)
    widths = to_device(rows[:, 2] - rows[:, 1], device)
    sizes = torch.zeros(len(rows), dtype=torch.float64, device=device)
    for start in range(0, len(rows), CELL_CHUNK):
        part = slice(start, start + CELL_CHUNK)
        a, m, b = (slots[part, j] for j in range(3))
        v_a, v_m, v_b = pool.vectors[a], pool.vectors[m], pool.vectors[b]
        s_a, s_m, s_b = pool.sums[a], pool.sums[m], pool.sums[b]
        f_a, f_m, f_b = pool.scores[a], pool.scores[m], pool.scores[b]
        if rule == "idgi":
            values = _times(v_a, f_m - f_a) + _times(v_m, f_b - f_m)
            own = _times(v_m - v_a, f_b - f_m)
            value_sums = s_a * (f_m - f_a) + s_m * (f_b - f_m)
            gaps = unexplained_change(pool, a, m, b, widths[part])
            running.unexplained.index_add_(0, image_index[part], gaps)
        else:
            h = widths[part]
            values = _times(v_a + 4 * v_m + v_b, h / 6)
            own = _times(v_a - 2 * v_m + v_b, -h / 12)
            value_sums = h / 6 * (s_a + 4 * s_m + s_b)
            gaps = f_b - f_a - value_sums
        running.maps.index_add_(0, image_index[part], values)
        running.errors.index_add_(0, image_index[part], own)
        running.sums.index_add_(0, image_index[part], value_sums)
        sizes[part] = torch.maximum(_l1(own), gaps.abs()) if running.complete or rule == "idgi" else _l1(own)
    return sizes, torch.ones_like(sizes)


def add_halves(pool: PointPool, rule: str, running: RunningMaps, rows: np.ndarray, parents: np.ndarray
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace halved cells by their halves in ``running``; return the halves' (k,) error sizes and shares.

    ``rows``: (k, 6) the halves, (image, a, b, slot_a, slot_m, slot_b), those of ``parents[i]`` at 2i and 2i + 1
    (so the new quarter points are the halves' midpoints). ``parents``: (k / 2, 12) rows (image, slot_a, slot_m,
    slot_b, width, the five slots and width of the cell it halves itself (-1: a first-partition cell, and always
    for ``idgi``), its share of that cell's error vector).
    """
    device = running.maps.device
    halves = to_device(rows, device)
    table = to_device(parents, device)
    sizes = torch.zeros(len(rows), dtype=torch.float64, device=device)
    shares = torch.ones(len(rows), dtype=torch.float64, device=device)
    step = CELL_CHUNK // 2
    for start in range(0, len(parents), step):
        part = table[start : start + step]
        owners = part[:, 0].long()
        a, m, b = part[:, 1].long(), part[:, 2].long(), part[:, 3].long()
        new_rows = halves[2 * start : 2 * (start + step)]
        q1, q3 = new_rows[0::2, 4].long(), new_rows[1::2, 4].long()  # the halves' midpoints
        f = {name: pool.scores[slot] for name, slot in (("a", a), ("q1", q1), ("m", m), ("q3", q3), ("b", b))}
        s = {name: pool.sums[slot] for name, slot in (("a", a), ("q1", q1), ("m", m), ("q3", q3), ("b", b))}
        v_a, v_q1, v_m, v_q3, v_b = (pool.vectors[slot] for slot in (a, q1, m, q3, b))
        pair = 2 * len(part)
        if rule == "idgi":
            first, second = _times(v_q1 - v_a, f["m"] - f["q1"]), _times(v_q3 - v_m, f["b"] - f["q3"])
            moved = first + second
            error_moved = moved - _times(v_m - v_a, f["b"] - f["m"])
            sum_moved = (s["q1"] - s["a"]) * (f["m"] - f["q1"]) + (s["q3"] - s["m"]) * (f["b"] - f["q3"])
            h = part[:, 4]
            unexplained = torch.stack([unexplained_change(pool, a, q1, m, h / 2),
                                       unexplained_change(pool, m, q3, b, h / 2)], dim=1)
            running.unexplained.index_add_(0, owners, unexplained.sum(dim=1) - unexplained_change(pool, a, m, b, h))
            half_sizes = torch.maximum(torch.stack([_l1(first), _l1(second)], dim=1), unexplained)
            half_shares = torch.ones_like(half_sizes)
        else:
            h = part[:, 4]
            moved = _fourth_difference(v_a, v_q1, v_m, v_q3, v_b, h)
            error_moved = moved - _parent_errors(pool, part, v_a, v_m, v_b)
            sum_moved = h / 12 * (-s["a"] + 4 * s["q1"] - 6 * s["m"] + 4 * s["q3"] - s["b"])
            curvature = torch.stack([_l1(v_a - 2 * v_q1 + v_m), _l1(v_m - 2 * v_q3 + v_b)], dim=1)
            total = curvature.sum(dim=1, keepdim=True)
            half_shares = torch.where(total > 0, curvature / total.clamp_min(1e-300), torch.full_like(curvature, 0.5))
            gaps = torch.stack([f["m"] - f["a"] - h / 12 * (s["a"] + 4 * s["q1"] + s["m"]),
                                f["b"] - f["m"] - h / 12 * (s["m"] + 4 * s["q3"] + s["b"])], dim=1)
            half_sizes = _l1(moved).view(-1, 1) * half_shares
            if running.complete:
                half_sizes = torch.maximum(half_sizes, gaps.abs())
        running.maps.index_add_(0, owners, moved)
        running.errors.index_add_(0, owners, error_moved)
        running.sums.index_add_(0, owners, sum_moved)
        sizes[2 * start : 2 * start + pair] = half_sizes.flatten()
        shares[2 * start : 2 * start + pair] = half_shares.flatten()
    return sizes, shares


def _fourth_difference(v_a, v_q1, v_m, v_q3, v_b, widths: torch.Tensor) -> torch.Tensor:
    """S(a, q1, m) + S(m, q3, b) - S(a, m, b) = h/12 (-v_a + 4 v_q1 - 6 v_m + 4 v_q3 - v_b), h = b - a."""
    return _times(4 * (v_q1 + v_q3) - 6 * v_m - v_a - v_b, widths / 12)


def _parent_errors(pool: PointPool, parents: torch.Tensor, v_a, v_m, v_b) -> torch.Tensor:
    """The error vectors ``riemann`` cells added when they were made: their share of the cell they halve's
    level difference, or (a first-partition cell) Simpson's less the trapezoid's."""
    origin, origin_widths, share = parents[:, 5:10].long(), parents[:, 10], parents[:, 11]
    own = _times(v_a - 2 * v_m + v_b, -parents[:, 4] / 12)
    halved = origin[:, 0] >= 0  # both are computed: asking the device which applies would make the host wait
    o = origin.clamp_min(0)
    level = _fourth_difference(*(pool.vectors[o[:, j]] for j in range(5)), origin_widths)
    view = (-1, *([1] * (own.dim() - 1)))
    return torch.where(halved.view(view), _times(level, share), own)
