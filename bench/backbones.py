"""Backbones side by side at the small recipe's scale (shorter side 400, longer ≤ 700): the network's time
for one training iteration (N = 2 images, R = 128 RoIs, forward + backward + SGD step) and for one
test image (2000 RoIs, forward), every backbone in this one process, round-robin, best of ``--repeat``
(peers of a ratio see the same machine load). Random weights: only the time is measured; data loading
and sampling are left out (they are the same for every backbone).

    OMP_NUM_THREADS=1 python bench/backbones.py --backbones small,resnet18,resnet50,vgg16 --repeat 3
"""

from __future__ import annotations

import argparse
import time

import torch


def rois(count: int, images: int, height: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """Tensor[count, 5] proposals of 16 px to 70% of the image, inside it."""
    w = 16 + torch.rand(count, generator=generator) * (0.7 * width - 16)
    h = 16 + torch.rand(count, generator=generator) * (0.7 * height - 16)
    x1 = torch.rand(count, generator=generator) * (width - w)
    y1 = torch.rand(count, generator=generator) * (height - h)
    batch = torch.randint(images, (count,), generator=generator).float()
    return torch.stack([batch, x1, y1, x1 + w, y1 + h], dim=1)


def main() -> None:
    from rcnn_cli.models import FastRCNN, default_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default="small,resnet18,resnet50")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--height", type=int, default=400)
    parser.add_argument("--width", type=int, default=533)
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    names = args.backbones.split(",")
    models = {name: FastRCNN(default_config(name, 3)) for name in names}
    optimizers = {
        name: torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=1e-4)
        for name, m in models.items()
    }
    for model in models.values():  # the default of rcnn train: ResNet's conv1 and res2 stay fixed
        model.backbone.freeze_below(model.backbone.spec.frozen_below)
    train_images = torch.randn(2, 3, args.height, args.width, generator=generator)
    train_rois = rois(128, 2, args.height, args.width, generator)
    test_image = torch.randn(1, 3, args.height, args.width, generator=generator)
    test_rois = rois(2000, 1, args.height, args.width, generator)
    best = {name: [float("inf"), float("inf")] for name in names}
    for _ in range(args.repeat):
        for name, model in models.items():
            model.train()
            start = time.perf_counter()
            logits, deltas = model(train_images, train_rois)
            (logits.logsumexp(1).mean() + deltas.square().mean()).backward()
            optimizers[name].step()
            optimizers[name].zero_grad(set_to_none=True)
            best[name][0] = min(best[name][0], time.perf_counter() - start)
            model.eval()
            start = time.perf_counter()
            with torch.inference_mode():
                model(test_image, test_rois)
            best[name][1] = min(best[name][1], time.perf_counter() - start)
    print(f"{args.height}x{args.width}, {torch.get_num_threads()} thread(s), best of {args.repeat}")
    header = ("backbone", "train s/it", "test ms/img", "train vs small", "test vs small")
    width = max(len(header[0]), *(len(name) for name in best))  # names line up with their numbers
    print(f"{header[0]:{width}s} {header[1]:>10s} {header[2]:>12s} {header[3]:>15s} {header[4]:>14s}")
    base = best.get("small")
    for name, (train_s, test_s) in best.items():
        train_ratio = f"{train_s / base[0]:.1f}x" if base else "-"
        test_ratio = f"{test_s / base[1]:.1f}x" if base else "-"
        print(f"{name:{width}s} {train_s:10.3f} {1000 * test_s:12.0f} {train_ratio:>15s} {test_ratio:>14s}")


if __name__ == "__main__":
    main()
