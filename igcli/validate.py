"""Checks that a file in an output folder is what igcli wrote, before anything trusts it.

An output folder is data that may come from anyone (a colleague, a damaged disk, a crafted file). Every
reader (``--resume``, ``index``, ``evaluate``, ``render``) opens shards through :func:`check_shard`, which turns
whatever is wrong into one :class:`DamagedShardError` naming the file, instead of a raw HDF5 traceback later.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np

from .choices import REDUCTIONS
from .ensembles.aggregates import NOISE_AGGREGATE_NAMES
from .schedules import MAX_STEPS  # torch-free: reading output stays so
from .errors import IgcliError, first_line
from .text import decode_text

# The recorded settings' vocabularies, defined here (torch-free, as reading output must stay) and used by
# the writers too.
INTERPOLATIONS = ("nearest", "bilinear", "bicubic")
MAX_PIXELS = 65536  # the largest --resize/--crop igcli accepts and stores (an image side, in pixels)


class OutputError(IgcliError):
    """The output folder cannot be written or read as igcli output."""

    exit_code = 6


class DamagedShardError(OutputError):
    """A shard (or index) is unreadable, incomplete or not igcli's; ``path`` names it."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem


@dataclass
class ShardInfo:
    """What a valid shard holds: its row count, run settings and the folder that held the run's inputs
    (``input_root``, absolute; None in shards written before it was recorded)."""

    path: Path
    rows: int
    settings: dict[str, Any]
    input_root: str | None = None



def read_settings(handle: h5py.File) -> dict[str, Any]:
    """The run settings in a shard's or index's root attributes, checked (see :func:`check_settings`)."""
    text = handle.attrs.get("settings_json")
    if text is None:
        raise DamagedShardError(handle.filename, "not an igcli output file (no settings_json attribute)")
    try:
        settings = json.loads(text)
    except (TypeError, ValueError, RecursionError) as error:
        raise DamagedShardError(handle.filename, f"settings_json is not valid JSON ({first_line(error)})") from None
    problem = check_settings(settings)
    if problem:
        raise DamagedShardError(handle.filename, f"settings_json: {problem}")
    return settings


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_settings(settings: Any) -> str | None:
    """What is wrong with stored run settings (types and ranges of the keys readers use), or None."""
    if not isinstance(settings, dict):
        return f"expected an object, found {type(settings).__name__}"
    for key in ("method", "model"):
        if not isinstance(settings.get(key), str):
            return f"{key!r} missing or not a string"
    for key in ("rule", "output", "reduce", "schedule", "path", "noise_aggregate", "baseline_dir",
                "baseline_dir_sha256"):
        if key in settings and settings[key] is not None and not isinstance(settings[key], str):
            return f"{key!r} is not a string"
    baseline = settings.get("baseline")
    if baseline is not None and not isinstance(baseline, str) and not (
            isinstance(baseline, list) and baseline and all(isinstance(item, str) for item in baseline)):
        return "'baseline' is neither a string nor a list of strings"
    for key in ("steps", "seed", "noise_samples", "baseline_samples"):
        if key in settings and settings[key] is not None and not _is_int(settings[key]):
            return f"{key!r} is not an integer"
    problem = _adaptive_settings_problem(settings)
    if problem:
        return problem
    if settings.get("noise_aggregate") not in (None, *NOISE_AGGREGATE_NAMES):
        return f"noise_aggregate {settings['noise_aggregate']!r} is not one of {', '.join(NOISE_AGGREGATE_NAMES)}"
    level = settings.get("noise_level")
    if level is not None and not (_is_number(level) and math.isfinite(level) and level >= 0):
        return "'noise_level' is not a finite number >= 0"
    if not 0 <= settings.get("seed", 0) < 2**32:
        return "'seed' is outside 0..2^32-1"
    if settings.get("output", "prob") not in ("prob", "logit"):
        return f"output {settings['output']!r} is neither prob nor logit"
    if settings.get("reduce", "none") not in REDUCTIONS:
        return f"reduce {settings['reduce']!r} is not none, sum or abs-sum"
    stored = settings.get("preprocessing")
    if not isinstance(stored, dict):
        return "'preprocessing' missing or not an object"
    for key in ("resize", "crop"):
        if not _is_int(stored.get(key)) or not 0 < stored[key] <= MAX_PIXELS:
            return f"preprocessing {key!r} is not a positive pixel count"
    mean, std = stored.get("mean"), stored.get("std")
    if not (isinstance(mean, list) and isinstance(std, list) and len(mean) == len(std) == 3
            and all(_is_number(v) for v in mean + std) and all(v > 0 for v in std)):
        return "preprocessing mean/std are not three numbers each (std > 0)"
    if stored.get("interpolation") not in INTERPOLATIONS:
        return f"preprocessing interpolation is not one of {', '.join(INTERPOLATIONS)}"
    if "exif_transpose" in stored and not isinstance(stored["exif_transpose"], bool):
        return "preprocessing exif_transpose is not true or false"
    return None


