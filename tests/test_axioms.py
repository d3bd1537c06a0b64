"""The attribution axioms of Sundararajan et al. 2017, for every registered method x rule: completeness
(Proposition 1), sensitivity (a) (§2.1) and (b) ("dummy", §4.1), symmetry preservation (§4.2, Theorem 2),
linearity (§4.1) and implementation invariance (§2.2).

Every method comes from the registry (``igcli.methods.method_names()``), and which axioms apply to it is read
from the settings ``igcli.api.describe`` reports (its path, whether it takes a baseline, which rules it
accepts), so a plugin method is checked with no edit here. Where an axiom holds only for some methods the
condition is written once, below, with its reason. Models are tiny, seeded and float64, so "equal" means
equal to float64 rounding.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import igcli
from igcli.methods import get_method
from igcli.api import describe
from igcli.errors import InvalidArgumentError
from igcli.methods import RULE_NAMES, method_names
from igcli.paths.blur import BlurPath
from igcli.schedules import SCHEDULE_NAMES

SHAPE = (3, 8, 8)  # (C, H, W) of every test image
TARGET = 0


# -- which axioms apply to which method ----------------------------------------------------------------------


def rules_of(method: str) -> list[str]:
    """The rules ``method`` accepts: those ``describe`` does not refuse (``vg`` takes only ``riemann``)."""
    accepted = []
    for rule in RULE_NAMES:
        try:
            describe(method, rule)
        except InvalidArgumentError:
            continue
        accepted.append(rule)
    return accepted


def has_path(method: str) -> bool:
    """Whether ``method`` integrates along a path it reports, with a schedule and a rule; ``vg`` is the gradient
    at the input, ``eg`` (Expected Gradients) draws its points at random (see its own cases here)."""
    return describe(method)["path"] is not None


def takes_baseline(method: str) -> bool:
    """Whether the caller chooses where the path starts (``ig``, ``gig``); Blur IG starts at the blurred input."""
    return "baseline" in describe(method)


# Guided IG picks each step from the model's gradient (Kapishnikov et al. 2021, §4.2): f1, f2 and a f1 + b f2
# get three different paths, so the attributions of the sum are not the sum over one shared path.
MODEL_DEPENDENT_PATHS = frozenset({"guided"})


def linearity_applies(method: str, rule: str) -> bool:
    """Linearity (§4.1) needs attributions linear in the gradient, along a path the model does not
    choose: the Riemann rule (IDGI weighs each cell by g^2 / |g|^2, not linear in f; Yang et al. 2023, §3)
    on a model-independent path, or no path at all."""
    return rule == "riemann" and describe(method)["path"] not in MODEL_DEPENDENT_PATHS


# Options measured in pixels, scaled to 8 x 8 images (the default max_sigma of 50 blurs them flat, and the
# Blur IG integrand then sits in the last few percent of the path); given only to methods that take them.
TINY_OPTIONS = {"max_sigma": 3.0}


def options_for(method: str) -> dict:
    return {name: value for name, value in TINY_OPTIONS.items() if name in describe(method)}


METHODS = method_names()
COMBOS = [(method, rule) for method in METHODS for rule in rules_of(method)]
PATH_METHODS = [method for method in METHODS if has_path(method)]
NO_PATH_METHODS = [method for method in METHODS if not has_path(method)]
LINEAR = [combo for combo in COMBOS if linearity_applies(*combo)]
NOT_LINEAR = [combo for combo in COMBOS if not linearity_applies(*combo)]
# The per-feature symmetry axiom asks for equal baseline values, which only the caller can arrange.
START_CHOSEN = [(m, r) for m, r in COMBOS if takes_baseline(m) or not has_path(m)]
IDGI_METHODS = [method for method in PATH_METHODS if "idgi" in rules_of(method)]
STRAIGHT_METHODS = [method for method in PATH_METHODS if describe(method)["path"] == "straight"]
BLUR_COMBOS = [(m, r) for m, r in COMBOS if describe(m)["path"] == "blur"]


def attribute(model, images, method, rule="riemann", *, steps=8, schedule="midpoint", baseline="black",
              output="logit", target=TARGET):
    """igcli.attribute on the CPU (deterministic on any machine) with the tiny-image options."""
    return igcli.attribute(model, images, target, method=method, rule=rule, steps=steps, schedule=schedule,
                           baseline=baseline, output=output, device="cpu", **options_for(method))


def test_the_registry_is_covered():
    # Every registered method meets at least completeness (or the no-path check), dummy and invariance.
    assert METHODS and set(PATH_METHODS) | set(NO_PATH_METHODS) == set(METHODS)
    assert all(rules_of(method) for method in METHODS)
    assert ("vg", "riemann") in COMBOS and ("vg", "idgi") not in COMBOS


# -- tiny models ---------------------------------------------------------------------------------------------


def seeded(seed: int, build) -> nn.Module:
    """``build()`` under ``torch.manual_seed(seed)``, without touching the global RNG; float64, eval mode."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = build()
    return model.double().eval()


