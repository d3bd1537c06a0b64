"""Noise and baseline ensembles and Expected Gradients (``igcli.attribute``) against ground truth.

Ground truth here: what an ensemble must reduce to (noise level 0, identical baselines, a linear model), maps
written out by hand from the same draws (``igcli.ensembles.draws.ImageDraws``), completeness, and the Monte
Carlo error the reported ``relative_se`` claims (the moments behind it: test_moments.py). Tiny float64 models
on CPU.
Measured values quoted in comments were taken on CPU (torch 2.14, NumPy 2.4, SciPy 1.17).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import igcli
from igcli.ensembles.draws import ImageDraws, content_keys
from igcli.errors import InvalidArgumentError, ShapeError

from conftest import tiny_convnet

SHAPE = (3, 8, 8)


def convnet() -> nn.Module:
    return tiny_convnet(seed=0).double()


def linear_model(seed: int = 0) -> nn.Module:
    """logits = W flatten(x) + b: its gradient is W[target] whatever the input."""
    generator = torch.Generator().manual_seed(seed)
    layer = nn.Linear(int(np.prod(SHAPE)), 4).double()
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator, dtype=torch.float64))
    return nn.Sequential(nn.Flatten(), layer).eval()


def images(count: int = 3, seed: int = 1) -> torch.Tensor:
    return torch.rand((count, *SHAPE), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def run(model, x, target=1, **options) -> igcli.AttributionResult:
    options = {"device": "cpu", "check_completeness": False, "steps": 8, **options}
    return igcli.attribute(model, x, target, **options)


def max_rel_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual - expected).abs().max() / expected.abs().max())


def gradient(model, points: torch.Tensor, target: int, output: str = "prob") -> torch.Tensor:
    """grad of the target's probability (or logit) at every row of ``points``."""
    leaf = points.detach().clone().requires_grad_(True)
    logits = model(leaf)
    scores = torch.softmax(logits, dim=1)[:, target] if output == "prob" else logits[:, target]
    (g,) = torch.autograd.grad(scores.sum(), leaf)
    return g


# -- what an ensemble must reduce to -------------------------------------------------------------------------


@pytest.mark.parametrize("method, rule", [("ig", "riemann"), ("ig", "idgi"), ("blurig", "riemann"),
                                          ("blurig", "idgi"), ("gig", "riemann"), ("vg", "riemann")])
def test_noise_level_zero_gives_the_base_method(method, rule):
    """N copies of the input itself: the SmoothGrad mean is the map, SmoothGrad-squared its square and VarGrad
    0, with an error bar of 0. Measured: max relative difference 0 (path methods) and 4e-16 (vg)."""
    model, x = convnet(), images()
    options = {"max_sigma": 2.0} if method == "blurig" else {}
    base = run(model, x, method=method, rule=rule, **options).attributions
    mean = run(model, x, method=method, rule=rule, noise_samples=3, noise_level=0.0, **options)
    assert base.abs().max() > 0
    assert max_rel_error(mean.attributions, base) <= 1e-12
    assert torch.all(mean.relative_se <= 1e-12)
    squared = run(model, x, method=method, rule=rule, noise_samples=3, noise_level=0.0,
                  noise_aggregate="smoothgrad-sq", **options).attributions
    assert max_rel_error(squared, base.square()) <= 1e-12
    variance = run(model, x, method=method, rule=rule, noise_samples=3, noise_level=0.0, noise_aggregate="vargrad",
                   **options).attributions
    assert float(variance.abs().max()) <= 1e-24 * float(base.square().max()) + 1e-300


@pytest.mark.parametrize("method", ["ig", "gig"])
def test_listed_baselines_average_the_single_runs(method):
    """K identical baselines are one; ``["black", "white"]`` is the mean of the black and the white run."""
    model, x = convnet(), images()
    black = run(model, x, method=method, baseline="black").attributions
    white = run(model, x, method=method, baseline="white").attributions
    three_black = run(model, x, method=method, baseline=["black"] * 3)
    assert max_rel_error(three_black.attributions, black) <= 1e-12
    both = run(model, x, method=method, baseline=["black", "white"])
    assert max_rel_error(both.attributions, (black + white) / 2) <= 1e-12
    assert max_rel_error(black, white) > 0.1  # the two runs differ, so the mean is a real test
    assert torch.isnan(both.relative_se).all()  # nothing was drawn: no error bar
    assert both.settings["baseline"] == ["black", "white"]


