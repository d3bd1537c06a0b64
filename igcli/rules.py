"""Integration rules: how the gradient met in a cell of the path becomes attribution.

Both are accumulators over cells, so memory does not grow with the number of steps.

- ``riemann``: attr += g_k * dx_k, where dx_k is the cell's displacement: w_k * gamma'(t_k) on fixed paths,
  x_{k+1} - x_k on Guided IG's (Yang et al. 2023, Eq. 6).
- ``idgi``: attr += g_k^2 * (f(x_{k+1}) - f(x_k)) / sum(g_k^2) (Yang et al. 2023, Algorithm 1, line 5): each cell
  explains exactly its change in f, along the gradient direction only. Completeness holds to float precision.
"""

from __future__ import annotations

import torch

from .errors import InvalidArgumentError
from .methods import RULE_NAMES


class _Accumulator:
    """Attributions of ``shape`` (B, C, H, W), summed in float64 on ``device`` so long paths lose no precision."""

    def __init__(self, shape: torch.Size, device: torch.device) -> None:
        self.attributions = torch.zeros(shape, dtype=torch.float64, device=device)


class RiemannRule(_Accumulator):
    """attr += g * displacement."""

    name = "riemann"
    needs_score_deltas = False

    def add(
        self,
        image_index: torch.Tensor,
        gradients: torch.Tensor,
        displacement: torch.Tensor,
        score_delta: torch.Tensor | None = None,
    ) -> None:
        """Add cells for rows: ``gradients`` and ``displacement`` (R, C, H, W) of images ``image_index`` (R,)."""
        contribution = gradients.to(torch.float64) * displacement.to(torch.float64)
        self.attributions.index_add_(0, image_index, contribution)


class IdgiRule(_Accumulator):
    """attr += g^2 (f(x_{k+1}) - f(x_k)) / sum(g^2); a cell whose gradient is exactly zero adds nothing."""

    name = "idgi"
    needs_score_deltas = True

    def add(
        self,
        image_index: torch.Tensor,
        gradients: torch.Tensor,
        displacement: torch.Tensor | None,
        score_delta: torch.Tensor | None = None,
    ) -> None:
        """Add cells for rows: ``gradients`` (R, C, H, W), ``score_delta`` (R,) = f(x_{k+1}) - f(x_k)."""
        if score_delta is None:
            raise ValueError("the IDGI rule needs the score change of every cell")
        squared = gradients.to(torch.float64).square()
        norm = squared.flatten(1).sum(dim=1)
        scale = torch.where(norm > 0, score_delta.to(torch.float64) / norm.clamp_min(1e-300), torch.zeros_like(norm))
        self.attributions.index_add_(0, image_index, squared * scale.view(-1, 1, 1, 1))


def make_rule(name: str, shape: torch.Size, device: torch.device) -> RiemannRule | IdgiRule:
    """The accumulator for rule ``name`` (``riemann`` or ``idgi``) over attributions of ``shape``."""
    if name == "riemann":
        return RiemannRule(shape, device)
    if name == "idgi":
        return IdgiRule(shape, device)
    raise InvalidArgumentError(f"unknown rule {name!r}; choose from {', '.join(RULE_NAMES)}")
