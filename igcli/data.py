"""Image sources: finding inputs, splitting them across ranks, decoding and preprocessing them in workers.

Inputs are image files, folders (walked recursively, common image extensions in any case, each real folder
once however many links lead to it) or ``-`` for newline- or NUL-separated paths on stdin. The list is made
deterministic (folders sorted) and de-duplicated, so every rank of a job and every resumed run sees the same list
and splits it the same way.

Decoding is forgiving about what a real folder holds and strict about what it cannot read: CMYK, 16-bit,
greyscale, palette and alpha images become RGB (alpha composited over white); a truncated, empty, mislabelled
or unreadable file becomes a *skip* with its reason, never a crash and never a silent drop. Only regular files
are opened (a FIFO would block the run for ever), and EXIF orientation is applied, as image viewers do.
"""

from __future__ import annotations

import errno
import io
import os
import signal
import stat
import sys
import warnings
from dataclasses import dataclass
from typing import Iterable, Sequence, TextIO

import numpy as np
import torch
from PIL import Image, ImageOps

from .errors import InvalidArgumentError
from .labels import LabelResolver
from .models import Preprocessing
from .text import absolute_path

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)


def discover_inputs(inputs: Sequence[str], stdin: TextIO | None = None, *, null: bool = False) -> list[str]:
    """The ordered, de-duplicated list of image paths that ``inputs`` name.

    Args:
        inputs: files (taken whatever their extension), folders (recursive, image extensions only, sorted,
            each real folder walked once so symlink loops end) and ``-`` (paths read from ``stdin``, one per
            line, each line verbatim but for its newline: spaces and a leading ``#`` are part of the name;
            empty lines are ignored, as no file has an empty name).
        stdin: where ``-`` reads from (default ``sys.stdin``). Read as bytes when it has a ``buffer`` (a real
            stdin), so names that are not UTF-8 survive (as :func:`os.fsdecode` strings); else as text.
        null: paths on stdin are separated by NUL bytes instead of newlines (``find -print0``), for names that
            contain newlines.

    Returns:
        Paths as given (folder entries joined onto the folder as given). Paths from stdin are not checked here:
        one that does not exist becomes a skip when it is read.

    Raises:
        InvalidArgumentError: a path on the command line does not exist, or nothing was found.
    """
    found: dict[str, None] = {}
    for entry in inputs:
        if entry == "-":
            for path in _read_path_list(stdin if stdin is not None else sys.stdin, null):
                found.setdefault(path, None)
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


def input_root(inputs: Sequence[str], paths: Sequence[str], cwd: str | None = None) -> str:
    """The folder that held a run's inputs, absolute: the deepest folder containing every folder given and the
    folder of every image file (given, or listed on stdin). ``igcli attribute imgs`` has ``imgs`` (even when
    all images lie in one subfolder of it). Recorded in the shards; ``--root DIR`` replaces it.

    Args:
        inputs: the inputs as given (files, folders, ``-``).
        paths: the image paths :func:`discover_inputs` found in them.
        cwd: what relative paths are relative to (default: the current folder).
    """
    cwd = os.getcwd() if cwd is None else cwd
    folders = [entry for entry in inputs if entry != "-" and os.path.isdir(entry)]
    folders += [os.path.dirname(path) for path in paths]
    absolute = {absolute_path(folder, cwd) for folder in folders} or {cwd}
    try:
        return os.path.commonpath(sorted(absolute))
    except ValueError:  # (Windows) folders on different drives have no common folder
        return os.path.abspath(os.sep)


def _read_path_list(stream: TextIO, null: bool) -> list[str]:
    """The paths in ``stream``: entries separated by newlines (or NULs), taken verbatim, empty ones dropped.

    Nothing is stripped: a file name may start or end with spaces or start with ``#``, and the list is what
    ``find`` or ``ls`` printed. Bytes are read where the stream has them, because a name need not be UTF-8:
    :func:`os.fsdecode` turns it into a string that :func:`open` turns back into the same bytes.
    """
    separator = "\0" if null else "\n"
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        entries = [os.fsdecode(entry) for entry in buffer.read().split(separator.encode())]
    else:  # a text stream without bytes beneath (io.StringIO, a library caller's list)
        entries = stream.read().split(separator)
    if not null and any("\0" in entry for entry in entries):
        # No file name holds a NUL: this is a NUL-separated list (find -print0) read as lines.
        raise InvalidArgumentError("-: the list of paths on stdin holds NUL bytes (find -print0?); pass --null "
                                   "(-0) to read it as NUL-separated")
    return [entry for entry in entries if entry]