def test_noise_over_listed_baselines_aggregates_the_per_draw_mean():
    """aggregate over noise draws n of (mean over baselines k): SmoothGrad-squared squares the mean of the
    black and white maps of each noisy copy, not each map (hand-written from the same noise)."""
    model, x = convnet(), images(2)
    level, count = 0.2, 3
    result = run(model, x, method="ig", baseline=["black", "white"], noise_samples=count, noise_level=level,
                 noise_aggregate="smoothgrad-sq", seed=5, keys=["a", "b"])
    draws = ImageDraws(5, ["a", "b"])
    sigma = level * (x.flatten(1).amax(1) - x.flatten(1).amin(1)).view(-1, 1, 1, 1)
    expected = torch.zeros_like(x)
    for n in range(count):
        noisy = x + sigma * draws.normal(n, SHAPE).double()
        maps = [run(model, noisy, method="ig", baseline=spec).attributions for spec in ("black", "white")]
        expected += ((maps[0] + maps[1]) / 2).square() / count
    assert max_rel_error(result.attributions, expected) <= 1e-12


def test_vargrad_of_a_linear_model():
    """A linear model's gradient is W[t] at every input, so VarGrad of the plain gradient is exactly 0; its
    IG map from black, W[t] (x + sigma eps_n), has VarGrad W[t]^2 sigma^2 var_n(eps_n) (population variance
    of the very draws made): both exact, and the right-Riemann sum is exact on a linear model."""
    model, x = linear_model(), images()
    vg = run(model, x, method="vg", output="logit", noise_samples=8, noise_aggregate="vargrad")
    assert float(vg.attributions.abs().max()) == 0.0
    ig = run(model, x, method="ig", output="logit", steps=4, noise_samples=8, noise_level=0.1,
             noise_aggregate="vargrad", seed=3)
    draws = ImageDraws(3, content_keys(x))  # the default keys: a hash of each image
    eps = torch.stack([draws.normal(n, SHAPE) for n in range(8)]).double()  # (N, B, C, H, W)
    sigma = 0.1 * (x.flatten(1).amax(1) - x.flatten(1).amin(1)).view(-1, 1, 1, 1)
    weight = model[1].weight[1].detach().view(SHAPE)
    expected = weight.square() * sigma.square() * eps.var(dim=0, unbiased=False)
    assert max_rel_error(ig.attributions, expected) <= 1e-9



@pytest.mark.parametrize("options", [dict(noise_samples=4, noise_level=0.3), dict(baseline=["black", "white"]),
                                     dict(baseline_samples=3)])
def test_linear_ensembles_keep_completeness(options):
    """A mean of IG maps sums to the mean of their score changes (Sundararajan et al. 2017, Proposition 1, per
    member): with noise, mean_n f(x + eps_n) - f(x'); the completeness gap stays at quadrature error (Gauss-
    Legendre, 32 points: measured <= 3e-13). Checked by hand for the noise ensemble."""
    model, x = convnet(), images(3)
    if "baseline_samples" in options:
        options = {**options, "references": images(5, seed=9)}
    result = run(model, x, method="ig", steps=32, schedule="gauss-legendre", seed=1, **options)
    assert torch.all(result.completeness_gap < 1e-10), result.completeness_gap
    if "noise_samples" in options:
        draws = ImageDraws(1, content_keys(x))
        sigma = 0.3 * (x.flatten(1).amax(1) - x.flatten(1).amin(1)).view(-1, 1, 1, 1)
        with torch.no_grad():
            score = lambda z: torch.softmax(model(z), dim=1)[:, 1]  # noqa: E731
            change = sum(score(x + sigma * draws.normal(n, SHAPE).double()) for n in range(4)) / 4
            change = change - score(torch.zeros_like(x))
        assert torch.allclose(result.attributions.flatten(1).sum(1), change, rtol=1e-10, atol=1e-15)
        assert torch.allclose(result.baseline_scores.double(), score(torch.zeros_like(x[:1])).expand(3).double())


