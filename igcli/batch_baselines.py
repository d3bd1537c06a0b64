"""Baselines for a run's batches: ``--baseline FILE`` read against the loaded model, and ``uniform`` noise
seeded per image from (seed, path), so a map never depends on batching or sharding."""

from __future__ import annotations

import os
from typing import Sequence

import torch

from .baseline_file import MAX_BASELINE_BYTES, read_npy_baseline
from .data import load_rgb, normalize, preprocess_pixels
from .errors import InvalidArgumentError, first_line
from .input_file import read_regular_file
from .methods import BASELINE_NAMES
from .models import LoadedModel
from .text import path_seed, torch_seed


def baseline_from_spec(spec: str, loaded: LoadedModel, device: torch.device) -> str | torch.Tensor:
    """A baseline name the API understands, or the tensor a ``--baseline FILE`` holds (model-input space)."""
    if spec in BASELINE_NAMES:
        return spec
    path = spec
    if not os.path.isfile(path):
        raise InvalidArgumentError(
            f"--baseline {path}: not one of {', '.join(BASELINE_NAMES)} and no such file (give an image, .npy or .pt)"
        )
    if path.endswith(".npy"):  # read and checked as before the model was loaded, now against its crop
        tensor = torch.from_numpy(read_npy_baseline(
            path, read_regular_file("--baseline", path, MAX_BASELINE_BYTES), loaded.preprocessing.crop))
        return tensor.to(device)
    try:
        if path.endswith((".pt", ".pth")):
            tensor = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(tensor, torch.Tensor) or tensor.is_complex() or tensor.dtype == torch.bool:
                raise ValueError(f"it holds a {type(tensor).__name__} of {getattr(tensor, 'dtype', 'objects')}, "
                                 "not one real tensor (3, H, W); save it with torch.save(tensor, FILE)")
            tensor = tensor.float()
        else:
            pixels = preprocess_pixels(load_rgb(path, exif_transpose=loaded.preprocessing.exif_transpose),
                                       loaded.preprocessing)
            tensor = normalize(pixels[None], loaded.preprocessing)[0]
    except Exception as error:
        raise InvalidArgumentError(f"--baseline {path}: cannot read it ({first_line(error)})") from None
    crop = loaded.preprocessing.crop
    if tuple(tensor.shape) != (3, crop, crop):
        raise InvalidArgumentError(f"--baseline {path}: shape {tuple(tensor.shape)}, the model takes (3, {crop}, {crop})")
    if not bool(torch.isfinite(tensor).all()):
        raise InvalidArgumentError(f"--baseline {path}: contains NaN or infinity")
    return tensor.to(device)


def batch_baseline(baseline: str | torch.Tensor, paths: Sequence[str], seed: int, shape: torch.Size,
                   loaded: LoadedModel, device: torch.device) -> str | torch.Tensor:
    """The baseline to pass for a batch: ``uniform`` becomes noise seeded per image from (seed, path), so a
    map never depends on batching or sharding; anything else passes through."""
    if isinstance(baseline, str) and baseline == "uniform":
        return _uniform_baselines(paths, seed, shape, loaded, device)
    return baseline


def _uniform_baselines(paths: Sequence[str], seed: int, shape: torch.Size, loaded: LoadedModel, device: torch.device) -> torch.Tensor:
    """Uniform-noise baselines seeded per image from (seed, path): independent of batching and sharding."""
    noise = []
    for path in paths:
        generator = torch.Generator().manual_seed(torch_seed(path_seed(seed, path)))
        noise.append(torch.rand(shape, generator=generator))
    return loaded.preprocessing.normalization.from_pixels(torch.stack(noise)).to(device)