def _walk_images(folder: str) -> Iterable[str]:
    """The image files under ``folder``, sorted; each real directory is walked once.

    Links to directories are followed (a dataset is often a folder of links to where the images live), but
    only after the tree itself has been walked and only to directories not seen yet, by device and inode:
    a link loop (``ln -s . loop``) then ends at once instead of multiplying the list (or never ending), and a
    directory reached both directly and through a link keeps its real name (which ``--target label`` reads).
    """
    paths = []
    visited: set[tuple[int, int]] = set()
    pending = [folder]  # the tree first, then the links found in it, in the order found
    while pending:
        top = pending.pop(0)
        for root, dirs, files in os.walk(top):  # followlinks=False: links are queued below instead
            key = _directory_key(root)
            if key is None or key in visited:
                dirs[:] = []
                continue
            visited.add(key)
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            pending.extend(os.path.join(root, d) for d in dirs if os.path.islink(os.path.join(root, d)))
            for name in files:
                if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                    paths.append(os.path.join(root, name))
    return sorted(paths)


def _directory_key(path: str) -> tuple[int, int] | None:
    """(device, inode) of the directory ``path`` leads to, None when it cannot be read."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def select_part(paths: Sequence[str], index: int, count: int) -> list[str]:
    """Part ``index`` of ``count`` (round-robin, so parts differ in size by at most one and stay balanced
    when the list is sorted by folder)."""
    if not (0 <= index < count):
        raise InvalidArgumentError(f"part {index}/{count}: index must be in 0..{count - 1}")
    return list(paths[index::count])


# -- decoding --------------------------------------------------------------------------------------------------


class NotRegularFileError(OSError):
    """The path is a FIFO, device or socket: reading it could block for ever or never end, so it is not read."""


def load_rgb(path: str, *, exif_transpose: bool = True) -> Image.Image:
    """Decode ``path`` fully into an 8-bit RGB image.

    CMYK and palette images are converted, 16-bit images scaled (not clipped) to 8 bits, alpha composited over
    white. With ``exif_transpose`` the EXIF orientation is applied (a phone photo stored sideways comes out
    upright, as viewers and the people who labelled it saw it). Raises OSError/ValueError (PIL's, or ours for
    sizes PIL refuses) for files that cannot be images, :class:`NotRegularFileError` for FIFOs, devices and
    sockets.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with _open_regular(path) as handle, Image.open(handle) as image:
            image.load()  # a truncated file fails here, not later in a worker's transform
            return _to_rgb(_apply_exif_orientation(image) if exif_transpose else image)


def _open_regular(path: str) -> io.BufferedReader:
    """``path`` opened for reading in binary, or :class:`NotRegularFileError` when it is not a regular file.

    The check is on the opened file (fstat), not on the name first, so nothing can swap it in between; the
    open is non-blocking because opening a FIFO to read otherwise waits for a writer, for ever.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # follows symlinks, like open()
    except OSError as error:
        if error.errno == errno.ENXIO:  # a socket, or a device with nothing behind it
            raise NotRegularFileError(errno.ENXIO, "not a regular file", path) from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(errno.EINVAL, "not a regular file", path)
        os.set_blocking(fd, True)  # an ordinary file object from here on
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _apply_exif_orientation(image: Image.Image) -> Image.Image:
    """``image`` turned as its EXIF orientation says; unchanged when its EXIF block cannot be parsed, because a
    damaged tag should not cost an image whose pixels decode."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # PIL raises SyntaxError, ValueError, struct.error, ... for broken EXIF
        return image


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
            image = load_rgb(path, exif_transpose=self.preprocessing.exif_transpose)
            pixels = preprocess_pixels(image, self.preprocessing)
        except Image.DecompressionBombWarning:
            return Sample(index, None, -1, "image larger than PIL's decompression-bomb limit")
        except Exception as error:  # PIL raises OSError, ValueError, SyntaxError, ... for broken files
            return Sample(index, None, -1, describe_decode_error(error))
        return Sample(index, pixels, label, None)


def describe_decode_error(error: BaseException) -> str:
    """The skip reason for an exception raised while reading an image: short, one line, no path."""
    if isinstance(error, NotRegularFileError):
        return "not a regular file (a FIFO, device or socket); only regular files are read"
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
    # SLURM and Ctrl-C signal the whole process group: a worker dying of it would make the DataLoader raise in
    # the main process before the main process saves its work. The main process decides, and ends the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _second_sigterm_ends_worker)


def _second_sigterm_ends_worker(signum: int, frame: object) -> None:
    """The group's SIGTERM is ignored; a second one (multiprocessing's terminate() at the main process's exit,
    should the orderly shutdown not have happened) ends the worker, so that exit never waits on it."""
    _WorkerSignals.count += 1
    if _WorkerSignals.count > 1:
        os._exit(0)


class _WorkerSignals:
    count = 0


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
