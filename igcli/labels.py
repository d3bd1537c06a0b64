"""True classes for ``--target label``, and the CSV reading that labels and boxes share.

Labels come from ``--labels FILE`` (a CSV of ``path,label`` rows, or one label per line for the ImageNet
validation images), else from the image's file name (a leading ImageNet WordNet ID, ``n01443537_x.jpg``) or its
parent folder name (ImageFolder layout); a label that names no class of the model is a skip with its reason,
never an error that ends a run. A labels file is data: it is parsed, never run, and whatever is wrong with it
is one line naming the file and the line.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .errors import InvalidArgumentError
from .input_file import MiB, read_regular_file

# An ImageNet WordNet ID at the start of a file name, as ImageNet's training images are named
# (n01443537_10007.JPEG) and many copies of them (n01443537_goldfish.jpg).
WNID_PREFIX = re.compile(r"^(n[0-9]{8})(?=[_.\- ]|$)")
# The number of an ImageNet validation image (ILSVRC2012_val_00000042.JPEG): its line in a ground-truth list.
VALIDATION_NUMBER = re.compile(r"_val_([0-9]{8})$")
# The ILSVRC devkit's ground truth holds ILSVRC2012_IDs (1..1000 in the devkit's meta.mat order), not classes.
DEVKIT_GROUND_TRUTH = re.compile(r"^ILSVRC20[0-9]{2}_validation_ground_truth", re.IGNORECASE)
HOW_TO_LABEL = ("give --labels FILE (path,label rows, or one label per line for ImageNet validation images), "
                "or name the parent folder or the file's start after the class")
# The largest CSV read (--labels, --boxes): ImageNet's 1.28 million training paths with labels take 60-100 MB,
# its 50,000 validation labels 0.5 MB; more is almost surely the wrong file (or /dev/zero, a disk image...).
MAX_CSV_BYTES = 256 * MiB
MAX_LABEL = 200  # characters: longer is no class index, WordNet ID or class name


class LabelResolver:
    """The true class of an image, for ``--target label``.

    Sources, the first that applies:

    - ``--labels FILE``, a CSV with columns ``path,label`` (UTF-8 with or without a byte-order mark; an
      optional ``path,label`` header; paths as given on the command line, or relative to the CSV's folder, or
      absolute);
    - ``--labels FILE`` with one label per line and no commas, a ground-truth list for the ImageNet validation
      images: line N labels the image whose file name ends in ``_val_N`` with N written in 8 digits
      (``ILSVRC2012_val_00000042.JPEG`` is line 42), wherever it lies and whichever subset of them is given;
    - without ``--labels``: a WordNet ID that starts the file name (``n01443537_goldfish.jpg``), else the
      parent folder name.

    A label is an integer class index (0-based, the model's own order; for torchvision's ImageNet models the
    sorted WordNet IDs of ``resources/imagenet_wnids.txt``), an ImageNet WordNet ID (``n01440764``; for
    1000-class models), or a class name of the model's categories (case and ``_``/space insensitive).

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
        self.num_classes = num_classes if num_classes is not None else (len(categories) if categories else None)
        imagenet = (categories is not None and len(categories) == 1000) or self.num_classes == 1000
        self.wnids = _imagenet_wnids() if imagenet else {}
        self.table: dict[str, str] | None = None
        self.lines: list[str] | None = None  # a ground-truth list: lines[N - 1] labels validation image N
        self.source = csv_path
        if csv_path is not None:
            if DEVKIT_GROUND_TRUTH.match(os.path.basename(csv_path)):
                raise InvalidArgumentError(
                    f"--labels {csv_path}: the ILSVRC devkit's ground truth holds ILSVRC2012_IDs (1..1000 in the "
                    "devkit's meta.mat order), not class indices, and igcli cannot map them without meta.mat; give "
                    "a file of one WordNet ID per line (such as TensorFlow's "
                    "imagenet_2012_validation_synset_labels.txt file) or a path,label CSV"
                )
            parsed = _parse_labels_file(csv_path)
            self.table, self.lines = parsed.table, parsed.lines
            if parsed.integers is not None and parsed.integers[0] >= 1 and parsed.integers[1] == self.num_classes:
                raise InvalidArgumentError(
                    f"--labels {csv_path}: its labels run 1..{self.num_classes}, so they look 1-based; igcli takes "
                    f"0-based class indices (0..{self.num_classes - 1}, the model's order)"
                )

    @staticmethod
    def _key(name: str) -> str:
        return name.strip().lower().replace("_", " ")

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

    def _label(self, path: str) -> str:
        """The label text for ``path`` from the source that applies; ValueError when it has none."""
        if self.table is not None:
            label = self.table.get(path) or self.table.get(os.path.normpath(os.path.abspath(path)))
            if label is None:
                raise ValueError(f"no row for this image in --labels {self.source}")
            return label
        if self.lines is not None:
            match = VALIDATION_NUMBER.search(Path(path).stem)
            if match is None:
                raise ValueError(f"--labels {self.source} has one label per line, for ImageNet validation images "
                                 "(ILSVRC2012_val_NNNNNNNN); this name has no such number: give a path,label CSV")
            number = int(match.group(1))
            if not 1 <= number <= len(self.lines):
                raise ValueError(f"validation image {number} has no line in --labels {self.source} "
                                 f"({len(self.lines)} lines)")
            return self.lines[number - 1]
        match = WNID_PREFIX.match(os.path.basename(path)) if self.wnids else None
        if match and match.group(1) in self.wnids:
            return match.group(1)
        return Path(path).parent.name

    def __call__(self, path: str) -> int:
        """The class index of ``path``; ValueError (with a reason) when it has none."""
        label = self._label(path)
        index = self._parse(label)
        if index is None:
            shown = label if len(label) <= 60 else label[:60] + "..."
            raise ValueError(f"label {shown!r} is not a class index, ImageNet WordNet ID or class name; "
                             + ("check that line of --labels" if self.source else HOW_TO_LABEL))
        return index


