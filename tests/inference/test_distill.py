"""Distillation of truncated-SVD layers: the loss by hand, the RoI bank, and that it brings a factorized
head back towards the original on images it did not see."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from rcnn_cli.errors import RcnnError
from rcnn_cli.inference.detect import DetectConfig, Detector
from rcnn_cli.inference.distill import (
    DistillConfig,
    RoiBank,
    collect_rois,
    distill_layers,
    distillation_loss,
    pick_calibration,
    teacher_copy,
)
from rcnn_cli.inference.distill.bank import choose_rois, head_outputs
from rcnn_cli.inference.distill.loss import measure
from rcnn_cli.inference.truncated_svd import compress_layers
from rcnn_cli.models import load_checkpoint
from support.inference import small_checkpoint


def test_loss_is_zero_when_the_student_answers_as_the_teacher() -> None:
    logits, deltas = torch.randn(5, 3), torch.randn(5, 3, 4)
    kl, box = distillation_loss(logits, deltas, logits.clone(), deltas.clone(), torch.ones(3, 4))
    assert float(kl) == pytest.approx(0.0, abs=1e-6) and float(box) == 0.0


def test_loss_by_hand() -> None:
    # Teacher p = (0.5, 0.5); student q = (0.25, 0.75).
    teacher_logits = torch.zeros(1, 2)
    student_logits = torch.log(torch.tensor([[1.0, 3.0]]))
    teacher_deltas = torch.zeros(1, 2, 4)
    student_deltas = torch.zeros(1, 2, 4)
    student_deltas[0, 0] = 5.0  # background deltas: no box, no cost
    student_deltas[0, 1, 0] = 1.0  # class 1, x: error 1, scaled by σ = 0.5 -> 2, squared 4, times p_1
    scale = torch.tensor([[1.0] * 4, [0.5, 1, 1, 1]])
    kl, box = distillation_loss(student_logits, student_deltas, teacher_logits, teacher_deltas, scale)
    assert float(kl) == pytest.approx(0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75), rel=1e-6)
    assert float(box) == pytest.approx(0.5 * 4.0, rel=1e-6)


def test_delta_scale_is_the_probability_weighted_spread() -> None:
    # Class 1 is certain on RoIs 0 and 1 and absent on RoI 2: only the first two count for it.
    logits = torch.tensor([[-20.0, 20.0], [-20.0, 20.0], [20.0, -20.0]])
    deltas = torch.zeros(3, 2, 4)
    deltas[:, 1, 0] = torch.tensor([1.0, 3.0, 100.0])
    scale = RoiBank(torch.zeros(3, 1), logits, deltas, images=1).delta_scale()
    assert float(scale[1, 0]) == pytest.approx(1.0, rel=1e-5)  # std of {1, 3}
    assert float(scale[1, 1]) == pytest.approx(1e-4)  # no spread: floored, never a division by 0


def test_bank_takes_the_most_object_like_rois_then_random_ones() -> None:
    fg = torch.tensor([0.9, 0.001, 0.5, 0.002, 0.3, 0.0, 0.02, 0.6])
    logits = torch.log(torch.stack([1 - fg, fg], 1))
    chosen = choose_rois(logits, 6, torch.Generator().manual_seed(0))
    assert len(chosen) == 6 and len(set(chosen.tolist())) == 6
    assert chosen[:3].tolist() == [0, 7, 2]  # the best half, best first
    assert set(chosen.tolist()) >= {0, 7, 2}
    # With fewer object-like RoIs than half the budget, only those count as "hot".
    few = choose_rois(logits, 16, torch.Generator().manual_seed(0))
    assert sorted(few.tolist()) == list(range(8)) and few[:5].tolist() == [0, 7, 2, 4, 6]


def test_pick_calibration_is_a_seeded_ordered_subset() -> None:
    items = list(range(20))
    a = pick_calibration(items, 5, seed=3)
    assert a == sorted(a) and len(set(a)) == 5 and a == pick_calibration(items, 5, seed=3)
    assert pick_calibration(items, 50) == items


def _images(count: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        rgb = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
        x1, y1 = rng.uniform(0, 40, 60), rng.uniform(0, 30, 60)
        boxes = np.stack([x1, y1, x1 + rng.uniform(4, 24, 60), y1 + rng.uniform(4, 18, 60)], 1)
        out.append((rgb, boxes.astype(np.float32)))
    return out


CONFIG = DistillConfig(rois_per_image=40, steps=300, batch_size=128, lr=3e-3)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """(teacher, plain SVD student, distilled student, report, bank, held-out bank) for one small model."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the one_thread fixture, for the module's whole setup
    try:
        path = small_checkpoint(tmp_path_factory.mktemp("distill") / "model.pt")
        model, meta = load_checkpoint(path)
        teacher = teacher_copy(model)
        compress_layers(model.head, {"fc6": 4, "fc7": 3})
        plain = copy.deepcopy(model)
        detector = Detector(teacher, meta["class_names"], DetectConfig(), "cpu", meta["config"])
        bank = collect_rois(detector, _images(6, seed=0), CONFIG)
        report = distill_layers(model.head, bank, ["fc6", "fc7"], CONFIG)
        held_out = collect_rois(detector, _images(3, seed=1), CONFIG)
    finally:
        torch.set_num_threads(threads)
    return teacher, plain, model, report, bank, held_out


