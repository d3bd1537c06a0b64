"""ROAD (Rong et al. 2022): the batched linear imputation against Quantus' ``noisy_linear_imputation`` and an
exact case, the curves against Quantus ``ROAD``, and the metric's batching and seeding."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from igcli.engine import Engine
from igcli.errors import InvalidArgumentError
from igcli.metrics.base import MetricBatch
from igcli.metrics.road import (ROAD, impute_cg, impute_cholmod, impute_direct, nested_dissection_rank,
                                parse_percentages, removal_counts, removal_masks, road_curves)

SOLVE = {"cg": impute_cg, "direct": impute_direct, "cholmod": impute_cholmod}
from igcli.models import Normalization, Preprocessing

import quantus  # noqa: E402  (a test dependency: pip install -e '.[test]')
from quantus.functions.perturb_func import noisy_linear_imputation  # noqa: E402


def tiny_model(channels: int, size: int, classes: int = 4, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(channels, 6, 3, padding=1), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(),
                         nn.Linear(6 * (size // 2) ** 2, classes)).double().eval()


def engine_for(model: nn.Module) -> Engine:
    return Engine(model, output="prob", batch_size=64, device=torch.device("cpu"), amp=False)


def quantus_imputation(images: np.ndarray, scores: np.ndarray, percentages: np.ndarray, lerf: bool) -> np.ndarray:
    """Quantus' imputation (noise 0) of each image at each percentage, the removed set as ROAD picks it."""
    out = []
    height, width = scores.shape[1:]
    for image, score in zip(images, scores):
        order = np.argsort(score.ravel() if lerf else -score.ravel(), kind="stable")
        for count in removal_counts(percentages, height * width):
            out.append(noisy_linear_imputation(image, order[:count], noise=0.0))
    return np.stack(out)


@pytest.mark.parametrize("solver", sorted(SOLVE))
@pytest.mark.parametrize("lerf", [False, True])
def test_imputation_matches_quantus(solver: str, lerf: bool) -> None:
    rng = np.random.RandomState(0)
    images, scores = rng.randn(3, 3, 20, 16), rng.rand(3, 20, 16)
    percentages = parse_percentages("5,30,70,99")
    removed = removal_masks(torch.tensor(scores), percentages, lerf=lerf).reshape(-1, 20, 16)
    copies = torch.tensor(images).repeat_interleave(len(percentages), 0)
    ours = SOLVE[solver](copies, removed).numpy()
    reference = quantus_imputation(images, scores, percentages, lerf)
    np.testing.assert_allclose(ours, reference, atol=1e-6, rtol=0)
    # Guards: the imputation changed the removed pixels, and filling them with the channel mean instead (the
    # authors' "fixed" imputer) would fail the comparison.
    assert np.abs(ours - copies.numpy()).max() > 0.1
    mean_fill = np.where(removed[:, None].numpy(), copies.numpy().mean((2, 3), keepdims=True), copies.numpy())
    assert np.abs(mean_fill - reference).max() > 1e-2


def test_plane_is_imputed_exactly() -> None:
    """A plane is harmonic for the symmetric stencil: removing interior pixels of a plane gives it back."""
    height, width = 24, 20
    y, x = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                          indexing="ij")
    plane = torch.stack([0.3 * y - 0.2 * x + 1.0, -0.1 * y + 0.05 * x, 0.7 * x])[None]
    scores = -((y - 11) ** 2 + (x - 9) ** 2)  # most relevant at the centre: MoRF removes a disc
    removed = removal_masks(scores[None], np.array([40.0]), lerf=False)[:, 0]
    assert not removed[0, [0, -1]].any() and not removed[0, :, [0, -1]].any()  # interior only
    for solve in SOLVE.values():
        np.testing.assert_allclose(solve(plane, removed).numpy(), plane.numpy(), atol=1e-7)
    # Guard: a paraboloid is not harmonic, so its imputation must differ.
    bowl = plane + 0.05 * (y ** 2)[None, None]
    assert (impute_direct(bowl, removed) - bowl).abs().max() > 1e-2


