"""igcli's IDGI rule against the IDGI authors' own procedure, on the IG, Blur IG and Guided IG paths.

Yang et al. 2023 ("IDGI: A Framework to Eliminate Explanation Noise from Integration Gradient", Algorithm 1)
ran IDGI on top of PAIR's ``saliency`` implementations: their function ``IDGI(Gradients, Predictions)``
(github yangruo1226/IDGI, ``idgi.py``) takes the gradients g_i = grad f_c(x_i) and predictions p_i = f_c(x_i)
at the path points x_0 (path start) ... x_n (the input) and returns

    sum_{i=0}^{n-1} g_i^2 (p_{i+1} - p_i) / sum(g_i^2)        (the last gradient, at the input, is unused)

Here PAIR's ``call_model_function`` is wrapped to record every point PAIR evaluates, with its gradient and the
target's prediction; the recordings, in path order from the start to the input, go to a transcription of that
function (:func:`authors_idgi`), and the result is compared with ``igcli.attribute(..., rule="idgi")`` with no
schedule given (the IDGI rule's default, ``left``: the gradient at each cell's start) on the same points.

Where PAIR's points lie (saliency 0.2.1):
- IG: alphas = linspace(0, 1, n), input included: n - 1 cells, i.e. igcli's ``steps=n - 1``.
- Blur IG: sigma_i = i max_sigma / n for i = 0 .. n - 1, from the input (sigma 0) towards the blur, so the
  recordings are reversed; sigma = max_sigma itself is never evaluated, so the authors' sum starts at
  sigma_{n-1} = (n - 1) max_sigma / n. igcli walks exactly that path with ``max_sigma=(n - 1) max_sigma / n``
  and ``steps=n - 1`` (alpha = k / (n - 1) <-> sigma = (n - 1 - k) max_sigma / n).
- Guided IG: one gradient at the start of each of the n steps, never at the input: the input's prediction is
  appended (its gradient too, which the function ignores), and igcli runs ``steps=n``.

Measured values quoted in the comments were taken on CPU (torch 2.x, NumPy 2.4, SciPy 1.17).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import igcli
import igcli.paths

saliency_core = pytest.importorskip("saliency.core")

from test_reference_pair import (  # noqa: E402  (after the importorskip: that module needs PAIR too)
    max_rel_error,
    pair_numpy_shim,  # noqa: F401  (a fixture: PAIR's Guided IG on NumPy 2)
    random_images,
    smooth_convnet,
    to_chw,
    to_hwc,
)

TARGETS = (1, 4, 6)  # per image; classes 3 and 5 are nearly absent for this model (see test_reference_pair)


class RecordingCallModelFunction:
    """PAIR's ``call_model_function`` for a float64 torch model that also records, for every row PAIR asks for,
    the point (H, W, C), the gradient of the target's softmax probability there (H, W, C) and that probability."""

    def __init__(self, model: torch.nn.Module, target: int) -> None:
        self.model, self.target = model, target
        self.points: list[np.ndarray] = []
        self.gradients: list[np.ndarray] = []
        self.predictions: list[float] = []

    def __call__(self, x_batch, call_model_args=None, expected_keys=None):
        # A copy: PAIR's Guided IG hands in a view of the point it goes on to move in place.
        batch = np.array(x_batch, dtype=np.float64)
        x = torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2))).requires_grad_(True)
        probability = torch.softmax(self.model(x), dim=1)[:, self.target]
        (gradients,) = torch.autograd.grad(probability.sum(), x)
        gradients_hwc = gradients.numpy().transpose(0, 2, 3, 1)
        self.points += list(batch)
        self.gradients += list(gradients_hwc.copy())
        self.predictions += [float(p) for p in probability.detach()]
        return {saliency_core.INPUT_OUTPUT_GRADIENTS: gradients_hwc}

    def record_input(self, image_hwc: np.ndarray) -> None:
        """Evaluate (and record) the input itself, for paths on which PAIR never does."""
        self(image_hwc[None], expected_keys=[saliency_core.INPUT_OUTPUT_GRADIENTS])


def authors_idgi(gradients, predictions) -> np.ndarray:
    """The authors' ``IDGI(Gradients, Predictions)`` (Yang et al. 2023, Algorithm 1), written out: gradients and
    predictions at x_0 (path start) ... x_n (input); cell i explains p_{i+1} - p_i along g_i^2 / sum(g_i^2)."""
    assert len(gradients) == len(predictions)
    result = np.zeros_like(gradients[0])
    for i in range(len(gradients) - 1):  # the last gradient (at the input) has no cell
        squared = gradients[i] ** 2
        result += squared * (predictions[i + 1] - predictions[i]) / np.sum(squared)
    return result


