"""Signals at every write step: visible shards stay whole and ``--resume`` gives each image exactly once."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import h5py
import numpy as np
import pytest
import typer

from cli_helpers import TINY, TINY_ARGS, make_images, one_line, run_cli
from igcli.cli.common import INTERRUPTED, _raise_keyboard_interrupt, _Signals, handle_errors, print_json
from igcli.jobs import AttributeJob, run_attribute
from igcli.signals import deferred, note_received
from igcli.store import list_shards
from igcli.validate import check_shard


def test_a_signal_inside_a_deferred_block_arrives_once_after_it():
    events = []
    with pytest.raises(KeyboardInterrupt):
        with deferred():
            os.kill(os.getpid(), signal.SIGINT)
            events.append("after kill")
            with deferred():  # nested: still deferred
                os.kill(os.getpid(), signal.SIGINT)
                events.append("nested")
            events.append("end of block")
    assert events == ["after kill", "nested", "end of block"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_deferred_sigterm_goes_to_the_handler_that_was_installed():
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        with deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            assert seen == []
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def _job(images: Path, out: Path, resume: bool = False) -> AttributeJob:
    return AttributeJob(inputs=[str(images)], out=out, model=TINY, preprocessing={"resize": 16, "crop": 16},
                        method="ig", steps=4, batch_size=2, workers=0, device="cpu", shard_size=3, resume=resume)


class WriteSteps:
    """Counts the file-system and HDF5 steps a run takes; sends ``signum`` to this process after step ``at``."""

    TARGETS = [(h5py.Dataset, "__setitem__"), (h5py.Dataset, "resize"), (h5py.AttributeManager, "__setitem__"),
               (h5py.File, "__init__"), (h5py.File, "close"), (os, "replace"), (os, "fsync")]

    def __init__(self, monkeypatch, at: int | None = None, signum: int = signal.SIGTERM) -> None:
        self.count, self.at, self.signum = 0, at, signum
        for owner, name in self.TARGETS:
            monkeypatch.setattr(owner, name, self._wrap(getattr(owner, name)))

    def _wrap(self, function):
        def wrapped(*args, **kwargs):
            result = function(*args, **kwargs)
            self.count += 1
            if self.count == self.at:
                os.kill(os.getpid(), self.signum)  # handled right after this step returns
            return result

        return wrapped


def _stored(out: Path) -> dict[str, np.ndarray]:
    """path -> map over the visible shards, each checked against the contract; a path twice fails."""
    found = {}
    for shard in list_shards(out):
        info = check_shard(shard)
        with h5py.File(shard, "r") as handle:
            for name, dataset in handle.items():
                if isinstance(dataset, h5py.Dataset):
                    assert dataset.shape[0] == info.rows, (shard, name)
            for i, path in enumerate(handle["paths"][:] if "paths" in handle else []):
                assert path.decode() not in found, f"{path} twice"
                found[path.decode()] = handle["attributions"][i]
    return found


def test_sigterm_or_sigint_at_every_write_step_loses_nothing(tmp_path, monkeypatch):
    images = tmp_path / "imgs"
    make_images(images, 7)
    previous = {signum: signal.signal(signum, _raise_keyboard_interrupt)  # as the CLI installs them
                for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        with monkeypatch.context() as patch:
            counter = WriteSteps(patch)
            run_attribute(_job(images, tmp_path / "clean"), quiet=True)
        clean = _stored(tmp_path / "clean")
        assert len(clean) == 7 and counter.count > 20
        points = sorted(set(range(1, counter.count + 1, max(1, counter.count // 24))) | {counter.count})
        for number, at in enumerate(points):
            out = tmp_path / f"run{at}"
            signum = signal.SIGINT if number % 2 else signal.SIGTERM
            _Signals.received = None  # as the CLI does at the start of each command
            note_received(None)
            with monkeypatch.context() as patch:
                WriteSteps(patch, at, signum)
                try:
                    summary = run_attribute(_job(images, out), quiet=True)
                    assert summary.interrupted or at > counter.count - 12, at  # late: index writing
                except KeyboardInterrupt:  # outside the image loop (index): the shards are complete
                    pass
            partial = _stored(out)  # every visible shard whole
            assert set(partial) <= set(clean)
            run_attribute(_job(images, out, resume=True), quiet=True)
            resumed = _stored(out)
            assert sorted(resumed) == sorted(clean), at
            for path, values in resumed.items():
                np.testing.assert_array_equal(values, clean[path])
    finally:
        _Signals.received = None
        note_received(None)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_handled_inside_a_string_exec_still_exits_128_plus_it(tmp_path, signum):
    """CPython marks a bare KeyboardInterrupt leaving a string exec() as unhandled and then ends
    ``python -m igcli`` by SIGINT, whatever exit code igcli chose: 143 became 130 (-2 here)."""
    make_images(tmp_path / "imgs", 1)
    result = run_cli("attribute", str(tmp_path / "imgs"), "-o", str(tmp_path / "out"), *TINY_ARGS, "--model",
                     TINY.replace(":tiny", ":signal_while_exec"), "--steps", "2", "--workers", "0", "--quiet",
                     env={"IGCLI_TEST_SIGNAL": str(int(signum))})
    assert result.returncode == 128 + signum, result.stderr
    assert one_line(result.stderr) == f"igcli: error: {INTERRUPTED}"


def test_a_signal_after_the_summary_changes_nothing(capsys):
    """Once the summary is printed (``--json``), SIGTERM and SIGINT are ignored: the process ends with the code
    the summary states, not 143 with a summary saying 0."""
    ran = []

    @handle_errors
    def command() -> int:
        print_json({"exit_code": 0})
        for signum in (signal.SIGTERM, signal.SIGINT):
            os.kill(os.getpid(), signum)
            for _ in range(1000):  # Python runs the handler between these bytecodes
                pass
        ran.append("to the end")
        return 0

    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert command() == 0 and ran == ["to the end"]
        assert json.loads(capsys.readouterr().out) == {"exit_code": 0}
        # and until the process exits, so the interpreter's shutdown is not cut short either
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def test_a_signal_before_the_summary_still_interrupts():
    @handle_errors
    def command() -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):
            pass
        print_json({"exit_code": 0})
        return 0

    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        with pytest.raises(typer.Exit) as stopped:
            command()
        assert stopped.value.exit_code == 143
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def test_a_signal_whose_exception_was_lost_still_stops_the_run_after_the_batch(tmp_path):
    """Python drops an exception raised in a weakref callback or __del__; the handler's record of the signal
    stops the run at the next batch instead, with the work so far saved."""
    make_images(tmp_path / "imgs", 4)
    job = AttributeJob(inputs=[str(tmp_path / "imgs")], out=tmp_path / "out", model=TINY, steps=2, batch_size=1,
                       preprocessing={"resize": 16, "crop": 16}, device="cpu", workers=0)
    note_received(signal.SIGTERM)  # as if the handler ran and its Interrupted was swallowed
    try:
        summary = run_attribute(job, quiet=True)
    finally:
        note_received(None)
    assert summary.interrupted and summary.attributed == 1
    assert sum(check_shard(shard).rows for shard in list_shards(tmp_path / "out")) == 1  # the batch is kept


@pytest.mark.parametrize("where", ["closing the last shard", "the run's warnings", "indexing"])
def test_a_first_signal_after_the_image_loop_still_gives_a_summary(tmp_path, monkeypatch, where):
    """The signal waits for the shard or the index to be written (deferred), then arrives: the run reports
    itself interrupted, with everything saved, instead of ending without a summary (no --json output)."""
    import igcli.jobs.sharded as runner
    from igcli.signals import Interrupted

    make_images(tmp_path / "imgs", 2)
    if where == "indexing":
        real = runner.build_index

        def build_index_then_signal(out):
            real(out)
            raise Interrupted(signal.SIGTERM)

        monkeypatch.setattr(runner, "build_index", build_index_then_signal)
    elif where == "the run's warnings":  # after the last shard is closed, before the progress line is
        def warnings_then_signal(self):
            raise Interrupted(signal.SIGTERM)

        monkeypatch.setattr(runner.ShardedJob, "warnings", warnings_then_signal)
    else:
        real_close = runner.ShardWriter.close

        def close_then_signal(self):
            real_close(self)
            raise Interrupted(signal.SIGTERM)

        monkeypatch.setattr(runner.ShardWriter, "close", close_then_signal)
    summary = run_attribute(AttributeJob(inputs=[str(tmp_path / "imgs")], out=tmp_path / "out", model=TINY, steps=2,
                                         preprocessing={"resize": 16, "crop": 16}, device="cpu", workers=0),
                            quiet=True)
    assert summary.interrupted and summary.attributed == 2 and summary.index is not None
    assert sum(check_shard(shard).rows for shard in list_shards(tmp_path / "out")) == 2
