"""fc6 + fc7 time before and after truncated SVD, side by side in one process (Fast R-CNN §3.1).

By default a randomly initialized VGG16-size head (fc6 25088 -> 4096, fc7 4096 -> 4096) at the paper's
ranks (fc6 1024, fc7 256), timed with factorized layers of the right shapes (the time depends only on
the shapes; ``--factorize`` computes the real factors too, minutes on 2 cores for VGG16 size). With
--model, the fc layers of a checkpoint, factorized for real. mAP needs a trained model:
``rcnn evaluate --svd-sweep``.

    python bench/svd.py --rois 300 --repeats 5
    python bench/svd.py --model runs/bccd/model.pt --ranks fc6=128,fc7=32 --rois 2000
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from rcnn_cli.cli.options import parse_ranks
from rcnn_cli.inference.truncated_svd import compress_layers
from rcnn_cli.models.low_rank import apply_low_rank_structure


class Head(nn.Module):
    """fc6 -> ReLU -> fc7 -> ReLU, the part of Fast R-CNN that truncated SVD speeds up."""

    def __init__(self, fc6: nn.Module, fc7: nn.Module) -> None:
        super().__init__()
        self.fc6, self.fc7 = fc6, fc7

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc7(self.fc6(x).relu()).relu()


def median_seconds(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--model", help="a checkpoint; default: random VGG16-size fc6/fc7")
    parser.add_argument("--ranks", default="fc6=1024,fc7=256")
    parser.add_argument("--rois", type=int, default=300, help="RoIs per image (the paper: ~2000 proposals)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    parser.add_argument("--factorize", action="store_true", help="compute the real SVD factors")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.model:
        from rcnn_cli.models import load_checkpoint

        model, _ = load_checkpoint(args.model)
        head = Head(model.head.fc6, model.head.fc7)
    else:
        head = Head(nn.Linear(25088, 4096), nn.Linear(4096, 4096))
    head.eval()
    x = torch.rand(args.rois, head.fc6.in_features)
    with torch.inference_mode():
        before = median_seconds(lambda: head(x), args.repeats)
        reference = head(x)
    params_before = sum(p.numel() for p in head.parameters())
    ranks = parse_ranks(args.ranks)
    factorize = args.factorize or bool(args.model)
    if factorize:
        reports = compress_layers(head, ranks)
    else:
        apply_low_rank_structure(head, ranks)  # right shapes, random values: same time
        reports = []
    with torch.inference_mode():
        after = median_seconds(lambda: head(x), args.repeats)
        output_error = float((head(x) - reference).norm() / reference.norm())
    params_after = sum(p.numel() for p in head.parameters())
    print(f"rois={args.rois} threads={torch.get_num_threads()} repeats={args.repeats} ranks={args.ranks}")
    for r in reports:
        print(f"  {r.name} {r.shape[0]}x{r.shape[1]} -> rank {r.rank}: relative error {r.relative_error:.4f}")
    print(f"fc6+fc7 params  {params_before / 1e6:8.2f} M -> {params_after / 1e6:8.2f} M")
    print(f"fc6+fc7 time    {1000 * before:8.1f} ms -> {1000 * after:8.1f} ms per image")
    print(f"ratio after/before {after / before:.3f}  (time cut {100 * (1 - after / before):.1f}%)")
    if factorize:
        print(f"relative output change of fc7 {output_error:.4f}")


if __name__ == "__main__":
    main()
