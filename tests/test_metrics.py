"""Metrics on constructed cases with known answers: a model that only looks at one region."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from igcli.metrics.localization import best_f1_and_mae, roc_auc
from igcli.metrics.perturbation import abpc, insertion_deletion
from igcli.metrics.ranking import has_ranking, pixel_scores, top_masks

SIZE = 12


class RegionModel(nn.Module):
    """Class 0's logit is 4 x the mean of the top-left 6 x 6 region (all channels); class 1's is 0. Only that
    region matters, and every pixel in it equally."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        region = x[:, :, : SIZE // 2, : SIZE // 2].mean(dim=(1, 2, 3))
        return torch.stack([4 * region, torch.zeros_like(region)], dim=1)


@pytest.fixture
def case():
    generator = torch.Generator().manual_seed(0)
    images = 1.0 + torch.rand((3, 3, SIZE, SIZE), generator=generator)  # bright: the region says class 0
    black = torch.full_like(images, -1.0)
    region = torch.zeros((SIZE, SIZE), dtype=torch.bool)
    region[: SIZE // 2, : SIZE // 2] = True
    exact = region.to(torch.float64).expand(3, SIZE, SIZE).clone()
    noise = torch.rand((3, SIZE, SIZE), generator=generator, dtype=torch.float64)
    return images, black, region, exact, noise


def test_the_right_map_beats_a_random_one(case):
    images, black, region, exact, noise = case
    model, targets = RegionModel(), torch.zeros(3, dtype=torch.int64)
    good = insertion_deletion(model, images, black, exact + 1e-3 * noise, targets, batch_size=16)
    bad = insertion_deletion(model, images, black, noise, targets, batch_size=16)
    assert torch.all(good["insertion"] > bad["insertion"]) and torch.all(good["deletion"] < bad["deletion"])
    assert torch.all(good["insertion_ratio"] >= good["insertion"])  # p(original) < 1
    # Curves start at the base image and end at the original.
    assert torch.allclose(good["insertion_curve"][:, -1], good["deletion_curve"][:, 0])
    good_abpc, bad_abpc = abpc(model, images, exact + 1e-3 * noise, targets, 16), abpc(model, images, noise, targets, 16)
    assert torch.all(good_abpc["abpc"] > bad_abpc["abpc"]) and torch.all(good_abpc["abpc"] > 0)


def test_batched_equals_one_by_one(case):
    images, black, _, _, noise = case
    model, targets = RegionModel(), torch.zeros(3, dtype=torch.int64)
    together = insertion_deletion(model, images, black, noise, targets, batch_size=7)
    for i in range(3):
        alone = insertion_deletion(model, images[i : i + 1], black[i : i + 1], noise[i : i + 1], targets[i : i + 1], 1)
        for name in ("insertion", "deletion", "insertion_ratio"):
            assert float(alone[name][0]) == pytest.approx(float(together[name][i]), rel=1e-6)


def test_rankings_and_masks():
    maps = torch.tensor([[[[3.0, -5.0], [0.0, 1.0]]]])  # (1, 1, 2, 2)
    assert pixel_scores(maps, "signed")[0].flatten().tolist() == [3.0, -5.0, 0.0, 1.0]
    assert pixel_scores(maps, "abs")[0].flatten().tolist() == [3.0, 5.0, 0.0, 1.0]
    assert pixel_scores(maps, "positive")[0].flatten().tolist() == [3.0, 0.0, 0.0, 1.0]
    masks = top_masks(pixel_scores(maps, "signed"), np.array([0.0, 0.5, 1.0]))
    assert masks[0, 1].flatten().tolist() == [True, False, False, True]
    assert masks[0, 0].sum() == 0 and masks[0, 2].all()
    bottom = top_masks(pixel_scores(maps, "signed"), np.array([0.25]), from_bottom=True)
    assert bottom[0, 0].flatten().tolist() == [False, True, False, False]
    assert has_ranking(pixel_scores(maps)).tolist() == [True]
    assert has_ranking(torch.zeros(2, 3, 3)).tolist() == [False, False]  # a constant map ranks nothing


def test_localization_of_the_mask_itself_and_of_noise(case):
    _, _, region, exact, noise = case
    assert roc_auc(exact[0].numpy(), region.numpy()) == 1.0
    f1, mae = best_f1_and_mae(exact[0].numpy(), region.numpy())
    assert f1 == 1.0 and mae == 0.0
    assert roc_auc(-exact[0].numpy(), region.numpy()) == 0.0
    assert 0.3 < roc_auc(noise[0].numpy(), region.numpy()) < 0.7
    # Against scikit-learn's definitions on a small case, worked by hand: scores 4 3 2 1, labels 1 0 1 0.
    scores, labels = np.array([4.0, 3.0, 2.0, 1.0]), np.array([True, False, True, False])
    assert roc_auc(scores, labels) == pytest.approx(0.75)
    f1, mae = best_f1_and_mae(scores, labels)
    assert f1 == pytest.approx(0.8) and mae == pytest.approx(0.25)  # top 3: tp 2, fp 1 -> F1 0.8; top 1: 1 error
    assert np.isnan(roc_auc(scores, np.ones(4, bool)))
