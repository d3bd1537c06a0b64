"""The one pipeline every job runs on: open (discover the inputs, take this part, load the model), stream the
batches through the job's step with progress, close (write what was computed), finish, summarise.

A job is a :class:`Job` subclass that implements the stages; :func:`run_job` drives them the same way for
``attribute`` and ``split`` (:mod:`igcli.jobs.sharded`), ``calibrate`` and ``evaluate``: one progress bar, one
place where signals are delivered between batches, one rule for what an interrupt keeps.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Callable, Iterator, TextIO

from ..progress import Reporter, make_reporter
from ..signals import note_received, raise_if_received

EXIT_SKIPPED = 5
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports an interrupted command


class Job:
    """A job's stages. ``label`` names it on the progress line. ``keeps_partial_work``: on an interrupt
    (KeyboardInterrupt: SIGINT, or SIGTERM turned into it by the CLI) the job stops after the batch in hand,
    :meth:`close` saves what was computed and the summary says it was interrupted; otherwise the interrupt
    propagates after :meth:`close` and :meth:`release`."""

    label = "igcli"
    keeps_partial_work = False
    reporter: Reporter

    def open(self) -> int:
        """Discover the inputs, take this part, load the model; return how many images the progress counts."""
        raise NotImplementedError

    def notes(self) -> list[str]:
        """Lines to say once the progress line is up (what opening repaired, say)."""
        return []

    def batches(self) -> Iterator[Any]:
        """The batches, streamed; closed early on an interrupt (a generator's ``close``)."""
        raise NotImplementedError

    def step(self, batch: Any) -> tuple[int, int]:
        """Do one batch; return (images done, images skipped) for the progress line."""
        raise NotImplementedError

    def close(self) -> None:
        """After the last batch, also after an interrupt or an error: complete what was computed. A job that
        keeps partial work completes it even when the first signal arrives meanwhile (see :func:`delivered`)."""

    def warnings(self) -> list[str]:
        """Warnings about the whole run, said once at its end."""
        return []

    def finish(self) -> None:
        """After the progress line: what needs every batch done (an index over the shards)."""

    def release(self) -> None:
        """Always, last: give back what :meth:`open` took (a folder lock)."""

    def summary(self, interrupted: bool, seconds: float, loop_seconds: float) -> Any:
        """What the job did; ``seconds``: the whole run, ``loop_seconds``: streaming the batches."""
        raise NotImplementedError


def delivered(stage: Callable[[], Any]) -> bool:
    """Run ``stage`` (one that defers signals while it writes); True if the first signal arrived meanwhile,
    which is then delivered (a later run in this process goes on), False otherwise."""
    try:
        stage()
    except KeyboardInterrupt:
        note_received(None)
        return True
    return False


def run_job(job: Job, *, quiet: bool = False, progress_stream: TextIO | None = None) -> Any:
    """Run ``job``'s stages and return its summary (see :class:`Job` for what an interrupt keeps)."""
    started = time.perf_counter()
    interrupted = False
    try:
        total = job.open()
        loop_started = time.perf_counter()
        try:  # an interrupt from the first batch until the progress line is closed: the same rule
            with make_reporter(total, job.label, quiet=quiet, stream=progress_stream) as reporter:
                job.reporter = reporter
                for note in job.notes():
                    reporter.message(note)
                try:
                    with contextlib.closing(job.batches()) as batches:
                        for batch in batches:
                            reporter.advance(*job.step(batch))
                            raise_if_received()
                except KeyboardInterrupt:
                    interrupted = _stopped(job)  # the run's warnings are still said, on what was done
                finally:
                    job.close()
                for line in job.warnings():
                    reporter.message(line)
        except KeyboardInterrupt:  # after the loop: while the warnings are said or the progress line closes
            interrupted = _stopped(job)
        loop_seconds = time.perf_counter() - loop_started
        job.finish()
    finally:
        job.release()
    return job.summary(interrupted, time.perf_counter() - started, loop_seconds)


def _stopped(job: Job) -> bool:
    """Called while an interrupt is handled: re-raise it as it came (SIGTERM's exit status is in it) unless
    ``job`` keeps partial work; else deliver it (a later run in this process goes on) and say so."""
    if not job.keeps_partial_work:
        raise  # noqa: PLE0704 (the interrupt being handled by the caller)
    note_received(None)
    return True
