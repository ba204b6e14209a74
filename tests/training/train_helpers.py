"""Test helpers: a proposals folder for a dataset, a minimal detector + VOC AP to check what training learned.

The detector and AP here are deliberately small and independent of the inference/evaluation packages:
they exist to check training, not to be the product's detector.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rcnn_cli.artifacts import Manifest, atomic_save_npz, write_manifest
from rcnn_cli.boxes import BoxCoder, box_iou, clip_boxes
from rcnn_cli.data import read_image
from rcnn_cli.models import prepare_image


def write_proposals(folder: Path, records, num_random: int = 150, seed: int = 0) -> Path:
    """Jittered copies of every gt box plus random boxes, as ``rcnn propose`` would lay them out."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for r in records:
        boxes = [np.zeros((0, 4), np.float32)]
        for b in r.boxes:
            w, h = b[2] - b[0], b[3] - b[1]
            jitter = rng.normal(0, 0.12, size=(30, 4)) * np.array([w, h, w, h])
            boxes.append((b + jitter).astype(np.float32))
        xy = rng.uniform(0, 1, size=(num_random, 2)) * [r.width, r.height]
        wh = rng.uniform(0.08, 0.6, size=(num_random, 2)) * [r.width, r.height]
        boxes.append(np.concatenate([xy, xy + wh], 1).astype(np.float32))
        all_boxes = np.concatenate(boxes)
        all_boxes[:, 0::2] = all_boxes[:, 0::2].clip(0, r.width)
        all_boxes[:, 1::2] = all_boxes[:, 1::2].clip(0, r.height)
        keep = (all_boxes[:, 2] - all_boxes[:, 0] > 2) & (all_boxes[:, 3] - all_boxes[:, 1] > 2)
        all_boxes = all_boxes[keep]
        atomic_save_npz(
            folder / f"{r.image_id}.npz", boxes=all_boxes, scores=np.zeros(len(all_boxes), np.float32)
        )
    write_manifest(folder, Manifest(kind="proposals", format_version=1, params={"method": "test-jitter"}))
    return folder


def nms(boxes: torch.Tensor, scores: torch.Tensor, thresh: float) -> torch.Tensor:
    order = scores.argsort(descending=True)
    keep = []
    while order.numel():
        i = order[0]
        keep.append(int(i))
        if order.numel() == 1:
            break
        iou = box_iou(boxes[i][None], boxes[order[1:]])[0]
        order = order[1:][iou <= thresh]
    return torch.tensor(keep, dtype=torch.int64)


@torch.no_grad()
def detect(model, records, proposals: dict, score_thresh: float = 0.05, nms_thresh: float = 0.3):
    """[(image_index, label, score, box[4])] over ``records`` with a loaded (folded) checkpoint model."""
    model.eval()
    cfg = model.config
    coder = BoxCoder(means=(0, 0, 0, 0), stds=(1, 1, 1, 1))
    out = []
    for idx, r in enumerate(records):
        image, im_scale = prepare_image(
            read_image(r.path), cfg.scales[0], cfg.max_size, cfg.pixel_mean, cfg.pixel_std
        )
        props = proposals[r.image_id]
        rois = torch.cat([torch.zeros(len(props), 1), props * im_scale], 1)
        logits, deltas = model(image[None], rois)
        probs = logits.softmax(1)
        boxes = coder.decode(deltas, props).reshape(len(props), -1, 4)
        for k in range(1, probs.shape[1]):
            keep = probs[:, k] > score_thresh
            if not keep.any():
                continue
            b = clip_boxes(boxes[keep, k], r.height, r.width)
            s = probs[keep, k]
            for j in nms(b, s, nms_thresh).tolist():
                out.append((idx, k, float(s[j]), b[j].numpy()))
    return out


def voc_map(detections, records, num_classes: int, iou_thresh: float = 0.5) -> float:
    """Mean over classes of VOC area AP (all-point interpolation), difficult boxes ignored."""
    aps = []
    for k in range(1, num_classes + 1):
        gts = {i: (r.boxes[r.labels == k], r.difficult[r.labels == k]) for i, r in enumerate(records)}
        npos = sum(int((~d).sum()) for _, d in gts.values())
        if npos == 0:
            continue
        taken = {i: np.zeros(len(b), bool) for i, (b, _) in gts.items()}
        dets = sorted((d for d in detections if d[1] == k), key=lambda d: -d[2])
        tp, fp = [], []
        for i, _, _, box in dets:
            gb, diff = gts[i]
            if len(gb) == 0:
                tp.append(0)
                fp.append(1)
                continue
            iou = box_iou(torch.as_tensor(box)[None], torch.as_tensor(gb))[0].numpy()
            j = int(iou.argmax())
            if iou[j] >= iou_thresh:
                if diff[j]:
                    continue
                if not taken[i][j]:
                    taken[i][j] = True
                    tp.append(1)
                    fp.append(0)
                    continue
            tp.append(0)
            fp.append(1)
        tp_c, fp_c = np.cumsum(tp), np.cumsum(fp)
        rec = tp_c / npos
        prec = tp_c / np.maximum(tp_c + fp_c, 1e-9)
        mrec = np.concatenate([[0], rec, [1]])
        mpre = np.concatenate([[0], prec, [0]])
        for j in range(len(mpre) - 2, -1, -1):
            mpre[j] = max(mpre[j], mpre[j + 1])
        idx = np.nonzero(mrec[1:] != mrec[:-1])[0]
        aps.append(float(((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]).sum()))
    return float(np.mean(aps)) if aps else 0.0


def ddp_worker(rank: int, shapes: str, tmp: str, tiny: dict) -> None:
    """One process of a 2-process gloo run (spawned by the DDP test)."""
    import os

    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=os.environ.get("RCNN_TEST_PORT", "29533"),
        RANK=str(rank),
        WORLD_SIZE="2",
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    from rcnn_cli.training import distributed
    from rcnn_cli.training.sampling import SamplerConfig
    from rcnn_cli.training.setup import RunSpec, build_trainer
    from rcnn_cli.training.trainer import TrainConfig

    run = RunSpec(
        dataset=f"{shapes}/voc",
        split="trainval",
        proposals=f"{shapes}/proposals",
        out_dir=f"{tmp}/ddp",
        **tiny,
    )
    cfg = TrainConfig(iters=3, lr=0.01, sampling=SamplerConfig(rois_per_batch=16), checkpoint_every=2)
    trainer = build_trainer(run, cfg, torch.device("cpu"))
    assert trainer.info.world_size == 2 and trainer.info.rank == rank
    result = trainer.fit()
    torch.save({"state": trainer.model.state_dict(), "seen": result.seen_images}, f"{tmp}/rank{rank}.pt")
    distributed.shutdown(trainer.info)
