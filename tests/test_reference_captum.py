"""Cross-checks of igcli's ensembles against Captum 0.9.0: ``NoiseTunnel(IntegratedGradients)`` (SmoothGrad,
SmoothGrad-squared, VarGrad over IG) and ``GradientShap`` (Expected Gradients).

Captum draws its own random numbers; each test feeds it igcli's draws instead, so any difference comes from the
attribution code:

- ``NoiseTunnel._add_noise_to_input`` adds ``torch.normal(0, stdev_expanded)`` to the input
  ``repeat_interleave``'d by the sample count, so row i N + n is image i's noise draw n. Captum's ``stdevs`` is
  absolute and one per input tensor; igcli's sigma is per image (noise level x the image's value range, PAIR's
  convention), so the already-scaled noise sigma_i eps_{i,n} is injected.
- ``GradientShap`` is a NoiseTunnel (stdevs 0) over ``InputBaselineXGradient``: baseline indices come from
  ``np.random.choice(R, K B)`` in ``captum._utils.common`` (row i K + k) and the alphas from
  ``np.random.uniform(0, 1, K B)`` in ``captum.attr._core.gradient_shap``.

Captum's ``riemann_right`` places the alphas at k / n, k = 1..n, each weighted 1 / n
(``captum.attr._utils.approximation_methods``): igcli's ``right`` schedule. Captum rounds both to float32
(``torch.linspace`` in the default dtype; ``torch.tensor(step_sizes).float()`` in ``IntegratedGradients``),
which moves its maps by ~1e-7 relative unless n is a power of two; the tests use n = 8, where k / n and 1 / n
are exact in float32 (n = 6 differs by 3e-8 to 6e-8). Captum explains the model's output
as is, so it gets a model returning softmax probabilities where igcli is asked for ``output="prob"``.
"""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from torch import nn

import igcli
from igcli.ensembles.draws import ImageDraws

captum_attr = pytest.importorskip("captum.attr")
noise_tunnel_module = pytest.importorskip("captum.attr._core.noise_tunnel")
gradient_shap_module = pytest.importorskip("captum.attr._core.gradient_shap")
captum_common = pytest.importorskip("captum._utils.common")

from conftest import tiny_convnet  # noqa: E402

SHAPE = (3, 8, 8)
# Both libraries compute in float64 here; they differ in summation order and in how a path point is formed
# (Captum: alpha x + (1 - alpha) x', igcli: x' + alpha (x - x')), so agreement is to rounding.
TOLERANCE = 1e-10


