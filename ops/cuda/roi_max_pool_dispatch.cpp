// Torch glue of the CUDA RoI max pooling (roi_pool, spp_pool and their backward):
// checks tensors (ops/arg_checks.h), dispatches the dtype, calls the launchers of
// roi_max_pool.cu on the current stream.
#include <torch/library.h>

#include <utility>
#include <vector>

#include "arg_checks.h"
#include "cuda/dispatch.h"

namespace rcnn_cli::cuda {

namespace {

// (height, width) of each grid, already checked, as the kernels take them. At most
// kMaxGrids: a limit of the CUDA kernels only (the grids are a kernel argument).
PoolGrids make_grids(const std::vector<std::pair<int64_t, int64_t>>& sizes) {
  TORCH_CHECK(sizes.size() <= static_cast<size_t>(kMaxGrids), "roi_max_pool: at most ", kMaxGrids, " grids on CUDA");
  PoolGrids grids{};
  grids.count = static_cast<int>(sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    grids.height[i] = static_cast<int>(sizes[i].first);
    grids.width[i] = static_cast<int>(sizes[i].second);
  }
  return grids;
}

std::tuple<at::Tensor, at::Tensor> forward(
    const char* op, const at::Tensor& input, const at::Tensor& rois, double spatial_scale, const PoolGrids& grids) {
  check_rois(input, rois, op);
  const c10::cuda::CUDAGuard guard(input.device());
  const int64_t num_rois = rois.size(0);
  const int64_t channels = input.size(1);
  at::Tensor output = at::zeros({num_rois, channels * total_bins(grids)}, input.options());
  at::Tensor argmax = at::full({num_rois, channels * total_bins(grids)}, -1, input.options().dtype(at::kInt));
  if (output.numel() == 0 || input.numel() == 0) return {output, argmax};
  const at::Tensor input_c = input.contiguous();
  const at::Tensor rois_c = rois.contiguous();
  launch_for(input.scalar_type(), op, [&](auto tag, cudaStream_t stream) {
    using scalar_t = decltype(tag);
    return roi_max_pool_forward(
        cuda_ptr<scalar_t>(input_c), cuda_ptr<scalar_t>(rois_c), input.size(0), channels, input.size(2),
        input.size(3), num_rois, spatial_scale, grids, cuda_ptr<scalar_t>(output), argmax.data_ptr<int32_t>(),
        stream);
  });
  return {output, argmax};
}

std::tuple<at::Tensor, at::Tensor> roi_pool_cuda(
    const at::Tensor& input, const at::Tensor& rois, double spatial_scale, int64_t pooled_height,
    int64_t pooled_width) {
  check_output_size(pooled_height, pooled_width, "roi_pool");
  auto [output, argmax] = forward("roi_pool", input, rois, spatial_scale, make_grids({{pooled_height, pooled_width}}));
  const int64_t k = rois.size(0), c = input.size(1);
  return {output.view({k, c, pooled_height, pooled_width}), argmax.view({k, c, pooled_height, pooled_width})};
}

std::tuple<at::Tensor, at::Tensor> spp_pool_cuda(
    const at::Tensor& input, const at::Tensor& rois, double spatial_scale, at::IntArrayRef levels) {
  check_levels(levels);
  std::vector<std::pair<int64_t, int64_t>> sizes;
  for (int64_t l : levels) sizes.emplace_back(l, l);
  return forward("spp_pool", input, rois, spatial_scale, make_grids(sizes));
}

// grid_bins only tells how a row splits into grids; the kernel needs (h, w) per
// grid just for the bin count, so a grid of b bins is passed as 1 x b.
at::Tensor roi_max_pool_backward_cuda(
    const at::Tensor& grad, const at::Tensor& rois, const at::Tensor& argmax, at::IntArrayRef grid_bins,
    int64_t batch_size, int64_t channels, int64_t height, int64_t width) {
  check_max_pool_backward(grad, rois, argmax, grid_bins, channels);
  const c10::cuda::CUDAGuard guard(grad.device());
  std::vector<std::pair<int64_t, int64_t>> sizes;
  for (int64_t b : grid_bins) sizes.emplace_back(1, b);
  const PoolGrids grids = make_grids(sizes);
  const at::Tensor grad_c = grad.contiguous();
  const at::Tensor argmax_c = argmax.contiguous();
  const at::Tensor rois_c = rois.to(grad.scalar_type()).contiguous();
  return grad_input_of(
      grad, {batch_size, channels, height, width}, "roi_max_pool_backward",
      [&](auto tag, auto* out, cudaStream_t stream) {
        using scalar_t = decltype(tag);
        return roi_max_pool_backward(
            cuda_ptr<scalar_t>(grad_c), cuda_ptr<scalar_t>(rois_c), argmax_c.data_ptr<int32_t>(), batch_size,
            channels, height, width, rois.size(0), grids, out, stream);
      });
}

}  // namespace

TORCH_LIBRARY_IMPL(rcnn_cli, CUDA, m) {
  m.impl("roi_pool", &roi_pool_cuda);
  m.impl("spp_pool", &spp_pool_cuda);
  m.impl("_roi_max_pool_backward", &roi_max_pool_backward_cuda);
}

}  // namespace rcnn_cli::cuda
