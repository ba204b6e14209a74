// RoI max pooling on CUDA: roi_pool (one grid) and spp_pool (a pyramid of grids)
// share these kernels, so an SPP pyramid is ONE launch, not a launch per level.
// The bin geometry (torchvision's quantization) is shared with the CPU kernels:
// ops/roi_pool_math.h.
//
// Forward: one thread per output element (RoI, grid, channel, bin), grid-stride loop.
// Backward: one thread per output gradient, atomicAdd into an Acc<T> buffer (so half
// and bfloat16 gradients are summed in float), converted by the caller.
#include "common.cuh"
#include "roi_pool_math.h"

namespace rcnn_cli::cuda {

namespace {

// Decodes a column of the [K, C * sum(h*w)] layout into (grid, channel, bin).
__device__ __forceinline__ void decode_column(
    int64_t column, int64_t channels, const PoolGrids& grids, int* grid, int64_t* c, int64_t* bin) {
  int64_t offset = 0;
  for (int g = 0; g < grids.count; ++g) {
    const int64_t bins = static_cast<int64_t>(grids.height[g]) * grids.width[g];
    if (column < offset + channels * bins) {
      *grid = g;
      *c = (column - offset) / bins;
      *bin = (column - offset) % bins;
      return;
    }
    offset += channels * bins;
  }
  *grid = grids.count - 1;
  *c = 0;
  *bin = 0;
}

template <typename T>
__global__ void roi_max_pool_forward_kernel(
    const T* __restrict__ input, const T* __restrict__ rois, int64_t batch_size, int64_t channels,
    int64_t height, int64_t width, int64_t num_rois, Acc<T> spatial_scale, PoolGrids grids,
    int64_t roi_stride, T* __restrict__ output, int32_t* __restrict__ argmax) {
  using A = Acc<T>;
  const int64_t total = num_rois * roi_stride;
  for (int64_t index = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; index < total;
       index += int64_t(blockDim.x) * gridDim.x) {
    const int64_t k = index / roi_stride;
    int grid;
    int64_t c, bin_index;
    decode_column(index % roi_stride, channels, grids, &grid, &c, &bin_index);
    const T* roi = rois + k * 5;
    const int64_t n = static_cast<int64_t>(to_acc(roi[0]));
    if (n < 0 || n >= batch_size) {  // the Python wrapper rejects these; never read out of bounds
      output[index] = from_acc<T>(A(0));
      argmax[index] = -1;
      continue;
    }
    const roi_pool_math::Window window = roi_pool_math::roi_window<A>(
        to_acc(roi[1]), to_acc(roi[2]), to_acc(roi[3]), to_acc(roi[4]), spatial_scale);
    const int64_t pooled_width = grids.width[grid];
    const roi_pool_math::Bin b = roi_pool_math::roi_bin<A>(
        window, grids.height[grid], pooled_width, bin_index / pooled_width, bin_index % pooled_width, height, width);

    A maxval = b.empty() ? A(0) : A(roi_pool_math::kMaxStart);
    int32_t maxidx = -1;
    const T* plane = input + (n * channels + c) * height * width;
    for (int64_t h = b.hstart; h < b.hend; ++h) {
      for (int64_t w = b.wstart; w < b.wend; ++w) {
        const A v = to_acc(plane[h * width + w]);
        if (v > maxval) {
          maxval = v;
          maxidx = static_cast<int32_t>(h * width + w);
        }
      }
    }
    output[index] = from_acc<T>(maxval);
    argmax[index] = maxidx;
  }
}

template <typename T>
__global__ void roi_max_pool_backward_kernel(
    const T* __restrict__ grad, const T* __restrict__ rois, const int32_t* __restrict__ argmax,
    int64_t batch_size, int64_t channels, int64_t height, int64_t width, int64_t num_rois, PoolGrids grids,
    int64_t roi_stride, Acc<T>* __restrict__ grad_input) {
  const int64_t total = num_rois * roi_stride;
  for (int64_t index = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; index < total;
       index += int64_t(blockDim.x) * gridDim.x) {
    const int32_t a = argmax[index];
    if (a < 0) continue;
    const int64_t k = index / roi_stride;
    const int64_t n = static_cast<int64_t>(to_acc(rois[k * 5]));
    if (n < 0 || n >= batch_size) continue;
    int grid;
    int64_t c, bin_index;
    decode_column(index % roi_stride, channels, grids, &grid, &c, &bin_index);
    atomicAdd(grad_input + (n * channels + c) * height * width + a, to_acc(grad[index]));
  }
}

}  // namespace

template <typename T>
cudaError_t roi_max_pool_forward(
    const T* input, const T* rois, int64_t batch_size, int64_t channels, int64_t height, int64_t width,
    int64_t num_rois, double spatial_scale, PoolGrids grids, T* output, int32_t* argmax, cudaStream_t stream) {
  if (grids.count < 1 || grids.count > kMaxGrids) return cudaErrorInvalidValue;
  const int64_t roi_stride = channels * total_bins(grids);
  return launch_over(
      roi_max_pool_forward_kernel<T>, num_rois * roi_stride, stream, input, rois, batch_size, channels, height,
      width, num_rois, static_cast<Acc<T>>(spatial_scale), grids, roi_stride, output, argmax);
}

template <typename T>
cudaError_t roi_max_pool_backward(
    const T* grad, const T* rois, const int32_t* argmax, int64_t batch_size, int64_t channels,
    int64_t height, int64_t width, int64_t num_rois, PoolGrids grids, Acc<T>* grad_input, cudaStream_t stream) {
  if (grids.count < 1 || grids.count > kMaxGrids) return cudaErrorInvalidValue;
  const int64_t roi_stride = channels * total_bins(grids);
  return launch_over(
      roi_max_pool_backward_kernel<T>, num_rois * roi_stride, stream, grad, rois, argmax, batch_size, channels,
      height, width, num_rois, grids, roi_stride, grad_input);
}

#define RCNN_CLI_INSTANTIATE(T)                                                                              \
  template cudaError_t roi_max_pool_forward<T>(                                                              \
      const T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, double, PoolGrids, T*, int32_t*,     \
      cudaStream_t);                                                                                         \
  template cudaError_t roi_max_pool_backward<T>(                                                             \
      const T*, const T*, const int32_t*, int64_t, int64_t, int64_t, int64_t, int64_t, PoolGrids, Acc<T>*, \
      cudaStream_t);
RCNN_CLI_FOR_EACH_SCALAR(RCNN_CLI_INSTANTIATE)
#undef RCNN_CLI_INSTANTIATE

}  // namespace rcnn_cli::cuda
