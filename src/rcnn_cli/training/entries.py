"""The training images as the loop sees them: candidate boxes matched to the ground truth, the
box-target normalization computed from them, and the conv layers' input for one image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from rcnn_cli.models.preprocess import prepare_image
from rcnn_cli.training.config import TrainConfig
from rcnn_cli.training.photometric import ColorJitter
from rcnn_cli.training.targets import Matches, TargetNormalization, encode_targets, match_proposals


@dataclass
class ImageEntry:
    """One training image: its record, candidate boxes (proposals ∪ gt) and their matches."""

    record: Any
    candidates: Tensor  # Tensor[P, 4], original pixels
    matches: Matches


class ImageSource:
    """Input of the conv layers for one image: the image (end-to-end) or cached conv features."""

    uses_features = False

    def __init__(self, scales: tuple[int, ...], max_size: int, pixel_mean, pixel_std) -> None:
        self.scales, self.max_size = scales, max_size
        self.pixel_mean, self.pixel_std = pixel_mean, pixel_std

    def get(
        self, record: Any, scale: int, flip: bool, color: ColorJitter | None = None
    ) -> tuple[Tensor, float]:
        """-> (Tensor[3, h, w] normalized image, im_scale), mirrored when ``flip``, jittered by ``color``."""
        from rcnn_cli.data import read_record

        rgb = read_record(record)
        rgb = color.apply(rgb) if color is not None else rgb
        return prepare_image(rgb, scale, self.max_size, self.pixel_mean, self.pixel_std, flip=flip)


def prepare_entries(records: list, proposals: dict[str, Tensor]) -> list[ImageEntry]:
    """Candidates = proposals ∪ gt boxes (paper: gt boxes are fg RoIs too), matched to the gt."""
    entries = []
    for record in records:
        gt = torch.from_numpy(record.boxes)
        candidates = torch.cat([proposals[record.image_id], gt]) if gt.numel() else proposals[record.image_id]
        matches = match_proposals(candidates, gt, torch.from_numpy(record.labels))
        entries.append(ImageEntry(record, candidates, matches))
    return entries


def target_normalization(
    entries: list[ImageEntry], num_classes: int, config: TrainConfig
) -> TargetNormalization:
    if config.target_norm == "fixed":
        return TargetNormalization.fixed(num_classes)
    targets, labels = [], []
    for e in entries:
        fg = torch.nonzero(e.matches.max_iou >= config.sampling.fg_threshold).flatten()
        if fg.numel():
            gt = torch.from_numpy(e.record.boxes)[e.matches.gt_index[fg]]
            targets.append(encode_targets(e.candidates[fg], gt))
            labels.append(e.matches.gt_label[fg])
    if not targets:
        return TargetNormalization.fixed(num_classes)
    return TargetNormalization.empirical(torch.cat(targets), torch.cat(labels), num_classes)
