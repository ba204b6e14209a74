"""``rcnn train``: placeholder until its issue lands."""

from __future__ import annotations

import click

from rcnn_cli.cli.common import user_errors
from rcnn_cli.errors import RcnnError


@click.command(
    epilog="""\b
Example:
  rcnn train --help
""",
)
@user_errors
def train() -> None:
    """Not built yet."""
    raise RcnnError("'rcnn train' is not built yet")
