"""Sanity checks: does the map depend on the model's weights and on the class it explains?

- ``mprt`` (Adebayo et al. 2018, "Sanity Checks for Saliency Maps", §4, cascading randomisation; reference:
  Quantus ``MPRT``): the layers (modules with ``reset_parameters``, in ``named_modules`` order, as Quantus
  picks them) are re-initialised one after another from the logits down (``top-down``, cumulative), and after
  each the maps are recomputed with the run's recipe on the randomised copy and compared with the stored map
  by Spearman rank correlation and SSIM. Per image: the curve over layers, and its mean (Quantus's
  ``return_average_correlation``) as the headline. A map that explains the model must change: lower is better.
- ``random-logit`` (Sixt et al. 2020, "When Explanations Lie", §5; reference: Quantus ``RandomLogit``): the map
  for a class drawn uniformly among the other classes against the map for the target. Lower is better.

Conventions shared with Quantus (so its numbers and ours agree on the same maps): the maps are divided by their
largest |value| and, for ``mprt`` by default, made absolute before comparison; both similarities are taken on
the flattened map, as Quantus passes ``a.reshape(B, -1)`` to its similarity functions (SSIM then slides a
7-long window along the raster; ``ssim=2d`` gives the 2-D SSIM of each channel over (H, W), averaged over
channels, skimage's ``channel_axis``). Deliberate differences, each so that an image's number does not depend on
the images batched with it: Quantus divides by the largest |value| of the whole batch, igcli by each map's own;
Quantus draws random-logit classes from one seed per batch, igcli from the image's seed; and Quantus's
per-image average over layers also counts the unrandomised model's similarity (it skips a key ``"orig"`` but
names it ``"original"``), igcli's averages only the randomised layers (the stored map is the reference; the
unrandomised model is not recomputed).
"""

from __future__ import annotations

import copy
import warnings
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InvalidArgumentError
from .base import Metric, MetricBatch, MetricOption, MetricScores, Value

ORDERS = ("top-down", "bottom-up", "independent")
SSIM_SHAPES = ("flat", "2d")
SSIM_WINDOW = 7  # skimage's default (win_size=None, uniform window), which Quantus keeps
SSIM_K1, SSIM_K2 = 0.01, 0.03  # skimage's defaults (Wang et al. 2004, eq. 13)
QUANTUS_SEED = 42  # Quantus's default seed for MPRT and RandomLogit

CONSTANT_MAP = "the stored map is constant: its rank correlation is undefined"
ALL_CONSTANT = "every recomputed map is constant: no rank correlation is defined"
NO_RANGE = "the stored and recomputed maps are equal constants: SSIM is undefined"


# -- similarities ---------------------------------------------------------------------------------------------

def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """(B, N) -> (B, N) float64 ranks 1..N per row, ties given the mean of their ranks (scipy's
    ``rankdata(method="average")``, which ``spearmanr`` uses). Batched: sort once, find each tie run's first and
    last sorted position with a running max/min, scatter the mean back."""
    count, size = values.shape
    ordered, order = torch.sort(values, dim=1, stable=True)
    position = torch.arange(size, device=values.device).expand(count, size)
    change = ordered[:, 1:] != ordered[:, :-1]
    edge = torch.ones((count, 1), dtype=torch.bool, device=values.device)
    starts = torch.where(torch.cat([edge, change], dim=1), position, 0).cummax(dim=1).values
    ends = torch.where(torch.cat([change, edge], dim=1), position, size).flip(1).cummin(dim=1).values.flip(1)
    ranks = torch.empty((count, size), dtype=torch.float64, device=values.device)
    return ranks.scatter_(1, order, (starts + ends).to(torch.float64) / 2 + 1)


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B,) Pearson correlation of the rows of (B, N) a and b, float64; NaN where a row is constant."""
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    return (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1))


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B,) Spearman rank correlation (Spearman 1904) of flattened maps (B, ...), float64: the Pearson
    correlation of average ranks, equal to ``scipy.stats.spearmanr`` ties included (Quantus's
    ``correlation_spearman``). NaN where a map is constant or holds a non-finite value."""
    a, b = a.flatten(1).to(torch.float64), b.flatten(1).to(torch.float64)
    rho = pearson(average_ranks(a), average_ranks(b))
    finite = torch.isfinite(a).all(dim=1) & torch.isfinite(b).all(dim=1)
    return torch.where(finite, rho, torch.full_like(rho, float("nan")))


