"""True classes for ``--target label``, and the CSV reading that labels and boxes share.

Labels come from ``--labels FILE`` (CSV ``path,label``) or the image's parent folder name (ImageFolder
layout); a label that names no class of the model is a skip with its reason, never an error that ends a run.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
from pathlib import Path
from typing import Sequence

from .errors import InvalidArgumentError


class LabelResolver:
    """The true class of an image, for ``--target label``.

    From ``--labels FILE`` (CSV with columns ``path,label``, UTF-8 with or without a byte-order mark; paths as
    given on the command line, or relative to the CSV's folder, or absolute) when given, else from the image's
    parent folder name (ImageFolder layout): an integer, an ImageNet WordNet ID (``n01440764``) for 1000-class
    ImageNet models, or a class name of the model's categories (case and ``_``/space insensitive).

    An integer label must be a class of the model: not negative, and below ``num_classes`` (by default the
    number of ``categories``, when given). One that is not is a skip with its reason, not a crash later when
    the model's outputs are indexed with it.
    """

    def __init__(
        self,
        csv_path: str | None = None,
        categories: Sequence[str] | None = None,
        *,
        num_classes: int | None = None,
    ) -> None:
        self.categories = {self._key(name): index for index, name in enumerate(categories or ())}
        self.wnids = _imagenet_wnids() if categories is not None and len(categories) == 1000 else {}
        self.num_classes = num_classes if num_classes is not None else (len(categories) if categories else None)
        self.table: dict[str, str] | None = None
        if csv_path is not None:
            self.table = self._read_csv(csv_path)

    @staticmethod
    def _key(name: str) -> str:
        return name.strip().lower().replace("_", " ")

    @staticmethod
    def _read_csv(csv_path: str) -> dict[str, str]:
        rows = read_csv_rows("--labels", csv_path)
        first = 1
        if rows and rows[0][:2] == ["path", "label"]:
            rows, first = rows[1:], 2
        base = os.path.dirname(os.path.abspath(csv_path))
        table = {}
        for number, row in enumerate(rows, start=first):
            if len(row) < 2:
                raise InvalidArgumentError(f"--labels {csv_path}: line {number} needs two columns, path,label")
            path, label = row[0].strip(), row[1].strip()
            table[path] = label
            table[os.path.normpath(os.path.join(base, path))] = label
        return table

    def _parse(self, label: str) -> int | None:
        # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
        if re.fullmatch(r"-?[0-9]+", label):
            if len(label) > 18:  # int() refuses 4300+ digits, and no model has 10^18 classes
                raise ValueError(f"label {label[:20]}... is outside the model's classes")
            return self._check_range(int(label))
        if label in self.wnids:
            return self.wnids[label]
        return self.categories.get(self._key(label))

    def _check_range(self, index: int) -> int:
        if index < 0:
            raise ValueError(f"label {index} is negative")
        if self.num_classes is not None and index >= self.num_classes:
            classes = "class" if self.num_classes == 1 else "classes"
            raise ValueError(
                f"label {index} is outside the model's {self.num_classes} {classes} (0..{self.num_classes - 1})"
            )
        return index

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


def read_csv_rows(option: str, csv_path: str) -> list[list[str]]:
    """The rows of a CSV given by ``option`` (``--labels``, ``--boxes``); InvalidArgumentError (one line naming
    the option and file) when it cannot be read.

    The file is decoded as a whole, not while csv reads it, so a decoding error can name its line; a
    byte-order mark (spreadsheet programs write one) is dropped, or it would be part of the first path.
    """
    try:
        data = Path(csv_path).read_bytes()
    except OSError as error:
        raise InvalidArgumentError(f"{option} {csv_path}: {error.strerror}") from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]  # decoded as "utf-8-sig" would, but offsets stay those of ``data``
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise InvalidArgumentError(
            f"{option} {csv_path}: not UTF-8 text (byte 0x{data[error.start]:02x} at line {line}); save it as UTF-8"
        ) from None
    if "\0" in text:  # a binary file (csv itself accepts NULs since Python 3.11); no path holds a NUL
        line = text.count("\n", 0, text.index("\0")) + 1
        raise InvalidArgumentError(f"{option} {csv_path}: not a CSV file (a NUL byte at line {line})")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        return list(reader)
    except csv.Error as error:  # a field over csv's size limit (an unclosed quote), ...
        raise InvalidArgumentError(
            f"{option} {csv_path}: not a CSV file ({error} at line {reader.line_num})"
        ) from None


def _imagenet_wnids() -> dict[str, int]:
    text = (Path(__file__).parent / "resources" / "imagenet_wnids.txt").read_text()
    return {wnid: index for index, wnid in enumerate(text.split())}


