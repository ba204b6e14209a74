// Torch glue of the CUDA RoI max pooling (roi_pool, spp_pool and their backward):
// checks tensors, dispatches the dtype, calls the launchers of roi_max_pool.cu on
// the current stream.
#include <torch/library.h>

#include <vector>

#include "cuda/dispatch.h"

namespace rcnn_cli::cuda {

namespace {

PoolGrids make_grids(const std::vector<std::pair<int64_t, int64_t>>& sizes) {
  TORCH_CHECK(
      !sizes.empty() && sizes.size() <= static_cast<size_t>(kMaxGrids), "roi_max_pool: between 1 and ",
      kMaxGrids, " grids on CUDA");
  PoolGrids grids{};
  grids.count = static_cast<int>(sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    TORCH_CHECK(sizes[i].first > 0 && sizes[i].second > 0, "roi_max_pool: grid sizes must be positive");
    grids.height[i] = static_cast<int>(sizes[i].first);
    grids.width[i] = static_cast<int>(sizes[i].second);
  }
  return grids;
}

int64_t bins_of(const PoolGrids& grids) {
  int64_t bins = 0;
  for (int i = 0; i < grids.count; ++i) bins += static_cast<int64_t>(grids.height[i]) * grids.width[i];
  return bins;
}

void check_inputs(const at::Tensor& input, const at::Tensor& rois, const char* op) {
  TORCH_CHECK(input.is_cuda() && rois.is_cuda(), op, ": input and rois must be CUDA tensors");
  TORCH_CHECK(input.dim() == 4, op, ": input must be [N, C, H, W]");
  TORCH_CHECK(rois.dim() == 2 && rois.size(1) == 5, op, ": rois must be [K, 5]");
  TORCH_CHECK(input.scalar_type() == rois.scalar_type(), op, ": input and rois must have the same dtype");
  TORCH_CHECK(input.get_device() == rois.get_device(), op, ": input and rois must be on the same GPU");
  TORCH_CHECK(input.size(2) * input.size(3) < (int64_t(1) << 31), op, ": H * W must be below 2^31");
}

std::tuple<at::Tensor, at::Tensor> forward(
    const at::Tensor& input, const at::Tensor& rois, double spatial_scale, const PoolGrids& grids, const char* op) {
  check_inputs(input, rois, op);
  const c10::cuda::CUDAGuard guard(input.device());
  const int64_t num_rois = rois.size(0);
  const int64_t channels = input.size(1);
  at::Tensor output = at::zeros({num_rois, channels * bins_of(grids)}, input.options());
  at::Tensor argmax = at::full({num_rois, channels * bins_of(grids)}, -1, input.options().dtype(at::kInt));
  if (output.numel() == 0 || input.numel() == 0) return {output, argmax};
  const at::Tensor input_c = input.contiguous();
  const at::Tensor rois_c = rois.contiguous();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "roi_max_pool_forward_cuda", [&] {
    check_launch(
        roi_max_pool_forward(
            cuda_ptr<scalar_t>(input_c), cuda_ptr<scalar_t>(rois_c), input.size(0), channels, input.size(2),
            input.size(3), num_rois, spatial_scale, grids, cuda_ptr<scalar_t>(output),
            argmax.data_ptr<int32_t>(), stream),
        op);
  });
  return {output, argmax};
}

std::tuple<at::Tensor, at::Tensor> roi_pool_cuda(
    const at::Tensor& input,
    const at::Tensor& rois,
    double spatial_scale,
    int64_t pooled_height,
    int64_t pooled_width) {
  const PoolGrids grids = make_grids({{pooled_height, pooled_width}});
  auto [output, argmax] = forward(input, rois, spatial_scale, grids, "roi_pool");
  const int64_t k = rois.size(0), c = input.size(1);
  return {output.view({k, c, pooled_height, pooled_width}), argmax.view({k, c, pooled_height, pooled_width})};
}

std::tuple<at::Tensor, at::Tensor> spp_pool_cuda(
    const at::Tensor& input,
    const at::Tensor& rois,
    double spatial_scale,
    at::IntArrayRef levels) {
  std::vector<std::pair<int64_t, int64_t>> sizes;
  for (int64_t l : levels) sizes.emplace_back(l, l);
  return forward(input, rois, spatial_scale, make_grids(sizes), "spp_pool");
}

// grid_bins only tells how a row splits into grids; the kernel needs (h, w) per
// grid just for the bin count, so a grid of b bins is passed as 1 x b.
at::Tensor roi_max_pool_backward_cuda(
    const at::Tensor& grad,
    const at::Tensor& rois,
    const at::Tensor& argmax,
    at::IntArrayRef grid_bins,
    int64_t batch_size,
    int64_t channels,
    int64_t height,
    int64_t width) {
  TORCH_CHECK(grad.is_cuda() && rois.is_cuda() && argmax.is_cuda(), "roi_max_pool_backward: CUDA tensors expected");
  TORCH_CHECK(grad.sizes() == argmax.sizes(), "roi_max_pool_backward: grad and argmax shapes differ");
  TORCH_CHECK(argmax.scalar_type() == at::kInt, "roi_max_pool_backward: argmax must be int32");
  TORCH_CHECK(rois.dim() == 2 && rois.size(1) == 5, "roi_max_pool_backward: rois must be [K, 5]");
  const c10::cuda::CUDAGuard guard(grad.device());
  std::vector<std::pair<int64_t, int64_t>> sizes;
  for (int64_t b : grid_bins) sizes.emplace_back(1, b);
  const PoolGrids grids = make_grids(sizes);
  const int64_t num_rois = rois.size(0);
  TORCH_CHECK(
      grad.numel() == num_rois * channels * bins_of(grids),
      "roi_max_pool_backward: grad must have K * C * sum(grid_bins) elements");
  at::Tensor grad_acc =
      at::zeros({batch_size, channels, height, width}, grad.options().dtype(acc_dtype(grad.scalar_type())));
  if (grad.numel() > 0) {
    const at::Tensor grad_c = grad.contiguous();
    const at::Tensor argmax_c = argmax.contiguous();
    const at::Tensor rois_c = rois.to(grad.scalar_type()).contiguous();
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "roi_max_pool_backward_cuda", [&] {
      using acc_t = Acc<typename CudaScalar<scalar_t>::type>;
      check_launch(
          roi_max_pool_backward(
              cuda_ptr<scalar_t>(grad_c), cuda_ptr<scalar_t>(rois_c), argmax_c.data_ptr<int32_t>(), batch_size,
              channels, height, width, num_rois, grids, grad_acc.data_ptr<acc_t>(), stream),
          "roi_max_pool_backward");
    });
  }
  return grad_acc.to(grad.scalar_type());
}

}  // namespace

TORCH_LIBRARY_IMPL(rcnn_cli, CUDA, m) {
  m.impl("roi_pool", &roi_pool_cuda);
  m.impl("spp_pool", &spp_pool_cuda);
  m.impl("_roi_max_pool_backward", &roi_max_pool_backward_cuda);
}

}  // namespace rcnn_cli::cuda
