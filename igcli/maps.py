"""Maps as they are stored: reduced over channels (``--reduce``) and cast (``--dtype``)."""

from __future__ import annotations

import numpy as np
import torch



def reduce_channels(maps: torch.Tensor, reduce: str) -> torch.Tensor:
    """(..., C, H, W) maps as ``--reduce`` stores them: unchanged (``none``), or (..., H, W) channel sums of the
    values (``sum``) or of their magnitudes (``abs-sum``)."""
    if reduce == "sum":
        return maps.sum(dim=-3)
    if reduce == "abs-sum":
        return maps.abs().sum(dim=-3)
    return maps


def lost_in_float16(maps: np.ndarray, half: np.ndarray) -> tuple[int, int]:
    """(values float16 flushed to zero or overflowed to infinity, nonzero values) of float32 ``maps``."""
    nonzero = maps != 0
    lost = int(np.count_nonzero(nonzero & (half == 0))) + int(np.count_nonzero(np.isinf(half)))
    return lost, int(np.count_nonzero(nonzero))
