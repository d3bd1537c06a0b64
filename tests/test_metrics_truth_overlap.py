"""Pointing game, relevance mass and relevance rank accuracy: analytic cases, and Quantus 0.6.0 (PointingGame,
RelevanceMassAccuracy, RelevanceRankAccuracy) on the same pixel scores and masks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from igcli.errors import InvalidArgumentError
from igcli.metrics.base import MetricBatch
from igcli.metrics.ranking import pixel_scores
from igcli.metrics.truth_overlap import (EMPTY_MASK, NONFINITE_SCORES, POINTING_GAME, RELEVANCE_MASS, RELEVANCE_RANK,
                                         ZERO_TOTAL, dilate, pointing_game, relevance_mass, relevance_rank)

from sync_counter import count_syncs

import quantus  # noqa: E402  (a test dependency: pip install -e '.[test]')

OURS = {"PointingGame": pointing_game, "RelevanceMassAccuracy": relevance_mass,
        "RelevanceRankAccuracy": relevance_rank}


def case(shape, seed: int):
    """(B, H, W) float64 signed scores, continuous (no ties), and masks: random blobs and rectangles."""
    generator = torch.Generator().manual_seed(seed)
    batch, height, width = shape
    scores = torch.randn(shape, generator=generator, dtype=torch.float64) + 0.3
    masks = torch.rand(shape, generator=generator) > 0.7
    for i in range(0, batch, 2):  # every other image a box, as --boxes gives
        masks[i] = False
        masks[i, 1 + i % 3 : height - 2, 2 : width - 1 - i % 2] = True
    lean = torch.tensor([0.8, -0.8, 0.0]).repeat(batch)[:batch, None, None]  # toward the object, away, neither
    return scores + lean * masks, masks


def quantus_scores(name: str, scores: torch.Tensor, masks: torch.Tensor) -> np.ndarray:
    """Quantus' metric with its defaults on scores (B, H, W) as a_batch and masks (B, H, W) as s_batch."""
    a = scores.numpy()[:, None].copy()
    s = masks.numpy()[:, None].astype(np.float64)
    x = np.zeros((a.shape[0], 3, *a.shape[-2:]), dtype=np.float32)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(x[0].size, 2))  # unused by these metrics
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metric = getattr(quantus, name)(disable_warnings=True)
        result = metric(model=model, x_batch=x, y_batch=np.zeros(len(a), dtype=np.int64), a_batch=a, s_batch=s)
    return np.asarray(result, dtype=np.float64)


def batch_of(maps: torch.Tensor, truth: torch.Tensor, rank: str = "signed", **options) -> MetricBatch:
    return MetricBatch(maps=maps, scores=pixel_scores(maps, rank), paths=[f"image{i}.png" for i in range(len(maps))],
                       targets=torch.zeros(len(maps), dtype=torch.int64), device=torch.device("cpu"),
                       preprocessing=None, seeds=[0] * len(maps), options=options, truth=truth)


@pytest.mark.parametrize("name", sorted(OURS))
@pytest.mark.parametrize("shape", [(6, 8, 8), (5, 12, 10), (3, 32, 32)])
def test_equal_to_quantus(name, shape):
    scores, masks = case(shape, seed=shape[1])
    ours = OURS[name](scores, masks).numpy()
    np.testing.assert_allclose(ours, quantus_scores(name, scores, masks), rtol=0, atol=1e-12)
    assert len(set(ours.tolist())) > 1  # hits and misses, not one value for all
    # the guard: the same scores against the complement of the masks do not agree
    assert np.abs(ours - quantus_scores(name, scores, ~masks)).max() > 1e-3


def test_through_the_channel_sum_as_quantus_is_fed():
    # (B, C, H, W) maps: igcli's --rank signed scores are the channel sum, the a_batch a Quantus user passes.
    generator = torch.Generator().manual_seed(4)
    maps = torch.randn((4, 3, 10, 10), generator=generator)
    _, masks = case((4, 10, 10), seed=4)
    batch = batch_of(maps, masks)
    summed = maps.to(torch.float64).sum(dim=1)
    for metric, name in ((POINTING_GAME, "PointingGame"), (RELEVANCE_MASS, "RelevanceMassAccuracy"),
                         (RELEVANCE_RANK, "RelevanceRankAccuracy")):
        batch.options = metric.resolve_options({})
        (value,) = metric.value_names
        np.testing.assert_allclose(metric.compute(batch).values[value], quantus_scores(name, summed, masks),
                                   rtol=0, atol=1e-12)


def test_empty_masks_are_unscorable_where_quantus_counts_a_pointing_game_hit():
    scores, masks = case((3, 8, 8), seed=1)
    masks[1] = False
    assert quantus_scores("PointingGame", scores, masks)[1] == 1.0  # Quantus: hit[empty] = NaN, cast to True
    assert np.isnan(quantus_scores("RelevanceRankAccuracy", scores, masks)[1])
    for metric in (POINTING_GAME, RELEVANCE_MASS, RELEVANCE_RANK):
        batch = batch_of(scores, masks, **metric.resolve_options({}))
        result = metric.compute(batch)
        (value,) = metric.value_names
        assert result.unscorable[value] == [None, EMPTY_MASK, None]
        assert np.isnan(result.values[value][1]) and np.isfinite(result.values[value][[0, 2]]).all()