class Probabilities(nn.Module):
    """The model with a softmax on top: what Captum must explain to match igcli's ``output="prob"``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x), dim=1)


def images(count: int, seed: int) -> torch.Tensor:
    return torch.rand((count, *SHAPE), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def max_rel_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual - expected).abs().max() / expected.abs().max())


def scaled_noise(x: torch.Tensor, keys: list[str], seed: int, level: float, count: int) -> torch.Tensor:
    """(B N, C, H, W) igcli's noise, sigma_i eps_{i,n} at row i N + n (Captum's image-major layout)."""
    draws = ImageDraws(seed, keys)
    eps = torch.stack([draws.normal(n, x.shape[1:]) for n in range(count)], dim=1).double()  # (B, N, C, H, W)
    sigma = level * (x.flatten(1).amax(1) - x.flatten(1).amin(1)).view(-1, 1, 1, 1, 1)
    return (sigma * eps).reshape(-1, *x.shape[1:])


class TorchWithNormal:
    """Stands in for ``torch`` inside Captum's noise_tunnel module: everything is torch's, but ``normal``
    returns the given noise (after checking Captum asks for that shape)."""

    def __init__(self, noise: torch.Tensor) -> None:
        self.noise = noise
        self.calls = 0

    def normal(self, mean, std):
        assert mean == 0 and tuple(std.shape) == tuple(self.noise.shape), (mean, std.shape)
        self.calls += 1
        # Captum's stdev tensor is float32 (torch.tensor of a Python float), so its own noise would be too;
        # igcli's float64 noise is handed over as is.
        return self.noise

    def __getattr__(self, name):
        return getattr(torch, name)


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return tiny_convnet(seed=0).double()


@pytest.mark.parametrize("aggregate, nt_type", [("smoothgrad", "smoothgrad"), ("smoothgrad-sq", "smoothgrad_sq"),
                                                ("vargrad", "vargrad")])
@pytest.mark.parametrize("output", ["prob", "logit"])
def test_noise_ensemble_of_ig_matches_captum_noise_tunnel(model, monkeypatch, aggregate, nt_type, output):
    """SmoothGrad / SmoothGrad-squared / VarGrad of IG (black baseline, right Riemann sum, 8 steps, N = 5)
    against Captum ``NoiseTunnel(IntegratedGradients(method="riemann_right"))`` fed igcli's noise. VarGrad's
    variance has divisor N in both (Captum: E[a^2] - E[a]^2). Measured max relative error 2e-16 to 3e-16, and
    2e-15 to 3.4e-15 for VarGrad (Captum subtracts two means; igcli keeps centred sums)."""
    x, keys, seed, level, count, steps, target = images(3, 1), ["a", "b", "c"], 7, 0.2, 5, 8, 2
    ours = igcli.attribute(model, x, target, method="ig", steps=steps, schedule="right", baseline="black",
                           output=output, noise_samples=count, noise_level=level, noise_aggregate=aggregate,
                           keys=keys, seed=seed, device="cpu", check_completeness=False).attributions
    fake = TorchWithNormal(scaled_noise(x, keys, seed, level, count))
    monkeypatch.setattr(noise_tunnel_module, "torch", fake)
    forward = Probabilities(model) if output == "prob" else model
    tunnel = captum_attr.NoiseTunnel(captum_attr.IntegratedGradients(forward))
    theirs = tunnel.attribute(x, nt_type=nt_type, nt_samples=count, stdevs=1.0, target=target,
                              baselines=torch.zeros_like(x), n_steps=steps, method="riemann_right")
    assert fake.calls == 1
    assert theirs.abs().max() > 0
    assert max_rel_error(ours, theirs) <= TOLERANCE


def test_captum_comparison_sees_the_noise(model, monkeypatch):
    """Guard: the comparison above tells draws apart. Another seed's noise (same level) moves igcli's
    SmoothGrad map by far more than the tolerance (measured 0.21)."""
    x, keys, level, count, target = images(2, 1), ["a", "b"], 0.2, 5, 2
    fake = TorchWithNormal(scaled_noise(x, keys, 8, level, count))
    monkeypatch.setattr(noise_tunnel_module, "torch", fake)
    tunnel = captum_attr.NoiseTunnel(captum_attr.IntegratedGradients(Probabilities(model)))
    theirs = tunnel.attribute(x, nt_type="smoothgrad", nt_samples=count, stdevs=1.0, target=target,
                              baselines=torch.zeros_like(x), n_steps=8, method="riemann_right")
    ours = igcli.attribute(model, x, target, method="ig", steps=8, noise_samples=count, noise_level=level,
                           keys=keys, seed=7, device="cpu", check_completeness=False).attributions
    assert max_rel_error(ours, theirs) > 1e-3


@pytest.mark.parametrize("output", ["prob", "logit"])
def test_expected_gradients_matches_captum_gradient_shap(model, monkeypatch, output):
    """Expected Gradients (K = 6 samples, 5 references) against Captum ``GradientShap(stdevs=0)`` with igcli's
    reference indices and alphas injected. Measured max relative error 1.4e-16 (prob), 2.0e-16 (logit); with
    the alphas shifted by 0.3 (clipped), 0.046 and 0.052."""
    x, keys, seed, count, target = images(3, 1), ["a", "b", "c"], 3, 6, 4
    references = images(5, 9)
    ours = igcli.attribute(model, x, target, method="eg", samples=count, references=references, output=output,
                           keys=keys, seed=seed, device="cpu", check_completeness=False).attributions
    draws = ImageDraws(seed, keys)
    indices = draws.references(0, count, len(references)).reshape(-1)  # row i K + k
    alphas = torch.stack([draws.alphas(0, k) for k in range(count)], dim=1).reshape(-1).numpy()
    asked = []

    def choice(available, size):
        asked.append((available, size))
        return indices.numpy()

    def uniform(low, high, size):
        asked.append((low, high, size))
        return alphas

    monkeypatch.setattr(captum_common, "np", types.SimpleNamespace(random=types.SimpleNamespace(choice=choice)))
    monkeypatch.setattr(gradient_shap_module, "np",
                        types.SimpleNamespace(random=types.SimpleNamespace(uniform=uniform)))
    forward = Probabilities(model) if output == "prob" else model
    theirs = captum_attr.GradientShap(forward).attribute(x, references, n_samples=count, stdevs=0.0, target=target)
    assert asked == [(5, count * 3), (0.0, 1.0, count * 3)]
    assert theirs.abs().max() > 0
    assert max_rel_error(ours, theirs) <= TOLERANCE
    # Guard: Captum with other alphas is far away, so the match is not a coincidence of a flat model.
    alphas = np.clip(alphas + 0.3, 0.0, 1.0)
    shifted = captum_attr.GradientShap(forward).attribute(x, references, n_samples=count, stdevs=0.0, target=target)
    assert max_rel_error(ours, shifted) > 1e-3
