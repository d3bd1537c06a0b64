"""Progress on stderr: a Rich bar on a terminal, plain periodic lines in batch logs, nothing when quiet."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Reporter:
    """Silent reporter; the base of the others. ``advance`` counts inputs done (attributed or skipped);
    ``partial`` the fraction of the batch in flight, in images, so progress shows before a batch ends."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label, self.done, self.skipped = total, label, 0, 0
        self.in_flight = 0.0  # images of the current batch done so far (fractional)
        self.started = time.perf_counter()

    def __enter__(self) -> "Reporter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.finish()

    def advance(self, images: int, skipped: int = 0) -> None:
        self.done += images + skipped
        self.skipped += skipped
        self.in_flight = 0.0

    def partial(self, images: float) -> None:
        """``images`` (fractional) of the batch being attributed are done; :meth:`advance` then closes it."""
        self.in_flight = images

    def message(self, text: str) -> None:
        """A line that must be seen (a skipped input), even with --quiet."""
        print(text, file=sys.stderr, flush=True)

    def finish(self) -> None:
        pass

    @property
    def rate(self) -> float:
        elapsed = time.perf_counter() - self.started
        return (self.done - self.skipped + self.in_flight) / elapsed if elapsed > 0 else 0.0


class PlainReporter(Reporter):
    """A line every ``interval`` seconds and at the end: for SLURM logs and pipes, no control characters."""

    def __init__(self, total: int, label: str, stream: TextIO, interval: float = 30.0) -> None:
        super().__init__(total, label)
        self.stream, self.interval, self.last = stream, interval, self.started
        self.reported = -1  # inputs done at the last line, so the closing line is not a repeat

    def _line(self) -> None:
        self.reported = self.done
        elapsed = time.perf_counter() - self.started
        rate = self.rate
        eta = (self.total - self.done - self.in_flight) / rate if rate > 0 else float("nan")
        percent = 100.0 * (self.done + self.in_flight) / self.total if self.total else 100.0
        eta_text = _duration(eta) if eta == eta else "?"
        print(
            f"{self.label}: {self.done}/{self.total} inputs ({percent:.1f}%), {rate:.2f} images/s, "
            f"elapsed {_duration(elapsed)}, ETA {eta_text}, {self.skipped} skipped",
            file=self.stream,
            flush=True,
        )

    def advance(self, images: int, skipped: int = 0) -> None:
        super().advance(images, skipped)
        self._maybe_line()

    def partial(self, images: float) -> None:
        super().partial(images)
        self._maybe_line()

    def _maybe_line(self) -> None:
        now = time.perf_counter()
        if now - self.last >= self.interval:
            self.last = now
            self._line()

    def message(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def finish(self) -> None:
        if self.reported != self.done:
            self._line()


class RichReporter(Reporter):
    """A live Rich progress bar with images/s and ETA."""

    def __init__(self, total: int, label: str, stream: TextIO) -> None:
        super().__init__(total, label)
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.console = Console(file=stream)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:.2f} images/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.task = self.progress.add_task(label, total=total, rate=0.0)
        self.progress.start()

    def advance(self, images: int, skipped: int = 0) -> None:
        super().advance(images, skipped)
        self.progress.update(self.task, completed=self.done, rate=self.rate)

    def partial(self, images: float) -> None:
        super().partial(images)  # the bar and its ETA move within a batch; M/N counts whole images only
        self.progress.update(self.task, completed=self.done + self.in_flight, rate=self.rate)

    def message(self, text: str) -> None:
        self.progress.console.print(text, markup=False, highlight=False)

    def finish(self) -> None:
        self.progress.stop()


def make_reporter(total: int, label: str, *, quiet: bool = False, stream: TextIO | None = None,
                  interval: float = 30.0) -> Reporter:
    """The reporter for where stderr goes: Rich on a TTY, plain lines otherwise, silent with ``quiet``."""
    stream = stream or sys.stderr
    if quiet:
        return Reporter(total, label)
    if stream.isatty():
        return RichReporter(total, label, stream)
    return PlainReporter(total, label, stream, interval)
