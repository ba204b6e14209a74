"""The ``small_context`` backbone: ``small``'s stride and width, a wider receptive field, and
residual blocks that start as the identity."""

from __future__ import annotations

import torch

from rcnn_cli.models import build_backbone
from rcnn_cli.models.backbones import DilatedResidual


def _receptive_width(backbone: torch.nn.Module, size: int = 512) -> int:
    """Width in pixels of the input region that reaches the centre output cell (non-zero gradient).

    GroupNorm's statistics span the whole map and would couple every pixel to every cell: it is
    replaced by the identity, which leaves the convolutions' geometry."""
    for module in list(backbone.modules()):
        for name, child in module.named_children():
            if isinstance(child, torch.nn.GroupNorm):
                setattr(module, name, torch.nn.Identity())
    x = torch.randn(1, 3, size, size, requires_grad=True)
    out = backbone(x)
    out[0, :, out.shape[2] // 2, out.shape[3] // 2].sum().backward()
    cols = torch.nonzero(x.grad.abs().sum(dim=(0, 1, 2)) > 0).flatten()
    return int(cols.max() - cols.min() + 1)


def test_shapes_and_stride_match_small():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 96, 128)
    small, context = build_backbone("small"), build_backbone("small_context")
    assert context(x).shape == small(x).shape == (2, 128, 12, 16)
    assert context.stride == small.stride == 8 and context.out_channels == 128
    assert [context.layer_index[f"conv{i}"] for i in (7, 8, 9)] == [18, 19, 20]


def test_residual_blocks_start_as_the_identity():
    torch.manual_seed(0)
    block = DilatedResidual(16, dilation=4)
    x = torch.randn(1, 16, 20, 20).relu()
    torch.testing.assert_close(block(x), x)
    # and the residual branch is live once its GroupNorm scale moves off zero
    with torch.no_grad():
        block.norm.weight.fill_(1.0)
    assert not torch.allclose(block(x), x)


def test_receptive_field_is_several_times_smalls():
    torch.manual_seed(0)
    small, context = build_backbone("small"), build_backbone("small_context")
    narrow, wide = _receptive_width(small), _receptive_width(context)
    # small: 3x3 convs at strides 1, 2, 4, 4, 8 and dilation 2 at stride 8 -> 71 px; the dilated
    # blocks add 2 * 8 * (2 + 4 + 8) = 224 px
    assert narrow == 71
    assert wide == 71 + 224
