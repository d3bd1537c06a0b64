"""``OUT/index.h5``: one file over every complete shard of an output folder (see :mod:`igcli.store`).

Per-row maps are HDF5 virtual datasets over the shards (no copy, found relative to the index so OUT can be
moved), the small per-row datasets are copied, and ``shard``/``row`` say where each row lives.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from .safe_file import WriteGuardedFile
from .signals import deferred
from .store import FORMAT, INDEX_NAME, LIBVER, SPACE_PROBLEMS, STRING, attribute_value, describe_os_error, list_shards
from .validate import DamagedShardError, OutputError, check_shard


def build_index(out_dir: str | os.PathLike) -> Path:
    """Write ``OUT/index.h5`` over every complete shard (atomically) and return its path.

    ``attributions`` (and any other per-row map) is a virtual dataset over the shards, found
    relative to the index's folder so OUT can be moved; small per-row datasets are copied; ``shard`` and
    ``row`` give each row's shard (index into ``shards``) and row within it; ``skipped/paths`` and
    ``skipped/reasons`` gather all skips.
    """
    folder = Path(out_dir)
    # Signals wait for the whole build: an interrupted run still leaves an index over every shard it published.
    with deferred():
        return _build_index(folder)


def _build_index(folder: Path) -> Path:
    shards = list_shards(folder)
    if not shards:
        raise OutputError(f"{folder}: no complete shards to index")
    infos = [check_shard(shard) for shard in shards]  # names a damaged shard instead of failing half-way
    counts, layouts, small, skipped_paths, skipped_reasons = [info.rows for info in infos], {}, {}, [], []
    row_shapes: dict[str, tuple] = {}
    for number, shard in enumerate(shards):
        try:
            _gather(shard, number, row_shapes, small, layouts, skipped_paths, skipped_reasons)
        except (OSError, RuntimeError, ValueError) as error:  # e.g. a chunk failing its Fletcher-32 checksum
            raise DamagedShardError(shard, f"damaged data ({describe_os_error(error)})") from None
    settings = infos[0].settings
    partial = folder / f".{INDEX_NAME}.{os.getpid()}.partial"
    try:
        _write_index(partial, settings, shards, counts, small, layouts, skipped_paths, skipped_reasons)
        os.replace(partial, folder / INDEX_NAME)
    except (OSError, RuntimeError, ValueError) as error:
        partial.unlink(missing_ok=True)
        problem = describe_os_error(error)
        raise OutputError(f"{folder / INDEX_NAME}: cannot write the index ({problem}); the shards are intact: "
                          f"{'free space and ' if problem in SPACE_PROBLEMS else ''}run igcli index") from None
    return folder / INDEX_NAME


def _gather(shard: Path, number: int, row_shapes, small, layouts, skipped_paths, skipped_reasons) -> None:
    """Collect one shard's rows for the index: small datasets copied, maps as virtual-dataset sources."""
    with h5py.File(shard, "r") as handle:
        if "skipped" in handle:
            skipped_paths += list(handle["skipped/paths"][:])
            skipped_reasons += list(handle["skipped/reasons"][:])
        for name, dataset in handle.items():
            if not isinstance(dataset, h5py.Dataset):
                continue
            if row_shapes.setdefault(name, dataset.shape[1:]) != dataset.shape[1:]:
                raise DamagedShardError(shard, f"dataset {name!r} has rows of shape {dataset.shape[1:]}, other "
                                               f"shards {row_shapes[name]}; it belongs to another run")
            if len(dataset.shape) < 3:  # per-row scalars and curves are copied; maps are linked
                small.setdefault(name, {})[number] = dataset[:]
            else:
                layouts.setdefault(name, []).append((shard.name, dataset.shape, dataset.dtype, number))


def _part_or_blank(parts: dict[int, np.ndarray], number: int, count: int) -> np.ndarray:
    """Shard ``number``'s rows of a copied dataset; blanks (empty strings, NaN or 0) when that shard lacks it
    (``abs_paths`` in a shard written by an igcli before it, resumed by this one)."""
    if number in parts:
        return parts[number]
    example = next(iter(parts.values()))
    blank = b"" if example.dtype.kind == "O" else np.nan if example.dtype.kind == "f" else 0
    return np.full((count, *example.shape[1:]), blank, dtype=example.dtype)


def _write_index(partial: Path, settings, shards, counts, small, layouts, skipped_paths, skipped_reasons) -> None:
    total = sum(counts)
    target = WriteGuardedFile(partial)  # a full disk must not leave HDF5 crashing at exit (see safe_file)
    try:
        with h5py.File(target, "w", libver=LIBVER) as index:
            _fill_index(index, settings, shards, counts, total, small, layouts, skipped_paths, skipped_reasons)
        target.sync()
    finally:
        target.close()
    if target.error is not None:
        raise target.error


def _fill_index(index: h5py.File, settings, shards, counts, total, small, layouts, skipped_paths,
                skipped_reasons) -> None:
    index.attrs["format"] = FORMAT
    for key, value in settings.items():
        index.attrs[key] = attribute_value(value)
    index.attrs["settings_json"] = json.dumps(settings)
    index.attrs["rows"] = total
    index.attrs["shard_count"] = len(shards)
    index.create_dataset("shards", data=np.asarray([s.name for s in shards], dtype=object), dtype=STRING)
    index.create_dataset("shard", data=np.repeat(np.arange(len(shards), dtype=np.int32), counts))
    index.create_dataset("row", data=np.concatenate([np.arange(c, dtype=np.int64) for c in counts]))
    for name, parts in small.items():
        data = np.concatenate([_part_or_blank(parts, number, count) for number, count in enumerate(counts)])
        index.create_dataset(name, data=data, dtype=STRING if data.dtype.kind == "O" else data.dtype)
    for name, sources in layouts.items():
        shape, dtype = sources[0][1][1:], sources[0][2]
        layout = h5py.VirtualLayout(shape=(total, *shape), dtype=dtype)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        for shard_file, source_shape, _, number in sources:
            start = int(offsets[number])
            layout[start : start + source_shape[0]] = h5py.VirtualSource(f"./{shard_file}", name, shape=source_shape)
        index.create_virtual_dataset(name, layout, fillvalue=np.nan if np.dtype(dtype).kind == "f" else 0)
    group = index.create_group("skipped")
    group.create_dataset("paths", data=np.asarray(skipped_paths, dtype=object), dtype=STRING)
    group.create_dataset("reasons", data=np.asarray(skipped_reasons, dtype=object), dtype=STRING)
