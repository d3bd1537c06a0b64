"""The Blur IG path: the input blurred by a Gaussian whose width shrinks from ``max_sigma`` to 0.

Blur IG (Xu et al. 2020; Yang et al. 2023, Eq. 4-5, Swain and Singhi 2024, Eq. 2-3) integrates along
gamma(alpha) = G_sigma(alpha) * x with sigma(alpha) = max_sigma (1 - alpha), linear in sigma as in PAIR's
reference code. The blur is separable, so on an H x W image it is M_H X M_W^T with M a (size x size) matrix
that holds the truncated, normalised 1-D Gaussian kernel of ``scipy.ndimage.gaussian_filter`` (radius
int(4 sigma + 0.5)) with the boundary folded in. That form is exact for any sigma (even a kernel wider than the
image), batches over rows with different sigmas as one batched matmul on the device, and has an exact
derivative: d M / d sigma comes from differentiating the normalised kernel weights,
d w_k / d sigma = w_k (k^2 - sum_j w_j j^2) / sigma^3. PAIR instead uses a forward finite difference with
step 0.01, available here as ``derivative="finite"``.
"""

from __future__ import annotations

import torch

from ..errors import InvalidArgumentError

PADDING_MODES = ("reflect", "constant")
DERIVATIVES = ("exact", "finite")
TRUNCATE = 4.0  # scipy.ndimage.gaussian_filter's default, in standard deviations


def _kernel_radius(sigma: torch.Tensor) -> torch.Tensor:
    return (TRUNCATE * sigma + 0.5).floor().to(torch.int64)


