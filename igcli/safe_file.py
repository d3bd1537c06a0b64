"""A file that HDF5 writes through and that never shows HDF5 a write error.

When a disk fills (or a quota is hit) under the HDF5 library, its metadata cache stays dirty, closing the file
fails, and at interpreter exit HDF5 tries again and crashes the process (seen: exit 139 and pages of
tracebacks). igcli therefore gives h5py this object (h5py's ``fileobj`` driver) instead of a path: the first
failed write is recorded in :attr:`error` and every later write is accepted and dropped, so HDF5 finishes
and closes normally, and the caller, which checks :attr:`error` after each step, discards the file and says
why in one line. Reads of what was never written come back as zeros.
"""

from __future__ import annotations

import os


class WriteGuardedFile:
    """A new read/write binary file at ``path`` for ``h5py.File(WriteGuardedFile(p), "w", ...)``; an entry
    already there (a stale partial, or a symlink planted to make igcli overwrite something) is removed first.

    Attributes:
        error: the first OSError a write, truncate or fsync met, or None.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        # A new file, never through a link: whatever was planted under this name is replaced, not written into.
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        self.position = 0
        self.error: OSError | None = None

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        if self.error is None:
            done = 0
            try:
                while done < len(view):
                    done += os.pwrite(self.fd, view[done:], self.position + done)
            except OSError as error:
                self.error = error
        self.position += len(view)
        return len(view)

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        data = os.pread(self.fd, len(view), self.position)
        if self.error is not None and len(data) < len(view):  # dropped writes: zeros, as in a sparse file
            data = data + bytes(len(view) - len(data))
        view[: len(data)] = data
        self.position += len(data)
        return len(data)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = max(0, os.fstat(self.fd).st_size - self.position)
        buffer = bytearray(size)
        return bytes(buffer[: self.readinto(buffer)])

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.position, os.SEEK_END: os.fstat(self.fd).st_size}[whence]
        self.position = base + offset
        return self.position

    def tell(self) -> int:
        return self.position

    def truncate(self, size: int | None = None) -> int:
        size = self.position if size is None else size
        if self.error is None:
            try:
                os.ftruncate(self.fd, size)
            except OSError as error:
                self.error = error
        return size

    def flush(self) -> None:
        """Writes go straight to the file (no buffer); :meth:`sync` makes them durable."""

    def sync(self) -> None:
        """fsync, recording a failure (delayed write errors of NFS and Lustre surface here) in :attr:`error`."""
        if self.error is None:
            try:
                os.fsync(self.fd)
            except OSError as error:
                self.error = error

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
