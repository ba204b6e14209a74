"""The one exception type the user sees.

Library code raises :class:`RcnnError` (or a subclass) for anything caused by the
user's input: a bad file, a stale artifact, an impossible option. The CLI turns it
into a one-line ``Error: ...`` message and exit code 1, never a traceback.
Programming errors stay ordinary exceptions so that they do show a traceback.
"""

from __future__ import annotations

from os import PathLike


class RcnnError(Exception):
    """A problem with the user's input, reported as one line."""


def one_line(text: str) -> str:
    """``text`` with line breaks escaped: a message quoting a user's file stays one line."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


class DataError(RcnnError):
    """A bad image, annotation or dataset file. The message names the file."""

    def __init__(self, path: str | PathLike[str] | None, problem: str) -> None:
        self.path = None if path is None else one_line(str(path))
        self.problem = one_line(problem)
        super().__init__(f"{self.path}: {self.problem}" if self.path else self.problem)


class ArtifactError(RcnnError):
    """A missing, partial, stale or foreign artifact folder (proposals, features, run)."""