def test_bank_holds_the_teachers_outputs(trained) -> None:  # type: ignore[no-untyped-def]
    teacher, _plain, _student, _report, bank, _held = trained
    assert bank.images == 6 and len(bank) == 6 * 40
    assert bank.pooled.shape == (len(bank), teacher.head.fc6.in_features)
    assert bank.logits.shape == (len(bank), 3) and bank.deltas.shape == (len(bank), 3, 4)
    with torch.no_grad():
        x = teacher.head.fc7(teacher.head.fc6(bank.pooled[:7]).relu()).relu()
        torch.testing.assert_close(bank.logits[:7], teacher.head.cls_score(x))
        torch.testing.assert_close(bank.deltas[:7], teacher.head.bbox_pred(x).view(7, 3, 4))


def test_the_bank_and_the_loss_use_the_test_time_head(trained) -> None:  # type: ignore[no-untyped-def]
    teacher, _plain, _student, _report, bank, _held = trained
    head = copy.deepcopy(teacher.head).train()
    head.dropout.p = 0.9  # would scramble every output if it were applied
    logits, deltas = head_outputs(head, bank.pooled[:5])
    assert head.training  # its own mode again after
    torch.testing.assert_close(logits, bank.logits[:5])
    torch.testing.assert_close(deltas, bank.deltas[:5])


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"images": 0}, "--distill-images and --distill-steps must be >= 1"),
        ({"steps": 0}, "--distill-images and --distill-steps must be >= 1"),
        ({"batch_size": 0}, "rois_per_image, batch_size and max_bank_mib >= 1, got 256, 0, 2048"),
        ({"lr": -1.0}, "the distillation lr must be > 0, got -1.0"),
    ],
)
def test_a_bad_distill_setting_is_one_error(fields: dict, message: str) -> None:
    with pytest.raises(RcnnError) as err:
        DistillConfig(**fields)
    assert message in str(err.value)


def test_distillation_brings_the_student_closer_on_unseen_images(trained) -> None:  # type: ignore[no-untyped-def]
    _teacher, plain, student, report, bank, held_out = trained
    scale = bank.delta_scale()
    # On the bank: the report's "before" is the plain SVD, its "after" the distilled layers.
    assert report.kl_before == pytest.approx(measure(plain.head, bank, scale)[0], rel=1e-5)
    assert report.kl_after == pytest.approx(measure(student.head, bank, scale)[0], rel=1e-5)
    assert report.kl_after < 0.5 * report.kl_before and report.box_after < report.box_before
    assert report.agreement_after >= report.agreement_before
    # On RoIs of images it never saw, the distilled head is still closer to the original.
    kl_plain, box_plain, _ = measure(plain.head, held_out, scale)
    kl_student, box_student, _ = measure(student.head, held_out, scale)
    assert kl_student < 0.7 * kl_plain and box_student < box_plain


def test_only_the_factorized_layers_change(trained) -> None:  # type: ignore[no-untyped-def]
    _teacher, plain, student, _report, _bank, _held = trained
    before, after = plain.state_dict(), student.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(("fc6.", "fc7.")) for k in changed)
    assert all(p.requires_grad for p in student.parameters())  # trainability restored


def test_distillation_is_deterministic(trained, one_thread) -> None:  # type: ignore[no-untyped-def]
    # One thread, as the fixture trained: float sums split over other thread counts differ in the last bits.
    _teacher, plain, student, _report, bank, _held = trained
    again = copy.deepcopy(plain)
    distill_layers(again.head, bank, ["fc6", "fc7"], CONFIG)
    for a, b in zip(again.state_dict().values(), student.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_nothing_to_learn_from_is_an_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model, meta = load_checkpoint(small_checkpoint(tmp_path / "m.pt"))
    detector = Detector(model, meta["class_names"], DetectConfig(), "cpu", meta["config"])
    empty = [(np.zeros((48, 64, 3), np.uint8), np.zeros((0, 4), np.float32))]
    with pytest.raises(RcnnError, match="no image with proposals"):
        collect_rois(detector, empty)


def test_calibration_images_skip_what_cannot_be_read(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    from rcnn_cli.errors import DataError
    from rcnn_cli.inference.distill import calibration_images
    from support.inference import write_images

    paths = write_images(tmp_path / "images", 3)
    paths[2].write_bytes(b"not an image")
    records = [SimpleNamespace(image_id=p.stem, path=p) for p in paths]

    def proposals(record, _rgb):  # type: ignore[no-untyped-def]
        if record.image_id == "img0":
            raise DataError(tmp_path / "props" / "img0.npz", "no proposals for image 'img0'")
        return np.zeros((1, 4), np.float32)

    messages: list[str] = []
    pairs = list(calibration_images(records, proposals, messages.append))
    assert len(pairs) == 1 and pairs[0][0].shape == (48, 64, 3)
    assert len(messages) == 2 and "img0" in messages[0] and "img2" in messages[1]
