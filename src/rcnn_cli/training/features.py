"""SPPnet's path: run the conv layers once per image and cache the maps (``rcnn extract``), then train
only fc6, fc7 and the head on them (``rcnn train --features DIR``), conv frozen.

Folder layout: ``<image_id>.npz`` (the id as a file name: :func:`rcnn_cli.artifacts.safe_stem`);
``backbone.pt`` (the conv weights used, so the trained model can be saved whole); ``manifest.json``
(kind ``features``). At one scale (format 1) the npz holds ``features`` float16 [C, h, w] (and
``features_flipped`` when extracted with flips) and ``im_scale``. At several scales (SPPnet's
multi-scale option, format 2) it holds one map per scale, ``features_<scale>`` (and
``features_flipped_<scale>``), with ``scales`` int64 [S] and ``im_scales`` float64 [S], the factor
from original pixels to each scale's image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rcnn_cli.errors import ArtifactError, RcnnError
from rcnn_cli.models.fast_rcnn import FastRCNN
from rcnn_cli.models.preprocess import prepare_image

KIND = "features"
#: Format 2 is the multi-scale layout; a single-scale folder is still written as format 1, unchanged,
#: so that it stays readable by every version that reads features.
FORMAT_VERSION = 2
SINGLE_SCALE_VERSION = 1
BACKBONE_FILE = "backbone.pt"


def feature_path(folder: Path, image_id: str) -> Path:
    """Where one image's maps live: ``<stem>.npz``, the id made safe as every artifact folder does."""
    from rcnn_cli.artifacts import safe_stem

    return folder / f"{safe_stem(image_id)}.npz"


def dataset_hash(records: list) -> str:
    from rcnn_cli.artifacts import digest_of

    return digest_of(f"{r.image_id}:{r.width}x{r.height}" for r in records)


def extract_params(model: FastRCNN, flip: bool) -> dict[str, Any]:
    """The manifest's params: what changes the maps. One scale is recorded as ``scale`` (as it always
    was, so a rerun into an old folder matches it), several as ``scales``."""
    cfg = model.config
    scales = {"scale": cfg.scales[0]} if len(cfg.scales) == 1 else {"scales": list(cfg.scales)}
    return {
        "backbone": cfg.backbone,
        **scales,
        "max_size": cfg.max_size,
        "pixel_mean": list(cfg.pixel_mean),
        "pixel_std": list(cfg.pixel_std),
        "flip": flip,
    }


def map_key(scale: int | None, flip: bool) -> str:
    """The npz key of one map: ``features[_flipped]`` at a single scale (None), else ``..._<scale>``."""
    name = "features_flipped" if flip else "features"
    return name if scale is None else f"{name}_{scale}"


