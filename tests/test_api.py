"""igcli.attribute end to end on tiny models: ground truth, paper formulas, invariances, bad input."""

import math

import numpy as np
import pytest
import torch

import igcli
from igcli.errors import IgcliError, InvalidArgumentError, NonFiniteError, ShapeError, TargetError
from igcli.methods import RULE_NAMES, get_method, method_names
from igcli.paths.blur import gaussian_blur

from conftest import CountingModel, SineModel, tiny_convnet

PATH_METHODS = [name for name in method_names() if get_method(name).has_path]  # the registry's, plugins too


def small_image_options(method, max_sigma):
    """A blur whose width suits these 16 x 16 images, for the methods that blur (default 50 pixels)."""
    return {"max_sigma": max_sigma} if any(o.name == "max_sigma" for o in get_method(method).options) else {}


def sine_setup(seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand((3, 2, 5, 5), generator=generator, dtype=torch.float64) * 3
    baseline = torch.rand((3, 2, 5, 5), generator=generator, dtype=torch.float64) - 0.5
    return SineModel((2, 5, 5)), x, baseline


# -- ground truth: straight path on a function with a closed-form integral ------------------------------------


def ig_error(kind, steps):
    model, x, baseline = sine_setup()
    result = igcli.attribute(model, x, 1, steps=steps, schedule=kind, baseline=baseline, output="logit")
    exact = torch.stack([model.exact_ig(x[i], baseline[i], 1) for i in range(3)])
    return float((result.attributions - exact.detach()).abs().max() / exact.detach().abs().max())


@pytest.mark.parametrize(("kind", "order"), [("left", 1), ("right", 1), ("midpoint", 2), ("trapezoid", 2)])
def test_ig_converges_to_the_exact_integral_at_the_schedules_order(kind, order):
    errors = [ig_error(kind, n) for n in (8, 16, 32, 64)]
    slopes = -np.diff(np.log2(errors))
    assert np.allclose(slopes, order, atol=0.15), (errors, slopes)
    assert errors[-1] < (0.05 if order == 1 else 5e-4)


def test_gauss_legendre_reaches_float64_precision_quickly():
    assert ig_error("gauss-legendre", 12) < 1e-12


def test_completeness_gap_falls_with_steps_and_is_reported_per_image():
    model, x, baseline = sine_setup(1)
    gaps = []
    for steps in (8, 32, 128):
        result = igcli.attribute(model, x, 0, steps=steps, baseline=baseline, output="logit")
        assert result.completeness_gap.shape == (3,)
        change = result.scores.double() - result.baseline_scores.double()
        manual = (result.attributions.flatten(1).sum(1) - change).abs() / change.abs()
        assert torch.allclose(result.completeness_gap.double(), manual, rtol=1e-5)
        gaps.append(float(result.completeness_gap.max()))
    assert gaps[0] > gaps[1] > gaps[2]


def test_scores_and_baseline_scores_are_f_at_the_ends(convnet, images):
    result = igcli.attribute(convnet, images, steps=4, schedule="midpoint")
    with torch.no_grad():
        probs = torch.softmax(convnet(images), 1)
        base = torch.softmax(convnet(torch.zeros_like(images)), 1)
    assert torch.equal(result.targets, probs.argmax(1))
    assert torch.allclose(result.scores, probs.max(1).values)
    assert torch.allclose(result.baseline_scores, base.gather(1, result.targets[:, None]).squeeze(1))


# -- IDGI ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", PATH_METHODS)
@pytest.mark.parametrize("schedule", ["left", "right", "midpoint", "gauss-legendre"])
def test_idgi_is_complete_to_float_precision_on_every_path(convnet, images, method, schedule):
    if not get_method(method).fixed_path and schedule not in ("left", "right"):
        pytest.skip("an adaptive path (Guided IG) uses only the schedule's boundaries")
    options = small_image_options(method, 6.0)
    result = igcli.attribute(convnet, images, method=method, rule="idgi", steps=6, schedule=schedule, **options)
    assert float(result.completeness_gap.max()) < 2e-5


def test_idgi_equals_algorithm_1_written_out(convnet, images):
    # Yang et al. 2023 Algorithm 1 on IG's path x_j = x' + (j/n)(x - x'), gradient at x_j, d = f(x_{j+1}) - f(x_j)
    n, target = 5, 2
    result = igcli.attribute(convnet, images, target, rule="idgi", steps=n, schedule="left")
    baseline = torch.zeros_like(images)
    expected = torch.zeros_like(images, dtype=torch.float64)

    def f(x):
        return torch.softmax(convnet(x), 1)[:, target]

    for j in range(n):
        xj = (baseline + (j / n) * images).requires_grad_(True)
        (g,) = torch.autograd.grad(f(xj).sum(), xj)
        with torch.no_grad():
            d = f(baseline + ((j + 1) / n) * images) - f(xj)
        g = g.double()
        expected += g * g * d.double().view(-1, 1, 1, 1) / (g * g).flatten(1).sum(1).view(-1, 1, 1, 1)
    assert torch.allclose(result.attributions.double(), expected, rtol=1e-4, atol=1e-9)


def test_method_idgi_is_ig_with_the_idgi_rule(convnet, images):
    short = igcli.attribute(convnet, images, method="idgi", steps=4)
    long = igcli.attribute(convnet, images, method="ig", rule="idgi", steps=4)
    assert torch.equal(short.attributions, long.attributions)
    assert short.settings["rule"] == "idgi"


# -- Guided IG -----------------------------------------------------------------------------------------------


def test_guided_ig_with_max_dist_zero_is_ig_on_the_straight_path(convnet, images):
    gig = igcli.attribute(convnet, images, method="gig", steps=8, max_dist=0.0)
    ig = igcli.attribute(convnet, images, method="ig", steps=8, schedule="left")
    assert torch.allclose(gig.attributions, ig.attributions, rtol=1e-5, atol=1e-8)


def test_guided_ig_with_many_anchors_is_close_to_ig(convnet, images):
    gig = igcli.attribute(convnet, images, method="gig", steps=32, anchors=31, max_dist=1.0)
    ig = igcli.attribute(convnet, images, method="ig", steps=32, schedule="left")
    cosine = torch.nn.functional.cosine_similarity(gig.attributions.flatten(1), ig.attributions.flatten(1))
    unbounded = igcli.attribute(convnet, images, method="gig", steps=32, max_dist=1.0)
    cosine_unbounded = torch.nn.functional.cosine_similarity(unbounded.attributions.flatten(1), ig.attributions.flatten(1))
    assert float(cosine.min()) > 0.99
    assert float(cosine_unbounded.mean()) < float(cosine.mean())


def test_unbounded_guided_ig_takes_another_path_than_ig(convnet, images):
    # (Its Riemann completeness gap can be large: Swain and Singhi 2024 Table 1 reports 0.6-0.8 for GIG.)
    gig = igcli.attribute(convnet, images, method="gig", steps=64, max_dist=1.0, fraction=0.1)
    ig = igcli.attribute(convnet, images, method="ig", steps=64, schedule="left")
    assert not torch.allclose(gig.attributions, ig.attributions, rtol=1e-2)


# -- Blur IG -------------------------------------------------------------------------------------------------


def test_blur_ig_completeness_is_against_the_fully_blurred_image(convnet, images):
    result = igcli.attribute(convnet, images, method="blurig", steps=256, schedule="midpoint", max_sigma=4.0)
    blurred = gaussian_blur(images, 4.0, "constant", radius=16)  # Blur IG's default padding, its reference's
    with torch.no_grad():
        base = torch.softmax(convnet(blurred), 1).gather(1, result.targets[:, None]).squeeze(1)
    assert torch.allclose(result.baseline_scores, base, atol=1e-6)
    assert float(result.completeness_gap.max()) < 1e-3


def test_blur_ig_exact_derivative_converges_at_second_order_with_midpoints(convnet, images):
    gaps = [
        float(igcli.attribute(convnet, images, method="blurig", steps=n, schedule="midpoint", max_sigma=3.0).completeness_gap.mean())
        for n in (8, 16, 32)
    ]
    assert gaps[1] < gaps[0] / 2.5 and gaps[2] < gaps[1] / 2.5, gaps


# -- invariances ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", method_names())
@pytest.mark.parametrize("rule", RULE_NAMES)
def test_same_result_alone_or_in_a_batch_for_any_chunking(convnet, images, method, rule):
    if not get_method(method).has_path and rule == "idgi":
        pytest.skip(f"{method} has no path to integrate along")
    options = small_image_options(method, 5.0)
    reference = igcli.attribute(convnet, images, method=method, rule=rule, steps=6, batch_size=100, **options)
    for batch_size in (1, 5, 7):
        chunked = igcli.attribute(convnet, images, method=method, rule=rule, steps=6, batch_size=batch_size, **options)
        assert torch.allclose(chunked.attributions, reference.attributions, rtol=1e-4, atol=1e-7)
    alone = igcli.attribute(convnet, images[2:3], method=method, rule=rule, steps=6, batch_size=3, **options)
    assert torch.allclose(alone.attributions[0], reference.attributions[2], rtol=1e-4, atol=1e-7)
    again = igcli.attribute(convnet, images, method=method, rule=rule, steps=6, batch_size=100, **options)
    assert torch.equal(again.attributions, reference.attributions)


@pytest.mark.parametrize(
    ("schedule", "rule", "extra_forward_rows"),
    # f(x') is scored by a forward-only pass unless a gradient point sits at alpha = 0 (left sums)
    [("right", "riemann", 1), ("left", "riemann", 0), ("midpoint", "riemann", 1), ("midpoint", "idgi", 6), ("left", "idgi", 0)],
)
def test_model_calls_are_batched_and_counted(images, schedule, rule, extra_forward_rows):
    model = CountingModel(tiny_convnet())
    batch, steps, batch_size = images.shape[0], 6, 5
    igcli.attribute(model, images, rule=rule, steps=steps, schedule=schedule, batch_size=batch_size)
    gradient_rows = batch * steps
    # one forward pass over the inputs (targets, f(x)); boundary scores not given by gradient points
    assert model.rows == batch + gradient_rows + batch * extra_forward_rows
    assert max(model.batch_sizes) <= batch_size
    expected_calls = math.ceil(batch / batch_size) + math.ceil(gradient_rows / batch_size)
    if extra_forward_rows:
        expected_calls += math.ceil(batch * extra_forward_rows / batch_size)
    assert model.calls == expected_calls


def test_guided_ig_batches_images_in_each_step(images):
    model = CountingModel(tiny_convnet())
    igcli.attribute(model, images, method="gig", steps=5, batch_size=16)
    assert model.calls == 1 + 5 and model.batch_sizes == [4] * 6


def test_memory_does_not_grow_with_steps(images):
    # the accumulator holds one map per image whatever the number of steps; held IDGI cells stay bounded
    from igcli.integrate import _DeferredCells

    seen = []
    original = _DeferredCells.flush

    def spy(self, *args):
        original(self, *args)
        seen.append(len(self))

    _DeferredCells.flush = spy
    try:
        igcli.attribute(tiny_convnet(), images, rule="idgi", steps=40, schedule="left", batch_size=7)
    finally:
        _DeferredCells.flush = original
    assert max(seen) <= images.shape[0]


def test_model_state_is_restored(images):
    model = tiny_convnet().train()
    igcli.attribute(model, images, steps=2)
    assert model.training
    assert all(p.requires_grad for p in model.parameters())


def test_vanilla_gradient_is_the_gradient_at_the_input(convnet, images):
    result = igcli.attribute(convnet, images, 3, method="vg")
    x = images.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(torch.softmax(convnet(x), 1)[:, 3].sum(), x)
    assert torch.allclose(result.attributions, expected)
    assert torch.isnan(result.completeness_gap).all()


def test_baselines_are_made_in_pixel_space(convnet, images):
    normalization = igcli.Normalization(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    black = igcli.make_baseline("black", images, normalization)
    white = igcli.make_baseline("white", images, normalization)
    assert torch.allclose(black, torch.full_like(images, -2.0)) and torch.allclose(white, torch.full_like(images, 2.0))
    noise_a = igcli.make_baseline("uniform", images, normalization, seed=3)
    noise_b = igcli.make_baseline("uniform", images, normalization, seed=3)
    assert torch.equal(noise_a, noise_b) and -2 <= float(noise_a.min()) and float(noise_a.max()) <= 2
    result = igcli.attribute(convnet, images, baseline="white", normalization=normalization, steps=3)
    with torch.no_grad():
        expected = torch.softmax(convnet(white), 1).gather(1, result.targets[:, None]).squeeze(1)
    assert torch.allclose(result.baseline_scores, expected)


# -- bad input -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"images": torch.rand(3, 16, 16)}, ShapeError, "shape"),
        ({"images": torch.zeros(4, 3, 16, 16, dtype=torch.int64)}, InvalidArgumentError, "float"),
        ({"target": 5}, TargetError, "outside"),
        ({"target": -1}, TargetError, "outside"),
        ({"target": [0, 1]}, ShapeError, "targets"),
        ({"target": 1.5}, TargetError, "integers"),
        ({"baseline": torch.zeros(3, 8, 8)}, ShapeError, "baseline"),
        ({"baseline": "grey"}, InvalidArgumentError, "baseline"),
        ({"method": "lime"}, InvalidArgumentError, "method"),
        ({"rule": "simpson"}, InvalidArgumentError, "rule"),
        ({"schedule": "simpson"}, InvalidArgumentError, "schedule"),
        ({"output": "log-prob"}, InvalidArgumentError, "output"),
        ({"steps": 0}, InvalidArgumentError, "steps"),
        ({"batch_size": 0}, InvalidArgumentError, "batch_size"),
        ({"method": "ig", "max_sigma": 3}, InvalidArgumentError, "max_sigma"),
        ({"method": "gig", "fraction": 0}, InvalidArgumentError, "fraction"),
        ({"method": "gig", "anchors": -1}, InvalidArgumentError, "anchors"),
        ({"method": "vg", "rule": "idgi"}, InvalidArgumentError, "vg"),
        ({"device": "tpu:0"}, InvalidArgumentError, "device"),
    ],
)
def test_bad_arguments_raise_one_typed_error(convnet, images, kwargs, error, message):
    arguments = {"images": images, **kwargs}
    with pytest.raises(error, match=message):
        igcli.attribute(convnet, **{"steps": 2, **arguments})


