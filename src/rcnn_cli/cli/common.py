"""What every subcommand shares: the global options' context, device choice, error reporting.

Shared options are defined once here (as Flask's cli.py does) so that each command
module stays a thin layer: parse options, build a config, call the engine.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from rcnn_cli.errors import RcnnError

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Context:
    """Global options, stored as ``click.Context.obj`` by the ``rcnn`` group.

    ``verbosity``: 0 with ``-q`` (no progress, only results and errors), 1 by default,
    2 and more with ``-v``/``-vv``.
    """

    device: str = "auto"
    verbosity: int = 1

    @property
    def quiet(self) -> bool:
        return self.verbosity == 0

    def torch_device(self) -> Any:
        """The torch.device that ``--device`` names; ``auto`` picks CUDA when present."""
        return resolve_device(self.device)


def resolve_device(name: str) -> Any:
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RcnnError(f"--device {name}: this torch build has no CUDA device available; use --device cpu")
    return torch.device(name)


def get_context() -> Context:
    ctx = click.get_current_context()
    root = ctx.find_root()
    return root.obj if isinstance(root.obj, Context) else Context()


def user_errors(func: F) -> F:
    """Turn :class:`RcnnError` (bad input) into click's one-line ``Error: ...`` and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RcnnError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            raise click.ClickException("interrupted; finished outputs are kept, rerun to resume") from None

    return wrapper  # type: ignore[return-value]