def blur_matrices(
    size: int,
    sigmas: torch.Tensor,
    padding: str = "reflect",
    with_derivative: bool = False,
    radius: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Matrices that blur one image axis of length ``size``.

    Args:
        size: length of the axis (pixels).
        sigmas: (R,) standard deviations in pixels, >= 0.
        padding: ``reflect`` (scipy's half-sample symmetric 'reflect') or ``constant`` (zeros outside).
        with_derivative: also return d M / d sigma.
        radius: kernel half-width for every row; None truncates each row at int(4 sigma + 0.5) like scipy.
            A fixed radius makes M a smooth function of sigma (scipy's radius jumps as sigma grows, which
            makes the blur path jump by up to ~1e-4 of the image at each increment).

    Returns:
        (M, dM): (R, size, size) float64 each, such that ``M[r] @ v`` blurs a column ``v``; dM is None unless
        ``with_derivative``.
    """
    if padding not in PADDING_MODES:
        raise InvalidArgumentError(f"unknown blur padding {padding!r}; choose from {', '.join(PADDING_MODES)}")
    sigmas = sigmas.to(torch.float64)
    device = sigmas.device
    rows = sigmas.shape[0]
    if radius is None:
        radii = _kernel_radius(sigmas)
        max_radius = int(radii.max().item()) if rows else 0  # the host waits for the device: once per call only
    else:
        # A fixed radius is known on the host: the kernel's width needs no read-back from the device, so the
        # per-chunk calls of a Blur IG path never wait for it.
        radii = torch.full_like(sigmas, radius, dtype=torch.int64)
        max_radius = int(radius) if rows else 0
    offsets = torch.arange(-max_radius, max_radius + 1, device=device, dtype=torch.float64)
    inside = offsets.abs().unsqueeze(0) <= radii.unsqueeze(1)  # (R, K)
    safe_sigma = sigmas.clamp_min(1e-12).unsqueeze(1)
    exponent = -0.5 * (offsets.unsqueeze(0) / safe_sigma) ** 2
    weights = torch.where(inside, torch.exp(exponent), torch.zeros((), dtype=torch.float64, device=device))
    weights = weights / weights.sum(dim=1, keepdim=True)

    positions = torch.arange(size, device=device).unsqueeze(1) + offsets.to(torch.int64).unsqueeze(0)  # (size, K)
    if padding == "reflect":
        period = 2 * size
        folded = torch.remainder(positions, period)
        source = torch.where(folded >= size, period - 1 - folded, folded)
        valid = torch.ones_like(source, dtype=torch.bool)
    else:
        valid = (positions >= 0) & (positions < size)
        source = positions.clamp(0, size - 1)
    source = source.unsqueeze(0).expand(rows, size, -1)
    valid = valid.unsqueeze(0)

    def assemble(kernel: torch.Tensor) -> torch.Tensor:
        values = kernel.unsqueeze(1).expand(rows, size, -1) * valid
        matrix = torch.zeros(rows, size, size, dtype=torch.float64, device=device)
        return matrix.scatter_add_(2, source, values)

    matrix = assemble(weights)
    if not with_derivative:
        return matrix, None
    second_moment = (weights * offsets.unsqueeze(0) ** 2).sum(dim=1, keepdim=True)
    kernel_derivative = weights * (offsets.unsqueeze(0) ** 2 - second_moment) / safe_sigma**3
    # A kernel of radius 0 is the identity whatever sigma is: its derivative is exactly zero.
    kernel_derivative = torch.where(radii.unsqueeze(1) > 0, kernel_derivative, torch.zeros_like(kernel_derivative))
    return matrix, assemble(kernel_derivative)


def _apply(images: torch.Tensor, along_height: torch.Tensor, along_width: torch.Tensor) -> torch.Tensor:
    dtype = images.dtype
    return along_height.to(dtype).unsqueeze(1) @ images @ along_width.to(dtype).transpose(1, 2).unsqueeze(1)


def gaussian_blur(
    images: torch.Tensor, sigmas: torch.Tensor | float, padding: str = "reflect", radius: int | None = None
) -> torch.Tensor:
    """Blur (R, C, H, W) images over H and W, row r with standard deviation ``sigmas[r]`` pixels.

    With ``radius=None`` this matches ``scipy.ndimage.gaussian_filter(image, sigma=[0, s, s], mode=padding)``
    per row; see :func:`blur_matrices` for ``radius``.
    """
    rows, _, height, width = images.shape
    if isinstance(sigmas, torch.Tensor):
        sigmas = sigmas.to(dtype=torch.float64, device=images.device).expand(rows)
    else:
        # One width for every row: its radius is scipy's, worked out on the host, and the widths are filled in
        # on the device rather than copied there (a copy from pageable memory makes the host wait).
        if radius is None:
            radius = int(TRUNCATE * float(sigmas) + 0.5)
        sigmas = torch.full((rows,), float(sigmas), dtype=torch.float64, device=images.device)
    along_height, _ = blur_matrices(height, sigmas, padding, radius=radius)
    along_width = along_height if width == height else blur_matrices(width, sigmas, padding, radius=radius)[0]
    return _apply(images, along_height, along_width)


class BlurPath:
    """The Blur IG path for (B, C, H, W) ``inputs``: sigma(alpha) = max_sigma (1 - alpha).

    Args:
        inputs: (B, C, H, W) images as the model sees them.
        max_sigma: blur width at alpha = 0, in pixels (PAIR's default 50).
        padding: boundary handling of the blur, ``reflect`` (default: the blur then commutes with per-channel
            normalisation) or ``constant`` (zeros, as PAIR's reference code).
        derivative: ``exact`` (analytic d gamma / d alpha) or ``finite`` (PAIR's forward difference).
        finite_step: the sigma step of the finite difference (PAIR: 0.01).
    """

    name = "blur"

    def __init__(
        self,
        inputs: torch.Tensor,
        max_sigma: float = 50.0,
        padding: str = "reflect",
        derivative: str = "exact",
        finite_step: float = 0.01,
    ) -> None:
        if not (max_sigma > 0):
            raise InvalidArgumentError(f"max_sigma must be > 0 pixels, got {max_sigma!r}")
        if derivative not in DERIVATIVES:
            raise InvalidArgumentError(f"unknown blur derivative {derivative!r}; choose from {', '.join(DERIVATIVES)}")
        if padding not in PADDING_MODES:
            raise InvalidArgumentError(f"unknown blur padding {padding!r}; choose from {', '.join(PADDING_MODES)}")
        if not (finite_step > 0):
            raise InvalidArgumentError(f"finite_step must be > 0, got {finite_step!r}")
        self.inputs = inputs
        self.max_sigma = float(max_sigma)
        self.padding = padding
        self.derivative = derivative
        # PAIR's forward difference is not d gamma / d alpha: its map's sum does not equal f(x) - f(x') exactly
        self.exact_velocity = derivative == "exact"
        self.finite_step = float(finite_step)
        # One kernel support for the whole path keeps gamma smooth in alpha, so the exact derivative
        # integrates to f(x) - f(gamma(0)) (see blur_matrices).
        self.radius = int(TRUNCATE * self.max_sigma + 0.5)

    def sigma(self, alphas: torch.Tensor) -> torch.Tensor:
        """Blur width (pixels) at each alpha."""
        return self.max_sigma * (1.0 - alphas.to(torch.float64))

    def start(self) -> torch.Tensor:
        """gamma(0): every image blurred with ``max_sigma``, (B, C, H, W)."""
        rows = self.inputs.shape[0]
        index = torch.arange(rows, device=self.inputs.device)
        return self.points(index, torch.zeros(rows, dtype=torch.float64, device=self.inputs.device))

    def points(self, image_index: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
        """gamma(alpha) for rows (image_index[r], alphas[r]), (R, C, H, W)."""
        return gaussian_blur(self.inputs[image_index], self.sigma(alphas).to(self.inputs.device), self.padding, self.radius)

    def points_and_velocity(self, image_index: torch.Tensor, alphas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """gamma(alpha) and d gamma / d alpha for rows (image_index[r], alphas[r]); each (R, C, H, W)."""
        images = self.inputs[image_index]
        sigmas = self.sigma(alphas).to(images.device)
        height, width = images.shape[-2:]
        if self.derivative == "finite":
            here = gaussian_blur(images, sigmas, self.padding, self.radius)
            ahead = gaussian_blur(images, sigmas + self.finite_step, self.padding, self.radius)
            return here, (ahead - here) * (-self.max_sigma / self.finite_step)
        along_height, d_height = blur_matrices(height, sigmas, self.padding, True, self.radius)
        if width == height:
            along_width, d_width = along_height, d_height
        else:
            along_width, d_width = blur_matrices(width, sigmas, self.padding, True, self.radius)
        dtype = images.dtype
        right = images @ along_width.to(dtype).transpose(1, 2).unsqueeze(1)
        right_derivative = images @ d_width.to(dtype).transpose(1, 2).unsqueeze(1)
        left = along_height.to(dtype).unsqueeze(1)
        points = left @ right
        d_sigma = d_height.to(dtype).unsqueeze(1) @ right + left @ right_derivative
        return points, d_sigma * (-self.max_sigma)
