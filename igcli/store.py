"""HDF5 output: shards written atomically, an index over them, and reading it all back (README, Output format).

Layout of ``OUT/``:

- ``shard-PPPPP-SSSSS.h5``: part (rank) PPPPP, sequence SSSSS. Per-row datasets (``attributions``, ``paths``,
  ``abs_paths``, ``targets``, ``scores``, ``baseline_scores``, ``completeness_gap``, ...) share their first
  dimension; the group ``skipped`` lists inputs that could not be used (``paths``, ``reasons``). Root
  attributes hold the run settings, each as its own attribute and all together as JSON in ``settings_json``,
  and ``input_root``, the folder that held the run's inputs (for ``--root``, see :mod:`igcli.output`).
- ``paths`` are the inputs as given (relative ones relative to the folder the run started in); ``abs_paths``
  the same files as absolute paths, so readers find them from any folder. Shards written before
  ``abs_paths`` existed have ``paths`` only and stay readable.
- A shard is written as the hidden ``.shard-PPPPP-SSSSS.h5.partial`` and renamed when complete, so a reader
  (or a resumed run) never sees a partial one. One image's rows never straddle two shards.
- ``index.h5``: the same per-row datasets over all shards, ``attributions`` as a virtual dataset (no copy),
  the small ones copied (``abs_paths`` empty for the rows of shards written before it), plus ``shard`` (N,) and ``row`` (N,) locating each row and ``shards`` (names).
- Strings (``paths``, skip reasons) are stored as the UTF-8 bytes of the text; a file name that is not valid
  UTF-8 is stored as its raw bytes (read them back with ``os.fsdecode``, which :class:`Output` does).

Every write runs with signals deferred (:mod:`igcli.signals`) and a shard is published only after checking
that each dataset has exactly ``rows`` entries; a write that fails (a full disk) discards the hidden partial
shard, so a visible shard is always whole.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Sequence

import h5py
import numpy as np

from .errors import InvalidArgumentError
from .safe_file import WriteGuardedFile
from .signals import deferred
from .text import absolute_path, decode_text, encode_text
from .validate import DamagedShardError, OutputError, ShardInfo, abs_paths_digest, check_shard, strings_digest

FORMAT = "igcli-attributions/1"
INDEX_NAME = "index.h5"
SHARD_PATTERN = re.compile(r"^shard-(\d{5})-(\d{5})\.h5$")
PARTIAL_PATTERN = re.compile(r"^\.shard-(\d{5})-(\d{5})\.h5\.partial$")
# A shard moved aside as damaged keeps its sequence number taken.
TAKEN_PATTERN = re.compile(r"^shard-(\d{5})-(\d{5})\.h5(\.damaged(-\d+)?)?$")
STRING = h5py.string_dtype()
# HDF5 1.8 file format: attributes may exceed 64 KiB (a schedule of 100,000 steps is recorded in settings_json).
LIBVER = ("v108", "latest")


SPACE_PROBLEMS = ("no space left on the device", "disk quota exceeded")


def describe_os_error(error: BaseException) -> str:
    """One line for a file-system or HDF5 error; a full disk or quota in words a user acts on."""
    text = str(error)
    if "No space left" in text or "errno = 28" in text or getattr(error, "errno", None) == 28:
        return SPACE_PROBLEMS[0]
    if "Disk quota" in text or getattr(error, "errno", None) == 122:
        return SPACE_PROBLEMS[1]
    lines = text.strip().splitlines()
    return lines[0] if lines else type(error).__name__


def shard_name(part: int, sequence: int) -> str:
    return f"shard-{part:05d}-{sequence:05d}.h5"


def list_shards(out_dir: str | os.PathLike) -> list[Path]:
    """Complete shards in ``out_dir``, ordered by (part, sequence)."""
    folder = Path(out_dir)
    names = [name for name in os.listdir(folder) if SHARD_PATTERN.match(name)] if folder.is_dir() else []
    return [folder / name for name in sorted(names)]


def attribute_value(value: Any) -> Any:
    if value is None:
        return "none"
    if isinstance(value, str):  # (subclasses such as torch's TorchVersion confuse h5py)
        return encode_text(value).decode("utf-8", "backslashreplace")
    if isinstance(value, (bool, int, float, np.generic)):
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return np.asarray(value)
    return json.dumps(value)


class ShardWriter:
    """Writes rows into shards of about ``shard_size`` rows for one part (rank) of a run.

    Rows arrive in batches (:meth:`write`), which are split so that a shard holds at most ``shard_size`` rows:
    a shard is completed (checked, fsync, rename) as soon as it holds ``shard_size`` rows, on :meth:`close`, and
    when it has only skips and the run ends. One image's rows (consecutive rows with the same ``paths`` entry,
    topK) never straddle two shards: an image with more rows than ``shard_size`` gets a shard of its own. Each
    call is all-or-nothing for the files: signals wait until it returns, and a write error (disk full, quota)
    discards the open partial shard and raises :class:`OutputError`; completed shards stay.

    Args:
        out_dir: the output folder (must exist).
        part: this writer's part/rank number (the PPPPP of shard names).
        settings: run settings (JSON-serialisable), stored with every shard.
        shard_size: rows per shard (at most, but for an image with more rows; see above).
        first_sequence: sequence number of the first shard (a resumed run continues after the last one).
        input_root: the folder that held the run's inputs (:func:`igcli.data.input_root`), recorded as the
            ``input_root`` attribute of every shard for ``--root``; None records nothing.
        cwd: the folder relative ``paths`` are relative to (default: the current one, at construction), from
            which ``abs_paths`` is written.

    Subclasses write other row files the same way (``evaluate``'s results): ``prefix`` names the files
    (``PREFIX-PPPPP-SSSSS.h5``), ``format`` is their root ``format`` attribute and :meth:`check` what a file must
    pass before it becomes visible.
    """

    prefix = "shard"
    format = FORMAT

    def __init__(self, out_dir: Path, part: int, settings: dict[str, Any], shard_size: int, first_sequence: int = 0,
                 *, input_root: str | None = None, cwd: str | None = None) -> None:
        if shard_size < 1:
            raise InvalidArgumentError(f"--shard-size must be at least 1, got {shard_size}")
        self.out_dir = Path(out_dir)
        self.part = part
        self.settings = settings
        self.shard_size = shard_size
        self.sequence = first_sequence
        self.input_root = input_root
        self.cwd = os.getcwd() if cwd is None else cwd
        self.completed: list[Path] = []
        self.discarded_rows = 0  # rows lost with a partial shard a write error discarded
        self._handle: h5py.File | None = None
        self._file: WriteGuardedFile | None = None
        self._partial: Path | None = None
        self._rows = 0

    @property
    def open_rows(self) -> int:
        """Rows written to the open (not yet visible) file."""
        return self._rows if self._handle is not None else 0

    def file_name(self, sequence: int) -> str:
        return f"{self.prefix}-{self.part:05d}-{sequence:05d}.h5"

    def check(self, path: Path) -> None:
        """Raise DamagedShardError unless the written file at ``path`` meets its contract."""
        check_shard(path)

    def _open(self) -> h5py.File:
        if self._handle is None:
            self._partial = self.out_dir / f".{self.file_name(self.sequence)}.partial"
            self._rows = 0
            self._file = WriteGuardedFile(self._partial)
            self._handle = h5py.File(self._file, "w", libver=LIBVER)
            self._handle.attrs["format"] = self.format
            for key, value in self.settings.items():
                self._handle.attrs[key] = attribute_value(value)
            self._handle.attrs["settings_json"] = json.dumps(self.settings)
            if self.input_root is not None:
                self._handle.attrs["input_root"] = encode_text(self.input_root)
        return self._handle

    def _append(self, group: h5py.Group, name: str, values: np.ndarray | Sequence[str]) -> None:
        if isinstance(values, np.ndarray) and values.dtype.kind not in "OUS":
            array = values
            dtype = array.dtype
        else:
            array = np.asarray([encode_text(v) for v in values], dtype=object)
            dtype = STRING
        if name not in group:
            numeric = dtype is not STRING
            group.create_dataset(
                name,
                shape=(0, *array.shape[1:]),
                maxshape=(None, *array.shape[1:]),
                dtype=dtype,
                # Chunks of at most 1 MiB and one shard: HDF5 allocates whole chunks, even for a small last batch.
                chunks=(max(1, min(64, self.shard_size, 2**20 // max(1, array[:1].nbytes))), *array.shape[1:]),
                fletcher32=numeric,  # a damaged chunk fails loudly on read instead of giving wrong maps
            )
        dataset = group[name]
        if dataset.shape[1:] != array.shape[1:]:
            raise ValueError(f"{name}: rows of shape {array.shape[1:]} do not fit the shard's {dataset.shape[1:]}")
        start = dataset.shape[0]
        dataset.resize(start + array.shape[0], axis=0)
        dataset[start:] = array

    def _guarded(self, action, *args: Any) -> Any:
        """Run one write step with signals deferred; on failure discard the partial shard and say why."""
        with deferred():
            try:
                result = action(*args)
                if self._file is not None and self._file.error is not None:
                    raise self._file.error
                return result
            except (OSError, RuntimeError, ValueError, DamagedShardError) as error:  # h5py: OSError/RuntimeError
                if self._file is not None and self._file.error is not None:
                    error = self._file.error  # the cause, not what HDF5 made of it
                problem = error.problem if isinstance(error, DamagedShardError) else describe_os_error(error)
                self.discard()
                advice = "free space" if problem in SPACE_PROBLEMS else "fix that"
                raise OutputError(
                    f"{self.out_dir}: writing {self.file_name(self.sequence)} failed ({problem}); finished "
                    f"files are kept: {advice} and rerun with --resume"
                ) from None

    def write(self, columns: dict[str, np.ndarray | Sequence[str]]) -> None:
        """Append rows: every column has the same first dimension N; ``paths`` is a sequence of str (the inputs
        as given; ``abs_paths`` is added from them unless given)."""
        lengths = {name: len(values) for name, values in columns.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"columns of different lengths: {lengths}")
        if "paths" in columns and "abs_paths" not in columns:
            columns = {**columns, "abs_paths": [absolute_path(p, self.cwd) for p in columns["paths"]]}
        count = next(iter(lengths.values()), 0)
        starts = _image_starts(columns.get("paths"), count)
        begin = 0
        while True:
            end = self._cut(starts, begin, count)
            if end is None:  # the next image does not fit: it starts the next shard
                self.finish_shard()
                continue
            self._guarded(self._write_columns, {n: v[begin:end] for n, v in columns.items()}, end - begin)
            if self._rows >= self.shard_size:
                self.finish_shard()
            if end >= count:
                return
            begin = end

    def _cut(self, starts: list[int], begin: int, count: int) -> int | None:
        """Where the piece of a batch starting at row ``begin`` ends: as many whole images as fit in the open
        shard; None when not one fits in a shard that has rows; one whole image when it fits in no shard."""
        limit = begin + self.shard_size - self._rows
        if count <= limit:
            return count
        fitting = [s for s in starts if begin < s <= limit]
        if fitting:
            return fitting[-1]
        if self._rows > 0 and self._handle is not None:
            return None
        return next(s for s in starts if s > begin)

    def _write_columns(self, columns: dict[str, Any], count: int) -> None:
        handle = self._open()
        for name, values in columns.items():
            self._append(handle, name, values)
        handle.flush()  # so a full disk shows now, not after more batches were computed into a lost shard
        self._rows += count

    def skip(self, path: str, reason: str) -> None:
        """Record an input that could not be used, with its reason (kept in the current shard)."""
        self._guarded(self._write_skip, path, reason)

    def _write_skip(self, path: str, reason: str) -> None:
        group = self._open().require_group("skipped")
        self._append(group, "paths", [path])
        self._append(group, "reasons", [reason])

    def finish_shard(self) -> Path | None:
        """Complete the current shard (if any): check, flush, fsync, rename into place; its final path."""
        if self._handle is None:
            return None
        return self._guarded(self._publish)

    def _publish(self) -> Path:
        self._handle.attrs["rows"] = self._rows
        self._handle.attrs["strings_sha256"] = strings_digest(self._handle)
        extra = abs_paths_digest(self._handle)
        if extra is not None:
            self._handle.attrs["abs_paths_sha256"] = extra
        self._handle.attrs["complete"] = True
        self._handle.close()
        self._handle = None
        self._file.sync()
        self._file.close()
        if self._file.error is not None:
            raise self._file.error
        self._file = None
        self.check(self._partial)  # every dataset has exactly `rows` entries, or nothing becomes visible
        final = self.out_dir / self.file_name(self.sequence)
        os.replace(self._partial, final)
        _fsync_folder(self.out_dir)
        self._partial = None
        self.completed.append(final)
        self.sequence += 1
        self._rows = 0
        return final

    def discard(self) -> None:
        """Drop the open partial shard (its rows were not published); the writer can go on with a new one."""
        with deferred():
            if self._handle is not None:
                try:
                    self._handle.close()
                except Exception:  # the file goes anyway
                    pass
                self._handle = None
                self.discarded_rows += self._rows
            if self._file is not None:
                self._file.close()
                self._file = None
            if self._partial is not None:
                self._partial.unlink(missing_ok=True)
                self._partial = None
            self._rows = 0

    def close(self) -> None:
        """Complete the open shard: what was written is kept (also on an interrupt)."""
        self.finish_shard()


def _image_starts(paths: Sequence[str] | None, count: int) -> list[int]:
    """Rows 1..count-1 where a new image begins (its ``paths`` entry differs from the row before), and
    ``count``; every row when there are no paths."""
    if paths is None:
        return list(range(1, count + 1))
    return [row for row in range(1, count) if paths[row] != paths[row - 1]] + [count]


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


# -- the output folder: checks, resume -----------------------------------------------------------------------


def remove_partials(out_dir: Path, part: int | None = None) -> list[Path]:
    """Delete leftover ``.partial`` shards (of ``part``, or all): what a killed run was writing."""
    removed = []
    for name in os.listdir(out_dir):
        match = PARTIAL_PATTERN.match(name)
        if match and (part is None or int(match.group(1)) == part):
            try:
                (out_dir / name).unlink(missing_ok=True)
            except OSError:  # not a file igcli left (a folder by that name): writing there will say so
                continue
            removed.append(out_dir / name)
    return removed


def next_sequence(out_dir: Path, part: int) -> int:
    """The first shard sequence number of ``part`` not taken by a shard (complete or moved aside)."""
    numbers = [int(m.group(2)) for m in map(TAKEN_PATTERN.match, os.listdir(out_dir)) if m and int(m.group(1)) == part]
    return max(numbers, default=-1) + 1


def shard_part(path: Path) -> int:
    return int(SHARD_PATTERN.match(path.name).group(1))


def check_shards(out_dir: Path, read_part: int | None = None) -> tuple[list[ShardInfo], list[DamagedShardError]]:
    """Every visible shard of ``out_dir`` checked, those of part ``read_part`` down to every chunk's
    checksum: (the valid ones, the problems of the others)."""
    good, damaged = [], []
    for shard in list_shards(out_dir):
        try:
            good.append(check_shard(shard, read_data=shard_part(shard) == read_part))
        except DamagedShardError as error:
            damaged.append(error)
    return good, damaged


def move_aside(path: Path) -> Path:
    """Rename a damaged shard out of the way (``NAME.damaged``, numbered if taken), never deleting it."""
    target = path.with_name(f"{path.name}.damaged")
    number = 1
    while target.exists():
        target = path.with_name(f"{path.name}.damaged-{number}")
        number += 1
    with deferred():
        os.replace(path, target)
    return target


def completed_inputs(shards: Sequence[Path]) -> set[str]:
    """Input paths already handled (attributed or skipped) in ``shards`` (checked ones)."""
    done: set[str] = set()
    for shard in shards:
        try:
            with h5py.File(shard, "r") as handle:
                for name in ("paths", "skipped/paths"):
                    if name in handle:
                        done.update(decode_text(p) for p in handle[name][:])
        except (OSError, ValueError) as error:
            raise DamagedShardError(shard, f"damaged paths ({describe_os_error(error)})") from None
    return done


# The index over the shards lives in its own module (imported last: it uses the names above).
from .index import build_index  # noqa: E402  (re-exported: igcli.store.build_index)
