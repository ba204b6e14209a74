from __future__ import annotations

import io

from rcnn_cli.progress import Reporter


def test_piped_output_gets_plain_lines() -> None:
    stream = io.StringIO()
    with Reporter("propose", total=3, stream=stream, interval=0.0) as report:
        for _ in range(3):
            report.advance()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[-1].startswith("propose: 3/3 img")


def test_quiet_prints_nothing() -> None:
    stream = io.StringIO()
    with Reporter("propose", total=3, verbosity=0, stream=stream, interval=0.0) as report:
        report.advance(3)
        report.log("skipped bad.jpg")
    assert stream.getvalue() == ""
