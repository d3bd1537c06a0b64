"""Reading igcli output back (an OUT folder, its index, or shard files), every shard checked first, and
finding the input images again (:func:`locate_image`) from any folder, or under ``--root`` after they moved."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import h5py
import numpy as np

from .errors import InvalidArgumentError
from .recipe import Recipe
from .store import INDEX_NAME, describe_os_error, list_shards
from .text import decode_text, draw_key
from .validate import DamagedShardError, OutputError, check_shard


IMAGE_PATHS = "image_paths"  # the column iter_rows computes: where each row's input image is now
DRAW_KEYS = "draw_keys"  # and the key that seeded each row's random draws (igcli.ensembles.draws.draw_key)
COMPUTED = (IMAGE_PATHS, DRAW_KEYS)


def locate_image(path: str, abs_path: str | None = None, *, input_root: str | None = None,
                 root: str | os.PathLike | None = None) -> str:
    """Where the input image of a row is now, to open it: a path relative to the current folder or absolute.

    Args:
        path: the input as given to ``igcli attribute`` (``paths``).
        abs_path: the same file as an absolute path, as the run saw it (``abs_paths``; None or empty in shards
            written before it was stored).
        input_root: the folder that held the run's inputs (the shard's ``input_root``), absolute.
        root: ``--root DIR``: the folder that holds what ``input_root`` held, now (the data moved).

    Without ``root``: ``abs_path`` when that file exists (the run's own file, whatever the current folder);
    else ``path`` as given (relative to the current folder: the whole tree moved and you run from its new
    place; and all that shards written before ``abs_paths`` know). With ``root``: ``root`` joined with the
    image's path below ``input_root``; in shards without ``input_root`` (or an image outside it), ``root``
    joined with a relative ``path`` (``root`` then stands for the folder the run started in) and an absolute
    ``path`` unchanged.
    """
    if root is not None:
        if input_root and abs_path:
            inside = os.path.relpath(abs_path, input_root)
            if inside != os.pardir and not inside.startswith(os.pardir + os.sep):
                return os.path.join(os.fspath(root), inside)
        return path if os.path.isabs(path) else os.path.join(os.fspath(root), path)
    if abs_path and os.path.exists(abs_path):
        return abs_path
    return path


def inherited_input_root(out_dir: str | os.PathLike, computed: str) -> str | None:
    """The ``input_root`` a run adding shards to ``out_dir`` (``--resume``, another part) records: that of the
    shards already there (the first run's, whatever this run's inputs), so one ``--root`` serves them all;
    None when one of them has none (written before it was recorded, it reads ``--root`` as the folder the run
    started in, and so must the new ones); ``computed``, this run's, when there are no shards yet."""
    found: list[str | None] = []
    for shard in list_shards(out_dir):
        try:
            with h5py.File(shard, "r") as handle:
                value = handle.attrs.get("input_root")
        except OSError:  # a damaged shard: moved aside by its part's --resume, and no guide
            continue
        found.append(decode_text(value) if isinstance(value, (bytes, str)) else None)
    if not found:
        return computed
    return None if None in found else found[0]


def missing_image_hint(root: str | os.PathLike | None) -> str:
    """What to tell a user whose input image is not where igcli looked (appended to "file not found")."""
    if root is None:
        return ("the images moved? pass --root DIR, the new place of the input folder (DIR holds what the folder "
                "given to igcli attribute held)")
    return (f"not under --root {os.fspath(root)}: give the new place of the input folder (the folder that holds "
            "what the folder given to igcli attribute held)")


class Output:
    """igcli output read back: an OUT folder, its ``index.h5``, or shard files.

    Reads the shards directly (the index is a convenience for other tools), so it is right even while other
    parts of a job are still adding shards. ``root`` is where the input images are now when they moved (see
    :func:`locate_image`); the column ``image_paths`` of :meth:`iter_rows` says where to open each row's image.

    >>> output = Output("OUT")
    >>> output.recipe.method, len(output)   # how the maps were made: igcli.recipe.Recipe
    >>> for rows in output.iter_rows(): rows["attributions"]   # one shard's rows at a time
    """

    def __init__(self, source: str | os.PathLike | Sequence[str | os.PathLike], *,
                 root: str | os.PathLike | None = None) -> None:
        if root is not None and not os.path.isdir(root):
            raise InvalidArgumentError(f"--root {os.fspath(root)}: no such folder; give the new place of the input "
                                       "folder (it holds what the folder given to igcli attribute held)")
        self.root = root
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
        infos = [check_shard(shard) for shard in self.shards]
        self.settings = infos[0].settings  # as stored (flat); the recipe reads it
        self.recipe = Recipe.from_settings(self.settings)
        self._counts = [info.rows for info in infos]
        self._input_roots = [info.input_root for info in infos]

    def __len__(self) -> int:
        return sum(self._counts)

    def _read(self, shard: Path, names: Sequence[str] | None, rows: Sequence[int] | None = None) -> dict[str, Any]:
        try:
            with h5py.File(shard, "r") as handle:
                names = names or [n for n, d in handle.items() if isinstance(d, h5py.Dataset)]
                # h5py reads a list of increasing row numbers without reading the rows between them
                where = slice(None) if rows is None else np.asarray(rows, dtype=np.int64)
                return {name: _decoded(handle[name][where]) for name in names if name in handle}
        except (OSError, ValueError) as error:  # e.g. a chunk failing its fletcher32 checksum
            raise DamagedShardError(shard, f"damaged data ({describe_os_error(error)})") from None

    def shard_rows(self, index: int, columns: Sequence[str] | None = None,
                   rows: Sequence[int] | None = None) -> dict[str, Any]:
        """Shard ``index``'s rows (all, or the increasing row numbers ``rows``): column name -> array
        (``paths`` as a list of str), with the computed columns of :meth:`iter_rows` when asked for."""
        input_root = self._input_roots[index]
        wanted = None if columns is None else [name for name in columns if name not in COMPUTED]
        if wanted is not None and set(COMPUTED) & set(columns):
            wanted += [name for name in ("paths", "abs_paths") if name not in wanted]
        if rows is not None and len(rows) == 0:
            return {name: [] for name in (columns or ())}
        found = self._read(self.shards[index], wanted, rows)
        absolute = found.get("abs_paths") or [None] * len(found.get("paths", []))
        if columns is not None and IMAGE_PATHS in columns:
            found[IMAGE_PATHS] = [locate_image(path, abs_path, input_root=input_root, root=self.root)
                                  for path, abs_path in zip(found["paths"], absolute)]
        if columns is not None and DRAW_KEYS in columns:
            found[DRAW_KEYS] = [draw_key(path, abs_path, input_root) for path, abs_path in zip(found["paths"], absolute)]
        return found

    @property
    def input_root(self) -> str | None:
        """The folder that held the run's inputs (the first shard's ``input_root``), absolute; None for shards
        written before it was recorded."""
        return self._input_roots[0] if self._input_roots else None

    def shard_row_counts(self) -> list[int]:
        return list(self._counts)

    def iter_rows(self, columns: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
        """One dict per shard: column name -> array of that shard's rows (``paths`` as a list of str).

        ``image_paths`` (asked for by name) is computed, not stored: where to open each row's input image now
        (:func:`locate_image` with this output's ``root``); so is ``draw_keys``, the key that seeded each row's
        random draws (:func:`igcli.ensembles.draws.draw_key`)."""
        for index, count in enumerate(self._counts):
            if count:
                yield self.shard_rows(index, columns)

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
            rows = self._read(shard, ["skipped/paths", "skipped/reasons"])
            found += list(zip(rows.get("skipped/paths", []), rows.get("skipped/reasons", [])))
        return found


def _decoded(values: np.ndarray) -> Any:
    if values.dtype.kind == "O":
        return [decode_text(v) for v in values]
    return values