def idgi_gradient_at_cell_end(gradients, predictions) -> np.ndarray:
    """The same sum with each cell's gradient taken at its end (igcli's IDGI before issue 13, schedule
    ``right``): for the guards showing that the comparisons see where the gradients sit."""
    result = np.zeros_like(gradients[0])
    for i in range(len(gradients) - 1):
        squared = gradients[i + 1] ** 2
        result += squared * (predictions[i + 1] - predictions[i]) / np.sum(squared)
    return result


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return smooth_convnet(seed=0)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return random_images(3, seed=1)


def idgi_default(model, images, **options) -> torch.Tensor:
    """igcli's IDGI with the rule's default schedule (none given), float64, on the CPU."""
    result = igcli.attribute(model, images, list(TARGETS[: len(images)]), rule="idgi", device="cpu", **options)
    assert result.settings["schedule"] == "left"
    assert result.attributions.dtype == torch.float64
    return result.attributions


# -- Integrated Gradients ----------------------------------------------------------------------------------------


def test_idgi_on_pairs_ig_path_equals_the_authors_function(model, images):
    """PAIR's IG with x_steps = n (black baseline) evaluates alphas linspace(0, 1, n), the input last; igcli's
    default IDGI with steps = n - 1 puts its gradients at the same alphas. Measured max relative error
    3.7e-16 .. 4.1e-15 per image; with the old default (``right``) schedule 4.1e-2 .. 7.7e-2."""
    n = 17
    ours = idgi_default(model, images, method="ig", steps=n - 1, baseline="black")
    explicit = igcli.attribute(model, images, list(TARGETS), method="ig", rule="idgi", baseline="black",
                               schedule=list(np.linspace(0.0, 1.0, n)), device="cpu").attributions
    for i, target in enumerate(TARGETS):
        image = to_hwc(images[i])
        recorder = RecordingCallModelFunction(model, target)
        saliency_core.IntegratedGradients().GetMask(image, recorder, x_baseline=np.zeros_like(image), x_steps=n,
                                                    batch_size=1)
        assert len(recorder.points) == n
        np.testing.assert_array_equal(recorder.points[0], np.zeros_like(image))
        np.testing.assert_allclose(recorder.points[-1], image, rtol=0, atol=1e-15)
        expected = to_chw(authors_idgi(recorder.gradients, recorder.predictions))
        assert expected.abs().max() > 0
        error = max_rel_error(ours[i], expected)
        assert error <= 1e-12, f"image {i}: max relative error {error:.3g}"
        assert max_rel_error(explicit[i], expected) <= 1e-12  # the same partition given as alphas
        # Guard: the gradient at the cell's end is another (valid) rule and must not pass.
        misplaced = to_chw(idgi_gradient_at_cell_end(recorder.gradients, recorder.predictions))
        assert max_rel_error(misplaced, expected) > 1e-2


# -- Blur IG ---------------------------------------------------------------------------------------------------------


def pair_blur_recording(model, image: torch.Tensor, target: int, max_sigma: float, n: int):
    """PAIR's BlurIG(max_sigma, steps=n) recorded, reversed into path order (most blurred first, input last)."""
    recorder = RecordingCallModelFunction(model, target)
    saliency_core.BlurIG().GetMask(to_hwc(image), recorder, max_sigma=max_sigma, steps=n, batch_size=1)
    assert len(recorder.points) == n
    np.testing.assert_array_equal(recorder.points[0], to_hwc(image))  # sigma 0 first: PAIR goes input -> blur
    return recorder.gradients[::-1], recorder.predictions[::-1]


