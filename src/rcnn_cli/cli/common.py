"""What every subcommand shares: the global options' context, device choice, error reporting.

Shared options and parameter types are in :mod:`rcnn_cli.cli.options`, defined once (as Flask's
cli.py does), so that each command module stays a thin layer: parse options, build a config, call
the engine.
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


class DeviceType(click.ParamType):
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``; checked against the machine only when a command needs
    tensors (so that ``rcnn --help`` does not load torch)."""

    name = "auto|cpu|cuda[:N]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value).strip().lower()
        kind, _, index = text.partition(":")
        if text in ("auto", "cpu", "cuda") or (kind == "cuda" and index.isdigit()):
            return text
        self.fail(f"{value!r}: choose auto, cpu, cuda or cuda:N", param, ctx)


def resolve_device(name: str) -> Any:
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RcnnError(f"--device {name}: this torch build has no CUDA device available; use --device cpu")
    device = torch.device(name)
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise RcnnError(f"--device {name}: there are {torch.cuda.device_count()} CUDA devices (cuda:0 ...)")
    return device


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
