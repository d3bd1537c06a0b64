"""Infidelity (Yeh et al. 2019, "On the (In)fidelity and Sensitivity of Explanations", Def. 2.1): how badly a map
predicts the model's drop under random perturbations I of the input.

    INFD(Phi, f, x) = E_I [ (I . Phi(f, x) - (f(x) - f(x - I)))^2 ]

estimated over ``samples`` draws per image, with f the softmax probability of the target (the metrics'
Engine). The map is the stored one (nothing is recomputed); all B x (1 + samples) inputs of a batch (each
image, then its perturbed copies) go through the Engine together.

Perturbations (option ``perturbation``):

- ``gaussian`` (default): I ~ N(0, sigma^2) per element of the model input (Captum's usual ``perturb_func``,
  Yeh et al.'s "noisy" perturbation around x), sigma = ``noise`` in model-input units. Yeh et al.'s code draws
  sigma = 0.2 on [0, 1] pixels, around a zero baseline (a large removal); Captum's docs draw 0.003. We default to
  0.1, a small but not infinitesimal move (about 6 grey levels at ImageNet's std); it is our choice, stated
  with the results. For a map without channels ((B, H, W)) one draw per pixel is shared by the channels, so
  that I . Phi is exact for a channel-summed map.
- ``square``: a random square set to black (Yeh et al. 2019, §4, "Square Removal"): I is the square's 0/1
  mask, x - I stands for x with the square black, so I . Phi is the map's sum over the square (the
  perturbation of a map that multiplies by the input, as IG-family maps do: Captum's
  ``infidelity_perturb_func_decorator(multiply_by_inputs=True)`` convention). Sides are drawn uniformly from 1
  to ``SQUARE_MAX_FRACTION`` of the image's short side (Yeh et al.'s code: sides 1-10 on 28 x 28), positions
  uniformly among those that fit.

``normalize`` (Captum's ``normalize``, default False as there): first scale the map by the optimal
beta = E[I.Phi (f(x) - f(x - I))] / E[(I.Phi)^2] (Yeh et al.'s code always does; Captum's docstring), so that
the number does not depend on the map's scale. Checked against ``captum.metrics.infidelity`` on the same draws in
tests/test_metrics_fidelity.py.

The draws are seeded per image (its seed with :data:`INFIDELITY_SALT`), on the host, so the numbers depend
neither on batching nor on the device.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..text import torch_seed
from ..engine import Engine
from . import check_engine
from .base import Metric, MetricBatch, MetricOption, MetricScores, Value, at_least_one, positive

INFIDELITY_SAMPLES = 10  # Captum's n_perturb_samples default
INFIDELITY_NOISE = 0.1
SQUARE_MAX_FRACTION = 10 / 28
INFIDELITY_SALT = 0x1AF1DE1  # its draws are not max-sensitivity's, which are seeded by the same per-image seed
PERTURBATIONS = ("gaussian", "square")


def boolean(value: object) -> bool:
    """``value`` as a bool: a bool, 0/1, or the words true/false, yes/no, on/off (for ``-O m.normalize=...``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    words = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
    if isinstance(value, str) and value.strip().lower() in words:
        return words[value.strip().lower()]
    raise ValueError(value)


def _generators(seeds: Sequence[int]) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(torch_seed(int(seed) ^ INFIDELITY_SALT)) for seed in seeds]


def gaussian_draws(seeds: Sequence[int], shape: Sequence[int], samples: int, noise: float) -> torch.Tensor:
    """(B, samples, *shape) float32 I ~ N(0, noise^2), on the host; image i's from its own seeded generator."""
    draws = [torch.randn((samples, *shape), generator=g) for g in _generators(seeds)]
    return torch.stack(draws) * noise if draws else torch.zeros((0, samples, *shape))


def square_masks(seeds: Sequence[int], size: tuple[int, int], samples: int, device: torch.device) -> torch.Tensor:
    """(B, samples, H, W) float32 0/1 masks of random squares on ``device`` (sides 1 .. SQUARE_MAX_FRACTION of
    the short side, uniform; top-left corners uniform among those that fit), drawn per image on the host."""
    height, width = size
    largest = max(1, round(SQUARE_MAX_FRACTION * min(height, width)))
    corners = []
    for g in _generators(seeds):  # a few numbers per image: the masks themselves are built on the device
        side = torch.randint(1, largest + 1, (samples,), generator=g)
        top = (torch.rand(samples, generator=g, dtype=torch.float64) * (height - side + 1)).floor().long()
        left = (torch.rand(samples, generator=g, dtype=torch.float64) * (width - side + 1)).floor().long()
        corners.append(torch.stack([side, top, left], dim=1))
    if not corners:
        return torch.zeros((0, samples, height, width), device=device)
    side, top, left = torch.stack(corners).to(device).unbind(dim=2)  # (B, S) each
    rows = torch.arange(height, device=device).view(1, 1, -1, 1)
    cols = torch.arange(width, device=device).view(1, 1, 1, -1)
    inside = ((rows >= top[..., None, None]) & (rows < (top + side)[..., None, None])
              & (cols >= left[..., None, None]) & (cols < (left + side)[..., None, None]))
    return inside.to(torch.float32)


