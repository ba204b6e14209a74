"""The network that ``rcnn export`` writes: Fast R-CNN at test time (paper §3) up to, not including, NMS.

One graph from the preprocessed image and its proposals to what :func:`rcnn_cli.inference.postprocess
.postprocess_detections` computes before thresholding and NMS (its steps 1-2, the head's
:meth:`~rcnn_cli.models.heads.FastRCNNHead.scores_and_boxes`):

    image       float32 [1, 3, H, W]  scaled (shorter side ``scale``, longer ≤ ``max_size``) and normalized
    proposals   float32 [R, 4]        x1 y1 x2 y2 in pixels of the *original* image
    image_size  int64   [2]           (height, width) of the original image: the boxes are clipped to it
    im_scale    float32 [1]           scaled / original pixels (what scaled the image)
 -> scores      float32 [R, K]        softmax posteriors p, background column dropped
    boxes       float32 [R, K, 4]     each class's box decoded from its proposal, clipped, original pixels

Proposals in original pixels (not RoIs in scaled ones) because the boxes are decoded from them and
clipped to the original image, as :class:`rcnn_cli.inference.detect.Detector` does: the graph scales
them itself (RoIs ``(0, im_scale · proposal)``). H, W and R are free (dynamic axes); N is 1.

What stays with the caller: reading and resizing the image (:func:`network_inputs` is the reference),
dropping proposals without area, the score threshold, per-class NMS and the top-k (docs/FORMATS.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rcnn_cli.errors import RcnnError
from rcnn_cli.models.heads import RAW_DELTAS

#: Input and output names of the exported graph, in order.
INPUT_NAMES = ("image", "proposals", "image_size", "im_scale")
OUTPUT_NAMES = ("scores", "boxes")

#: What export supports, said by every refusal.
SUPPORTED = "rcnn export supports Fast R-CNN models (rcnn train --method fast-rcnn, the default)"


def check_exportable(config: Any, path: object) -> None:
    """Refuse, in one line, a model that is not a Fast R-CNN read from proposals: a Faster R-CNN
    (its RPN's proposal layer, with NMS inside, is not part of the exported graph yet) or an R-CNN /
    SPPnet model (scored by SVMs, R-CNN with one warped window per region)."""
    method = getattr(config, "method", "fast_rcnn")
    if method != "fast_rcnn":
        name = {"rcnn": "an R-CNN", "sppnet": "an SPPnet"}.get(method, f"a {method}")
        raise RcnnError(f"{path} is {name} model (regions scored by SVMs, not exported yet); {SUPPORTED}")
    if getattr(config, "rpn", None) is not None:
        raise RcnnError(
            f"{path} is a Faster R-CNN model (its RPN's proposal layer is not exported yet); {SUPPORTED}"
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


def network_inputs(
    rgb: np.ndarray, proposals: np.ndarray, config: Any, scale: int | None = None
) -> dict[str, np.ndarray]:
    """The exported network's inputs for one image, made as ``rcnn detect`` makes them: ``rgb`` uint8
    [h, w, 3] resized so that its shorter side is ``scale`` (default: the model's first training scale)
    and its longer at most ``config.max_size``, normalized with the model's pixel mean and std;
    ``proposals`` float [R, 4] in original pixels, as they are (drop those without area first)."""
    from rcnn_cli.models.preprocess import prepare_image

    image, im_scale = prepare_image(
        rgb, scale or int(config.scales[0]), int(config.max_size), config.pixel_mean, config.pixel_std
    )
    return {
        "image": image[None].numpy(),
        "proposals": np.ascontiguousarray(proposals, dtype=np.float32).reshape(-1, 4),
        "image_size": np.asarray(rgb.shape[:2], dtype=np.int64),
        "im_scale": np.asarray([im_scale], dtype=np.float32),
    }


def as_tensors(inputs: dict[str, np.ndarray]) -> tuple[Tensor, ...]:
    """The :func:`network_inputs` arrays as tensors, in :data:`INPUT_NAMES` order."""
    return tuple(torch.from_numpy(np.asarray(inputs[name])) for name in INPUT_NAMES)


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
