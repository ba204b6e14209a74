"""The per-RoI head of ResNet's C4 Faster R-CNN (He et al. 2016, appendix A): RoI pooling to 14×14 on
res4's map, the network's last stage (``stage``: ResNet's res5, or MobileNetV3's stride-32 blocks; its
stride 2 gives 7×7), a global average, then the sibling ``cls_score`` and ``bbox_pred`` of Fast R-CNN.
It has no fc6/fc7: what acts on them (truncated SVD, R-CNN's and SPPnet's SVMs on fc7) does not apply,
and the commands say so.

The same interface as :class:`rcnn_cli.models.heads.FastRCNNHead` (``pool``, :meth:`pool_rois`,
:meth:`forward_pooled`, ``loss``, :meth:`scores_and_boxes`), so that training, detection and export
use it unchanged. Shapes: R RoIs, K classes, C4 and C5 the widths of res4 and res5.
"""

from __future__ import annotations

from torch import Tensor, nn

from rcnn_cli.models.heads import FastRCNNHead, init_predictors


class StageHead(nn.Module):
    """``pool`` (14×14) -> ``stage`` -> mean over the 7×7 cells -> ``cls_score`` (K+1), ``bbox_pred``
    (4·(K+1))."""

    def __init__(
        self,
        pool: nn.Module,
        stage: nn.Module,
        channels: int,
        out_channels: int,
        num_classes: int,
        output_size: int,
    ) -> None:
        """``channels``: C4, the pooled map's width; ``out_channels``: C5, the stage's; ``output_size``:
        S, the side of ``pool``'s grid."""
        super().__init__()
        self.pool = pool
        self.channels = int(channels)
        # A Python int, not read off the pooled tensor's shape: a traced export (TorchScript) would
        # turn that arithmetic into tensors.
        self.output_size = int(output_size)
        self.stage = stage
        self.cls_score = nn.Linear(out_channels, num_classes + 1)
        self.bbox_pred = nn.Linear(out_channels, 4 * (num_classes + 1))
        init_predictors(self.cls_score, self.bbox_pred)

    @property
    def num_classes(self) -> int:
        return self.cls_score.out_features - 1

    def forward(self, features: Tensor, rois: Tensor) -> tuple[Tensor, Tensor]:
        """features Tensor[N, C4, H', W'], rois Tensor[R, 5] -> (logits Tensor[R, K+1], deltas
        Tensor[R, 4·(K+1)])."""
        return self.forward_pooled(self.pool_rois(features, rois))

    def pool_rois(self, features: Tensor, rois: Tensor) -> Tensor:
        """The RoI-pooled 14×14 grids, flattened: Tensor[R, C4·196] (FastRCNNHead's layout)."""
        return self.pool(features, rois.to(features.dtype)).flatten(1)

    def forward_pooled(self, pooled: Tensor) -> tuple[Tensor, Tensor]:
        """pooled Tensor[R, C4·S²] (S = ``output_size``: 14 in the C4 design) -> (logits, deltas)."""
        side = self.output_size
        grid = pooled.unflatten(1, (self.channels, side, side))  # Tensor[R, C4, S, S]
        x = self.stage(grid).mean(dim=(2, 3))  # Tensor[R, C5]
        return self.cls_score(x), self.bbox_pred(x)

    loss = staticmethod(FastRCNNHead.loss)
    scores_and_boxes = staticmethod(FastRCNNHead.scores_and_boxes)


def head_stage(backbone: str) -> tuple[nn.Module, int]:
    """The per-RoI stage of a C4 ``backbone`` and its output width C5: ResNet's res5 (torchvision's
    ``layer4``), or MobileNetV3-Large's features.13 … 16."""
    if backbone == "mobilenet_v3_large":
        from rcnn_cli.models.mobilenet import HEAD_CHANNELS, mobilenet_tail

        return mobilenet_tail(), HEAD_CHANNELS
    from rcnn_cli.models.resnet import res5, res5_channels

    return res5(backbone), res5_channels(backbone)
