"""Progress display, kept apart from the work it reports on (as pip does).

On a terminal: a rich progress bar with rate and ETA. When output is piped (a CI
log): a plain line every ``interval`` seconds. With ``-q``: nothing.
The engine only calls ``advance()``/``log()``; it never knows which one it got.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Reporter:
    """Reports progress of one loop of ``total`` steps.

    Use as a context manager::

        with Reporter("propose", total=len(images), verbosity=1) as report:
            for image in images:
                ...
                report.advance(extra="12.3 img/s")
    """

    def __init__(
        self,
        description: str,
        total: int | None,
        verbosity: int = 1,
        unit: str = "img",
        stream: TextIO | None = None,
        interval: float = 10.0,
    ) -> None:
        self.description = description
        self.total = total
        self.verbosity = verbosity
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.done = 0
        self._start = 0.0
        self._last_line = 0.0
        self._progress: Progress | None = None
        self._task: int | None = None
        self._extra = ""

    @property
    def mode(self) -> str:
        if self.verbosity <= 0:
            return "none"
        return "bar" if self.stream.isatty() else "lines"

    def __enter__(self) -> Reporter:
        self._start = self._last_line = time.perf_counter()
        if self.mode == "bar":
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[extra]}"),
                console=Console(file=self.stream),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=self.total, rate="", extra="")
        return self

    def rate(self) -> float:
        elapsed = time.perf_counter() - self._start
        return self.done / elapsed if elapsed > 0 else 0.0

    def advance(self, n: int = 1, extra: str = "") -> None:
        self.done += n
        self._extra = extra
        if self.mode == "bar" and self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=n, rate=f"{self.rate():.2f} {self.unit}/s", extra=extra)
        elif self.mode == "lines":
            now = time.perf_counter()
            if now - self._last_line >= self.interval or (self.total is not None and self.done >= self.total):
                self._last_line = now
                self._line()

    def _line(self) -> None:
        total = f"/{self.total}" if self.total is not None else ""
        extra = f"  {self._extra}" if self._extra else ""
        print(
            f"{self.description}: {self.done}{total} {self.unit}  {self.rate():.2f} {self.unit}/s{extra}",
            file=self.stream,
            flush=True,
        )

    def set_total(self, total: int | None) -> None:
        """The loop turned out longer or shorter than announced (``rcnn train --budget``)."""
        self.total = total
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, total=total)

    def log(self, message: str) -> None:
        """A message that should not disturb the bar (e.g. a skipped bad image)."""
        if self.verbosity <= 0:
            return
        if self._progress is not None:
            self._progress.console.print(message, markup=False, highlight=False)
        else:
            print(message, file=self.stream, flush=True)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
