"""The features R-CNN and SPPnet train their SVMs and box regressors on, written to disk once (R-CNN
§2.3: "features are extracted from each object proposal and stored on disk"; the paper's
"requires storage", hundreds of gigabytes for VOC07 with VGG16).

Folder ``RUN/2-region-features/``: one ``<image_id>.npz`` per training image (the id made safe as
every artifact folder does) and ``manifest.json`` (kind ``region_features``). Per image, its G
ground-truth boxes first, then its P proposals (the first ``max_proposals``), N = G + P rows:

- ``fc7`` float16 [N, D7]: the fine-tuned network's fc7 (after ReLU), what the SVMs score;
- ``boxes`` float32 [N, 4] (original pixels); ``gt_label`` int16 [N]: the class of a gt row, 0 else;
- ``class_iou`` float16 [N, K]: each row's largest IoU with a gt box of each class (negatives of
  class k: IoU < 0.3 there);
- for box regression, the Q rows whose best IoU with any gt box is ≥ 0.6: ``reg_pool5`` float16
  [Q, D5], ``reg_gt`` float32 [Q, 4] (that gt box) and ``reg_label`` int16 [Q] (its class).

Images done are skipped on a rerun (atomic writes); the manifest names the fine-tuned model by its
digest, so features of another model are never reused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rcnn_cli.artifacts import folder_bytes
from rcnn_cli.boxes import box_iou
from rcnn_cli.models.rcnn import RCNN

KIND = "region_features"
FORMAT_VERSION = 1
#: Rows whose best IoU reaches this train the box regressors (R-CNN appendix C).
REGRESSION_IOU = 0.6


@dataclass(frozen=True)
class CacheSummary:
    images: int  # images in the folder
    computed: int  # of which computed by this call
    regions: int  # rows written by this call
    disk_bytes: int  # the whole folder's size


def cache_path(folder: Path, image_id: str) -> Path:
    from rcnn_cli.artifacts import safe_stem

    return folder / f"{safe_stem(image_id)}.npz"


@torch.no_grad()
def cache_region_features(
    model: RCNN,
    records: list,
    proposals: Mapping[str, Tensor],
    out_dir: str | Path,
    params: dict[str, Any],
    conv_source: Any = None,
    device: Any = "cpu",
    reporter: Any = None,
) -> CacheSummary:
    """Write each record's npz (module docstring) into ``out_dir``; ``proposals[image_id]``
    Tensor[P, 4] in original pixels; ``params`` (the model's digest and the settings) go into the
    manifest and must match a folder's earlier ones. ``conv_source``: for SPPnet, the cached conv maps
    (:class:`rcnn_cli.training.features.FeatureSource`); None computes them."""
    from rcnn_cli.artifacts import (
        Manifest,
        atomic_save_npz,
        check_distinct_stems,
        digest_of,
        read_manifest,
        write_manifest,
    )
    from rcnn_cli.temporaries import remove_stale_temporaries

    out = Path(out_dir)
    digest = digest_of(f"{r.image_id}:{r.width}x{r.height}:{len(proposals[r.image_id])}" for r in records)
    if (out / "manifest.json").is_file():
        read_manifest(out, KIND).check_compatible(out, params, digest)
    check_distinct_stems((r.image_id for r in records), out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    write_manifest(out, Manifest(kind=KIND, format_version=FORMAT_VERSION, params=params, inputs_hash=digest))
    model.eval().to(device)
    computed = regions = 0
    for record in records:
        path = cache_path(out, record.image_id)
        if not path.is_file():
            arrays = image_features(model, record, proposals[record.image_id], conv_source, device)
            atomic_save_npz(path, **arrays)
            computed += 1
            regions += len(arrays["fc7"])
        if reporter is not None:
            reporter.advance()
    return CacheSummary(len(records), computed, regions, folder_bytes(out))


def image_features(
    model: RCNN, record: Any, proposals: Tensor, conv_source: Any, device: Any
) -> dict[str, np.ndarray]:
    """The arrays of one image's npz (module docstring)."""
    gt = torch.from_numpy(record.boxes).reshape(-1, 4).float()
    gt_labels = torch.from_numpy(record.labels).reshape(-1).long()
    boxes = torch.cat([gt, proposals.reshape(-1, 4).float()])
    pool5 = region_pool5(model, record, boxes, conv_source, device)
    fc7 = model.fc7(pool5)
    K = model.num_classes
    class_iou = torch.zeros(len(boxes), K)
    best_iou = torch.zeros(len(boxes))
    best_gt = torch.zeros(len(boxes), dtype=torch.int64)
    if len(gt):
        iou = box_iou(boxes, gt)  # [N, G]
        for k in range(1, K + 1):
            of_class = gt_labels == k
            if of_class.any():
                class_iou[:, k - 1] = iou[:, of_class].max(dim=1).values
        best_iou, best_gt = iou.max(dim=1)
    gt_label = torch.zeros(len(boxes), dtype=torch.int64)
    gt_label[: len(gt)] = gt_labels
    reg = torch.nonzero(best_iou >= REGRESSION_IOU).flatten()
    return {
        "fc7": fc7.cpu().half().numpy(),
        "boxes": boxes.numpy(),
        "gt_label": gt_label.numpy().astype(np.int16),
        "class_iou": class_iou.half().numpy(),
        "reg_pool5": pool5[reg.to(pool5.device)].cpu().half().numpy(),
        "reg_gt": gt[best_gt[reg]].numpy() if len(gt) else np.zeros((0, 4), np.float32),
        "reg_label": gt_labels[best_gt[reg]].numpy().astype(np.int16) if len(gt) else np.zeros(0, np.int16),
        "reg_boxes": boxes[reg].numpy(),
    }


def region_pool5(model: RCNN, record: Any, boxes: Tensor, conv_source: Any, device: Any) -> Tensor:
    """pool5 Tensor[N, D5] of ``boxes`` (original pixels): warped windows for R-CNN, the pyramid over
    the image's conv map for SPPnet (the cached map when ``conv_source`` has it)."""
    from rcnn_cli.data import read_record
    from rcnn_cli.models.preprocess import normalize_image

    cfg = model.config
    if len(boxes) == 0:
        return torch.zeros((0, model.pooled_dim()), device=device)
    if cfg.method == "rcnn":
        image = normalize_image(read_record(record), cfg.pixel_mean, cfg.pixel_std)
        return model.warped_pool5(image.to(device), boxes.to(device))
    from rcnn_cli.rcnn.scale_assignment import pool_at_assigned_scales

    if conv_source is not None:  # the maps cached by stage 0, at each of the folder's scales
        pyramid = [(maps[None].to(device), s) for maps, s in conv_source.pyramid(record, False)]
    else:
        pyramid = model.conv_pyramid(read_record(record))
    maps, im_scales = [m for m, _ in pyramid], [s for _, s in pyramid]
    return pool_at_assigned_scales(model.head.pool, maps, im_scales, boxes.to(device))


class RegionFeatures:
    """Reads a ``region_features`` folder back: one image's arrays at a time (float32 copies)."""

    def __init__(self, folder: str | Path, image_ids: list[str]) -> None:
        from rcnn_cli.artifacts import read_manifest
        from rcnn_cli.errors import ArtifactError

        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder, KIND, max_version=FORMAT_VERSION)
        self.image_ids = list(image_ids)
        missing = [i for i in self.image_ids if not cache_path(self.folder, i).is_file()]
        if missing:
            raise ArtifactError(
                f"{self.folder}: {len(missing)} images have no region features ({', '.join(missing[:3])}); "
                "rerun the training command with --resume to complete the stage"
            )

    def load(self, image_id: str, *names: str) -> list[np.ndarray]:
        from rcnn_cli.errors import ArtifactError

        path = cache_path(self.folder, image_id)
        try:
            with np.load(path) as data:
                return [data[name].astype(np.float32) for name in names]
        except Exception as exc:
            raise ArtifactError(f"{path}: unreadable region features ({type(exc).__name__}: {exc})") from None
