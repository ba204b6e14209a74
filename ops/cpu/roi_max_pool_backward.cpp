// Backward pass of RoI max pooling on CPU, shared by roi_pool and spp_pool
// (_roi_max_pool_backward): each output gradient is added to the input element its
// argmax names (none for an empty bin, argmax -1).
//
// One task per channel range; each task walks the RoIs in order (a block of channels at a
// time), so every input element receives its sum in the same order whatever the thread
// count: deterministic, no atomics. Small batches run as one task.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "arg_checks.h"

namespace rcnn_cli::cpu {

namespace {

// Channels per pass over the RoIs: the gradient planes of 16 channels of both images of a
// 38x50 map are ~240 KB, so the scatters of a pass hit L2; all 512 channels' planes (3.9 MB)
// would not fit and every scatter would go to L3.
constexpr int64_t kChannelBlock = 16;

// Scatters below which the whole backward is one task (about 1 ms at 1 thread): a training
// minibatch of 128 RoIs is 3.2M scatters, where waking and joining a second thread costs
// more than it saves, and more so when the other core is busy.
constexpr int64_t kMinParallelWork = int64_t(1) << 22;

template <typename T>
void backward_kernel(
    const T* grad, const T* rois, const int32_t* argmax, int64_t num_rois, int64_t channels, int64_t plane_size,
    const std::vector<int64_t>& grid_bins, int64_t bins_per_channel, T* grad_input) {
  const int64_t roi_stride = channels * bins_per_channel;
  const int64_t per_channel = std::max<int64_t>(num_rois * bins_per_channel, 1);
  const int64_t grain = per_channel * channels < kMinParallelWork ? channels : 1;
  at::parallel_for(0, channels, grain, [&](int64_t c_begin, int64_t c_end) {
    for (int64_t c_block = c_begin; c_block < c_end; c_block += kChannelBlock) {
      const int64_t c_block_end = std::min(c_block + kChannelBlock, c_end);
      for (int64_t k = 0; k < num_rois; ++k) {
        const int64_t n = static_cast<int64_t>(rois[k * 5]);
        int64_t grid_offset = 0;
        for (int64_t bins : grid_bins) {
          for (int64_t c = c_block; c < c_block_end; ++c) {
            const int64_t offset = k * roi_stride + grid_offset * channels + c * bins;
            const T* g = grad + offset;
            const int32_t* a = argmax + offset;
            T* plane = grad_input + (n * channels + c) * plane_size;
            for (int64_t j = 0; j < bins; ++j) {
              if (a[j] >= 0) plane[a[j]] += g[j];
            }
          }
          grid_offset += bins;
        }
      }
    }
  });
}

// grad, argmax in the forward's layout; grid_bins = h * w of each grid
// -> grad_input [batch_size, channels, height, width].
at::Tensor roi_max_pool_backward_cpu(
    const at::Tensor& grad, const at::Tensor& rois, const at::Tensor& argmax, at::IntArrayRef grid_bins,
    int64_t batch_size, int64_t channels, int64_t height, int64_t width) {
  const int64_t bins_per_channel = check_max_pool_backward(grad, rois, argmax, grid_bins, channels);
  at::Tensor grad_input = at::zeros({batch_size, channels, height, width}, grad.options());
  const int64_t num_rois = rois.size(0);
  if (num_rois == 0 || grad.numel() == 0) return grad_input;
  const at::Tensor grad_c = grad.contiguous();
  const at::Tensor argmax_c = argmax.contiguous();
  const at::Tensor rois_c = rois.to(grad.scalar_type()).contiguous();
  const std::vector<int64_t> bins(grid_bins.begin(), grid_bins.end());
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "roi_max_pool_backward", [&] {
    backward_kernel<scalar_t>(
        grad_c.data_ptr<scalar_t>(), rois_c.data_ptr<scalar_t>(), argmax_c.data_ptr<int32_t>(), num_rois, channels,
        height * width, bins, bins_per_channel, grad_input.data_ptr<scalar_t>());
  });
  return grad_input;
}

}  // namespace

TORCH_LIBRARY_IMPL(rcnn_cli, CPU, m) {
  m.impl("_roi_max_pool_backward", &roi_max_pool_backward_cpu);
}

}  // namespace rcnn_cli::cpu