def infidelity_from(dots: torch.Tensor, drops: torch.Tensor, *, normalize: bool = False) -> torch.Tensor:
    """(B,) mean over draws of (beta I.Phi - (f(x) - f(x - I)))^2 (Yeh et al. 2019, Def. 2.1), beta = 1, or
    with ``normalize`` the least-squares beta = sum(I.Phi drop) / sum((I.Phi)^2) per image (1 where that
    denominator is 0, as Captum's ``safe_div``: then beta multiplies zeros).

    Args:
        dots: (B, S) I . Phi per draw; drops: (B, S) f(x) - f(x - I) per draw.
    """
    if normalize:
        squares = dots.square().sum(dim=1)
        beta = (dots * drops).sum(dim=1) / torch.where(squares == 0, torch.ones_like(squares), squares)
        dots = beta[:, None] * dots
    return (dots - drops).square().mean(dim=1)


def infidelity(engine: Engine, images: torch.Tensor, maps: torch.Tensor, targets: torch.Tensor,
               perturbations: torch.Tensor, perturbed: torch.Tensor, *, normalize: bool = False) -> torch.Tensor:
    """(B,) infidelity of ``maps`` for given draws, all forward passes in one Engine call.

    Args:
        images: (B, C, H, W) model inputs x; targets: (B,).
        maps: (B, C, H, W) or (B, H, W) the maps Phi.
        perturbations: (B, S, ...) the I that multiply the maps: the maps' shape per draw, or (B, S, H, W) for
            (B, C, H, W) maps (one I per pixel, shared by the channels).
        perturbed: (B, S, C, H, W) the inputs x - I (for ``square``: x with the square black).

    Returns:
        (B,) float64 on the host; NaN where the model's outputs are not finite.
    """
    check_engine(engine)
    count, samples = perturbed.shape[:2]
    rows = torch.cat([images[:, None], perturbed.to(images.dtype)], dim=1).reshape(-1, *images.shape[1:])
    f = engine.scores_and_hits(rows, targets.repeat_interleave(samples + 1))[0].to(torch.float64)
    f = f.view(count, samples + 1)
    drops = f[:, :1] - f[:, 1:]
    maps = maps.to(images.device, torch.float64)
    if perturbations.dim() == maps.dim():  # (B, S, H, W) I against (B, C, H, W) maps: I is per pixel
        maps = maps.sum(dim=1)
    dots = (perturbations.to(maps.device, torch.float64) * maps[:, None]).flatten(2).sum(dim=2)
    return infidelity_from(dots, drops, normalize=normalize).cpu()


def draws(kind: str, images: torch.Tensor, maps: torch.Tensor, seeds: Sequence[int], samples: int, noise: float,
          black: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The (perturbations, perturbed inputs) of :func:`infidelity` for ``kind`` (see the module), on the
    images' device. ``black``: (B, C, H, W) or (C, H, W) the black image in model-input space (``square``)."""
    if kind == "gaussian":
        per_pixel = maps.dim() == 3  # a map without channels: one draw per pixel, shared by the channels
        shape = images.shape[2:] if per_pixel else images.shape[1:]
        found = gaussian_draws(seeds, shape, samples, noise).to(images.device, images.dtype)
        return found, images[:, None] - (found[:, :, None] if per_pixel else found)
    masks = square_masks(seeds, tuple(images.shape[2:]), samples, images.device).to(images.dtype)
    black = black.expand_as(images)
    return masks, images[:, None] + masks[:, :, None] * (black - images)[:, None]


def _compute(batch: MetricBatch) -> MetricScores:
    options, images = batch.options, batch.images
    black = batch.preprocessing.normalization.from_pixels(torch.zeros_like(images[:1]))
    perturbations, perturbed = draws(options["perturbation"], images, batch.maps, batch.seeds, options["samples"],
                                     options["noise"], black)
    values = infidelity(batch.engine, images, batch.maps, batch.targets, perturbations, perturbed,
                        normalize=options["normalize"])
    return MetricScores(values={"infidelity": values.numpy().astype(np.float64)})


INFIDELITY = Metric(
    name="infidelity",
    family="faithfulness",
    summary="infidelity: mean squared error of the map's prediction of the probability drop under random "
            "perturbations",
    reference="Yeh et al. 2019, Def. 2.1 (optimal scaling: their code, Captum's normalize); checked against "
              "Captum infidelity on the same draws",
    values=(Value("infidelity", higher_is_better=False,
                  help="mean over draws of (I . Phi - (f(x) - f(x - I)))^2, f the target's probability"),),
    compute=_compute,
    needs_model=True,
    ranked=False,
    options=(
        MetricOption("perturbation", "gaussian", str, "gaussian noise, or square: a random black square",
                     choices=PERTURBATIONS),
        MetricOption("noise", INFIDELITY_NOISE, float, "sigma of the gaussian perturbation, in model-input units",
                     check=positive),
        MetricOption("samples", INFIDELITY_SAMPLES, int, "perturbations per image", check=at_least_one),
        MetricOption("normalize", False, boolean, "scale the map by the optimal beta first (Captum's normalize)"),
    ),
)
