"""File names as text and bytes: lossless for names that are not valid UTF-8, per-image seeds from them, and
option values from the command line's text.

POSIX file names are bytes; Python gives undecodable bytes back as surrogate escapes (``os.fsdecode``). igcli
stores and hashes the original bytes, so such a name round-trips exactly and seeds the same noise everywhere.
"""

from __future__ import annotations

import os
import zlib
from typing import Any


def encode_text(text: str) -> bytes:
    """``text`` as stored: UTF-8, with undecodable file-name bytes (surrogate escapes) restored as they were."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # lone surrogates that no file name produces
        return text.encode("utf-8", "backslashreplace")


def decode_text(value: bytes | str) -> str:
    """Inverse of :func:`encode_text` (``os.fsdecode`` on POSIX): every stored name round-trips exactly."""
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def path_seed(seed: int, path: str, salt: int = 0) -> int:
    """A per-image seed from the run's ``seed`` and the image's path, so random baselines and noise never
    depend on batching, sharding or resuming."""
    return (seed << 32) ^ zlib.crc32(encode_text(path)) ^ salt


def torch_seed(value: int) -> int:
    """``value`` (a :func:`path_seed`) folded into the 32 bits a torch CPU generator keeps: its Mersenne Twister
    is seeded with the low 32 bits only, so ``--seed``, in the high bits of a path seed, would change nothing.
    Folding keeps every draw of seed 0 as it was."""
    value = int(value)
    return (value ^ (value >> 32)) & 0xFFFFFFFF


def absolute_path(path: str, cwd: str) -> str:
    """``path`` as an absolute path, relative ones taken from ``cwd`` (the folder the run was started in).

    ``.`` and doubled separators are dropped, but ``..`` is kept when the path has it: after a link to a
    folder, ``link/..`` is where the link points, not the folder holding the link, so removing it by text
    (as ``os.path.abspath`` does) could name another file.
    """
    joined = os.path.join(cwd, path)
    if ".." in joined.split(os.sep):
        return joined
    return os.path.normpath(joined)


def shown_path(path: str | os.PathLike) -> str:
    """``path`` for a one-line message: as it is, except what would break or fake the line. Newlines, tabs
    and other control characters, Unicode format characters (bidi overrides that reverse the rest of the line,
    zero-width ones) and line separators are escaped as ``repr`` escapes them (``\\n``, ``\\x1b``,
    ``\\u202e``); an undecodable file-name byte (a surrogate escape, see :func:`decode_text`) is shown as the
    byte, ``\\xe9``. Bytes are decoded as ``os.fsdecode`` does."""
    text = os.fsdecode(path) if isinstance(path, bytes) else os.fspath(path)
    if text.isprintable():
        return text
    return "".join(_shown_char(char) for char in text)


def _shown_char(char: str) -> str:
    if char.isprintable() or char == " ":
        return char
    if "\udc80" <= char <= "\udcff":  # os.fsdecode's stand-in for the byte 0x80-0xff
        return f"\\x{ord(char) - 0xDC00:02x}"
    return repr(char)[1:-1]


def draw_key(path: str, abs_path: str | None, input_root: str | None) -> str:
    """The key that seeds an input image's draws in a run: its path below the folder that held the run's
    inputs (``input_root``), so ``imgs/a.jpg``, ``./imgs/a.jpg`` and its absolute path give the same draws, and
    so does the tree moved elsewhere (``--root``); the absolute path for an image outside that folder, the path
    as given where neither is known."""
    if abs_path and input_root:
        inside = os.path.relpath(abs_path, input_root)
        if inside != os.pardir and not inside.startswith(os.pardir + os.sep):
            return inside.replace(os.sep, "/")
        return abs_path
    return abs_path or path


def coerce(value: Any, kind: type) -> Any:
    """``value`` (text from the command line included) as ``kind``; ValueError when it is not one. ``bool``
    takes true/false/1/0/yes/no (``bool("false")`` would be True); ``int`` refuses booleans and fractions."""
    if kind is bool and isinstance(value, str):
        if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(value)
        return value.lower() in ("true", "1", "yes")
    if kind is int and (isinstance(value, bool) or (isinstance(value, float) and not value.is_integer())):
        raise ValueError(value)
    try:
        return kind(value)
    except TypeError:
        raise ValueError(value) from None
