"""The Fast R-CNN detector (paper §3): one conv pass per image, the RoI head over its proposals, then
per-class NMS. :mod:`rcnn_cli.inference.detections_folder` runs it over a dataset and writes the
``detections/`` folder.

The model is anything that follows the ``rcnn_cli.models.FastRCNN`` contract: ``features(images)`` and
a ``head`` module (``head(features, rois)``) with ``pool``/``fc6``/``fc7`` children (timed by hooks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from rcnn_cli.errors import RcnnError
from rcnn_cli.inference.postprocess import ImageDetections, PostprocessConfig, select_detections
from rcnn_cli.inference.timing import StageTimer


@dataclass(frozen=True)
class DetectConfig:
    """Test-time settings, checked when built. ``scale``/``max_size`` None: the model's own (first)
    training scale. ``max_proposals``: the first (best) proposals used per image, 0 uses all.

    ``refine``: passes of iterative localization (Gidaris & Komodakis, ICCV 2015, §5) after the first:
    each RoI that scores above the score threshold in some class is moved to its best class's refined
    box and goes through the head again; the (score, box) pairs of every pass then go to NMS together.
    """

    scale: int | None = None
    max_size: int | None = None
    max_proposals: int = 2000
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    refine: int = 0

    def __post_init__(self) -> None:
        for option, value in (("--scale", self.scale), ("--max-size", self.max_size)):
            if value is not None and value < 1:
                raise RcnnError(f"{option} {value}: must be >= 1 pixel")
        if self.max_proposals < 0:
            raise RcnnError(f"--max-proposals {self.max_proposals}: must be >= 0 (0 uses all)")
        if self.refine < 0:
            raise RcnnError(f"--refine {self.refine}: must be >= 0")


class Detector:
    """Detections for one image at a time, timing every stage into ``timer``."""

    def __init__(
        self,
        model: nn.Module,
        class_names: Sequence[str],
        config: DetectConfig = DetectConfig(),
        device: torch.device | str = "cpu",
        model_config: Any = None,
    ) -> None:
        self.model = model.to(device).eval()
        self.class_names = tuple(class_names)
        self.device = torch.device(device)
        cfg = model_config if model_config is not None else getattr(model, "config", None)
        scales = tuple(getattr(cfg, "scales", (600,)))
        self.scale = config.scale or int(scales[0])
        self.max_size = config.max_size or int(getattr(cfg, "max_size", 1000))
        self.pixel_mean = tuple(getattr(cfg, "pixel_mean", (0.485, 0.456, 0.406)))
        self.pixel_std = tuple(getattr(cfg, "pixel_std", (0.229, 0.224, 0.225)))
        self.config = config
        self.timer = StageTimer(self.device)

    def clean_proposals(self, proposals: np.ndarray, height: int, width: int) -> torch.Tensor:
        """proposals: float [R, 4] xyxy in original pixels -> Tensor[R', 4]: the first ``max_proposals``,
        clipped to the image, without those that have no area (nothing to pool, no size to regress from).
        A copy: the caller's array is neither clipped in place nor required to be writable."""
        boxes = torch.tensor(np.asarray(proposals, dtype=np.float32).reshape(-1, 4))
        boxes = boxes[: self.config.max_proposals] if self.config.max_proposals > 0 else boxes
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
        return boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]

    def network_inputs(self, rgb: np.ndarray, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """rgb: uint8 [H, W, 3], boxes: Tensor[R, 4] in original pixels -> (image Tensor[1, 3, H', W']
        scaled and normalized, rois Tensor[R, 5] ``(0, x1, y1, x2, y2)`` in scaled pixels), on the device."""
        from rcnn_cli.models.preprocess import prepare_image

        image, im_scale = prepare_image(rgb, self.scale, self.max_size, self.pixel_mean, self.pixel_std)
        boxes = boxes.to(self.device)
        rois = torch.cat([boxes.new_zeros(len(boxes), 1), boxes * im_scale], dim=1)
        return image.to(self.device)[None], rois

    @property
    def proposes(self) -> bool:
        """Whether the model has its own region proposal network (a Faster R-CNN)."""
        return getattr(self.model, "rpn", None) is not None

    @torch.inference_mode()
    def detect(self, rgb: np.ndarray, proposals: np.ndarray | None) -> ImageDetections:
        """rgb: uint8 [H, W, 3]; proposals: float [R, 4] xyxy in original pixels, or None for a Faster
        R-CNN to propose with its RPN on the same feature map -> detections."""
        if proposals is None:
            return self._detect_with_rpn(rgb)
        height, width = rgb.shape[:2]
        boxes = self.clean_proposals(proposals, height, width)
        self.timer.images += 1
        if len(boxes) == 0:
            return _no_detections(self.device)
        if getattr(self.model.config, "method", "fast_rcnn") != "fast_rcnn":  # R-CNN, SPPnet: SVMs
            from rcnn_cli.inference.region_detect import detect_regions

            return detect_regions(self, rgb, boxes)
        from rcnn_cli.models.preprocess import prepare_image

        with self.timer.stage("preprocess"):
            boxes = boxes.to(self.device)  # once: the RoIs and the box decoding both use it there
            image, im_scale = prepare_image(rgb, self.scale, self.max_size, self.pixel_mean, self.pixel_std)
            image = image.to(self.device)[None]
        with self.timer.stage("conv"):
            features = self.model.features(image)
        scores, refined = self.head_passes(features, boxes, im_scale, height, width)
        with self.timer.stage("nms"):
            return select_detections(scores, refined, self.config.postprocess)

    def head_passes(
        self, features: torch.Tensor, boxes: torch.Tensor, im_scale: float, height: int, width: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The head on ``boxes`` Tensor[R, 4] (original pixels; ``im_scale`` takes them to the map's
        image), then ``config.refine`` more passes on the refined boxes of the RoIs still in play ->
        (scores Tensor[M, K], boxes Tensor[M, K, 4]) of every pass, M >= R, in original pixels."""
        head, threshold = self.model.head, self.config.postprocess.score_threshold
        all_scores, all_boxes = [], []
        for step in range(self.config.refine + 1):
            rois = torch.cat([boxes.new_zeros(len(boxes), 1), boxes * im_scale], dim=1)
            with self.timer.timed_head(head):
                logits, deltas = head(features, rois)
            scores, refined = type(head).scores_and_boxes(logits, deltas, boxes, height, width)
            all_scores.append(scores)
            all_boxes.append(refined)
            if step == self.config.refine:
                break
            best, label = scores.max(dim=1)
            moved = refined[torch.arange(len(boxes), device=boxes.device), label]
            live = (best > threshold) & (moved[:, 2] > moved[:, 0]) & (moved[:, 3] > moved[:, 1])
            if not live.any():
                break
            boxes = moved[live]
        return torch.cat(all_scores), torch.cat(all_boxes)

    def _detect_with_rpn(self, rgb: np.ndarray) -> ImageDetections:
        """Faster R-CNN: conv layers once; the RPN's proposals (its test-time numbers, capped by
        ``max_proposals``) on that map; the head on them."""
        from rcnn_cli.models.preprocess import prepare_image

        if not self.proposes:
            raise RcnnError("this model has no RPN: give it proposals (--proposals or --proposal-method)")
        height, width = rgb.shape[:2]
        self.timer.images += 1
        with self.timer.stage("preprocess"):
            image, im_scale = prepare_image(rgb, self.scale, self.max_size, self.pixel_mean, self.pixel_std)
            image = image.to(self.device)[None]
        with self.timer.stage("conv"):
            features = self.model.features(image)
        with self.timer.stage("rpn"):
            output = self.model.rpn(features)
        with self.timer.stage("proposal_layer"):
            size = (int(image.shape[-2]), int(image.shape[-1]))
            scaled = self.model.rpn.proposals(output, [size])[0][0]
            if self.config.max_proposals > 0:
                scaled = scaled[: self.config.max_proposals]
            boxes = scaled / im_scale  # original pixels, where the detections are decoded
        if len(boxes) == 0:
            return _no_detections(self.device)
        scores, refined = self.head_passes(features, boxes, im_scale, height, width)
        with self.timer.stage("nms"):
            return select_detections(scores, refined, self.config.postprocess)


def _no_detections(device: torch.device) -> ImageDetections:
    return ImageDetections(
        torch.zeros((0, 4), device=device),
        torch.zeros(0, device=device),
        torch.zeros(0, dtype=torch.int64, device=device),
    )
