// Shared core of roi_pool and spp_pool on CPU.
//
// Both are "RoI max pooling over a list of grids": roi_pool is one grid of
// pooled_height x pooled_width bins, SPPnet is the grids {6x6, 3x3, 2x2, 1x1}.
// Sharing the code is what guarantees spp_pool(levels=(7,)) == roi_pool(7x7).
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
std::tuple<at::Tensor, at::Tensor> roi_max_pool_forward(
    const at::Tensor& input,
    const at::Tensor& rois,
    double spatial_scale,
    const std::vector<PoolGrid>& grids,
    bool with_argmax = true);

// grad, argmax in the forward's layout; grid_bins = h * w of each grid
// -> grad_input [batch_size, channels, height, width].
at::Tensor roi_max_pool_backward(
    const at::Tensor& grad,
    const at::Tensor& rois,
    const at::Tensor& argmax,
    at::IntArrayRef grid_bins,
    int64_t batch_size,
    int64_t channels,
    int64_t height,
    int64_t width);

// Checks shared by every RoI op (the Python wrapper checks first, with nicer
// messages; these keep a direct torch.ops call from reading out of bounds).
void check_rois(const at::Tensor& input, const at::Tensor& rois, const char* op);

}  // namespace rcnn_cli::cpu
