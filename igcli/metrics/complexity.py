"""Complexity: how concentrated a map is, straight from the stored maps (no model, no ground truth).

- ``gini`` (Chalasani et al. 2020, "sparseness"): the Gini index of the absolute attributions,
  G = sum_k (2k - n - 1) a_(k) / (n sum_k a_(k)) over the n values sorted ascending (Hurley and Rickard 2009,
  the Gini index of sorted values). 0 for a uniform map, 1 - 1/n for a map with one nonzero value (up to
  the offset below).
  Higher: sparser, which Quantus reports as better.
- ``entropy`` (Bhatt et al. 2020, "complexity"): the Shannon entropy (nats) of the fractional contribution
  p_i = |a_i| / sum_j |a_j|. log n for a uniform map, 0 for one nonzero value. Lower: simpler.

Both follow Quantus 0.6.0 (``quantus.Sparseness``, ``quantus.Complexity``) with its defaults ``abs=True``,
``normalise=True`` (divide by the largest |value|) and its constants: Sparseness adds 1e-7 to every normalised
value before sorting (as the authors' code does, so that no value is 0), Complexity takes log(p + 1e-12).
The one deliberate difference: Quantus divides by the largest |value| of the whole batch it is given, so an
image's score moves (through those constants) with the other images of its batch; igcli divides by the image's
own largest |value|, so results do not depend on batching. Quantus fed one image at a time, or with
``normalise_func_kwargs={"normalise_axes": (1, 2, 3)}``, gives the same numbers (tests/test_metrics_complexity.py).

Where an image's map is all zero both are undefined (0/0); Quantus gives 0 (Gini of the uniform 1e-7 map)
and NaN (entropy); igcli gives NaN with a reason (:data:`ZERO_MAP`). The features are the stored values, as
Quantus flattens its ``a_batch``: for maps stored per channel (no ``--reduce``) every channel of every pixel
counts, so compare runs stored alike, or score the ``--rank`` pixel scores (option ``features=pixels``).
"""

from __future__ import annotations

import numpy as np
import torch

from .base import Metric, MetricBatch, MetricOption, MetricScores, Value

GINI_OFFSET = 1e-7  # Quantus Sparseness / Chalasani et al.'s code: "values cannot be 0"
ENTROPY_OFFSET = 1e-12  # Quantus Complexity: log(p + 1e-12), so that p = 0 adds 0
ZERO_MAP = "the map is all zero: its normalised values divide by zero"
NONFINITE_MAP = "the map has non-finite values"
FEATURES = ("values", "pixels")


def _normalised_abs(maps: torch.Tensor) -> torch.Tensor:
    """(B, ...) maps -> (B, N) float64 |a| / max |a| per image (Quantus' normalise_by_max then abs)."""
    flat = maps.flatten(1).to(torch.float64).abs()
    return flat / flat.amax(dim=1, keepdim=True)  # 0/0 = NaN for an all-zero map, reported by _unscorable


def gini_index(maps: torch.Tensor) -> torch.Tensor:
    """(B,) float64 Gini index of |maps| per image (Chalasani et al. 2020; Quantus ``Sparseness``).

    maps: (B, ...) attributions, any device; every value after the batch axis is one feature. In [0, 1):
    higher = sparser. NaN where the map is all zero or not finite.
    """
    values = torch.sort(_normalised_abs(maps) + GINI_OFFSET, dim=1).values
    n = values.shape[1]
    k = torch.arange(1, n + 1, dtype=torch.float64, device=values.device)
    # Hurley and Rickard (2009): G = sum_k (2k - n - 1) a_(k) / (n sum a), values ascending; Quantus' arithmetic.
    return ((2 * k - n - 1) * values).sum(dim=1) / (n * values.sum(dim=1))


def entropy(maps: torch.Tensor) -> torch.Tensor:
    """(B,) float64 entropy (nats) of p_i = |a_i| / sum |a| per image (Bhatt et al. 2020; Quantus ``Complexity``).

    maps: (B, ...) attributions, any device; every value after the batch axis is one feature. In [0, log N]:
    lower = simpler. NaN where the map is all zero or not finite.
    """
    values = _normalised_abs(maps)
    fractions = values / values.abs().sum(dim=1, keepdim=True)
    return -(fractions * torch.log(fractions + ENTROPY_OFFSET)).sum(dim=1)


def unscorable_maps(maps: torch.Tensor) -> list[str | None]:
    """Per image the reason the complexity of ``maps`` (B, ...) is undefined, or None (host copy at the end)."""
    flat = maps.flatten(1)
    finite = torch.isfinite(flat).all(dim=1).cpu().numpy()
    zero = (flat == 0).all(dim=1).cpu().numpy()
    return [NONFINITE_MAP if not f else ZERO_MAP if z else None for f, z in zip(finite, zero)]


def _features(batch: MetricBatch) -> torch.Tensor:
    """The values the complexity of a batch is taken over: the stored maps, or the ``--rank`` pixel scores."""
    source = batch.scores if batch.options.get("features", "values") == "pixels" else batch.maps
    return source.to(batch.device)


def _scored(batch: MetricBatch, name: str, function) -> MetricScores:
    maps = _features(batch)
    reasons = unscorable_maps(maps)
    values = function(maps).cpu().numpy().astype(np.float64)
    values[[reason is not None for reason in reasons]] = np.nan
    return MetricScores(values={name: values}, unscorable={name: reasons})


def compute_gini(batch: MetricBatch) -> MetricScores:
    """``gini`` for a batch: (B,) Gini index of the stored maps (or ``--rank`` scores, ``features=pixels``)."""
    return _scored(batch, "gini", gini_index)


def compute_entropy(batch: MetricBatch) -> MetricScores:
    """``entropy`` for a batch: (B,) entropy of the stored maps (or ``--rank`` scores, ``features=pixels``)."""
    return _scored(batch, "entropy", entropy)


def _features_option() -> MetricOption:
    return MetricOption("features", "values", str, choices=FEATURES,
                        help="values: every stored value of the map, as Quantus flattens a_batch (per channel "
                             "for maps stored without --reduce); pixels: the --rank pixel scores (one per pixel)")


GINI = Metric(
    name="gini", family="complexity",
    summary="Gini index of |map|: how few features carry the attribution (higher: sparser)",
    reference="Chalasani et al. 2020 (sparseness, Gini index; Hurley and Rickard 2009); checked against "
              "Quantus 0.6.0 Sparseness (abs=True, normalise=True)",
    values=(Value("gini", True, "Gini index of |map|, 0 (uniform) to 1 - 1/n (one nonzero value)"),),
    compute=compute_gini, ranked=False, options=(_features_option(),))

ENTROPY = Metric(
    name="entropy", family="complexity",
    summary="entropy of |map| / sum |map|: how spread out the attribution is (lower: simpler)",
    reference="Bhatt et al. 2020 (complexity, entropy of the fractional contribution); checked against "
              "Quantus 0.6.0 Complexity (abs=True, normalise=True)",
    values=(Value("entropy", False, "entropy in nats, 0 (one nonzero value) to log n (uniform)"),),
    compute=compute_entropy, ranked=False, options=(_features_option(),))
