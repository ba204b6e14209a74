"""``rcnn compare``'s plan: every method's stages as the command lines a user would type, run in this
process through the same commands (``rcnn propose``, ``train``, ``detect``, ``evaluate``), each writing
under ``REPORT/runs/``, so that what the report measures is what the single commands do.

A step that finished leaves a marker (``REPORT/runs/steps/NAME.json``: its command line and wall time);
a rerun skips it. A step that was killed is run again where its command resumes by itself: ``rcnn
train --resume`` from the run's last checkpoint (R-CNN and SPPnet stage by stage), ``rcnn propose``
image by image; a killed ``rcnn detect`` is redone with ``--overwrite``. The settings of the whole
comparison are in ``REPORT/compare.json``; a rerun with other settings is refused, never mixed in.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click

from rcnn_cli.errors import RcnnError

#: The methods in the order they train: SPPnet fine-tunes on the conv layers of the Fast R-CNN run.
METHODS: tuple[str, ...] = ("fast", "sppnet", "rcnn", "faster")

#: What ``--methods`` names each, and ``rcnn train --method``'s name for it.
TRAIN_METHOD = {"fast": "fast-rcnn", "sppnet": "sppnet", "rcnn": "rcnn", "faster": "faster-rcnn"}

#: Methods read proposals from a folder (Selective Search, computed once and shared).
USES_PROPOSALS = frozenset({"fast", "sppnet", "rcnn"})


@dataclass(frozen=True)
class CompareSettings:
    """What a comparison is: stored as ``REPORT/compare.json``; a rerun must give the same."""

    dataset: str
    split_train: str
    split_test: str
    methods: tuple[str, ...]
    budget_s: float
    backbone: str
    max_proposals: int = 2000
    extra_train: tuple[str, ...] = field(default_factory=tuple)  # more `rcnn train` options, for tests
    #: --max-pixels and --image-root as given, passed on to every step (each reads the images)
    image_options: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise RcnnError(f"--methods: choose from {','.join(METHODS)}; got {','.join(self.methods)}")
        if "sppnet" in self.methods and "fast" not in self.methods:
            raise RcnnError(
                "--methods sppnet needs fast too: SPPnet fine-tunes only its fc layers, on the conv layers "
                "of the Fast R-CNN run (there are no pretrained weights here)"
            )
        if self.budget_s <= 0:
            raise RcnnError("--budget must be more than 0")
        from rcnn_cli.models.specs import SPECS

        svm_methods = [m for m in self.methods if m in ("rcnn", "sppnet")]
        if self.backbone in SPECS and SPECS[self.backbone].head == "stage" and svm_methods:
            raise RcnnError(
                f"--backbone {self.backbone} has no fc7 for {' and '.join(svm_methods)}'s SVMs (its per-RoI "
                "head is its last conv stage): compare --methods fast,faster with it"
            )

    @property
    def ordered(self) -> tuple[str, ...]:
        """The chosen methods in training order (:data:`METHODS`)."""
        return tuple(m for m in METHODS if m in self.methods)

    @property
    def share_s(self) -> float:
        """Each method's training budget (``rcnn train --budget``): an equal share."""
        return self.budget_s / len(self.methods)


@dataclass(frozen=True)
class Step:
    """One command line of the plan: ``args`` after ``rcnn``; ``output`` the folder or file it makes."""

    name: str
    method: str | None  # None: shared by the methods (the Selective Search proposals)
    stage: str  # propose, train, detect, evaluate
    args: tuple[str, ...]
    output: Path


@dataclass(frozen=True)
class StepRecord:
    """A finished step, as its marker keeps it."""

    name: str
    args: list[str]
    seconds: float
    skipped: bool = False


def runs_folder(report: Path) -> Path:
    return report / "runs"


def proposals_folder(report: Path, split: str) -> Path:
    return runs_folder(report) / "proposals" / split


def method_folder(report: Path, method: str) -> Path:
    return runs_folder(report) / method


