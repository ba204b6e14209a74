"""A fixed workload of one RoI op, to time two builds of the kernels against each other as whole processes.

Two builds cannot be loaded in one process (both register the ``rcnn_cli`` ops), so the comparison runs
each in its own process, in turn, e.g.::

    farm-bench -n 5 --vs "env PYTHONPATH=OLD/src OMP_NUM_THREADS=1 python bench/op_workload.py roi" \\
        -- env PYTHONPATH=src OMP_NUM_THREADS=1 python bench/op_workload.py roi

OP is ``roi``, ``spp`` or ``align`` (forward + backward) or ``infer`` (roi_pool under inference_mode),
four passes at 2000 RoIs over VGG16 conv5 maps of two 600x800 images ([2, 512, 38, 50], stride 16).
"""

from __future__ import annotations

import argparse

import torch

from rcnn_cli import ops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("op", choices=["roi", "spp", "align", "infer"])
    parser.add_argument("--passes", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    features = torch.rand(2, 512, 38, 50, generator=g)
    n = 2000
    corner = torch.rand(n, 2, generator=g) * torch.tensor([700.0, 500.0])
    size = 16 + torch.rand(n, 2, generator=g) * 300
    batch = torch.randint(0, 2, (n, 1), generator=g).float()
    rois = torch.cat([batch, corner, (corner + size).clamp(max=799)], 1)
    for _ in range(args.passes):
        if args.op == "infer":
            with torch.inference_mode():
                ops.roi_pool(features, rois, (7, 7), 1 / 16)
            continue
        x = features.clone().requires_grad_()
        if args.op == "roi":
            out = ops.roi_pool(x, rois, (7, 7), 1 / 16)
        elif args.op == "spp":
            out = ops.spp_pool(x, rois, (6, 3, 2, 1), 1 / 16)
        else:
            out = ops.roi_align(x, rois, (7, 7), 1 / 16, 2, True)
        out.backward(torch.ones_like(out))


if __name__ == "__main__":
    main()
