// Argument checks of the compiled ops, one place for every backend: the CPU kernels
// (ops/cpu/*.cpp) and the CUDA glue (ops/cuda/*_dispatch.cpp) call these same functions,
// so a direct torch.ops.rcnn_cli call is checked alike on every device.
//
// The Python wrappers (src/rcnn_cli/ops/_validate.py) check first, with friendlier
// messages; these keep a direct call from reading or writing out of bounds. Limits that
// belong to one backend only (CUDA's 8 pyramid levels) stay in that backend.
#pragma once

#include <ATen/ATen.h>

namespace rcnn_cli {

// Forward of every RoI op (roi_pool, spp_pool, roi_align): input [N, C, H, W] and rois
// [K, 5] = (batch index, x1, y1, x2, y2) of one dtype on one device.
inline void check_rois(const at::Tensor& input, const at::Tensor& rois, const char* op) {
  TORCH_CHECK(input.dim() == 4, op, ": input must be [N, C, H, W], got ", input.sizes());
  TORCH_CHECK(rois.dim() == 2 && rois.size(1) == 5, op, ": rois must be [K, 5], got ", rois.sizes());
  TORCH_CHECK(input.scalar_type() == rois.scalar_type(), op, ": input and rois must have the same dtype");
  TORCH_CHECK(input.device() == rois.device(), op, ": input and rois must be on the same device");
  // The max poolings' argmax is int32 (as torchvision's): an index inside one H x W
  // plane. Every RoI op takes the same maps, so roi_align has the limit too.
  TORCH_CHECK(input.size(2) * input.size(3) < (int64_t(1) << 31), op, ": H * W must be below 2^31");
  // The CPU kernels index the batch with rois[:, 0], so it is checked here. The CUDA kernels
  // give 0 for a RoI outside the batch instead: checking would wait for the device.
  if (rois.size(0) > 0 && rois.device().is_cpu()) {
    const at::Tensor batch = rois.select(1, 0);
    const bool ok = at::logical_and(batch.ge(0), batch.lt(input.size(0))).all().item<bool>();
    TORCH_CHECK(ok, op, ": rois[:, 0] must be batch indices in [0, ", input.size(0), ")");
  }
}

// roi_pool and roi_align: the pooled_height x pooled_width output grid.
inline void check_output_size(int64_t pooled_height, int64_t pooled_width, const char* op) {
  TORCH_CHECK(pooled_height > 0 && pooled_width > 0, op, ": output size must be positive");
}

// spp_pool: the pyramid levels (an l x l grid each).
inline void check_levels(at::IntArrayRef levels) {
  TORCH_CHECK(!levels.empty(), "spp_pool: levels must not be empty");
  for (int64_t l : levels) TORCH_CHECK(l > 0, "spp_pool: every level must be positive, got ", l);
}

// _roi_max_pool_values: grids = [h0, w0, h1, w1, ...].
inline void check_grid_pairs(at::IntArrayRef grids) {
  TORCH_CHECK(
      !grids.empty() && grids.size() % 2 == 0, "_roi_max_pool_values: grids must be (height, width) pairs");
  for (int64_t side : grids) TORCH_CHECK(side > 0, "_roi_max_pool_values: grid sizes must be positive");
}

// Backward of every RoI op: rois [K, 5] on grad's device, grad [K, ...].
inline void check_backward_rois(const at::Tensor& grad, const at::Tensor& rois, const char* op) {
  TORCH_CHECK(rois.dim() == 2 && rois.size(1) == 5, op, ": rois must be [K, 5]");
  TORCH_CHECK(grad.device() == rois.device(), op, ": grad and rois must be on the same device");
  TORCH_CHECK(grad.dim() >= 2 && grad.size(0) == rois.size(0), op, ": grad must be [K, ...]");
}

// _roi_max_pool_backward: grad and argmax in the forward's layout [K, C * sum(grid_bins)].
// Returns sum(grid_bins), the bins of one channel.
inline int64_t check_max_pool_backward(
    const at::Tensor& grad, const at::Tensor& rois, const at::Tensor& argmax, at::IntArrayRef grid_bins,
    int64_t channels) {
  constexpr const char* op = "roi_max_pool_backward";
  check_backward_rois(grad, rois, op);
  TORCH_CHECK(grad.sizes() == argmax.sizes(), op, ": grad and argmax shapes differ");
  TORCH_CHECK(argmax.scalar_type() == at::kInt, op, ": argmax must be int32");
  TORCH_CHECK(argmax.device() == grad.device(), op, ": grad and argmax must be on the same device");
  TORCH_CHECK(!grid_bins.empty(), op, ": grid_bins must not be empty");
  int64_t bins_per_channel = 0;
  for (int64_t b : grid_bins) {
    TORCH_CHECK(b > 0, op, ": grid_bins must be positive");
    bins_per_channel += b;
  }
  TORCH_CHECK(
      grad.numel() == rois.size(0) * channels * bins_per_channel, op, ": grad has ", grad.numel(),
      " elements, expected K * C * sum(grid_bins)");
  return bins_per_channel;
}

// _roi_align_backward: grad [K, C, pooled_height, pooled_width].
inline void check_roi_align_backward(
    const at::Tensor& grad, const at::Tensor& rois, int64_t channels, int64_t pooled_height, int64_t pooled_width) {
  check_backward_rois(grad, rois, "roi_align_backward");
  TORCH_CHECK(
      grad.dim() == 4 && grad.size(1) == channels && grad.size(2) == pooled_height && grad.size(3) == pooled_width,
      "roi_align_backward: grad must be [K, C, pooled_height, pooled_width]");
}

// nms: boxes [N, 4] (x1, y1, x2, y2) and their scores [N] on one device.
inline void check_nms(const at::Tensor& dets, const at::Tensor& scores) {
  TORCH_CHECK(dets.dim() == 2 && dets.size(1) == 4, "nms: boxes must be [N, 4], got ", dets.sizes());
  TORCH_CHECK(scores.dim() == 1 && scores.size(0) == dets.size(0), "nms: scores must be [N] matching boxes");
  TORCH_CHECK(dets.device() == scores.device(), "nms: boxes and scores must be on the same device");
}

}  // namespace rcnn_cli
