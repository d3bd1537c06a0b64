"""Image sources: finding inputs, splitting them across ranks, decoding and preprocessing them in workers.

Inputs are image files, folders (walked recursively, common image extensions in any case) or ``-`` for
newline-separated paths on stdin. The list is made deterministic (folders sorted) and de-duplicated, so every
rank of a job and every resumed run sees the same list and splits it the same way.

Decoding is forgiving about what a real folder holds and strict about what it cannot read: CMYK, 16-bit,
greyscale, palette and alpha images become RGB (alpha composited over white); a truncated, empty, mislabelled
or unreadable file becomes a *skip* with its reason, never a crash and never a silent drop.
"""

from __future__ import annotations

import csv
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence, TextIO

import numpy as np
import torch
from PIL import Image

from .errors import InvalidArgumentError
from .models import Preprocessing

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)


def discover_inputs(inputs: Sequence[str], stdin: TextIO | None = None) -> list[str]:
    """The ordered, de-duplicated list of image paths that ``inputs`` name.

    Args:
        inputs: files (taken whatever their extension), folders (recursive, image extensions only, sorted)
            and ``-`` (paths read from ``stdin``, one per line; blank lines and ``#`` comments ignored).
        stdin: where ``-`` reads from (default ``sys.stdin``).

    Returns:
        Paths as given (folder entries joined onto the folder as given). Paths from stdin are not checked here:
        one that does not exist becomes a skip when it is read.

    Raises:
        InvalidArgumentError: a path on the command line does not exist, or nothing was found.
    """
    found: dict[str, None] = {}
    for entry in inputs:
        if entry == "-":
            for line in (stdin or sys.stdin):
                line = line.strip()
                if line and not line.startswith("#"):
                    found.setdefault(line, None)
        elif os.path.isdir(entry):
            for path in _walk_images(entry):
                found.setdefault(path, None)
        elif os.path.exists(entry) or os.path.islink(entry):
            found.setdefault(entry, None)
        else:
            raise InvalidArgumentError(f"input {entry}: no such file or folder")
    if not found:
        raise InvalidArgumentError(
            f"no images found in {' '.join(inputs)} (extensions: {', '.join(sorted(IMAGE_EXTENSIONS))})"
        )
    return list(found)


def _walk_images(folder: str) -> Iterable[str]:
    paths = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                paths.append(os.path.join(root, name))
    return sorted(paths)


def select_part(paths: Sequence[str], index: int, count: int) -> list[str]:
    """Part ``index`` of ``count`` (round-robin, so parts differ in size by at most one and stay balanced
    when the list is sorted by folder)."""
    if not (0 <= index < count):
        raise InvalidArgumentError(f"part {index}/{count}: index must be in 0..{count - 1}")
    return list(paths[index::count])


# -- labels ----------------------------------------------------------------------------------------------------


class LabelResolver:
    """The true class of an image, for ``--target label``.

    From ``--labels FILE`` (CSV with columns ``path,label``; paths as given on the command line, or relative to
    the CSV's folder, or absolute) when given, else from the image's parent folder name (ImageFolder layout):
    an integer, an ImageNet WordNet ID (``n01440764``) for 1000-class ImageNet models, or a class name of the
    model's categories (case and ``_``/space insensitive).
    """

    def __init__(self, csv_path: str | None = None, categories: Sequence[str] | None = None) -> None:
        self.categories = {self._key(name): index for index, name in enumerate(categories or ())}
        self.wnids = _imagenet_wnids() if categories is not None and len(categories) == 1000 else {}
        self.table: dict[str, str] | None = None
        if csv_path is not None:
            self.table = self._read_csv(csv_path)

    @staticmethod
    def _key(name: str) -> str:
        return name.strip().lower().replace("_", " ")

    @staticmethod
    def _read_csv(csv_path: str) -> dict[str, str]:
        try:
            with open(csv_path, newline="") as handle:
                rows = list(csv.reader(handle))
        except OSError as error:
            raise InvalidArgumentError(f"--labels {csv_path}: {error.strerror}") from None
        if rows and rows[0][:2] == ["path", "label"]:
            rows = rows[1:]
        base = os.path.dirname(os.path.abspath(csv_path))
        table = {}
        for number, row in enumerate(rows, start=1):
            if len(row) < 2:
                raise InvalidArgumentError(f"--labels {csv_path}: line {number} needs two columns, path,label")
            path, label = row[0].strip(), row[1].strip()
            table[path] = label
            table[os.path.normpath(os.path.join(base, path))] = label
        return table

    def _parse(self, label: str) -> int | None:
        if label.lstrip("-").isdigit():
            return int(label)
        if label in self.wnids:
            return self.wnids[label]
        return self.categories.get(self._key(label))

    def __call__(self, path: str) -> int:
        """The class index of ``path``; ValueError (with a reason) when it has none."""
        if self.table is not None:
            label = self.table.get(path) or self.table.get(os.path.normpath(os.path.abspath(path)))
            if label is None:
                raise ValueError("no row for this image in --labels")
        else:
            label = Path(path).parent.name
        index = self._parse(label)
        if index is None:
            raise ValueError(f"label {label!r} is not a class index, ImageNet WordNet ID or class name")
        return index


def _imagenet_wnids() -> dict[str, int]:
    text = (Path(__file__).parent / "resources" / "imagenet_wnids.txt").read_text()
    return {wnid: index for index, wnid in enumerate(text.split())}