def test_nonlinear_aggregates_and_expected_gradients_report_no_completeness():
    """Squares and variances of maps explain no score change, and Expected Gradients' random alphas have no
    path start score: the gap is NaN there rather than a number that means nothing."""
    model, x = convnet(), images(2)
    for aggregate in ("smoothgrad-sq", "vargrad"):
        assert torch.isnan(run(model, x, noise_samples=3, noise_aggregate=aggregate).completeness_gap).all()
    eg = run(model, x, method="eg", samples=3, references=images(4, seed=9))
    assert torch.isnan(eg.completeness_gap).all() and torch.isnan(eg.baseline_scores).all()

# -- the error bar -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method, aggregate, low, high", [
    ("vg", "smoothgrad", 1.85, 2.15), ("ig", "smoothgrad", 1.85, 2.15), ("ig", "smoothgrad-sq", 1.8, 2.2),
    ("vg", "vargrad", 1.6, 2.1),
])
def test_relative_se_shrinks_like_one_over_sqrt_n(method, aggregate, low, high):
    """relative_se at N = 16 over N = 64 should be sqrt(64 / 16) = 2; mean over 6 images. Measured: 2.03 (vg),
    1.99 (ig), 1.94 (ig, squared), 1.76 (vargrad). VarGrad's ratio sits below 2 because its standard error is
    a plug-in estimate from the sample fourth moment, biased low at small N (about 12% at N = 16 for Gaussian
    draws, see test_moments.py), and the N = 16 variance itself is 15/16 of the
    N = 64 one's 63/64."""
    model, x = convnet(), images(6, seed=3)
    se = {n: run(model, x, method=method, steps=4, noise_samples=n, noise_aggregate=aggregate).relative_se
          for n in (16, 64)}
    ratio = float((se[16] / se[64]).mean())
    assert low <= ratio <= high, ratio


@pytest.mark.parametrize("aggregate, tolerance", [("smoothgrad", 0.1), ("vargrad", 0.25)])
def test_relative_se_matches_the_spread_over_seeds(aggregate, tolerance):
    """The reported error bar against the truth it estimates: the spread of the map over 30 seeds (N = 16
    noise draws each). Measured ||empirical SD|| / mean ||SE||: 0.98 and 1.00 (SmoothGrad), 1.10 and 1.13
    (VarGrad, whose SE is biased low at small N; see above)."""
    model, x = convnet(), images(2, seed=3)
    maps, errors = [], []
    for seed in range(30):
        result = run(model, x, method="vg", noise_samples=16, noise_aggregate=aggregate, seed=seed)
        maps.append(result.attributions)
        errors.append(result.relative_se * result.attributions.flatten(1).norm(dim=1))
    maps = torch.stack(maps)
    spread = maps.std(dim=0, unbiased=True).flatten(1).norm(dim=1)
    reported = torch.stack(errors).mean(dim=0)
    ratio = spread / reported
    assert torch.all((ratio > 1 - tolerance) & (ratio < 1 + 1.5 * tolerance)), ratio


# -- determinism ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("options", [
    dict(method="ig", noise_samples=4, noise_aggregate="smoothgrad-sq"),
    dict(method="eg", samples=6),
    dict(method="ig", baseline_samples=3),
])
def test_draws_follow_the_image_key_not_the_batch(options):
    """The same keys and seed give the same map alone, in a batch, in any order and any chunking; another
    seed gives another map."""
    model, x = convnet(), images(3)
    references = images(5, seed=9)
    if options["method"] == "eg" or "baseline_samples" in options:
        options = {**options, "references": references}
    keys = ["cat.png", "dog.png", "owl.png"]
    together = run(model, x, keys=keys, seed=2, **options).attributions
    for i in range(3):
        alone = run(model, x[i:i + 1], keys=keys[i:i + 1], seed=2, **options).attributions
        assert max_rel_error(alone[0], together[i]) <= 1e-12
    order = [2, 0, 1]
    shuffled = run(model, x[order], keys=[keys[i] for i in order], seed=2, batch_size=3, **options).attributions
    assert max_rel_error(shuffled, together[order]) <= 1e-12
    other_seed = run(model, x, keys=keys, seed=3, **options).attributions
    assert max_rel_error(other_seed, together) > 1e-3
    by_content = run(model, x, seed=2, **options).attributions  # default keys: a hash of each image's values
    assert max_rel_error(by_content, run(model, x, keys=content_keys(x), seed=2, **options).attributions) == 0
    assert max_rel_error(by_content, together) > 1e-3
    for i in range(3):  # so an image alone gets its draws in a batch too, without keys
        alone = run(model, x[i:i + 1], seed=2, **options).attributions
        assert max_rel_error(alone[0], by_content[i]) <= 1e-12


