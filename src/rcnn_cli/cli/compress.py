"""``rcnn compress``: placeholder until its issue lands."""

from __future__ import annotations

import click

from rcnn_cli.cli.common import user_errors
from rcnn_cli.errors import RcnnError


@click.command(
    epilog="""\b
Example:
  rcnn compress --help
""",
)
@user_errors
def compress() -> None:
    """Not built yet."""
    raise RcnnError("'rcnn compress' is not built yet")