@pytest.mark.parametrize("max_sigma", [6.4, 12.8])
def test_idgi_on_pairs_blur_ig_path_equals_the_authors_function(model, images, max_sigma, monkeypatch):
    """With every kernel truncated as scipy truncates it (radius int(4 sigma + 0.5) per sigma; igcli's blur with
    ``radius=None``, swapped in as in test_reference_pair), igcli's points are PAIR's and the maps agree to
    rounding: measured max relative error 3.9e-16 .. 5.4e-15 (max_sigma 6.4 and 12.8). Those max_sigma keep
    every 4 sigma_i + 0.5 at least 0.1 from an integer: at sigma = 0.375, 1.125, ... (max_sigma 6 with n = 16) a
    one-ulp difference in sigma moves scipy's radius by a pixel and the maps by ~1e-6.
    Guards: cell-end gradients differ by 0.11 .. 0.71; IDGI over the whole blur path (sigma from max_sigma,
    ``steps=n``, the cell PAIR never evaluates included) by 2.3e-3 .. 6.8e-2."""

    class ScipyTruncatedBlurPath(igcli.paths.BlurPath):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.radius = None

    monkeypatch.setattr(igcli.paths, "BlurPath", ScipyTruncatedBlurPath)
    n = 16
    options = dict(method="blurig", blur_padding="constant")
    ours = idgi_default(model, images, steps=n - 1, max_sigma=max_sigma * (n - 1) / n, **options)
    whole_path = idgi_default(model, images, steps=n, max_sigma=max_sigma, **options)
    for i, target in enumerate(TARGETS):
        gradients, predictions = pair_blur_recording(model, images[i], target, max_sigma, n)
        expected = to_chw(authors_idgi(gradients, predictions))
        assert expected.abs().max() > 0
        error = max_rel_error(ours[i], expected)
        assert error <= 1e-12, f"image {i}: max relative error {error:.3g}"
        misplaced = to_chw(idgi_gradient_at_cell_end(gradients, predictions))
        assert max_rel_error(misplaced, expected) > 1e-2
        assert max_rel_error(whole_path[i], expected) > 1e-3


def test_idgi_on_pairs_blur_ig_path_with_igclis_fixed_kernel_radius(model, images):
    """igcli's own blur cuts every kernel at the radius of the path's max_sigma (a smooth path; scipy's radius
    jumps with sigma), so its points differ from PAIR's in the far tails (weights ~exp(-8)) and the maps agree
    to that: measured max relative error 2.9e-6 .. 1.4e-5 (max_sigma 6.4; cell-end gradients: 0.11 and more)."""
    n, max_sigma = 16, 6.4
    ours = idgi_default(model, images, method="blurig", steps=n - 1, max_sigma=max_sigma * (n - 1) / n)
    for i, target in enumerate(TARGETS):
        gradients, predictions = pair_blur_recording(model, images[i], target, max_sigma, n)
        expected = to_chw(authors_idgi(gradients, predictions))
        error = max_rel_error(ours[i], expected)
        assert error <= 5e-5, f"image {i}: max relative error {error:.3g}"


# -- Guided IG -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fraction, max_dist", [(0.25, 0.02), (0.25, 0.1), (0.1, 1.0)])
def test_idgi_on_pairs_guided_ig_path_equals_the_authors_function(model, images, pair_numpy_shim, fraction,
                                                                   max_dist):
    """PAIR's GuidedIG with x_steps = n takes a gradient at the start of every step and moves on from it; igcli's
    Guided IG walks the same path in float64 (test_reference_pair: maps equal to 1e-15), so the features chosen
    at every step are the same and so are the points. The path depends on the gradients, so a rounding-level
    difference could in principle pick another feature at a quantile tie; none happens here: measured max
    relative error 2.7e-16 .. 4.5e-15 in all settings. Guard: cell-end gradients differ by 4.1e-2 .. 0.34."""
    n = 16
    ours = idgi_default(model, images, method="gig", steps=n, baseline="black", fraction=fraction,
                        max_dist=max_dist)
    for i, target in enumerate(TARGETS):
        image = to_hwc(images[i])
        recorder = RecordingCallModelFunction(model, target)
        saliency_core.GuidedIG().GetMask(image, recorder, x_baseline=np.zeros_like(image), x_steps=n,
                                         fraction=fraction, max_dist=max_dist)
        assert len(recorder.points) == n
        np.testing.assert_array_equal(recorder.points[0], np.zeros_like(image))
        recorder.record_input(image)  # PAIR never evaluates the input; the last cell needs f there
        expected = to_chw(authors_idgi(recorder.gradients, recorder.predictions))
        assert expected.abs().max() > 0
        error = max_rel_error(ours[i], expected)
        assert error <= 1e-12, f"image {i}: max relative error {error:.3g}"
        misplaced = to_chw(idgi_gradient_at_cell_end(recorder.gradients, recorder.predictions))
        assert max_rel_error(misplaced, expected) > 1e-2
