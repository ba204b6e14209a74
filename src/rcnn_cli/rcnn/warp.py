"""R-CNN's region warping (Girshick et al. 2014, §2.1 and appendix A): each proposal is dilated so that
the warped window holds ``p`` pixels of context around the box, then warped anisotropically (no
regard for the aspect ratio) to the network's fixed input size S×S.

Appendix A "warp": the box is enlarged about its centre by S / (S − 2p), so that after warping it
covers the window minus ``p`` pixels on every side. Where the enlarged box reaches past the image, the
released code (``rcnn_im_crop.m``) fills the missing part with the mean pixel; after normalization the
mean pixel is 0, so sampling with zeros outside the image is the same thing (``grid_sample`` with
``padding_mode="zeros"``). Sampling is bilinear at the centre of every output pixel.

Shapes: R regions, S the warped size, H×W the (normalized) image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def context_boxes(boxes: Tensor, size: int, padding: int) -> Tensor:
    """boxes Tensor[R, 4] ``x1 y1 x2 y2`` -> the enlarged boxes Tensor[R, 4] whose warp to size×size
    puts the original box ``padding`` pixels inside every edge (same centre)."""
    if not 0 <= 2 * padding < size:
        raise ValueError(f"context padding {padding} leaves nothing of a {size}x{size} window")
    factor = size / (size - 2 * padding)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) / 2 * factor
    return torch.cat([centre - half, centre + half], dim=1)


def warp_regions(image: Tensor, boxes: Tensor, size: int, padding: int = 16) -> Tensor:
    """image Tensor[3, H, W] (normalized: 0 is the mean pixel), boxes Tensor[R, 4] in its pixels ->
    the warped windows Tensor[R, 3, size, size]; outside the image, the mean pixel (0).

    Output pixel (i, j) of region r samples the image at x = X1 + (j + ½)·(X2 − X1)/S, likewise y,
    where (X1, Y1, X2, Y2) is the context box (:func:`context_boxes`).
    """
    if boxes.numel() == 0:
        return image.new_zeros((0, image.shape[0], size, size))
    outer = context_boxes(boxes.to(image.dtype), size, padding)
    height, width = image.shape[-2:]
    steps = (torch.arange(size, dtype=image.dtype, device=image.device) + 0.5) / size  # [S]
    xs = outer[:, 0:1] + steps * (outer[:, 2:3] - outer[:, 0:1])  # [R, S] image x of each column
    ys = outer[:, 1:2] + steps * (outer[:, 3:4] - outer[:, 1:2])  # [R, S] image y of each row
    # grid_sample's normalized coordinates with align_corners=False: -1 and 1 are the image's outer
    # edges, so pixel x maps to 2x/W - 1.
    gx = (2 * xs / width - 1)[:, None, :].expand(-1, size, -1)
    gy = (2 * ys / height - 1)[:, :, None].expand(-1, -1, size)
    # One image, so one sampling grid of R·S rows: the windows stacked vertically, the image never
    # copied per region. -1, not len(boxes): a traced or exported graph keeps R free.
    grid = torch.stack([gx, gy], dim=-1).reshape(1, -1, size, 2)
    out = F.grid_sample(image[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out[0].reshape(image.shape[0], -1, size, size).transpose(0, 1).contiguous()
