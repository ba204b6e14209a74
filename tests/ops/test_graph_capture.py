"""The ops recorded into graphs (``rcnn_cli.ops._extension.capturing``): torch.export without a
data-dependent guard, jit.trace whose own check passes, while eager inference keeps its fast kernel."""

from __future__ import annotations

import torch

from rcnn_cli import ops


class _Pools(torch.nn.Module):
    def forward(self, x: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                ops.roi_pool(x, rois, 2, 0.5).flatten(1),
                ops.spp_pool(x, rois, (2, 1), 0.5),
                ops.roi_align(x, rois, 2, 0.5, 2, True).flatten(1),
            ],
            dim=1,
        )


def test_torch_export_records_the_ops_without_a_data_dependent_guard() -> None:
    """The RoI checks read the RoIs' values (a data-dependent branch): skipped while recording."""
    x, rois = torch.rand(1, 2, 8, 8), torch.tensor([[0, 0, 0, 7, 7], [0, 2, 2, 9, 5.0]])
    program = torch.export.export(_Pools(), (x, rois), dynamic_shapes=({2: torch.export.Dim.DYNAMIC}, None))
    targets = {str(node.target) for node in program.graph.nodes}
    assert {"rcnn_cli.roi_pool.default", "rcnn_cli.spp_pool.default", "rcnn_cli.roi_align.default"} <= targets
    other = torch.rand(1, 2, 11, 8)
    torch.testing.assert_close(program.module()(other, rois), _Pools()(other, rois))


def test_jit_trace_of_a_model_passes_its_own_check_in_grad_mode() -> None:
    """It failed: traced with grad (roi_pool, with argmax), checked under no_grad (the values-only
    kernel), two different graphs. A recorded call keeps the public op whatever the grad mode."""
    from rcnn_cli.models import FastRCNN, default_config

    torch.manual_seed(0)
    model = FastRCNN(default_config("small", 2, fc6_dim=8, fc7_dim=8)).eval()
    image, rois = torch.rand(1, 3, 48, 64), torch.tensor([[0, 0, 0, 40, 30], [0, 8, 8, 60, 47.0]])
    traced = torch.jit.trace(model, (image, rois))  # check_trace=True: raises if the graphs differ
    assert "rcnn_cli::roi_pool" in str(traced.inlined_graph)
    with torch.no_grad():
        torch.testing.assert_close(traced(image, rois), model(image, rois))


def test_eager_inference_still_takes_the_values_only_kernel() -> None:
    from rcnn_cli.ops import _extension

    x = torch.rand(1, 2, 8, 8)
    assert _extension.values_only(x) and not _extension.capturing()
    assert not _extension.values_only(x.requires_grad_())
