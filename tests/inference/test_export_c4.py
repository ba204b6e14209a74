"""The C4 backbones (ResNet-18, MobileNetV3-Large: the last conv stage is the per-RoI head, no fc6/fc7)
export as the others do: the ONNX model under onnxruntime and the TorchScript module give the
checkpoint's scores and boxes (the torch path of ``rcnn detect`` before NMS) at two image sizes and two
proposal counts. ResNet-50 is ResNet-18's code with bottleneck blocks; its export is left to the
ResNet-18 case to keep the suite's time."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rcnn_cli.inference.export import export_model
from rcnn_cli.models import FastRCNN, default_config, load_checkpoint, save_checkpoint
from support.export import assert_matches, cases, needs_onnx, run_exported
from support.inference import CLASS_NAMES

pytestmark = pytest.mark.usefixtures("one_thread")


def c4_checkpoint(path: Path, name: str) -> Path:
    """An untrained C4 model at the small test scale, a 7×7 RoI grid (14×14 is the default; 7 keeps
    the per-RoI stage cheap), its BatchNorm statistics and predictors spread so scores vary."""
    torch.manual_seed(0)
    config = default_config(name, len(CLASS_NAMES), output_size=7, scales=(64,), max_size=128)
    model = FastRCNN(config).eval()
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if key.endswith("running_var"):
                value.uniform_(0.5, 1.5)  # frozen BN at the identity would hide a wrong translation
            elif key.endswith("running_mean"):
                value.normal_(0, 0.1)
        model.head.cls_score.weight.normal_(0, 0.5)
        model.head.bbox_pred.weight.normal_(0, 0.01)
    save_checkpoint(path, model, {"class_names": list(CLASS_NAMES)})
    return path


# ONNX export takes ~15 s a model on one thread, so only MobileNetV3 goes through it (its hard-swish
# and squeeze-excitation are the ops ResNet does not have); both go through TorchScript, whose tracing
# the head's grid arithmetic once broke.
@pytest.mark.parametrize(
    "name,kind",
    [("mobilenet_v3_large", "onnx"), ("resnet18", "torchscript"), ("mobilenet_v3_large", "torchscript")],
)
def test_a_c4_model_exports_and_matches(tmp_path: Path, name: str, kind: str) -> None:
    if kind == "onnx":
        needs_onnx()
    checkpoint = c4_checkpoint(tmp_path / "model.pt", name)
    model, _meta = load_checkpoint(checkpoint)
    assert not hasattr(model.head, "fc6") and hasattr(model.head, "stage")
    suffix = ".onnx" if kind == "onnx" else ".ts"
    result = export_model(checkpoint, tmp_path / f"model{suffix}", kind)
    seen = set()
    for case in list(cases(model))[:4]:  # the first image at both sizes and both counts
        assert_matches(run_exported(result.path, kind, case.inputs), case)
        seen.add((case.inputs["image"].shape[2:], len(case.inputs["proposals"])))
    assert len(seen) == 4
