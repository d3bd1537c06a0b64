"""Performance information curves (Yang et al. 2023, §4.4-4.5, after XRAI; reference: PAIR ``saliency.metrics.pic``).

For one image and map: a blurred base (PIL Gaussian blur, radius 20 pixels, Yang et al. 2023, §4.4) and "bokeh" images
that reveal the original pixels where the map is at or above its (1 - t) quantile, for 25 fractions t from 0
to 1, plus a seeded random 1% of pixels (PAIR's ``random_mask``, so the "fully blurred" image is threshold 0).
Each bokeh image gets an information level, normalised between the fully blurred image (0) and the original
(1): the lossless WebP size (``entropy``, PAIR's ``estimate_image_entropy``) or MS-SSIM against the original
(``msssim``, Yang et al. 2023, §4.5; computed with ``pytorch_msssim``). Its model score is normalised the same way:
the softmax probability of the target (SIC) or whether the prediction is the target (AIC), kept monotone.
Per image the curve is interpolated at 100 levels as PAIR does; SIC aggregates images by the median curve,
AIC by the mean; the area under the aggregate curve is the score.

Images the reference cannot score raise :class:`Unscorable` (blurred image at least as informative or as
well predicted as the original), and are counted as skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image, ImageFilter

from ..data import normalize
from ..engine import Engine
from . import check_engine
from .base import Metric, MetricBatch, MetricScores, Value
from .webp import submit, webp_size  # noqa: F401  (webp_size: PAIR's entropy estimate, part of this module's API)

PIC_FRACTIONS = np.linspace(0.0, 1.0, 25)
CURVE_POINTS = 100
BLUR_RADIUS = 20
RANDOM_FRACTION = 0.01
LEVELS = ("entropy", "msssim")


class Unscorable(ValueError):
    """The reference PIC implementation cannot score this image; the message says why."""


def blurred_base(pixels: np.ndarray, radius: float = BLUR_RADIUS) -> np.ndarray:
    """(H, W, 3) uint8 -> the PIL Gaussian blur of it (uint8)."""
    return np.asarray(Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(radius)))


def random_mask(height: int, width: int, seed: int, fraction: float = RANDOM_FRACTION) -> np.ndarray:
    """A seeded (H, W) bool mask with ``fraction`` of the pixels set."""
    mask = np.zeros(height * width, dtype=bool)
    mask[np.random.default_rng(seed).choice(height * width, size=int(height * width * fraction), replace=False)] = True
    return mask.reshape(height, width)


def reveal_masks(scores: np.ndarray, fractions: np.ndarray, extra: np.ndarray) -> np.ndarray:
    """(T, H, W): pixels with score >= the (1 - t) quantile (numpy's linear quantile, as PAIR), or in ``extra``."""
    return np.stack([(scores >= np.quantile(scores, 1.0 - t)) | extra for t in fractions])


@dataclass
class PicSamples:
    """What one image's images measured: index 0 is the fully blurred image (only the random pixels
    revealed), 1..T the bokeh images per fraction t, T + 1 the original."""

    entropy: np.ndarray  # (T + 2,) WebP bytes
    msssim: np.ndarray  # (T + 2,) MS-SSIM against the original
    probability: np.ndarray  # (T + 2,) softmax probability of the target
    correct: np.ndarray  # (T + 2,) prediction == target


def measure(engine: Engine, pixels: np.ndarray, scores: np.ndarray, target: int, to_input: Callable,
            seed: int) -> PicSamples:
    """:func:`measure_batch` for one image."""
    return measure_batch(engine, [pixels], [scores], [target], to_input, [seed])[0]


def measure_batch(engine: Engine, pictures: Sequence[np.ndarray], scores: Sequence[np.ndarray],
                  targets: Sequence[int], to_input: Callable, seeds: Sequence[int],
                  levels: Sequence[str] = LEVELS, pool=None) -> list[PicSamples]:
    """Build the fully blurred, bokeh and original images of several images ((H, W, 3) uint8 each, scores
    (H, W)) and measure them; all images of all pictures go through ``engine`` (``output="prob"``) together,
    ``engine.batch_size`` at a time. ``to_input`` maps (N, 3, H, W) uint8 pixels on ``engine.device`` to model
    inputs. Only the information ``levels`` asked for are measured (the WebP encodes dominate the cost); the
    others are NaN. A picture whose model outputs are not finite gets NaN probabilities (its ``correct`` then
    means nothing). ``pool``: a :func:`igcli.metrics.webp.make_pool` pool; the WebP encodes of every picture are
    handed to it before the forward passes and collected after them, so they overlap the model (same sizes:
    the encodes are deterministic); without one they run here, after the model."""
    from pytorch_msssim import ms_ssim

    check_engine(engine)
    device = engine.device
    stacks = []
    for pixels, score, seed in zip(pictures, scores, seeds):
        height, width = score.shape
        base = blurred_base(pixels)
        extra = random_mask(height, width, seed)
        masks = np.concatenate([extra[None], reveal_masks(score, PIC_FRACTIONS, extra)])
        stacks.append(np.concatenate([np.where(masks[..., None], pixels[None], base[None]), pixels[None]]))
    per_picture = stacks[0].shape[0]  # T + 2
    encoding = [submit(pool, images) for images in stacks] if pool is not None and "entropy" in levels else None
    images = np.concatenate(stacks)
    row_targets = torch.as_tensor(np.repeat(np.asarray(targets), per_picture), device=device)
    originals = torch.as_tensor(np.repeat(np.arange(len(stacks)) * per_picture + per_picture - 1, per_picture), device=device)
    stack = torch.from_numpy(images).permute(0, 3, 1, 2).to(device)
    probabilities, predictions, similarities = [], [], []
    # The Engine's chunks, taken here so that only one chunk at a time is converted to (float) model inputs.
    for rows in engine.chunks(stack.shape[0]):
        probability, hit = engine.scores_and_hits(to_input(stack[rows]), row_targets[rows])
        probabilities.append(probability)
        predictions.append(hit)
        if "msssim" in levels:
            with torch.inference_mode():
                similarities.append(ms_ssim(stack[rows].float(), stack[originals[rows]].float(), data_range=255,
                                            size_average=False))
    probability = torch.cat(probabilities).double().cpu().numpy()
    correct = torch.cat(predictions).cpu().numpy()
    similarity = (torch.cat(similarities).double().cpu().numpy() if similarities
                  else np.full(len(images), np.nan))
    samples = []
    for k, images_of_picture in enumerate(stacks):
        rows = slice(k * per_picture, (k + 1) * per_picture)
        if encoding is not None:
            sizes = [future.result() for future in encoding[k]]
        elif "entropy" in levels:
            sizes = [webp_size(image) for image in images_of_picture]
        else:
            sizes = [np.nan] * per_picture
        samples.append(PicSamples(
            entropy=np.array(sizes, dtype=np.float64),
            msssim=similarity[rows],
            probability=probability[rows],
            correct=correct[rows],
        ))
    return samples


def curve(levels: np.ndarray, values: np.ndarray, level_blurred: float, level_original: float,
          value_blurred: float, value_original: float, *, monotone: bool = True) -> np.ndarray:
    """One image's PIC curve at CURVE_POINTS + 1 levels in [0, 1] (PAIR's ``compute_pic_metric``).

    Raises:
        Unscorable: the blurred image is at least as informative or scores at least as high as the original.
    """
    from scipy.interpolate import interp1d

    if level_blurred >= level_original:
        raise Unscorable("the blurred image is not less informative than the original")
    if value_blurred >= value_original:
        raise Unscorable("the model scores the blurred image at least as high as the original")
    normalized_levels = np.clip((levels - level_blurred) / (level_original - level_blurred), 0.0, 1.0)
    normalized_values = np.clip((values - value_blurred) / (value_original - value_blurred), 0.0, 1.0)
    if monotone:
        normalized_values = np.maximum.accumulate(normalized_values)
    x = np.concatenate([normalized_levels, [0.0, 1.0]])
    y = np.concatenate([normalized_values, [0.0, 1.0]])
    grid = np.linspace(0.0, 1.0, CURVE_POINTS, endpoint=False)
    return np.append(interp1d(x, y)(grid), 1.0)


def curve_grid() -> np.ndarray:
    return np.append(np.linspace(0.0, 1.0, CURVE_POINTS, endpoint=False), 1.0)


def level_of(metric: str) -> str:
    """The information level a PIC metric name measures with: ``sic-msssim`` -> ``msssim``, ``aic`` -> ``entropy``."""
    return "msssim" if metric.endswith("-msssim") else "entropy"


def image_curves(samples: PicSamples, levels: Sequence[str] = LEVELS,
                 min_pred: float | None = None) -> dict[str, np.ndarray | str]:
    """The curves of one image (sic/aic x each of ``levels``), or the reason it cannot be scored.
    ``min_pred``: PAIR's ``min_pred_value``, off by default (the IDGI paper states no threshold): an image whose
    original scores below it (SIC: the target's probability; AIC: 1 if predicted, else 0) is not scored."""
    out: dict[str, np.ndarray | str] = {}
    for level in levels:
        levels = samples.entropy if level == "entropy" else samples.msssim
        suffix = "" if level == "entropy" else "-msssim"  # level_of inverts this
        for name, values in (("sic", samples.probability), ("aic", samples.correct.astype(np.float64))):
            if min_pred is not None and float(values[-1]) < min_pred:
                out[name + suffix] = (f"the model scores the original {float(values[-1]):.3g}, below --min-pred "
                                      f"{min_pred:g}")
                continue
            try:
                out[name + suffix] = curve(levels[1:-1], values[1:-1], float(levels[0]), float(levels[-1]),
                                           float(values[0]), float(values[-1]))
            except Unscorable as reason:
                out[name + suffix] = str(reason)
    return out


def aggregate(curves: list[np.ndarray], name: str) -> tuple[np.ndarray, float]:
    """SIC: the median curve over images; AIC: the mean. Returns (curve, area under it)."""
    stacked = np.asarray(curves)
    combined = np.median(stacked, axis=0) if name.startswith("sic") else stacked.mean(axis=0)
    return combined, float(np.trapezoid(combined, curve_grid()))


# -- registry entries (igcli.metrics.catalog) ------------------------------------------------------------------

PIC_NAMES = ("sic", "aic", "sic-msssim", "aic-msssim")


def _samples_of(batch: MetricBatch) -> list[PicSamples]:
    """The bokeh images of every image in the batch measured once, at every level a wanted PIC metric needs."""
    if "pic" not in batch.shared:
        wanted = [name for name in PIC_NAMES if name in batch.wanted] or list(PIC_NAMES)
        levels = [level for level in LEVELS if any(level_of(name) == level for name in wanted)]
        batch.shared["pic"] = measure_batch(
            batch.engine, [p.permute(1, 2, 0).cpu().numpy() for p in batch.pixels], [s.numpy() for s in batch.scores],
            batch.targets.cpu().tolist(), lambda stack: normalize(stack, batch.preprocessing), batch.seeds, levels,
            pool=batch.pool)
    return batch.shared["pic"]


def _pic(name: str):
    def compute(batch: MetricBatch) -> MetricScores:
        values = np.full(len(batch), np.nan)
        reasons: list[str | None] = [None] * len(batch)
        curves = np.full((len(batch), CURVE_POINTS + 1), np.nan)
        for i, samples in enumerate(_samples_of(batch)):
            if not np.isfinite(samples.probability).all():  # the model's outputs: skipped, no reason
                continue
            found = image_curves(samples, [level_of(name)], batch.min_pred)[name]
            if isinstance(found, str):
                reasons[i] = found
            else:
                curves[i] = found
                values[i] = float(np.trapezoid(found, curve_grid()))
        return MetricScores(values={name: values}, unscorable={name: reasons}, curves={name: curves})
    return compute


def _aggregate(name: str):
    def combined(curves: np.ndarray) -> tuple[np.ndarray, float]:
        return aggregate(list(curves), name)
    return combined


MSSSIM_MIN_SIDE = 161  # pytorch_msssim: 4 downsamplings of an 11-pixel window need a side above 160


def _check_msssim(recipe) -> None:
    from ..errors import InvalidArgumentError

    crop = (recipe.preprocessing or {}).get("crop")
    if isinstance(crop, int) and crop < MSSSIM_MIN_SIDE:
        raise InvalidArgumentError(f"--metric sic-msssim/aic-msssim: MS-SSIM needs images of at least "
                                   f"{MSSSIM_MIN_SIDE} pixels (its 4 downsamplings); these maps are {crop}x{crop}")


def _pic_metric(name: str) -> Metric:
    level = "MS-SSIM" if level_of(name) == "msssim" else "lossless WebP size"
    score = "softmax probability" if name.startswith("sic") else "accuracy"
    return Metric(
        name, "information curve", f"{score} against information ({level}) of bokeh images; area under the "
        f"{'median' if name.startswith('sic') else 'mean'} curve", "Kapishnikov et al. 2019 (XRAI), §4; Yang et al. "
        "2023 (IDGI), §4.4-4.5; reference: PAIR saliency.metrics.pic",
        (Value(name, True, "area under the image's curve; the headline is the area under the aggregate curve"),),
        _pic(name), needs_model=True, curve_x={name: lambda options: curve_grid()}, aggregate={name: _aggregate(name)},
        check=_check_msssim if level_of(name) == "msssim" else None)


SIC, AIC, SIC_MSSSIM, AIC_MSSSIM = (_pic_metric(name) for name in PIC_NAMES)