def convnet(seed: int = 0, activation=nn.Tanh) -> nn.Module:
    """A smooth two-layer CNN: (R, 3, 8, 8) -> (R, 3) logits."""
    return seeded(seed, lambda: nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), activation(),
        nn.Conv2d(4, 4, 3, padding=1, stride=2), nn.Softplus(),
        nn.Flatten(), nn.Linear(64, 3),
    ))


def random_images(seed: int, batch: int = 2, scale: float = 1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand((batch, *SHAPE), generator=generator, dtype=torch.float64) * scale


class OnePixel(nn.Module):
    """logits (f(x[0, p], x[1, p]), 0): a hand-made function of the two channels at one pixel p."""

    def __init__(self, f, pixel: tuple[int, int] = (3, 3)) -> None:
        super().__init__()
        self.f, self.pixel = f, pixel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value = self.f(x[:, 0, self.pixel[0], self.pixel[1]], x[:, 1, self.pixel[0], self.pixel[1]])
        return torch.stack([value, torch.zeros_like(value)], dim=1)


def one_hot_image(pixel: tuple[int, int], value: float) -> torch.Tensor:
    """(1, C, H, W) zeros but ``value`` at channel 0, ``pixel``."""
    x = torch.zeros((1, *SHAPE), dtype=torch.float64)
    x[0, 0][pixel] = value
    return x


# -- completeness (§3, Proposition 1) ------------------------------------------------------------------------


@pytest.mark.parametrize("output", ["logit", "prob"])
@pytest.mark.parametrize("schedule", [*SCHEDULE_NAMES, "alphas"])
@pytest.mark.parametrize("method", IDGI_METHODS)
def test_idgi_is_complete_to_float_precision_on_every_schedule(method, schedule, output):
    # each IDGI cell explains exactly its own change in f (Yang et al. 2023, §3), so the sum telescopes
    model, x, baseline = convnet(1), random_images(1), random_images(2)
    if schedule == "alphas":
        schedule = [0.0, 0.05, 0.3, 0.35, 0.8, 1.0]  # an uneven partition (a RiemannOpt-style left sum)
    result = attribute(model, x, method, "idgi", steps=5, schedule=schedule, baseline=baseline, output=output)
    assert float(result.completeness_gap.max()) < 1e-10, result.completeness_gap
    total = result.attributions.flatten(1).sum(1)
    assert torch.allclose(total.float(), result.scores - result.baseline_scores, rtol=1e-5, atol=1e-7)
    if takes_baseline(method):  # ground truth, computed here in float64: f(x) - f(x')
        with torch.no_grad():
            scores = model(torch.cat([x, baseline]))
            if output == "prob":
                scores = scores.softmax(1)
        change = scores[:2, TARGET] - scores[2:, TARGET]
        assert torch.allclose(total, change, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("method", STRAIGHT_METHODS)
def test_idgi_loses_only_a_zero_gradient_cells_change_and_reports_it(method):
    # Algorithm 1 divides a cell's change by sum(g^2): a cell whose gradient at its sample point is exactly 0
    # adds nothing (as in the paper; README, "What is computed, exactly"). Where f starts to change inside such
    # a cell (a ReLU kink) that change is lost, and the completeness gap says exactly how much.
    hinge = OnePixel(lambda a, b: torch.relu(a - 1))  # flat (gradient exactly 0) below 1, then rising
    x = one_hot_image(hinge.pixel, 2.2)  # left points at 0, 0.275, ..., 0.825 (gradient 0), 1.1: that cell rises 0.1
    result = attribute(hinge, x, method, "idgi", steps=8, schedule="left")
    change = 1.2  # f(x) - f(x') = relu(2.2 - 1)
    assert float(result.attributions.sum()) == pytest.approx(change - 0.1, rel=1e-6)  # float32 images
    assert float(result.completeness_gap[0]) == pytest.approx(0.1 / change, rel=1e-6)


@pytest.mark.parametrize("schedule", ["midpoint", "gauss-legendre"])
@pytest.mark.parametrize("method", PATH_METHODS)
def test_riemann_completeness_gap_falls_at_least_at_first_order(method, schedule):
    # The straight and blur paths are smooth: midpoints converge at second order, Gauss-Legendre faster
    # (to rounding within 8 steps on the straight line). Guided IG takes the gradient at the start of each
    # of its steps, whatever the schedule: a left sum, first order. So every doubling of the steps must cut
    # the gap by well over 1.5x, down to rounding; a wrong path derivative would leave it stuck.
    model, x, baseline = convnet(0), random_images(0), random_images(3)
    gaps = [
        float(attribute(model, x, method, steps=steps, schedule=schedule, baseline=baseline).completeness_gap.max())
        for steps in (8, 16, 32, 64)
    ]
    assert all(after <= max(before / 1.6, 1e-12) for before, after in zip(gaps, gaps[1:])), gaps


@pytest.mark.parametrize("method", NO_PATH_METHODS)
def test_a_method_without_a_path_reports_no_completeness_gap(method):
    # completeness is about a path's end points; the gradient at the input has none
    result = attribute(convnet(0), random_images(0), method)
    assert torch.isnan(result.completeness_gap).all() and torch.isnan(result.baseline_scores).all()


# -- sensitivity (a) (§2.1) ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "rule"), START_CHOSEN)
def test_a_feature_that_alone_changes_the_output_gets_attribution_unless_the_method_has_no_path(method, rule):
    # Input 2 and baseline 0 differ in one feature only, and f goes from 0 to 1. A path method gets all of it
    # (completeness, and every other feature is a dummy); the gradient at the input is 0 there (saturated),
    # which is §2.1's case against gradients.
    saturating = OnePixel(lambda a, b: 1 - torch.relu(1 - a))  # §2.1's example, flat for a >= 1
    x = one_hot_image(saturating.pixel, 2.0)
    if get_method(method).stochastic_samples:
        # Expected Gradients with one baseline: 2 x (the share of K uniform alphas below 1/2), 1 in expectation,
        # with standard error 1 / sqrt(K); the other features' gradients are exactly 0.
        samples = 4096
        result = igcli.attribute(saturating, x, TARGET, method=method, samples=samples, output="logit", device="cpu")
        torch.testing.assert_close(result.attributions, one_hot_image(saturating.pixel, 1.0), rtol=0,
                                   atol=4 / samples**0.5)
        return
    result = attribute(saturating, x, method, rule)  # black baseline
    # 8 midpoints straddle the kink at alpha = 1/2 evenly, and it falls on a cell boundary: the sum is exact
    expected = one_hot_image(saturating.pixel, 1.0 if has_path(method) else 0.0)
    torch.testing.assert_close(result.attributions, expected, rtol=0, atol=1e-15)


# -- sensitivity (b), "dummy" (§4.1) -------------------------------------------------------------------------


class Masked(nn.Module):
    """``inner`` applied to the input times a 0/1 ``mask``: f does not depend on the masked-out features."""

    def __init__(self, inner: nn.Module, mask: torch.Tensor) -> None:
        super().__init__()
        self.inner = inner
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x * self.mask)


@pytest.mark.parametrize(("method", "rule"), COMBOS)
def test_a_feature_the_model_ignores_gets_exactly_zero(method, rule):
    mask = torch.ones(SHAPE, dtype=torch.float64)
    mask[1] = 0  # a whole channel
    mask[:, 2:5, 3:6] = 0  # and a region of pixels in every channel
    model = Masked(convnet(2), mask)
    # input and baseline differ on the dummy features too, so a path moves them
    x, baseline = random_images(4), random_images(5)
    result = attribute(model, x, method, rule, baseline=baseline, output="prob")
    dummy = (mask == 0).expand_as(result.attributions)
    assert torch.count_nonzero(result.attributions[dummy]) == 0
    assert torch.count_nonzero(result.attributions[~dummy]) == (~dummy).sum()  # the others are not all zero


# -- symmetry-preserving (§4.2, Theorem 2) -------------------------------------------------------------------


class PairSymmetric(nn.Module):
    """A CNN that sees channels 0 and 1 only through their sum and product at each pixel: f is symmetric in
    (x[0, p], x[1, p]) for every pixel p, each pair on its own, yet d f / d x[0, p] != d f / d x[1, p] where
    the two differ (the product term), so an unequal pair does get unequal attributions."""

    def __init__(self, seed: int = 3) -> None:
        super().__init__()
        self.inner = convnet(seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(torch.stack([x[:, 0] + x[:, 1], x[:, 0] * x[:, 1], x[:, 2]], dim=1))


def assert_pairs_equal(attributions: torch.Tensor, where: torch.Tensor) -> None:
    first, second = attributions[:, 0][:, where], attributions[:, 1][:, where]
    scale = float(attributions.abs().max())
    assert scale > 0
    torch.testing.assert_close(first, second, rtol=1e-12, atol=1e-14 * scale)


@pytest.mark.parametrize(("method", "rule"), COMBOS)
def test_identical_channels_of_a_channel_symmetric_model_get_identical_maps(method, rule):
    # The whole of channels 0 and 1 swapped at once leaves f and the input unchanged, with the black
    # baseline too. Every path here maps each channel by itself, so it keeps the two channels equal all the
    # way (Blur IG included: it blurs channels alike), and equal points have equal gradients.
    x = random_images(6)
    x[:, 1] = x[:, 0]
    result = attribute(PairSymmetric(), x, method, rule, output="prob")
    assert_pairs_equal(result.attributions, torch.ones(SHAPE[1:], dtype=torch.bool))
    assert not torch.allclose(result.attributions[:, 0], result.attributions[:, 2])


@pytest.mark.parametrize(("method", "rule"), START_CHOSEN)
def test_symmetric_features_with_equal_input_and_baseline_values_get_equal_attributions(method, rule):
    # The axiom proper: only the symmetric pairs are equal, in the input and in the baseline; everything
    # else differs. On the straight line the pair stays equal at every point, so its gradients are equal
    # (this is why IG preserves symmetry for every function, Theorem 2). Guided IG moves the features with
    # the smallest |gradient| first: an equal pair has equal gradients, is picked together and moves
    # together, so it stays equal too (Kapishnikov et al. 2021, §4.4 and their supplement).
    generator = torch.Generator().manual_seed(7)
    pairs = torch.rand(SHAPE[1:], generator=generator) < 0.5  # the pixels p whose (x[0, p], x[1, p]) are equal
    x, baseline = random_images(8), random_images(9)
    for image in (x, baseline):
        image[:, 1][:, pairs] = image[:, 0][:, pairs]
    result = attribute(PairSymmetric(), x, method, rule, baseline=baseline, output="prob")
    assert_pairs_equal(result.attributions, pairs)
    unequal = result.attributions[:, 0][:, ~pairs] - result.attributions[:, 1][:, ~pairs]
    assert float(unequal.abs().min()) > 0  # where the premise fails, so does the equality


@pytest.mark.parametrize(("method", "rule"), BLUR_COMBOS)
def test_the_blur_path_breaks_symmetry_of_single_features(method, rule):
    # Theorem 2: among path methods only the straight line preserves symmetry for every function. Blur IG's
    # point at pixel p mixes in p's neighbours, which the symmetry of (x[0, p], x[1, p]) does not constrain.
    # Here the pair is equal in the input and at the path start (the fully blurred input) but not in between:
    # channel 1 differs from channel 0 at two neighbours (distances 1 and 2) weighted so that the widest blur
    # cancels them at p and narrower ones do not. For f = x[0, p] x[1, p] (bilinear) the two attributions
    # differ by twice the area the path encloses in their plane. (Whole symmetric images: see above.)
    product = OnePixel(lambda a, b: a * b)
    max_sigma, p, near, far = options_for(method)["max_sigma"], product.pixel, (3, 4), (3, 5)
    unit = torch.zeros((2, 1, *SHAPE[1:]), dtype=torch.float64)
    unit[0, 0][near], unit[1, 0][far] = 1.0, 1.0
    weights = BlurPath(unit, max_sigma).start()[:, 0, p[0], p[1]]  # how the widest blur weighs each at p
    x = random_images(10)[:1, :2]
    x[0, 1] = x[0, 0]
    x[0, 1][near] += 1.0
    x[0, 1][far] -= float(weights[0] / weights[1])
    start = BlurPath(x, max_sigma).start()[0, :, p[0], p[1]]
    assert x[0, 0][p] == x[0, 1][p] and torch.isclose(start[0], start[1], rtol=0, atol=1e-14)  # the premise

    result = attribute(product, x, method, rule, steps=32, schedule="gauss-legendre")
    pair = result.attributions[0, :, p[0], p[1]]
    # the sum has converged (gap ~3e-5 here), so the asymmetry (~20%) is the path's, not the quadrature's
    assert float(result.completeness_gap[0]) < 1e-4
    assert abs(float(pair[0] - pair[1])) > 0.05 * float(pair.abs().max()), pair


# -- linearity (§4.1) ----------------------------------------------------------------------------------------


class Combination(nn.Module):
    """logits a f1(x) + b f2(x)."""

    def __init__(self, first: nn.Module, second: nn.Module, a: float, b: float) -> None:
        super().__init__()
        self.first, self.second, self.a, self.b = first, second, a, b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a * self.first(x) + self.b * self.second(x)


def linear_parts(method, rule, a=0.7, b=-1.3):
    """(attributions of a f1 + b f2, a attr(f1) + b attr(f2)), logits, one shared baseline."""
    first, second = convnet(4), convnet(5, activation=nn.Softplus)
    x, baseline = random_images(11), random_images(12)

    def attr(model):
        return attribute(model, x, method, rule, baseline=baseline, output="logit").attributions

    return attr(Combination(first, second, a, b)), a * attr(first) + b * attr(second)


@pytest.mark.parametrize(("method", "rule"), LINEAR)
def test_attributions_of_a_linear_combination_are_the_combination(method, rule):
    combined, combination = linear_parts(method, rule)
    torch.testing.assert_close(combined, combination, rtol=1e-10, atol=1e-12 * float(combination.abs().max()))


@pytest.mark.parametrize(("method", "rule"), NOT_LINEAR)
def test_linearity_fails_where_it_is_declared_not_to_apply(method, rule):
    # keeps linearity_applies() honest: what it leaves out really is not linear
    combined, combination = linear_parts(method, rule)
    assert float((combined - combination).abs().max()) > 1e-3 * float(combination.abs().max())


# -- implementation invariance (§2.2) ------------------------------------------------------------------------


def relu_net(seed: int = 6) -> nn.Sequential:
    """conv, ReLU, conv, ReLU, linear: a piecewise-linear CNN with 4 hidden channels."""
    return seeded(seed, lambda: nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1, stride=2), nn.ReLU(),
        nn.Flatten(), nn.Linear(64, 3),
    ))


