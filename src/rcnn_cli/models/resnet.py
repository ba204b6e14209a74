"""ResNet-18 and ResNet-50 in the C4 design of the ResNet paper's Faster R-CNN (He et al. 2016, §A and
Table 7 of its appendix): conv1 … res4 are the shared conv layers (stride 16), RoI pooling takes a
14×14 grid from their map, and res5 (stride 2: 7×7), then a global average, is the per-RoI head in
place of fc6/fc7 (:class:`ResNetC4Head`).

Modules carry torchvision's names (``conv1``, ``bn1``, ``layer1`` … ``layer4``, blocks ``conv1``,
``bn1``, …, ``downsample.0/1``), so that a torchvision-layout state dict maps onto them key by key:
``layer4.*`` lands in the head's ``res5``. BatchNorm is *frozen* (:class:`FrozenBatchNorm2d`): a
minibatch of 2 images gives no useful batch statistics, so the ImageNet ones are kept, as detectron
and torchvision's detection models do. Shapes: N images, R RoIs, K classes.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rcnn_cli.models.freezing import freeze_before
from rcnn_cli.models.specs import SPECS, BackboneSpec


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm with fixed statistics and affine parameters: y = (x − mean) / √(var + ε) · w + b, all
    four buffers (not parameters: nothing here trains). Keys as ``nn.BatchNorm2d``'s, without
    ``num_batches_tracked``. A fresh one is the identity."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(channels))
        self.register_buffer("bias", torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: Tensor) -> Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale[None, :, None, None] + shift[None, :, None, None]


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False)


class BasicBlock(nn.Module):
    """Two 3×3 convs (ResNet-18/34); ``downsample`` where the shape changes."""

    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv(cin, width, 3, stride), FrozenBatchNorm2d(width)
        self.conv2, self.bn2 = _conv(width, width, 3), FrozenBatchNorm2d(width)
        self.downsample = _shortcut(cin, width, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(self.bn1(self.conv1(x)).relu()))
        return (out + (x if self.downsample is None else self.downsample(x))).relu()


class Bottleneck(nn.Module):
    """1×1 → 3×3 (stride here, as torchvision's "ResNet v1.5") → 1×1 at 4× the width (ResNet-50+)."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv(cin, width, 1), FrozenBatchNorm2d(width)
        self.conv2, self.bn2 = _conv(width, width, 3, stride), FrozenBatchNorm2d(width)
        self.conv3, self.bn3 = _conv(width, width * 4, 1), FrozenBatchNorm2d(width * 4)
        self.downsample = _shortcut(cin, width * 4, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn1(self.conv1(x)).relu()
        out = self.bn2(self.conv2(out)).relu()
        out = self.bn3(self.conv3(out))
        return (out + (x if self.downsample is None else self.downsample(x))).relu()


def _shortcut(cin: int, cout: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), FrozenBatchNorm2d(cout))


def _stage(
    block: type[BasicBlock | Bottleneck], cin: int, width: int, blocks: int, stride: int
) -> nn.Sequential:
    layers = [block(cin, width, stride)]
    layers += [block(width * block.expansion, width) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


#: Blocks per stage (res2 … res5) and the block type of each depth.
DEPTHS: dict[str, tuple[type[BasicBlock | Bottleneck], tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
}


class ResNetC4(nn.Module):
    """conv1 … res4 (``layer3``): images Tensor[N, 3, H, W] -> Tensor[N, C4, ~H/16, ~W/16]. The
    :class:`rcnn_cli.models.backbones.Backbone` interface: ``name``, ``stride``, ``out_channels``,
    ``spec``, ``layer_index`` and :meth:`freeze_below`."""

    def __init__(self, spec: BackboneSpec) -> None:
        super().__init__()
        block, counts = DEPTHS[spec.name]
        self.spec, self.name, self.stride, self.out_channels = spec, spec.name, spec.stride, spec.out_channels
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = FrozenBatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = _stage(block, 64, 64, counts[0], 1)
        self.layer2 = _stage(block, 64 * block.expansion, 128, counts[1], 2)
        self.layer3 = _stage(block, 128 * block.expansion, 256, counts[2], 2)
        self.layer_index = {"conv1": 0, "layer1": 1, "layer2": 2, "layer3": 3}
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, images: Tensor) -> Tensor:
        x = self.maxpool(self.bn1(self.conv1(images)).relu())
        return self.layer3(self.layer2(self.layer1(x)))

    def freeze_below(self, layer: str | None) -> None:
        """Freeze the stages before ``layer`` (conv1, layer1, layer2, layer3; None trains all): the
        C4 default keeps conv1 and res2 (layer1) fixed, as detectron's FREEZE_AT 2."""
        freeze_before(self, [self.conv1, self.layer1, self.layer2, self.layer3], layer)


def res5(name: str) -> nn.Sequential:
    """res5 (torchvision's ``layer4``) of ``name``: Tensor[R, C4, 14, 14] -> Tensor[R, C5, 7, 7]."""
    block, counts = DEPTHS[name]
    return _stage(block, 256 * block.expansion, 512, counts[3], 2)


def res5_channels(name: str) -> int:
    """C5, the width of res5's output (the head's feature size): 512 for ResNet-18, 2048 for -50."""
    return 512 * DEPTHS[name][0].expansion


def resnet_c4(name: str) -> ResNetC4:
    return ResNetC4(SPECS[name])