def plan(settings: CompareSettings, report: Path) -> list[Step]:
    """The steps of a comparison, in the order they run."""
    s, steps = settings, []
    data = ["--dataset", s.dataset]
    share = f"{s.share_s:.0f}s"
    for split in dict.fromkeys((s.split_train, s.split_test)):  # the test split's proposals: its recall
        if split == s.split_test or USES_PROPOSALS & set(s.methods):
            out = proposals_folder(report, split)
            args = ("propose", s.dataset, "--split", split, "--max-proposals", str(s.max_proposals))
            steps.append(Step(f"proposals-{split}", None, "propose", (*args, "-o", str(out)), out))
    for method in s.ordered:
        run = method_folder(report, method)
        train = ["train", *data, "--split", s.split_train, "--backbone", s.backbone, "--budget", share]
        train += ["--method", TRAIN_METHOD[method], *s.extra_train]
        if method in USES_PROPOSALS:
            train += ["--proposals", str(proposals_folder(report, s.split_train))]
            train += ["--max-proposals", str(s.max_proposals)]
        if method == "sppnet":
            train += ["--init-from", str(method_folder(report, "fast") / "train" / "model.pt")]
        steps.append(
            Step(f"{method}-train", method, "train", (*train, "-o", str(run / "train")), run / "train")
        )
    for method in s.ordered:
        run = method_folder(report, method)
        model = str(run / "train" / "model.pt")
        detect = ["detect", *data, "--split", s.split_test, "--model", model, "--timing", "--no-pictures"]
        if method in USES_PROPOSALS:
            detect += ["--proposals", str(proposals_folder(report, s.split_test))]
            detect += ["--max-proposals", str(s.max_proposals)]
        dets = run / "detections"
        steps.append(Step(f"{method}-detect", method, "detect", (*detect, "-o", str(dets)), dets))
        evaluation = run / "evaluation.json"
        evaluate = (
            "evaluate",
            *data,
            "--split",
            s.split_test,
            "--detections",
            str(dets),
            "-o",
            str(evaluation),
        )
        steps.append(Step(f"{method}-evaluate", method, "evaluate", evaluate, evaluation))
    if "faster" in s.methods:  # the RPN's proposals on the test images: its recall beside SS's
        run = method_folder(report, "faster")
        out = run / "rpn-proposals"
        args = ("propose", s.dataset, "--split", s.split_test, "--method", "rpn")
        args += ("--model", str(run / "train" / "model.pt"), "-o", str(out))
        steps.append(Step("faster-rpn-proposals", "faster", "propose", args, out))
    return [
        Step(step.name, step.method, step.stage, (*step.args, *s.image_options), step.output)
        for step in steps
    ]


def check_settings(report: Path, settings: CompareSettings) -> None:
    """Write ``REPORT/compare.json``, or refuse settings other than the ones it holds (one line)."""
    from rcnn_cli.artifacts import atomic_write_bytes

    path = report / "compare.json"
    given = _jsonable(asdict(settings))
    if path.is_file():
        try:
            kept = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise RcnnError(f"{path}: unreadable ({exc}); remove it or choose another -o") from None
        changed = sorted(k for k in set(kept) | set(given) if kept.get(k) != given.get(k))
        if changed:
            shown = ", ".join(f"{k} {kept.get(k)!r} -> {given.get(k)!r}" for k in changed)
            raise RcnnError(f"{report} holds a comparison with other settings ({shown}); choose another -o")
        return
    report.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(given, indent=2) + "\n").encode())


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value))


def marker_path(report: Path, step: Step) -> Path:
    return runs_folder(report) / "steps" / f"{step.name}.json"


def finished(report: Path, step: Step) -> StepRecord | None:
    """The record of ``step`` when it finished with the same command line, else None."""
    path = marker_path(report, step)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if data.get("args") != list(step.args) or not step.output.exists():
        return None
    return StepRecord(step.name, data["args"], float(data["seconds"]), skipped=True)


def resumed_args(step: Step) -> tuple[str, ...]:
    """``step.args`` with what makes its command go on from a killed run of itself: ``--resume`` once a
    training run has a checkpoint (before that, ``rcnn train`` starts afresh in the folder, and R-CNN's
    and SPPnet's schedules keep what their earlier stages wrote), ``--overwrite`` for a detections
    folder left half-written. ``rcnn propose`` resumes by itself."""
    checkpoints = (
        step.output / "checkpoints" / "last.pt",
        step.output / "1-finetune" / "checkpoints" / "last.pt",
    )
    if step.stage == "train" and any(p.is_file() for p in checkpoints):
        return (*step.args, "--resume")
    if step.stage == "detect" and step.output.exists():
        return (*step.args, "--overwrite")
    return step.args


def run_step(step: Step, report: Path, invoke: Callable[[Sequence[str]], None]) -> StepRecord:
    """Run ``step`` (resuming what a killed run left) through ``invoke`` and leave its marker."""
    from rcnn_cli.artifacts import atomic_write_bytes

    args = resumed_args(step)
    start = time.perf_counter()
    invoke(args)
    seconds = time.perf_counter() - start
    path = marker_path(report, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"args": list(step.args), "seconds": round(seconds, 3), "ran": list(args)}
    atomic_write_bytes(path, (json.dumps(record, indent=2) + "\n").encode())
    return StepRecord(step.name, list(step.args), seconds)


def command_invoker(commands: dict[str, click.Command], obj: Any) -> Callable[[Sequence[str]], None]:
    """``invoke(args)``: run ``rcnn ARGS`` in this process (the command named by ``args[0]``, with the
    global options of ``obj``); its one-line error becomes ours, naming the command."""

    def invoke(args: Sequence[str]) -> None:
        name, rest = args[0], list(args[1:])
        try:
            commands[name].main(args=rest, prog_name=f"rcnn {name}", standalone_mode=False, obj=obj)
        except click.exceptions.Exit as exc:
            if exc.exit_code:
                raise RcnnError(f"rcnn {name} exited with {exc.exit_code}") from None
        except click.ClickException as exc:
            raise RcnnError(f"rcnn {' '.join(args[:1])}: {exc.format_message()}") from None

    return invoke
