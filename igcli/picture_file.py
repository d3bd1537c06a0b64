"""Picture files that are written safely: the format and the destination checked before anything is drawn,
and the file replaced in one step (a new file renamed over the name), so a failure never leaves half a
picture and a link planted under the name is replaced, not written through.
"""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path

from PIL import Image

from .errors import InvalidArgumentError
from .text import shown_path
from .validate import OutputError

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
# The largest width and height each format can store, in pixels (PNG's is 2^31 - 1: no picture igcli draws).
SIDE_LIMITS = {"PNG": 2**31 - 1, "JPEG": 65500, "WEBP": 16383}
FORMAT_NAMES = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WebP"}


def picture_format(option: str, path: Path) -> str:
    """Pillow's format name for ``path``'s suffix; InvalidArgumentError (exit 2) for one igcli does not write."""
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise InvalidArgumentError(f"{option} {shown_path(path)}: name the file .png (or .jpg, .webp)") from None


def check_destination(option: str, path: Path) -> None:
    """That a new file can be made at ``path``, or OutputError (exit 6) saying in one line what is in the way:
    a folder under that name, a file where a parent folder should be, a name longer than the file system
    allows, a parent folder that cannot be written. (Making the file can still fail, e.g. under /proc:
    :class:`PendingFile` is the final check.)"""
    shown = shown_path(path)
    missing, parent = [path.name], path.parent
    while not _exists(parent) and parent != parent.parent:  # up to the nearest entry that exists
        missing.append(parent.name)
        parent = parent.parent
    longest = _name_max(parent)
    for name in missing:
        if len(os.fsencode(name)) > longest:
            raise OutputError(f"{option} {shown[:60]}...: a name of {len(os.fsencode(name))} bytes, longer than the "
                              f"{longest} the file system allows; choose a shorter name")
    if not parent.is_dir():
        raise OutputError(f"{option} {shown}: {shown_path(parent)} is a file, not a folder; choose another place")
    if path.is_dir():
        raise OutputError(f"{option} {shown}: is a folder; name a file in it, e.g. {shown_path(path / 'sheet.png')}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {shown}: folder {shown_path(parent)} is not writable; choose another place")


def _exists(path: Path) -> bool:
    try:
        path.stat()
        return True
    except OSError:  # missing, or a name too long to look up
        return False


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


class PendingFile:
    """A picture file to be written at ``path`` later: its folder made and a hidden temporary file created next
    to it now (so that a place where no file can be made is refused before any drawing), renamed over ``path``
    by :meth:`save`. Use as a context manager: leaving it without :meth:`save` removes the temporary file."""

    def __init__(self, option: str, path: Path) -> None:
        self.option, self.path = option, Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            while True:
                self.temporary = self.path.parent / f".igcli-{secrets.token_hex(6)}.tmp"
                try:
                    # Mode 0o666 less the umask, as for any new file (tempfile's would be 0o600).
                    os.close(os.open(self.temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
                    break
                except FileExistsError:
                    continue
        except OSError as error:
            where = shown_path(self.path.parent)
            raise OutputError(f"{option} {shown_path(self.path)}: cannot create a file in {where} "
                              f"({error.strerror or error}); choose another place") from None

    def save(self, picture: Image.Image, format_name: str) -> Path:
        """Write ``picture`` in ``format_name`` to the temporary file, then rename it to ``path``."""
        try:
            picture.save(self.temporary, format=format_name, **({"quality": 90} if format_name == "JPEG" else {}))
            os.replace(self.temporary, self.path)
        except OSError as error:
            raise self._failure(error) from None
        finally:
            self.discard()
        return self.path

    def discard(self) -> None:
        """Remove the temporary file (nothing once saved)."""
        try:
            os.unlink(self.temporary)
        except FileNotFoundError:
            pass

    def __enter__(self) -> PendingFile:
        return self

    def __exit__(self, *exc_info) -> None:
        self.discard()

    def _failure(self, error: OSError) -> OutputError:
        reason = error.strerror or str(error)
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            reason += "; free some space"
        return OutputError(f"{self.option} {shown_path(self.path)}: cannot write the file ({reason}); choose "
                           "another place")


def save_picture(picture: Image.Image, path: Path, option: str = "-o") -> Path:
    """Write ``picture`` at ``path`` in the format of its suffix, replacing the file in one step."""
    with PendingFile(option, path) as pending:
        return pending.save(picture, picture_format(option, path))
