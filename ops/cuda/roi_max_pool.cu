// RoI max pooling on CUDA: roi_pool (one grid) and spp_pool (a pyramid of grids)
// share these kernels, so an SPP pyramid is ONE launch, not a launch per level.
// Same quantization as the CPU kernel and torchvision (ops/cpu/roi_pool.cpp):
// rounded corners, +1 sizes, floor/ceil bin edges clipped to the map, empty -> 0.
//
// Forward: one thread per output element (RoI, grid, channel, bin), grid-stride loop.
// Backward: one thread per output gradient, atomicAdd into an Acc<T> buffer (so half
// and bfloat16 gradients are summed in float), converted by the caller.
#include "common.cuh"

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

template <typename A>
__device__ __forceinline__ int64_t quantize(A coordinate, A spatial_scale) {
  const A limit = A(int64_t(1) << 40);
  return static_cast<int64_t>(fmin(fmax(round(coordinate * spatial_scale), -limit), limit));
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
    int64_t c, bin;
    decode_column(index % roi_stride, channels, grids, &grid, &c, &bin);
    const T* roi = rois + k * 5;
    const int64_t n = static_cast<int64_t>(to_acc(roi[0]));
    if (n < 0 || n >= batch_size) {  // the Python wrapper rejects these; never read out of bounds
      output[index] = from_acc<T>(A(0));
      argmax[index] = -1;
      continue;
    }
    const int64_t roi_start_w = quantize<A>(to_acc(roi[1]), spatial_scale);
    const int64_t roi_start_h = quantize<A>(to_acc(roi[2]), spatial_scale);
    const int64_t roi_end_w = quantize<A>(to_acc(roi[3]), spatial_scale);
    const int64_t roi_end_h = quantize<A>(to_acc(roi[4]), spatial_scale);
    const int64_t roi_width = max(roi_end_w - roi_start_w + 1, int64_t(1));
    const int64_t roi_height = max(roi_end_h - roi_start_h + 1, int64_t(1));
    const int64_t pooled_height = grids.height[grid];
    const int64_t pooled_width = grids.width[grid];
    const A bin_size_h = static_cast<A>(roi_height) / static_cast<A>(pooled_height);
    const A bin_size_w = static_cast<A>(roi_width) / static_cast<A>(pooled_width);
    const int64_t ph = bin / pooled_width;
    const int64_t pw = bin % pooled_width;
    int64_t hstart = static_cast<int64_t>(floor(static_cast<A>(ph) * bin_size_h));
    int64_t wstart = static_cast<int64_t>(floor(static_cast<A>(pw) * bin_size_w));
    int64_t hend = static_cast<int64_t>(ceil(static_cast<A>(ph + 1) * bin_size_h));
    int64_t wend = static_cast<int64_t>(ceil(static_cast<A>(pw + 1) * bin_size_w));
    hstart = min(max(hstart + roi_start_h, int64_t(0)), height);
    hend = min(max(hend + roi_start_h, int64_t(0)), height);
    wstart = min(max(wstart + roi_start_w, int64_t(0)), width);
    wend = min(max(wend + roi_start_w, int64_t(0)), width);
    const bool empty = hend <= hstart || wend <= wstart;

    A maxval = empty ? A(0) : A(-3.402823466e+38f);  // -FLT_MAX, as torchvision
    int32_t maxidx = -1;
    const T* plane = input + (n * channels + c) * height * width;
    for (int64_t h = hstart; h < hend; ++h) {
      for (int64_t w = wstart; w < wend; ++w) {
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
    int64_t c, bin;
    decode_column(index % roi_stride, channels, grids, &grid, &c, &bin);
    atomicAdd(grad_input + (n * channels + c) * height * width + a, to_acc(grad[index]));
  }
}

int64_t roi_stride_of(int64_t channels, const PoolGrids& grids) {
  int64_t bins = 0;
  for (int g = 0; g < grids.count; ++g) bins += static_cast<int64_t>(grids.height[g]) * grids.width[g];
  return channels * bins;
}

}  // namespace

template <typename T>
cudaError_t roi_max_pool_forward(
    const T* input, const T* rois, int64_t batch_size, int64_t channels, int64_t height, int64_t width,
    int64_t num_rois, double spatial_scale, PoolGrids grids, T* output, int32_t* argmax, cudaStream_t stream) {
  if (grids.count < 1 || grids.count > kMaxGrids) return cudaErrorInvalidValue;
  const int64_t roi_stride = roi_stride_of(channels, grids);
  const int64_t total = num_rois * roi_stride;
  if (total == 0) return cudaSuccess;
  roi_max_pool_forward_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(
      input, rois, batch_size, channels, height, width, num_rois, static_cast<Acc<T>>(spatial_scale), grids,
      roi_stride, output, argmax);
  return cudaGetLastError();
}

template <typename T>
cudaError_t roi_max_pool_backward(
    const T* grad, const T* rois, const int32_t* argmax, int64_t batch_size, int64_t channels,
    int64_t height, int64_t width, int64_t num_rois, PoolGrids grids, Acc<T>* grad_input, cudaStream_t stream) {
  if (grids.count < 1 || grids.count > kMaxGrids) return cudaErrorInvalidValue;
  const int64_t roi_stride = roi_stride_of(channels, grids);
  const int64_t total = num_rois * roi_stride;
  if (total == 0) return cudaSuccess;
  roi_max_pool_backward_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(
      grad, rois, argmax, batch_size, channels, height, width, num_rois, grids, roi_stride, grad_input);
  return cudaGetLastError();
}

#define RCNN_CLI_INSTANTIATE(T)                                                                              \
  template cudaError_t roi_max_pool_forward<T>(                                                              \
      const T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, double, PoolGrids, T*, int32_t*,     \
      cudaStream_t);                                                                                         \
  template cudaError_t roi_max_pool_backward<T>(                                                             \
      const T*, const T*, const int32_t*, int64_t, int64_t, int64_t, int64_t, int64_t, PoolGrids, Acc<T>*, \
      cudaStream_t);
RCNN_CLI_INSTANTIATE(float)
RCNN_CLI_INSTANTIATE(double)
RCNN_CLI_INSTANTIATE(__half)
RCNN_CLI_INSTANTIATE(__nv_bfloat16)
#undef RCNN_CLI_INSTANTIATE

}  // namespace rcnn_cli::cuda
