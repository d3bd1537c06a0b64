"""Infidelity and max-sensitivity (Yeh et al. 2019, Def. 2.1 and 3.1): against analytic answers on models whose
probability is linear in the input, and against Captum's ``infidelity`` / ``sensitivity_max`` fed the same
draws. Models are tiny, seeded and float64, so "equal" means equal to float64 rounding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from igcli.engine import Engine
from igcli.errors import InvalidArgumentError
from igcli.metrics.base import MetricBatch
from igcli.metrics.fidelity import INFIDELITY, INFIDELITY_SALT, draws, gaussian_draws, infidelity, square_masks
from igcli.metrics.max_sensitivity import SENSITIVITY, ZERO_MAP, max_sensitivity, sensitivity_noise
from igcli.models import Preprocessing
from igcli.text import path_seed, torch_seed

captum_metrics = pytest.importorskip("captum.metrics")

C, H, W = 3, 8, 8
PATHS = ["a.png", "b.png", "c.png"]
SEEDS = [path_seed(7, p) for p in PATHS]


class LinearProbability(nn.Module):
    """Two classes with logits (log p, log(1 - p)), p = w . x + 0.5: the softmax probability of class 0 is p
    itself, linear in x, so the gradient w predicts every drop exactly (infidelity 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn((C, H, W), generator=torch.Generator().manual_seed(1),
                                          dtype=torch.float64) * 1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = (x * self.w).flatten(1).sum(dim=1) + 0.5
        return torch.stack([p.log(), (1 - p).log()], dim=1)


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(C, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(4 * H * W, 5)).double()


def inputs(count: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(2)
    images = torch.rand((count, C, H, W), generator=generator, dtype=torch.float64) * 2 - 1
    return images, torch.tensor([0, 3, 1][:count])


def grad_times_input(model: nn.Module):
    """Gradient x input of the target's softmax probability (a map function for Captum and for igcli)."""

    def explain(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            leaf = x.detach().requires_grad_(True)
            p = torch.softmax(model(leaf), dim=1).gather(1, target.view(-1, 1)).sum()
            (gradient,) = torch.autograd.grad(p, leaf)
        return gradient * x

    return explain


def prob_engine(model: nn.Module, batch_size: int = 64) -> Engine:
    return Engine(model, output="prob", batch_size=batch_size, device=torch.device("cpu"), amp=False)


# -- max-sensitivity -------------------------------------------------------------------------------------------


def test_the_draws_are_the_stream_igcli_always_drew():
    # Before batching, each draw of each image was torch.rand(shape) from a generator seeded by
    # path_seed(seed, path), draw after draw: stored results keep their values only if this is unchanged (for
    # --seed 0; torch kept only the low 32 bits, so another --seed changed nothing: it is folded in now).
    noise = sensitivity_noise(SEEDS, (C, H, W), 4, 0.05)
    generators = [torch.Generator().manual_seed(torch_seed(path_seed(7, p))) for p in PATHS]
    for s in range(4):
        old = torch.stack([(torch.rand((C, H, W), generator=g) * 2 - 1) * 0.05 for g in generators])
        assert torch.equal(noise[:, s], old)
    assert noise.abs().max() <= 0.05


def test_sensitivity_of_the_identity_map_is_the_largest_relative_draw():
    # Phi(x) = x: ||Phi(x + delta) - Phi(x)|| / ||Phi(x)|| = ||delta|| / ||x||, so the answer is known.
    images, targets = inputs()
    values, zero = max_sensitivity(lambda x, t: x.clone(), images, targets, SEEDS, radius=0.1, samples=5)
    noise = sensitivity_noise(SEEDS, (C, H, W), 5, 0.1).to(torch.float64)
    expected = noise.flatten(2).norm(dim=2).amax(dim=1) / images.flatten(1).norm(dim=1)
    assert torch.allclose(values, expected, rtol=1e-12, atol=0) and not zero.any()


def test_sensitivity_equals_captum_on_the_same_draws():
    model, (images, targets) = tiny_model(), inputs()
    explain = grad_times_input(model)
    ours, _ = max_sensitivity(explain, images, targets, SEEDS, radius=0.05, samples=6)

    def same_draws(seeds):
        def perturb(expanded: torch.Tensor) -> torch.Tensor:  # Captum's rows: each image 6 times, image-major
            return expanded + sensitivity_noise(seeds, (C, H, W), 6, 0.05).to(expanded.dtype).reshape(expanded.shape)
        return perturb

    def explain_tuple(x, target):  # Captum hands its inputs as a tuple and reads the maps back as one
        return (explain(x[0] if isinstance(x, tuple) else x, target),)

    theirs = captum_metrics.sensitivity_max(explain_tuple, images, perturb_func=same_draws(SEEDS), n_perturb_samples=6,
                                            target=targets)
    assert torch.allclose(ours, theirs.to(torch.float64), rtol=1e-9, atol=1e-12)
    # Guard: other draws (another seed) give other numbers, so the comparison above can fail.
    other = captum_metrics.sensitivity_max(explain_tuple, images, perturb_func=same_draws([s + 1 for s in SEEDS]),
                                           n_perturb_samples=6, target=targets)
    assert not torch.allclose(ours, other.to(torch.float64), rtol=1e-6)


def test_sensitivity_is_one_recompute_and_does_not_depend_on_batching():
    model, (images, targets) = tiny_model(), inputs()
    explain = grad_times_input(model)
    calls = []

    def recompute(x, t, start=None):
        calls.append(x.shape[0])
        return explain(x, t)

    def batch(rows, maps=None):
        return MetricBatch(maps=torch.zeros(len(rows), C, H, W), scores=torch.zeros(len(rows), H, W),
                           paths=[PATHS[i] for i in rows], targets=targets[rows], device=torch.device("cpu"),
                           preprocessing=Preprocessing(), seeds=[SEEDS[i] for i in rows], images=images[rows],
                           engine=prob_engine(model), recompute=recompute,
                           options=SENSITIVITY.resolve_options({"samples": "4"}))

    together = SENSITIVITY.compute(batch([0, 1, 2])).values["sensitivity"]
    assert calls == [3 * 5]  # one call: each image and its 4 perturbed copies
    alone = np.concatenate([SENSITIVITY.compute(batch([i])).values["sensitivity"] for i in range(3)])
    # Equal up to the rounding of a differently sized convolution batch.
    assert np.allclose(together, alone, rtol=1e-12, atol=0) and np.isfinite(together).all()
    assert together.dtype == np.float64
    # The per-draw form the evaluate job still calls gives the same numbers from the same draws.
    from igcli.metrics.stability import sensitivity

    legacy = sensitivity(explain, images, targets, PATHS, 7, samples=4)
    assert torch.allclose(legacy, torch.as_tensor(together), rtol=1e-12, atol=0)


def test_an_all_zero_map_is_unscorable_with_its_reason():
    images, targets = inputs()

    def recompute(x, t, start=None):  # rows 3..5 are image 1 and its 2 perturbed copies: its own map is zero
        maps = x.clone()
        maps[3] = 0
        return maps

    batch = MetricBatch(maps=torch.zeros(3, C, H, W), scores=torch.zeros(3, H, W), paths=PATHS, targets=targets,
                        device=torch.device("cpu"), preprocessing=Preprocessing(), seeds=SEEDS, images=images,
                        recompute=recompute, options=SENSITIVITY.resolve_options({"samples": 2}))
    scores = SENSITIVITY.compute(batch)
    assert scores.unscorable["sensitivity"] == [None, ZERO_MAP, None]
    value = scores.values["sensitivity"]
    assert np.isnan(value[1]) and np.isfinite(value[[0, 2]]).all()


def test_sensitivity_options_are_checked():
    assert SENSITIVITY.resolve_options({}) == {"radius": 0.05, "samples": 10}
    for given in ({"radius": "0"}, {"radius": "-1"}, {"samples": "0"}, {"samples": "2.5"}, {"sigma": 1}):
        with pytest.raises(InvalidArgumentError, match="-O sensitivity."):
            SENSITIVITY.resolve_options(given)


# -- infidelity ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["gaussian", "square"])
def test_a_map_that_predicts_every_drop_has_infidelity_zero(kind):
    # f = w . x + 0.5: the gaussian I.Phi with Phi = w is exactly f(x) - f(x - I); the square's I.Phi with
    # Phi = w (x - black) is exactly f(x) - f(x with the square black).
    model, (images, _) = LinearProbability(), inputs()
    targets = torch.zeros(3, dtype=torch.int64)
    black = torch.full((C, H, W), -2.0, dtype=torch.float64)
    exact = model.w.detach().expand(3, C, H, W) * ((images - black) if kind == "square" else 1)
    found = draws(kind, images, exact, SEEDS, 8, 0.1, black)
    engine = prob_engine(model)
    assert torch.all(infidelity(engine, images, exact, targets, *found) < 1e-28)
    # Twice the map: the error is the drop itself, mean((I.Phi)^2); the optimal scaling undoes the factor.
    doubled = infidelity(engine, images, 2 * exact, targets, *found)
    dots = (found[0] * (exact if kind == "gaussian" else exact.sum(dim=1))[:, None]).flatten(2).sum(dim=2)
    assert torch.allclose(doubled, dots.square().mean(dim=1), rtol=1e-9, atol=0) and torch.all(doubled > 0)
    assert torch.all(infidelity(engine, images, 2 * exact, targets, *found, normalize=True) < 1e-28)


def test_a_map_without_channels_gets_one_draw_per_pixel():
    # Summing the map over channels and sharing each pixel's draw across them keeps I.Phi exact.
    model, (images, _) = LinearProbability(), inputs()
    targets = torch.zeros(3, dtype=torch.int64)
    exact = model.w.detach().sum(dim=0).expand(3, H, W)
    found = draws("gaussian", images, exact, SEEDS, 8, 0.1, torch.zeros(C, H, W))
    assert found[0].shape == (3, 8, H, W)
    assert torch.allclose(found[1][:, :, 0] - found[1][:, :, 1], (images[:, 0] - images[:, 1])[:, None], atol=1e-15)
    assert torch.all(infidelity(prob_engine(model), images, exact, targets, *found) < 1e-28)


@pytest.mark.parametrize("kind", ["gaussian", "square"])
@pytest.mark.parametrize("normalize", [False, True])
def test_infidelity_equals_captum_on_the_same_draws(kind, normalize):
    model, (images, targets) = tiny_model(), inputs()
    maps = grad_times_input(model)(images, targets)
    black = torch.full((C, H, W), -1.5, dtype=torch.float64)
    found = draws(kind, images, maps, SEEDS, 7, 0.1, black)
    ours = infidelity(prob_engine(model, batch_size=5), images, maps, targets, *found, normalize=normalize)

    def same_draws(perturbations, perturbed):
        def perturb(expanded: torch.Tensor):  # Captum's rows: each image 7 times, image-major
            shaped = perturbations[:, :, None].expand(-1, -1, C, -1, -1) if perturbations.dim() == 4 else perturbations
            return shaped.reshape(expanded.shape), perturbed.reshape(expanded.shape)
        return perturb

    def probability(x):
        return torch.softmax(model(x), dim=1)

    theirs = captum_metrics.infidelity(probability, same_draws(*found), images, maps, target=targets,
                                       n_perturb_samples=7, normalize=normalize)
    assert torch.allclose(ours, theirs, rtol=1e-9, atol=1e-15) and torch.all(ours > 0)
    # Guard: the other sign convention (f(x + I)) gives other numbers, so the comparison above can fail.
    flipped = (found[0], 2 * images[:, None] - found[1])
    wrong = captum_metrics.infidelity(probability, same_draws(*flipped), images, maps, target=targets,
                                      n_perturb_samples=7, normalize=normalize)
    assert not torch.allclose(ours, wrong, rtol=1e-3)


def test_square_masks_are_squares_that_fit():
    masks = square_masks(SEEDS, (H, W), 50, torch.device("cpu"))
    assert masks.shape == (3, 50, H, W) and set(masks.unique().tolist()) <= {0.0, 1.0}
    rows, cols = masks.amax(dim=3).sum(dim=2), masks.amax(dim=2).sum(dim=2)  # the square's height and width
    assert torch.equal(rows, cols) and torch.equal(masks.sum(dim=(2, 3)), rows * cols)
    assert rows.min() == 1 and rows.max() == round(10 / 28 * 8)  # sides 1 .. 3 on 8 x 8, all of them drawn


def test_infidelity_draws_are_seeded_per_image_apart_from_sensitivity():
    noise = gaussian_draws(SEEDS, (C, H, W), 3, 1.0)
    alone = gaussian_draws(SEEDS[1:2], (C, H, W), 3, 1.0)
    assert torch.equal(noise[1:2], alone)
    generator = torch.Generator().manual_seed(torch_seed(SEEDS[0] ^ INFIDELITY_SALT))
    assert torch.equal(noise[0], torch.randn((3, C, H, W), generator=generator))
    assert not torch.allclose(noise[0], torch.randn((3, C, H, W), generator=torch.Generator().manual_seed(torch_seed(SEEDS[0]))))


@pytest.mark.parametrize("kind", ["gaussian", "square"])
def test_infidelity_metric_does_not_depend_on_batching(kind):
    model, (images, targets) = tiny_model(), inputs()
    maps = grad_times_input(model)(images, targets).float()
    engine = prob_engine(model, batch_size=4)

    def batch(rows):
        return MetricBatch(maps=maps[rows], scores=torch.zeros(len(rows), H, W), paths=[PATHS[i] for i in rows],
                           targets=targets[rows], device=torch.device("cpu"), preprocessing=Preprocessing(),
                           seeds=[SEEDS[i] for i in rows], images=images[rows], engine=engine,
                           options=INFIDELITY.resolve_options({"perturbation": kind, "normalize": "yes"}))

    before = engine.rows_evaluated
    together = INFIDELITY.compute(batch([0, 1, 2])).values["infidelity"]
    assert engine.rows_evaluated - before == 3 * 11  # each image and its 10 perturbed copies, in one call
    alone = np.concatenate([INFIDELITY.compute(batch([i])).values["infidelity"] for i in range(3)])
    assert np.allclose(together, alone, rtol=1e-12, atol=0) and np.all(together > 0)


def test_infidelity_options_are_checked():
    assert INFIDELITY.resolve_options({}) == {"perturbation": "gaussian", "noise": 0.1, "samples": 10,
                                              "normalize": False}
    assert INFIDELITY.resolve_options({"normalize": "true"})["normalize"] is True
    assert INFIDELITY.resolve_options({"normalize": "off"})["normalize"] is False
    for given in ({"perturbation": "blur"}, {"noise": "0"}, {"noise": "nan"}, {"samples": "0"},
                  {"normalize": "maybe"}, {"radius": 1}):
        with pytest.raises(InvalidArgumentError, match="-O infidelity."):
            INFIDELITY.resolve_options(given)
