"""The output folder of a shard-writing job: made, checked against the run it holds, and readied for this
part (``--resume`` repairs, ``--overwrite`` clears). Call :func:`prepare_output` holding the part's lock."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ..distributed import Part
from ..errors import InvalidArgumentError
from ..recipe import Recipe
from ..validate import ShardInfo
from ..store import (
    INDEX_NAME,
    SHARD_PATTERN,
    OutputError,
    check_shards,
    completed_inputs,
    list_shards,
    move_aside,
    remove_partials,
    shard_part,
)


def make_output_folder(out: Path) -> None:
    """Create ``out`` (and parents) or say in one line why it cannot be an output folder."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"-o {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"-o {out}: cannot create the folder ({error.strerror})") from None
    if not os.access(out, os.W_OK):
        raise OutputError(f"-o {out}: folder is not writable")


def prepare_output(out: Path, part: Part, recipe: Recipe, *, resume: bool, overwrite: bool,
                   notes: list[str] | None = None) -> set[str]:
    """Make ``out`` ready for this part and return the inputs already done (non-empty only with ``resume``).

    Call it holding the part's :class:`~igcli.locking.FolderLock`. Refuses a non-empty folder unless resuming
    or overwriting; with several parts, other parts' shards of the same run are expected and left alone.
    ``overwrite`` deletes this part's shards (all of igcli's files in a single-part run) and nothing else.
    ``resume`` drops this part's hidden partial shards and moves its damaged shards aside (``NAME.damaged``),
    so their images are done again; what it did is appended to ``notes``.
    """
    if resume and overwrite:
        raise InvalidArgumentError("--resume and --overwrite contradict each other; choose one")
    make_output_folder(out)
    notes = [] if notes is None else notes
    mine = [p for p in list_shards(out) if shard_part(p) == part.index]
    if overwrite:
        doomed = mine if part.count > 1 else list_shards(out)
        strange = [p for p in doomed if p.is_dir() and not p.is_symlink()]
        if strange:  # check before deleting anything
            raise OutputError(f"-o {out}: {strange[0].name} is a folder, not a shard igcli wrote; move it away first")
        if part.count == 1:
            (out / INDEX_NAME).unlink(missing_ok=True)  # first, so no index points at deleted shards
        for path in doomed:
            path.unlink()
        remove_partials(out, part.index if part.count > 1 else None)
        return set()
    # Resuming reads this part's shards through (every chunk's checksum): damage found now is repaired now.
    shards, damaged = check_shards(out, read_part=part.index if resume else None)
    if resume:
        remove_partials(out, part.index)
        for error in damaged:
            if shard_part(error.path) == part.index or part.count == 1:
                moved = move_aside(error.path)
                notes.append(f"moved damaged shard {error.path.name} aside to {moved.name} ({error.problem}); its "
                             "images are done again")
                shards = [info for info in shards if info.path != error.path]
            else:  # another part's images: that part's --resume repairs it
                notes.append(f"warning: {error}; part {shard_part(error.path)}'s --resume will redo its images")
        previous = stored_recipe(shards)
        if previous is not None:
            _check_resumable(out, previous, recipe)
        return completed_inputs([info.path for info in shards])
    entries = [name for name in os.listdir(out) if not name.startswith(".")]
    if part.count > 1:
        foreign = [n for n in entries if not (SHARD_PATTERN.match(n) or n == INDEX_NAME)]
        previous = stored_recipe(shards)
        if mine or foreign or (previous is not None and previous.differences(recipe)):
            raise OutputError(
                f"-o {out}: already holds output for part {part.label} or other files; use --resume to continue "
                "it or --overwrite to replace this part's shards"
            )
    elif entries:
        raise OutputError(f"-o {out}: folder is not empty; use --resume to continue that run, --overwrite to replace it, or another -o")
    return set()


def stored_recipe(shards: Sequence[ShardInfo]) -> Recipe | None:
    """The recipe of the run in ``shards`` (the first one's: a run has one), or None when there are none."""
    return Recipe.from_settings(shards[0].settings) if shards else None


def _check_resumable(out: Path, previous: Recipe, current: Recipe) -> None:
    differences = previous.differences(current)
    if differences:
        key = differences[0]
        before, now = previous.as_settings(), current.as_settings()
        if key == "steps":  # --steps auto records no step count: say so rather than steps=None
            before, now = ({**settings, "steps": "auto" if settings.get("schedule") == "auto"
                            else settings.get("steps")} for settings in (before, now))
        raise OutputError(
            f"-o {out}: holds a run with {key}={before.get(key)!r} but this run has {key}={now.get(key)!r}; "
            "resume with the same settings, or use another -o"
        )