def test_nested_dissection_rank_is_a_permutation_with_separators_last() -> None:
    rank = nested_dissection_rank(9, 20, leaf=4)
    assert sorted(rank) == list(range(9 * 20))
    # The first split is the middle column (the longer side): it comes after every pixel of both halves.
    assert rank.reshape(9, 20)[:, 10].min() > np.delete(rank.reshape(9, 20), 10, axis=1).max()


def test_cholmod_on_scattered_and_one_pixel_holes_and_nothing_removed() -> None:
    """Quantus' solve on a larger image with a random removal set (many components, some one pixel), one row
    with nothing removed, and a single-channel image."""
    rng = np.random.RandomState(5)
    images = rng.randn(3, 2, 33, 41)
    removed = torch.tensor(rng.rand(3, 33, 41) < np.array([0.3, 0.0, 0.93])[:, None, None])
    ours = impute_cholmod(torch.tensor(images), removed).numpy()
    for row in range(3):
        indices = np.flatnonzero(removed[row].numpy().ravel())
        reference = noisy_linear_imputation(images[row], indices, noise=0.0) if indices.size else images[row]
        np.testing.assert_allclose(ours[row], reference, atol=1e-9, rtol=0)
    one = impute_cholmod(torch.tensor(images[:, :1]), removed).numpy()
    np.testing.assert_allclose(one, ours[:, :1], atol=1e-12)
    # Guard: the removed pixels changed, so comparing with the input instead would fail.
    assert np.abs(ours[0] - images[0]).max() > 0.1


