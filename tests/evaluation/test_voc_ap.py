"""VOC AP against hand-computed cases and a readable devkit-style loop."""

from __future__ import annotations

import numpy as np
import pytest

from rcnn_cli.evaluation.voc_ap import Detections, GroundTruth, voc_ap, voc_evaluate

A = [0.0, 0.0, 10.0, 10.0]
B = [20.0, 20.0, 30.0, 30.0]
C = [40.0, 40.0, 50.0, 50.0]
NOWHERE = [60.0, 0.0, 70.0, 10.0]


def _dets(rows: list[tuple[int, int, float, list[float]]]) -> Detections:
    return Detections(
        image_index=np.array([r[0] for r in rows]),
        labels=np.array([r[1] for r in rows]),
        scores=np.array([r[2] for r in rows]),
        boxes=np.array([r[3] for r in rows], dtype=np.float64).reshape(-1, 4),
    )


def _gt(boxes: list[list[float]], labels: list[int], difficult: list[bool] | None = None) -> GroundTruth:
    return GroundTruth(
        np.array(boxes, dtype=np.float32).reshape(-1, 4),
        np.array(labels, dtype=np.int64),
        np.array(difficult or [False] * len(labels), dtype=bool),
    )


def test_tp_fp_tp_gives_different_11_point_and_area() -> None:
    # TP, FP, TP over 2 positives: recall .5 .5 1, precision 1 .5 2/3.
    # area = .5 * 1 + .5 * 2/3; 11-point = (6 levels at precision 1 + 5 levels at 2/3) / 11.
    gt = [_gt([A, B], [1, 1])]
    dets = _dets([(0, 1, 0.9, A), (0, 1, 0.8, NOWHERE), (0, 1, 0.7, B)])
    result = voc_evaluate(gt, dets, num_classes=1)
    assert result.ap_area[0] == pytest.approx(0.5 + 1 / 3)
    assert result.ap_07[0] == pytest.approx((6 + 5 * 2 / 3) / 11)
    assert result.ap_07[0] != pytest.approx(result.ap_area[0])


def test_duplicate_is_a_false_positive() -> None:
    gt = [_gt([A, B], [1, 1])]
    shifted = [0.5, 0.0, 10.5, 10.0]  # IoU with A = 95/105 > .5, but A is taken by the better detection
    dets = _dets([(0, 1, 0.9, A), (0, 1, 0.85, shifted), (0, 1, 0.8, NOWHERE), (0, 1, 0.7, B)])
    result = voc_evaluate(gt, dets, num_classes=1)
    # recall .5 .5 .5 1, precision 1 .5 1/3 .5
    assert result.ap_area[0] == pytest.approx(0.5 * 1 + 0.5 * 0.5)
    assert result.ap_07[0] == pytest.approx((6 * 1 + 5 * 0.5) / 11)


def test_difficult_objects_are_neither_tp_nor_fp_nor_positives() -> None:
    easy = [_gt([A, B], [1, 1])]
    with_difficult = [_gt([A, B, C], [1, 1, 1], [False, False, True])]
    dets = [(0, 1, 0.9, A), (0, 1, 0.8, NOWHERE), (0, 1, 0.7, B)]
    base = voc_evaluate(easy, _dets(dets), 1)
    # A detection on the difficult box, even the best-scored one, changes nothing.
    hard = voc_evaluate(with_difficult, _dets([(0, 1, 0.95, C), *dets]), 1)
    assert hard.num_positives[0] == 2
    assert hard.ap_area[0] == pytest.approx(base.ap_area[0])
    assert hard.ap_07[0] == pytest.approx(base.ap_07[0])
    # Without the difficult flag the same box is a positive that is found: higher recall, AP changes.
    plain = voc_evaluate([_gt([A, B, C], [1, 1, 1])], _dets([(0, 1, 0.95, C), *dets]), 1)
    assert plain.num_positives[0] == 3 and plain.ap_area[0] != pytest.approx(base.ap_area[0])


def test_iou_threshold_is_inclusive_in_continuous_pixels() -> None:
    # [0,0,10,10] vs [0,0,10,20]: intersection 100, union 200 -> IoU exactly 0.5 (no +1 widths).
    gt = [_gt([[0, 0, 10, 20]], [1])]
    assert voc_evaluate(gt, _dets([(0, 1, 0.9, A)]), 1).ap_area[0] == pytest.approx(1.0)
    assert voc_evaluate(gt, _dets([(0, 1, 0.9, A)]), 1, iou_threshold=0.51).ap_area[0] == 0.0


