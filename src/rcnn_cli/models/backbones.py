"""Conv backbones named as in the Fast R-CNN paper, plus a small network for CPUs.

Each backbone is a :class:`Backbone`: an ``nn.Sequential`` called ``features`` whose indices follow
torchvision's layout (``features.N``), so that a torchvision-layout state dict maps onto it key by key.
The last max-pool of the ImageNet network (pool5) is dropped: RoI pooling takes its place (paper §2.1).

=================  ======================  ======  ====================  ==============
name               paper                   stride  RoI pool (default)    fc6 -> fc7
=================  ======================  ======  ====================  ==============
caffenet           S (CaffeNet/AlexNet)    16      6x6 over 256 ch       4096 -> 4096
vgg_cnn_m_1024     M (VGG_CNN_M_1024)      16      6x6 over 512 ch       4096 -> 1024
vgg16              L (VGG16)               16      7x7 over 512 ch       4096 -> 4096
small              a CPU net (ours)        8       7x7 over 128 ch       512 -> 512
small_context      small + dilated blocks  8       7x7 over 128 ch       512 -> 512
resnet18           ResNet-18, C4           16      14x14 over 256 ch     res5 (512), avg
resnet50           ResNet-50, C4           16      14x14 over 1024 ch    res5 (2048), avg
mobilenet_v3_large MobileNetV3-L, C4-style 16      14x14 over 112 ch     features 13-16 (960), avg
=================  ======================  ======  ====================  ==============

``small`` trains from scratch on a CPU in minutes: GroupNorm instead of BatchNorm because a
minibatch holds only N = 2 images, and stride 8 so that small objects still cover a few cells.
``small_context`` adds three dilated residual blocks: a ~300 px receptive field for objects that fill
a photo (docs/BENCHMARKS.md, "A recipe for natural photos").
"""

from __future__ import annotations

from torch import Tensor, nn

from rcnn_cli.models.freezing import freeze_before
from rcnn_cli.models.specs import SPECS, BackboneSpec


class Backbone(nn.Module):
    """Conv layers of a detector: ``features`` (torchvision layout) and the names of its conv layers.

    ``layer_index[name]`` is the index in ``features`` of the named conv layer (``conv3_1`` -> 10 in VGG16).
    """

    def __init__(self, spec: BackboneSpec, layers: list[nn.Module], names: dict[str, int]) -> None:
        super().__init__()
        self.spec = spec
        self.name = spec.name
        self.stride = spec.stride
        self.out_channels = spec.out_channels
        self.features = nn.Sequential(*layers)
        self.layer_index = dict(names)

    def forward(self, images: Tensor) -> Tensor:
        """images: Tensor[N, 3, H, W] -> Tensor[N, C, ~H/stride, ~W/stride]."""
        return self.features(images)

    def freeze_below(self, layer: str | None) -> None:
        """Freeze every parameter of ``features`` before the conv layer named ``layer``.

        ``None`` trains every layer. Frozen layers get ``requires_grad = False`` so that the
        optimizer never sees them and backward stops there (the saving the paper measures).
        """
        freeze_before(self, list(self.features), layer)


def _conv(cin: int, cout: int, k: int, stride: int = 1, pad: int = 0, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=pad, groups=groups)


def caffenet() -> Backbone:
    """CaffeNet (paper's S): AlexNet with LRN and grouped conv2/4/5, pool5 removed."""
    lrn = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75)
    layers: list[nn.Module] = [
        _conv(3, 96, 11, 4),  # 0 conv1
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        lrn,
        _conv(96, 256, 5, pad=2, groups=2),  # 4 conv2
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75),
        _conv(256, 384, 3, pad=1),  # 8 conv3
        nn.ReLU(inplace=True),
        _conv(384, 384, 3, pad=1, groups=2),  # 10 conv4
        nn.ReLU(inplace=True),
        _conv(384, 256, 3, pad=1, groups=2),  # 12 conv5
        nn.ReLU(inplace=True),
    ]
    names = {"conv1": 0, "conv2": 4, "conv3": 8, "conv4": 10, "conv5": 12}
    return Backbone(SPECS["caffenet"], layers, names)


def vgg_cnn_m_1024() -> Backbone:
    """VGG_CNN_M_1024 (paper's M; Chatfield et al. 2014), pool5 removed."""
    layers: list[nn.Module] = [
        _conv(3, 96, 7, 2),  # 0 conv1
        nn.ReLU(inplace=True),
        nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        _conv(96, 256, 5, 2, pad=1),  # 4 conv2
        nn.ReLU(inplace=True),
        nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        _conv(256, 512, 3, pad=1),  # 8 conv3
        nn.ReLU(inplace=True),
        _conv(512, 512, 3, pad=1),  # 10 conv4
        nn.ReLU(inplace=True),
        _conv(512, 512, 3, pad=1),  # 12 conv5
        nn.ReLU(inplace=True),
    ]
    names = {"conv1": 0, "conv2": 4, "conv3": 8, "conv4": 10, "conv5": 12}
    return Backbone(SPECS["vgg_cnn_m_1024"], layers, names)


