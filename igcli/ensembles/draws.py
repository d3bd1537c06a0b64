"""Random draws for stochastic maps, seeded per image so a map never depends on batching, sharding or resuming.

Every draw comes from its own generator, seeded from (run seed, image key, what is drawn, noise draw n, member
k), so the same image gets the same noise, references and alphas whether it is attributed alone, in a batch,
after a resume or again by ``igcli evaluate``. Draws are made on the host (the same numbers on every device)
and copied to the device without making the host wait for it.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import torch

from ..text import draw_key  # noqa: F401 (the key of an input image's draws, torch-free there)
from ..transfer import to_device  # noqa: F401 (the draws' way onto the device)


def draw_seed(seed: int, key: str, stream: str, noise_draw: int, member: int) -> int:
    """The 64-bit generator seed of one draw (a hash: distinct inputs give unrelated streams)."""
    text = f"igcli\0{seed}\0{key}\0{stream}\0{noise_draw}\0{member}".encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


def content_keys(images: torch.Tensor) -> list[str]:
    """A key per image from its values (B, C, H, W): the same image gets the same draws alone or in a batch.
    Reads the images on the host (one copy from a GPU)."""
    host = images.detach().to("cpu", torch.float32).contiguous().numpy()
    return [hashlib.blake2b(image.tobytes(), digest_size=16).hexdigest() for image in host]


class ImageDraws:
    """Draws for a batch of images named by ``keys`` (their paths; positions in the batch for library calls).

    Args:
        seed: the run's ``--seed``.
        keys: one per image, (B,) strings.
    """

    def __init__(self, seed: int, keys: Sequence[str]) -> None:
        self.seed = int(seed)
        self.keys = [str(key) for key in keys]

    def __len__(self) -> int:
        return len(self.keys)

    def _generators(self, stream: str, noise_draw: int, member: int) -> list[torch.Generator]:
        return [torch.Generator().manual_seed(draw_seed(self.seed, key, stream, noise_draw, member)) for key in self.keys]

    def normal(self, noise_draw: int, shape: Sequence[int]) -> torch.Tensor:
        """(B, *shape) standard normal float32 draws: noise draw ``noise_draw`` of every image."""
        return torch.stack([torch.randn(tuple(shape), generator=g) for g in self._generators("noise", noise_draw, 0)])

    def uniform_pixels(self, noise_draw: int, member: int, shape: Sequence[int]) -> torch.Tensor:
        """(B, *shape) float32 uniform [0, 1) draws: a fresh ``uniform`` baseline per ensemble member."""
        return torch.stack([torch.rand(tuple(shape), generator=g)
                            for g in self._generators("uniform", noise_draw, member)])

    def alphas(self, noise_draw: int, member: int) -> torch.Tensor:
        """(B,) float64 alphas uniform in [0, 1): Expected Gradients' point on each image's path."""
        return torch.cat([torch.rand(1, generator=g, dtype=torch.float64)
                          for g in self._generators("alpha", noise_draw, member)])

    def references(self, noise_draw: int, count: int, available: int) -> torch.Tensor:
        """(B, count) int64 indices into ``available`` references for every image: distinct while ``count`` <=
        ``available`` (as path_explain draws them), with replacement beyond."""
        rows = []
        for g in self._generators("references", noise_draw, 0):
            if count <= available:
                rows.append(torch.randperm(available, generator=g)[:count])
            else:
                rows.append(torch.randint(available, (count,), generator=g))
        return torch.stack(rows)