def test_images_classes_and_empty_cases_are_kept_apart() -> None:
    gt = [_gt([A], [1]), _gt([B], [2])]
    # Right box, wrong image; right box, wrong class: both misses.
    dets = _dets([(1, 1, 0.9, A), (0, 2, 0.9, A), (1, 2, 0.5, B)])
    result = voc_evaluate(gt, dets, num_classes=3)
    assert result.ap_area[0] == 0.0 and result.ap_07[0] == 0.0
    assert result.ap_area[1] == pytest.approx(0.5)  # FP then TP: precision 1/2 at recall 1
    assert np.isnan(result.ap_area[2])  # no positives: undefined, left out of the mean
    assert result.map_area == pytest.approx(0.25)
    none = voc_evaluate(gt, Detections.empty(), num_classes=2)
    assert none.map_07 == 0.0 and none.map_area == 0.0


def test_voc_ap_curve_function() -> None:
    assert voc_ap(np.array([]), np.array([])) == 0.0
    assert voc_ap(np.array([1.0]), np.array([1.0]), use_07_metric=True) == pytest.approx(1.0)
    # recall reaches only .45: levels 0..0.4 (5 of 11) at precision 1
    assert voc_ap(np.array([0.45]), np.array([1.0]), use_07_metric=True) == pytest.approx(5 / 11)
    assert voc_ap(np.array([0.45]), np.array([1.0])) == pytest.approx(0.45)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _reference_ap(gt: list[GroundTruth], dets: Detections, k: int, use_07: bool) -> float:
    """The devkit's loop, one detection at a time."""
    taken = [np.zeros(len(g.labels), bool) for g in gt]
    npos = sum(int(((g.labels == k) & ~g.difficult).sum()) for g in gt)
    idx = [i for i in np.argsort(-dets.scores, kind="stable") if dets.labels[i] == k]
    tp, fp = [], []
    for i in idx:
        g = gt[dets.image_index[i]]
        best, jbest = -1.0, -1
        for j in range(len(g.labels)):
            if g.labels[j] == k:
                o = _iou(dets.boxes[i], g.boxes[j])
                if o > best:
                    best, jbest = o, j
        if best >= 0.5:
            if g.difficult[jbest]:
                tp.append(0)
                fp.append(0)
            elif not taken[dets.image_index[i]][jbest]:
                taken[dets.image_index[i]][jbest] = True
                tp.append(1)
                fp.append(0)
            else:
                tp.append(0)
                fp.append(1)
        else:
            tp.append(0)
            fp.append(1)
    ctp, cfp = np.cumsum(tp, dtype=float), np.cumsum(fp, dtype=float)
    rec = ctp / npos
    prec = ctp / np.maximum(ctp + cfp, np.finfo(float).eps)
    if use_07:
        return float(
            np.mean([prec[rec >= t].max() if (rec >= t).any() else 0.0 for t in np.linspace(0, 1, 11)])
        )
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    return float(
        sum((mrec[i + 1] - mrec[i]) * mpre[i + 1] for i in range(len(mrec) - 1) if mrec[i + 1] != mrec[i])
    )


@pytest.mark.parametrize("seed", range(5))
def test_matches_a_devkit_style_loop_on_random_scenes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    gt, rows = [], []
    for i in range(6):
        n = int(rng.integers(0, 6))
        xy = rng.uniform(0, 60, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(5, 30, (n, 2))], 1)
        gt.append(GroundTruth(boxes, rng.integers(1, 3, n), rng.random(n) < 0.2))
        for b in boxes:  # jittered hits, some duplicates
            for _ in range(int(rng.integers(0, 3))):
                rows.append((i, int(rng.integers(1, 3)), float(rng.random()), list(b + rng.normal(0, 2, 4))))
        for _ in range(3):  # clutter
            xy = rng.uniform(0, 60, 2)
            rows.append((i, int(rng.integers(1, 3)), float(rng.random()), [*xy, *(xy + 10)]))
    dets = _dets(rows)
    result = voc_evaluate(gt, dets, num_classes=2)
    for k in (1, 2):
        assert result.ap_07[k - 1] == pytest.approx(_reference_ap(gt, dets, k, True))
        assert result.ap_area[k - 1] == pytest.approx(_reference_ap(gt, dets, k, False))
