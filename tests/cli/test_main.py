from __future__ import annotations

from click.testing import CliRunner

from rcnn_cli import __version__
from rcnn_cli.cli.main import cli

COMMANDS = ("propose", "extract", "train", "detect", "compress", "export", "evaluate")


def test_help_lists_the_six_commands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    listed = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()}
    assert set(COMMANDS) <= listed


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output
    # the build's own line: which kernels rcnn_cli._C has
    assert "rcnn_cli._C: CPU" in result.output


def test_every_command_has_a_worked_example() -> None:
    for name in COMMANDS:
        result = CliRunner().invoke(cli, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Example" in result.output and f"rcnn {name}" in result.output, name


def test_device_cuda_without_gpu_is_a_one_line_error() -> None:
    import torch

    from rcnn_cli.cli.common import resolve_device

    if torch.cuda.is_available():
        assert resolve_device("cuda").type == "cuda"
        return
    from rcnn_cli.errors import RcnnError

    try:
        resolve_device("cuda")
    except RcnnError as exc:
        assert "--device cpu" in str(exc)
    else:
        raise AssertionError("expected RcnnError")


def test_importing_the_cli_and_its_help_load_no_torch() -> None:
    """``rcnn --help`` and every command's ``--help`` stay fast: torch (~2 s to import) is loaded only
    by a command that computes. A fresh interpreter, since this one has torch loaded already."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from rcnn_cli.cli.main import cli\n"
        "for args in (['--help'], *[[c, '--help'] for c in cli.commands]):\n"
        "    assert CliRunner().invoke(cli, args).exit_code == 0, args\n"
        "heavy = ('torch', 'cv2', 'scipy', 'skimage', 'numpy', 'PIL', 'matplotlib')\n"
        "heavy = sorted(m for m in heavy if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "", f"imported at start-up: {run.stdout.strip()}"


def test_the_backbone_choices_are_the_models() -> None:
    from rcnn_cli.cli.options import BACKBONES
    from rcnn_cli.models import SPECS

    assert set(BACKBONES) == set(SPECS)