def ssim(a: torch.Tensor, b: torch.Tensor, *, shape: str = "flat", window: int = SSIM_WINDOW) -> torch.Tensor:
    """(B,) mean SSIM (Wang et al. 2004, eq. 13) of maps (B, ...), float64, as
    ``skimage.metrics.structural_similarity`` with its defaults (uniform ``window``-wide window, sample
    covariance, K1 = 0.01, K2 = 0.03, the mean over window positions that lie wholly inside the map) and
    Quantus's data range: max - min over both maps.

    ``shape="flat"``: of the flattened maps with a 1-D window (Quantus's call). ``"2d"``: of each channel of
    (B, C, H, W) or the (B, H, W) map with a window x window window, averaged over channels (skimage's
    ``channel_axis``). NaN where both maps are one constant (no data range)."""
    if shape not in SSIM_SHAPES:
        raise InvalidArgumentError(f"ssim shape {shape!r}: choose from {', '.join(SSIM_SHAPES)}")
    count = a.shape[0]
    a, b = a.to(torch.float64), b.to(torch.float64)
    both = torch.cat([a.reshape(count, -1), b.reshape(count, -1)], dim=1)
    data_range = both.max(dim=1).values - both.min(dim=1).values
    if shape == "flat":
        a, b, pool, cells = a.reshape(count, 1, -1), b.reshape(count, 1, -1), F.avg_pool1d, window
    else:
        a, b = (m.reshape(count, -1, *m.shape[-2:]) for m in (a, b))
        a, b, pool, cells = a.flatten(0, 1)[:, None], b.flatten(0, 1)[:, None], F.avg_pool2d, window * window
    if min(a.shape[2:]) < window:
        raise InvalidArgumentError(f"SSIM needs maps at least {window} wide; these are {tuple(a.shape[2:])}")
    # Only windows wholly inside the map count (skimage filters, then crops (window - 1) / 2 from each edge).
    mean_a, mean_b = pool(a, window, stride=1), pool(b, window, stride=1)
    covariance = cells / (cells - 1)  # skimage's use_sample_covariance=True
    var_a = covariance * (pool(a * a, window, stride=1) - mean_a * mean_a)
    var_b = covariance * (pool(b * b, window, stride=1) - mean_b * mean_b)
    cov_ab = covariance * (pool(a * b, window, stride=1) - mean_a * mean_b)
    rng = data_range.repeat_interleave(a.shape[0] // count).view(-1, *[1] * (a.dim() - 1))
    c1, c2 = (SSIM_K1 * rng) ** 2, (SSIM_K2 * rng) ** 2
    local = ((2 * mean_a * mean_b + c1) * (2 * cov_ab + c2)
             / ((mean_a ** 2 + mean_b ** 2 + c1) * (var_a + var_b + c2)))
    return local.flatten(1).mean(dim=1).view(count, -1).mean(dim=1)


def prepared(maps: torch.Tensor, absolute: bool) -> torch.Tensor:
    """(B, ...) float64 maps divided by their own largest |value| (an all-zero map stays zero), then absolute
    when ``absolute`` (Quantus's ``normalise_by_max`` then ``abs``, per map instead of per batch)."""
    maps = maps.to(torch.float64)
    largest = maps.flatten(1).abs().max(dim=1).values.view(-1, *[1] * (maps.dim() - 1))
    maps = maps / torch.where(largest > 0, largest, torch.ones_like(largest))
    return maps.abs() if absolute else maps


def similarities(reference: torch.Tensor, other: torch.Tensor, ssim_shape: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(Spearman, SSIM), each (B,), between prepared maps."""
    return spearman(reference, other), ssim(reference, other, shape=ssim_shape)


# -- cascading randomisation ----------------------------------------------------------------------------------

def randomisable_layers(module: nn.Module, order: str = "top-down") -> list[tuple[str, nn.Module]]:
    """The layers MPRT re-initialises, in the order it does: modules with ``reset_parameters`` (convolutions,
    linear and normalisation layers) in ``named_modules`` (definition) order, reversed for ``top-down`` (from
    the logits), as Quantus's ``get_random_layer_generator``."""
    if order not in ORDERS:
        raise InvalidArgumentError(f"-O mprt.order={order!r}: choose from {', '.join(ORDERS)}")
    layers = [(name, layer) for name, layer in module.named_modules() if hasattr(layer, "reset_parameters")]
    return layers[::-1] if order == "top-down" else layers


def randomise_layer(layer: nn.Module, seed: int) -> None:
    """Re-initialise ``layer`` in place with its own ``reset_parameters`` (PyTorch's default initialisation,
    as Quantus), drawn on the host from the CPU generator seeded with ``seed`` (Quantus calls
    ``torch.manual_seed(seed + 1)`` before every layer: pass its seed + 1 to get its weights), so the weights do
    not depend on the device. The caller's random state is left as it was."""
    host = copy.deepcopy(layer).cpu()
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        host.reset_parameters()
    with torch.no_grad():
        layer.load_state_dict(host.state_dict())  # copies into the layer's own tensors, on its device


def randomised_models(module: nn.Module, *, order: str = "top-down", seed: int = QUANTUS_SEED,
                      layers: int | None = None) -> Iterator[tuple[str, nn.Module]]:
    """Yield (layer name, model) after each step of the randomisation of a deep copy of ``module`` (made once;
    ``module`` is not touched): cascading for ``top-down``/``bottom-up`` (each step randomises one more layer),
    one layer at a time for ``independent`` (the previous layer restored first). The yielded model is the same
    object each time, changed in place: use it before asking for the next. ``layers``: stop after that many."""
    randomised = copy.deepcopy(module)
    chosen = randomisable_layers(randomised, order)[:layers]
    previous: tuple[nn.Module, dict[str, torch.Tensor]] | None = None
    for name, layer in chosen:
        if order == "independent":
            if previous is not None:
                with torch.no_grad():
                    previous[0].load_state_dict(previous[1])
            previous = (layer, copy.deepcopy(layer.state_dict()))
        randomise_layer(layer, seed + 1)
        yield name, randomised


def mprt(rebuild: Callable[[nn.Module], Callable[..., torch.Tensor]], module: nn.Module, images: torch.Tensor,
         targets: torch.Tensor, maps: torch.Tensor, *, order: str = "top-down", seed: int = QUANTUS_SEED,
         layers: int | None = None, absolute: bool = True, ssim_shape: str = "flat"
         ) -> dict[str, torch.Tensor]:
    """Cascading model parameter randomisation (Adebayo et al. 2018, §4) for a batch.

    Args:
        rebuild: ``rebuild(model) -> recompute(images, targets)``, the run's maps (as stored) for that model.
        module: the model the maps were made with (not changed).
        images: (B, C, H, W) model inputs; targets: (B,) classes; maps: (B, ...) the stored maps.
    Returns:
        ``spearman`` and ``ssim``: (B, L) float64 on the images' device, column k the similarity of the stored
        map to the map after step k + 1 of :func:`randomised_models`.
    """
    reference = prepared(maps.to(images.device), absolute)
    spearmans, ssims = [], []
    for _, randomised in randomised_models(module, order=order, seed=seed, layers=layers):
        recomputed = prepared(rebuild(randomised)(images, targets).to(images.device), absolute)
        rho, structural = similarities(reference, recomputed.view_as(reference), ssim_shape)
        spearmans.append(rho)
        ssims.append(structural)
    if not spearmans:
        raise InvalidArgumentError("mprt: the model has no layer with parameters to randomise (no module with "
                                   "reset_parameters)")
    return {"spearman": torch.stack(spearmans, dim=1), "ssim": torch.stack(ssims, dim=1)}


# -- random logit ---------------------------------------------------------------------------------------------

def other_classes(targets: Sequence[int] | torch.Tensor, classes: int, seeds: Sequence[int]) -> torch.Tensor:
    """(B,) int64: per image a class drawn uniformly among the ``classes - 1`` classes other than its target,
    from the image's seed (Quantus draws ``randint(0, classes - 1)`` into the sorted other classes, from one
    seed per batch; per image here, so the draw does not depend on batching)."""
    if classes < 2:
        raise InvalidArgumentError(f"random-logit needs a model with at least 2 classes; this one has {classes}")
    targets = torch.as_tensor(targets).cpu().tolist()
    draws = [int(np.random.default_rng(seed).integers(classes - 1)) for seed in seeds]
    return torch.tensor([d + (d >= t) for d, t in zip(draws, targets)], dtype=torch.int64)


def random_logit(recompute: Callable[..., torch.Tensor], images: torch.Tensor, maps: torch.Tensor,
                 others: torch.Tensor, *, absolute: bool = False, ssim_shape: str = "flat"
                 ) -> dict[str, torch.Tensor]:
    """Random-logit test (Sixt et al. 2020, §5): (B,) Spearman and SSIM, float64 on the images' device, between
    the stored maps (B, ...) of the targets and the maps recomputed for the classes ``others`` (B,)."""
    reference = prepared(maps.to(images.device), absolute)
    recomputed = prepared(recompute(images, others.to(images.device)).to(images.device), absolute)
    rho, structural = similarities(reference, recomputed.view_as(reference), ssim_shape)
    return {"spearman": rho, "ssim": structural}


# -- registry entries -----------------------------------------------------------------------------------------

def _host(values: torch.Tensor) -> np.ndarray:
    return values.cpu().numpy().astype(np.float64)


def _reasons(values: np.ndarray, reason: Callable[[int], str | None]) -> list[str | None]:
    return [reason(i) if np.isnan(v) else None for i, v in enumerate(values)]


def _constant(maps: torch.Tensor) -> np.ndarray:
    flat = maps.flatten(1)
    return (flat.max(dim=1).values == flat.min(dim=1).values).cpu().numpy()


def compute_mprt(batch: MetricBatch) -> MetricScores:
    options = batch.options
    curves = mprt(batch.rebuild, batch.module, batch.images, batch.targets, batch.maps, order=options["order"],
                  seed=options["seed"], layers=options["layers"] or None, absolute=bool(options["abs"]),
                  ssim_shape=options["ssim"])
    spearman_curve, ssim_curve = _host(curves["spearman"]), _host(curves["ssim"])
    constant = _constant(batch.maps)
    # With a stored map that is not constant, SSIM is NaN only where a recomputed map was not finite: the image
    # is then not scored (NaN without a reason), rather than averaged over the layers that happened to work.
    broken = (np.isnan(ssim_curve) & ~constant[:, None]).any(axis=1)
    with warnings.catch_warnings():  # a row of NaN (every recomputed map constant) is reported as unscorable
        warnings.simplefilter("ignore", RuntimeWarning)
        # A recomputed map that is constant has no rank correlation: the mean is over the layers that have one.
        spearman_mean = np.where(broken, np.nan, np.nanmean(spearman_curve, axis=1))
    ssim_mean = np.where(broken, np.nan, ssim_curve.mean(axis=1))
    return MetricScores(
        values={"mprt_spearman": spearman_mean, "mprt_ssim": ssim_mean},
        unscorable={"mprt_spearman": _reasons(spearman_mean, lambda i: CONSTANT_MAP if constant[i] else
                                              None if broken[i] else ALL_CONSTANT),
                    "mprt_ssim": _reasons(ssim_mean, lambda i: NO_RANGE if constant[i] else None)},
        curves={"mprt_spearman": spearman_curve, "mprt_ssim": ssim_curve})


def class_count(batch: MetricBatch) -> int:
    """The model's number of classes (one forward pass of one image when the engine has not run yet)."""
    if batch.engine.num_classes is None:
        batch.engine.predict(batch.images[:1])
    return int(batch.engine.num_classes)


def compute_random_logit(batch: MetricBatch) -> MetricScores:
    options = batch.options
    others = other_classes(batch.targets, class_count(batch), batch.seeds)
    measured = random_logit(batch.recompute, batch.images, batch.maps, others, absolute=bool(options["abs"]),
                            ssim_shape=options["ssim"])
    rho, structural = _host(measured["spearman"]), _host(measured["ssim"])
    constant = _constant(batch.maps)
    return MetricScores(
        values={"random_logit_ssim": structural, "random_logit_spearman": rho},
        unscorable={"random_logit_ssim": _reasons(structural, lambda i: NO_RANGE if constant[i] else None),
                    "random_logit_spearman": _reasons(rho, lambda i: CONSTANT_MAP if constant[i] else None)})


def _ssim_option() -> MetricOption:
    return MetricOption("ssim", "flat", str, "flat: SSIM of the flattened map with a 7-long window (Quantus); "
                        "2d: 7x7 windows over each channel, averaged", choices=SSIM_SHAPES)


MPRT = Metric(
    name="mprt",
    family="sanity",
    summary="model randomisation: similarity of the map to maps of progressively randomised models (lower: better)",
    reference="Adebayo et al. 2018, Sanity Checks for Saliency Maps, §4 (cascading randomisation); "
              "checked against Quantus MPRT",
    values=(Value("mprt_spearman", False, "Spearman rank correlation to the stored map, mean over the randomised "
                                          "layers"),
            Value("mprt_ssim", False, "SSIM to the stored map, mean over the randomised layers")),
    compute=compute_mprt,
    needs_model=True,
    recomputes=True,
    needs_module=True,
    ranked=False,
    options=(
        MetricOption("order", "top-down", str, "top-down (from the logits, cascading), bottom-up (cascading) or "
                     "independent (one layer at a time)", choices=ORDERS),
        MetricOption("layers", 0, int, "randomise only the first N layers of the order (0: all)",
                     check=lambda n: None if n >= 0 else "must be 0 (all) or more"),
        MetricOption("seed", QUANTUS_SEED, int, "seed of the re-initialisation (Quantus's seed)",
                     check=lambda n: None if n >= 0 else "must be 0 or more"),
        MetricOption("abs", 1, int, "1: compare |map| (Quantus MPRT's default); 0: signed maps", choices=(0, 1)),
        _ssim_option(),
    ),
)

RANDOM_LOGIT = Metric(
    name="random-logit",
    family="sanity",
    summary="similarity of the map to the map of a random other class (lower: better)",
    reference="Sixt et al. 2020, When Explanations Lie, §5; checked against Quantus RandomLogit",
    values=(Value("random_logit_ssim", False, "SSIM between the maps of the target and of a random other class"),
            Value("random_logit_spearman", False, "Spearman rank correlation between the same two maps")),
    compute=compute_random_logit,
    needs_model=True,
    recomputes=True,
    ranked=False,
    options=(
        MetricOption("abs", 0, int, "1: compare |map|; 0: signed maps (Quantus RandomLogit's default)",
                     choices=(0, 1)),
        _ssim_option(),
    ),
)

SANITY_METRICS = (MPRT, RANDOM_LOGIT)
