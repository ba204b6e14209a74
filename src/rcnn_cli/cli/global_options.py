"""``-q``, ``-v`` and ``--device``: given before the command (``rcnn -q propose ...``) or after it
(``rcnn propose ... -q``), with the same meaning.

The options are defined once here. The ``rcnn`` group takes them as its own parameters
(:func:`root_options`); :func:`accept_after_command` adds a copy to every command and subgroup, whose
callback updates the :class:`Context` the group stored, so the command functions never see them.

Given in both places, the one after the command wins (as a later option wins in most tools: an alias
``rcnn --device cuda`` still runs ``rcnn train ... --device cpu`` on the CPU). The device and the
verbosity are taken apart: ``rcnn -q train ... --device cpu`` stays quiet, ``rcnn -q train ... -v`` is
verbose. Within one place, ``-q`` wins over ``-v`` as it always did.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from rcnn_cli.cli.common import Context, DeviceType

F = TypeVar("F", bound=Callable[..., Any])

DEVICE_HELP = "Where tensors live; auto picks CUDA when a GPU is present."
QUIET_HELP = "No progress output, only results and errors."
VERBOSE_HELP = "More detail (repeat for more)."
#: ctx.meta keys (meta is shared by the whole context chain of one invocation): what was given after
#: the command, and the group's Context before it was changed.
_GIVEN_AFTER = "rcnn.global_options.after_command"
_BEFORE = "rcnn.global_options.before_command"


def root_options(func: F) -> F:
    """The three options of the ``rcnn`` group itself, passed to its function as usual."""
    func = click.option("-v", "--verbose", count=True, help=VERBOSE_HELP)(func)
    func = click.option("-q", "--quiet", is_flag=True, help=QUIET_HELP)(func)
    return click.option("--device", type=DeviceType(), default="auto", show_default=True, help=DEVICE_HELP)(
        func
    )


def verbosity(quiet: bool, verbose: int) -> int:
    """0 with ``-q``, 1 by default, 1 + the count of ``-v``."""
    return 0 if quiet else 1 + verbose


def context_of(device: str, quiet: bool, verbose: int) -> Context:
    """The :class:`Context` of the group's own options."""
    return Context(device=device, verbosity=verbosity(quiet, verbose))


def _after_command_options() -> list[click.Option]:
    """Copies of the three options for a command: not passed to its function (``expose_value``
    False); their callback records what was given."""
    common: dict[str, Any] = {"expose_value": False, "callback": _given_after_command}
    return [
        click.Option(["--device"], type=DeviceType(), default=None, help=DEVICE_HELP, **common),
        click.Option(["-q", "--quiet"], is_flag=True, default=False, help=QUIET_HELP, **common),
        click.Option(["-v", "--verbose"], count=True, help=VERBOSE_HELP, **common),
    ]


def _given_after_command(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """Record ``param`` when the command line gave it, and update the root's Context with all that was
    given after the command so far (callbacks run one by one, in the order of the command line)."""
    if param.name is None or ctx.get_parameter_source(param.name) is not ParameterSource.COMMANDLINE:
        return
    root = ctx.find_root()
    before = ctx.meta.setdefault(_BEFORE, root.obj if isinstance(root.obj, Context) else Context())
    given = ctx.meta.setdefault(_GIVEN_AFTER, {})
    given[param.name] = value
    root.obj = _with_given(before, given)


def _with_given(before: Context, given: dict[str, Any]) -> Context:
    """``before`` (the group's options) with what was given after the command."""
    changes: dict[str, Any] = {}
    if "device" in given:
        changes["device"] = given["device"]
    if "quiet" in given or "verbose" in given:
        changes["verbosity"] = verbosity(bool(given.get("quiet")), int(given.get("verbose", 0)))
    return dataclasses.replace(before, **changes)


def accept_after_command(command: click.Command) -> None:
    """Add the three options to ``command`` and, for a group, to every command below it."""
    names = {opt for param in command.params for opt in param.opts}
    taken = names & {"--device", "-q", "--quiet", "-v", "--verbose"}
    if taken:  # a command's own option of the same name would be shadowed without a word
        raise RuntimeError(f"rcnn {command.name}: {', '.join(sorted(taken))} are global options")
    command.params.extend(_after_command_options())
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            accept_after_command(sub)
