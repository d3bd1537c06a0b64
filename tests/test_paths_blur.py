import numpy as np
import pytest
import torch
from scipy import ndimage

from igcli.errors import InvalidArgumentError
from igcli.paths.blur import BlurPath, blur_matrices, gaussian_blur


@pytest.mark.parametrize("padding", ["reflect", "constant"])
@pytest.mark.parametrize("sigma", [0.0, 0.4, 2.5, 9.0, 60.0])
def test_blur_matches_scipy_gaussian_filter(padding, sigma):
    generator = torch.Generator().manual_seed(0)
    x = torch.rand((2, 3, 19, 23), generator=generator, dtype=torch.float64)
    reference = np.stack([ndimage.gaussian_filter(img.numpy(), sigma=[0, sigma, sigma], mode=padding) for img in x])
    assert np.abs(gaussian_blur(x, sigma, padding).numpy() - reference).max() < 1e-7


def test_blur_of_a_constant_image_is_the_constant_with_reflect_padding():
    x = torch.full((1, 2, 10, 12), 0.3, dtype=torch.float64)
    assert torch.allclose(gaussian_blur(x, 40.0, "reflect"), x, atol=1e-12)


def test_rows_with_different_sigmas_are_blurred_independently():
    x = torch.rand((3, 1, 12, 12), dtype=torch.float64)
    sigmas = torch.tensor([0.5, 3.0, 0.0], dtype=torch.float64)
    together = gaussian_blur(x, sigmas)
    for row in range(3):
        assert torch.allclose(together[row : row + 1], gaussian_blur(x[row : row + 1], float(sigmas[row])))


def test_exact_derivative_matches_central_difference():
    x = torch.rand((2, 3, 14, 17), dtype=torch.float64)
    path = BlurPath(x, max_sigma=6.0)
    index = torch.tensor([0, 1, 1])
    alphas = torch.tensor([0.1, 0.55, 0.97], dtype=torch.float64)
    _, velocity = path.points_and_velocity(index, alphas)
    h = 1e-6
    difference = (path.points(index, alphas + h) - path.points(index, alphas - h)) / (2 * h)
    assert torch.allclose(velocity, difference, atol=1e-6 * float(velocity.abs().max()))


def test_derivative_matrix_is_the_sigma_derivative_of_the_blur_matrix():
    sigmas = torch.tensor([0.7, 4.0], dtype=torch.float64)
    _, derivative = blur_matrices(15, sigmas, "reflect", with_derivative=True, radius=20)
    h = 1e-6
    ahead, _ = blur_matrices(15, sigmas + h, "reflect", radius=20)
    behind, _ = blur_matrices(15, sigmas - h, "reflect", radius=20)
    assert torch.allclose(derivative, (ahead - behind) / (2 * h), atol=1e-7)


def test_path_runs_from_the_fully_blurred_image_to_the_input():
    x = torch.rand((2, 3, 16, 16), dtype=torch.float64)
    path = BlurPath(x, max_sigma=8.0)
    index = torch.arange(2)
    fully_blurred = gaussian_blur(x, 8.0, radius=path.radius)
    assert torch.allclose(path.start(), fully_blurred)
    assert torch.allclose(path.points(index, torch.ones(2, dtype=torch.float64)), x)
    # a blurred image has less variation than the input
    assert float(fully_blurred.std()) < 0.5 * float(x.std())


def test_finite_difference_derivative_approaches_the_exact_one():
    x = torch.rand((1, 1, 16, 16), dtype=torch.float64)
    index, alphas = torch.tensor([0]), torch.tensor([0.5], dtype=torch.float64)
    _, exact = BlurPath(x, 4.0).points_and_velocity(index, alphas)
    _, finite = BlurPath(x, 4.0, derivative="finite", finite_step=1e-5).points_and_velocity(index, alphas)
    assert torch.allclose(exact, finite, atol=1e-4 * float(exact.abs().max()))


@pytest.mark.parametrize(
    "kwargs", [{"max_sigma": 0}, {"max_sigma": -1}, {"padding": "wrap"}, {"derivative": "spline"}, {"finite_step": 0}]
)
def test_bad_blur_settings_are_refused(kwargs):
    with pytest.raises(InvalidArgumentError):
        BlurPath(torch.zeros(1, 1, 4, 4), **kwargs)
