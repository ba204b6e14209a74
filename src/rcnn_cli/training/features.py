"""SPPnet's path: run the conv layers once per image and cache the maps (``rcnn extract``), then train
only fc6, fc7 and the head on them (``rcnn train --features DIR``), conv frozen.

Folder layout: ``<image_id>.npz`` (the id as a file name: :func:`rcnn_cli.artifacts.safe_stem`) with
``features`` float16 [C, h, w] (and ``features_flipped`` when extracted with flips) and ``im_scale``;
``backbone.pt`` (the conv weights used, so the trained model can be saved whole); ``manifest.json``
(kind ``features``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rcnn_cli.errors import ArtifactError
from rcnn_cli.models.fast_rcnn import FastRCNN
from rcnn_cli.models.preprocess import prepare_image

KIND = "features"
FORMAT_VERSION = 1
BACKBONE_FILE = "backbone.pt"


def feature_path(folder: Path, image_id: str) -> Path:
    """Where one image's maps live: ``<stem>.npz``, the id made safe as every artifact folder does."""
    from rcnn_cli.artifacts import safe_stem

    return folder / f"{safe_stem(image_id)}.npz"


def dataset_hash(records: list) -> str:
    from rcnn_cli.artifacts import digest_of

    return digest_of(f"{r.image_id}:{r.width}x{r.height}" for r in records)


def extract_params(model: FastRCNN, flip: bool) -> dict[str, Any]:
    cfg = model.config
    return {
        "backbone": cfg.backbone,
        "scale": cfg.scales[0],
        "max_size": cfg.max_size,
        "pixel_mean": list(cfg.pixel_mean),
        "pixel_std": list(cfg.pixel_std),
        "flip": flip,
    }


@torch.no_grad()
def extract_features(
    model: FastRCNN,
    records: list,
    out_dir: str | Path,
    flip: bool = False,
    device: Any = "cpu",
    reporter=None,
) -> int:
    """Write one npz per image (skipping those already complete); returns how many were computed."""
    from rcnn_cli.artifacts import (
        Manifest,
        atomic_save_npz,
        atomic_torch_save,
        check_distinct_stems,
        read_manifest,
        write_manifest,
    )
    from rcnn_cli.data import read_record
    from rcnn_cli.temporaries import remove_stale_temporaries

    out = Path(out_dir)
    params = extract_params(model, flip)
    digest = dataset_hash(records)
    if (out / "manifest.json").is_file():
        read_manifest(out, KIND).check_compatible(out, params, digest)
    check_distinct_stems((r.image_id for r in records), out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)  # what a killed run left half written
    state = {k: v.cpu() for k, v in model.backbone.state_dict().items()}
    atomic_torch_save({"config": model.config.to_dict(), "state_dict": state}, out / BACKBONE_FILE)
    write_manifest(out, Manifest(kind=KIND, format_version=FORMAT_VERSION, params=params, inputs_hash=digest))
    model.eval().to(device)
    cfg = model.config
    done = 0
    for record in records:
        path = feature_path(out, record.image_id)
        if not path.is_file():
            rgb = read_record(record)
            arrays = {}
            for name, flipped in [("features", False)] + ([("features_flipped", True)] if flip else []):
                image, im_scale = prepare_image(
                    rgb, cfg.scales[0], cfg.max_size, cfg.pixel_mean, cfg.pixel_std, flip=flipped
                )
                arrays[name] = model.features(image[None].to(device))[0].half().cpu().numpy()
            atomic_save_npz(path, im_scale=np.float64(im_scale), **arrays)
            done += 1
        if reporter is not None:
            reporter.advance()
    return done


class FeatureSource:
    """Training input from a features folder: Tensor[C, h, w] cached conv map instead of the image."""

    uses_features = True

    def __init__(self, folder: str | Path, records: list) -> None:
        from rcnn_cli.artifacts import read_manifest

        self.folder = Path(folder)
        manifest = read_manifest(self.folder, KIND, max_version=FORMAT_VERSION)
        if manifest.inputs_hash != dataset_hash(records):
            missing = [r.image_id for r in records if not feature_path(self.folder, r.image_id).is_file()]
            detail = f" ({len(missing)} images missing, e.g. {', '.join(missing[:3])})" if missing else ""
            raise ArtifactError(
                f"{self.folder}: features were extracted from other images{detail}; rerun extract"
            )
        missing = [r.image_id for r in records if not feature_path(self.folder, r.image_id).is_file()]
        if missing:
            raise ArtifactError(
                f"{self.folder}: partial features folder, {len(missing)} images missing "
                f"({', '.join(missing[:5])}); rerun 'rcnn extract' to complete it"
            )
        self.params = dict(manifest.params)
        self.scales = (int(self.params["scale"]),)
        self.max_size = int(self.params["max_size"])
        self.has_flips = bool(self.params.get("flip", False))

    def backbone_state(self) -> dict[str, Tensor]:
        from rcnn_cli.artifacts import read_torch_file

        path = self.folder / BACKBONE_FILE
        saved = read_torch_file(path, "backbone weights file")
        state = saved.get("state_dict") if isinstance(saved, dict) else None
        if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
            raise ArtifactError(f"{path}: not the backbone weights 'rcnn extract' writes (no state_dict)")
        return state

    def get(self, record: Any, scale: int, flip: bool) -> tuple[Tensor, float]:
        path = feature_path(self.folder, record.image_id)
        key = "features_flipped" if flip else "features"
        try:
            with np.load(path) as data:
                return torch.from_numpy(data[key].astype(np.float32)), float(data["im_scale"])
        except Exception as exc:
            raise ArtifactError(f"{path}: unreadable features file ({type(exc).__name__}: {exc})") from None
