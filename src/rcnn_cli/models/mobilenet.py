"""MobileNetV3-Large (Howard et al. 2019, Table 1) split as ResNet's C4 detector is: ``features.0`` …
``features.12`` (stride 16, 112 channels) are the shared conv layers, RoI pooling takes a 14×14 grid,
and ``features.13`` … ``features.16`` (the stride-32 blocks and the 1×1 conv to 960) with a global
average are the per-RoI head (:class:`rcnn_cli.models.stage_head.StageHead`).

Modules carry torchvision's names (``features.N.block.M.*``, ``fc1``/``fc2`` of squeeze-and-excite) so
that ``torchvision.models.mobilenet_v3_large().state_dict()`` maps onto them key by key: features 0-12
onto the backbone, 13-16 onto the head's ``stage`` (renumbered from 0). BatchNorm is frozen
(:class:`rcnn_cli.models.resnet.FrozenBatchNorm2d`; torchvision's eps 0.001).
"""

from __future__ import annotations

from torch import Tensor, nn

from rcnn_cli.models.freezing import freeze_before
from rcnn_cli.models.resnet import FrozenBatchNorm2d
from rcnn_cli.models.specs import SPECS

#: Table 1 of the paper, as torchvision builds it: (in, kernel, expanded, out, squeeze-excite,
#: hard-swish, stride) of each inverted residual block, features.1 … features.15.
BLOCKS: tuple[tuple[int, int, int, int, bool, bool, int], ...] = (
    (16, 3, 16, 16, False, False, 1),
    (16, 3, 64, 24, False, False, 2),
    (24, 3, 72, 24, False, False, 1),
    (24, 5, 72, 40, True, False, 2),
    (40, 5, 120, 40, True, False, 1),
    (40, 5, 120, 40, True, False, 1),
    (40, 3, 240, 80, False, True, 2),
    (80, 3, 200, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1),
    (80, 3, 480, 112, True, True, 1),
    (112, 3, 672, 112, True, True, 1),
    (112, 5, 672, 160, True, True, 2),  # features.13: the first block of the head
    (160, 5, 960, 160, True, True, 1),
    (160, 5, 960, 160, True, True, 1),
)
#: The first of ``features`` that belongs to the per-RoI head.
HEAD_START = 13
#: The head's output width: the 1×1 conv of features.16.
HEAD_CHANNELS = 960
EPS = 0.001


def _divisible(value: float, divisor: int = 8) -> int:
    """torchvision's _make_divisible: the nearest multiple of ``divisor``, never 10% below ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_norm(
    cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: nn.Module | None = None
) -> nn.Sequential:
    """Conv (no bias) -> frozen BatchNorm -> ``act``: torchvision's Conv2dNormActivation layout."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        FrozenBatchNorm2d(cout, EPS),
    ]
    if act is not None:
        layers.append(act)
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    """x · hardsigmoid(fc2(relu(fc1(mean over H, W of x)))) (1×1 convs ``fc1``, ``fc2`` with bias)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        squeezed = _divisible(channels // 4)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.fc2 = nn.Conv2d(squeezed, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        scale = self.fc2(self.fc1(x.mean(dim=(2, 3), keepdim=True)).relu())
        return x * nn.functional.hardsigmoid(scale)


class InvertedResidual(nn.Module):
    """1×1 expand (when widened) -> k×k depthwise (the stride) -> squeeze-excite -> 1×1 project;
    the input is added back where the shape stays."""

    def __init__(
        self, cin: int, kernel: int, expanded: int, cout: int, se: bool, hswish: bool, stride: int
    ) -> None:
        super().__init__()
        act = nn.Hardswish if hswish else nn.ReLU
        layers: list[nn.Module] = []
        if expanded != cin:
            layers.append(conv_norm(cin, expanded, 1, act=act()))
        layers.append(conv_norm(expanded, expanded, kernel, stride, groups=expanded, act=act()))
        if se:
            layers.append(SqueezeExcitation(expanded))
        layers.append(conv_norm(expanded, cout, 1))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        return out + x if self.residual else out


def features_part(start: int, stop: int) -> list[nn.Module]:
    """features.start … features.stop-1 of MobileNetV3-Large (0 the stem, 1-15 :data:`BLOCKS`, 16 the
    1×1 conv to 960), only those built."""
    layers: list[nn.Module] = []
    for index in range(start, stop):
        if index == 0:
            layers.append(conv_norm(3, 16, 3, 2, act=nn.Hardswish()))
        elif index <= len(BLOCKS):
            layers.append(InvertedResidual(*BLOCKS[index - 1]))
        else:
            layers.append(conv_norm(160, HEAD_CHANNELS, 1, act=nn.Hardswish()))
    return layers


class MobileNetV3C4(nn.Module):
    """features.0 … features.12: images Tensor[N, 3, H, W] -> Tensor[N, 112, ~H/16, ~W/16], with the
    backbone interface (``name``, ``stride``, ``out_channels``, ``spec``, ``layer_index``,
    :meth:`freeze_below`)."""

    def __init__(self) -> None:
        super().__init__()
        spec = SPECS["mobilenet_v3_large"]
        self.spec, self.name, self.stride, self.out_channels = spec, spec.name, spec.stride, spec.out_channels
        self.features = nn.Sequential(*features_part(0, HEAD_START))
        self.layer_index = {f"features.{i}": i for i in range(HEAD_START)}
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, images: Tensor) -> Tensor:
        return self.features(images)

    def freeze_below(self, layer: str | None) -> None:
        """Freeze features.0 … up to, not including, ``layer`` (``features.N``; None trains all)."""
        freeze_before(self, list(self.features), layer)


def mobilenet_tail() -> nn.Sequential:
    """features.13 … features.16, the per-RoI head's stage: Tensor[R, 112, 14, 14] -> Tensor[R, 960, 7, 7]."""
    return nn.Sequential(*features_part(HEAD_START, len(BLOCKS) + 2))
