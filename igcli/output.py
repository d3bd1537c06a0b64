"""Reading igcli output back (an OUT folder, its index, or shard files), every shard checked first."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import h5py
import numpy as np

from .store import INDEX_NAME, describe_os_error, list_shards
from .text import decode_text
from .validate import DamagedShardError, OutputError, check_shard


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
        infos = [check_shard(shard) for shard in self.shards]
        self.settings = infos[0].settings
        self._counts = [info.rows for info in infos]

    def __len__(self) -> int:
        return sum(self._counts)

    def _read(self, shard: Path, names: Sequence[str] | None) -> dict[str, Any]:
        try:
            with h5py.File(shard, "r") as handle:
                names = names or [n for n, d in handle.items() if isinstance(d, h5py.Dataset)]
                return {name: _decoded(handle[name][:]) for name in names if name in handle}
        except (OSError, ValueError) as error:  # e.g. a chunk failing its fletcher32 checksum
            raise DamagedShardError(shard, f"damaged data ({describe_os_error(error)})") from None

    def iter_rows(self, columns: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
        """One dict per shard: column name -> array of that shard's rows (``paths`` as a list of str)."""
        for shard, count in zip(self.shards, self._counts):
            if count:
                yield self._read(shard, columns)

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
