"""anchor_targets on hand-made anchors and boxes."""

from __future__ import annotations

import torch

from rcnn_cli.rpn.anchor_targets import AnchorTargetConfig, anchor_targets
from rcnn_cli.rpn.anchors import anchors

KEEP_ALL = AnchorTargetConfig(batch_size=10_000, positive_fraction=1.0)


def test_thresholds_and_the_best_anchor_rule() -> None:
    a = torch.tensor(
        [
            [0.0, 0.0, 10.0, 10.0],  # IoU 1 with gt 0: positive
            [0.0, 0.0, 10.0, 8.0],  # IoU 0.8 with gt 0: positive
            [0.0, 0.0, 10.0, 5.0],  # IoU 0.5 with gt 0: ignored
            [0.0, 0.0, 10.0, 2.0],  # IoU 0.2: negative
            [50.0, 50.0, 60.0, 55.0],  # IoU 0.5 with gt 1, its best (< 0.7): positive
            [50.0, 55.0, 60.0, 60.0],  # the same IoU, a tie: positive too
            [80.0, 80.0, 90.0, 90.0],  # touches nothing: negative
        ]
    )
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0], [50.0, 50.0, 60.0, 60.0]])
    labels, matched = anchor_targets(a, gt, (100, 100), KEEP_ALL)
    assert labels.dtype == torch.int64
    assert labels.tolist() == [1, 1, -1, 0, 1, 1, 0]
    torch.testing.assert_close(matched[[0, 1, 4, 5]], gt[[0, 0, 1, 1]])


def test_a_gt_box_touching_no_anchor_makes_no_positive() -> None:
    a = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    labels, _ = anchor_targets(a, torch.tensor([[50.0, 50.0, 60.0, 60.0]]), (100, 100), KEEP_ALL)
    assert labels.tolist() == [0, 0]


def test_border_anchors_are_ignored_unless_the_flag_is_off() -> None:
    a = torch.tensor(
        [
            [-1.0, 0.0, 10.0, 10.0],  # crosses the left border, IoU 0.91 with gt
            [0.0, 0.0, 10.0, 10.0],  # inside, touches the border: kept
            [90.0, 90.0, 100.5, 100.0],  # crosses the right border
            [40.0, 40.0, 50.0, 50.0],
        ]
    )
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    labels, _ = anchor_targets(a, gt, (100, 100), KEEP_ALL)
    assert labels.tolist() == [-1, 1, -1, 0]
    labels, _ = anchor_targets(a, gt, (100, 100), AnchorTargetConfig(batch_size=10_000, ignore_border=False))
    assert labels.tolist() == [1, 1, 0, 0]
    wide = AnchorTargetConfig(batch_size=10_000, allowed_border=1.0)
    assert anchor_targets(a, gt, (100, 100), wide)[0].tolist() == [1, 1, 0, 0]
    # a gt box's best anchor is looked for among the anchors inside: IoU 0.5 inside, 0.91 across the border
    half = torch.tensor([[0.0, 0.0, 5.0, 10.0]])
    labels, _ = anchor_targets(torch.cat((a[:1], half)), torch.tensor([[-1.0, 0.0, 9.0, 10.0]]), (100, 100))
    assert labels.tolist() == [-1, 1]


def _grid() -> tuple[torch.Tensor, torch.Tensor]:
    a = anchors((25, 25), 8, scales=(16, 32), ratios=(0.5, 1, 2))  # 3750 anchors on a 200×200 image
    gt = torch.tensor([[8.0, 8.0, 120.0, 120.0], [100.0, 60.0, 196.0, 190.0], [20.0, 130.0, 60.0, 170.0]])
    return a, gt


def test_sampling_caps_positives_at_half_and_the_total_at_256() -> None:
    a, gt = _grid()
    unsampled, _ = anchor_targets(a, gt, (200, 200), KEEP_ALL)
    assert (unsampled == 1).sum() > 128 and (unsampled == 0).sum() > 256  # the cap has work to do
    labels, _ = anchor_targets(a, gt, (200, 200), generator=torch.Generator().manual_seed(0))
    assert (labels == 1).sum() == 128 and (labels == 0).sum() == 128
    assert torch.all(unsampled[labels >= 0] == labels[labels >= 0])  # sampling only removes
    # few positives: the negatives fill up to 256
    few = torch.tensor([[20.0, 130.0, 60.0, 170.0]])
    unsampled, _ = anchor_targets(a, few, (200, 200), KEEP_ALL)
    labels, _ = anchor_targets(a, few, (200, 200))
    positives = int((unsampled == 1).sum())
    assert 0 < positives < 128
    assert (labels == 1).sum() == positives and (labels == 0).sum() == 256 - positives


def test_no_gt_boxes_gives_only_negatives() -> None:
    a, _ = _grid()
    labels, matched = anchor_targets(a, torch.zeros(0, 4), (200, 200))
    assert (labels == 0).sum() == 256 and (labels == 1).sum() == 0
    assert matched.shape == a.shape
    inside = (a[:, :2] >= 0).all(1) & (a[:, 2:] <= 200).all(1)
    assert torch.all(inside[labels == 0])


def test_seeded_generator_is_deterministic() -> None:
    a, gt = _grid()

    def run(seed: int) -> torch.Tensor:
        return anchor_targets(a, gt, (200, 200), generator=torch.Generator().manual_seed(seed))[0]

    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))
