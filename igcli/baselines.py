"""Baselines x' for the straight and guided paths, made in pixel space and normalised like the inputs.

A "black" baseline must be black for the model, i.e. (0 - mean) / std after normalisation, not a tensor of
zeros in normalised space (Yang et al. 2023, §4.1 and PAIR use a black image). ``Normalization`` carries the model's
per-channel mean and std so that pixel-space baselines land in the model's input space.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import torch

from .errors import InvalidArgumentError, ShapeError
from .methods import BASELINE_NAMES  # noqa: F401 (defined torch-free, for the CLI's early checks)
from .paths.blur import gaussian_blur
from .transfer import to_device


@dataclass(frozen=True)
class Normalization:
    """Per-channel affine map from pixels in [0, 1] to model inputs: (pixel - mean) / std."""

    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    def _shaped(self, values: Sequence[float], like: torch.Tensor) -> torch.Tensor:
        return to_device(list(values), like.device, like.dtype).view(1, -1, 1, 1)

    def from_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) pixels in [0, 1] -> model inputs."""
        return (pixels - self._shaped(self.mean, pixels)) / self._shaped(self.std, pixels)

    def to_pixels(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) model inputs -> pixels in [0, 1]."""
        return inputs * self._shaped(self.std, inputs) + self._shaped(self.mean, inputs)


BaselineSpec = Union[str, torch.Tensor]


def make_baseline(
    spec: BaselineSpec,
    inputs: torch.Tensor,
    normalization: Normalization | None = None,
    *,
    blur_sigma: float = 50.0,
    seed: int = 0,
) -> torch.Tensor:
    """The baseline for (B, C, H, W) ``inputs`` in model-input space.

    Args:
        spec: ``black`` (pixels 0), ``white`` (pixels 1), ``blur`` (the input blurred with ``blur_sigma``
            pixels, reflect padding), ``uniform`` (pixels uniform in [0, 1], seeded), or a tensor of shape
            (C, H, W) or (B, C, H, W) already in model-input space.
        normalization: mean/std of the model's input normalisation; identity when None.
        seed: seed of the ``uniform`` baseline's generator (same seed, same baseline on every device).
    """
    normalization = normalization or Normalization()
    if isinstance(spec, torch.Tensor):
        baseline = spec.to(device=inputs.device, dtype=inputs.dtype)
        if baseline.dim() == 3:
            baseline = baseline.unsqueeze(0)
        if baseline.dim() != 4 or baseline.shape[1:] != inputs.shape[1:] or baseline.shape[0] not in (1, inputs.shape[0]):
            raise ShapeError(
                f"baseline of shape {tuple(spec.shape)} does not fit inputs of shape {tuple(inputs.shape)}; "
                "give (C, H, W) or (B, C, H, W) in model-input space"
            )
        if not bool(torch.isfinite(baseline).all()):
            raise InvalidArgumentError("baseline tensor contains NaN or infinity")
        return baseline.expand_as(inputs).contiguous()
    if not isinstance(spec, str):
        raise InvalidArgumentError(f"baseline must be one of {', '.join(BASELINE_NAMES)} or a tensor, got {spec!r}")
    name = spec.strip().lower()
    if name == "black":
        return normalization.from_pixels(torch.zeros_like(inputs))
    if name == "white":
        return normalization.from_pixels(torch.ones_like(inputs))
    if name == "blur":
        return gaussian_blur(inputs, blur_sigma, padding="reflect")
    if name == "uniform":
        generator = torch.Generator(device="cpu").manual_seed(seed)
        pixels = torch.rand(inputs.shape, generator=generator, dtype=torch.float32)
        return normalization.from_pixels(pixels.to(device=inputs.device, dtype=inputs.dtype))
    raise InvalidArgumentError(f"unknown baseline {spec!r}; choose from {', '.join(BASELINE_NAMES)} or pass a tensor")
