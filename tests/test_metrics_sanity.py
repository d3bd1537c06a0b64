"""Model-randomisation sanity checks (igcli.metrics.sanity) against scipy, skimage and Quantus on a tiny seeded
model, and against ground truth: a map that ignores the weights is perfectly similar at every layer."""

from __future__ import annotations

import numpy as np
import pytest
import quantus
import scipy.stats
import skimage.metrics
import torch
from quantus.functions.similarity_func import correlation_spearman, ssim as quantus_ssim
from quantus.helpers.model.pytorch_model import PyTorchModel
from torch import nn

from igcli.api import attribute
from igcli.engine import Engine
from igcli.errors import InvalidArgumentError
from igcli.metrics.base import MetricBatch
from igcli.metrics.ranking import pixel_scores
from igcli.metrics.sanity import (ALL_CONSTANT, CONSTANT_MAP, MPRT, RANDOM_LOGIT, average_ranks, mprt, other_classes,
                                  random_logit, randomisable_layers, randomised_models, spearman, ssim)
from igcli.text import path_seed

CLASSES = 5


def tiny_model() -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                              nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, CLASSES))
    model[1].running_mean.fill_(0.1)  # so that re-initialising the batch norm changes the model
    model[1].running_var.fill_(2.0)
    return model.eval()


