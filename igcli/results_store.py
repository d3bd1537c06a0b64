"""``igcli evaluate``'s per-image results on disk: written incrementally and atomically, read back merged.

Layout of an evaluation folder (README, "Evaluation results"): ``results-PPPPP-SSSSS.h5`` per part PPPPP and
sequence SSSSS, written as hidden ``.results-...h5.partial`` files and renamed when complete (as shards are:
:class:`igcli.store.ShardWriter`), so a reader, a resumed run or another part never sees half a file. Each holds,
per evaluated row (one row per stored map: an image, or an image and target for topK runs):

- ``paths`` (the input as the attribution run was given it), ``abs_paths``, ``targets`` (int64), ``ranked``
  (uint8: 0 for a constant map, which ranking metrics leave out);
- ``values/NAME`` (float64): each metric value; NaN where it was not scored;
- ``unscorable/NAME`` (UTF-8): why a value is NaN by the metric's definition (empty: scored, or skipped);
- ``curves/NAME`` (float64, (N, L)): per-image curves for the aggregate curve (insertion, deletion, SIC/AIC);
- the group ``skipped``: images that could not be scored, with the reason.

Root attributes: ``format`` (``igcli-evaluation/1``), ``settings_json`` (the evaluation: metrics and their
options, ranking, seed, model, and which attribution run it scores), ``rows``, ``complete``, and SHA-256
digests of the strings (HDF5 keeps no checksum of variable-length strings).
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .store import ShardWriter, describe_os_error
from .text import decode_text
from .validate import DamagedShardError, check_hdf5_file, strings_digest

RESULTS_FORMAT = "igcli-evaluation/1"
RESULTS_PATTERN = re.compile(r"^results-(\d{5})-(\d{5})\.h5$")
RESULTS_PARTIAL = re.compile(r"^\.results-(\d{5})-(\d{5})\.h5\.partial$")
RESULTS_TAKEN = re.compile(r"^results-(\d{5})-(\d{5})\.h5(\.damaged(-\d+)?)?$")
GROUPS = ("values", "unscorable", "curves")


class ResultsWriter(ShardWriter):
    """Writes an evaluation part's rows into ``results-PPPPP-SSSSS.h5`` files of at most ``shard_size`` rows
    (see :class:`igcli.store.ShardWriter` for the guarantees: all-or-nothing writes, signals deferred, a full
    disk discards only the open partial file)."""

    prefix = "results"
    format = RESULTS_FORMAT

    def check(self, path: Path) -> None:
        check_results_file(path)

    def _write_columns(self, columns: dict[str, Any], count: int) -> None:
        """Rows may lack a column the open file has (a metric that scored no row of a batch: no curves) or bring
        one it has not: the missing cells are NaN (empty reasons), so every dataset keeps ``rows`` entries."""
        handle = self._open()
        columns = dict(columns)
        for group in GROUPS:
            for name in handle.get(group, {}):
                key = f"{group}/{name}"
                if key not in columns:
                    dataset = handle[key]
                    columns[key] = ([""] * count if group == "unscorable"
                                    else np.full((count, *dataset.shape[1:]), np.nan, dataset.dtype))
        for key, values in list(columns.items()):
            group = key.split("/")[0]
            if group in GROUPS and key not in handle and self._rows:
                filler = ([""] * self._rows if group == "unscorable"
                          else np.full((self._rows, *np.asarray(values).shape[1:]), np.nan))
                self._append(handle, key, filler)
        super()._write_columns(columns, count)

    def _publish(self) -> Path:
        self._handle.attrs["unscorable_sha256"] = _unscorable_digest(self._handle)
        return super()._publish()


@dataclass
class ResultsInfo:
    path: Path
    rows: int
    settings: dict[str, Any]


def _unscorable_digest(handle: h5py.File) -> str:
    digest = hashlib.sha256()
    if "unscorable" in handle:
        for name in sorted(handle["unscorable"]):
            digest.update(name.encode() + b"|")
            for value in handle["unscorable"][name][:]:
                digest.update(value if isinstance(value, bytes) else str(value).encode())
                digest.update(b"\0")
    return digest.hexdigest()


def check_results_file(path: Path | str, *, read_data: bool = False) -> ResultsInfo:
    """Open ``path`` and check it against the results contract (module docstring): a regular HDF5 file of
    igcli's results format, marked complete, every dataset stored in the file with ``rows`` entries, the
    strings matching their digests. ``read_data`` also reads every dataset (verifying chunk checksums).

    Raises:
        DamagedShardError: naming the file and the first problem found.
    """
    return check_hdf5_file(path, lambda handle: _check_open(Path(path), handle, read_data))


def _check_open(path: Path, handle: h5py.File, read_data: bool) -> ResultsInfo:
    if handle.attrs.get("format") != RESULTS_FORMAT:
        raise DamagedShardError(path, f"is not an igcli evaluation results file (format {RESULTS_FORMAT})")
    rows = handle.attrs.get("rows")
    if not isinstance(rows, numbers.Integral) or isinstance(rows, bool) or int(rows) < 0 \
            or not bool(handle.attrs.get("complete", False)):
        raise DamagedShardError(path, "is not marked complete")
    rows = int(rows)
    try:
        settings = json.loads(handle.attrs["settings_json"])
    except (KeyError, TypeError, ValueError, RecursionError):
        raise DamagedShardError(path, "settings_json is missing or not valid JSON") from None
    if not isinstance(settings, dict) or not isinstance(settings.get("metrics"), list):
        raise DamagedShardError(path, "settings_json does not describe an evaluation")
    datasets = []
    for name in handle:
        link = handle.get(name, getlink=True)
        if not isinstance(link, h5py.HardLink):
            raise DamagedShardError(path, f"{name!r} is not data stored in the file")
        item = handle[name]
        if isinstance(item, h5py.Group):
            if name not in (*GROUPS, "skipped"):
                raise DamagedShardError(path, f"unexpected group {name!r}")
            for inner in item:
                if not isinstance(item.get(inner, getlink=True), h5py.HardLink) or not isinstance(item[inner], h5py.Dataset):
                    raise DamagedShardError(path, f"{name}/{inner} is not data stored in the file")
                if item[inner].is_virtual or item[inner].external:
                    raise DamagedShardError(path, f"{name}/{inner} keeps its data outside the file")
                if name != "skipped":
                    datasets.append(item[inner])
        elif item.is_virtual or item.external:
            raise DamagedShardError(path, f"dataset {name!r} keeps its data outside the file")
        else:
            datasets.append(item)
    for dataset in datasets:
        if dataset.ndim == 0 or dataset.shape[0] != rows:
            raise DamagedShardError(path, f"dataset {dataset.name!r} has shape {dataset.shape}, expected {rows} rows")
        kind = dataset.name.split("/")[1] if dataset.name.count("/") > 1 else None
        if kind in ("values", "curves") and dataset.dtype.kind != "f":
            raise DamagedShardError(path, f"dataset {dataset.name!r} is not floating point")
        if kind == "unscorable" and h5py.check_string_dtype(dataset.dtype) is None:
            raise DamagedShardError(path, f"dataset {dataset.name!r} is not strings")
    if rows and ("paths" not in handle or h5py.check_string_dtype(handle["paths"].dtype) is None
                 or "targets" not in handle or handle["targets"].dtype.kind not in "iu"):
        raise DamagedShardError(path, "datasets 'paths' (strings) and 'targets' (integers) are required")
    if "skipped" in handle:
        group = handle["skipped"]
        paths, reasons = group.get("paths"), group.get("reasons")
        if paths is None or reasons is None or paths.shape != reasons.shape:
            raise DamagedShardError(path, "the 'skipped' records are not two string lists of one length")
    if handle.attrs.get("strings_sha256") != strings_digest(handle) \
            or handle.attrs.get("unscorable_sha256") != _unscorable_digest(handle):
        raise DamagedShardError(path, "its paths, skip records or reasons do not match their SHA-256 (damaged)")
    if read_data:
        for dataset in datasets:
            dataset[...]
    return ResultsInfo(path, rows, settings)


def list_results(folder: str | os.PathLike) -> list[Path]:
    """Complete results files in ``folder``, ordered by (part, sequence)."""
    folder = Path(folder)
    names = [name for name in os.listdir(folder) if RESULTS_PATTERN.match(name)] if folder.is_dir() else []
    return [folder / name for name in sorted(names)]


def results_part(path: Path) -> int:
    return int(RESULTS_PATTERN.match(path.name).group(1))


def next_results_sequence(folder: Path, part: int) -> int:
    numbers_taken = [int(m.group(2)) for m in map(RESULTS_TAKEN.match, os.listdir(folder))
                     if m and int(m.group(1)) == part]
    return max(numbers_taken, default=-1) + 1


def remove_partial_results(folder: Path, part: int) -> None:
    """Delete this part's leftover hidden partial files (what a killed run was writing)."""
    for name in os.listdir(folder):
        match = RESULTS_PARTIAL.match(name)
        if match and int(match.group(1)) == part:
            try:
                (folder / name).unlink(missing_ok=True)
            except OSError:
                continue


