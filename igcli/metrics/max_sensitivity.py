"""Max-sensitivity (Yeh et al. 2019, "On the (In)fidelity and Sensitivity of Explanations", Def. 3.1):
how far a map moves when the input barely does.

    SENS_MAX(Phi, f, x, r) = max over ||delta||_inf <= r of ||Phi(f, x + delta) - Phi(f, x)||_2 / ||Phi(f, x)||_2

estimated, as Yeh et al. and Captum (``captum.metrics.sensitivity_max``) do, by the largest of ``samples`` draws
delta uniform in the L-infinity ball of radius r around the model input. Dividing by ||Phi(x)|| (the relative
form of Miglani et al. 2020, §3.2; Captum divides by it too) makes the number independent of the map's scale;
the maps are recomputed with the run's own settings.

Conventions against Captum's ``sensitivity_max`` (checked in tests/test_metrics_fidelity.py on the same draws):
the norm is Captum's default ``norm_ord="fro"`` (L2 of the flattened map) and the max is over the draws, as
there. Defaults differ: r = 0.05 here (Miglani et al. 2020; Captum's default ``perturb_radius`` is 0.02), 10 draws
as Captum. Where the map is all zero Captum divides by 1 instead (it reports max ||Phi(x + delta)||); here the
image is unscorable (:data:`ZERO_MAP`): a zero map is not maximally stable, its relative change is undefined.

The draws are seeded per image from its seed (``--seed`` and the image's path), on the host, so the numbers
depend neither on batching nor on the device; the stream is the one igcli has always drawn (per image, draw
after draw of ``torch.rand``), so results computed before the batched form keep their values.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from ..text import path_seed, torch_seed
from .base import Metric, MetricBatch, MetricOption, MetricScores, Value, at_least_one, positive

SENSITIVITY_RADIUS = 0.05
SENSITIVITY_SAMPLES = 10

ZERO_MAP = "the map is all zero: max-sensitivity divides by its norm"


def sensitivity_noise(seeds: Sequence[int], shape: Sequence[int], samples: int, radius: float) -> torch.Tensor:
    """(B, samples, *shape) float32 draws uniform in [-radius, radius], on the host; image i's from a generator
    seeded with ``seeds[i]`` (so one image's draws do not depend on the others in its batch)."""
    draws = [torch.rand((samples, *shape), generator=torch.Generator().manual_seed(torch_seed(seed))) for seed in seeds]
    # (rand * 2 - 1) * radius in float32, exactly as the per-draw form computed it.
    return (torch.stack(draws) * 2 - 1) * radius if draws else torch.zeros((0, samples, *shape))


def relative_max_change(reference: torch.Tensor, moved: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Max over draws of ||moved - reference||_2 / ||reference||_2 (Yeh et al. 2019, Def. 3.1, relative form).

    Args:
        reference: (B, ...) the maps of the inputs.
        moved: (B, S, ...) the maps of the S perturbed copies of each input.

    Returns:
        (B,) float64 values on the inputs' device, NaN where the reference map is all zero (or the maps are not
        finite); and (B,) bool, where the reference map is all zero.
    """
    reference = reference.flatten(1).to(torch.float64)
    moved = moved.flatten(2).to(torch.float64)
    norm = reference.norm(dim=1)
    change = (moved - reference[:, None]).norm(dim=2) / norm[:, None]
    zero = norm == 0
    return torch.where(zero, torch.full_like(norm, float("nan")), change.amax(dim=1)), zero


def max_sensitivity(recompute: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], images: torch.Tensor,
                    targets: torch.Tensor, seeds: Sequence[int], *, radius: float = SENSITIVITY_RADIUS,
                    samples: int = SENSITIVITY_SAMPLES) -> tuple[torch.Tensor, torch.Tensor]:
    """Max-sensitivity of B images with all maps from ONE ``recompute`` call.

    ``recompute(rows, targets)`` gets B x (1 + samples) model inputs, image-major (image i's rows are
    i*M .. i*M + M - 1, M = 1 + samples: the input itself, then its perturbed copies), as
    :attr:`MetricBatch.recompute` takes them, and returns their maps (R, ...).

    Args:
        images: (B, C, H, W) model inputs; targets: (B,) classes; seeds: B per-image seeds.

    Returns:
        :func:`relative_max_change`'s (B,) values (on the host) and (B,) all-zero-map flags.
    """
    count, copies = images.shape[0], samples + 1
    noise = sensitivity_noise(seeds, images.shape[1:], samples, radius).to(images.device, images.dtype)
    rows = torch.cat([images[:, None], images[:, None] + noise], dim=1).reshape(count * copies, *images.shape[1:])
    maps = recompute(rows, targets.repeat_interleave(copies)).reshape(count, copies, -1)
    values, zero = relative_max_change(maps[:, 0], maps[:, 1:])
    return values.cpu(), zero.cpu()


def sensitivity(recompute: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], images: torch.Tensor,
                targets: torch.Tensor, paths: Sequence[str], seed: int, *, radius: float = SENSITIVITY_RADIUS,
                samples: int = SENSITIVITY_SAMPLES) -> torch.Tensor:
    """(B,) max-sensitivity, NaN where the map is all zero, with ``recompute`` called once per draw on B rows
    (for a ``recompute`` that takes exactly one row per image); same draws and values as
    :func:`max_sensitivity`, which batches all maps in one call and is the one to use."""
    seeds = [path_seed(seed, path) for path in paths]
    noise = sensitivity_noise(seeds, images.shape[1:], samples, radius).to(images.device, images.dtype)
    reference = recompute(images, targets)
    moved = torch.stack([recompute(images + noise[:, s], targets) for s in range(samples)], dim=1)
    return relative_max_change(reference, moved)[0].cpu()


def _compute(batch: MetricBatch) -> MetricScores:
    values, zero = max_sensitivity(batch.recompute, batch.images, batch.targets, batch.seeds,
                                   radius=batch.options["radius"], samples=batch.options["samples"])
    return MetricScores(values={"sensitivity": values.numpy().astype(np.float64)},
                        unscorable={"sensitivity": [ZERO_MAP if z else None for z in zero.tolist()]})


SENSITIVITY = Metric(
    name="sensitivity",
    family="robustness",
    summary="max-sensitivity: the largest relative change of the map over draws in a small L-inf ball",
    reference="Yeh et al. 2019, Def. 3.1 (relative form: Miglani et al. 2020, §3.2); checked against Captum "
              "sensitivity_max on the same draws",
    values=(Value("sensitivity", higher_is_better=False,
                  help="max over draws of ||Phi(x + delta) - Phi(x)||_2 / ||Phi(x)||_2"),),
    compute=_compute,
    needs_model=True,
    recomputes=True,
    ranked=False,
    options=(
        MetricOption("radius", SENSITIVITY_RADIUS, float, "L-inf radius of the draws, in model-input units",
                     check=positive),
        MetricOption("samples", SENSITIVITY_SAMPLES, int, "draws per image (maps recomputed per image)",
                     check=at_least_one),
    ),
)
