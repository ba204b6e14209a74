"""Speed of the compiled RoI ops against plain PyTorch (and torchvision where it imports).

Sizes of Fast R-CNN with VGG16: conv5 features [2, 512, 38, 50] (two 600x800 images at
stride 16), 128 RoIs (a training minibatch) and 2000 RoIs (test-time proposals), 7x7
RoI pooling; SPPnet pyramid (6, 3, 2, 1); NMS of 6000 boxes (RPN pre-NMS top-N).

    .venv/bin/python bench/ops.py [--threads 2] [--repeat 5] [--device cpu|cuda]

Prints best-of-N times and ratios; ratio > 1 means ours is faster. Each kernel row also
prints its minimum memory traffic (bench/ops_traffic.py) as bytes/time against the copy
bandwidth measured at the start, so that the distance to the memory limit is visible. On CPU the baseline
is a per-RoI ``adaptive_max_pool2d`` loop over the rounded RoI crop, the way RoI
pooling is usually written in plain PyTorch.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ops_traffic import copy_bandwidth, max_pool_bytes, nms_bytes, roi_align_bytes, traffic_note
from rcnn_cli.ops import nms, roi_align, roi_pool, spp_pool

IMAGE_HEIGHT, IMAGE_WIDTH = 600, 800
SCALE = 1 / 16
LEVELS = (6, 3, 2, 1)


def proposals(num: int, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """Tensor[num, 5] RoIs shaped like selective-search proposals: 16..560 px sides, inside the image."""
    w = 16 + torch.rand(num, generator=generator) * (0.7 * IMAGE_WIDTH - 16)
    h = 16 + torch.rand(num, generator=generator) * (0.7 * IMAGE_HEIGHT - 16)
    x1 = torch.rand(num, generator=generator) * (IMAGE_WIDTH - w)
    y1 = torch.rand(num, generator=generator) * (IMAGE_HEIGHT - h)
    batch = torch.randint(batch_size, (num,), generator=generator).float()
    return torch.stack([batch, x1, y1, x1 + w, y1 + h], dim=1)


def loop_roi_pool(features: torch.Tensor, rois: torch.Tensor, size: int) -> torch.Tensor:
    """Baseline: crop each rounded RoI and adaptive_max_pool2d it, one RoI at a time."""
    height, width = features.shape[-2:]
    out = []
    for n, x1, y1, x2, y2 in rois.tolist():
        c1, r1 = min(max(round(x1 * SCALE), 0), width - 1), min(max(round(y1 * SCALE), 0), height - 1)
        c2, r2 = min(max(round(x2 * SCALE), c1), width - 1), min(max(round(y2 * SCALE), r1), height - 1)
        crop = features[int(n), :, r1 : r2 + 1, c1 : c2 + 1]
        out.append(F.adaptive_max_pool2d(crop, size))
    return torch.stack(out)


def greedy_nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Baseline: NMS in plain PyTorch, one kept box per step over a full IoU matrix."""
    order = scores.argsort(descending=True, stable=True)
    b = boxes[order]
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.maximum(b[:, None, :2], b[None, :, :2])
    rb = torch.minimum(b[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=2)
    iou = inter / (area[:, None] + area[None, :] - inter)
    alive = torch.ones(len(b), dtype=torch.bool, device=b.device)
    keep = []
    for i in range(len(b)):
        if alive[i]:
            keep.append(i)
            alive &= ~(iou[i] > iou_threshold)
    return order[keep]


def timed(fn: Callable[[], object], repeat: int, device: str, warmup: bool = True) -> float:
    """Best wall time of fn() over ``repeat`` calls, in milliseconds (after one warm-up call)."""
    return interleaved({"fn": fn}, repeat, device, warmup)["fn"]


def interleaved(fns: dict[str, Callable[[], object]], rounds: int, device: str, warmup: bool = True) -> dict:
    """Best wall time (ms) of each function, calling them in turn for ``rounds`` rounds.

    The minimum, not the median: on a shared machine other processes only ever add
    time, so the best run is the closest to the kernel's own cost. Interleaving makes
    the peers of a ratio see the same machine load.
    """
    if warmup:
        for fn in fns.values():
            fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            if device == "cuda":
                torch.cuda.synchronize()
            best[name] = min(best[name], (time.perf_counter() - start) * 1e3)
    return best


def forward_backward(
    pool: Callable[[torch.Tensor], torch.Tensor], features: torch.Tensor
) -> Callable[[], None]:
    def run() -> None:
        x = features.detach().requires_grad_()
        out = pool(x)
        out.backward(torch.ones_like(out))

    return run


def torchvision_ops():
    try:
        import torchvision.ops as tv  # only where torchvision imports (not on the CPU dev box)
    except Exception:
        return None
    return tv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = args.device
    g = torch.Generator().manual_seed(0)
    features = torch.randn(2, 512, 38, 50, generator=g).to(device)
    tv = torchvision_ops()
    threads = torch.get_num_threads()
    print(f"device={device} threads={threads} features={tuple(features.shape)} torch={torch.__version__}")
    print(f"torchvision: {'yes' if tv else 'not importable, columns omitted'}")
    bandwidth = copy_bandwidth(device)
    print(f"copy bandwidth: {bandwidth / 1e9:.2f} GB/s (256 MB float32 copy_, read + write, best of 5)")
    shape = tuple(features.shape)

    rows: list[tuple[str, float, str]] = []

    def row(name: str, ms: float, note: str = "", traffic: int = 0) -> None:
        """One line; traffic > 0: the row's minimum bytes, printed as achieved GB/s against the copy."""
        if traffic:
            note = f"{note}{'; ' if note else ''}{traffic_note(traffic, ms, bandwidth)}"
        rows.append((name, ms, note))
        print(f"{name:<48} {ms:10.2f} ms  {note}", flush=True)

    for num in (128, 2000):
        rois = proposals(num, 2, g).to(device)
        peers = {
            "roi_pool": lambda r=rois: roi_pool(r[0], r[1], 7, SCALE),
            "spp_pool": lambda r=rois: spp_pool(r[0], r[1], LEVELS, SCALE),
            "per_level": lambda r=rois: torch.cat(
                [roi_pool(r[0], r[1], lv, SCALE).flatten(1) for lv in LEVELS], 1
            ),
            "roi_align": lambda r=rois: roi_align(r[0], r[1], 7, SCALE, 2, True),
        }
        if tv:
            peers["tv_roi_pool"] = lambda r=rois: tv.roi_pool(r[0], r[1], 7, SCALE)
            peers["tv_roi_align"] = lambda r=rois: tv.roi_align(r[0], r[1], 7, SCALE, 2, True)
        fns = {
            name: forward_backward(lambda x, pool=pool, r=rois: pool((x, r)), features)
            for name, pool in peers.items()
        }
        t = interleaved(fns, args.repeat, device)
        ours = t["roi_pool"]
        pool_bytes = max_pool_bytes(shape, num, 49)
        spp_bytes = max_pool_bytes(shape, num, sum(lv * lv for lv in LEVELS))
        align_bytes = roi_align_bytes(shape, num, 49)
        row(f"roi_pool 7x7 fwd+bwd, {num} RoIs", ours, traffic=pool_bytes)
        if device == "cpu":
            # The loop takes seconds at 2000 RoIs: there, time it once without warm-up.
            loop_fn = forward_backward(lambda x, r=rois: loop_roi_pool(x, r, 7), features)
            loop = timed(loop_fn, 3, device) if num <= 128 else timed(loop_fn, 1, device, warmup=False)
            row(f"  adaptive_max_pool2d loop fwd+bwd, {num} RoIs", loop, f"ours {loop / ours:.1f}x faster")
        if tv:
            row(
                f"  torchvision roi_pool fwd+bwd, {num} RoIs",
                t["tv_roi_pool"],
                f"ours {t['tv_roi_pool'] / ours:.2f}x faster",
                pool_bytes,
            )
        row(
            f"spp_pool {LEVELS} fwd+bwd, {num} RoIs",
            t["spp_pool"],
            f"{t['spp_pool'] / ours:.2f}x one 7x7 roi_pool",
            spp_bytes,
        )
        row(
            f"  4 separate roi_pool calls + cat, {num} RoIs",
            t["per_level"],
            f"spp {t['per_level'] / t['spp_pool']:.2f}x faster",
        )
        row(f"roi_align 7x7 sr=2 fwd+bwd, {num} RoIs", t["roi_align"], traffic=align_bytes)
        if tv:
            ratio = t["tv_roi_align"] / t["roi_align"]
            row(
                f"  torchvision roi_align fwd+bwd, {num} RoIs",
                t["tv_roi_align"],
                f"ours {ratio:.2f}x faster",
                align_bytes,
            )

    # Test time: forward only, no gradient, as in `rcnn detect`. On the CPU the wrappers then skip the
    # argmax (rcnn_cli::_roi_max_pool_values); the "with argmax" rows call the training-time op directly.
    rois = proposals(2000, 2, g).to(device)
    ops = torch.ops.rcnn_cli
    grids = [side for level in LEVELS for side in (level, level)]
    inference = {
        "roi_pool": lambda: roi_pool(features, rois, 7, SCALE),
        "roi_pool_argmax": lambda: ops.roi_pool(features, rois, SCALE, 7, 7),
        "spp_pool": lambda: spp_pool(features, rois, LEVELS, SCALE),
        "spp_pool_argmax": lambda: ops.spp_pool(features, rois, SCALE, list(LEVELS)),
    }
    if tv:
        inference["tv_roi_pool"] = lambda: tv.roi_pool(features, rois, 7, SCALE)
    with torch.inference_mode():
        t = interleaved(inference, args.repeat, device)
        same = torch.equal(roi_pool(features, rois, 7, SCALE), ops.roi_pool(features, rois, SCALE, 7, 7)[0])
        same &= torch.equal(
            ops._roi_max_pool_values(features, rois, SCALE, grids), spp_pool(features, rois, LEVELS, SCALE)
        )
    row(
        "roi_pool 7x7 inference forward, 2000 RoIs",
        t["roi_pool"],
        "identical outputs" if same else "OUTPUTS DIFFER",
        max_pool_bytes(shape, 2000, 49, backward=False),
    )
    row(
        "  the same with argmax (training op)",
        t["roi_pool_argmax"],
        f"inference {t['roi_pool_argmax'] / t['roi_pool']:.2f}x faster",
        max_pool_bytes(shape, 2000, 49, backward=False) + 2000 * shape[1] * 49 * 4,
    )
    if tv:
        row(
            "  torchvision roi_pool forward",
            t["tv_roi_pool"],
            f"ours {t['tv_roi_pool'] / t['roi_pool']:.2f}x faster",
            max_pool_bytes(shape, 2000, 49, backward=False) + 2000 * shape[1] * 49 * 4,
        )
    spp_bins = sum(lv * lv for lv in LEVELS)
    spp_values = max_pool_bytes(shape, 2000, spp_bins, backward=False)
    row(f"spp_pool {LEVELS} inference forward, 2000 RoIs", t["spp_pool"], traffic=spp_values)
    row(
        "  the same with argmax (training op)",
        t["spp_pool_argmax"],
        f"inference {t['spp_pool_argmax'] / t['spp_pool']:.2f}x faster",
        spp_values + 2000 * shape[1] * spp_bins * 4,
    )

    boxes = proposals(6000, 1, g)[:, 1:].to(device)
    scores = torch.rand(6000, generator=g).to(device)
    fns = {"ours": lambda: nms(boxes, scores, 0.7), "greedy": lambda: greedy_nms(boxes, scores, 0.7)}
    if tv:
        fns["tv"] = lambda: tv.nms(boxes, scores, 0.7)
    t = interleaved(fns, args.repeat, device)
    kept = len(nms(boxes, scores, 0.7))
    row("nms 6000 boxes, IoU 0.7", t["ours"], f"{kept} kept", nms_bytes(6000, kept))
    row(
        "  PyTorch greedy loop over an IoU matrix", t["greedy"], f"ours {t['greedy'] / t['ours']:.1f}x faster"
    )
    if tv:
        row(
            "  torchvision nms 6000 boxes",
            t["tv"],
            f"ours {t['tv'] / t['ours']:.2f}x faster",
            nms_bytes(6000, kept),
        )


if __name__ == "__main__":
    main()
