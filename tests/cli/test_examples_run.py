"""Every command line that README.md and the ``--help`` examples print runs as printed, on the bundled
sample, exit code 0.

The lines are those that start with ``rcnn`` or ``torchrun`` (``make`` and ``source`` are not ours) in
README.md's fenced ``bash`` blocks (the unlabelled block at its top is a diagram) and in the epilog of
the ``rcnn`` group and of each of its commands and subcommands (``rcnn show KIND``): lines continued
with a trailing backslash joined, ``# comments`` dropped, as a shell reads them.

Each source (README.md, or one command's ``--help``) runs in a fresh folder of its own, its lines in the
order printed, so that a line may use what an earlier one wrote there, as a reader following them
would. The folder holds what the lines name as their input (:func:`inputs`) and what they expect to
exist before them (:data:`PREREQUISITES`, made by :data:`MADE`). Only :data:`SPEED_OPTIONS` are added
to a line. The ``torchrun`` lines run in a test of their own, marked slow; :data:`SKIPPED` lists the
lines that cannot run here, with the reason for each.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

import rcnn_cli
from rcnn_cli.cli.main import cli
from rcnn_cli.data import sample_dataset_path

pytestmark = pytest.mark.usefixtures("one_thread")

README = Path(__file__).resolve().parents[2] / "README.md"
SRC = Path(rcnn_cli.__file__).resolve().parents[1]

#: The sample's images the copies keep, per split: few enough for a test, and every id an example names.
SPLITS = {
    "trainval": ("BloodImage_00000", "BloodImage_00001", "BloodImage_00026"),
    "test": ("BloodImage_00007", "BloodImage_00016"),
}

#: Where the examples expect a VOC folder: each is a copy of the trimmed sample.
DATASETS = ("data/voc", "data/bccd", "images")

#: Languages of the README blocks that hold command lines.
SHELL_BLOCKS = ("bash", "sh", "shell")


@dataclass(frozen=True)
class Example:
    """One command line as printed, and where it is printed."""

    source: str
    line: str

    @property
    def words(self) -> list[str]:
        """The words a shell passes on (the comment dropped)."""
        return shlex.split(self.line, comments=True)


# --- the command lines ---------------------------------------------------------------------------


def logical_lines(text: str) -> Iterator[str]:
    """The lines of ``text`` with those ending in a backslash joined to the next, stripped."""
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        yield (pending + line).strip()
        pending = ""
    if pending:
        yield pending.strip()


def command_lines(text: str) -> list[str]:
    """The lines of ``text`` that run ``rcnn`` (directly or under ``torchrun``)."""
    return [line for line in logical_lines(text) if line.split(" ", 1)[0] in ("rcnn", "torchrun")]


def readme_examples() -> list[Example]:
    """The command lines of README.md's ``bash`` blocks, in document order."""
    blocks = re.findall(r"^```(\w*)\n(.*?)^```", README.read_text(encoding="utf-8"), re.M | re.S)
    return [
        Example("README.md", line)
        for lang, body in blocks
        if lang in SHELL_BLOCKS
        for line in command_lines(body)
    ]


def epilog_examples(group: click.Group = cli, path: str = "rcnn") -> list[Example]:
    """The command lines of the epilog of ``group`` and of each of its commands, recursively."""
    found = [Example(path, line) for line in command_lines(group.epilog or "")]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += epilog_examples(command, f"{path} {name}")
        else:
            found += [Example(f"{path} {name}", line) for line in command_lines(command.epilog or "")]
    return found


def all_examples() -> list[Example]:
    """README.md's lines, then those of each ``--help``."""
    return readme_examples() + epilog_examples()


def sources() -> list[str]:
    """Where lines are printed, in the order of :func:`all_examples`."""
    return list(dict.fromkeys(example.source for example in all_examples()))


# --- what is added and what is left out --------------------------------------------------------------

