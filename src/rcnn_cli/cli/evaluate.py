"""``rcnn evaluate``: placeholder until its issue lands."""

from __future__ import annotations

import click

from rcnn_cli.cli.common import user_errors
from rcnn_cli.errors import RcnnError


@click.command(
    epilog="""\b
Example:
  rcnn evaluate --help
""",
)
@user_errors
def evaluate() -> None:
    """Not built yet."""
    raise RcnnError("'rcnn evaluate' is not built yet")
