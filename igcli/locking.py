"""One writer per part of an output folder: a lock file per part, so a second run is refused, not mixed in.

``OUT/.igcli-part-PPPPP.lock`` is locked with ``flock`` for as long as a run writes part PPPPP (and removed
when it ends); it says who holds it (pid, host, start time, command) for the refusal message. The kernel
drops the lock when the process dies, even by SIGKILL, so a file left behind then is no lock at all. Parts of one job (``--shard i/n``, torchrun
ranks) lock different files and write side by side; a part whose ``n`` differs from a running part's is
refused, since the two would split the inputs differently.

File systems without ``flock`` (Lustre mounted with ``noflock``, some NFS set-ups) answer ENOSYS/ENOLCK/
EOPNOTSUPP; igcli then falls back to creating ``.igcli-part-PPPPP.held`` exclusively (O_EXCL, atomic on NFSv3+
and Lustre) and removing it at the end. A run killed by SIGKILL leaves that file behind: on the same host a
holder that is no longer alive is taken over; from another host, the message names the file to delete.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import socket
import stat
import time
from pathlib import Path
from typing import Any

from .validate import OutputError

LOCK_PATTERN = re.compile(r"^\.igcli-part-(\d{5})\.lock$")
UNSUPPORTED = {errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)}


def _holder_text(part_label: str, command: str) -> str:
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "part": part_label,
                       "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": command})


def _open_regular(path: Path, flags: int = os.O_RDONLY) -> int | None:
    """A descriptor for ``path`` if it is a regular file (no symlink followed, a FIFO never waited on)."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    if stat.S_ISREG(os.fstat(fd).st_mode):
        return fd
    os.close(fd)
    return None


def _read_holder(path: Path) -> dict[str, Any]:
    fd = _open_regular(path)
    if fd is None:
        return {}
    try:
        holder = json.loads(os.pread(fd, 4096, 0).decode("utf-8", "replace") or "{}")
        return holder if isinstance(holder, dict) else {}
    except (OSError, ValueError):
        return {}
    finally:
        os.close(fd)


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "another igcli run"
    return (f"another igcli run (pid {holder.get('pid')} on {holder.get('host')}, part {holder.get('part')}, "
            f"started {holder.get('started')}: {str(holder.get('command'))[:120]})")


class FolderLock:
    """Holds part ``index`` of ``count`` of ``folder`` for this process; a context manager.

    Raises:
        OutputError (exit 6): another live run holds the part, or runs parts of another count.
    """

    def __init__(self, folder: Path, index: int, count: int, command: str = "", option: str = "-o") -> None:
        self.folder, self.index, self.count = Path(folder), index, count
        self.option = option  # how messages name the folder
        self.label = f"{index}/{count}"
        self.command = command or "igcli"
        self.path = self.folder / f".igcli-part-{index:05d}.lock"
        self._fd: int | None = None
        self._held_file: Path | None = None

    def __enter__(self) -> "FolderLock":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def acquire(self) -> None:
        while True:
            fd = self._open_lock_file()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                os.close(fd)
                if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise self._refusal(_read_holder(self.path)) from None
                if error.errno in UNSUPPORTED:
                    self._acquire_by_creation()
                    return
                raise OutputError(f"{self.option} {self.folder}: cannot lock {self.path.name} ({error.strerror})") from None
            if _same_file(fd, self.path):
                break
            os.close(fd)  # the holder removed the file as we opened it: lock the new one
        self._fd = fd
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, _holder_text(self.label, self.command).encode(), 0)
        except OSError as error:  # a full disk: nothing could be written here anyway
            self.release()
            raise OutputError(f"{self.option} {self.folder}: cannot write {self.path.name} ({error.strerror}); free space and "
                              "run again") from None
        self._check_other_parts()

    def _open_lock_file(self) -> int:
        """The lock file, created if need be; never through a symlink or onto a FIFO planted under its name."""
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as error:
            if error.errno != errno.ELOOP:
                raise OutputError(f"{self.option} {self.folder}: cannot open {self.path.name} ({error.strerror})") from None
            self.path.unlink()  # a symlink in igcli's own name: drop it rather than write where it points
            fd = os.open(self.path, flags, 0o644)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OutputError(f"{self.option} {self.folder}: {self.path.name} is not a regular file; remove it")
        return fd

    def _refusal(self, holder: dict[str, Any]) -> OutputError:
        return OutputError(f"{self.option} {self.folder}: {_describe(holder)} is writing part {self.label} here; wait for it to "
                           f"end{', or use another -o' if self.option == '-o' else ''}")

    def _acquire_by_creation(self) -> None:
        held = self.path.with_suffix(".held")
        for _ in range(2):
            try:
                fd = os.open(held, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = _read_holder(held)
                if holder.get("host") == socket.gethostname() and not _alive(holder.get("pid")):
                    held.unlink(missing_ok=True)  # its run died (SIGKILL) on this host: take over
                    continue
                error = self._refusal(holder)
                raise OutputError(f"{error}; if no such run is alive, delete {held}") from None
            with os.fdopen(fd, "w") as handle:
                handle.write(_holder_text(self.label, self.command))
            self._held_file = held
            return
        raise OutputError(f"{self.option} {self.folder}: cannot take {held.name}; delete it if no igcli run writes here")

    def _check_other_parts(self) -> None:
        """Refuse to run beside a live part of the same folder that splits the inputs into another count."""
        for name in os.listdir(self.folder):
            match = LOCK_PATTERN.match(name)
            if not match or int(match.group(1)) == self.index:
                continue
            other = self.folder / name
            fd = _open_regular(other)
            if fd is None:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                continue  # nobody holds it
            except OSError:
                holder = _read_holder(other)
            finally:
                os.close(fd)
            count = str(holder.get("part", "")).partition("/")[2]
            if count and count != str(self.count):
                self.release()
                raise OutputError(f"{self.option} {self.folder}: {_describe(holder)} splits the inputs into {count} parts, this "
                                  f"run into {self.count}; parts of one job must share n in --shard i/n")

    def release(self) -> None:
        """Give the part back and remove the lock file (while still holding it, so a run that opened it just
        before sees, once it gets the lock, that the file is gone and takes a new one)."""
        if self._fd is not None:
            try:
                self.path.unlink(missing_ok=True)
            except OSError:
                pass
            os.close(self._fd)
            self._fd = None
        if self._held_file is not None:
            self._held_file.unlink(missing_ok=True)
            self._held_file = None


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