def test_keys_must_match_the_images():
    with pytest.raises(ShapeError, match="keys"):
        run(convnet(), images(2), method="ig", noise_samples=2, keys=["a"])


# -- Expected Gradients ------------------------------------------------------------------------------------------


def test_expected_gradients_equals_the_estimator_written_out():
    """Erion et al. 2021 Eq. 4 by hand from the same draws: sample k of image i takes reference
    references(0, K, R)[i, k] and alpha alphas(0, k)[i]; map = mean_k (x - x'_k) grad f(x'_k + alpha (x - x'_k))."""
    model, x, references = convnet(), images(2), images(6, seed=9)
    count, keys, seed = 5, ["a", "b"], 4
    result = run(model, x, method="eg", samples=count, references=references, keys=keys, seed=seed)
    draws = ImageDraws(seed, keys)
    indices = draws.references(0, count, len(references))
    expected = torch.zeros_like(x)
    for k in range(count):
        baseline = references[indices[:, k]]
        alpha = draws.alphas(0, k).view(-1, 1, 1, 1)
        expected += (x - baseline) * gradient(model, baseline + alpha * (x - baseline), 1) / count
    assert len(set(indices[0].tolist())) == count  # distinct references while K <= R
    assert max_rel_error(result.attributions, expected) <= 1e-12
    assert result.settings["samples"] == count and result.settings["method"] == "eg"



def test_expected_gradients_from_uniform_draws_a_fresh_baseline_per_sample():
    """``baseline="uniform"`` without references: sample k of image i starts from its own uniform draw,
    ``uniform_pixels(0, k)[i]`` (hand-written estimator from those draws)."""
    model, x, count = convnet(), images(2), 4
    result = run(model, x, method="eg", samples=count, baseline="uniform", keys=["a", "b"], seed=2)
    draws = ImageDraws(2, ["a", "b"])
    expected = torch.zeros_like(x)
    for k in range(count):
        baseline = draws.uniform_pixels(0, k, SHAPE).double()
        alpha = draws.alphas(0, k).view(-1, 1, 1, 1)
        expected += (x - baseline) * gradient(model, baseline + alpha * (x - baseline), 1) / count
    assert max_rel_error(result.attributions, expected) <= 1e-12
    assert max_rel_error(draws.uniform_pixels(0, 0, SHAPE), draws.uniform_pixels(0, 1, SHAPE)) > 0.1

def test_expected_gradients_with_one_reference_approaches_ig():
    """With every reference the same baseline, EG is IG's path integral estimated at random alphas: it must
    land within its own Monte Carlo error of IG (64-point Gauss-Legendre, exact here to ~1e-12). The
    expected squared distance is ||SE||^2, so 3 ||SE|| is a generous bound. Measured with K = 400:
    ||EG - IG|| / ||IG|| = 0.0021 and 0.0004 against relative_se 0.0020 and 0.0012; IG from black is 0.8 to
    0.9 away, so the bound tells the baselines apart."""
    model, x = convnet(), images(2)
    baseline = torch.full((1, *SHAPE), 0.3, dtype=torch.float64)
    ig = run(model, x, method="ig", baseline=baseline, steps=64, schedule="gauss-legendre").attributions
    for eg in (run(model, x, method="eg", samples=400, references=baseline, seed=1),
               run(model, x, method="eg", samples=400, baseline=baseline, seed=1)):
        distance = (eg.attributions - ig).flatten(1).norm(dim=1) / ig.flatten(1).norm(dim=1)
        assert torch.all(eg.relative_se < 0.1)
        assert torch.all(distance <= 3 * eg.relative_se), (distance, eg.relative_se)
        black = run(model, x, method="ig", baseline="black", steps=64, schedule="gauss-legendre").attributions
        elsewhere = (eg.attributions - black).flatten(1).norm(dim=1) / ig.flatten(1).norm(dim=1)
        assert torch.all(elsewhere > 30 * eg.relative_se)


def test_expected_gradients_refusals():
    model, x, references = convnet(), images(2), images(4, seed=9)
    with pytest.raises(InvalidArgumentError, match="idgi"):
        run(model, x, method="eg", rule="idgi", references=references)
    with pytest.raises(InvalidArgumentError, match="--baseline-samples"):
        run(model, x, method="eg", references=references, baseline_samples=2)
    with pytest.raises(InvalidArgumentError, match="not several"):
        run(model, x, method="eg", baseline=["black", "white"])
    with pytest.raises(InvalidArgumentError, match="samples"):
        run(model, x, method="eg", samples=0)