#: Options appended to the lines of a command (``COMMAND``, or ``COMMAND OPTION[=VALUE]`` for its lines
#: that give that option), only to make them quick: they change how long a run takes and how good its
#: model is, not what the line does; given last, they win over the line's own (``--iters 40000``).
#: Training: two iterations, images scaled to a shorter side of 96 (the model then detects so too); with
#: VGG16, fc layers 32 wide, as its 4096-wide fc6 alone is 102M weights (16 s and 1.6 GB a run here).
#: Extraction at the same scale (SPPnet's five scales: two small ones, given after and so winning over
#: ``--scale 96``, the same option); distillation: two steps on two images; compress times its fc layers on
#: 30 RoIs, the SVD sweep in one pass.
SPEED_OPTIONS: dict[str, tuple[str, ...]] = {
    "train": ("--iters", "2", "--scales", "96", "--max-size", "200"),
    "train --backbone=vgg16": ("--fc-dims", "32,32"),
    "extract": ("--scale", "96", "--max-size", "200"),
    "extract --scales": ("--scales", "64,96"),
    "compress": ("--rois", "30"),
    "compress --distill-on": ("--distill-steps", "2", "--distill-images", "2"),
    "evaluate --svd-sweep": ("--passes", "1"),
    "compare": (
        "--max-proposals",
        "60",
        "--train-option",
        "--iters 2 --checkpoint-every 1 --scales 96 --max-size 200",
    ),
}

#: Lines that cannot run here, each with the reason. None at present: ``vgg16.pth`` has a stand-in
#: (:func:`write_stand_in_vgg16`), and the ``torchrun`` lines run, in a slow test of their own.
SKIPPED: dict[str, str] = {}

#: Global options of ``rcnn`` that take a value (before the command).
GLOBAL_OPTIONS_WITH_VALUE = ("--device",)


def speed_options(args: list[str]) -> list[str]:
    """The :data:`SPEED_OPTIONS` for ``args``, the arguments of ``rcnn`` (global options, the command,
    its arguments)."""
    words = iter(args)
    for word in words:
        if word in GLOBAL_OPTIONS_WITH_VALUE:
            next(words, None)
        elif not word.startswith("-"):
            command = word
            break
    else:
        return []
    given = set(args) | {f"{a}={b}" for a, b in itertools.pairwise(args)}
    added: list[str] = []
    for key, options in SPEED_OPTIONS.items():
        name, _, option = key.partition(" ")
        if name == command and (not option or option in given):
            added += options
    return added


# --- the folder the lines run in ---------------------------------------------------------------------


def copy_sample(folder: Path) -> None:
    """The bundled sample as a VOC folder with only the images of :data:`SPLITS` (train and val: the
    sample's own lists, of those)."""
    sample = sample_dataset_path()
    kept = [image_id for ids in SPLITS.values() for image_id in ids]
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (folder / sub).mkdir(parents=True)
    for image_id in kept:
        shutil.copy(sample / "JPEGImages" / f"{image_id}.jpg", folder / "JPEGImages")
        shutil.copy(sample / "Annotations" / f"{image_id}.xml", folder / "Annotations")
    for split_file in (sample / "ImageSets" / "Main").glob("*.txt"):
        listed = SPLITS.get(split_file.stem) or [i for i in split_file.read_text().split() if i in kept]
        (folder / "ImageSets" / "Main" / split_file.name).write_text("\n".join(listed) + "\n")


def write_stand_in_vgg16(path: Path) -> None:
    """A ``vgg16.pth`` in torchvision's layout (``features.N.*``, the conv layers the loader requires;
    ``classifier.*`` is optional), with fresh weights in place of ImageNet's, which are not shipped."""
    import torch

    from rcnn_cli.models.backbones import build_backbone

    torch.save(build_backbone("vgg16").state_dict(), path)


def write_stand_in_resnet18(path: Path) -> None:
    """A ``resnet18.pth`` in torchvision's layout (``conv1``, ``bn1``, ``layer1`` … ``layer4``; ``fc`` is
    optional), with fresh weights: our trunk's keys as they are, res5's under ``layer4.``."""
    import torch

    from rcnn_cli.models.resnet import res5, resnet_c4

    trunk = resnet_c4("resnet18").state_dict()
    torch.save({**trunk, **{f"layer4.{k}": v for k, v in res5("resnet18").state_dict().items()}}, path)


def write_demo_folder(folder: Path) -> None:
    """``data/demo`` as in the Fast R-CNN demo: images beside ``<id>_boxes.mat`` files (``boxes``,
    integer pixels, x1 y1 x2 y2, 0-based)."""
    import scipy.io

    folder.mkdir(parents=True)
    xs, ys = np.meshgrid(np.arange(0, 480, 40), np.arange(0, 320, 40))
    boxes = np.stack([xs.ravel(), ys.ravel(), xs.ravel() + 159, ys.ravel() + 159], axis=1)
    for image_id in SPLITS["test"][:2]:
        shutil.copy(sample_dataset_path() / "JPEGImages" / f"{image_id}.jpg", folder)
        scipy.io.savemat(folder / f"{image_id}_boxes.mat", {"boxes": boxes.astype(np.float64)})


