"""Metrics on constructed cases with known answers: a model that only looks at one region."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from igcli.engine import Engine
from igcli.errors import InvalidArgumentError, TargetError
from igcli.metrics.localization import best_f1_and_mae, roc_auc
from igcli.metrics.perturbation import ABPC_FRACTIONS, INSERTION_FRACTIONS, abpc, insertion_deletion
from igcli.metrics.ranking import has_ranking, pixel_scores, top_masks

SIZE = 12


class RegionModel(nn.Module):
    """Class 0's logit is 4 x the mean of the top-left 6 x 6 region (all channels); class 1's is 0. Only that
    region matters, and every pixel in it equally."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        region = x[:, :, : SIZE // 2, : SIZE // 2].mean(dim=(1, 2, 3))
        return torch.stack([4 * region, torch.zeros_like(region)], dim=1)


def engine(model, batch_size: int) -> Engine:
    return Engine(model, output="prob", batch_size=batch_size, device=torch.device("cpu"))


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
    good = insertion_deletion(engine(model, 16), images, black, exact + 1e-3 * noise, targets)
    bad = insertion_deletion(engine(model, 16), images, black, noise, targets)
    assert torch.all(good["insertion"] > bad["insertion"]) and torch.all(good["deletion"] < bad["deletion"])
    assert torch.all(good["insertion_ratio"] >= good["insertion"])  # p(original) < 1
    # Curves start at the base image and end at the original.
    assert torch.allclose(good["insertion_curve"][:, -1], good["deletion_curve"][:, 0])
    good_abpc = abpc(engine(model, 16), images, exact + 1e-3 * noise, targets)
    bad_abpc = abpc(engine(model, 16), images, noise, targets)
    assert torch.all(good_abpc["abpc"] > bad_abpc["abpc"]) and torch.all(good_abpc["abpc"] > 0)


def test_batched_equals_one_by_one(case):
    images, black, _, _, noise = case
    model, targets = RegionModel(), torch.zeros(3, dtype=torch.int64)
    together = insertion_deletion(engine(model, 7), images, black, noise, targets)
    for i in range(3):
        alone = insertion_deletion(engine(model, 1), images[i : i + 1], black[i : i + 1], noise[i : i + 1],
                                   targets[i : i + 1])
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


