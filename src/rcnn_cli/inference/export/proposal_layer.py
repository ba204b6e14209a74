"""Faster R-CNN's proposal layer (§3.1) written so that it can be exported: the same proposals as
:func:`rcnn_cli.rpn.proposal_layer.propose_boxes`, in operations whose shapes a graph can carry.

The proposal layer used in training and ``rcnn detect`` *drops* the boxes that are too small before it
ranks the rest, and ranks with ``topk`` then a sort of the few at or above the cut-off: both steps make
the number of boxes depend on the data at once, and the second branches in Python on a size. Here the
small boxes are *masked* instead (their logit −∞), so that every step up to NMS keeps all A anchors:

1. decode the deltas at the anchors, clip to the scaled image (its H, W are the graph's);
2. a box narrower or lower than ``min_size`` (or without area) gets the logit −∞;
3. a stable descending sort of the logits, the first ``pre_nms_top_n`` (ONNX ``TopK``, whose ties go
   to the lower index, as a stable sort's do) — the masked boxes come last;
4. NMS at ``nms_iou`` on the logits themselves (ONNX ``NonMaxSuppression``; a sigmoid would make the
   best boxes' scores equal at 1.0 in float32, and their order then hang on tie-breaking);
5. the kept boxes that were not masked, the first ``post_nms_top_n`` of them.

Steps 2-3 keep the same boxes in the same order as dropping first would: the masked ones sort after
every real logit, and NMS visits them last, so they suppress nothing before step 5 removes them.
tests/inference/test_export_proposals.py holds the two layers equal, ties and masked boxes included.
Shapes: A anchors, P proposals.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rcnn_cli.ops.nms import nms
from rcnn_cli.rpn.loss import RPN_BOX_CODER
from rcnn_cli.rpn.settings import ProposalLayerConfig


def proposals_in_graph(
    anchors: Tensor, logits: Tensor, deltas: Tensor, height: int, width: int, config: ProposalLayerConfig
) -> Tensor:
    """Proposals Tensor[P, 4] (xyxy pixels of the scaled image), best first.

    Args:
        anchors: ``Tensor[A, 4]``; logits: ``Tensor[A]`` objectness; deltas: ``Tensor[A, 4]`` (one image).
        height, width: the scaled image's size (symbols while exporting: ints or SymInts).
        config: the model's test-time proposal layer.
    """
    boxes = RPN_BOX_CODER.decode(deltas.to(anchors.dtype), anchors)  # Tensor[A, 4]
    x1, y1, x2, y2 = boxes.clamp(min=0).unbind(1)
    # The upper bounds as tensors made from the image's size, so that an export keeps them symbolic.
    x2 = torch.minimum(x2, torch.full_like(x2, 1.0) * width)
    y2 = torch.minimum(y2, torch.full_like(y2, 1.0) * height)
    x1 = torch.minimum(x1, torch.full_like(x1, 1.0) * width)
    y1 = torch.minimum(y1, torch.full_like(y1, 1.0) * height)
    boxes = torch.stack((x1, y1, x2, y2), dim=1)
    w, h = x2 - x1, y2 - y1
    real = (w >= config.min_size) & (h >= config.min_size) & (w > 0) & (h > 0)
    masked = torch.where(real, logits, torch.full_like(logits, float("-inf")))
    ranked, order = masked.sort(descending=True, stable=True)
    ranked, order = ranked[: config.pre_nms_top_n], order[: config.pre_nms_top_n]
    boxes = boxes[order]
    kept = nms(boxes, ranked, config.nms_iou)
    kept = kept[torch.isfinite(ranked[kept])][: config.post_nms_top_n]
    return boxes[kept]