@dataclass
class StoredResults:
    """Every complete results file of an evaluation folder, merged (rows in file order)."""

    settings: dict[str, Any] | None = None
    paths: list[str] = field(default_factory=list)
    targets: list[int] = field(default_factory=list)
    ranked: list[bool] = field(default_factory=list)
    values: dict[str, list[np.ndarray]] = field(default_factory=dict)
    unscorable: dict[str, list[str]] = field(default_factory=dict)
    curves: dict[str, list[np.ndarray]] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    def keys(self) -> set[tuple[str, int]]:
        """(path, target) of every row scored."""
        return set(zip(self.paths, self.targets))


def read_results(folder: str | os.PathLike, files: list[Path] | None = None,
                 damaged: list[DamagedShardError] | None = None) -> StoredResults:
    """Read and merge the results files of ``folder`` (or ``files``), checking each and that all describe the
    same evaluation. Raises DamagedShardError naming a damaged or foreign file, unless ``damaged`` is given:
    then such files are left out and their errors appended to it."""
    stored = StoredResults()
    widths: dict[str, int] = {}  # curve name -> its length, from any file that has it
    pending: list[tuple[int, dict[str, np.ndarray]]] = []  # per file: rows, its curves
    for path in list_results(folder) if files is None else files:
        try:
            info = check_results_file(path)
            if stored.settings is not None and _identity(info.settings) != _identity(stored.settings):
                raise DamagedShardError(path, "holds results of another evaluation than the other files here; "
                                              "move it away")
        except DamagedShardError as error:
            if damaged is None:
                raise
            damaged.append(error)
            continue
        if stored.settings is None:
            stored.settings = info.settings
        try:
            with h5py.File(path, "r") as handle:
                if info.rows:
                    stored.paths += [decode_text(p) for p in handle["paths"][:]]
                    stored.targets += handle["targets"][:].astype(np.int64).tolist()
                    stored.ranked += (handle["ranked"][:].astype(bool).tolist() if "ranked" in handle
                                      else [True] * info.rows)
                    offset = len(stored.paths) - info.rows
                    for name in handle.get("values", {}):
                        column = stored.values.setdefault(name, [np.full(offset, np.nan)] if offset else [])
                        column.append(handle["values"][name][:].astype(np.float64))
                    for name in handle.get("unscorable", {}):
                        reasons = stored.unscorable.setdefault(name, [""] * offset)
                        reasons.extend(decode_text(v) for v in handle["unscorable"][name][:])
                    curves = {name: handle["curves"][name][:].astype(np.float64) for name in handle.get("curves", {})}
                    widths.update({name: array.shape[1] for name, array in curves.items()})
                    pending.append((info.rows, curves))
                    for name, column in stored.values.items():  # a value this file lacks: NaN for its rows
                        if sum(len(part) for part in column) < len(stored.paths):
                            column.append(np.full(len(stored.paths) - sum(len(part) for part in column), np.nan))
                    for name, reasons in stored.unscorable.items():
                        reasons.extend([""] * (len(stored.paths) - len(reasons)))
                if "skipped" in handle:
                    stored.skipped += [(decode_text(p), decode_text(r)) for p, r in
                                       zip(handle["skipped/paths"][:], handle["skipped/reasons"][:])]
        except (OSError, ValueError) as error:
            raise DamagedShardError(path, f"damaged data ({describe_os_error(error)})") from None
        stored.files.append(path)
    for rows, curves in pending:  # curves aligned by row, NaN where a file has none
        for name, width in widths.items():
            stored.curves.setdefault(name, []).append(curves.get(name, np.full((rows, width), np.nan)))
    return stored


def _identity(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings that make two results files comparable (not who ran them, or how many parts)."""
    return {key: value for key, value in settings.items()
            if key not in ("command", "igcli_version", "part_count", "source")}