# -- decoding --------------------------------------------------------------------------------------------------


def load_rgb(path: str) -> Image.Image:
    """Decode ``path`` fully into an 8-bit RGB image.

    CMYK and palette images are converted, 16-bit images scaled (not clipped) to 8 bits, alpha composited over
    white. Raises OSError/ValueError (PIL's, or ours for sizes PIL refuses) for files that cannot be images.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as image:
            image.load()  # a truncated file fails here, not later in a worker's transform
            return _to_rgb(image)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit greyscale: convert("RGB") would clip every value above 255 to white.
        values = np.asarray(image, dtype=np.float64)
        scale = 255.0 / 65535.0 if values.max(initial=0) > 255 or image.mode.startswith("I;16") else 1.0
        image = Image.fromarray(np.clip(values * scale + 0.5, 0, 255).astype(np.uint8), mode="L")
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.clip(values * (255.0 if values.max(initial=0) <= 1 else 1.0), 0, 255).astype(np.uint8))
    if image.mode == "P":
        image = image.convert("RGBA") if "transparency" in image.info else image.convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def preprocess_pixels(image: Image.Image, preprocessing: Preprocessing) -> torch.Tensor:
    """Resize the short side to ``resize``, centre-crop ``crop`` x ``crop``: (3, crop, crop) uint8 pixels."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    pixels = F.pil_to_tensor(image)
    pixels = F.resize(pixels, [preprocessing.resize], interpolation=InterpolationMode(preprocessing.interpolation), antialias=True)
    return F.center_crop(pixels, [preprocessing.crop, preprocessing.crop])


def normalize(pixels: torch.Tensor, preprocessing: Preprocessing) -> torch.Tensor:
    """(B, 3, H, W) uint8 pixels -> float32 model inputs, on the pixels' device."""
    return preprocessing.normalization.from_pixels(pixels.float() / 255.0)


@dataclass
class Sample:
    """One decoded input: ``pixels`` (3, H, W) uint8, or ``reason`` why it was skipped."""

    index: int
    pixels: torch.Tensor | None
    label: int
    reason: str | None


@dataclass
class Batch:
    """Decoded inputs of one loader step: the good ones stacked, the bad ones with reasons."""

    indices: list[int]
    pixels: torch.Tensor  # (B, 3, H, W) uint8
    labels: torch.Tensor  # (B,) int64, -1 where not asked for
    skipped: list[tuple[int, str]]

    def pin_memory(self) -> "Batch":
        """Called by the DataLoader's pinning thread, so host-to-GPU copies can be asynchronous."""
        self.pixels = self.pixels.pin_memory()
        return self


class ImageDataset(torch.utils.data.Dataset):
    """Decodes and preprocesses ``paths[i]`` (in a worker); a failure becomes a :class:`Sample` with a reason."""

    def __init__(self, paths: Sequence[str], preprocessing: Preprocessing, labels: LabelResolver | None = None) -> None:
        self.paths = list(paths)
        self.preprocessing = preprocessing
        self.labels = labels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Sample:
        path = self.paths[index]
        try:
            label = self.labels(path) if self.labels is not None else -1
        except ValueError as error:
            return Sample(index, None, -1, str(error))
        try:
            pixels = preprocess_pixels(load_rgb(path), self.preprocessing)
        except Image.DecompressionBombWarning:
            return Sample(index, None, -1, "image larger than PIL's decompression-bomb limit")
        except Exception as error:  # PIL raises OSError, ValueError, SyntaxError, ... for broken files
            return Sample(index, None, -1, describe_decode_error(error))
        return Sample(index, pixels, label, None)


def describe_decode_error(error: BaseException) -> str:
    if isinstance(error, FileNotFoundError):
        return "file not found"
    if isinstance(error, PermissionError):
        return "permission denied"
    if isinstance(error, IsADirectoryError):
        return "is a directory"
    text = str(error).strip().splitlines()
    message = text[0] if text else type(error).__name__
    if "cannot identify image file" in message:
        return "not an image PIL can read (empty, truncated header or another format)"
    return f"cannot decode image: {message}"


def collate(samples: list[Sample]) -> Batch:
    good = [s for s in samples if s.pixels is not None]
    pixels = torch.stack([s.pixels for s in good]) if good else torch.empty(0, 3, 0, 0, dtype=torch.uint8)
    return Batch(
        [s.index for s in good],
        pixels,
        torch.tensor([s.label for s in good], dtype=torch.int64),
        [(s.index, s.reason or "") for s in samples if s.pixels is None],
    )


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # decoding workers must not compete with the model's threads


def make_loader(
    dataset: ImageDataset, images_per_batch: int, workers: int, pin_memory: bool
) -> torch.utils.data.DataLoader:
    """Batches of decoded images, prepared by ``workers`` processes while the previous batch computes."""
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=images_per_batch,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        worker_init_fn=_worker_init if workers > 0 else None,
        prefetch_factor=2 if workers > 0 else None,
        persistent_workers=False,
    )


def default_workers() -> int:
    """Decoding processes: half the cores this process may use (its CPU affinity, which SLURM and containers
    restrict), shared among the ranks torchrun starts on the node; at least 1, at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 2
    ranks_on_node = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(1, min(8, cores // 2 // ranks_on_node))
