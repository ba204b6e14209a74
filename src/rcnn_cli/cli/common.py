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


def max_pixels_option(func: F) -> F:
    """``--max-pixels N``: the decoding safety limit of every command that reads images (the one
    their "image too large" errors tell the user to raise)."""
    from rcnn_cli.data.images import DEFAULT_MAX_PIXELS

    return click.option(
        "--max-pixels",
        type=click.IntRange(min=1),
        default=DEFAULT_MAX_PIXELS,
        show_default=True,
        help="Refuse images with more pixels than this (each decoded image takes 3 bytes a pixel).",
    )(func)


def proposal_options(images: str) -> Callable[[F], F]:
    """``--proposals FOLDER`` and ``--proposal-method METHOD`` (one of them), for ``images`` (help text)."""
    from pathlib import Path

    from rcnn_cli.inference.detect import PROPOSAL_METHODS

    def decorate(func: F) -> F:
        func = click.option(
            "--proposal-method",
            type=click.Choice(PROPOSAL_METHODS),
            default=None,
            help=f"Compute proposals for {images} on the fly instead of --proposals.",
        )(func)
        return click.option(
            "--proposals",
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            help=f"Proposals folder made by 'rcnn propose' for {images}.",
        )(func)

    return decorate


def proposal_source(
    proposals: Any,
    method: str | None,
    mode: str = "fast",
    max_proposals: int = 2000,
    images: str = "the images",
) -> Any:
    """The :data:`rcnn_cli.inference.detect.ProposalSource` that :func:`proposal_options` chose."""
    from rcnn_cli.inference.detect import folder_proposals, method_proposals

    if (proposals is None) == (method is None):
        raise RcnnError(f"give --proposals FOLDER or --proposal-method METHOD (one of them) for {images}")
    if proposals is not None:
        return folder_proposals(proposals)
    return method_proposals(method, mode, max_proposals)
