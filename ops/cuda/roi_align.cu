// RoIAlign on CUDA with the CPU kernel's (and torchvision's) semantics; the arithmetic
// is shared with it (ops/roi_align_math.h), the rules are described in ops/cpu/roi_align.cpp.
// Forward: one thread per output element. Backward: one thread per output
// gradient, atomicAdd of the four bilinear shares into an Acc<T> buffer.
#include "common.cuh"
#include "roi_align_math.h"

namespace rcnn_cli::cuda {

namespace {

using roi_align_math::bilinear_sample;
using roi_align_math::Geometry;
using roi_align_math::roi_geometry;
using roi_align_math::Sample;
using roi_align_math::sample_x;
using roi_align_math::sample_y;

template <typename T>
__global__ void roi_align_forward_kernel(
    const T* __restrict__ input, const T* __restrict__ rois, int64_t batch_size, int64_t channels,
    int64_t height, int64_t width, int64_t num_rois, Acc<T> spatial_scale, int64_t pooled_height,
    int64_t pooled_width, int64_t sampling_ratio, bool aligned, T* __restrict__ output) {
  using A = Acc<T>;
  const int64_t total = num_rois * channels * pooled_height * pooled_width;
  for (int64_t index = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; index < total;
       index += int64_t(blockDim.x) * gridDim.x) {
    const int64_t pw = index % pooled_width;
    const int64_t ph = (index / pooled_width) % pooled_height;
    const int64_t c = (index / pooled_width / pooled_height) % channels;
    const int64_t k = index / pooled_width / pooled_height / channels;
    const T* roi = rois + k * 5;
    const int64_t n = static_cast<int64_t>(to_acc(roi[0]));
    if (n < 0 || n >= batch_size) {
      output[index] = from_acc<T>(A(0));
      continue;
    }
    const Geometry<A> g = roi_geometry<A>(
        to_acc(roi[1]), to_acc(roi[2]), to_acc(roi[3]), to_acc(roi[4]), spatial_scale, pooled_height,
        pooled_width, sampling_ratio, aligned, height, width);
    const T* plane = input + (n * channels + c) * height * width;
    const A count = static_cast<A>(max(g.grid_h * g.grid_w, int64_t(1)));
    A value = 0;
    for (int64_t iy = 0; iy < g.grid_h; ++iy) {
      const A y = sample_y(g, ph, iy);
      for (int64_t ix = 0; ix < g.grid_w; ++ix) {
        const Sample<A> p = bilinear_sample<A>(height, width, y, sample_x(g, pw, ix));
        if (!p.valid) continue;
        value += p.w1 * to_acc(plane[p.pos1]) + p.w2 * to_acc(plane[p.pos2]) + p.w3 * to_acc(plane[p.pos3]) +
            p.w4 * to_acc(plane[p.pos4]);
      }
    }
    output[index] = from_acc<T>(value / count);
  }
}

template <typename T>
__global__ void roi_align_backward_kernel(
    const T* __restrict__ grad, const T* __restrict__ rois, int64_t batch_size, int64_t channels,
    int64_t height, int64_t width, int64_t num_rois, Acc<T> spatial_scale, int64_t pooled_height,
    int64_t pooled_width, int64_t sampling_ratio, bool aligned, Acc<T>* __restrict__ grad_input) {
  using A = Acc<T>;
  const int64_t total = num_rois * channels * pooled_height * pooled_width;
  for (int64_t index = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; index < total;
       index += int64_t(blockDim.x) * gridDim.x) {
    const int64_t pw = index % pooled_width;
    const int64_t ph = (index / pooled_width) % pooled_height;
    const int64_t c = (index / pooled_width / pooled_height) % channels;
    const int64_t k = index / pooled_width / pooled_height / channels;
    const T* roi = rois + k * 5;
    const int64_t n = static_cast<int64_t>(to_acc(roi[0]));
    if (n < 0 || n >= batch_size) continue;
    const Geometry<A> g = roi_geometry<A>(
        to_acc(roi[1]), to_acc(roi[2]), to_acc(roi[3]), to_acc(roi[4]), spatial_scale, pooled_height,
        pooled_width, sampling_ratio, aligned, height, width);
    A* plane = grad_input + (n * channels + c) * height * width;
    const A count = static_cast<A>(g.grid_h * g.grid_w);
    const A g_bin = to_acc(grad[index]);
    for (int64_t iy = 0; iy < g.grid_h; ++iy) {
      const A y = sample_y(g, ph, iy);
      for (int64_t ix = 0; ix < g.grid_w; ++ix) {
        const Sample<A> p = bilinear_sample<A>(height, width, y, sample_x(g, pw, ix));
        if (!p.valid) continue;
        atomicAdd(plane + p.pos1, g_bin * p.w1 / count);
        atomicAdd(plane + p.pos2, g_bin * p.w2 / count);
        atomicAdd(plane + p.pos3, g_bin * p.w3 / count);
        atomicAdd(plane + p.pos4, g_bin * p.w4 / count);
      }
    }
  }
}

}  // namespace

template <typename T>
cudaError_t roi_align_forward(
    const T* input, const T* rois, int64_t batch_size, int64_t channels, int64_t height, int64_t width,
    int64_t num_rois, double spatial_scale, int64_t pooled_height, int64_t pooled_width,
    int64_t sampling_ratio, bool aligned, T* output, cudaStream_t stream) {
  const int64_t total = num_rois * channels * pooled_height * pooled_width;
  if (total == 0) return cudaSuccess;
  roi_align_forward_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(
      input, rois, batch_size, channels, height, width, num_rois, static_cast<Acc<T>>(spatial_scale),
      pooled_height, pooled_width, sampling_ratio, aligned, output);
  return cudaGetLastError();
}

template <typename T>
cudaError_t roi_align_backward(
    const T* grad, const T* rois, int64_t batch_size, int64_t channels, int64_t height, int64_t width,
    int64_t num_rois, double spatial_scale, int64_t pooled_height, int64_t pooled_width,
    int64_t sampling_ratio, bool aligned, Acc<T>* grad_input, cudaStream_t stream) {
  const int64_t total = num_rois * channels * pooled_height * pooled_width;
  if (total == 0) return cudaSuccess;
  roi_align_backward_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(
      grad, rois, batch_size, channels, height, width, num_rois, static_cast<Acc<T>>(spatial_scale),
      pooled_height, pooled_width, sampling_ratio, aligned, grad_input);
  return cudaGetLastError();
}

#define RCNN_CLI_INSTANTIATE(T)                                                                              \
  template cudaError_t roi_align_forward<T>(                                                                 \
      const T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, double, int64_t, int64_t, int64_t,   \
      bool, T*, cudaStream_t);                                                                               \
  template cudaError_t roi_align_backward<T>(                                                                \
      const T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, double, int64_t, int64_t, int64_t,   \
      bool, Acc<T>*, cudaStream_t);
RCNN_CLI_INSTANTIATE(float)
RCNN_CLI_INSTANTIATE(double)
RCNN_CLI_INSTANTIATE(__half)
RCNN_CLI_INSTANTIATE(__nv_bfloat16)
#undef RCNN_CLI_INSTANTIATE

}  // namespace rcnn_cli::cuda
