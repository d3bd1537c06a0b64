"""Reading a small data file an option names (``--labels``, ``--boxes``, ``--baseline``), safely and torch-free.

Such a file is read whole, so it must be a regular file of sensible size: ``/dev/zero`` would fill the memory,
a FIFO would block for ever (a plain ``open`` waits for a writer), and a huge file named by mistake would take
minutes. Each is one line naming the option and the file instead.
"""

from __future__ import annotations

import errno
import os
import stat

from .errors import InvalidArgumentError

MiB = 1 << 20


def read_regular_file(option: str, path: str, max_bytes: int) -> bytes:
    """The bytes of ``path``; InvalidArgumentError when it is missing or unreadable, not a regular file (a
    folder, FIFO, device or socket) or larger than ``max_bytes``.

    The checks are on the opened file (fstat), so nothing can be swapped in between; the open does not block
    (opening a FIFO to read otherwise waits for a writer).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        reason = "not a regular file" if error.errno == errno.ENXIO else error.strerror
        raise InvalidArgumentError(f"{option} {path}: {reason}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InvalidArgumentError(f"{option} {path}: is a folder, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise InvalidArgumentError(f"{option} {path}: not a regular file (a FIFO, device or socket); give a "
                                       "file")
        if info.st_size > max_bytes:
            raise InvalidArgumentError(f"{option} {path}: {info.st_size / MiB:.1f} MiB, more than igcli reads for "
                                       f"it ({max_bytes / MiB:g} MiB); is it the right file?")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb") as handle:
            fd = -1  # the file object closes it
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise InvalidArgumentError(f"{option} {path}: {error.strerror or error}") from None
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > max_bytes:  # grew since fstat
        raise InvalidArgumentError(f"{option} {path}: more than {max_bytes / MiB:g} MiB; is it the right file?")
    return data