class Counted(nn.Module):
    """Wraps a model and records the row count of every call."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.calls = inner, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(x.shape[0])
        return self.inner(x)


def reference_probabilities(model, images, targets, batch_size):
    """The softmax probabilities perturbation.py computed before it went through the Engine, written out."""
    out = []
    with torch.inference_mode():
        for begin in range(0, images.shape[0], batch_size):
            logits = model(images[begin : begin + batch_size])
            out.append(torch.softmax(logits.float(), dim=1).gather(1, targets[begin : begin + batch_size, None])[:, 0])
    return torch.cat(out).to(torch.float64)


def reference_curve(model, images, base, masks, targets, *, reveal):
    """One image and one level at a time: the masked pixels from ``images`` onto ``base`` (reveal) or the reverse."""
    count, levels = masks.shape[:2]
    out = torch.empty((count, levels), dtype=torch.float64)
    for b in range(count):
        for level in range(levels):
            keep = masks[b, level][None].expand_as(images[b])
            source, other = (images[b], base[b]) if reveal else (base[b], images[b])
            image = torch.where(keep, source, other)[None]
            out[b, level] = reference_probabilities(model, image, targets[b : b + 1], 1)[0]
    return out


def test_forward_passes_go_through_the_engine_in_its_chunks_and_give_the_old_values(case):
    images, black, _, exact, noise = case
    model, targets = Counted(RegionModel()), torch.zeros(3, dtype=torch.int64)
    scores = exact + 1e-3 * noise
    measured = insertion_deletion(engine(model, 7), images, black, scores, targets)
    levels = len(INSERTION_FRACTIONS)
    # Original images, then the inserted and the deleted stacks (3 x 21 rows each), 7 rows at most per call.
    assert model.calls == [3] + ([7] * 9) * 2 and max(model.calls) <= 7
    masks = top_masks(scores, INSERTION_FRACTIONS)
    original = reference_probabilities(model, images, targets, 7)
    for name, reveal in (("insertion", True), ("deletion", False)):
        expected = reference_curve(model, images, black, masks, targets, reveal=reveal)
        np.testing.assert_allclose(measured[f"{name}_curve"].numpy(), expected.numpy(), rtol=1e-6, atol=1e-12)
        fractions = torch.as_tensor(INSERTION_FRACTIONS)
        np.testing.assert_allclose(measured[name].numpy(), torch.trapezoid(expected, fractions, dim=1).numpy(),
                                   rtol=1e-6)
        np.testing.assert_allclose(measured[f"{name}_ratio"].numpy(),
                                   torch.trapezoid(expected / original[:, None], fractions, dim=1).numpy(), rtol=1e-6)
    # Chunked the same way as before, the values are bit for bit those of the old softmax code.
    flat = black[:, None] + masks[:, :, None].to(images.dtype) * (images - black)[:, None]
    flat = flat.reshape(3 * levels, 3, SIZE, SIZE)
    assert torch.equal(measured["insertion_curve"],
                       reference_probabilities(model, flat, targets.repeat_interleave(levels), 7).view(3, levels))

    model.calls.clear()
    result = abpc(engine(model, 5), images, scores, targets)
    assert model.calls == ([5] * 6 + [3]) * 2  # top-first, then bottom-first: 3 x 11 rows each
    zero = torch.zeros_like(images)
    top = reference_curve(model, images, zero, top_masks(scores, ABPC_FRACTIONS), targets, reveal=False)
    bottom = reference_curve(model, images, zero, top_masks(scores, ABPC_FRACTIONS, from_bottom=True), targets,
                             reveal=False)
    np.testing.assert_allclose(result["abpc"].numpy(),
                               torch.trapezoid(bottom - top, torch.as_tensor(ABPC_FRACTIONS), dim=1).numpy(), rtol=1e-6)


class NanForImage(nn.Module):
    """RegionModel, but NaN logits for any input whose bottom-right pixel is 7 (marks one image and its copies)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = RegionModel()(x)
        marked = (x[:, 0, -1, -1] == 7.0).view(-1, 1)
        return torch.where(marked, torch.full_like(logits, float("nan")), logits)


def test_a_non_finite_model_output_spoils_only_its_own_image(case):
    images, black, _, exact, noise = case
    images = images.clone()
    images[1, 0, -1, -1] = 7.0  # outside the region: RegionModel's answers do not change
    targets = torch.zeros(3, dtype=torch.int64)
    clean = insertion_deletion(engine(RegionModel(), 4), images, black, noise, targets)
    spoiled = insertion_deletion(engine(NanForImage(), 4), images, black, noise, targets)
    for name in ("insertion", "insertion_ratio", "deletion", "deletion_ratio"):
        assert torch.isnan(spoiled[name][1]), name
        assert torch.equal(spoiled[name][[0, 2]], clean[name][[0, 2]]), name
    assert torch.isnan(abpc(engine(NanForImage(), 4), images, noise, targets)["abpc"]).tolist() == [False, True, False]


def test_metrics_need_an_engine_that_scores_probabilities(case):
    images, black, _, _, noise = case
    logit_engine = Engine(RegionModel(), output="logit", batch_size=4, device=torch.device("cpu"))
    with pytest.raises(InvalidArgumentError, match="output='prob'"):
        insertion_deletion(logit_engine, images, black, noise, torch.zeros(3, dtype=torch.int64))


def test_a_target_outside_the_model_is_a_clear_error(case):
    images, black, _, _, noise = case
    with pytest.raises(TargetError, match="target 2 of image 1 is outside the model's 2 classes"):
        insertion_deletion(engine(RegionModel(), 4), images, black, noise, torch.tensor([0, 2, 0]))
