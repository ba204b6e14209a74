"""The Fast R-CNN head: RoI pooling -> fc6 -> fc7 -> sibling cls_score and bbox_pred (paper §2).

:class:`FastRCNNHead` is the one place that knows what the head computes: its forward pass (training
and detection), its loss (the multi-task loss, §2.3) and its test-time outputs (class posteriors and
class-specific boxes, §3). Training, detection and distillation after truncated SVD all use it.

Shapes: N images, R RoIs, K object classes (+1 background), C conv channels, B pooled bins per channel
(output_size² for RoI pooling/RoIAlign, Σ level² for the SPP pyramid: 50 for levels 6,3,2,1), so the
pooled features of one RoI have D = C·B values.
"""

from __future__ import annotations

from torch import Tensor, nn

from rcnn_cli.boxes import BoxCoder, clip_boxes
from rcnn_cli.models.losses import multi_task_loss
from rcnn_cli.models.specs import POOL_KINDS

# bbox_pred is saved with the target means/stds folded in, so test-time deltas are decoded as they are.
RAW_DELTAS = BoxCoder(means=(0.0, 0.0, 0.0, 0.0), stds=(1.0, 1.0, 1.0, 1.0))


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


class FastRCNNHead(nn.Module):
    """``pool`` -> fc6 -> ReLU -> dropout -> fc7 -> ReLU -> dropout -> ``cls_score`` (K+1) and
    ``bbox_pred`` (4·(K+1), class-specific regression, paper §2.2).

    After truncated SVD (paper §3.1) ``fc6``/``fc7`` may be ``nn.Sequential(Linear(v->t, no bias),
    Linear(t->u))`` (:mod:`rcnn_cli.models.low_rank`); nothing here depends on which. The children's
    names (pool, fc6, fc7, cls_score, bbox_pred) are those the detection timer hooks and that
    checkpoints store.
    """

    def __init__(
        self,
        pool: nn.Module,
        in_features: int,
        num_classes: int,
        fc6_dim: int = 4096,
        fc7_dim: int = 4096,
        dropout: float = 0.5,
    ) -> None:
        """``pool``: (features Tensor[N, C, H', W'], rois Tensor[R, 5]) -> Tensor[R, C, ...] with
        ``in_features`` = D values per RoI; ``num_classes``: K, without background."""
        super().__init__()
        self.pool = pool
        self.fc6: nn.Module = nn.Linear(in_features, fc6_dim)
        self.fc7: nn.Module = nn.Linear(fc6_dim, fc7_dim)
        self.dropout = nn.Dropout(dropout)
        self.cls_score = nn.Linear(fc7_dim, num_classes + 1)
        self.bbox_pred = nn.Linear(fc7_dim, 4 * (num_classes + 1))
        # The default Linear init above draws from the RNG before these do: keep the order, so that
        # a seed gives the same initial weights as it always has.
        init_fc(self.fc6)  # type: ignore[arg-type]
        init_fc(self.fc7)  # type: ignore[arg-type]
        init_predictors(self.cls_score, self.bbox_pred)

    @property
    def num_classes(self) -> int:
        """K, object classes without background."""
        return self.cls_score.out_features - 1

    def forward(self, features: Tensor, rois: Tensor) -> tuple[Tensor, Tensor]:
        """features: Tensor[N, C, H', W'], rois: Tensor[R, 5] ``(batch_index, x1, y1, x2, y2)`` in pixels
        of the scaled images -> (class logits Tensor[R, K+1], box deltas Tensor[R, 4·(K+1)])."""
        return self.forward_pooled(self.pool_rois(features, rois))

    def pool_rois(self, features: Tensor, rois: Tensor) -> Tensor:
        """The RoI-pooled features of each RoI, flattened: Tensor[R, D]."""
        return self.pool(features, rois.to(features.dtype)).flatten(1)

    def forward_pooled(self, pooled: Tensor) -> tuple[Tensor, Tensor]:
        """pooled: Tensor[R, D] -> (logits Tensor[R, K+1], deltas Tensor[R, 4·(K+1)]); dropout as the
        module's mode says (train: on, eval: off)."""
        x = self.dropout(self.fc6(pooled).relu_())
        x = self.dropout(self.fc7(x).relu_())
        return self.cls_score(x), self.bbox_pred(x)

    #: The training loss of the head's outputs, the paper's multi-task loss (eq. 1)
    #: L = L_cls(p, u) + λ [u ≥ 1] L_loc(t^u, v): ``head.loss(logits, deltas, labels u, targets v,
    #: lam=λ, cls_only=..., normalizer=R)`` -> LossParts; see :func:`rcnn_cli.models.losses.multi_task_loss`.
    loss = staticmethod(multi_task_loss)

    @staticmethod
    def scores_and_boxes(
        logits: Tensor, deltas: Tensor, proposals: Tensor, height: int, width: int
    ) -> tuple[Tensor, Tensor]:
        """Test-time outputs (paper §3): class posteriors p Tensor[R, K] and each class's refined box,
        decoded from the RoI's proposal and clipped to the image, Tensor[R, K, 4]; background dropped.

        logits: Tensor[R, K+1]; deltas: Tensor[R, 4·(K+1)] as a saved model outputs them (plain
        deltas, normalization folded); proposals: Tensor[R, 4] in the (original) pixels of the result.
        """
        R, C = logits.shape
        scores = logits.float().softmax(dim=1)[:, 1:]
        boxes = RAW_DELTAS.decode(deltas.float(), proposals.float()).reshape(R, C, 4)[:, 1:]
        boxes = clip_boxes(boxes.reshape(-1, 4), height, width).reshape(R, C - 1, 4)
        return scores, boxes