def vgg16() -> Backbone:
    """VGG16 (paper's L) with torchvision's ``features`` indices; the final max-pool (index 30) is dropped."""
    layers: list[nn.Module] = []
    names: dict[str, int] = {}
    cin = 3
    for block, (cout, repeats) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], start=1):
        for r in range(1, repeats + 1):
            names[f"conv{block}_{r}"] = len(layers)
            layers += [_conv(cin, cout, 3, pad=1), nn.ReLU(inplace=True)]
            cin = cout
        if block < 5:
            layers.append(nn.MaxPool2d(2, 2))
    return Backbone(SPECS["vgg16"], layers, names)


def small() -> Backbone:
    """A 6-conv network (stride 8, 128 channels) that trains from scratch on a CPU.

    conv -> GroupNorm -> ReLU blocks; the receptive field (~70 px) covers a whole
    small object while the map keeps 1/8 of the image resolution.
    """
    layers: list[nn.Module] = []
    names: dict[str, int] = {}
    plan = [(32, 2, 1), (64, 2, 1), (64, 1, 1), (128, 2, 1), (128, 1, 1), (128, 1, 2)]
    cin = 3
    for i, (cout, stride, dilation) in enumerate(plan, start=1):
        names[f"conv{i}"] = len(layers)
        layers += [
            nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
            nn.GroupNorm(8, cout),
            nn.ReLU(inplace=True),
        ]
        cin = cout
    backbone = Backbone(SPECS["small"], layers, names)
    for m in backbone.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return backbone


class DilatedResidual(nn.Module):
    """relu(x + GroupNorm(conv3x3_dilated(x))): a context block that widens the receptive field by
    ``2 * dilation * stride`` pixels at no loss of resolution; the identity path keeps a deep stack
    trainable from scratch."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False)
        self.norm = nn.GroupNorm(8, channels)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")  # as small's convs
        nn.init.zeros_(self.norm.weight)  # each block starts as the identity: the stack trains as small does

    def forward(self, x: Tensor) -> Tensor:
        """x: Tensor[N, C, h, w] -> Tensor[N, C, h, w]."""
        return (x + self.norm(self.conv(x))).relu_()


def small_context() -> Backbone:
    """``small`` with three dilated residual blocks (dilation 2, 4, 8) on its stride-8 map.

    The receptive field grows from 71 to 295 px: an RoI cell of a large object (a raccoon filling
    the photo) sees the object's extent, not a patch of its fur, while the stride and the cost of the
    RoI layers stay those of ``small``.
    """
    base = small()
    layers = list(base.features)
    names = dict(base.layer_index)
    for i, dilation in enumerate((2, 4, 8), start=7):
        names[f"conv{i}"] = len(layers)
        layers.append(DilatedResidual(base.out_channels, dilation))
    return Backbone(SPECS["small_context"], layers, names)


def resnet18() -> nn.Module:
    """ResNet-18 conv1 … res4, frozen BatchNorm (:mod:`rcnn_cli.models.resnet`); res5 is the head."""
    from rcnn_cli.models.resnet import resnet_c4

    return resnet_c4("resnet18")


def resnet50() -> nn.Module:
    """ResNet-50 conv1 … res4, frozen BatchNorm (:mod:`rcnn_cli.models.resnet`); res5 is the head."""
    from rcnn_cli.models.resnet import resnet_c4

    return resnet_c4("resnet50")


def mobilenet_v3_large() -> nn.Module:
    """MobileNetV3-Large features.0 … 12 (stride 16), frozen BatchNorm (:mod:`rcnn_cli.models.mobilenet`);
    features.13 … 16 are the head."""
    from rcnn_cli.models.mobilenet import MobileNetV3C4

    return MobileNetV3C4()


BUILDERS = {
    "caffenet": caffenet,
    "vgg_cnn_m_1024": vgg_cnn_m_1024,
    "vgg16": vgg16,
    "small": small,
    "small_context": small_context,
    "resnet18": resnet18,
    "resnet50": resnet50,
    "mobilenet_v3_large": mobilenet_v3_large,
}


def build_backbone(name: str) -> Backbone:
    """The backbone called ``name`` (one of :data:`BUILDERS`), freshly initialized."""
    if name not in BUILDERS:
        from rcnn_cli.errors import RcnnError

        raise RcnnError(f"unknown backbone {name!r}; choose one of: {', '.join(BUILDERS)}")
    return BUILDERS[name]()
