"""Models and files shared by the inference and CLI tests (imported by path-free module name)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import torch
from torch import nn

CLASS_NAMES = ("cell", "platelet")


class _OneHotPool(nn.Module):
    """'Pools' RoI i into the i-th unit vector [n], so the head's output for RoI i is row i of its table."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def forward(self, features: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        return torch.eye(len(rois), self.n, dtype=features.dtype, device=features.device)


class TableModel(nn.Module):
    """Follows the FastRCNN contract (``features``, and a FastRCNNHead as ``head``) with set weights:
    RoI i gets ``logits[i]`` and ``deltas[i]`` whatever the image."""

    def __init__(self, logits: torch.Tensor, deltas: torch.Tensor) -> None:
        from rcnn_cli.models.heads import FastRCNNHead

        super().__init__()
        R = len(logits)
        self.config = SimpleNamespace(
            scales=(48,), max_size=100, pixel_mean=(0.5,) * 3, pixel_std=(0.25,) * 3
        )
        self.backbone = nn.Identity()
        self.head = FastRCNNHead(_OneHotPool(R), R, logits.shape[1] - 1, fc6_dim=R, fc7_dim=R, dropout=0.0)
        with torch.no_grad():
            for fc in (self.head.fc6, self.head.fc7):
                fc.weight.copy_(torch.eye(R))
                fc.bias.zero_()
            self.head.cls_score.weight.copy_(logits.T)
            self.head.bbox_pred.weight.copy_(deltas.T)
            self.head.cls_score.bias.zero_()
            self.head.bbox_pred.bias.zero_()

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(images)


def write_images(folder: Path, count: int = 3, size: tuple[int, int] = (64, 48), seed: int = 0) -> list[Path]:
    """``count`` random RGB JPEGs of ``size`` (w, h) named img0.jpg, img1.jpg, ..."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        path = folder / f"img{i}.jpg"
        cv2.imwrite(str(path), rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
        paths.append(path)
    return paths


def write_proposals(folder: Path, image_ids: list[str], boxes: np.ndarray) -> Path:
    """The same ``boxes`` (best first) for every image, in the proposals folder format."""
    from rcnn_cli.proposals import Proposals, ProposalStore

    store = ProposalStore(folder)
    store.prepare({"method": "fixed-boxes"}, image_ids)
    for image_id in image_ids:
        store.write(image_id, Proposals.ranked(np.asarray(boxes)), width=64, height=48)
    return folder


def small_checkpoint(path: Path, seed: int = 0, class_names: tuple[str, ...] = CLASS_NAMES) -> Path:
    """A real (untrained) small FastRCNN, with spread-out scores so that it detects things."""
    from rcnn_cli.models import FastRCNN, default_config, save_checkpoint

    torch.manual_seed(seed)
    model = FastRCNN(
        default_config("small", len(class_names), fc6_dim=48, fc7_dim=32, scales=(64,), max_size=128)
    )
    with torch.no_grad():
        model.head.cls_score.weight.normal_(0, 0.5)  # varied scores, above the 0.05 threshold
        model.head.bbox_pred.weight.normal_(0, 0.01)
    save_checkpoint(path, model.eval(), {"class_names": list(class_names)})
    return path
