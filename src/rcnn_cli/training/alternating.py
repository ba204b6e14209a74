"""Faster R-CNN's 4-step alternating training (Ren et al. §3.2), each step a folder of the run:

    RUN/1-rpn/            the RPN (with the conv layers) trained alone
    RUN/2-proposals/      its proposals on the training images (an ordinary proposals folder)
    RUN/2-fast-rcnn/      a separate Fast R-CNN trained on them (its own conv layers, from scratch or
                          --weights, as the paper's ImageNet initialization)
    RUN/3-rpn/            the RPN fine-tuned on step 2's conv layers, which stay fixed
    RUN/4-proposals/      step 3's proposals
    RUN/4-fast-rcnn/      the detection head fine-tuned on them, conv layers and RPN fixed
    RUN/model.pt          the Faster R-CNN: step 2's conv layers, step 3's RPN, step 4's head

Step 3 starts its RPN layers from step 1's (the released code starts them afresh from the ImageNet
model; on a CPU budget, keeping what step 1 learnt is the better use of the time). The proposals for
training the detector are the RPN's 2000 best after NMS of its 12000 best (the released code's
``rpn_generate``). Every training step is an ordinary run folder (``metrics.jsonl``,
``checkpoints/last.pt``, ``model.pt``); with ``--resume``, finished steps are kept, a step stopped
half-way continues from its checkpoint, and proposals folders resume image by image. ``--iters`` (and
the lr steps and warm-up) are shared out equally over the four training steps; ``--time-limit`` is a
deadline for the whole schedule, proposals included: each step may use the time left over the steps
left, so that the time a quick step (steps 3 and 4 train no conv layer) leaves is the later steps'.
``--budget`` is shared out the same way: each step fits its schedule into the time left over the steps
left (rcnn_cli.training.budget).
Under torchrun, every process trains each step (DDP) and computes its share of the proposals.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rcnn_cli.errors import RcnnError
from rcnn_cli.training import distributed
from rcnn_cli.training.config import TrainConfig
from rcnn_cli.training.setup import RunSpec, build_trainer

Log = Callable[[str], None]

#: The proposal layer that makes the detector's training proposals in steps 2 and 4.
TRAINING_PROPOSALS = {"pre_nms_top_n": 12000, "post_nms_top_n": 2000}


@dataclasses.dataclass(frozen=True)
class Step:
    """One training step: its folder, what it trains and from what."""

    folder: str
    stage: str  # TrainConfig.stage
    with_rpn: bool  # the model has an RPN (False: step 2's plain Fast R-CNN)
    proposals: str | None = None  # the proposals folder it trains on
    init_from: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (earlier step, its parts), in this order
    frozen: tuple[str, ...] = ()


STEPS = (
    Step("1-rpn", "rpn", True),
    Step("2-fast-rcnn", "fast_rcnn", False, proposals="2-proposals"),
    Step(
        "3-rpn",
        "rpn",
        True,
        init_from=(("1-rpn", ("rpn",)), ("2-fast-rcnn", ("backbone", "head"))),
        frozen=("backbone",),
    ),
    Step(
        "4-fast-rcnn",
        "fast_rcnn",
        True,
        proposals="4-proposals",
        init_from=(("3-rpn", ("backbone", "rpn", "head")),),
        frozen=("backbone", "rpn"),
    ),
)
#: Which step's RPN makes each proposals folder.
PROPOSALS_FROM = {"2-proposals": "1-rpn", "4-proposals": "3-rpn"}


def train_alternating(
    spec: RunSpec, config: TrainConfig, device: torch.device, verbosity: int, log: Log
) -> Path:
    """Run the four steps into ``spec.out_dir`` (module docstring); returns the final model's path."""
    from rcnn_cli.artifacts import atomic_copy
    from rcnn_cli.progress import Reporter

    if spec.rpn is None or config.stage != "joint":
        raise RcnnError("--rpn-schedule alternating trains a Faster R-CNN: add --rpn")
    if spec.features or spec.proposals:
        raise RcnnError(
            "--rpn-schedule alternating makes its own proposals; leave out --proposals/--features"
        )
    info, device = distributed.init_distributed(device)
    out = Path(spec.out_dir)
    if (out / STEPS[0].folder / "checkpoints" / "last.pt").is_file() and not spec.resume:
        raise RcnnError(f"{out}: holds a run already; pass --resume to continue it or choose another -o")
    per_step = _share(config)
    deadline = time.monotonic() + config.time_limit_s if config.time_limit_s else None
    budget_end = time.monotonic() + config.budget_s if config.budget_s else None
    for number, step in enumerate(STEPS, start=1):
        if step.proposals is not None:
            _make_proposals(out, step.proposals, spec, device, info, verbosity, log)
        folder = out / step.folder
        if (folder / "model.pt").is_file():
            log(f"step {number}/4 ({step.folder}): done before, kept")
            continue
        log(f"step {number}/4 ({step.folder}): training")
        step_spec = dataclasses.replace(
            spec,
            out_dir=str(folder),
            proposals=str(out / step.proposals) if step.proposals else None,
            rpn=spec.rpn if step.with_rpn else None,
            init_from=tuple((str(out / name / "model.pt"), parts) for name, parts in step.init_from),
            frozen_parts=step.frozen,
            resume=(folder / "checkpoints" / "last.pt").is_file(),
            # Step 2 trains a second network as step 1 did (the paper's ImageNet start), later steps
            # start from earlier ones and keep their weights.
            weights=spec.weights if not step.init_from else None,
        )
        step_config = dataclasses.replace(
            per_step,
            stage=step.stage,
            time_limit_s=_time_left(deadline, number),
            budget_s=_time_left(budget_end, number),
        )
        trainer = build_trainer(step_spec, step_config, device, log=log)
        quiet = verbosity if info.is_main else 0
        with Reporter(
            f"step {number}", total=step_config.iters - trainer.iteration, verbosity=quiet, unit="it"
        ) as r:
            trainer.reporter = r
            trainer.fit()
    final = out / "model.pt"
    if info.is_main:
        atomic_copy(out / STEPS[-1].folder / "model.pt", final)
    distributed.barrier(info)
    distributed.shutdown(info)
    return final