# --steps auto's per-row datasets: name -> (dtype kinds, dimensions); step_points is (rows, max_steps).
ADAPTIVE_COLUMNS = {"gradient_evaluations": ("iu", 1), "error_estimate": ("f", 1), "tolerance_met": ("iub", 1),
                    "step_points": ("f", 2)}


def _adaptive_settings_problem(settings: dict[str, Any]) -> str | None:
    """What is wrong with ``--steps auto``'s recorded target and limits, or None (also when not recorded)."""
    if settings.get("step_tolerance") is None:
        if settings.get("schedule") == "auto" and "alphas" not in settings:  # else rebuilt as 1 step, silently
            return "'schedule' is auto (steps chosen per image) without 'step_tolerance'"
        return None
    tolerance = settings["step_tolerance"]
    if not (_is_number(tolerance) and 0 < tolerance < 1):
        return "'step_tolerance' is not a number between 0 and 1"
    for key in ("min_steps", "max_steps"):
        if not _is_int(settings.get(key)) or not 1 <= settings[key] <= MAX_STEPS:
            return f"{key!r} is not a step count from 1 to {MAX_STEPS}"
    # The first mesh's evaluations (min_steps, rounded up to whole cells) always fit under the cap.
    if settings["min_steps"] > settings["max_steps"]:
        return f"'min_steps' {settings['min_steps']} is above 'max_steps' {settings['max_steps']}"
    # A reader rebuilds the maps from steps and schedule when they are given: they must not say another thing.
    if settings.get("steps") is not None:
        return f"'steps' is {settings['steps']!r} in a run that chose its steps per image"
    if settings.get("schedule") != "auto":
        return f"'schedule' is {settings.get('schedule')!r} in a run that chose its steps per image"
    return None


def _check_adaptive_columns(path: Path, handle: h5py.File, settings: dict[str, Any], read_data: bool) -> None:
    """A ``--steps auto`` shard with rows holds its four per-row datasets, each of its kind, ``step_points``
    as wide as the recorded ``max_steps`` (so the run's shards concatenate in the index), counts within 1 to
    ``max_steps``, flags 0 or 1, estimates not NaN or negative; with ``read_data`` also each row's points."""
    if settings.get("step_tolerance") is None:
        return
    for name, (kinds, dims) in ADAPTIVE_COLUMNS.items():
        if name not in handle:
            raise DamagedShardError(path, f"dataset {name!r} is missing (the run chose its steps per image)")
        dataset = handle[name]
        if dataset.dtype.kind not in kinds or dataset.ndim != dims:
            raise DamagedShardError(path, f"dataset {name!r} has type {dataset.dtype} and {dataset.ndim} dimensions")
    if handle["step_points"].shape[1] != settings["max_steps"]:
        raise DamagedShardError(path, f"dataset 'step_points' has {handle['step_points'].shape[1]} columns, not "
                                      f"max_steps = {settings['max_steps']}")
    # The per-row values, read whole (a few bytes a row): what the summary, the index and a reader report.
    counts = handle["gradient_evaluations"][:]
    if counts.size and (counts.min() < 1 or counts.max() > settings["max_steps"]):
        raise DamagedShardError(path, f"dataset 'gradient_evaluations' holds counts outside 1 to max_steps = "
                                      f"{settings['max_steps']}")
    if not np.isin(handle["tolerance_met"][:].astype(np.int64), (0, 1)).all():
        raise DamagedShardError(path, "dataset 'tolerance_met' holds values other than 0 and 1")
    estimates = handle["error_estimate"][:]
    if np.isnan(estimates).any() or (estimates < 0).any():  # +inf is one: a map of zeros that misses a change
        raise DamagedShardError(path, "dataset 'error_estimate' holds NaN or negative values")
    if read_data:
        _check_step_points(path, handle["step_points"], counts)


