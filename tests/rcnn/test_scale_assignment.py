"""SPPnet's multi-scale option (§4.2): each window at the scale where it comes closest to 224² pixels."""

from __future__ import annotations

import pytest
import torch

from rcnn_cli.ops import RoIPool, SPPPool
from rcnn_cli.rcnn.scale_assignment import assign_scales, pool_at_assigned_scales

pytestmark = pytest.mark.usefixtures("one_thread")


def test_each_window_goes_to_the_scale_nearest_224_squared() -> None:
    boxes = torch.tensor(
        [
            [0.0, 0.0, 224.0, 224.0],  # 224² at s = 1
            [10.0, 20.0, 234.0, 244.0],  # the same size elsewhere: only the area counts
            [0.0, 0.0, 112.0, 112.0],  # 224² at s = 2
            [0.0, 0.0, 448.0, 448.0],  # 224² at s = 0.5
            [0.0, 0.0, 1000.0, 1000.0],  # too large everywhere: the smallest scale
            [0.0, 0.0, 10.0, 10.0],  # too small everywhere: the largest scale
        ]
    )
    assert assign_scales(boxes, [0.5, 1.0, 2.0]).tolist() == [1, 1, 2, 0, 0, 2]


def test_a_wide_window_by_hand() -> None:
    # 100 x 400 = 40000 px: at s = 1.0 it is 10176 short of 50176, at s = 1.25 (62500) 12324 over.
    boxes = torch.tensor([[0.0, 0.0, 400.0, 100.0]])
    assert assign_scales(boxes, [1.0, 1.25]).tolist() == [0]
    assert assign_scales(boxes, [1.0, 1.125]).tolist() == [1]  # 50625: 449 over


def test_ties_go_to_the_earlier_scale() -> None:
    box = torch.tensor([[0.0, 0.0, 10.0, 10.0]])  # 100 px: 100 at s = 1, 900 at s = 3, 500 between
    assert assign_scales(box, [1.0, 3.0], target_area=500.0).tolist() == [0]
    assert assign_scales(box, [3.0, 1.0], target_area=500.0).tolist() == [0]  # the first listed, s = 3
    empty = torch.tensor([[5.0, 5.0, 5.0, 9.0]])  # no area: every scale equally far
    assert assign_scales(empty, [0.5, 1.0, 2.0]).tolist() == [0]


def test_one_scale_is_single_scale_pooling() -> None:
    g = torch.Generator().manual_seed(0)
    features = torch.randn(1, 8, 12, 16, generator=g)
    boxes = torch.tensor([[0.0, 0.0, 60.0, 40.0], [13.5, 7.25, 101.0, 88.0], [30.0, 30.0, 31.0, 31.0]])
    pool = SPPPool((6, 3, 2, 1), 1 / 8)
    got = pool_at_assigned_scales(pool, [features], [0.75], boxes)
    rois = torch.cat([torch.zeros(3, 1), boxes * 0.75], dim=1)
    assert torch.equal(got, pool(features, rois).flatten(1))  # the same numbers, bit for bit


def test_each_window_is_pooled_from_its_own_map_in_the_boxes_order() -> None:
    g = torch.Generator().manual_seed(1)
    im_scales = [0.5, 1.0, 2.0]
    maps = [torch.randn(1, 4, round(10 * s), round(12 * s), generator=g) for s in im_scales]
    boxes = torch.tensor(
        [[0.0, 0.0, 40.0, 40.0], [0.0, 0.0, 90.0, 80.0], [4.0, 4.0, 20.0, 18.0], [8.0, 0.0, 50.0, 40.0]]
    )
    pool = RoIPool((2, 2), 1 / 4)
    got = pool_at_assigned_scales(pool, maps, im_scales, boxes, target_area=40.0**2)
    assigned = assign_scales(boxes, im_scales, target_area=40.0**2)
    # Against 1600 px: 1600 at s = 1; 7200 px is 1800 at s = 0.5; 224 px is 896 at s = 2 (and 224 at
    # s = 1); 1680 px is 1680 at s = 1 (420 at s = 0.5).
    assert assigned.tolist() == [1, 0, 2, 1]
    for r, index in enumerate(assigned.tolist()):
        s = im_scales[index]
        roi = torch.cat([torch.zeros(1, 1), boxes[r : r + 1] * s], dim=1)
        assert torch.equal(got[r], pool(maps[index], roi).flatten(1)[0])


def test_gradients_reach_the_maps_and_no_windows_give_no_rows() -> None:
    maps = [torch.randn(1, 3, 6, 6, requires_grad=True), torch.randn(1, 3, 12, 12, requires_grad=True)]
    boxes = torch.tensor([[0.0, 0.0, 8.0, 8.0]])  # 64 px: 256 at s = 2, nearer 400 than 64 at s = 1
    pooled = pool_at_assigned_scales(SPPPool((2, 1), 1 / 2), maps, [1.0, 2.0], boxes, target_area=400.0)
    pooled.sum().backward()
    assert maps[0].grad is None or not maps[0].grad.any()
    assert maps[1].grad is not None and maps[1].grad.any()
    empty = pool_at_assigned_scales(SPPPool((2, 1), 1 / 2), maps, [1.0, 2.0], torch.zeros(0, 4))
    assert empty.shape == (0, 3 * 5)
    with pytest.raises(ValueError, match="one scale per map"):
        pool_at_assigned_scales(SPPPool((2, 1)), maps, [1.0], boxes)
