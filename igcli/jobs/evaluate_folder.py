"""Where an evaluation's results live, what makes two evaluations the same, and readying its folder for a part.

Results go to ``OUT/evaluations/NAME/`` (``--results DIR``: ``DIR/NAME/``), NAME made of the ranking, the
metrics and a digest of everything that changes the numbers: the metrics and their options, the ranking,
the seed, ``--min-pred``, the scoring model and weights, the ground truth, and the attribution run scored
(its settings and folder). Evaluations that differ in any of these never mix; parts and resumed runs of
one evaluation meet in one folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from pathlib import Path
from typing import Any, Sequence

from ..distributed import Part
from ..errors import InvalidArgumentError
from ..results_store import (
    check_results_file,
    list_results,
    remove_partial_results,
    results_part,
)
from ..store import move_aside
from ..validate import DamagedShardError, OutputError

EVALUATIONS = "evaluations"
SETTINGS_FILE = "evaluation.json"  # the evaluation's settings, readable without HDF5 (written once, atomically)
_IDENTITY_EXCLUDED = ("command", "igcli_version", "part_count", "source")  # source: where OUT was, for people


def source_digest(settings: dict[str, Any], input_root: str | None) -> str:
    """SHA-256 of an attribution run's settings (its command included) and the folder that held its inputs:
    results name the run they score, wherever its output folder is moved or copied to."""
    text = json.dumps({"settings": settings, "input_root": input_root}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def identity(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings that decide the numbers (not who ran them, with which igcli or in how many parts)."""
    return {key: value for key, value in settings.items() if key not in _IDENTITY_EXCLUDED}


def evaluation_name(settings: dict[str, Any]) -> str:
    """``RANK-METRICS-DIGEST``: readable in ``ls``, unique per :func:`identity`."""
    digest = hashlib.sha256(json.dumps(identity(settings), sort_keys=True, default=str).encode()).hexdigest()[:10]
    metrics = "+".join(settings["metrics"])
    if len(metrics) > 60:
        metrics = metrics[:52].rpartition("+")[0] + "+more"
    return re.sub(r"[^A-Za-z0-9+._-]", "_", f"{settings['rank']}-{metrics}-{digest}")


def evaluations_root(source_folder: Path, results: str | os.PathLike | None) -> Path:
    return Path(results) if results is not None else source_folder / EVALUATIONS


def make_evaluation_folder(folder: Path, settings: dict[str, Any], option: str) -> None:
    """Create ``folder`` and its ``evaluation.json`` or say in one line why it cannot be used."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"{option} {folder.parent}: cannot create {folder.name} ({error.strerror}); pass "
                          "--results DIR to write the results elsewhere") from None
    if not os.access(folder, os.W_OK):
        raise OutputError(f"{option} {folder}: folder is not writable; pass --results DIR to write elsewhere")
    target = folder / SETTINGS_FILE
    found = folder_settings(folder)
    if found is not None and identity(found) != identity(settings):
        raise OutputError(f"{folder}: holds another evaluation than this one; move it away")
    if read_settings_file(target) is not None:
        return
    if target.is_symlink() or (target.exists() and not target.is_file()):
        raise OutputError(f"{target}: is not a file igcli wrote; move it away")
    partial = folder / f".{SETTINGS_FILE}.{os.getpid()}.partial"
    try:
        partial.write_text(json.dumps(settings, indent=1, sort_keys=True, default=str), encoding="utf-8")
        os.replace(partial, target)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise OutputError(f"{folder}: cannot write {SETTINGS_FILE} ({error.strerror}); free space or pass "
                          "--results DIR") from None


def read_settings_file(path: Path) -> dict[str, Any] | None:
    """The settings in an ``evaluation.json``, or None when it is missing, not a regular file (a FIFO would
    block), or not an evaluation's settings."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return None
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            found = json.loads(handle.read(1 << 20).decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    finally:
        os.close(descriptor)
    return found if isinstance(found, dict) and isinstance(found.get("metrics"), list) else None


def folder_settings(folder: Path) -> dict[str, Any] | None:
    """An evaluation folder's settings: its ``evaluation.json``, or (that file damaged or gone) those its
    results files record; None when neither says."""
    found = read_settings_file(folder / SETTINGS_FILE)
    if found is not None:
        return found
    for path in list_results(folder):
        try:
            return check_results_file(path).settings
        except DamagedShardError:
            continue
    return None


def prepare_evaluation(folder: Path, part: Part, settings: dict[str, Any], *, resume: bool, overwrite: bool,
                       notes: list[str]) -> None:
    """Make ``folder`` ready for this part, holding its lock.

    Without ``resume`` or ``overwrite``, results of this part (or of a run split into another number of parts)
    are refused: they are data. ``overwrite`` deletes this part's results files and those of a run split into
    another number of parts (every file in a one-part run). ``resume`` drops this part's hidden partial files and moves its damaged files aside
    (``NAME.damaged``), so their images are scored again.
    """
    if resume and overwrite:
        raise InvalidArgumentError("--resume and --overwrite contradict each other; choose one")
    remove_partial_results(folder, part.index)
    files = list_results(folder)
    mine = [path for path in files if results_part(path) == part.index]
    if overwrite:
        # A run split another way holds rows of this part's images too, which would win the merge over the new
        # ones: they go as well (the other parts of this run, scoring again with --overwrite, redo theirs).
        other_split = [path for path in files if _part_count(path) not in (None, part.count)]
        for path in dict.fromkeys([*mine, *other_split]) if part.count > 1 else files:
            try:
                path.unlink()
            except IsADirectoryError:
                raise OutputError(f"{path}: is a folder, not results igcli wrote; move it away first") from None
        return
    if resume:  # a one-part run scores every image: it repairs every part's damaged files
        for path in mine if part.count > 1 else files:
            try:
                check_results_file(path, read_data=True)
            except DamagedShardError as error:
                aside = move_aside(path)
                notes.append(f"moved the damaged {path.name} aside to {aside.name} ({error.problem}); its images "
                             "are scored again")
        return
    clash = mine or [path for path in files if _part_count(path) not in (None, part.count)]
    if clash:
        raise OutputError(f"{folder}: already holds results of this evaluation ({clash[0].name}); pass --resume to "
                          "score only the rest, --overwrite to score again, or --summary to print them")


def _part_count(path: Path) -> int | None:
    try:
        return check_results_file(path).settings.get("part_count")
    except DamagedShardError:
        return None


def find_evaluations(root: Path, digest: str, metrics: Sequence[str] | None = None,
                     rank: str | None = None) -> list[Path]:
    """The evaluation folders under ``root`` that score the run with ``digest`` (and, when given, exactly these
    ``metrics`` or this ``rank``), oldest first."""
    found = []
    if not root.is_dir():
        return found
    for folder in sorted(root.iterdir(), key=lambda p: p.name):
        settings = folder_settings(folder) if folder.is_dir() and not folder.is_symlink() else None
        if settings is None or settings.get("source_sha256") != digest:
            continue
        if metrics is not None and list(settings["metrics"]) != list(metrics):
            continue
        if rank is not None and settings.get("rank") != rank:
            continue
        found.append(folder)
    return sorted(found, key=lambda p: p.stat().st_mtime)

