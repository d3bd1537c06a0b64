"""The straight-line path of Integrated Gradients: gamma(alpha) = x' + alpha (x - x') (Yang et al. 2023, Eq. 1)."""

from __future__ import annotations

import torch


class StraightPath:
    """Straight lines from ``baselines`` to ``inputs``, both (B, C, H, W) on the same device and dtype."""

    name = "straight"
    exact_velocity = True  # gamma' = x - x' exactly: a cell's map sums to its change in f (completeness)

    def __init__(self, inputs: torch.Tensor, baselines: torch.Tensor) -> None:
        self.inputs = inputs
        self.baselines = baselines
        self.difference = inputs - baselines

    def start(self) -> torch.Tensor:
        """gamma(0) for every image: the baselines, (B, C, H, W)."""
        return self.baselines

    def points_and_velocity(self, image_index: torch.Tensor, alphas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """gamma(alpha) and d gamma / d alpha for rows (image_index[r], alphas[r]); each (R, C, H, W)."""
        alphas = alphas.to(self.inputs.dtype).view(-1, 1, 1, 1)
        velocity = self.difference[image_index]
        return self.baselines[image_index] + alphas * velocity, velocity

    def points(self, image_index: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
        """gamma(alpha) for rows (image_index[r], alphas[r]), (R, C, H, W)."""
        alphas = alphas.to(self.inputs.dtype).view(-1, 1, 1, 1)
        return self.baselines[image_index] + alphas * self.difference[image_index]