def test_pointing_game_hits_misses_and_ties():
    scores = torch.zeros((3, 6, 6), dtype=torch.float64)
    masks = torch.zeros((3, 6, 6), dtype=torch.bool)
    masks[:, :2, :2] = True
    scores[0, 1, 1] = 2.0  # on the object
    scores[1, 4, 4] = 2.0  # off it
    scores[2, 4, 4] = scores[2, 0, 1] = 2.0  # a tie for the top, one on the object: a hit, as in Quantus
    np.testing.assert_array_equal(pointing_game(scores, masks).numpy(), [1.0, 0.0, 1.0])
    scores[2, 0, 1] = 1.999
    assert pointing_game(scores, masks)[2] == 0.0


def test_pointing_game_tolerance_is_euclidean_in_pixels():
    masks = torch.zeros((2, 9, 9), dtype=torch.bool)
    masks[:, 0, 0] = True
    scores = torch.zeros((2, 9, 9), dtype=torch.float64)
    scores[0, 0, 3] = 1.0  # 3 pixels right of the object
    scores[1, 2, 2] = 1.0  # 2 sqrt 2 = 2.83 pixels diagonally
    for tolerance, expected in ((0, [0, 0]), (2.8, [0, 0]), (2.9, [0, 1]), (3, [1, 1])):
        np.testing.assert_array_equal(pointing_game(scores, masks, tolerance).numpy(), expected)
    np.testing.assert_array_equal(dilate(masks, 1.0)[0, :3, :3].numpy(),
                                  [[True, True, False], [True, False, False], [False, False, False]])
    batch = batch_of(scores, masks, **POINTING_GAME.resolve_options({"tolerance": "3"}))
    np.testing.assert_array_equal(POINTING_GAME.compute(batch).values["pointing_game"], [1.0, 1.0])
    with pytest.raises(InvalidArgumentError, match="-O pointing-game.tolerance"):
        POINTING_GAME.resolve_options({"tolerance": "-1"})


def test_relevance_mass_cases():
    masks = torch.zeros((4, 4, 4), dtype=torch.bool)
    masks[:, :2] = True
    scores = torch.zeros((4, 4, 4), dtype=torch.float64)
    scores[0, 0] = torch.tensor([1.0, 2.0, 3.0, 0.5])  # all inside the mask: 1
    scores[1, 0, 0], scores[1, 3, 3] = 1.0, 3.0  # a quarter inside
    scores[2, 0, 0], scores[2, 3, 3] = 2.0, -1.0  # negative evidence outside: 2 / 1 = 2, as Quantus sums signed
    scores[3, 0, 0], scores[3, 3, 3] = 1.0, -1.0  # sums to zero
    np.testing.assert_allclose(relevance_mass(scores, masks).numpy()[:3], [1.0, 0.25, 2.0], rtol=0, atol=1e-15)
    result = RELEVANCE_MASS.compute(batch_of(scores, masks))
    assert result.unscorable["relevance_mass"] == [None, None, None, ZERO_TOTAL]
    assert np.isnan(result.values["relevance_mass"][3])
    # --rank positive gives Arras et al.'s positive-relevance definition: 2 / 2
    assert RELEVANCE_MASS.compute(batch_of(scores, masks, rank="positive")).values["relevance_mass"][2] == 1.0


def test_relevance_rank_cases_and_ties_broken_by_pixel_index():
    masks = torch.zeros((3, 4, 4), dtype=torch.bool)
    masks[:, 0, :] = True  # K = 4: the first row
    order = torch.arange(16, dtype=torch.float64).view(4, 4)
    scores = torch.stack([-order, order, torch.ones(4, 4, dtype=torch.float64)])
    # highest first: row 0 (1); row 3 (0); a constant map ranks by pixel index, so row 0 again (1)
    np.testing.assert_array_equal(relevance_rank(scores, masks).numpy(), [1.0, 0.0, 1.0])
    half = -order.clone()
    half[0, 2:], half[1, :2] = -100.0, 5.0  # two of the top four are on the object
    assert relevance_rank(half[None], masks[:1]).item() == 0.5


def test_non_finite_scores_and_missing_truth():
    scores, masks = case((2, 6, 6), seed=2)
    scores[0, 3, 3] = float("inf")
    result = RELEVANCE_RANK.compute(batch_of(scores, masks))
    assert result.unscorable["relevance_rank"] == [NONFINITE_SCORES, None]
    assert np.isnan(result.values["relevance_rank"][0])
    assert all(metric.needs_truth and not metric.needs_model for metric in (POINTING_GAME, RELEVANCE_MASS,
                                                                             RELEVANCE_RANK))
    with pytest.raises(ValueError, match="truth"):
        RELEVANCE_RANK.compute(batch_of(scores, None))


def test_no_device_waits_but_the_host_copies_at_the_end():
    scores, masks = case((3, 8, 8), seed=6)
    for function in (lambda s, m: pointing_game(s, m, 2.5), relevance_mass, relevance_rank):
        with count_syncs() as counter:
            function(scores, masks)
        assert counter.total == 0, counter.by_site()
    totals = []
    for count in (3, 6):
        batch = batch_of(*case((count, 8, 8), seed=7), **POINTING_GAME.resolve_options({"tolerance": 2}))
        with count_syncs() as counter:
            POINTING_GAME.compute(batch)
        totals.append(counter.by_site())
    assert totals[0] == totals[1] and sum(totals[0].values()) <= 4, totals  # not one per image