@dataclass(frozen=True)
class _LabelsFile:
    """A parsed ``--labels`` file: a path -> label ``table`` (CSV) or the ``lines`` of a one-label-per-line
    list, and for a list of integers only, their (min, max)."""

    table: dict[str, str] | None
    lines: list[str] | None
    integers: tuple[int, int] | None


# The last file parsed, by (real path, device, inode, size, modification time): igcli attribute checks
# --labels before it loads the model and uses it after, and a file of a million lines takes seconds to parse.
_PARSED: dict[tuple, _LabelsFile] = {}


def _parse_labels_file(csv_path: str) -> _LabelsFile:
    try:
        info = os.stat(csv_path)
        key = (os.path.realpath(csv_path), info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    except OSError:
        key = None  # read_csv_rows says what is wrong
    if key is not None and key in _PARSED:
        return _PARSED[key]
    rows = read_csv_rows("--labels", csv_path)
    if rows and all(len(row) == 1 for row in rows if row):
        lines = _read_lines(csv_path, rows)
        numbers = [int(label) for label in lines if re.fullmatch(r"[0-9]{1,18}", label)]
        integers = (min(numbers), max(numbers)) if numbers and len(numbers) == len(lines) else None
        parsed = _LabelsFile(None, lines, integers)
    else:
        parsed = _LabelsFile(_read_csv(csv_path, rows), None, None)
    _PARSED.clear()
    if key is not None:
        _PARSED[key] = parsed
    return parsed


def _read_csv(csv_path: str, rows: list[list[str]]) -> dict[str, str]:
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


def _read_lines(csv_path: str, rows: list[list[str]]) -> list[str]:
    """The labels of a one-label-per-line file, checked: no empty line in between (it would shift every later
    image's label) and none too long to be a label."""
    while rows and not rows[-1]:
        rows = rows[:-1]
    labels = []
    for number, row in enumerate(rows, start=1):
        label = row[0].strip() if row else ""
        if not label:
            raise InvalidArgumentError(f"--labels {csv_path}: line {number} is empty; a one-label-per-line "
                                       "file needs a label on every line (line N labels validation image N)")
        if len(label) > MAX_LABEL or not label.isprintable():
            raise InvalidArgumentError(f"--labels {csv_path}: line {number} is not a class index, WordNet ID "
                                       "or class name")
        labels.append(label)
    return labels


def read_csv_rows(option: str, csv_path: str) -> list[list[str]]:
    """The rows of a CSV given by ``option`` (``--labels``, ``--boxes``); InvalidArgumentError (one line naming
    the option and file) when it cannot be read.

    The file must be a regular file of at most :data:`MAX_CSV_BYTES`. It is decoded as a whole, not while csv reads it, so a decoding error can name its line; a
    byte-order mark (spreadsheet programs write one) is dropped, or it would be part of the first path.
    """
    data = read_regular_file(option, csv_path, MAX_CSV_BYTES)
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


