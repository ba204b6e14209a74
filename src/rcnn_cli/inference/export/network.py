"""The networks that ``rcnn export`` writes: Fast R-CNN or Faster R-CNN at test time, up to, not
including, the per-class NMS.

One graph from the preprocessed image (and, for Fast R-CNN, its proposals) to what
:func:`rcnn_cli.inference.postprocess.postprocess_detections` computes before thresholding and NMS (its
steps 1-2, the head's :meth:`~rcnn_cli.models.heads.FastRCNNHead.scores_and_boxes`).

:class:`DetectorNetwork` (Fast R-CNN, paper §3):

    image       float32 [1, 3, H, W]  scaled (shorter side ``scale``, longer ≤ ``max_size``) and normalized
    proposals   float32 [R, 4]        x1 y1 x2 y2 in pixels of the *original* image
    image_size  int64   [2]           (height, width) of the original image: the boxes are clipped to it
    im_scale    float32 [1]           scaled / original pixels (what scaled the image)
 -> scores      float32 [R, K]        softmax posteriors p, background column dropped
    boxes       float32 [R, K, 4]     each class's box decoded from its proposal, clipped, original pixels

Proposals in original pixels (not RoIs in scaled ones) because the boxes are decoded from them and
clipped to the original image, as :class:`rcnn_cli.inference.detect.Detector` does: the graph scales
them itself (RoIs ``(0, im_scale · proposal)``). H, W and R are free (dynamic axes); N is 1.

:class:`ProposingDetectorNetwork` (Faster R-CNN, Ren et al. §3): the same without the ``proposals``
input, which the RPN makes on the same conv map (:mod:`.proposal_layer`, the model's test-time
numbers), and with them as the first output, P of them (a number the graph computes):

    image, image_size, im_scale       as above
 -> proposals   float32 [P, 4]        the RPN's proposals, best first, original pixels
    scores      float32 [P, K]
    boxes       float32 [P, K, 4]

What stays with the caller: reading and resizing the image (:func:`network_inputs` is the reference),
for Fast R-CNN dropping proposals without area, the score threshold, per-class NMS and the top-k
(docs/FORMATS.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rcnn_cli.errors import RcnnError
from rcnn_cli.models.heads import RAW_DELTAS

#: Input and output names of the exported Fast R-CNN graph, in order.
INPUT_NAMES = ("image", "proposals", "image_size", "im_scale")
OUTPUT_NAMES = ("scores", "boxes")


def check_exportable(config: Any, path: object) -> None:
    """Refuse, in one line, what one graph cannot hold: an SPPnet trained with several scales (each
    region is pooled from the map of the scale nearest 224², one conv pass per scale)."""
    if getattr(config, "method", "fast_rcnn") == "sppnet" and len(config.scales) > 1:
        scales = ",".join(str(s) for s in config.scales)
        raise RcnnError(
            f"{path} is a multi-scale SPPnet model (--scales {scales}): each region picks its scale's "
            "conv map, outside one graph; export a single-scale SPPnet (rcnn train --method sppnet "
            "--scales 600)"
        )


def clip_to_image(boxes: Tensor, image_size: Tensor) -> Tensor:
    """boxes Tensor[..., 4] clipped to ``[0, width] × [0, height]`` (``image_size`` = (height, width)),
    as :func:`rcnn_cli.boxes.clip_boxes` with the bounds as a tensor, so that the size is a graph input."""
    height, width = image_size.to(boxes.dtype).unbind(0)
    upper = torch.stack((width, height, width, height))
    return torch.minimum(boxes.clamp(min=0), upper)


class DetectorNetwork(nn.Module):
    """``model`` (a :class:`rcnn_cli.models.FastRCNN` in eval mode, low-rank fc layers or not) wrapped
    to the inputs and outputs of the module docstring."""

    input_names = INPUT_NAMES
    output_names = OUTPUT_NAMES
    #: torch.export's dynamic_shapes, input by input: H, W and R free.
    dynamic_shapes: tuple[dict[int, str] | None, ...] = ({2: "height", 3: "width"}, {0: "rois"}, None, None)

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.eval()  # dropout off: the test-time network (and the exporters warn of a training module)

    def forward(
        self, image: Tensor, proposals: Tensor, image_size: Tensor, im_scale: Tensor
    ) -> tuple[Tensor, Tensor]:
        # zeros_like of a column, not new_zeros(R, 1): a traced graph keeps R free.
        rois = torch.cat([torch.zeros_like(proposals[:, :1]), proposals * im_scale], dim=1)
        logits, deltas = self.model(image, rois)
        scores = logits.softmax(dim=1)[:, 1:]
        boxes = RAW_DELTAS.decode(deltas, proposals).unflatten(1, (-1, 4))[:, 1:]
        return scores, clip_to_image(boxes, image_size)


class ProposingDetectorNetwork(nn.Module):
    """``model`` (a :class:`rcnn_cli.models.FasterRCNN` in eval mode) wrapped to the inputs and outputs
    of the module docstring: conv layers once, the RPN and its proposal layer on that map, the head on
    the proposals, as :meth:`rcnn_cli.inference.detect.Detector.detect` does for such a model."""

    input_names = ("image", "image_size", "im_scale")
    output_names = ("proposals", "scores", "boxes")
    dynamic_shapes: tuple[dict[int, str] | None, ...] = ({2: "height", 3: "width"}, None, None)

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.eval()

    def forward(self, image: Tensor, image_size: Tensor, im_scale: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        from rcnn_cli.inference.export.proposal_layer import proposals_in_graph

        features = self.model.features(image)
        rpn = self.model.rpn(features)
        scaled = proposals_in_graph(
            rpn.anchors,
            rpn.objectness[0],
            rpn.deltas[0],
            image.shape[-2],
            image.shape[-1],
            self.model.rpn.config.proposals,
        )
        proposals = scaled / im_scale  # original pixels, where the boxes are decoded and clipped
        rois = torch.cat([torch.zeros_like(scaled[:, :1]), scaled], dim=1)
        logits, deltas = self.model.head(features, rois)
        scores = logits.softmax(dim=1)[:, 1:]
        boxes = RAW_DELTAS.decode(deltas, proposals).unflatten(1, (-1, 4))[:, 1:]
        return proposals, scores, clip_to_image(boxes, image_size)


class RegionDetectorNetwork(DetectorNetwork):
    """``model`` (a :class:`rcnn_cli.models.rcnn.RCNN`, method ``rcnn`` or ``sppnet``) wrapped to
    :class:`DetectorNetwork`'s inputs and outputs, as :func:`rcnn_cli.inference.region_detect
    .detect_regions` computes them before NMS: each region's pool5 (R-CNN: warped with context and
    through the conv layers alone; SPPnet: its pyramid pooled from the one conv map), fc7, the SVM
    margins through a logistic as ``scores``, and each class's ridge-regressed box as ``boxes``.

    R-CNN reads the image at its original size (``im_scale`` 1: :func:`network_inputs` makes it so);
    the windows are warped from whatever image is given, the proposals times ``im_scale``. Its graph
    holds R windows at once (R × 3 × S² floats: 0.6 GB for 2000 at S = 227); regions are independent,
    so a caller short of memory feeds the proposals in chunks."""

    def forward(
        self, image: Tensor, proposals: Tensor, image_size: Tensor, im_scale: Tensor
    ) -> tuple[Tensor, Tensor]:
        from rcnn_cli.rcnn.warp import warp_regions

        model, config = self.model, self.model.config
        scaled = proposals * im_scale
        if config.method == "rcnn":
            windows = warp_regions(image[0], scaled, config.region_size, config.region_padding)
            # One blank window more, dropped after the conv layers: with no proposals, a batch of zero
            # windows would meet reshapes that onnxruntime refuses on an empty batch (GroupNorm's).
            windows = torch.cat(
                [windows, torch.zeros_like(image[:, :, :1, :1]).expand(1, -1, *windows.shape[-2:])]
            )
            pool5 = model.window_pool5(model.features(windows))[:-1]
        else:
            rois = torch.cat([torch.zeros_like(scaled[:, :1]), scaled], dim=1)
            pool5 = model.head.pool_rois(model.features(image), rois)
        scores = model.svm_scores(model.fc7(pool5)).sigmoid()
        return scores, clip_to_image(model.regressed_boxes(pool5, proposals), image_size)


def network_for(model: nn.Module) -> DetectorNetwork | ProposingDetectorNetwork:
    """The exported network of ``model``: the proposing one when it has an RPN, the region one for
    R-CNN and SPPnet."""
    if getattr(model, "rpn", None) is not None:
        return ProposingDetectorNetwork(model)
    if getattr(model.config, "method", "fast_rcnn") != "fast_rcnn":
        return RegionDetectorNetwork(model)
    return DetectorNetwork(model)


def network_inputs(
    rgb: np.ndarray, proposals: np.ndarray, config: Any, scale: int | None = None
) -> dict[str, np.ndarray]:
    """The exported network's inputs for one image, made as ``rcnn detect`` makes them: ``rgb`` uint8
    [h, w, 3] resized so that its shorter side is ``scale`` (default: the model's first training scale)
    and its longer at most ``config.max_size`` (an R-CNN model: not resized, ``im_scale`` 1), normalized
    with the model's pixel mean and std;
    ``proposals`` float [R, 4] in original pixels, as they are (drop those without area first)."""
    from rcnn_cli.models.preprocess import normalize_image, prepare_image

    if getattr(config, "method", "fast_rcnn") == "rcnn":  # R-CNN warps from the original image
        image, im_scale = normalize_image(rgb, config.pixel_mean, config.pixel_std), 1.0
    else:
        image, im_scale = prepare_image(
            rgb, scale or int(config.scales[0]), int(config.max_size), config.pixel_mean, config.pixel_std
        )
    return {
        "image": image[None].numpy(),
        "proposals": np.ascontiguousarray(proposals, dtype=np.float32).reshape(-1, 4),
        "image_size": np.asarray(rgb.shape[:2], dtype=np.int64),
        "im_scale": np.asarray([im_scale], dtype=np.float32),
    }


def as_tensors(inputs: dict[str, np.ndarray], names: Sequence[str] = INPUT_NAMES) -> tuple[Tensor, ...]:
    """The :func:`network_inputs` arrays named ``names`` (a network's ``input_names``) as tensors."""
    return tuple(torch.from_numpy(np.asarray(inputs[name])) for name in names)


def example_inputs(config: Any, sizes: Sequence[tuple[int, int]] = ((480, 640),), rois: int = 8) -> list:
    """Made-up inputs of the right kinds (a random image per (height, width) of original pixels,
    ``rois`` proposals inside it): what export traces with and checks on."""
    generator = np.random.default_rng(0)
    made = []
    for height, width in sizes:
        rgb = generator.integers(0, 256, (height, width, 3), dtype=np.uint8)
        corners = generator.uniform(0, 1, (rois, 2, 2)) * (width, height)
        boxes = np.concatenate([corners.min(axis=1), np.minimum(corners.max(axis=1) + 8, (width, height))], 1)
        made.append(network_inputs(rgb, boxes, config))
    return made