def inputs(folder: Path) -> None:
    """What the examples name as their input (:data:`INPUTS`): the VOC folders of :data:`DATASETS`,
    ``img.jpg`` and ``photo.jpg`` (sample images), ``photos/`` (one: with more, ``--workers 8`` would
    start a process per image, each importing torch, seconds on 2 cores), ``data/demo`` and
    ``vgg16.pth``."""
    for name in DATASETS:
        copy_sample(folder / name)
    images = folder / "images" / "JPEGImages"
    shutil.copy(images / f"{SPLITS['test'][0]}.jpg", folder / "img.jpg")
    shutil.copy(images / f"{SPLITS['test'][1]}.jpg", folder / "photo.jpg")
    (folder / "photos").mkdir()
    shutil.copy(images / f"{SPLITS['test'][0]}.jpg", folder / "photos")
    write_demo_folder(folder / "data" / "demo")
    write_stand_in_vgg16(folder / "vgg16.pth")
    write_stand_in_resnet18(folder / "resnet18.pth")


#: What the examples name as their input, made by :func:`inputs`.
INPUTS = ("data", "images", "img.jpg", "photo.jpg", "photos", "vgg16.pth", "resnet18.pth")

#: The lines (of ``rcnn``, quick: see :data:`SPEED_OPTIONS`) that make what some sources expect before
#: their first line, run once in this order. Stand-ins: dense boxes where the proposal method does not
#: matter. ``runs/latest`` then names the last run trained into ./runs, runs/bccd.
MADE: tuple[str, ...] = (
    "check images --to-coco annotations.json",  # COCO, file names relative to images/
    "propose data/bccd -o proposals --method dense",  # every image, trainval and test
    "propose data/bccd --split trainval -o proposals/trainval --method dense",
    "propose data/voc --split trainval -o props --method dense",
    "propose data/bccd --split trainval -o props/trainval --method dense",
    "propose data/bccd --split test -o props/ss",  # labelled ss: Selective Search
    "propose data/bccd --split test -o props/eb --method dense",  # in place of EdgeBoxes' boxes
    "train --dataset data/bccd --split trainval --rpn -o runs/faster",
    "train --dataset data/voc --split trainval --proposals props -o runs/voc",
    "train --dataset data/bccd --split trainval --proposals proposals -o runs/bccd",
    "detect --dataset data/bccd --split test --model runs/bccd/model.pt --proposals proposals -o detections",
    "detect --dataset data/bccd --split test --model runs/bccd/model.pt --proposals proposals -o dets",
)

#: Per source, the paths that :data:`MADE` wrote that its folder starts with.
PREREQUISITES: dict[str, tuple[str, ...]] = {
    "rcnn check": ("annotations.json",),
    "rcnn propose": ("runs/faster",),
    "rcnn extract": ("runs/voc", "props"),
    "rcnn detect": ("runs/bccd", "runs/faster", "runs/latest", "proposals"),
    "rcnn compress": ("runs/voc", "runs/bccd", "runs/latest", "proposals/trainval"),
    "rcnn export": ("runs/bccd", "runs/faster", "runs/latest"),
    "rcnn evaluate": ("runs/bccd", "detections", "proposals", "props/ss", "props/eb"),
    "rcnn show": ("props/trainval", "dets"),
    "rcnn show proposals": ("props",),
    "rcnn show rois": ("props/trainval",),
    "rcnn show pooling": ("runs/bccd",),
    "rcnn show anchors": ("runs/faster",),
    "rcnn show detections": ("runs/bccd", "runs/faster", "dets"),
}

#: Per source, what its ``torchrun`` lines start with besides the inputs (they run on their own: see
#: :func:`test_every_torchrun_line_runs_as_printed`); the train line reads ./proposals.
TORCHRUN_PREREQUISITES: dict[str, tuple[str, ...]] = {"rcnn train": ("proposals",)}


