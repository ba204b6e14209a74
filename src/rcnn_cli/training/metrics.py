"""What training reports per iteration: the sums over a minibatch's images, the row they make (averaged
over DDP ranks), and ``metrics.jsonl``, one JSON row per iteration written by rank 0.

A row: ``iter``, ``lr`` (the lr of that step), ``loss`` = ``loss_cls`` + λ ``loss_loc`` (each already
divided by the minibatch's R RoIs), ``accuracy`` of the head on the RoIs, ``fg``/``bg`` RoI counts,
``images_per_s``, and ``images`` (this rank's image ids; the trainer keeps them out of the file).
When an RPN trains (Faster R-CNN), ``loss`` adds the RPN's loss (``loss_rpn_cls`` + ``loss_rpn_reg``,
each the mean over the minibatch's images) and the row has ``rpn_accuracy`` on the sampled anchors.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import torch
from torch import Tensor

from rcnn_cli.artifacts import atomic_write_bytes
from rcnn_cli.models.losses import LossParts
from rcnn_cli.training import distributed


@dataclass
class LossSums:
    """Running sums over the images of one minibatch (the ``rpn_*`` ones when an RPN trains)."""

    loss: float = 0.0
    loss_cls: float = 0.0
    loss_loc: float = 0.0
    correct: float = 0.0  # RoIs whose top class is their label
    fg: int = 0
    bg: int = 0
    loss_rpn_cls: float = 0.0
    loss_rpn_reg: float = 0.0
    rpn_correct: float = 0.0  # sampled anchors whose objectness has the sign of their label
    rpn_sampled: int = 0
    rpn_images: int = 0

    def add(self, total: float, parts: LossParts, labels: Tensor) -> None:
        """One image: its loss ``total`` (= ``parts.total``, already read out), its parts, labels u [S]."""
        self.loss += total
        self.add_head(parts, labels)

    def add_head(self, parts: LossParts, labels: Tensor) -> None:
        """The detection head's share of one image: its loss parts and RoI labels u [S]."""
        self.loss_cls += parts.cls.item()
        self.loss_loc += parts.loc.item()
        self.correct += parts.accuracy * len(labels)
        self.fg += int((labels > 0).sum())
        self.bg += int((labels == 0).sum())

    def add_rpn(self, total: float, rpn: Any, num_images: int) -> None:
        """One image of RPN training: its whole loss ``total`` (RPN and head) and the RPN's parts
        (:class:`rcnn_cli.rpn.network.RPNLoss`), which count 1/``num_images`` in the minibatch's loss."""
        self.loss += total
        self.loss_rpn_cls += rpn.cls.item() / num_images
        self.loss_rpn_reg += rpn.reg.item() / num_images
        self.rpn_correct += rpn.accuracy * rpn.sampled
        self.rpn_sampled += rpn.sampled
        self.rpn_images += 1


def metrics_row(
    iteration: int,
    lr: float,
    sums: LossSums,
    images: list[str],
    started: float,
    info: distributed.DistInfo,
    device: torch.device,
) -> dict[str, Any]:
    """The row of one iteration that began at ``time.perf_counter()`` = ``started``; losses, accuracy
    and counts are the mean over the DDP ranks. RPN training adds ``loss_rpn_cls``, ``loss_rpn_reg``
    and ``rpn_accuracy`` (on the sampled anchors)."""
    rois = sums.fg + sums.bg
    values = [
        sums.loss,
        sums.loss_cls,
        sums.loss_loc,
        sums.correct / max(rois, 1),
        float(sums.fg),
        float(sums.bg),
        sums.loss_rpn_cls,
        sums.loss_rpn_reg,
        sums.rpn_correct / max(sums.rpn_sampled, 1),
    ]
    loss, loss_cls, loss_loc, acc, fg, bg, rpn_cls, rpn_reg, rpn_acc = distributed.mean_over_ranks(
        values, info, device
    )
    seconds = time.perf_counter() - started
    row = {
        "iter": iteration,
        "lr": lr,
        "loss": loss,
        "loss_cls": loss_cls,
        "loss_loc": loss_loc,
        "accuracy": acc,
        "fg": fg,
        "bg": bg,
    }
    if sums.rpn_images:
        row.update(loss_rpn_cls=rpn_cls, loss_rpn_reg=rpn_reg, rpn_accuracy=rpn_acc)
    row.update(images_per_s=len(images) * info.world_size / max(seconds, 1e-9), images=images)
    return row


def progress_text(row: dict[str, Any]) -> str:
    """The row as the progress line shows it (the head's part only when the head trains)."""
    text = f"loss {row['loss']:.3f} "
    if "rpn_accuracy" in row:
        text += f"rpn {row['loss_rpn_cls']:.3f}+{row['loss_rpn_reg']:.3f} (acc {row['rpn_accuracy']:.2f}) "
    if row["fg"] + row["bg"] > 0:
        text += f"head {row['loss_cls']:.3f}+{row['loss_loc']:.3f} (acc {row['accuracy']:.2f}) "
    return text + f"{row['images_per_s']:.1f} img/s"


class MetricsLog:
    """``metrics.jsonl`` in a run folder, appended to (and flushed) row by row; a no-op unless
    ``enabled`` (rank 0). Use :meth:`continuing_from` as a context manager around the loop."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path = path
        self.enabled = enabled
        self._file: IO[str] | None = None

    def continuing_from(self, iteration: int) -> MetricsLog:
        """Keep the rows up to ``iteration`` and append after them, so that the file reads as one run.

        ``iteration`` is where training starts: 0 for a fresh start, which keeps no row (a run killed
        before its first checkpoint left rows 1, 2, ... that it will write again), the checkpoint's
        iteration on resume (rows written after the last checkpoint are written again too).
        """
        if self.enabled and self.path.is_file():
            kept = [line for line in self.path.read_text().splitlines() if _row_iteration(line) <= iteration]
            atomic_write_bytes(self.path, "".join(line + "\n" for line in kept).encode())
        return self

    def write(self, row: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(row) + "\n")
            self._file.flush()

    def __enter__(self) -> MetricsLog:
        if self.enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _row_iteration(line: str) -> float:
    """The ``iter`` of a line of ``metrics.jsonl``; infinite for a line that is not a row (blank, or cut
    short when a run was killed while writing it), so that it is never kept."""
    try:
        return float(json.loads(line)["iter"])
    except (ValueError, KeyError, TypeError):
        return float("inf")
