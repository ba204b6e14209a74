"""Runs a proposal method over a set of images into a proposals folder.

Images already in the folder are skipped (resume). ``workers`` > 1 spreads images over
processes, each single-threaded (one image per process is faster than threads inside
one image for Selective Search). A bad image is reported with its file name and skipped,
or stops the run (``on_error="stop"``); files already written are kept either way.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rcnn_cli.errors import DataError, RcnnError
from rcnn_cli.proposals.base import ProposalMethod
from rcnn_cli.proposals.storage import ProposalStore
from rcnn_cli.proposals.worker_lifetime import end_with_parent
from rcnn_cli.temporaries import remove_stale_temporaries

if TYPE_CHECKING:
    from rcnn_cli.data import ImageRecord


@dataclass(frozen=True)
class ImageResult:
    image_id: str
    path: str
    num_boxes: int = 0
    seconds: float = 0.0
    error: str | None = None


@dataclass
class RunSummary:
    """What a run did: images written now, found already done, and failed (with messages)."""

    written: list[ImageResult] = field(default_factory=list)
    existing: int = 0
    failed: list[ImageResult] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def seconds_per_image(self) -> float:
        return sum(r.seconds for r in self.written) / len(self.written) if self.written else float("nan")

    @property
    def boxes_per_image(self) -> float:
        return sum(r.num_boxes for r in self.written) / len(self.written) if self.written else float("nan")


def _init_worker(parent_pid: int) -> None:
    """Start of a worker process: it ends with the parent (even a killed one), and runs one thread."""
    end_with_parent(parent_pid)
    # One thread per process: workers, not threads, use the cores.
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def propose_one(method: ProposalMethod, record: ImageRecord, folder: str) -> ImageResult:
    """Read one image, run ``method``, write its file. Bad input becomes ``ImageResult.error``."""
    from rcnn_cli.data import read_record
    from rcnn_cli.fingerprints import Fingerprints

    fingerprint = ""
    try:
        with Fingerprints() as fingerprints:
            fingerprint = fingerprints.of_existing(record.path)
        image = read_record(record) if method.needs_image else None
        start = time.perf_counter()
        proposals = method.propose(image, record)
        seconds = time.perf_counter() - start
        height, width = image.shape[:2] if image is not None else (record.height, record.width)
        store = ProposalStore(folder)
        store.write(record.image_id, proposals, width, height, fingerprint)
        store.skip_path(record.image_id).unlink(missing_ok=True)  # skipped once, fine now
        return ImageResult(record.image_id, str(record.path), len(proposals), seconds)
    except RcnnError as exc:
        message = str(exc) if isinstance(exc, DataError) and exc.path else f"{record.path}: {exc}"
        if isinstance(exc, DataError):  # the image itself is bad: later stages skip it with this line
            ProposalStore(folder).record_skip(record.image_id, fingerprint, message)
        return ImageResult(record.image_id, str(record.path), error=message)


def run_proposals(
    method: ProposalMethod,
    records: Sequence[ImageRecord],
    store: ProposalStore,
    *,
    workers: int = 1,
    on_error: str = "skip",
    on_result: Callable[[ImageResult], None] | None = None,
    replace_foreign: bool = False,
) -> RunSummary:
    """Propose for every record not yet in ``store``; ``on_result`` sees each finished image.

    A file made from another image with the same id stops the run (ArtifactError naming it) unless
    ``replace_foreign``, when it is computed again."""
    from rcnn_cli.fingerprints import Fingerprints

    summary = RunSummary()
    start = time.perf_counter()
    remove_stale_temporaries(store.folder)  # what a killed run left half written
    todo = []

    def handle(result: ImageResult) -> None:
        (summary.failed if result.error else summary.written).append(result)
        if on_result is not None:
            on_result(result)
        if result.error and on_error == "stop":
            raise RcnnError(f"{result.error} (stopped; --on-error skip goes on past bad images)")

    with Fingerprints() as fingerprints:
        for record in records:
            # Only an image that has a file here is fingerprinted now (to check that file); the others
            # are fingerprinted where they are proposed, in the workers. An image skipped before is tried
            # again: the same bad bytes give the same line, and one that failed under other limits
            # (--max-pixels) may pass now.
            done = store.exists(record.image_id) and store.is_done(
                record.image_id, fingerprints.of_existing(record.path), replace_foreign
            )
            if done:
                summary.existing += 1
            else:
                todo.append(record)

    folder = str(store.folder)
    if workers <= 1 or len(todo) <= 1:
        for record in todo:
            handle(propose_one(method, record, folder))
    else:
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(
            workers, mp_context=context, initializer=_init_worker, initargs=(os.getpid(),)
        )
        with pool:
            pending: set[Future] = set()
            queue = iter(todo)
            try:
                # Keep a bounded number of images in flight so memory stays flat on large sets.
                for record in queue:
                    pending.add(pool.submit(propose_one, method, record, folder))
                    if len(pending) >= 2 * workers:
                        break
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        handle(future.result())
                        nxt = next(queue, None)
                        if nxt is not None:
                            pending.add(pool.submit(propose_one, method, nxt, folder))
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    summary.wall_seconds = time.perf_counter() - start
    return summary


def failed_paths(summary: RunSummary) -> list[Path]:
    return [Path(r.path) for r in summary.failed]
