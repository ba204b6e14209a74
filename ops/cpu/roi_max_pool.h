// Shared core of roi_pool and spp_pool on CPU.
//
// Both are "RoI max pooling over a list of grids": roi_pool is one grid of
// pooled_height x pooled_width bins, SPPnet is the grids {6x6, 3x3, 2x2, 1x1}.
// Sharing the code is what guarantees spp_pool(levels=(7,)) == roi_pool(7x7).
// The bin geometry is ops/roi_pool_math.h (shared with CUDA), the forward pass
// cpu/roi_max_pool_forward.cpp, the backward pass cpu/roi_max_pool_backward.cpp.
#pragma once

#include <ATen/ATen.h>

#include <tuple>
#include <vector>

namespace rcnn_cli::cpu {

struct PoolGrid {
  int64_t height;
  int64_t width;
};

// input [N, C, H, W], rois [K, 5] -> (output [K, C * sum(h*w)], argmax int32 same shape).
// Output layout: grid by grid; inside a grid channel-major (c, ph, pw).
// argmax holds h * W + w inside the (n, c) plane, or -1 for an empty bin.
// with_argmax false (inference): the same output, argmax undefined, ~a third faster.
// op names the calling op in error messages; the caller has checked the grids.
std::tuple<at::Tensor, at::Tensor> roi_max_pool_forward(
    const char* op, const at::Tensor& input, const at::Tensor& rois, double spatial_scale,
    const std::vector<PoolGrid>& grids, bool with_argmax = true);

}  // namespace rcnn_cli::cpu