def _check_step_points(path: Path, dataset: h5py.Dataset, counts: np.ndarray) -> None:
    """Each row of ``step_points``: its ``counts[row]`` alphas, increasing within [0, 1], then NaN; read in
    blocks of about 8 MiB (a row is up to MAX_STEPS wide)."""
    width = dataset.shape[1]
    block = max(1, 2**20 // max(1, width))
    for start in range(0, dataset.shape[0], block):
        points = dataset[start : start + block].astype(np.float64)
        taken = np.arange(width) < counts[start : start + block, None]
        good = ((np.isfinite(points) == taken).all(axis=1)
                & np.where(taken, (points >= 0) & (points <= 1), True).all(axis=1)
                & np.where(taken[:, 1:], np.diff(points, axis=1) > 0, True).all(axis=1))
        if not good.all():
            row = start + int(np.flatnonzero(~good)[0])
            raise DamagedShardError(path, f"dataset 'step_points' row {row}: not {counts[row]} increasing alphas in "
                                          "[0, 1] (its gradient_evaluations) then NaN")


def _add_string(digest: Any, value: Any) -> None:
    data = value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogateescape")
    digest.update(len(data).to_bytes(8, "little") + data)


def strings_digest(handle: h5py.File) -> str:
    """SHA-256 over ``paths`` and the skipped paths and reasons (the ``strings_sha256`` attribute): HDF5 keeps
    no checksum for variable-length strings, and a flipped bit in a path would give one image's map another's
    name. The formula is fixed: an igcli from before ``abs_paths`` checks it too, so it covers nothing newer."""
    digest = hashlib.sha256()
    for name in ("paths", "skipped/paths", "skipped/reasons"):
        if name in handle:
            for value in handle[name][:]:
                _add_string(digest, value)
        digest.update(b"|")
    return digest.hexdigest()


def abs_paths_digest(handle: h5py.File) -> str | None:
    """SHA-256 over ``abs_paths`` and the ``input_root`` attribute (the ``abs_paths_sha256`` attribute), kept
    apart from :func:`strings_digest` so older igcli versions still verify shards written by this one; None
    for a shard with neither (written before they were recorded)."""
    if "abs_paths" not in handle and "input_root" not in handle.attrs:
        return None
    digest = hashlib.sha256()
    if "abs_paths" in handle:
        digest.update(b"abs_paths|")
        for value in handle["abs_paths"][:]:
            _add_string(digest, value)
    if "input_root" in handle.attrs:
        digest.update(b"input_root|")
        _add_string(digest, handle.attrs["input_root"])
    return digest.hexdigest()


def check_shard(path: Path | str, *, read_data: bool = False) -> ShardInfo:
    """Open ``path`` and check it against the shard contract (README, Output format).

    Checks: a regular file (a FIFO would block), readable HDF5 (a truncated file fails here), marked complete,
    settings valid, ``rows`` a count, every root entry a plain dataset stored in the file (no soft, external or
    virtual links that could reach outside it, loop or crash HDF5), each with exactly ``rows`` entries, the
    required ones of the right kind, the skipped records paired, and the strings' digest. With ``read_data``
    every dataset is read too, which verifies the Fletcher-32 checksum of every chunk.

    Raises:
        DamagedShardError: naming the file and the first problem found.
    """
    def check(handle: h5py.File) -> ShardInfo:
        info = _check_open_shard(Path(path), handle, read_data)
        if read_data:
            for name in _dataset_names(handle):
                handle[name][...]
        return info

    return check_hdf5_file(path, check)


def check_hdf5_file(path: Path | str, check: Callable[[h5py.File], Any]) -> Any:
    """``check(handle)`` on ``path`` opened read-only, after making sure it is a regular file (a FIFO would
    block); whatever fails (not HDF5, truncated, damaged metadata or data) is a DamagedShardError naming it."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise DamagedShardError(path, "is not a regular file")
        handle = h5py.File(path, "r")
    except OSError as error:
        raise DamagedShardError(path, f"not readable as HDF5, truncated or damaged ({first_line(error)})") from None
    try:
        with handle:
            return check(handle)
    except DamagedShardError:
        raise
    except (OSError, KeyError, TypeError, ValueError, RuntimeError) as error:  # h5py's for damaged metadata/data
        raise DamagedShardError(path, f"damaged ({first_line(error)})") from None


def _dataset_names(handle: h5py.File) -> list[str]:
    names = [name for name in handle if isinstance(handle.get(name), h5py.Dataset)]
    return names + [f"skipped/{name}" for name in ("paths", "reasons") if "skipped" in handle]


def _check_links(path: Path, group: h5py.Group, prefix: str = "") -> None:
    """Every entry a hard link to a dataset (or the ``skipped`` group) whose data lives in this file."""
    for name in group.keys():
        link = group.get(name, getlink=True)
        if not isinstance(link, h5py.HardLink):
            raise DamagedShardError(path, f"{prefix}{name!r} is a {type(link).__name__}, not data stored in the file")
        item = group[name]
        if isinstance(item, h5py.Group):
            if prefix or name != "skipped":
                raise DamagedShardError(path, f"unexpected group {prefix}{name!r}")
            _check_links(path, item, "skipped/")
        elif item.is_virtual or item.external:
            raise DamagedShardError(path, f"dataset {prefix}{name!r} keeps its data outside the file")


def _check_open_shard(path: Path, handle: h5py.File, read_data: bool = False) -> ShardInfo:
    settings = read_settings(handle)
    rows = handle.attrs.get("rows")
    if not isinstance(rows, numbers.Integral) or isinstance(rows, bool) or int(rows) < 0:
        raise DamagedShardError(path, "has no row count (attribute 'rows'); not a complete shard")
    if not bool(handle.attrs.get("complete", False)):
        raise DamagedShardError(path, "is not marked complete")
    rows = int(rows)
    _check_links(path, handle)
    for name, item in handle.items():
        if isinstance(item, h5py.Dataset) and (item.ndim == 0 or item.shape[0] != rows):
            raise DamagedShardError(path, f"dataset {name!r} has shape {item.shape}, expected {rows} rows")
    if rows:
        for name, kinds, dims in (("attributions", "f", (3, 4)), ("targets", "iu", (1,))):
            if name not in handle:
                raise DamagedShardError(path, f"dataset {name!r} is missing")
            dataset = handle[name]
            if dataset.dtype.kind not in kinds or dataset.ndim not in dims:
                raise DamagedShardError(path, f"dataset {name!r} has type {dataset.dtype} and {dataset.ndim} dimensions")
        if "paths" not in handle or h5py.check_string_dtype(handle["paths"].dtype) is None:
            raise DamagedShardError(path, "dataset 'paths' is missing or not strings")
        _check_adaptive_columns(path, handle, settings, read_data)
    if "abs_paths" in handle and h5py.check_string_dtype(handle["abs_paths"].dtype) is None:
        raise DamagedShardError(path, "dataset 'abs_paths' is not strings")
    input_root = handle.attrs.get("input_root")
    if input_root is not None:
        if not isinstance(input_root, (bytes, str)):
            raise DamagedShardError(path, "attribute 'input_root' is not a string")
        input_root = decode_text(input_root)
        if not os.path.isabs(input_root):
            raise DamagedShardError(path, "attribute 'input_root' is not an absolute path")
    if "skipped" in handle:
        group = handle["skipped"]
        paths, reasons = group.get("paths"), group.get("reasons")
        if not (isinstance(paths, h5py.Dataset) and isinstance(reasons, h5py.Dataset)
                and paths.ndim == reasons.ndim == 1 and paths.shape == reasons.shape
                and h5py.check_string_dtype(paths.dtype) and h5py.check_string_dtype(reasons.dtype)):
            raise DamagedShardError(path, "the 'skipped' records are not two string lists of one length")
    stored = handle.attrs.get("strings_sha256")  # absent in shards written before it was recorded
    if stored is not None and stored != strings_digest(handle):
        raise DamagedShardError(path, "its paths or skip records do not match their SHA-256 (damaged)")
    expected = abs_paths_digest(handle)  # None: an older shard, with neither abs_paths nor input_root
    if expected is not None and handle.attrs.get("abs_paths_sha256") != expected:
        raise DamagedShardError(path, "its abs_paths or input_root do not match their SHA-256 (damaged)")
    return ShardInfo(path, rows, settings, input_root)
