"""SPPnet's multi-scale feature extraction (He et al. 2014, §4.2 "Multi-Scale Feature Extraction"):
the image is resized to several scales S = {480, 576, 688, 864, 1200} (shorter side, longer side at
most 2000) and conv5 is computed once at each. Each candidate window is then pooled from a single
scale s ∈ S, the one at which "the scaled candidate window has a number of pixels closest to
224×224", the size of the network's pre-training crops; so small windows are read from the large
scales and large windows from the small ones.

Shapes: R windows (boxes, x1 y1 x2 y2 in pixels of the original image), S scales, C channels, D pooled
values per window. ``im_scales`` are the factors that took the original image to each scale (the
``im_scale`` of :func:`rcnn_cli.models.preprocess.prepare_image`), so a window of area A has area
A·s² at scale s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

#: The pre-training crop of the ImageNet networks, 224×224 pixels: the size each window is read at.
TARGET_AREA = 224.0**2


def assign_scales(boxes: Tensor, im_scales: Sequence[float], target_area: float = TARGET_AREA) -> Tensor:
    """The scale each window is pooled at: argmin over s of |area·s² − ``target_area``|.

    Args:
        boxes: Tensor[R, 4] ``x1, y1, x2, y2`` in original-image pixels.
        im_scales: the S factors s from original-image pixels to each scale's image.
        target_area: pixels the scaled window should have (224² as in SPPnet).

    Returns:
        Tensor[R] int64, indices into ``im_scales``. On a tie the earlier scale wins (a window that
        lies exactly between two scales, or an empty window, for which every scale is as far).
    """
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must be Tensor[R, 4], got shape {tuple(boxes.shape)}")
    if not im_scales:
        raise ValueError("im_scales is empty: give at least one scale")
    # float64: the distances of a window halfway between two scales compare equal, and the tie rule
    # decides, not float32 rounding of area·s².
    b = boxes.detach().to(torch.float64)
    area = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)  # [R]
    s = torch.tensor([float(v) for v in im_scales], dtype=torch.float64, device=b.device)  # [S]
    distance = (area[:, None] * s[None, :] ** 2 - target_area).abs()  # [R, S]
    return distance.argmin(dim=1)  # torch.argmin returns the first of equal minima


def pool_at_assigned_scales(
    pool: Callable[[Tensor, Tensor], Tensor],
    maps: Sequence[Tensor],
    im_scales: Sequence[float],
    boxes: Tensor,
    target_area: float = TARGET_AREA,
) -> Tensor:
    """Pool each window from the conv map of its assigned scale (:func:`assign_scales`).

    Args:
        pool: (features Tensor[1, C, h, w], rois Tensor[K, 5] ``(0, x1, y1, x2, y2)`` in pixels of that
            scale's image) -> Tensor[K, ...]; e.g. a model's ``head.pool`` (SPP or RoI pooling, which
            apply their own ``spatial_scale``).
        maps: S conv maps, Tensor[1, C, h_s, w_s] each, of the image at each scale.
        im_scales: the S factors s of those images (original pixels · s = pixels of scale s).
        boxes: Tensor[R, 4] in original-image pixels.
        target_area: as in :func:`assign_scales`.

    Returns:
        Tensor[R, D], row r the pooled (flattened) features of ``boxes[r]``, in the boxes' order. With a
        single scale this is ``pool(maps[0], rois).flatten(1)`` for rois ``(0, boxes · s)``, the same
        numbers as pooling directly.
    """
    if len(maps) != len(im_scales):
        raise ValueError(f"{len(maps)} maps but {len(im_scales)} im_scales: give one scale per map")
    assigned = assign_scales(boxes, im_scales, target_area).to(boxes.device)
    pieces: list[Tensor] = []
    picked: list[Tensor] = []
    for index, (features, scale) in enumerate(zip(maps, im_scales, strict=True)):
        rows = torch.nonzero(assigned == index).flatten()
        if rows.numel() == 0 and (pieces or index < len(maps) - 1):
            continue  # nothing to pool here (the last map pools zero rows so that D is known)
        chosen = boxes[rows]
        # Python float times float32 boxes, as the single-scale training step scales its RoIs.
        rois = torch.cat([chosen.new_zeros((len(chosen), 1)), chosen * float(scale)], dim=1)
        pieces.append(pool(features, rois.to(features.dtype)).flatten(1))
        picked.append(rows)
    order = torch.cat(picked)  # pooled row i belongs to window order[i]
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(len(order), device=order.device)
    return torch.cat(pieces)[inverse]