def image_arrays(model: FastRCNN, rgb: np.ndarray, flip: bool, device: Any) -> dict[str, np.ndarray]:
    """One image's npz arrays: the float16 conv map Tensor[C, h, w] of each scale (and of the mirrored
    image with ``flip``) and the im_scales, in the layout of the module docstring."""
    cfg = model.config
    multi = len(cfg.scales) > 1
    arrays: dict[str, np.ndarray] = {}
    im_scales = []
    for scale in cfg.scales:
        for flipped in (False, True) if flip else (False,):
            image, im_scale = prepare_image(
                rgb, scale, cfg.max_size, cfg.pixel_mean, cfg.pixel_std, flip=flipped
            )
            fmap = model.features(image[None].to(device))[0]
            arrays[map_key(scale if multi else None, flipped)] = fmap.half().cpu().numpy()
        im_scales.append(im_scale)
    if not multi:
        return {"im_scale": np.float64(im_scales[0]), **arrays}
    return {
        "scales": np.asarray(cfg.scales, np.int64),
        "im_scales": np.asarray(im_scales, np.float64),
        **arrays,
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
    """Write one npz per image at each of ``model.config.scales`` (skipping those already complete);
    returns how many were computed."""
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
    scales = model.config.scales
    if len(set(scales)) != len(scales):
        raise RcnnError(f"--scales {','.join(map(str, scales))}: give each scale once")
    params = extract_params(model, flip)
    digest = dataset_hash(records)
    if (out / "manifest.json").is_file():
        read_manifest(out, KIND).check_compatible(out, params, digest)
    check_distinct_stems((r.image_id for r in records), out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)  # what a killed run left half written
    state = {k: v.cpu() for k, v in model.backbone.state_dict().items()}
    atomic_torch_save({"config": model.config.to_dict(), "state_dict": state}, out / BACKBONE_FILE)
    version = FORMAT_VERSION if len(scales) > 1 else SINGLE_SCALE_VERSION
    write_manifest(out, Manifest(kind=KIND, format_version=version, params=params, inputs_hash=digest))
    model.eval().to(device)
    done = 0
    for record in records:
        path = feature_path(out, record.image_id)
        if not path.is_file():
            atomic_save_npz(path, **image_arrays(model, read_record(record), flip, device))
            done += 1
        if reporter is not None:
            reporter.advance()
    return done


class FeatureSource:
    """Training input from a features folder: cached conv maps Tensor[C, h, w] instead of the image.

    ``scales``: the shorter sides the maps were computed at, one, or several for SPPnet's multi-scale
    option (``uses_pyramid``): then :meth:`pyramid` reads all of an image's maps and each RoI is pooled
    from the one of its scale (:func:`rcnn_cli.rcnn.scale_assignment.pool_at_assigned_scales`).
    """

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
        try:
            given = self.params["scales"] if "scales" in self.params else [self.params["scale"]]
            self.scales: tuple[int, ...] = tuple(int(v) for v in given)
            self.max_size = int(self.params["max_size"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{self.folder}: manifest.json lacks valid scale settings ({exc})") from None
        if not self.scales:
            raise ArtifactError(f"{self.folder}: manifest.json lists no scales")
        self.has_flips = bool(self.params.get("flip", False))

    @property
    def uses_pyramid(self) -> bool:
        """Whether the maps were extracted at several scales (each RoI then at its own)."""
        return len(self.scales) > 1

    def backbone_state(self) -> dict[str, Tensor]:
        from rcnn_cli.artifacts import read_torch_file

        path = self.folder / BACKBONE_FILE
        saved = read_torch_file(path, "backbone weights file")
        state = saved.get("state_dict") if isinstance(saved, dict) else None
        if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
            raise ArtifactError(f"{path}: not the backbone weights 'rcnn extract' writes (no state_dict)")
        return state

    def get(self, record: Any, scale: int, flip: bool, color: Any = None) -> tuple[Tensor, float]:
        """-> (Tensor[C, h, w] float32 map, im_scale) of the image at ``scale`` (any value, in a
        single-scale folder: the one it holds), mirrored with ``flip``. ``color`` jitter cannot apply to
        cached maps: training from a features folder turns it off (rcnn_cli.training.setup)."""
        if not self.uses_pyramid:
            return self._read(record, [(map_key(None, flip), "im_scale")])[0]
        if scale not in self.scales:
            raise ArtifactError(
                f"{self.folder}: no maps at scale {scale} (extracted at {', '.join(map(str, self.scales))})"
            )
        return self.pyramid(record, flip)[self.scales.index(scale)]

    def pyramid(self, record: Any, flip: bool) -> list[tuple[Tensor, float]]:
        """All of the image's maps, one per scale in the order of ``scales``: [(Tensor[C, h_s, w_s]
        float32, im_scale s)], mirrored with ``flip``. A single-scale folder gives one."""
        if not self.uses_pyramid:
            return self._read(record, [(map_key(None, flip), "im_scale")])
        return self._read(record, [(map_key(scale, flip), i) for i, scale in enumerate(self.scales)])

    def _read(self, record: Any, wanted: list[tuple[str, str | int]]) -> list[tuple[Tensor, float]]:
        """(map, im_scale) for each (map key, ``im_scale`` key or index into ``im_scales``)."""
        path = feature_path(self.folder, record.image_id)
        try:
            with np.load(path) as data:
                out = []
                for key, where in wanted:
                    im_scale = data["im_scales"][where] if isinstance(where, int) else data[where]
                    out.append((torch.from_numpy(data[key].astype(np.float32)), float(im_scale)))
                return out
        except Exception as exc:
            raise ArtifactError(f"{path}: unreadable features file ({type(exc).__name__}: {exc})") from None
