"""Checks that a file in an output folder is what igcli wrote, before anything trusts it.

An output folder is data that may come from anyone (a colleague, a damaged disk, a crafted file). Every
reader (``--resume``, ``index``, ``evaluate``, ``render``) opens shards through :func:`check_shard`, which turns
whatever is wrong into one :class:`DamagedShardError` naming the file, instead of a raw HDF5 traceback later.
"""

from __future__ import annotations

import json
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py

from .errors import IgcliError

INTERPOLATIONS = ("nearest", "bilinear", "bicubic")


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
    """What a valid shard holds: its row count and run settings."""

    path: Path
    rows: int
    settings: dict[str, Any]


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def read_settings(handle: h5py.File) -> dict[str, Any]:
    """The run settings in a shard's or index's root attributes, checked (see :func:`check_settings`)."""
    text = handle.attrs.get("settings_json")
    if text is None:
        raise DamagedShardError(handle.filename, "not an igcli output file (no settings_json attribute)")
    try:
        settings = json.loads(text)
    except (TypeError, ValueError, RecursionError) as error:
        raise DamagedShardError(handle.filename, f"settings_json is not valid JSON ({_first_line(error)})") from None
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
    for key in ("rule", "output", "reduce", "baseline", "schedule", "path"):
        if key in settings and settings[key] is not None and not isinstance(settings[key], str):
            return f"{key!r} is not a string"
    for key in ("steps", "seed"):
        if key in settings and not _is_int(settings[key]):
            return f"{key!r} is not an integer"
    if settings.get("output", "prob") not in ("prob", "logit"):
        return f"output {settings['output']!r} is neither prob nor logit"
    if settings.get("reduce", "none") not in ("none", "sum", "abs-sum"):
        return f"reduce {settings['reduce']!r} is not none, sum or abs-sum"
    stored = settings.get("preprocessing")
    if not isinstance(stored, dict):
        return "'preprocessing' missing or not an object"
    for key in ("resize", "crop"):
        if not _is_int(stored.get(key)) or not 0 < stored[key] <= 65536:
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


def check_shard(path: Path | str) -> ShardInfo:
    """Open ``path`` and check it against the shard contract (design.md §4) without reading the maps.

    Checks: readable HDF5 (a truncated file fails here), marked complete, settings valid, ``rows`` a count,
    every root dataset having exactly ``rows`` entries, the required ones of the right kind, and the skipped
    records paired.

    Raises:
        DamagedShardError: naming the file and the first problem found.
    """
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise DamagedShardError(path, f"not readable as HDF5, truncated or damaged ({_first_line(error)})") from None
    try:
        with handle:
            return _check_open_shard(Path(path), handle)
    except DamagedShardError:
        raise
    except (OSError, KeyError, TypeError, ValueError) as error:  # h5py raises these for damaged metadata
        raise DamagedShardError(path, f"damaged ({_first_line(error)})") from None


def _check_open_shard(path: Path, handle: h5py.File) -> ShardInfo:
    settings = read_settings(handle)
    rows = handle.attrs.get("rows")
    if not isinstance(rows, numbers.Integral) or isinstance(rows, bool) or int(rows) < 0:
        raise DamagedShardError(path, "has no row count (attribute 'rows'); not a complete shard")
    if not bool(handle.attrs.get("complete", False)):
        raise DamagedShardError(path, "is not marked complete")
    rows = int(rows)
    for name, item in handle.items():
        if isinstance(item, h5py.Dataset):
            if item.ndim == 0 or item.shape[0] != rows:
                raise DamagedShardError(path, f"dataset {name!r} has shape {item.shape}, expected {rows} rows")
        elif name != "skipped":
            raise DamagedShardError(path, f"unexpected group {name!r}")
    if rows:
        for name, kinds, dims in (("attributions", "f", (2, 3, 4)), ("targets", "iu", (1,))):
            if name not in handle:
                raise DamagedShardError(path, f"dataset {name!r} is missing")
            dataset = handle[name]
            if dataset.dtype.kind not in kinds or dataset.ndim not in dims:
                raise DamagedShardError(path, f"dataset {name!r} has type {dataset.dtype} and {dataset.ndim} dimensions")
        if "paths" not in handle or h5py.check_string_dtype(handle["paths"].dtype) is None:
            raise DamagedShardError(path, "dataset 'paths' is missing or not strings")
    if "skipped" in handle:
        group = handle["skipped"]
        paths, reasons = group.get("paths"), group.get("reasons")
        if not (isinstance(paths, h5py.Dataset) and isinstance(reasons, h5py.Dataset)
                and paths.ndim == reasons.ndim == 1 and paths.shape == reasons.shape
                and h5py.check_string_dtype(paths.dtype) and h5py.check_string_dtype(reasons.dtype)):
            raise DamagedShardError(path, "the 'skipped' records are not two string lists of one length")
    return ShardInfo(path, rows, settings)
