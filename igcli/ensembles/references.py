"""Reference images that baselines are drawn from: a tensor (library) or a folder (``--baseline-dir``).

A folder is read whole when the run starts, each image decoded and preprocessed like the inputs and kept as
8-bit pixels (150 KB per reference at 224 x 224), so a damaged file stops the run at once, naming it, instead of
changing which references later images draw. Its ``sha256`` (over the names and bytes of its files, in order)
goes into the recipe: ``--resume`` and ``igcli evaluate`` refuse a folder that changed since the maps were made.
"""

from __future__ import annotations

import hashlib
import os
from typing import Protocol, Sequence

import numpy as np
import torch

from ..errors import InvalidArgumentError, ShapeError, first_line
from .draws import to_device


class ReferenceSource(Protocol):
    """R reference inputs in model-input space."""

    def __len__(self) -> int: ...

    def take(self, indices: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """(M, C, H, W) references ``indices`` (M,) int64 on the host."""
        ...


class TensorReferences:
    """References given as one (R, C, H, W) tensor in model-input space (checked finite once, here)."""

    def __init__(self, references: torch.Tensor) -> None:
        if not isinstance(references, torch.Tensor) or references.dim() != 4 or references.shape[0] < 1:
            shape = tuple(references.shape) if isinstance(references, torch.Tensor) else type(references).__name__
            raise InvalidArgumentError(f"references must be a (R, C, H, W) tensor with R >= 1, got {shape}")
        if not references.is_floating_point() or not bool(torch.isfinite(references).all()):
            raise InvalidArgumentError("references must be finite floating-point values in model-input space")
        self.references = references

    def __len__(self) -> int:
        return int(self.references.shape[0])

    def take(self, indices: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        picked = self.references.index_select(0, to_device(indices, self.references.device))
        return picked.to(device=device, dtype=dtype)


class ReferencesChangedError(InvalidArgumentError):
    """A reference folder whose files are not those a recipe recorded."""

    def __init__(self, folder: str) -> None:
        super().__init__(f"the reference folder {folder} changed since the maps were made (its files' sha256 "
                         "differs); restore it to recompute the same maps")


class FolderReferences:
    """The images of a folder (recursive, sorted as inputs are), preprocessed with ``preprocessing``."""

    def __init__(self, folder: str, preprocessing, expected_sha256: str | None = None) -> None:
        """Read ``folder``; with ``expected_sha256`` (a recipe's), its files are hashed first and a folder that
        changed is refused before any image is decoded (a shard naming a large foreign folder costs no decoding)."""
        from ..data import _open_regular, discover_inputs, load_rgb, normalize, preprocess_pixels

        if not os.path.isdir(folder):
            raise InvalidArgumentError(f"--baseline-dir {folder}: no such folder")
        try:
            files = discover_inputs([folder])
        except InvalidArgumentError:
            raise InvalidArgumentError(f"--baseline-dir {folder}: holds no images") from None
        digest = hashlib.sha256()
        for path in files:
            try:
                with _open_regular(path) as handle:  # a FIFO is refused, not waited on for ever
                    data = handle.read()
            except OSError as error:
                raise InvalidArgumentError(f"--baseline-dir: reference {path} cannot be read ({first_line(error)}); "
                                           "remove or replace it") from None
            digest.update(os.path.relpath(path, folder).encode("utf-8", "surrogateescape") + b"\0")
            digest.update(hashlib.sha256(data).digest())
        self.folder, self.files, self.sha256 = folder, files, digest.hexdigest()
        if expected_sha256 is not None and self.sha256 != expected_sha256:
            raise ReferencesChangedError(folder)
        pixels = []
        for path in files:
            try:
                pixels.append(preprocess_pixels(load_rgb(path, exif_transpose=preprocessing.exif_transpose),
                                                preprocessing))
            except Exception as error:
                raise InvalidArgumentError(f"--baseline-dir: reference {path} cannot be read ({first_line(error)}); "
                                           "remove or replace it") from None
        self.pixels = torch.stack(pixels)
        self._normalize = lambda rows: normalize(rows, preprocessing)

    def __len__(self) -> int:
        return len(self.files)

    def take(self, indices: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        rows = to_device(self.pixels.index_select(0, indices.cpu()), device)  # 8-bit over the bus, float there
        return self._normalize(rows).to(dtype)


def as_reference_source(references: "torch.Tensor | ReferenceSource | None",
                        input_shape: Sequence[int] | None = None) -> "ReferenceSource | None":
    """A tensor wrapped as :class:`TensorReferences` (its (C, H, W) checked against ``input_shape``, the
    inputs' (B, C, H, W), when given: broadcasting would silently mix one channel into three); a source or
    None as is. InvalidArgumentError/ShapeError for anything else."""
    if references is None:
        return None
    if not isinstance(references, torch.Tensor):
        # numpy arrays have take and len too, with another meaning: only a source made for this is one
        if (callable(getattr(references, "take", None)) and callable(getattr(references, "__len__", None))
                and not isinstance(references, np.ndarray)):
            return references
        raise InvalidArgumentError("references must be a (R, C, H, W) tensor in model-input space or a "
                                   f"ReferenceSource, got {type(references).__name__}")
    source = TensorReferences(references)
    if input_shape is not None and tuple(references.shape[1:]) != tuple(input_shape[1:]):
        raise ShapeError(f"references of shape {tuple(references.shape)} do not fit inputs of shape "
                         f"{tuple(input_shape)}; give (R, C, H, W) with the inputs' C, H, W")
    return source


def reference_names(source: ReferenceSource) -> Sequence[str] | None:
    """The files behind a folder source (None for a tensor)."""
    return getattr(source, "files", None)
