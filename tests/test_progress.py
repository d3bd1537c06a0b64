"""Progress goes where it can be read: a Rich bar on a terminal, plain lines in logs, nothing when quiet."""

from __future__ import annotations

import io

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
