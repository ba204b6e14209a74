"""Where a stage looks when the command line leaves an input or output out: the previous stage's
default output, in the current folder, so that the stages chain without options::

    rcnn propose IMAGES   -> ./proposals/        (its manifest names IMAGES and the split)
    rcnn train            -> ./runs/DATE-METHOD/ (./runs/latest names it)
    rcnn detect IMAGE...  -> ./detections/       (the latest run's model, its proposal method)
    rcnn compress         -> ./runs/<latest>/model_svd.pt
    rcnn evaluate         <- ./detections/ and the dataset it was made from

Every default that is used is said in one line on stderr (``using ...``); a missing one is an
:class:`RcnnError` saying what to run first. Options the user gives always win: this module only finds
paths and reads the small files that name them, the commands do the rest.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import click

from rcnn_cli.cli.common import get_context
from rcnn_cli.errors import RcnnError

PROPOSALS = Path("proposals")
RUNS = Path("runs")
DETECTIONS = Path("detections")
#: ``./runs/latest``: a one-line text file naming the latest run's folder inside ./runs (a file, not a
#: symlink, so that it works wherever symlinks need privileges, e.g. on Windows).
LATEST = RUNS / "latest"
MANIFEST = "manifest.json"


def shown(path: str | os.PathLike[str]) -> str:
    """``path`` as the user would type it: ``./proposals`` under the current folder, else as it is."""
    try:
        inside = Path(path).resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return str(path)
    return "." if inside == Path() else f"./{inside.as_posix()}"


def say(message: str) -> None:
    """One ``using ...`` line on stderr for a default that was used (not with ``-q``)."""
    if click.get_current_context(silent=True) is None or not get_context().quiet:
        click.echo(f"using {message}", err=True)


# ----- paths that folders record ------------------------------------------------------------------
def record_path(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> str:
    """``path`` as ``folder``'s manifest stores it: relative to the folder, so that a project moved as a
    whole still finds its inputs; absolute where no relative path exists (another drive)."""
    target, base = Path(path).resolve(), Path(folder).resolve()
    try:
        return Path(os.path.relpath(target, base)).as_posix()
    except ValueError:
        return str(target)


def recorded_path(value: str, folder: str | os.PathLike[str]) -> Path:
    """Inverse of :func:`record_path` (an absolute ``value`` is taken as it is)."""
    return Path(os.path.normpath(Path(folder).resolve() / value))


def dataset_origin(spec: str | list[str], split: str | None, folder: str | os.PathLike[str]) -> dict:
    """What a proposals or detections folder records of the images it was made from (manifest
    ``extra``): ``dataset``, the path(s) as :func:`record_path` writes them, and ``split``."""
    paths = [record_path(s, folder) for s in spec] if isinstance(spec, list) else record_path(spec, folder)
    return {"dataset": paths, "split": split}


def _origin(folder: Path, kind: str) -> tuple[Path, str | None] | None:
    """(dataset path, split) that ``folder``'s manifest names; None when it names no single path (an
    older folder, or a list of images)."""
    from rcnn_cli.artifacts import read_manifest

    extra = read_manifest(folder, kind).extra
    value = extra.get("dataset")
    if not isinstance(value, str):
        return None
    return recorded_path(value, folder), extra.get("split")


# ----- propose and train ---------------------------------------------------------------------------
def proposals_output(given: str | None) -> str:
    """``rcnn propose -o``: as given, or ./proposals."""
    if given is not None:
        return given
    say(f"{shown(PROPOSALS)} as the proposals folder")
    return str(PROPOSALS)


def default_split(dataset: Path) -> str | None:
    """The split to train on when no one chose it: a VOC folder's trainval, else train, else every
    image (None)."""
    from rcnn_cli.data.voc import is_voc_root

    if is_voc_root(dataset):
        for split in ("trainval", "train"):
            if (dataset / "ImageSets" / "Main" / f"{split}.txt").is_file():
                return split
    return None


@dataclass(frozen=True)
class TrainInputs:
    """What ``rcnn train`` reads: the dataset, its split and the proposals folder (None: the RPN's)."""

    dataset: str
    split: str | None
    proposals: str | None


def train_inputs(
    dataset: str | None, split: str | None, proposals: str | None, needs_proposals: bool
) -> TrainInputs:
    """``--dataset``/``--split``/``--proposals`` with what is missing taken from ./proposals: the folder
    itself (Fast R-CNN), and the dataset and split its manifest names (the split, when the manifest has
    none: :func:`default_split`)."""
    chosen_folder = False
    if needs_proposals and proposals is None:
        if not (PROPOSALS / MANIFEST).is_file():
            raise RcnnError(
                f"no {shown(PROPOSALS)}: run rcnn propose IMAGES first, or give --proposals FOLDER "
                "(or --rpn to train a Faster R-CNN, which needs none)"
            )
        # Absolute: the model records where its proposals came from, for rcnn detect run elsewhere.
        proposals, chosen_folder = str(PROPOSALS.resolve()), True
        say(f"{shown(PROPOSALS)}, the proposals of rcnn propose")
    folder = Path(proposals) if proposals is not None else PROPOSALS
    if dataset is None:
        if not (folder / MANIFEST).is_file():
            raise RcnnError(
                f"no --dataset and no {shown(folder)} that names one: give --dataset DATA, "
                "or run rcnn propose DATA first"
            )
        origin = _origin(folder, "proposals")
        if origin is None:
            raise RcnnError(
                f"{shown(folder)}/{MANIFEST} does not name one dataset folder (an older rcnn or a list of "
                "images made it): give --dataset DATA"
            )
        path, made_split = origin
        if split is None:
            split = made_split if made_split is not None else default_split(path)
        on = f", split {split}" if split else ", every image"
        say(f"dataset {shown(path)}{on}, as {shown(folder)}/{MANIFEST} names it")
        return TrainInputs(str(path), split, proposals)
    if chosen_folder:
        origin = _origin(folder, "proposals")
        if origin is not None and origin[0] != Path(dataset).resolve():
            raise RcnnError(
                f"{shown(folder)} was made from {shown(origin[0])}, not --dataset {dataset}: "
                "give --proposals FOLDER made from it"
            )
    return TrainInputs(dataset, split, proposals)


def run_folder(given: str | None, method: str, resume: bool, today: date | None = None) -> str:
    """``rcnn train -o``: as given; with ``--resume``, the latest run; else a new ./runs/DATE-METHOD
    (``-2``, ``-3``, ... when that exists)."""
    if given is not None:
        return given
    if os.environ.get("WORLD_SIZE", "1") != "1":  # every process would pick a name of its own
        raise RcnnError("under torchrun, give the run folder with -o (the processes must share it)")
    if resume:
        folder = latest_run()
        say(f"{shown(folder)}, the latest run, to resume")
        return str(folder)
    base = f"{(today or date.today()).isoformat()}-{method}"
    number = 1
    while (RUNS / (base if number == 1 else f"{base}-{number}")).exists():
        number += 1
    folder = RUNS / (base if number == 1 else f"{base}-{number}")
    say(f"{shown(folder)} as the run folder")
    return str(folder)


def mark_latest(run: str | os.PathLike[str]) -> None:
    """Make ``run`` the latest run when it is a folder of ./runs (others are left as they are)."""
    from rcnn_cli.artifacts import atomic_write_bytes

    folder = Path(run).resolve()
    if folder.parent != RUNS.resolve() or LATEST.is_dir() or folder.name == LATEST.name:
        return
    atomic_write_bytes(LATEST, (folder.name + "\n").encode())


def latest_run() -> Path:
    """The folder that ./runs/latest names."""
    if not LATEST.is_file():
        raise RcnnError(f"no {shown(LATEST)}: run rcnn train first, or give the model (--model RUN/model.pt)")
    name = LATEST.read_text(encoding="utf-8", errors="replace").strip()
    folder = RUNS / name
    if not name or Path(name).name != name or name in (".", "..") or not folder.is_dir():
        raise RcnnError(f"{shown(LATEST)} names {name!r}, not a folder of {shown(RUNS)}: give the model")
    return folder


def latest_model(option: str = "--model") -> Path:
    """``model.pt`` of the latest run, said as used."""
    folder = latest_run()
    model = folder / "model.pt"
    if not model.is_file():
        raise RcnnError(
            f"{shown(folder)}, the latest run, has no model.pt yet: its training has not finished "
            f"(rcnn train --resume continues it), or give {option} RUN/model.pt"
        )
    say(f"{shown(model)}, the latest run")
    return model


# ----- detect, compress, evaluate ------------------------------------------------------------------
def detections_output(given: Path | None) -> Path:
    """``rcnn detect -o``: as given, or ./detections."""
    if given is not None:
        return given
    say(f"{shown(DETECTIONS)} as the detections folder")
    return DETECTIONS


def training_proposals(meta: dict[str, Any], mode: str | None = None) -> Any:
    """The :class:`ProposalSettings` that made the model's training proposals (its meta names the
    folder, whose manifest has the method and its settings), to compute on the fly at test time;
    Selective Search fast, said as a note, when they cannot be known or not be computed. ``mode``: the
    Selective Search mode the user gave (``--proposal-mode``), which wins over the folder's."""
    from rcnn_cli.errors import ArtifactError
    from rcnn_cli.proposals.registry import ON_THE_FLY_METHODS, ProposalSettings

    folder = meta.get("proposals")
    why = "the model does not say which proposals it was trained on"
    if isinstance(folder, str) and folder != "rpn":
        try:
            params = dict(_read_params(Path(folder)))
        except ArtifactError as exc:
            why = f"its training proposals are unreadable ({exc})"
        else:
            method = params.get("method")
            if method in ON_THE_FLY_METHODS:
                settings = ProposalSettings(
                    method=str(method),
                    mode=mode or str(params.get("mode", "fast")),
                    max_proposals=int(params.get("max_proposals", 2000)),
                    min_size=float(params.get("min_size", 0.0)),
                    seed=int(params.get("seed", 0)),
                )
                say(
                    f"{settings.method} proposals ({settings.mode}, at most {settings.max_proposals} an "
                    f"image), as {shown(folder)} made them for training"
                )
                return settings
            why = f"its training proposals ({method}) cannot be computed on the fly"
    click.echo(f"note: {why}; computing selective-search {mode or 'fast'} proposals", err=True)
    return ProposalSettings(method="selective-search", mode=mode or "fast")


def _read_params(folder: Path) -> dict[str, Any]:
    from rcnn_cli.proposals.storage import open_proposals

    return dict(open_proposals(folder)[1].params)


def compress_paths(model: Path | None, output: Path | None) -> tuple[Path, Path]:
    """``rcnn compress [MODEL] [-o]``: the latest run's model, written beside it as model_svd.pt."""
    if model is None:
        model = latest_model(option="MODEL")
    if output is None:
        output = model.parent / "model_svd.pt"
        say(f"{shown(output)} as the compressed model")
    return model, output


def export_paths(model: Path | None, output: Path | None, fmt: str | None) -> tuple[Path, Path, str]:
    """``rcnn export [MODEL] [-o] [--format]``: the latest run's model; the format from ``-o``'s suffix
    (ONNX without ``-o``); the output beside the model (model.onnx, model.torchscript.pt)."""
    from rcnn_cli.inference.export import default_output, format_of

    if model is None:
        model = latest_model(option="MODEL")
    if output is None:
        fmt = fmt or "onnx"
        output = default_output(model, fmt)
        say(f"{shown(output)} as the exported model")
    return model, output, format_of(output, fmt)


def detections_input(given: Path | None) -> Path:
    """``rcnn evaluate --detections``: as given, or ./detections."""
    if given is not None:
        return given
    if not (DETECTIONS / "detections.json").is_file():
        raise RcnnError(f"no {shown(DETECTIONS)}: run rcnn detect IMAGES first, or give --detections")
    say(f"{shown(DETECTIONS)}, the detections of rcnn detect")
    return DETECTIONS


@dataclass(frozen=True)
class EvaluationData:
    """The ground truth to evaluate on: a dataset, its split, and (when only some of its images were
    detected) the image files to keep."""

    dataset: str
    split: str | None
    only_files: frozenset[Path] | None = None


def evaluation_data(detections: Path) -> EvaluationData:
    """The dataset that a detections folder was made from, when it has ground truth (a VOC folder or
    COCO JSON); else the model's training dataset (all its images), kept to the detected images, when
    every one of them is an image of it."""
    from rcnn_cli.artifacts import read_manifest

    folder = detections if detections.is_dir() else detections.parent
    if not (folder / MANIFEST).is_file():
        raise RcnnError(f"no --dataset, and {shown(folder)} has no {MANIFEST} that names one: give --dataset")
    origin = _origin(folder, "detections")
    if origin is not None and _has_ground_truth(origin[0]):
        say(f"dataset {shown(origin[0])}{_split_text(origin[1])}, the one {shown(folder)} was made from")
        return EvaluationData(str(origin[0]), origin[1])
    model = read_manifest(folder, "detections").extra.get("model")
    trained_on = _trained_on(recorded_path(model, folder)) if isinstance(model, str) else None
    if trained_on is not None:
        from rcnn_cli.data import open_dataset

        files = _detected_files(folder)
        known = {r.path.resolve() for r in open_dataset(trained_on).records}
        if files and files <= known:
            say(f"dataset {shown(trained_on)}, the model's, for the {len(files)} detected images")
            return EvaluationData(str(trained_on), None, frozenset(files))
    raise RcnnError(
        f"{shown(folder)} was made from images without ground truth: give --dataset (a VOC folder or "
        "COCO JSON with their boxes)"
    )


def _trained_on(model: Path) -> Path | None:
    """The dataset the model's meta names, when it is there and has ground truth."""
    from rcnn_cli.artifacts import read_torch_file

    if not model.is_file():
        return None
    meta = read_torch_file(model, "model checkpoint").get("meta") or {}
    dataset = meta.get("dataset")
    return Path(dataset) if isinstance(dataset, str) and _has_ground_truth(Path(dataset)) else None


def _has_ground_truth(path: Path) -> bool:
    from rcnn_cli.data.voc import is_voc_root

    return is_voc_root(path) or (path.suffix.lower() == ".json" and path.is_file())


def _split_text(split: str | None) -> str:
    return f", split {split}" if split else ""


def _detected_files(folder: Path) -> set[Path]:
    """The image files that ``rcnn detect`` wrote a per-image JSON for."""
    import json

    files = set()
    for path in (folder / "per_image").glob("*.json"):
        try:
            files.add(Path(json.loads(path.read_text())["file"]).resolve())
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a damaged file: the evaluation reads detections.json, not these
    return files


def proposals_dataset(folder: Path) -> tuple[str, str | None]:
    """``rcnn evaluate --proposals FOLDER`` without ``--dataset``: the dataset the folder names."""
    origin = _origin(folder, "proposals")
    if origin is None:
        raise RcnnError(f"no --dataset, and {shown(folder)} does not name its dataset: give --dataset")
    say(f"dataset {shown(origin[0])}{_split_text(origin[1])}, as {shown(folder)}/{MANIFEST} names it")
    return str(origin[0]), origin[1]