@pytest.mark.parametrize("options, message", [
    (dict(method="ig", baseline_samples=2), "--baseline-samples needs --baseline-dir"),
    (dict(method="ig", references=True), "needs --baseline-samples"),
    (dict(method="vg", references=True, baseline_samples=2), "takes no baseline"),
    (dict(method="blurig", baseline=["black", "white"]), "takes no baseline"),
    (dict(method="ig", references=True, baseline_samples=0), ">= 1"),
    (dict(method="ig", references=True, baseline_samples=2, baseline=["black", "white"]), "one or the other"),
    (dict(method="ig", noise_level=0.1), "needs --noise-samples"),
    (dict(method="ig", noise_aggregate="vargrad"), "needs --noise-samples"),
    (dict(method="ig", noise_samples=2, noise_aggregate="mean"), "choose from"),
    (dict(method="ig", noise_samples=-1), ">= 0"),
    (dict(method="ig", noise_samples=2, noise_level=float("nan")), "finite"),
    (dict(method="vg", noise_samples=1, noise_aggregate="vargrad"), "N >= 2"),
])
def test_ensemble_refusals(options, message):
    if options.get("references") is True:
        options = {**options, "references": images(4, seed=9)}
    with pytest.raises(InvalidArgumentError, match=message):
        run(convnet(), images(2), **options)


# -- baseline ensembles from references -----------------------------------------------------------------------


def test_reference_ensemble_is_the_mean_of_ig_runs_from_the_drawn_references():
    """IG with K references drawn per image equals the mean of K plain IG runs from those references (given
    as tensor baselines), and with noise each noisy copy draws its own K (hand-written from the draws)."""
    model, x, references = convnet(), images(2), images(7, seed=9)
    count, keys = 3, ["p", "q"]
    result = run(model, x, method="ig", references=references, baseline_samples=count, keys=keys, seed=6)
    draws = ImageDraws(6, keys)
    indices = draws.references(0, count, len(references))
    expected = sum(run(model, x, method="ig", baseline=references[indices[:, k]]).attributions
                   for k in range(count)) / count
    assert max_rel_error(result.attributions, expected) <= 1e-12
    assert result.settings["baseline_samples"] == count
    assert torch.all(result.relative_se > 0) and torch.all(torch.isfinite(result.relative_se))

    noisy = run(model, x, method="ig", references=references, baseline_samples=count, keys=keys, seed=6,
                noise_samples=2, noise_level=0.1)
    sigma = 0.1 * (x.flatten(1).amax(1) - x.flatten(1).amin(1)).view(-1, 1, 1, 1)
    expected = torch.zeros_like(x)
    for n in range(2):
        indices = draws.references(n, count, len(references))
        copy = x + sigma * draws.normal(n, SHAPE).double()
        for k in range(count):
            expected += run(model, copy, method="ig", baseline=references[indices[:, k]]).attributions / (2 * count)
    assert max_rel_error(noisy.attributions, expected) <= 1e-12


class RowCounter(nn.Module):
    """``inner``, counting the rows it is evaluated on (forward passes, with or without a backward)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.rows = inner, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows += x.shape[0]
        return self.inner(x)


@pytest.mark.parametrize(("rule", "baseline_once", "end_per_copy"), [("riemann", 1, 0), ("idgi", 0, 1)])
def test_a_noise_ensemble_evaluates_no_row_a_single_run_would_not(rule, baseline_once, end_per_copy):
    """N noisy copies cost N single runs' rows and no more. ``right`` (Riemann): f at the black baseline is
    scored once per run, f at a noisy input comes with the gradient at alpha = 1. IDGI's ``left``: f at the
    baseline comes with the gradient at alpha = 0, f at each noisy input is scored once per copy."""
    batch, samples, steps = 3, 4, 8
    model = RowCounter(convnet())
    run(model, images(batch), method="ig", rule=rule, steps=steps, noise_samples=samples)
    prologue = batch  # f(x) of the clean images
    expected = prologue + baseline_once * batch + samples * batch * steps + end_per_copy * samples * batch
    assert model.rows == expected
