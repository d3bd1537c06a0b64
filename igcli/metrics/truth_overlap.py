"""Localization against object masks, from the ``--rank`` pixel scores alone (no model).

- ``pointing-game`` (Zhang et al. 2018): 1 when the pixel of highest score lies on the object, else 0.
  With a tie for the highest score, a hit when any of the tied pixels is on the object (as Quantus). Zhang et
  al. allow a 15-pixel tolerance (a hit when the point is within 15 pixels of the object); Quantus has none, so
  the default is none and ``-O pointing-game.tolerance=15`` gives the paper's (in pixels of the crop the model
  saw, where the paper counts them in the original image).
- ``relevance-mass`` (Arras et al. 2022): the fraction of the map's relevance that lies on the object,
  sum over the mask of R / sum of R.
- ``relevance-rank`` (Arras et al. 2022): with K the number of object pixels, the fraction of the K
  highest-scoring pixels that are on the object. Ties are broken by pixel index, as everywhere in igcli
  (:mod:`igcli.metrics.ranking`); Quantus' ``np.argsort`` breaks them in no stated order.

These follow Quantus 0.6.0 (``quantus.PointingGame``, ``RelevanceMassAccuracy``, ``RelevanceRankAccuracy``) with
its defaults, fed the pixel scores as its ``a_batch``: ``abs=False``, and its ``normalise=True`` (divide by the
largest |value|) changes none of the three. Arras et al. count positive relevance only (R clipped at zero);
Quantus sums the signed scores, so with ``--rank signed`` a map with negative evidence can give a mass outside
[0, 1]; ``--rank positive`` gives the paper's definition. Undefined cases get NaN with a reason: an empty mask
(Quantus gives NaN for the mass and rank, and counts a pointing-game hit there: its NaN is cast to True),
scores that sum to zero (relevance mass divides by the sum), and non-finite scores.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .base import Metric, MetricBatch, MetricOption, MetricScores, Value

EMPTY_MASK = "the object mask is empty"
ZERO_TOTAL = "the map's scores sum to zero: relevance mass divides by their sum"
NONFINITE_SCORES = "the map has non-finite values"
ZHANG_TOLERANCE = 15  # pixels, Zhang et al. 2018


def _flat(scores: torch.Tensor, truth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if scores.shape != truth.shape or scores.dim() != 3:
        raise ValueError(f"scores {tuple(scores.shape)} and truth {tuple(truth.shape)} must both be (B, H, W)")
    return scores.flatten(1).to(torch.float64), truth.to(scores.device, torch.bool).flatten(1)


def dilate(truth: torch.Tensor, tolerance: float) -> torch.Tensor:
    """(B, H, W) bool: pixels whose centre is within ``tolerance`` pixels (Euclidean) of a True pixel."""
    reach = int(math.floor(tolerance))
    if reach < 1:
        return truth.to(torch.bool)
    offsets = torch.arange(-reach, reach + 1, dtype=torch.float32, device=truth.device)
    disk = (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= tolerance ** 2).to(torch.float32)
    # The count of object pixels under the disk: exact small integers in float32, so > 0.5 means at least one.
    near = torch.nn.functional.conv2d(truth[:, None].to(torch.float32), disk[None, None], padding=reach)
    return near[:, 0] > 0.5


def pointing_game(scores: torch.Tensor, truth: torch.Tensor, tolerance: float = 0.0) -> torch.Tensor:
    """(B,) float64: 1.0 when a highest-scoring pixel is on (within ``tolerance`` pixels of) the object, else 0.0.

    scores: (B, H, W) pixel scores; truth: (B, H, W) bool object masks (same device). NaN for an empty mask.
    """
    flat, mask = _flat(scores, truth)
    near = dilate(truth.to(scores.device, torch.bool), tolerance).flatten(1)
    top = flat == flat.amax(dim=1, keepdim=True)
    hit = (top & near).any(dim=1).to(torch.float64)
    return torch.where(mask.any(dim=1), hit, torch.full_like(hit, float("nan")))


def relevance_mass(scores: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """(B,) float64 sum of the scores on the object / sum of all scores (Arras et al. 2022).

    scores: (B, H, W); truth: (B, H, W) bool. NaN for an empty mask; +-inf or NaN where the scores sum to 0.
    """
    flat, mask = _flat(scores, truth)
    mass = (flat * mask).sum(dim=1) / flat.sum(dim=1)
    return torch.where(mask.any(dim=1), mass, torch.full_like(mass, float("nan")))


def relevance_rank(scores: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """(B,) float64 fraction of the K = |mask| highest-scoring pixels that are on the object (Arras et al.
    2022); ties broken by pixel index. scores: (B, H, W); truth: (B, H, W) bool. NaN for an empty mask."""
    flat, mask = _flat(scores, truth)
    batch, count = flat.shape
    order = torch.argsort(-flat, dim=1, stable=True)
    position = torch.empty_like(order)
    position.scatter_(1, order, torch.arange(count, device=flat.device).expand(batch, -1))
    size = mask.sum(dim=1, keepdim=True)
    hits = (mask & (position < size)).sum(dim=1).to(torch.float64)
    return hits / size[:, 0].to(torch.float64)  # 0/0 = NaN for an empty mask


def unscorable_truth(scores: torch.Tensor, truth: torch.Tensor, *, zero_total: bool = False) -> list[str | None]:
    """Per image the reason the metric is undefined, or None (host copies at the end)."""
    flat, mask = _flat(scores, truth)
    finite = torch.isfinite(flat).all(dim=1).cpu().numpy()
    empty = (~mask.any(dim=1)).cpu().numpy()
    zero = (flat.sum(dim=1) == 0).cpu().numpy() if zero_total else np.zeros_like(empty)
    return [NONFINITE_SCORES if not f else EMPTY_MASK if e else ZERO_TOTAL if z else None
            for f, e, z in zip(finite, empty, zero)]


def _scored(batch: MetricBatch, name: str, values: torch.Tensor, *, zero_total: bool = False) -> MetricScores:
    reasons = unscorable_truth(batch.scores, batch.truth, zero_total=zero_total)
    result = values.cpu().numpy().astype(np.float64)
    result[[reason is not None for reason in reasons]] = np.nan
    return MetricScores(values={name: result}, unscorable={name: reasons})


def _inputs(batch: MetricBatch) -> tuple[torch.Tensor, torch.Tensor]:
    if batch.truth is None:
        raise ValueError("this metric needs batch.truth, the (B, H, W) object masks (needs_truth=True)")
    return batch.scores.to(batch.device), batch.truth.to(batch.device, torch.bool)


def compute_pointing_game(batch: MetricBatch) -> MetricScores:
    """``pointing-game`` for a batch: (B,) hits of the ``--rank`` scores against ``batch.truth``."""
    scores, truth = _inputs(batch)
    return _scored(batch, "pointing_game", pointing_game(scores, truth, batch.options.get("tolerance", 0.0)))


def compute_relevance_mass(batch: MetricBatch) -> MetricScores:
    """``relevance-mass`` for a batch: (B,) fraction of the ``--rank`` scores' sum on ``batch.truth``."""
    scores, truth = _inputs(batch)
    return _scored(batch, "relevance_mass", relevance_mass(scores, truth), zero_total=True)