def _share(config: TrainConfig) -> TrainConfig:
    """Each step's share of ``--iters`` and ``--lr-steps``: a quarter (the warm-up is kept whole, as
    each step starts its own schedule, but not longer than the step)."""
    iters = max(1, config.iters // len(STEPS))
    steps = tuple(sorted({max(1, s // len(STEPS)) for s in config.lr_steps}))
    warmup = min(config.warmup_iters, iters)
    return dataclasses.replace(config, iters=iters, lr_steps=steps, warmup_iters=warmup)


def _time_left(deadline: float | None, number: int) -> float | None:
    """Step ``number``'s time limit (s): what is left until ``deadline`` over the steps left (at least
    a second, so that a late step still saves its model)."""
    if deadline is None:
        return None
    return max(1.0, (deadline - time.monotonic()) / (len(STEPS) - number + 1))


def _make_proposals(
    out: Path, name: str, spec: RunSpec, device: torch.device, info: Any, verbosity: int, log: Log
) -> None:
    """``out/name``: the proposals of the step before on the training images (resumes image by image;
    each process of a torchrun run writes its share)."""
    from rcnn_cli.data import open_dataset
    from rcnn_cli.locks import FolderLock
    from rcnn_cli.progress import Reporter
    from rcnn_cli.proposals.registry import ProposalSettings, build_method
    from rcnn_cli.proposals.runner import run_proposals
    from rcnn_cli.proposals.storage import ProposalStore, shard_items

    model = out / PROPOSALS_FROM[name] / "model.pt"
    settings = ProposalSettings(
        "rpn", model=str(model), rpn_layer=dict(TRAINING_PROPOSALS), max_proposals=0, device=str(device)
    )
    method = build_method(settings)
    dataset = open_dataset(spec.dataset, spec.split, max_pixels=spec.max_pixels, image_root=spec.image_root)
    records = shard_items(dataset.records, info.rank, info.world_size)
    folder = out / name
    store = ProposalStore(folder)
    params = {"method": method.name, **method.params()}
    quiet = verbosity if info.is_main else 0
    with FolderLock(folder) as lock, Reporter(name, total=len(records), verbosity=quiet) as report:
        store.prepare(params, [r.image_id for r in dataset.records], overwrite=False, lock=lock.shared())
        summary = run_proposals(method, records, store, on_result=lambda _r: report.advance())
    if summary.written:
        log(f"{name}: {len(summary.written)} images, {summary.boxes_per_image:.0f} boxes/img from {model}")
    distributed.barrier(info)
