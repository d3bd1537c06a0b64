"""Perturbation metrics: insertion and deletion (Yang et al. 2023, §4.3) and ABPC (Miglani et al. 2020, §3.2).

- ``insertion``: start from a black image and put back the top 0%, 5%, ..., 100% pixels (all channels) of the
  input; ``deletion``: start from the input and set them to black. The area under the target's softmax
  probability over the fraction (trapezoid), and under the probability ratio p / p(original) (Table 1's two
  rows). All perturbed images of a batch go through the model together, in the Engine's chunks.
  They are built on the device one engine chunk at a time (:func:`streamed_curves`): a batch never holds its
  B x L perturbed images at once, only one chunk of them.
- ``abpc``: ablate (set to zero in model-input space, the paper's "zero baseline") the top-ranked pixels and,
  separately, the bottom-ranked ones, in 10% increments; the area between the two probability curves,
  bottom-first minus top-first. 0: the ranking is no better than its reverse.
"""

from __future__ import annotations

import numpy as np
import torch

from ..engine import Engine
from . import check_engine
from .base import Metric, MetricBatch, MetricScores, Value

INSERTION_FRACTIONS = np.linspace(0.0, 1.0, 21)
ABPC_FRACTIONS = np.linspace(0.0, 1.0, 11)


def probabilities(engine: Engine, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Softmax probability of ``targets`` for (R, C, H, W) images, through ``engine`` (forward passes of at
    most ``engine.batch_size`` rows); (R,) float64, NaN where the model's outputs are not finite."""
    check_engine(engine)
    return engine.scores_and_hits(images, targets)[0].to(torch.float64)


def pixel_positions(scores: torch.Tensor, *, from_bottom: bool = False) -> torch.Tensor:
    """(B, H, W) scores -> (B, H*W) int64: each pixel's place in its image's ranking (0 = highest score, lowest
    with ``from_bottom``), ties broken by pixel index. ``position < round(f H W)`` is
    :func:`igcli.metrics.ranking.top_masks`'s mask for fraction f, without materialising the L masks."""
    batch, height, width = scores.shape
    flat = scores.flatten(1)
    order = torch.argsort(flat if from_bottom else -flat, dim=1, stable=True)
    position = torch.empty_like(order)
    position.scatter_(1, order, torch.arange(height * width, device=scores.device).expand(batch, -1))
    return position


def level_counts(fractions: np.ndarray, pixels: int, device: torch.device) -> torch.Tensor:
    """(L,) int64: how many pixels each fraction perturbs (round(f * pixels), as top_masks)."""
    return torch.as_tensor(np.round(np.asarray(fractions) * pixels).astype(np.int64), device=device)


def streamed_probabilities(engine: Engine, total: int, build, row_targets: torch.Tensor,
                           targets: torch.Tensor) -> torch.Tensor:
    """(total,) float64 softmax probabilities of rows made on the fly: ``build(rows: slice) -> (n, C, H, W)``
    model inputs of those rows only, one engine chunk at a time (peak memory: one chunk, not ``total`` rows).
    ``row_targets``: (total,) each row's class; ``targets``: the (B,) image classes, checked against the model's
    classes once (:class:`~igcli.errors.TargetError` names the image), after the first chunk tells the class count
    and before any target indexes anything. No host-device wait per chunk; NaN where the outputs are not
    finite."""
    check_engine(engine)
    out = []
    for part in engine.chunks(total):
        rows = build(part)
        if not out:
            logits = engine.predict(rows)
            engine.check_targets(targets)
            out.append(engine.target_scores(logits, row_targets[part]))
        else:
            out.append(engine.scores(rows, row_targets[part]))
    return torch.cat(out).to(torch.float64)


def streamed_curves(engine: Engine, images: torch.Tensor, base: torch.Tensor, positions: torch.Tensor,
                    counts: torch.Tensor, targets: torch.Tensor, *, reveal: bool) -> torch.Tensor:
    """(B, L) probabilities of images whose top ``counts[l]`` pixels (by ``positions``, see
    :func:`pixel_positions`) come from ``images`` (reveal=True, onto ``base``) or from ``base`` (reveal=False,
    out of ``images``). The B x L perturbed images (rows image-major: row b L + l) are built on the device per
    engine chunk; the arithmetic is :func:`curves`'s, so the values are its values."""
    count, levels = images.shape[0], counts.shape[0]
    source, other = (images, base) if reveal else (base, images)
    change = source - other
    flat_positions = positions.view(count, 1, *images.shape[2:])

    def build(rows: slice) -> torch.Tensor:
        index = torch.arange(rows.start, rows.stop, device=images.device)
        image, level = index // levels, index % levels
        mask = (flat_positions[image] < counts[level].view(-1, 1, 1, 1)).to(images.dtype)  # (n, 1, H, W)
        return other[image] + mask * change[image]

    row_targets = targets.repeat_interleave(levels)
    return streamed_probabilities(engine, count * levels, build, row_targets, targets).view(count, levels)


def curves(engine: Engine, images: torch.Tensor, base: torch.Tensor, masks: torch.Tensor, targets: torch.Tensor,
           *, reveal: bool) -> torch.Tensor:
    """(B, L) probabilities of images whose masked pixels come from ``images`` (reveal=True, onto ``base``)
    or from ``base`` (reveal=False, out of ``images``). masks: (B, L, H, W) bool. Builds all B x L images at
    once; the metrics use :func:`streamed_curves`, which gives the same values a chunk at a time."""
    count, levels = masks.shape[:2]
    mask = masks[:, :, None].to(images.dtype)  # (B, L, 1, H, W)
    source, other = (images, base) if reveal else (base, images)
    perturbed = other[:, None] + mask * (source - other)[:, None]
    flat = perturbed.reshape(count * levels, *images.shape[1:])
    return probabilities(engine, flat, targets.repeat_interleave(levels)).view(count, levels)


def area(fractions: np.ndarray, values: torch.Tensor) -> torch.Tensor:
    """Trapezoid area under (fractions, values[b]) for each row; (B,)."""
    return torch.trapezoid(values, torch.as_tensor(fractions, dtype=values.dtype, device=values.device), dim=1)


def insertion_deletion(engine: Engine, images: torch.Tensor, black: torch.Tensor, scores: torch.Tensor,
                       targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """Insertion and deletion AUCs (probability and probability ratio) per image, with the curves.

    Args:
        images: (B, C, H, W) model inputs; black: the black image in model-input space (same shape).
        scores: (B, H, W) pixel scores (see :func:`igcli.metrics.ranking.pixel_scores`).

    An image whose model outputs (original or perturbed) are not finite gets NaN values.
    """
    positions = pixel_positions(scores)
    counts = level_counts(INSERTION_FRACTIONS, positions.shape[1], scores.device)
    original = probabilities(engine, images, targets)
    inserted = streamed_curves(engine, images, black, positions, counts, targets, reveal=True)
    deleted = streamed_curves(engine, images, black, positions, counts, targets, reveal=False)
    ratio = original.clamp_min(1e-12)[:, None]
    return {
        "insertion": area(INSERTION_FRACTIONS, inserted),
        "insertion_ratio": area(INSERTION_FRACTIONS, inserted / ratio),
        "deletion": area(INSERTION_FRACTIONS, deleted),
        "deletion_ratio": area(INSERTION_FRACTIONS, deleted / ratio),
        "insertion_curve": inserted,
        "deletion_curve": deleted,
    }


def abpc(engine: Engine, images: torch.Tensor, scores: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """Area between the bottom-first and top-first ablation curves (zero baseline, 10% steps); (B,), NaN where
    the model's outputs are not finite."""
    zero = torch.zeros_like(images)
    counts = level_counts(ABPC_FRACTIONS, scores.shape[1] * scores.shape[2], scores.device)
    top_first = streamed_curves(engine, images, zero, pixel_positions(scores), counts, targets, reveal=False)
    bottom_first = streamed_curves(engine, images, zero, pixel_positions(scores, from_bottom=True), counts, targets,
                                   reveal=False)
    return {"abpc": area(ABPC_FRACTIONS, bottom_first - top_first), "abpc_top_curve": top_first,
            "abpc_bottom_curve": bottom_first}


# -- registry entries (igcli.metrics.catalog) ------------------------------------------------------------------


def _curves_of(batch: MetricBatch) -> dict[str, torch.Tensor]:
    """Insertion and deletion measured once per batch for both metrics (they share the original's score)."""
    if "insertion_deletion" not in batch.shared:
        black = batch.preprocessing.normalization.from_pixels(torch.zeros_like(batch.images))
        batch.shared["insertion_deletion"] = insertion_deletion(batch.engine, batch.images, black,
                                                                batch.scores.to(batch.device), batch.targets)
    return batch.shared["insertion_deletion"]


def _insertion_or_deletion(name: str):
    def compute(batch: MetricBatch) -> MetricScores:
        measured = _curves_of(batch)
        return MetricScores(values={value: measured[value].cpu().numpy() for value in (name, f"{name}_ratio")},
                            curves={name: measured[f"{name}_curve"].cpu().numpy()})
    return compute


def _abpc(batch: MetricBatch) -> MetricScores:
    return MetricScores(values={"abpc": abpc(batch.engine, batch.images, batch.scores.to(batch.device),
                                             batch.targets)["abpc"].cpu().numpy()})


_PETSIUK = "Petsiuk et al. 2018 (RISE), §4.1; Yang et al. 2023 (IDGI), §4.3"
INSERTION = Metric(
    "insertion", "faithfulness", "probability as the top pixels are put back onto a black image (area, 21 levels)",
    _PETSIUK, (Value("insertion", True, "area under the target's probability"),
               Value("insertion_ratio", True, "the same for p / p(original)")),
    _insertion_or_deletion("insertion"), needs_model=True, curve_x={"insertion": lambda options: INSERTION_FRACTIONS})
DELETION = Metric(
    "deletion", "faithfulness", "probability as the top pixels are set to black (area, 21 levels)",
    _PETSIUK, (Value("deletion", False, "area under the target's probability"),
               Value("deletion_ratio", False, "the same for p / p(original)")),
    _insertion_or_deletion("deletion"), needs_model=True, curve_x={"deletion": lambda options: INSERTION_FRACTIONS})
ABPC = Metric(
    "abpc", "faithfulness", "area between the bottom-first and top-first ablation curves (zero baseline, 10% steps)",
    "Miglani et al. 2020, §3.2", (Value("abpc", True, "bottom-first minus top-first area"),), _abpc,
    needs_model=True)
