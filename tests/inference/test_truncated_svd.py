"""Truncated SVD of nn.Linear layers: shapes, exactness at full rank, errors, bad ranks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rcnn_cli.errors import RcnnError
from rcnn_cli.inference.truncated_svd import compress_layers, truncated_svd
from rcnn_cli.models.low_rank import apply_low_rank_structure


def _linear(u: int, v: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> nn.Linear:
    torch.manual_seed(seed)
    layer = nn.Linear(v, u, dtype=dtype)
    nn.init.normal_(layer.bias)
    return layer


@pytest.mark.parametrize(("u", "v"), [(12, 30), (30, 12), (16, 16)])
def test_full_rank_reproduces_outputs(u: int, v: int) -> None:
    layer = _linear(u, v)
    x = torch.randn(7, v)
    factorized, error = truncated_svd(layer, min(u, v))
    torch.testing.assert_close(factorized(x), layer(x), rtol=1e-5, atol=1e-5)
    assert error == pytest.approx(0.0, abs=1e-6)


def test_structure_matches_the_paper() -> None:
    layer = _linear(20, 50)
    factorized, _ = truncated_svd(layer, 4)
    first, second = factorized
    assert first.weight.shape == (4, 50) and first.bias is None  # Σ_t V_tᵀ
    assert second.weight.shape == (20, 4)  # U_t
    torch.testing.assert_close(second.bias, layer.bias)  # original bias, unchanged
    # U_t has orthonormal columns
    torch.testing.assert_close(second.weight.T @ second.weight, torch.eye(4), atol=1e-5, rtol=0)


def test_low_rank_equals_best_approximation_and_error_matches() -> None:
    layer = _linear(24, 40, dtype=torch.float64)
    W = layer.weight.detach()
    rank = 5
    factorized, error = truncated_svd(layer, rank)
    approx = factorized[1].weight @ factorized[0].weight
    # Eckart-Young: the rank-t truncation error is the tail of the singular values.
    s = torch.linalg.svdvals(W)
    assert torch.linalg.matrix_norm(W - approx).item() == pytest.approx(s[rank:].norm().item(), rel=1e-9)
    assert error == pytest.approx((torch.linalg.matrix_norm(W - approx) / torch.linalg.matrix_norm(W)).item())
    x = torch.randn(3, 40, dtype=torch.float64)
    torch.testing.assert_close(factorized(x), x @ approx.T + layer.bias)


def test_an_exactly_low_rank_weight_is_recovered() -> None:
    layer = _linear(30, 30)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(30, 3) @ torch.randn(3, 30))
    factorized, error = truncated_svd(layer, 3)
    x = torch.randn(5, 30)
    torch.testing.assert_close(factorized(x), layer(x), rtol=1e-4, atol=1e-4)
    assert error < 1e-5


class _Head(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc6 = _linear(16, 40, seed=1)
        self.fc7 = _linear(16, 16, seed=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc7(torch.relu(self.fc6(x)))


def test_compress_layers_reports_and_round_trips_through_a_state_dict() -> None:
    head = _Head()
    reports = compress_layers(head, {"fc6": 8, "fc7": 4})
    by_name = {r.name: r for r in reports}
    assert by_name["fc6"].params_before == 16 * 40 + 16
    assert by_name["fc6"].params_after == 8 * 40 + 16 * 8 + 16
    assert by_name["fc7"].shape == (16, 16) and 0 < by_name["fc7"].relative_error < 1
    # A fresh head given the recorded ranks loads the compressed weights and computes the same thing.
    fresh = _Head()
    apply_low_rank_structure(fresh, {"fc6": 8, "fc7": 4})
    fresh.load_state_dict(head.state_dict())
    x = torch.randn(2, 40)
    torch.testing.assert_close(fresh(x), head(x))


def test_bad_ranks_are_refused_before_anything_changes() -> None:
    head = _Head()
    with pytest.raises(RcnnError, match=r"rank 17 for fc7 \(16x16\).*1\.\.16"):
        compress_layers(head, {"fc6": 8, "fc7": 17})
    assert isinstance(head.fc6, nn.Linear)  # untouched
    with pytest.raises(RcnnError, match="rank 0"):
        truncated_svd(head.fc6, 0)
    compress_layers(head, {"fc6": 8})
    with pytest.raises(RcnnError, match="already factorized"):
        compress_layers(head, {"fc6": 4})
    with pytest.raises(RcnnError, match="no layer 'fc8'"):
        compress_layers(head, {"fc8": 4})
