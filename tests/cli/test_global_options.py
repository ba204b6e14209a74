"""``-q``, ``-v`` and ``--device`` before the command or after it, for every command; after wins."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from rcnn_cli.cli.common import Context, get_context
from rcnn_cli.cli.main import cli
from support.inference import write_images


def leaf_commands(group: click.Group = cli, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The path of every command under ``group`` (``("show", "rois")`` for ``rcnn show rois``)."""
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from leaf_commands(command, (*path, name))
        else:
            yield (*path, name)


def command_at(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


COMMANDS = sorted(leaf_commands())


@pytest.fixture
def recorded(monkeypatch) -> list[Context]:
    """Every command (and group) records the global options' Context instead of running; none of its
    own options is required, so that the global ones can be given alone."""
    seen: list[Context] = []

    def record(**_kwargs) -> None:
        seen.append(get_context())

    for path in COMMANDS:
        command = command_at(path)
        monkeypatch.setattr(command, "callback", record)
        for param in command.params:
            monkeypatch.setattr(param, "required", False)
    return seen


def test_every_command_is_covered() -> None:
    assert {"propose", "extract", "train", "detect", "compress", "evaluate", "check"} <= {
        p[0] for p in COMMANDS
    }
    assert ("show", "rois") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_global_options_before_and_after_every_command(path: tuple[str, ...], recorded) -> None:
    runner = CliRunner()
    for args in (
        ["-q", "--device", "cpu", *path],
        [*path, "-q", "--device", "cpu"],
        ["--device", "cuda", *path, "--quiet", "--device", "cpu"],  # after wins
    ):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, (args, result.output)
        assert recorded[-1] == Context(device="cpu", verbosity=0), args
    result = runner.invoke(cli, [*path, "-vv"])
    assert result.exit_code == 0 and recorded[-1] == Context(device="auto", verbosity=3)
    result = runner.invoke(cli, [*path])
    assert result.exit_code == 0 and recorded[-1] == Context(), "nothing given: the defaults"
    help_text = runner.invoke(cli, [*path, "--help"]).output
    assert all(name in help_text for name in ("--device", "-q, --quiet", "-v, --verbose"))


def test_each_option_is_taken_on_its_own(recorded) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["-q", "check", "--device", "cpu"]).exit_code == 0
    assert recorded[-1] == Context(device="cpu", verbosity=0)  # -q before stays
    assert runner.invoke(cli, ["-q", "check", "-v"]).exit_code == 0
    assert recorded[-1] == Context(verbosity=2)  # -v after wins over -q before
    assert runner.invoke(cli, ["-v", "check", "-q"]).exit_code == 0
    assert recorded[-1] == Context(verbosity=0)
    assert runner.invoke(cli, ["check", "-q", "-v"]).exit_code == 0
    assert recorded[-1] == Context(verbosity=0)  # in one place -q wins, as before the command
    assert runner.invoke(cli, ["show", "-q", "rois", "--device", "cpu"]).exit_code == 0
    assert recorded[-1] == Context(device="cpu", verbosity=0)  # after the subgroup too


def test_a_bad_device_after_the_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["check", "x", "--device", "tpu"])
    assert result.exit_code == 2 and "--device" in result.output and "Traceback" not in result.output


def test_quiet_after_a_real_command(tmp_path) -> None:
    """The issue's ``rcnn propose images/ -o p -q``: no progress, only the result."""
    write_images(tmp_path / "images", 2)
    args = ["propose", str(tmp_path / "images"), "--method", "dense", "-o"]
    loud = CliRunner().invoke(cli, [*args, str(tmp_path / "p1"), "-v"])
    quiet = CliRunner().invoke(cli, [*args, str(tmp_path / "p2"), "-q", "--device", "cpu"])
    assert loud.exit_code == 0 and quiet.exit_code == 0, quiet.output
    assert "2 images written" in quiet.output
    assert len(quiet.output.splitlines()) < len(loud.output.splitlines())