def with_identity_layer(net: nn.Sequential) -> nn.Sequential:
    """An extra 1x1 identity convolution and ReLU after the first ReLU (the identity on its >= 0 output)."""
    channels = net[0].out_channels
    identity = nn.Conv2d(channels, channels, 1).double()
    with torch.no_grad():
        identity.weight.copy_(torch.eye(channels, dtype=torch.float64).view(channels, channels, 1, 1))
        identity.bias.zero_()
    return nn.Sequential(net[0], net[1], identity, nn.ReLU(), *net[2:]).eval()


def rescaled(net: nn.Sequential, scale: float = 3.0) -> nn.Sequential:
    """The first layer times ``scale`` and the second's weights divided by it: ReLU is positively homogeneous."""
    other = relu_net()
    other.load_state_dict(net.state_dict())
    with torch.no_grad():
        other[0].weight.mul_(scale)
        other[0].bias.mul_(scale)
        other[2].weight.div_(scale)
    return other


def permuted(net: nn.Sequential) -> nn.Sequential:
    """The hidden channels in another order (the first layer's outputs and the second's inputs alike)."""
    other = relu_net()
    other.load_state_dict(net.state_dict())
    order = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        other[0].weight.copy_(net[0].weight[order])
        other[0].bias.copy_(net[0].bias[order])
        other[2].weight.copy_(net[2].weight[:, order])
    return other


@pytest.mark.parametrize("variant", [with_identity_layer, rescaled, permuted], ids=lambda v: v.__name__)
@pytest.mark.parametrize(("method", "rule"), COMBOS)
def test_networks_computing_the_same_function_get_the_same_maps(method, rule, variant):
    # every method here reads the model only through f and grad f, never its layers (Kapishnikov et al.
    # 2021, §4.4), so equal functions give equal maps, up to the rounding the two networks differ by
    net = relu_net()
    other = variant(net)
    x, baseline = random_images(13, scale=2.0) - 1.0, random_images(14) - 0.5
    with torch.no_grad():  # the premise: the same function, by other parameters
        torch.testing.assert_close(other(x), net(x), rtol=1e-12, atol=1e-12)
    maps = [attribute(model, x, method, rule, baseline=baseline, output="prob").attributions for model in (net, other)]
    torch.testing.assert_close(maps[1], maps[0], rtol=1e-9, atol=1e-12 * float(maps[0].abs().max()))
