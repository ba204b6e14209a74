"""R-CNN (Girshick et al., CVPR 2014) and SPPnet (He et al., ECCV 2014) as detectors: the fine-tuned
network gives each region its pool5 and fc7 features; one linear SVM per class scores fc7, one ridge
regressor per class refines the box from pool5 (R-CNN appendix C).

How the features are read is the difference between the two (``config.method``):

- ``rcnn``: every region is cropped with context and warped to S×S (:mod:`rcnn_cli.rcnn.warp`) and
  runs through the conv layers on its own: R conv passes per image;
- ``sppnet``: the conv layers run once per image and the spatial pyramid pools each region from that
  map (the head's ``pool`` is :class:`rcnn_cli.ops.SPPPool`): one conv pass.

The network is a :class:`rcnn_cli.models.fast_rcnn.FastRCNN` (same state-dict keys; its softmax
``cls_score`` is what fine-tuning trained), plus the buffers of the post-hoc stages: ``svm_weight``
[K, D7], ``svm_bias`` [K], ``bbox_weight`` [K, D5, 4], ``bbox_bias`` [K, 4] and the two feature
scales that make the mean feature norm 20 (R-CNN's ``feat_norm_mean``). Shapes: R regions, K classes,
D5 = C·B pooled values (the head's fc6 input), D7 the fc7 width.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from rcnn_cli.boxes import clip_boxes
from rcnn_cli.errors import RcnnError
from rcnn_cli.models.fast_rcnn import FastRCNN, ModelConfig
from rcnn_cli.models.heads import RAW_DELTAS
from rcnn_cli.rcnn.warp import warp_regions

#: Regions per conv pass when R-CNN warps them (memory: 128 × 3 × 224² floats is 77 MB).
WARP_BATCH = 128


def window_rois(count: int, size: int, device: torch.device | str = "cpu") -> Tensor:
    """The RoIs Tensor[count, 5] of ``count`` warped windows, each an image of its own: row i is
    (i, 0, 0, size, size), the whole window."""
    index = torch.arange(count, dtype=torch.float32, device=device)[:, None]
    frame = torch.tensor([0.0, 0.0, size, size], device=device).expand(count, 4)
    return torch.cat([index, frame], dim=1)


class RCNN(FastRCNN):
    """A fine-tuned network plus per-class SVMs and box regressors; ``config.method`` rcnn or sppnet."""

    def __init__(self, config: ModelConfig) -> None:
        if config.method not in ("rcnn", "sppnet"):
            raise RcnnError(f"an R-CNN model needs method rcnn or sppnet, not {config.method!r}")
        super().__init__(config)
        K = config.num_classes
        d5 = self.pooled_dim()
        self.register_buffer("svm_weight", torch.zeros(K, config.fc7_dim))
        self.register_buffer("svm_bias", torch.zeros(K))
        self.register_buffer("svm_feature_scale", torch.ones(()))
        self.register_buffer("bbox_weight", torch.zeros(K, d5, 4))
        self.register_buffer("bbox_bias", torch.zeros(K, 4))
        self.register_buffer("bbox_feature_scale", torch.ones(()))

    @property
    def method(self) -> str:
        return self.config.method

    def pooled_dim(self) -> int:
        """D5: pooled values per region (the head's fc6 input)."""
        from rcnn_cli.models.heads import pooled_bins

        cfg = self.config
        return self.backbone.out_channels * pooled_bins(cfg.pool, cfg.output_size, cfg.levels)

    # ----- features ------------------------------------------------------------------------------
    def warped_pool5(self, image: Tensor, boxes: Tensor, batch: int = WARP_BATCH) -> Tensor:
        """R-CNN: image Tensor[3, H, W] normalized at its original size, boxes Tensor[R, 4] in its
        pixels -> pool5 Tensor[R, D5], each region warped and through the conv layers on its own."""
        size, padding = self.config.region_size, self.config.region_padding
        out = []
        for start in range(0, len(boxes), batch):
            windows = warp_regions(image, boxes[start : start + batch], size, padding)
            out.append(self.window_pool5(self.features(windows)))
        if not out:
            return image.new_zeros((0, self.pooled_dim()))
        return torch.cat(out)

    def conv_pyramid(self, rgb: np.ndarray) -> list[tuple[Tensor, float]]:
        """SPPnet: rgb uint8 [H, W, 3] -> the conv map Tensor[1, C, h, w] and im_scale of the image at
        each of ``config.scales`` (one: a single pass; several: SPPnet's multi-scale option)."""
        from rcnn_cli.models.preprocess import prepare_image

        cfg = self.config
        device = self.svm_weight.device
        out = []
        for scale in cfg.scales:
            image, im_scale = prepare_image(rgb, scale, cfg.max_size, cfg.pixel_mean, cfg.pixel_std)
            out.append((self.features(image[None].to(device)), im_scale))
        return out

    def window_pool5(self, maps: Tensor) -> Tensor:
        """maps Tensor[R, C, h, w], one per warped window -> pool5 Tensor[R, D5], each window's whole
        map pooled (the RoI is the window itself)."""
        # maps.shape[0], not len(maps): a traced graph keeps the first as a size, the second as a number.
        rois = window_rois(maps.shape[0], self.config.region_size, maps.device).to(maps.dtype)
        return self.head.pool_rois(maps, rois)

    def fc7(self, pool5: Tensor) -> Tensor:
        """pool5 Tensor[R, D5] -> fc7 Tensor[R, D7] after its ReLU (dropout as the module's mode says)."""
        head = self.head
        x = head.dropout(head.fc6(pool5).relu())
        return head.dropout(head.fc7(x).relu())

    # ----- the post-hoc stages -------------------------------------------------------------------
    def svm_scores(self, fc7: Tensor) -> Tensor:
        """fc7 Tensor[R, D7] -> SVM margins Tensor[R, K] (w_k · s·x + b_k)."""
        return (fc7 * self.svm_feature_scale) @ self.svm_weight.T + self.svm_bias

    def regressed_boxes(self, pool5: Tensor, proposals: Tensor) -> Tensor:
        """pool5 Tensor[R, D5], proposals Tensor[R, 4] (original pixels) -> each class's regressed box
        Tensor[R, K, 4], not clipped (R-CNN appendix C: d(P) = w_kᵀ φ(P) + b_k)."""
        K = self.num_classes
        deltas = torch.einsum("rd,kdf->rkf", pool5 * self.bbox_feature_scale, self.bbox_weight)
        deltas = deltas + self.bbox_bias
        # The proposal of each (region, class) pair, row r·K + k; expand from the tensor's own shape
        # (not R given as a number), so that an exported graph keeps R free.
        repeated = proposals[:, None, :].expand(-1, K, -1).reshape(-1, 4)
        return RAW_DELTAS.decode(deltas.reshape(-1, 4).float(), repeated.float()).unflatten(0, (-1, K))

    def refined_boxes(self, pool5: Tensor, proposals: Tensor, height: int, width: int) -> Tensor:
        """:meth:`regressed_boxes` clipped to the ``height`` × ``width`` image: Tensor[R, K, 4]."""
        return clip_boxes(self.regressed_boxes(pool5, proposals), height, width)

    def set_svms(self, weight: Tensor, bias: Tensor, feature_scale: float) -> None:
        """The SVM stage's result: weight Tensor[K, D7], bias Tensor[K], fc7's feature scale."""
        self.svm_weight.copy_(weight)
        self.svm_bias.copy_(bias)
        self.svm_feature_scale.fill_(feature_scale)

    def set_box_regressors(self, weight: Tensor, bias: Tensor, feature_scale: float) -> None:
        """The box-regression stage's result: weight Tensor[K, D5, 4], bias Tensor[K, 4], pool5's scale."""
        self.bbox_weight.copy_(weight)
        self.bbox_bias.copy_(bias)
        self.bbox_feature_scale.fill_(feature_scale)
