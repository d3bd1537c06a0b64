"""Folder locks: flock where the file system has it, exclusive creation where it does not."""

from __future__ import annotations

import errno
import fcntl
import json
import socket
import subprocess
import sys

import pytest

from igcli.locking import FolderLock
from igcli.validate import OutputError


def test_a_part_is_held_once_and_parts_of_one_job_side_by_side(tmp_path):
    with FolderLock(tmp_path, 0, 2, "first"):
        with pytest.raises(OutputError, match=r"part 0/2, started .*: first\) is writing part 0/2 here"):
            FolderLock(tmp_path, 0, 2, "second").acquire()
        with FolderLock(tmp_path, 1, 2, "other part"):
            pass
        with pytest.raises(OutputError, match="splits the inputs into 2 parts, this run into 3"):
            FolderLock(tmp_path, 1, 3).acquire()
    assert list(tmp_path.iterdir()) == []  # released: the lock files are gone
    with FolderLock(tmp_path, 0, 2):  # and the part can be taken again
        pass


def test_without_flock_an_exclusively_created_file_holds_the_part(tmp_path, monkeypatch):
    def no_flock(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    held = tmp_path / ".igcli-part-00000.held"
    with FolderLock(tmp_path, 0, 1, "first"):
        assert json.loads(held.read_text())["command"] == "first"
        with pytest.raises(OutputError, match=f"first.*if no such run is alive, delete {held}"):
            FolderLock(tmp_path, 0, 1, "second").acquire()
    assert not held.exists()
    # A holder killed by SIGKILL on this host left its file: a later run takes it over.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    held.write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(), "part": "0/1"}))
    with FolderLock(tmp_path, 0, 1, "after a crash"):
        assert json.loads(held.read_text())["command"] == "after a crash"
    # One from another host is never taken over: its run may be alive there.
    held.write_text(json.dumps({"pid": 1, "host": "elsewhere", "part": "0/1", "command": "remote"}))
    with pytest.raises(OutputError, match="on elsewhere.*remote.*delete"):
        FolderLock(tmp_path, 0, 1).acquire()