def test_curves_match_quantus_road() -> None:
    """Noise 0, one channel (Quantus ROAD indexes C*H*W features into an H*W mask, so it fails on RGB
    images): our per-image MoRF hits, averaged over images, are Quantus' accuracy per percentage."""
    size, count = 12, 6
    model = tiny_model(1, size)
    rng = np.random.RandomState(1)
    images = rng.randn(count, 1, size, size)
    maps = rng.randn(count, 1, size, size)
    targets = model(torch.tensor(images)).argmax(1)
    percentages = parse_percentages("10")
    curves = road_curves(engine_for(model), torch.tensor(images), torch.tensor(maps[:, 0]), targets,
                         list(range(count)), percentages=percentages, noise_std=torch.zeros(1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metric = quantus.ROAD(percentages=list(percentages), noise=0.0, normalise=False, disable_warnings=True)
        reference = metric(model=model.float(), x_batch=images.astype(np.float32), y_batch=targets.numpy(),
                           a_batch=maps.astype(np.float32), device="cpu")
    model.double()
    expected = np.array([reference[p] for p in percentages])
    np.testing.assert_allclose(curves["morf_hit"].mean(0).numpy(), expected, atol=1e-12)
    assert 0 < expected.min() < expected.max()  # the curve moves: the comparison can fail
    # Guard: the LeRF curve (the opposite order) is not Quantus' MoRF curve.
    assert np.abs(curves["lerf_hit"].mean(0).numpy() - expected).max() > 0.1
    # Probabilities: the same images through the model directly.
    removed = removal_masks(torch.tensor(maps[:, 0]), percentages, lerf=False).reshape(-1, size, size)
    imputed = impute_direct(torch.tensor(images).repeat_interleave(len(percentages), 0), removed)
    probability = torch.softmax(model(imputed), 1)[torch.arange(imputed.shape[0]),
                                                    targets.repeat_interleave(len(percentages))]
    np.testing.assert_allclose(curves["morf_prob"].numpy(), probability.detach().view(count, -1).numpy(),
                               atol=1e-6)


def make_batch(images: torch.Tensor, scores: torch.Tensor, targets: torch.Tensor, seeds: list[int], model,
               **options) -> MetricBatch:
    std = (0.5, 0.25, 0.2)
    return MetricBatch(maps=scores.float(), scores=scores, paths=[f"img{s}.png" for s in seeds], targets=targets,
                       device=torch.device("cpu"), seeds=seeds,
                       preprocessing=Preprocessing(16, 16, Normalization((0.5, 0.5, 0.5), std)),
                       options=ROAD.resolve_options(options), images=images, engine=engine_for(model))


def test_metric_batched_equals_one_at_a_time_and_seeded() -> None:
    size, count = 16, 4
    model = tiny_model(3, size)
    rng = np.random.RandomState(2)
    images, scores = torch.tensor(rng.randn(count, 3, size, size)), torch.tensor(rng.rand(count, size, size))
    targets = model(images).argmax(1)
    seeds = [11, 12, 13, 14]
    whole = ROAD.compute(make_batch(images, scores, targets, seeds, model, percentages="8", solver="cg"))
    for index in range(count):
        one = ROAD.compute(make_batch(images[index:index + 1], scores[index:index + 1], targets[index:index + 1],
                                      seeds[index:index + 1], model, percentages="8", solver="direct"))
        for name, values in whole.values.items():
            np.testing.assert_allclose(one.values[name][0], values[index], atol=1e-6, err_msg=name)
    assert set(whole.values) == set(ROAD.value_names)
    np.testing.assert_allclose(whole.values["road"], whole.values["road_lerf"] - whole.values["road_morf"])
    # Another seed moves the values (the noise is drawn), and noise 0 is another curve again.
    other = ROAD.compute(make_batch(images, scores, targets, [21, 22, 23, 24], model, percentages="8"))
    assert np.abs(other.values["road_morf"] - whole.values["road_morf"]).max() > 1e-6


def test_noise_is_gaussian_in_pixel_units_on_removed_pixels_only() -> None:
    """The noise std is given in [0, 1] pixel units: in model inputs it is noise / normalisation std."""
    size = 32
    captured: list[torch.Tensor] = []

    class Spy(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            captured.append(x.clone())
            return torch.zeros(x.shape[0], 2, dtype=x.dtype)

    images = torch.tensor(np.random.RandomState(3).randn(1, 3, size, size))
    scores = torch.tensor(np.random.RandomState(4).rand(1, size, size))
    batch = make_batch(images, scores, torch.zeros(1, dtype=torch.long), [5], Spy(), percentages="50.0", noise=0.1)
    ROAD.compute(batch)
    perturbed = torch.cat(captured)  # (2 orders * 1 percentage, C, H, W)
    removed = torch.cat([removal_masks(scores, np.array([50.0]), lerf=lerf)[:, 0] for lerf in (False, True)])
    clean = impute_direct(images.repeat(2, 1, 1, 1), removed)
    change = perturbed - clean
    assert change[~removed[:, None].expand_as(change)].abs().max() == 0  # known pixels untouched
    for channel, std in enumerate((0.5, 0.25, 0.2)):
        drawn = change[:, channel][removed]
        assert abs(float(drawn.std()) - 0.1 / std) < 0.1 / std * 0.06
        assert abs(float(drawn.mean())) < 0.1 / std * 0.1


def test_options_and_counts() -> None:
    np.testing.assert_allclose(parse_percentages("50"), np.arange(1, 100, 2))
    np.testing.assert_allclose(parse_percentages("10, 50,90"), [10, 50, 90])
    assert list(removal_counts(np.array([1.0, 29.0, 99.0]), 224 * 224)) == [int(224 * 224 * p / 100)
                                                                          for p in (1.0, 29.0, 99.0)]
    for bad in ("0", "0,50", "50,100", "50,10", "x", ""):
        with pytest.raises(InvalidArgumentError, match="road.percentages"):
            ROAD.resolve_options({"percentages": bad})
    with pytest.raises(InvalidArgumentError, match="road.noise"):
        ROAD.resolve_options({"noise": "-1"})
    with pytest.raises(InvalidArgumentError, match="road.solver"):
        ROAD.resolve_options({"solver": "lu"})
