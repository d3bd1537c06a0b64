"""HDF5 output: shards written atomically, an index over them, and reading it all back (design.md §4).

Layout of ``OUT/``:

- ``shard-PPPPP-SSSSS.h5``: part (rank) PPPPP, sequence SSSSS. Per-row datasets (``attributions``, ``paths``,
  ``targets``, ``scores``, ``baseline_scores``, ``completeness_gap``, ...) share their first dimension; the
  group ``skipped`` lists inputs that could not be used (``paths``, ``reasons``). Root attributes hold the run
  settings, each as its own attribute and all together as JSON in ``settings_json``.
- A shard is written as the hidden ``.shard-PPPPP-SSSSS.h5.partial`` and renamed when complete, so a reader
  (or a resumed run) never sees a partial one. One image's rows never straddle two shards.
- ``index.h5``: the same per-row datasets over all shards, ``attributions`` as a virtual dataset (no copy),
  the small ones copied, plus ``shard`` (N,) and ``row`` (N,) locating each row and ``shards`` (names).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterator, Sequence

import h5py
import numpy as np

from .errors import IgcliError, InvalidArgumentError

FORMAT = "igcli-attributions/1"
INDEX_NAME = "index.h5"
SHARD_PATTERN = re.compile(r"^shard-(\d{5})-(\d{5})\.h5$")
PARTIAL_PATTERN = re.compile(r"^\.shard-(\d{5})-(\d{5})\.h5\.partial$")
STRING = h5py.string_dtype()


class OutputError(IgcliError):
    """The output folder cannot be written or read as igcli output."""

    exit_code = 6


def shard_name(part: int, sequence: int) -> str:
    return f"shard-{part:05d}-{sequence:05d}.h5"


def list_shards(out_dir: str | os.PathLike) -> list[Path]:
    """Complete shards in ``out_dir``, ordered by (part, sequence)."""
    folder = Path(out_dir)
    names = [name for name in os.listdir(folder) if SHARD_PATTERN.match(name)] if folder.is_dir() else []
    return [folder / name for name in sorted(names)]


def _attribute_value(value: Any) -> Any:
    if value is None:
        return "none"
    if isinstance(value, str):
        return str(value)  # subclasses such as torch's TorchVersion confuse h5py
    if isinstance(value, (bool, int, float, np.generic)):
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return np.asarray(value)
    return json.dumps(value)


def read_settings(handle: h5py.File) -> dict[str, Any]:
    """The run settings stored in a shard's or index's root attributes."""
    if "settings_json" not in handle.attrs:
        raise OutputError(f"{handle.filename}: not an igcli output file (no settings_json attribute)")
    return json.loads(handle.attrs["settings_json"])


class ShardWriter:
    """Writes rows into shards of about ``shard_size`` rows for one part (rank) of a run.

    Rows arrive in batches (:meth:`write`); a shard is completed (fsync, rename) at the first batch boundary
    where it holds ``shard_size`` rows or more, on :meth:`close`, and when it has only skips and the run ends.

    Args:
        out_dir: the output folder (must exist).
        part: this writer's part/rank number (the PPPPP of shard names).
        settings: run settings (JSON-serialisable), stored with every shard.
        shard_size: rows per shard (approximate; see above).
        first_sequence: sequence number of the first shard (a resumed run continues after the last one).
    """

    def __init__(self, out_dir: Path, part: int, settings: dict[str, Any], shard_size: int, first_sequence: int = 0) -> None:
        if shard_size < 1:
            raise InvalidArgumentError(f"--shard-size must be at least 1, got {shard_size}")
        self.out_dir = Path(out_dir)
        self.part = part
        self.settings = settings
        self.shard_size = shard_size
        self.sequence = first_sequence
        self.completed: list[Path] = []
        self._handle: h5py.File | None = None
        self._partial: Path | None = None
        self._rows = 0

    def _open(self) -> h5py.File:
        if self._handle is None:
            self._partial = self.out_dir / f".{shard_name(self.part, self.sequence)}.partial"
            self._handle = h5py.File(self._partial, "w")
            self._handle.attrs["format"] = FORMAT
            for key, value in self.settings.items():
                self._handle.attrs[key] = _attribute_value(value)
            self._handle.attrs["settings_json"] = json.dumps(self.settings)
            self._rows = 0
        return self._handle

    @staticmethod
    def _append(group: h5py.Group, name: str, values: np.ndarray | Sequence[str]) -> None:
        if isinstance(values, np.ndarray) and values.dtype.kind not in "OUS":
            array = values
            dtype = array.dtype
        else:
            array = np.asarray(list(values), dtype=object)
            dtype = STRING
        if name not in group:
            group.create_dataset(
                name,
                shape=(0, *array.shape[1:]),
                maxshape=(None, *array.shape[1:]),
                dtype=dtype,
                chunks=(max(1, min(64, 2**20 // max(1, array[:1].nbytes))), *array.shape[1:]) if array.ndim else True,
            )
        dataset = group[name]
        if dataset.shape[1:] != array.shape[1:]:
            raise OutputError(f"{name}: rows of shape {array.shape[1:]} do not fit the shard's {dataset.shape[1:]}")
        start = dataset.shape[0]
        dataset.resize(start + array.shape[0], axis=0)
        dataset[start:] = array

    def write(self, columns: dict[str, np.ndarray | Sequence[str]]) -> None:
        """Append rows: every column has the same first dimension N; ``paths`` is a sequence of str."""
        lengths = {name: len(values) for name, values in columns.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"columns of different lengths: {lengths}")
        handle = self._open()
        for name, values in columns.items():
            self._append(handle, name, values)
        self._rows += next(iter(lengths.values()), 0)
        if self._rows >= self.shard_size:
            self.finish_shard()

    def skip(self, path: str, reason: str) -> None:
        """Record an input that could not be used, with its reason (kept in the current shard)."""
        group = self._open().require_group("skipped")
        self._append(group, "paths", [path])
        self._append(group, "reasons", [reason])

    def finish_shard(self) -> Path | None:
        """Complete the current shard (if any): attributes, flush, fsync, rename into place."""
        if self._handle is None:
            return None
        self._handle.attrs["rows"] = self._rows
        self._handle.attrs["complete"] = True
        self._handle.flush()
        self._handle.close()
        self._handle = None
        final = self.out_dir / shard_name(self.part, self.sequence)
        with open(self._partial, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(self._partial, final)
        _fsync_folder(self.out_dir)
        self.completed.append(final)
        self.sequence += 1
        return final

    def close(self) -> None:
        """Complete the open shard: what was written is kept (also on an interrupt)."""
        self.finish_shard()


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


# -- the output folder: checks, resume, index -------------------------------------------------------------------


def remove_partials(out_dir: Path, part: int | None = None) -> list[Path]:
    """Delete leftover ``.partial`` shards (of ``part``, or all): what a killed run was writing."""
    removed = []
    for name in os.listdir(out_dir):
        match = PARTIAL_PATTERN.match(name)
        if match and (part is None or int(match.group(1)) == part):
            (out_dir / name).unlink(missing_ok=True)
            removed.append(out_dir / name)
    return removed


def next_sequence(out_dir: Path, part: int) -> int:
    """The first unused shard sequence number of ``part``."""
    numbers = [int(SHARD_PATTERN.match(p.name).group(2)) for p in list_shards(out_dir) if SHARD_PATTERN.match(p.name).group(1) == f"{part:05d}"]
    return max(numbers, default=-1) + 1


def shard_part(path: Path) -> int:
    return int(SHARD_PATTERN.match(path.name).group(1))


def completed_inputs(out_dir: Path) -> set[str]:
    """Input paths already handled (attributed or skipped) in the complete shards of ``out_dir``."""
    done: set[str] = set()
    for shard in list_shards(out_dir):
        with h5py.File(shard, "r") as handle:
            if "paths" in handle:
                done.update(p.decode() if isinstance(p, bytes) else p for p in handle["paths"][:])
            if "skipped/paths" in handle:
                done.update(p.decode() if isinstance(p, bytes) else p for p in handle["skipped/paths"][:])
    return done


def stored_settings(out_dir: Path) -> dict[str, Any] | None:
    """Settings of the first complete shard in ``out_dir``, or None when there is none."""
    shards = list_shards(out_dir)
    if not shards:
        return None
    with h5py.File(shards[0], "r") as handle:
        return read_settings(handle)


def build_index(out_dir: str | os.PathLike) -> Path:
    """Write ``OUT/index.h5`` over every complete shard (atomically) and return its path.

    ``attributions`` (and any other per-row map) is a virtual dataset over the shards, found
    relative to the index's folder so OUT can be moved; small per-row datasets are copied; ``shard`` and
    ``row`` give each row's shard (index into ``shards``) and row within it; ``skipped/paths`` and
    ``skipped/reasons`` gather all skips.
    """
    folder = Path(out_dir)
    shards = list_shards(folder)
    if not shards:
        raise OutputError(f"{folder}: no complete shards to index")
    counts, layouts, small, skipped_paths, skipped_reasons = [], {}, {}, [], []
    settings = None
    for number, shard in enumerate(shards):
        with h5py.File(shard, "r") as handle:
            settings = settings or read_settings(handle)
            rows = int(handle.attrs.get("rows", 0))
            counts.append(rows)
            if "skipped" in handle:
                skipped_paths += [p.decode() for p in handle["skipped/paths"][:]]
                skipped_reasons += [r.decode() for r in handle["skipped/reasons"][:]]
            for name, dataset in handle.items():
                if not isinstance(dataset, h5py.Dataset):
                    continue
                if len(dataset.shape) < 3:  # per-row scalars and curves are copied; maps are linked
                    small.setdefault(name, []).append(dataset[:])
                else:
                    layouts.setdefault(name, []).append((shard.name, dataset.shape, dataset.dtype, number))
    total = sum(counts)
    partial = folder / f".{INDEX_NAME}.{os.getpid()}.partial"
    with h5py.File(partial, "w") as index:
        index.attrs["format"] = FORMAT
        for key, value in settings.items():
            index.attrs[key] = _attribute_value(value)
        index.attrs["settings_json"] = json.dumps(settings)
        index.attrs["rows"] = total
        index.attrs["shard_count"] = len(shards)
        index.create_dataset("shards", data=np.asarray([s.name for s in shards], dtype=object), dtype=STRING)
        index.create_dataset("shard", data=np.repeat(np.arange(len(shards), dtype=np.int32), counts))
        index.create_dataset("row", data=np.concatenate([np.arange(c, dtype=np.int64) for c in counts]))
        for name, parts in small.items():
            data = np.concatenate(parts)
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
    os.replace(partial, folder / INDEX_NAME)
    return folder / INDEX_NAME


# -- reading ---------------------------------------------------------------------------------------------------


class Output:
    """igcli output read back: an OUT folder, its ``index.h5``, or shard files.

    Reads the shards directly (the index is a convenience for other tools), so it is right even while other
    parts of a job are still adding shards.

    >>> output = Output("OUT")
    >>> output.settings["method"], len(output)
    >>> for rows in output.iter_rows(): rows["attributions"]   # one shard's rows at a time
    """

    def __init__(self, source: str | os.PathLike | Sequence[str | os.PathLike]) -> None:
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if path.is_dir():
                self.shards = list_shards(path)
            elif path.name == INDEX_NAME:
                self.shards = list_shards(path.parent)
            elif path.is_file():
                self.shards = [path]
            else:
                raise OutputError(f"{path}: no such output folder or file")
            if not self.shards:
                raise OutputError(f"{path}: holds no complete igcli shards (run `igcli attribute ... -o {path}`)")
        else:
            self.shards = [Path(p) for p in source]
        try:
            with h5py.File(self.shards[0], "r") as handle:
                self.settings = read_settings(handle)
            self._counts = []
            for shard in self.shards:
                with h5py.File(shard, "r") as handle:
                    self._counts.append(int(handle.attrs.get("rows", 0)))
        except OSError as error:
            raise OutputError(f"{self.shards[0]}: not readable as HDF5 ({error})") from None

    def __len__(self) -> int:
        return sum(self._counts)

    def iter_rows(self, columns: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
        """One dict per shard: column name -> array of that shard's rows (``paths`` as a list of str)."""
        for shard, count in zip(self.shards, self._counts):
            if count == 0:
                continue
            with h5py.File(shard, "r") as handle:
                names = columns or [n for n, d in handle.items() if isinstance(d, h5py.Dataset)]
                yield {name: _decoded(handle[name][:]) for name in names if name in handle}

    def column(self, name: str) -> Any:
        """One per-row dataset over all shards (concatenated; a list for strings)."""
        parts = [rows[name] for rows in self.iter_rows([name])]
        if parts and isinstance(parts[0], list):
            return [value for part in parts for value in part]
        return np.concatenate(parts) if parts else np.empty(0)

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """(path, reason) of every input the run could not use."""
        found = []
        for shard in self.shards:
            with h5py.File(shard, "r") as handle:
                if "skipped" in handle:
                    found += list(zip(_decoded(handle["skipped/paths"][:]), _decoded(handle["skipped/reasons"][:])))
        return found


def _decoded(values: np.ndarray) -> Any:
    if values.dtype.kind == "O":
        return [v.decode() if isinstance(v, bytes) else v for v in values]
    return values