def compute_relevance_rank(batch: MetricBatch) -> MetricScores:
    """``relevance-rank`` for a batch: (B,) fraction of the top-|mask| pixels on ``batch.truth``."""
    scores, truth = _inputs(batch)
    return _scored(batch, "relevance_rank", relevance_rank(scores, truth))


def non_negative(value: float) -> str | None:
    return None if math.isfinite(value) and value >= 0 else "must be a finite number >= 0"


QUANTUS = "checked against Quantus 0.6.0 {} (abs=False, normalise=True) on the --rank pixel scores"

POINTING_GAME = Metric(
    name="pointing-game", family="localization",
    summary="1 when the map's highest pixel is on the object, else 0 (the mean is the hit rate)",
    reference="Zhang et al. 2018 (pointing game); " + QUANTUS.format("PointingGame"),
    values=(Value("pointing_game", True, "1 = the highest-scoring pixel is on the object"),),
    compute=compute_pointing_game, needs_truth=True,
    options=(MetricOption("tolerance", 0.0, float, check=non_negative,
                          help=f"a hit within this many pixels of the object (0, Quantus; Zhang et al. use "
                               f"{ZHANG_TOLERANCE})"),))

RELEVANCE_MASS = Metric(
    name="relevance-mass", family="localization",
    summary="fraction of the map's total score that lies on the object",
    reference="Arras et al. 2022 (relevance mass accuracy); " + QUANTUS.format("RelevanceMassAccuracy"),
    values=(Value("relevance_mass", True, "sum of the scores on the object / sum of all scores"),),
    compute=compute_relevance_mass, needs_truth=True, ranked=False)

RELEVANCE_RANK = Metric(
    name="relevance-rank", family="localization",
    summary="fraction of the K highest-scoring pixels on the object, K its size in pixels",
    reference="Arras et al. 2022 (relevance rank accuracy); " + QUANTUS.format("RelevanceRankAccuracy"),
    values=(Value("relevance_rank", True, "fraction of the top-K pixels on the object, K = object pixels"),),
    compute=compute_relevance_rank, needs_truth=True)