def free_port() -> int:
    """A TCP port of localhost that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_line(line: str) -> tuple[int, str]:
    """Run one command line in the current folder: its exit code and output. ``rcnn ARGS`` runs as
    ``cli`` in this process; ``torchrun ARGS`` as ``python -m torch.distributed.run ARGS`` (what the
    ``torchrun`` script is), with this tree's package first on the path."""
    words = shlex.split(line, comments=True)
    args = words[1:]
    if words[0] == "torchrun":
        command = args.index("rcnn_cli.cli.main") + 1
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1",
            "PET_MASTER_PORT": str(free_port()),  # torchrun's --master-port, not 29500 of other runs
        }
        done = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", *args, *speed_options(args[command:])],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        return done.returncode, done.stdout + done.stderr
    result = CliRunner().invoke(cli, [*args, *speed_options(args)])
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        output += "".join(traceback.format_exception(result.exception))
    return result.exit_code, output


def tail(output: str, lines: int = 30) -> str:
    """The last ``lines`` lines of ``output``: a failure's message, not a page of progress."""
    return "\n".join(output.splitlines()[-lines:])


@pytest.fixture(scope="module")
def workshop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the :func:`inputs` and what the lines of :data:`MADE` wrote there."""
    root = tmp_path_factory.mktemp("workshop")
    inputs(root)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        for line in MADE:
            code, output = run_line(f"rcnn -q {line}")
            assert code == 0, f"rcnn {line}\n{tail(output)}"
    return root


def prepare(folder: Path, workshop: Path, made: tuple[str, ...]) -> None:
    """``folder`` with the :data:`INPUTS` and the paths ``made`` of ``workshop``."""
    for path in (*INPUTS, *made):
        source, target = workshop / path, folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        elif path == "vgg16.pth":  # 59 MB, only read
            os.link(source, target)
        else:
            shutil.copy(source, target)


# --- the tests ---------------------------------------------------------------------------------------


def test_the_lines_are_found() -> None:
    found = all_examples()
    readme = [e for e in found if e.source == "README.md"]
    assert len(readme) >= 20 and readme[0].line.startswith("rcnn propose images/")
    assert not any(e.line.startswith("rcnn show KIND") for e in found)  # the diagram's line
    assert {"rcnn", "rcnn train", "rcnn show", "rcnn show rois"} <= set(sources())
    joined = [e for e in found if "--top-n 300,2000 --recall-plot recall.png" in e.line]
    assert len(joined) >= 2 and all("\\" not in e.line for e in joined)  # continued lines are joined
    commented = [e for e in found if e.source == "rcnn train" and e.line.startswith("rcnn train  ")]
    assert commented and commented[0].words == ["rcnn", "train"]  # the comment is dropped
    assert set(SKIPPED) <= {e.line for e in found}, "a skipped line is no longer printed"
    assert set(PREREQUISITES) | set(TORCHRUN_PREREQUISITES) <= set(sources())


def test_speed_options_go_with_their_command() -> None:
    assert speed_options(["train", "--backbone", "vgg16"]) == [*SPEED_OPTIONS["train"], "--fc-dims", "32,32"]
    assert speed_options(["-q", "compress"]) == ["--rois", "30"]
    assert speed_options(["--device", "cpu", "detect", "img.jpg"]) == []


@pytest.mark.parametrize("source", sources())
def test_every_line_runs_as_printed(
    source: str, workshop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lines of ``source`` one after the other, each with exit code 0."""
    prepare(tmp_path, workshop, PREREQUISITES.get(source, ()))
    monkeypatch.chdir(tmp_path)
    for example in (e for e in all_examples() if e.source == source):
        if example.line in SKIPPED or example.words[0] == "torchrun":
            continue
        code, output = run_line(example.line)
        assert code == 0, f"{source}: {example.line}\n{tail(output)}"


@pytest.mark.slow
@pytest.mark.parametrize(
    "example", [e for e in all_examples() if e.words[0] == "torchrun"], ids=lambda e: e.source
)
def test_every_torchrun_line_runs_as_printed(
    example: Example, workshop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each ``torchrun`` line on its own, in a folder with what the lines before it leave there
    (:data:`TORCHRUN_PREREQUISITES`): it starts two to four processes that each import torch, several
    seconds on 2 cores."""
    prepare(tmp_path, workshop, TORCHRUN_PREREQUISITES.get(example.source, ()))
    monkeypatch.chdir(tmp_path)
    code, output = run_line(example.line)
    assert code == 0, f"{example.source}: {example.line}\n{tail(output)}"
