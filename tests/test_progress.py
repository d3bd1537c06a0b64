"""Progress goes where it can be read: a Rich bar on a terminal, plain lines in logs, nothing when quiet."""

from __future__ import annotations

import io

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from igcli.progress import PlainReporter, Reporter, RichReporter, make_reporter


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_reporter_fits_the_stream():
    assert type(make_reporter(3, "x", quiet=True, stream=FakeTerminal())) is Reporter
    assert isinstance(make_reporter(3, "x", stream=io.StringIO()), PlainReporter)
    terminal = make_reporter(3, "x", stream=FakeTerminal())
    assert isinstance(terminal, RichReporter)
    terminal.finish()


def test_plain_lines_report_counts_rate_and_skips():
    stream = io.StringIO()
    with PlainReporter(4, "igcli attribute", stream, interval=0.0) as reporter:
        reporter.advance(2)
        reporter.message("skipped a.jpg: empty")
        reporter.advance(1, skipped=1)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("igcli attribute: 2/4 inputs (50.0%)")
    assert lines[1] == "skipped a.jpg: empty"
    assert lines[-1].startswith("igcli attribute: 4/4 inputs (100.0%)") and lines[-1].endswith("1 skipped")
    assert "images/s" in lines[-1] and "ETA" in lines[-1]


def test_in_flight_images_move_the_rate_the_percentage_and_the_bar():
    stream = io.StringIO()
    reporter = PlainReporter(4, "igcli attribute", stream, interval=0.0)
    reporter.partial(1.5)  # one and a half images of the first batch done
    assert reporter.rate > 0
    assert stream.getvalue().startswith("igcli attribute: 0/4 inputs (37.5%)")
    reporter.advance(2)
    assert reporter.in_flight == 0 and reporter.done == 2
    terminal = make_reporter(4, "x", stream=FakeTerminal())
    terminal.partial(0.5)
    assert terminal.progress.tasks[0].completed == 0.5
    terminal.finish()


def test_the_library_reports_progress_per_chunk_of_rows():
    import igcli
    from igcli.models import load_model
    from cli_helpers import TINY

    model = load_model(TINY).module
    images = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    seen: list[float] = []
    igcli.attribute(model, images, steps=4, batch_size=5, progress=seen.append, check_completeness=False)
    assert seen == [5 / 12, 10 / 12, 1.0]  # 3 images x 4 points in chunks of 5 rows
    seen.clear()
    igcli.attribute(model, images, method="vg", batch_size=2, progress=seen.append)
    assert seen == [2 / 3, 1.0]
    seen.clear()
    igcli.attribute(model, images, method="gig", steps=2, batch_size=2, progress=seen.append, check_completeness=False)
    assert seen == sorted(seen) and len(seen) > 2 and seen[-1] == 1.0


class SyncCounter(TorchDispatchMode):
    """Counts the operations that make the host read a tensor's value (a wait for the device on a GPU)."""

    READS = {"_local_scalar_dense", "is_nonzero", "item"}

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.__name__.split(".")[0] in self.READS:
            self.reads += 1
        return func(*args, **(kwargs or {}))


def test_progress_adds_no_host_reads():
    import igcli
    from igcli.models import load_model
    from cli_helpers import TINY

    model = load_model(TINY).module
    images = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    counts = []
    for progress in (None, lambda fraction: None):
        with SyncCounter() as counter:
            igcli.attribute(model, images, steps=8, batch_size=2, progress=progress, check_completeness=False)
        counts.append(counter.reads)
    assert counts[0] == counts[1] and counts[0] > 0


def test_the_bar_advances_within_a_batch(tmp_path, monkeypatch):
    from igcli.jobs import pipeline as runner  # where the progress line is made
    from igcli.jobs import AttributeJob, run_attribute
    from cli_helpers import TINY, make_images

    events: list[tuple[str, float]] = []

    class Recording(Reporter):
        def partial(self, images: float) -> None:
            super().partial(images)
            events.append(("partial", images))

        def advance(self, images: int, skipped: int = 0) -> None:
            super().advance(images, skipped)
            events.append(("advance", images))

        def message(self, text: str) -> None:
            pass

    monkeypatch.setattr(runner, "make_reporter", lambda total, label, **kwargs: Recording(total, label))
    make_images(tmp_path / "imgs", 3)
    job = AttributeJob(inputs=[str(tmp_path / "imgs")], out=tmp_path / "out", model=TINY, device="cpu",
                       preprocessing={"resize": 16, "crop": 16}, steps=4, batch_size=2, workers=0)
    run_attribute(job, quiet=True)
    # Batches of 2 and 1 images, 4 points each, 2 rows per chunk: half an image per chunk.
    assert events == [("partial", 0.5), ("partial", 1.0), ("partial", 1.5), ("partial", 2.0), ("advance", 2),
                      ("partial", 0.5), ("partial", 1.0), ("advance", 1)]
