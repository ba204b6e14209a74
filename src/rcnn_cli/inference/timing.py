"""Time per detection stage, like Fast R-CNN's Fig. 2 (where truncated SVD makes fc6/fc7 cheap).

The model's own ``head`` is run as it is; forward hooks on ``pool``, ``fc6`` and ``fc7`` time those
layers, and "head" is what remains of the head call (ReLU, dropout, cls_score, bbox_pred). On CUDA every
boundary synchronizes, so the numbers are real (and the whole run a little slower).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

#: "rpn" (the RPN head's convs) and "proposal_layer" (decode, NMS, top-N) are a Faster R-CNN's proposals;
#: "warp" (R-CNN's cropping and warping), "svm" and "bbox_regression" R-CNN's and SPPnet's.
STAGES = (
    "read",
    "proposals",
    "preprocess",
    "warp",
    "conv",
    "rpn",
    "proposal_layer",
    "roi_pool",
    "fc6",
    "fc7",
    "head",
    "svm",
    "bbox_regression",
    "nms",
)
PAPER_STAGES = ("proposals", "conv", "roi_pool", "fc6", "fc7", "head", "nms")
HOOKED = ("pool", "fc6", "fc7")
_STAGE_OF = {"pool": "roi_pool", "fc6": "fc6", "fc7": "fc7"}


def _sync(device: torch.device | None) -> None:
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


class StageTimer:
    """Accumulates seconds per stage over images. ``images`` counts the images timed."""

    def __init__(self, device: torch.device | None = None) -> None:
        self.device = device
        self.seconds: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self.images = 0

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        elapsed = [0.0]
        try:
            with _clock(self.device, elapsed):
                yield
        finally:
            self.add(name, elapsed[0])

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    @contextmanager
    def timed_head(self, head: nn.Module) -> Iterator[None]:
        """Time a call of ``head`` (a model's FastRCNNHead) inside, split into roi_pool / fc6 / fc7 /
        head by hooks on its ``pool``/``fc6``/``fc7`` children."""
        spent = {name: 0.0 for name in HOOKED}
        starts: dict[str, float] = {}
        handles = []
        for name in HOOKED:
            module = getattr(head, name, None)
            if not isinstance(module, nn.Module):
                continue

            def pre(_m: nn.Module, _args: Any, name: str = name) -> None:
                _sync(self.device)
                starts[name] = time.perf_counter()

            def post(_m: nn.Module, _args: Any, _out: Any, name: str = name) -> None:
                _sync(self.device)
                spent[name] += time.perf_counter() - starts.pop(name)

            handles.append(module.register_forward_pre_hook(pre))
            handles.append(module.register_forward_hook(post))
        total = [0.0]
        try:
            with _clock(self.device, total):
                yield
        finally:
            for handle in handles:
                handle.remove()
            for name, seconds in spent.items():
                self.add(_STAGE_OF[name], seconds)
            self.add("head", max(total[0] - sum(spent.values()), 0.0))

    def fc_seconds(self) -> float:
        return self.seconds["fc6"] + self.seconds["fc7"]

    def rows(self) -> list[dict[str, Any]]:
        """One row per stage that took time: total seconds, ms per image, share of the total."""
        total = sum(self.seconds.values()) or 1.0
        n = max(self.images, 1)
        return [
            {
                "stage": name,
                "total_s": round(seconds, 4),
                "ms_per_image": round(1000.0 * seconds / n, 2),
                "share_pct": round(100.0 * seconds / total, 1),
            }
            for name, seconds in self.seconds.items()
            if seconds > 0 or name in PAPER_STAGES
        ]

    def to_dict(self) -> dict[str, Any]:
        return {"images": self.images, "seconds": {k: round(v, 6) for k, v in self.seconds.items()}}


@contextmanager
def _clock(device: torch.device | None, elapsed: list[float]) -> Iterator[None]:
    """Seconds spent inside into ``elapsed[0]``, with the device synchronized at both ends (CUDA runs
    asynchronously: without it a stage would be charged for the work queued before it)."""
    _sync(device)
    start = time.perf_counter()
    try:
        yield
    finally:
        _sync(device)
        elapsed[0] = time.perf_counter() - start