def test_nan_in_an_input_is_named(convnet, images):
    images = images.clone()
    images[2, 0, 3, 3] = float("nan")
    with pytest.raises(NonFiniteError, match="image 2"):
        igcli.attribute(convnet, images, steps=2)


def test_nan_gradients_raise_instead_of_a_silent_map(images):
    class SqrtModel(torch.nn.Module):
        def forward(self, x):  # d sqrt / dx is infinite at 0, reached at the black baseline
            return torch.sqrt(x.flatten(1)[:, :4].abs())

    with pytest.raises(NonFiniteError, match="gradients"):
        igcli.attribute(SqrtModel(), images, steps=3, schedule="left", output="logit")


def test_a_model_with_the_wrong_output_shape_is_named(images):
    with pytest.raises(ShapeError, match="model"):
        igcli.attribute(torch.nn.Identity(), images, steps=2)


def test_every_error_is_an_igcli_error():
    for error in (InvalidArgumentError, ShapeError, TargetError, NonFiniteError):
        assert issubclass(error, IgcliError)


def test_autocast_runs_and_stays_close_to_float32(convnet, images):
    exact = igcli.attribute(convnet, images, steps=8, rule="idgi")
    mixed = igcli.attribute(convnet, images, steps=8, rule="idgi", amp=True)
    assert mixed.attributions.dtype == torch.float32
    cosine = torch.nn.functional.cosine_similarity(exact.attributions.flatten(1), mixed.attributions.flatten(1))
    assert float(cosine.min()) > 0.9


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("method", PATH_METHODS)
def test_cuda_matches_cpu(convnet, images, method):
    options = small_image_options(method, 5.0)
    on_cpu = igcli.attribute(convnet, images, method=method, rule="idgi", steps=8, device="cpu", **options)
    on_gpu = igcli.attribute(convnet, images, method=method, rule="idgi", steps=8, device="cuda", **options)
    assert on_gpu.attributions.device.type == "cpu"  # results live where the images came from
    assert torch.allclose(on_gpu.attributions, on_cpu.attributions, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("content, expected", [
    ({"baseline": torch.zeros(3, 4, 4)}, "holds a dict"),
    (torch.zeros(3, 4, 4, dtype=torch.complex64), "torch.complex64, not one real tensor"),
])
def test_a_baseline_file_must_hold_one_real_tensor(tmp_path, content, expected):
    from igcli.errors import InvalidArgumentError
    from igcli.batch_baselines import baseline_from_spec

    path = tmp_path / "baseline.pt"
    torch.save(content, path)
    with pytest.raises(InvalidArgumentError, match=expected):
        baseline_from_spec(str(path), None, torch.device("cpu"))


def test_a_npy_baseline_is_read_as_it_was_saved_and_checked_against_the_models_crop(tmp_path):
    from types import SimpleNamespace

    from igcli.errors import InvalidArgumentError
    from igcli.batch_baselines import baseline_from_spec

    values = np.random.default_rng(0).standard_normal((3, 4, 4))
    np.save(tmp_path / "b.npy", values)
    loaded = SimpleNamespace(preprocessing=SimpleNamespace(crop=4))
    tensor = baseline_from_spec(str(tmp_path / "b.npy"), loaded, torch.device("cpu"))
    assert tensor.dtype == torch.float32
    np.testing.assert_array_equal(tensor.numpy(), values.astype(np.float32))
    with pytest.raises(InvalidArgumentError, match=r"shape \(3, 4, 4\), expected \(3, 8, 8\)"):
        baseline_from_spec(str(tmp_path / "b.npy"), SimpleNamespace(preprocessing=SimpleNamespace(crop=8)),
                           torch.device("cpu"))


def test_a_method_object_is_used_as_given_registered_or_not(convnet, images):
    from igcli.methods import Method, Option
    from igcli.paths import StraightPath

    class FromWhite(Method):  # not registered: a notebook's own method
        name, title, summary, reference = "fromwhite", "IG from white", "straight path from white", "test"
        options = (Option("scale", 1.0, float, "How white."),)
        path = "straight"

        def start(self, inputs, normalization, options):
            return normalization.from_pixels(torch.full_like(inputs, options["scale"]))

        def make_path(self, inputs, baselines, options):
            return StraightPath(inputs, baselines)

    ours = igcli.attribute(convnet, images, method=FromWhite(), steps=6, scale=1.0)
    reference = igcli.attribute(convnet, images, method="ig", steps=6, baseline="white")
    torch.testing.assert_close(ours.attributions, reference.attributions)
    assert ours.settings["method"] == "fromwhite" and ours.settings["scale"] == 1.0
    with pytest.raises(InvalidArgumentError, match="rule idgi integrates along a path"):
        igcli.attribute(convnet, images, method=get_method("vg"), rule="idgi")

    class Broken(FromWhite):
        def start(self, inputs, normalization, options):
            raise RuntimeError("a caller's own bug")

    with pytest.raises(RuntimeError, match="a caller's own bug"):  # not blamed on a plugin: it is the caller's
        igcli.attribute(convnet, images, method=Broken(), steps=2)


@pytest.mark.parametrize("method", PATH_METHODS)
def test_the_idgi_rule_defaults_to_its_reference_schedule(convnet, images, method):
    # Yang et al. 2023, Algorithm 1 takes each step's gradient at its start x_j: the left schedule, which the
    # test above writes out. A Riemann sum keeps the right end (PAIR's and Captum's IG).
    options = small_image_options(method, 5.0)
    default = igcli.attribute(convnet, images, method=method, rule="idgi", steps=5, **options)
    left = igcli.attribute(convnet, images, method=method, rule="idgi", steps=5, schedule="left", **options)
    assert torch.equal(default.attributions, left.attributions) and default.settings["schedule"] == "left"
    assert igcli.describe(method, "riemann", steps=5, **options)["schedule"] == "right"
    assert igcli.describe("idgi", steps=5)["schedule"] == "left"
