"""The Fast R-CNN head: RoI pooling -> fc6 -> fc7 -> sibling cls_score and bbox_pred (paper §2).

Shapes: R RoIs, K object classes (+1 background), C conv channels, B pooled bins per channel
(output_size² for RoI pooling/RoIAlign, Σ level² for the SPP pyramid: 50 for levels 6,3,2,1).
"""

from __future__ import annotations

from torch import Tensor, nn

POOL_KINDS = ("roi", "spp", "align")


def make_pool(
    kind: str,
    spatial_scale: float,
    output_size: int = 7,
    levels: tuple[int, ...] = (6, 3, 2, 1),
    sampling_ratio: int = 2,
) -> nn.Module:
    """The pooling layer for ``--pool roi|spp|align``, from :mod:`rcnn_cli.ops`.

    roi: max pooling into ``output_size``² bins (Fast R-CNN); spp: a pyramid of max-pooled
    ``levels`` (SPPnet, one level = RoI pooling); align: bilinear RoIAlign (Mask R-CNN), for comparison.
    """
    from rcnn_cli import ops

    if kind == "roi":
        return ops.RoIPool((output_size, output_size), spatial_scale)
    if kind == "spp":
        return ops.SPPPool(tuple(levels), spatial_scale)
    if kind == "align":
        return ops.RoIAlign((output_size, output_size), spatial_scale, sampling_ratio, aligned=True)
    from rcnn_cli.errors import RcnnError

    raise RcnnError(f"unknown pool {kind!r}; choose one of: {', '.join(POOL_KINDS)}")


def pooled_bins(kind: str, output_size: int, levels: tuple[int, ...]) -> int:
    """B: bins per channel that the pooling layer produces (fc6 takes C·B inputs)."""
    if kind == "spp":
        return sum(level * level for level in levels)
    return output_size * output_size


def init_predictors(cls_score: nn.Linear, bbox_pred: nn.Linear) -> None:
    """Paper §2.3: softmax classifier weights ~ N(0, 0.01²), box regressors ~ N(0, 0.001²), biases 0."""
    nn.init.normal_(cls_score.weight, std=0.01)
    nn.init.zeros_(cls_score.bias)
    nn.init.normal_(bbox_pred.weight, std=0.001)
    nn.init.zeros_(bbox_pred.bias)


def init_fc(fc: nn.Linear) -> None:
    """fc6/fc7 trained from scratch: Kaiming-normal suits the ReLU that follows."""
    nn.init.kaiming_normal_(fc.weight, nonlinearity="relu")
    nn.init.zeros_(fc.bias)


def fc_layers(pooled: Tensor, fc6: nn.Module, fc7: nn.Module, dropout: nn.Module) -> Tensor:
    """pooled: Tensor[R, C, ...] -> Tensor[R, fc7_dim]; fc6 and fc7 may be Linear or an SVD Sequential."""
    x = pooled.flatten(1)
    x = dropout(fc6(x).relu_())
    return dropout(fc7(x).relu_())