def explain(model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The run's recipe here: IG, 8 steps, black baseline, (B, C, H, W) maps."""
    return attribute(model, images, targets, method="ig", steps=8, batch_size=64, device="cpu",
                     check_completeness=False).attributions.detach()


def quantus_explain(model, inputs, targets, **_):
    return explain(model, torch.as_tensor(inputs), torch.as_tensor(targets)).numpy()


def quantus_ssim_array(a, b, **kwargs):
    # Quantus's MPRT calls .tolist() on the similarity, but its ssim returns a list when batched (a Quantus bug).
    return np.asarray(quantus_ssim(a, b, **kwargs))


@pytest.fixture(scope="module")
def case():
    images = torch.rand((4, 3, 8, 8), generator=torch.Generator().manual_seed(1))
    targets = torch.tensor([0, 1, 2, 3])
    model = tiny_model()
    return model, images, targets, explain(model, images, targets)


# -- similarities -----------------------------------------------------------------------------------------------

def test_spearman_is_scipys_ties_included():
    generator = torch.Generator().manual_seed(0)
    tied = torch.randint(0, 5, (4, 30), generator=generator).to(torch.float64)  # many ties
    other = torch.randn((4, 30), generator=generator, dtype=torch.float64)
    expected_ranks = np.stack([scipy.stats.rankdata(row) for row in tied.numpy()])
    np.testing.assert_array_equal(average_ranks(tied).numpy(), expected_ranks)
    expected = [scipy.stats.spearmanr(a, b)[0] for a, b in zip(tied.numpy(), other.numpy())]
    np.testing.assert_allclose(spearman(tied, other).numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(spearman(tied, other).numpy(), correlation_spearman(tied.numpy(), other.numpy(),
                                                                                    batched=True), atol=1e-12)
    # Guard: ranks from argsort twice (ties broken by position) are not scipy's on tied data.
    ordinal = tied.argsort(dim=1, stable=True).argsort(dim=1).to(torch.float64) + 1
    assert not np.allclose(ordinal.numpy(), expected_ranks)


def test_spearman_is_undefined_for_a_constant_or_non_finite_map():
    maps = torch.rand((3, 2, 8, 8), generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    other = maps.clone()
    other[0] = 0.5
    other[1, 0, 0, 0] = float("nan")
    rho = spearman(maps, other).numpy()
    assert np.isnan(rho[0]) and np.isnan(rho[1]) and rho[2] == pytest.approx(1.0)


def test_ssim_is_skimages_with_quantus_data_range():
    generator = torch.Generator().manual_seed(3)
    a = torch.rand((3, 2, 9, 10), generator=generator, dtype=torch.float64)
    b = a + 0.3 * torch.rand((3, 2, 9, 10), generator=generator, dtype=torch.float64)

    def data_range(x, y):
        return float(np.ptp(np.concatenate([x.ravel(), y.ravel()])))

    flat = [skimage.metrics.structural_similarity(x.ravel(), y.ravel(), data_range=data_range(x, y))
            for x, y in zip(a.numpy(), b.numpy())]
    np.testing.assert_allclose(ssim(a, b).numpy(), flat, atol=1e-12)
    np.testing.assert_allclose(ssim(a, b).numpy(), quantus_ssim(a.flatten(1).numpy(), b.flatten(1).numpy(),
                                                                batched=True), atol=1e-12)
    planes = [skimage.metrics.structural_similarity(x, y, data_range=data_range(x, y), channel_axis=0)
              for x, y in zip(a.numpy(), b.numpy())]
    np.testing.assert_allclose(ssim(a, b, shape="2d").numpy(), planes, atol=1e-12)
    one = [skimage.metrics.structural_similarity(x[0], y[0], data_range=data_range(x[0], y[0]))
           for x, y in zip(a.numpy(), b.numpy())]
    np.testing.assert_allclose(ssim(a[:, 0], b[:, 0], shape="2d").numpy(), one, atol=1e-12)
    # Guard: the population covariance (Wang et al.'s own) gives other numbers than skimage's default.
    population = [skimage.metrics.structural_similarity(x.ravel(), y.ravel(), data_range=data_range(x, y),
                                                         use_sample_covariance=False)
                  for x, y in zip(a.numpy(), b.numpy())]
    assert not np.allclose(ssim(a, b).numpy(), population, atol=1e-6)
    assert ssim(a, a).numpy() == pytest.approx(1.0)
    with pytest.raises(InvalidArgumentError, match="at least 7 wide"):
        ssim(a[..., :6, :6], b[..., :6, :6], shape="2d")


# -- randomisation ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("order", ["top-down", "bottom-up", "independent"])
def test_layers_and_weights_are_quantus(order):
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng_before = torch.random.get_rng_state()

    def steps(seed):
        return [(name, {k: v.clone() for k, v in m.state_dict().items()})
                for name, m in randomised_models(model, order=order, seed=seed)]

    ours, other_seed = steps(42), steps(7)
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # the global random state is left alone
    for key, value in model.state_dict().items():  # and so is the caller's model
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    theirs = [(name, {k: v.clone() for k, v in m.state_dict().items()}) for name, m in
              PyTorchModel(tiny_model(), channel_first=True).get_random_layer_generator(order=order.replace("-", "_"),
                                                                                        seed=42)]
    assert [name for name, _ in ours] == [name for name, _ in theirs] == [name for name, _ in
                                                                          randomisable_layers(model, order)]
    assert len(ours) == 4  # the convolutions, the batch norm, the linear layer
    for (_, mine), (_, their) in zip(ours, theirs):
        for key, value in their.items():
            torch.testing.assert_close(mine[key], value, rtol=0, atol=0)
    # Guard: another seed gives other weights.
    assert not all(torch.equal(a[k], b[k]) for (_, a), (_, b) in zip(other_seed, theirs) for k in a)


def test_mprt_is_quantus_on_the_same_maps(case):
    model, images, targets, maps = case
    ours = mprt(lambda m: (lambda x, t: explain(m, x, t)), model, images, targets, maps)
    for name, similarity in (("spearman", correlation_spearman), ("ssim", quantus_ssim_array)):
        # Quantus normalises by the batch's largest |value| by default; igcli per map (see the module's doc).
        metric = quantus.MPRT(similarity_func=similarity, disable_warnings=True,
                              normalise_func_kwargs={"normalise_axes": [1, 2, 3]})
        scores = metric(model=model, x_batch=images.numpy(), y_batch=targets.numpy(), a_batch=maps.numpy(),
                        explain_func=quantus_explain, batch_size=4)
        assert list(scores) == ["original", "6", "3", "1", "0"]
        theirs = np.array([scores[layer] for layer in ["6", "3", "1", "0"]]).T  # (B, L)
        np.testing.assert_allclose(ours[name].numpy(), theirs, atol=1e-6)  # Quantus's maps are float32
    # Guard: with Quantus's batch-wide normalisation the SSIM of an image depends on its batch and differs.
    batchwide = quantus.MPRT(similarity_func=quantus_ssim_array, disable_warnings=True)(
        model=model, x_batch=images.numpy(), y_batch=targets.numpy(), a_batch=maps.numpy(),
        explain_func=quantus_explain, batch_size=4)
    assert not np.allclose(ours["ssim"].numpy(), np.array([batchwide[k] for k in ["6", "3", "1", "0"]]).T, atol=1e-3)


def test_random_logit_is_quantus_for_its_classes(case):
    model, images, targets, maps = case
    asked = []

    def recording(model, inputs, targets, **_):
        asked.append(np.asarray(targets).copy())
        return quantus_explain(model, inputs, targets)

    for name, similarity in (("ssim", quantus_ssim), ("spearman", correlation_spearman)):
        asked.clear()
        scores = quantus.RandomLogit(num_classes=CLASSES, similarity_func=similarity, disable_warnings=True,
                                     normalise_func_kwargs={"normalise_axes": [1, 2, 3]})(
            model=model, x_batch=images.numpy(), y_batch=targets.numpy(), a_batch=maps.numpy(),
            explain_func=recording, batch_size=4)
        others = torch.as_tensor(asked[-1])  # the classes Quantus drew
        assert not torch.any(others == targets)
        ours = random_logit(lambda x, t: explain(model, x, t), images, maps, others)
        np.testing.assert_allclose(ours[name].numpy(), scores, atol=1e-6)
        # Guard: the target's own map is not what Quantus compared with.
        same = random_logit(lambda x, t: explain(model, x, t), images, maps, targets)
        assert not np.allclose(same[name].numpy(), scores, atol=1e-3)


def test_other_classes_are_uniform_others_per_image():
    targets = torch.tensor([0, 4, 2] * 200)
    seeds = list(range(600))
    drawn = other_classes(targets, CLASSES, seeds)
    assert not torch.any(drawn == targets)
    for target in (0, 4, 2):
        counts = torch.bincount(drawn[targets == target], minlength=CLASSES)
        assert counts[target] == 0 and torch.all(counts[torch.arange(CLASSES) != target] > 30)  # 50 expected
    # One image's class depends on its seed only, not on the batch around it.
    assert torch.equal(other_classes(targets[5:9], CLASSES, seeds[5:9]), drawn[5:9])
    with pytest.raises(InvalidArgumentError, match="at least 2 classes"):
        other_classes(torch.tensor([0]), 1, [0])


# -- ground truth -------------------------------------------------------------------------------------------------

def test_a_map_that_ignores_the_model_is_caught(case):
    model, images, targets, maps = case
    def ignore(_model):
        return lambda x, t: x.clone()  # the input itself: the same whatever the weights or class

    blind = mprt(ignore, model, images, targets, images)
    for name in ("spearman", "ssim"):
        np.testing.assert_allclose(blind[name].numpy(), 1.0, atol=1e-12)
        np.testing.assert_allclose(random_logit(ignore(model), images, images, (targets + 1) % CLASSES)[name].numpy(),
                                   1.0, atol=1e-12)
    honest = mprt(lambda m: (lambda x, t: explain(m, x, t)), model, images, targets, maps)
    assert torch.all(honest["spearman"].mean(dim=1) < 0.8) and torch.all(honest["ssim"].mean(dim=1) < 0.8)
    others = random_logit(lambda x, t: explain(model, x, t), images, maps, (targets + 1) % CLASSES)
    assert torch.all(others["ssim"] < 0.8) and torch.all(others["spearman"] < 0.8)


# -- the registry entries -----------------------------------------------------------------------------------------

def metric_batch(model, images, targets, maps, metric, **options) -> MetricBatch:
    def rebuild(module):
        return lambda x, t, start=None: explain(module, x, t)

    paths = [f"image{int(t)}.png" for t in targets]  # the targets differ: one path per image
    return MetricBatch(maps=maps, scores=pixel_scores(maps), paths=paths, targets=targets,
                       device=torch.device("cpu"), preprocessing=None, seeds=[path_seed(0, p) for p in paths],
                       options=metric.resolve_options(options), images=images,
                       engine=Engine(model, output="prob", batch_size=64, device=torch.device("cpu")),
                       recompute=rebuild(model), module=model, rebuild=rebuild)


def test_the_metrics_score_batches_alike_and_name_what_they_cannot_score(case):
    model, images, targets, maps = case
    maps = maps.clone()
    maps[3] = 0.0  # an all-zero map: no ranks
    for metric, values in ((MPRT, ("mprt_spearman", "mprt_ssim")),
                           (RANDOM_LOGIT, ("random_logit_ssim", "random_logit_spearman"))):
        whole = metric.compute(metric_batch(model, images, targets, maps, metric))
        parts = [metric.compute(metric_batch(model, images[s], targets[s], maps[s], metric))
                 for s in (slice(0, 1), slice(1, 4))]
        assert tuple(whole.values) == values == metric.value_names
        for name in values:
            np.testing.assert_allclose(whole.values[name], np.concatenate([p.values[name] for p in parts]),
                                       atol=1e-12)
        spearman_name = values[0] if metric is MPRT else values[1]
        assert np.isnan(whole.values[spearman_name][3]) and whole.unscorable[spearman_name][3] == CONSTANT_MAP
        assert np.isfinite(whole.values[spearman_name][:3]).all()
        assert whole.unscorable[spearman_name][:3] == [None] * 3
    scored = MPRT.compute(metric_batch(model, images, targets, maps, MPRT, layers="2", ssim="2d"))
    assert scored.curves["mprt_spearman"].shape == scored.curves["mprt_ssim"].shape == (4, 2)
    np.testing.assert_allclose(scored.values["mprt_spearman"][:3], scored.curves["mprt_spearman"][:3].mean(axis=1))


def test_mprt_skips_non_finite_maps_and_names_constant_ones(case):
    model, images, targets, maps = case
    calls = []

    def rebuild(module):  # image 0: NaN at the second layer; image 1: constant at every layer
        def recompute(x, t, start=None):
            calls.append(len(x))
            out = explain(module, x, t)
            out[1] = 0.25
            if len(calls) == 2:
                out[0, 0, 0, 0] = float("nan")
            return out
        return recompute

    batch = metric_batch(model, images, targets, maps, MPRT)
    batch.rebuild = rebuild
    scored = MPRT.compute(batch)
    assert calls == [4] * 4  # one recompute of the whole batch per layer
    assert np.isnan(scored.values["mprt_spearman"][0]) and np.isnan(scored.values["mprt_ssim"][0])
    assert scored.unscorable["mprt_spearman"][0] is None and scored.unscorable["mprt_ssim"][0] is None
    assert np.isnan(scored.values["mprt_spearman"][1]) and scored.unscorable["mprt_spearman"][1] == ALL_CONSTANT
    assert np.isfinite(scored.values["mprt_ssim"][1]) and np.isfinite(scored.values["mprt_spearman"][2:]).all()


def test_bad_options_say_which_and_what_to_do():
    with pytest.raises(InvalidArgumentError, match="-O mprt.order: choose from top-down, bottom-up, independent"):
        MPRT.resolve_options({"order": "sideways"})
    with pytest.raises(InvalidArgumentError, match="-O mprt.layers: must be 0"):
        MPRT.resolve_options({"layers": "-1"})
    with pytest.raises(InvalidArgumentError, match="-O random-logit.abs: choose from 0, 1"):
        RANDOM_LOGIT.resolve_options({"abs": "2"})
    with pytest.raises(InvalidArgumentError, match="no layer with parameters"):
        mprt(lambda m: None, nn.Sequential(nn.Flatten()), torch.zeros(1, 3, 8, 8), torch.zeros(1, dtype=torch.int64),
             torch.zeros(1, 3, 8, 8))
