"""Gini sparseness and entropy complexity: analytic cases, and Quantus 0.6.0 (Sparseness, Complexity) on the
same maps."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from igcli.errors import InvalidArgumentError
from igcli.metrics.base import MetricBatch
from igcli.metrics.complexity import ENTROPY, GINI, GINI_OFFSET, NONFINITE_MAP, ZERO_MAP, entropy, gini_index
from igcli.metrics.ranking import pixel_scores

from sync_counter import count_syncs

import quantus  # noqa: E402  (a test dependency: pip install -e '.[test]')

SHAPES = [(4, 3, 8, 8), (3, 16, 16), (2, 1, 12, 10)]


def random_maps(shape, seed: int) -> torch.Tensor:
    """Signed float32 maps (as stored), with a spread of scales so that per-image normalisation matters."""
    generator = torch.Generator().manual_seed(seed)
    maps = torch.randn(shape, generator=generator) ** 3  # heavy-tailed: far from uniform
    scale = torch.logspace(-3, 2, shape[0]).view(-1, *[1] * (len(shape) - 1))
    return (maps * scale).to(torch.float32)


def quantus_scores(metric_class, maps: torch.Tensor, *, per_image: bool = True) -> np.ndarray:
    """Quantus' metric on ``maps`` (B, C, H, W) or (B, H, W); ``per_image``: normalise each image by its own max
    (igcli's choice), else Quantus' default (the max over the whole batch)."""
    a = maps.to(torch.float64).numpy().copy()
    x = np.zeros((a.shape[0], 3, *a.shape[-2:]), dtype=np.float32)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(x[0].size, 2))  # unused by these metrics
    kwargs = {"normalise_func_kwargs": {"normalise_axes": (1, 2, 3)}} if per_image else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metric = metric_class(disable_warnings=True, **kwargs)
        return np.asarray(metric(model=model, x_batch=x, y_batch=np.zeros(len(a), dtype=np.int64), a_batch=a),
                          dtype=np.float64)


def batch_of(maps: torch.Tensor, **options) -> MetricBatch:
    return MetricBatch(maps=maps, scores=pixel_scores(maps, options.pop("rank", "signed")),
                       paths=[f"image{i}.png" for i in range(len(maps))],
                       targets=torch.zeros(len(maps), dtype=torch.int64), device=torch.device("cpu"),
                       preprocessing=None, seeds=[0] * len(maps), options=options)


@pytest.mark.parametrize("shape", SHAPES)
def test_gini_and_entropy_equal_quantus(shape):
    maps = random_maps(shape, seed=len(shape) * 10 + shape[-1])
    np.testing.assert_allclose(gini_index(maps).numpy(), quantus_scores(quantus.Sparseness, maps), rtol=0, atol=1e-12)
    np.testing.assert_allclose(entropy(maps).numpy(), quantus_scores(quantus.Complexity, maps), rtol=0, atol=1e-12)


def test_quantus_fed_one_image_at_a_time_agrees_and_its_batch_normalisation_does_not():
    # Quantus' default divides by the largest |value| of the batch: the 1e-7 offset then weighs differently for
    # an image whose own largest value is small, so its score depends on its batch. igcli's does not.
    maps = random_maps((4, 3, 8, 8), seed=3)
    alone = np.array([quantus_scores(quantus.Sparseness, maps[i : i + 1], per_image=False)[0] for i in range(4)])
    ours = gini_index(maps).numpy()
    np.testing.assert_allclose(ours, alone, rtol=0, atol=1e-12)
    np.testing.assert_allclose(gini_index(maps[1:3]).numpy(), ours[1:3], rtol=0, atol=0)  # batching changes nothing
    batched = quantus_scores(quantus.Sparseness, maps, per_image=False)
    assert abs(batched[0] - ours[0]) > 1e-6  # the guard: the comparison sees an eps-level difference


def test_a_wrong_map_fails_the_comparison():
    maps = random_maps((3, 3, 8, 8), seed=5)
    assert np.abs(gini_index(maps.sqrt().nan_to_num()).numpy() - quantus_scores(quantus.Sparseness, maps)).max() > 1e-3
    assert np.abs(entropy(maps * (maps > 0)).numpy() - quantus_scores(quantus.Complexity, maps)).max() > 1e-3


@pytest.mark.parametrize("n", [1, 2, 64, 3 * 32 * 32])
def test_one_hot_map(n):
    one_hot = torch.zeros(2, n)
    one_hot[0, n // 2], one_hot[1, 0] = 5.0, -0.25  # the sign and the scale do not matter
    # Sorted normalised values: n - 1 times eps, then 1 + eps; sum_k (2k - n - 1) eps = 0, so
    # G = (n - 1) / (n (1 + n eps)), 1 - 1/n up to the offset.
    expected = (n - 1) / (n * (1 + n * GINI_OFFSET))
    np.testing.assert_allclose(gini_index(one_hot).numpy(), expected, rtol=1e-12, atol=1e-15)
    assert abs(expected - (1 - 1 / n)) < n * GINI_OFFSET
    np.testing.assert_allclose(entropy(one_hot).numpy(), 0.0, atol=1e-11)  # -1 * log(1 + 1e-12)


@pytest.mark.parametrize("n", [1, 7, 256])
def test_uniform_map(n):
    uniform = torch.full((1, n), -3.0)
    np.testing.assert_allclose(gini_index(uniform).numpy(), 0.0, atol=1e-12)
    # p = 1/n each: -sum p log(p + 1e-12) = log n - n * log(1 + n 1e-12) / n, within 1e-9 of log n
    np.testing.assert_allclose(entropy(uniform).numpy(), math.log(n), rtol=0, atol=1e-9)


def test_half_split_map():
    # k equal nonzero values out of n: entropy log k, Gini (n - k) / n (offset aside)
    maps = torch.zeros(1, 10)
    maps[0, :4] = 2.0
    np.testing.assert_allclose(entropy(maps).numpy(), math.log(4), atol=1e-9)
    np.testing.assert_allclose(gini_index(maps).numpy(), 0.6, atol=1e-5)


def test_metric_objects_score_a_batch_with_reasons_for_undefined_maps():
    maps = random_maps((4, 3, 6, 6), seed=9)
    maps[1] = 0.0
    maps[2, 0, 0, 0] = float("nan")
    for metric, function in ((GINI, gini_index), (ENTROPY, entropy)):
        result = metric.compute(batch_of(maps, **metric.resolve_options({})))
        (name,) = metric.value_names
        values = result.values[name]
        assert values.dtype == np.float64 and values.shape == (4,)
        assert result.unscorable[name] == [None, ZERO_MAP, NONFINITE_MAP, None]
        assert np.isnan(values[1:3]).all()
        np.testing.assert_allclose(values[[0, 3]], function(maps[[0, 3]]).numpy(), rtol=0, atol=0)
    assert GINI.values[0].higher_is_better and not ENTROPY.values[0].higher_is_better
    assert not GINI.needs_model and not GINI.needs_truth and not GINI.ranked


def test_features_pixels_scores_the_rank_scores():
    maps = random_maps((3, 3, 8, 8), seed=11)
    options = GINI.resolve_options({"features": "pixels"})
    result = GINI.compute(batch_of(maps, rank="abs", **options)).values["gini"]
    reference = quantus_scores(quantus.Sparseness, maps.double().abs().sum(dim=1))  # the channel sum of |a|
    np.testing.assert_allclose(result, reference, rtol=0, atol=1e-12)
    assert np.abs(result - GINI.compute(batch_of(maps)).values["gini"]).max() > 1e-3  # not the per-value one
    with pytest.raises(InvalidArgumentError, match="-O gini.features"):
        GINI.resolve_options({"features": "channels"})


def test_no_device_waits_but_the_host_copies_at_the_end():
    for function in (gini_index, entropy):
        maps = random_maps((3, 3, 8, 8), seed=1)
        with count_syncs() as counter:
            function(maps)
        assert counter.total == 0, counter.by_site()
    totals = []
    for count in (3, 6):
        batch = batch_of(random_maps((count, 3, 8, 8), seed=2))
        with count_syncs() as counter:
            GINI.compute(batch)
        totals.append(counter.by_site())
    assert totals[0] == totals[1] and sum(totals[0].values()) <= 4, totals  # not one per image
