"""Tiny models with known integrals, built in the tests (no downloads, deterministic), and a tiny disk."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import torch
from torch import nn

# Under pytest-xdist every worker has its share of the cores: torch's own intra-op threads on top of that
# oversubscribe them, and tiny ops then wait on spinning threads (a 0.1 s test took 20 s in the full run).
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))


class SineModel(nn.Module):
    """logit_k(x) = sum_i c_{k,i} sin(x_i): the IG attribution on a straight path is known in closed form,
    IG_i = c_{t,i} (sin x_i - sin x'_i), feature by feature."""

    def __init__(self, shape: tuple[int, int, int], classes: int = 3, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.coefficients = nn.Parameter(torch.randn((classes, *shape), generator=generator, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bchw,kchw->bk", torch.sin(x.to(torch.float64)), self.coefficients).to(x.dtype)

    def exact_ig(self, x: torch.Tensor, baseline: torch.Tensor, target: int) -> torch.Tensor:
        return self.coefficients[target].to(x.dtype) * (torch.sin(x) - torch.sin(baseline))


class CountingModel(nn.Module):
    """Wraps a model and counts forward calls and rows."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.calls = 0
        self.rows = 0
        self.batch_sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.rows += x.shape[0]
        self.batch_sizes.append(x.shape[0])
        return self.inner(x)


def tiny_convnet(channels: int = 3, classes: int = 5, seed: int = 0) -> nn.Module:
    """A small smooth CNN (Tanh, average pooling) in eval mode."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(channels, 6, 3, padding=1),
        nn.Tanh(),
        nn.Conv2d(6, 6, 3, padding=1, stride=2),
        nn.Softplus(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(24, classes),
    )
    return model.eval()


@pytest.fixture
def convnet() -> nn.Module:
    return tiny_convnet()


@pytest.fixture
def images() -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.rand((4, 3, 16, 16), generator=generator)


@pytest.fixture
def small_disk(tmp_path):
    """A 512 KiB tmpfs (root and mount(8) needed; skipped where the test environment cannot mount one)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("cannot mount a tmpfs here")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)
