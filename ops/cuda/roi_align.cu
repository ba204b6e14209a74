// RoIAlign on CUDA with the CPU kernel's (and torchvision's) semantics; the arithmetic
// is shared with it (ops/roi_align_math.h), the rules are described in ops/cpu/roi_align.cpp.
// Forward: one thread per output element. Backward: one thread per output
// gradient, atomicAdd of the four bilinear shares into an Acc<T> buffer.
#include "common.cuh"
#include "roi_align_math.h"

namespace rcnn_cli::cuda {

namespace {

using namespace roi_align_math;

// Output element `index` of [K, C, ph, pw]: its bin (ph, pw) of channel c of the map of
// batch element n, and where the RoI's samples lie. n is -1 for a RoI outside the batch
// (the Python wrapper rejects these; the kernels never read out of bounds).
template <typename A>
struct OutputBin {
  int64_t n, c, ph, pw;
  Geometry<A> g;
};

template <typename T>
__device__ __forceinline__ OutputBin<Acc<T>> locate(
    int64_t index, const T* rois, int64_t batch_size, int64_t channels, const Args<Acc<T>>& a) {
  OutputBin<Acc<T>> o;
  o.pw = index % a.pooled_width;
  o.ph = (index / a.pooled_width) % a.pooled_height;
  o.c = (index / a.pooled_width / a.pooled_height) % channels;
  const T* roi = rois + index / a.pooled_width / a.pooled_height / channels * 5;
  o.n = static_cast<int64_t>(to_acc(roi[0]));
  if (o.n < 0 || o.n >= batch_size) {
    o.n = -1;
    return o;
  }
  o.g = roi_geometry<Acc<T>>(to_acc(roi[1]), to_acc(roi[2]), to_acc(roi[3]), to_acc(roi[4]), a);
  return o;
}

// fn(sample) for each bilinear sample of the bin that lies on the map, in order (iy, ix).
template <typename A, typename Fn>
__device__ __forceinline__ void for_each_sample(const OutputBin<A>& o, const Args<A>& a, Fn&& fn) {
  for (int64_t iy = 0; iy < o.g.grid_h; ++iy) {
    const A y = sample_y(o.g, o.ph, iy);
    for (int64_t ix = 0; ix < o.g.grid_w; ++ix) {
      const Sample<A> p = bilinear_sample<A>(a.height, a.width, y, sample_x(o.g, o.pw, ix));
      if (p.valid) fn(p);
    }
  }
}

template <typename T>
__global__ void roi_align_forward_kernel(
    const T* __restrict__ input, const T* __restrict__ rois, int64_t num_rois, int64_t batch_size,
    int64_t channels, Args<Acc<T>> a, T* __restrict__ output) {
  using A = Acc<T>;
  const int64_t total = num_rois * channels * a.pooled_height * a.pooled_width;
  for (int64_t index = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; index < total;
       index += int64_t(blockDim.x) * gridDim.x) {
    const OutputBin<A> o = locate(index, rois, batch_size, channels, a);
    if (o.n < 0) {
      output[index] = from_acc<T>(A(0));
      continue;
    }
    const T* plane = input + (o.n * channels + o.c) * a.height * a.width;
    const A count = static_cast<A>(max(o.g.grid_h * o.g.grid_w, int64_t(1)));
    A value = 0;
    for_each_sample(o, a, [&](const Sample<A>& p) {
      value += p.w1 * to_acc(plane[p.pos1]) + p.w2 * to_acc(plane[p.pos2]) + p.w3 * to_acc(plane[p.pos3]) +
          p.w4 * to_acc(plane[p.pos4]);
    });
    output[index] = from_acc<T>(value / count);
  }
}

template <typename T>
__global__ void roi_align_backward_kernel(
    const T* __restrict__ grad, const T* __restrict__ rois, int64_t num_rois, int64_t batch_size,
    int64_t channels, Args<Acc<T>> a, Acc<T>* __restrict__ grad_input) {
  using A = Acc<T>;
  const int64_t total = num_rois * channels * a.pooled_height * a.pooled_width;
  for (int64_t index = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; index < total;
       index += int64_t(blockDim.x) * gridDim.x) {
    const OutputBin<A> o = locate(index, rois, batch_size, channels, a);
    if (o.n < 0) continue;
    A* plane = grad_input + (o.n * channels + o.c) * a.height * a.width;
    const A count = static_cast<A>(o.g.grid_h * o.g.grid_w);
    const A g_bin = to_acc(grad[index]);
    for_each_sample(o, a, [&](const Sample<A>& p) {
      atomicAdd(plane + p.pos1, g_bin * p.w1 / count);
      atomicAdd(plane + p.pos2, g_bin * p.w2 / count);
      atomicAdd(plane + p.pos3, g_bin * p.w3 / count);
      atomicAdd(plane + p.pos4, g_bin * p.w4 / count);
    });
  }
}

template <typename A>
Args<A> args_of(
    int64_t height, int64_t width, double spatial_scale, int64_t pooled_height, int64_t pooled_width,
    int64_t sampling_ratio, bool aligned) {
  return Args<A>{static_cast<A>(spatial_scale), pooled_height, pooled_width, sampling_ratio, aligned, height, width};
}

}  // namespace

template <typename T>
cudaError_t roi_align_forward(
    const T* input, const T* rois, int64_t batch_size, int64_t channels, int64_t height, int64_t width,
    int64_t num_rois, double spatial_scale, int64_t pooled_height, int64_t pooled_width,
    int64_t sampling_ratio, bool aligned, T* output, cudaStream_t stream) {
  return launch_over(
      roi_align_forward_kernel<T>, num_rois * channels * pooled_height * pooled_width, stream, input, rois, num_rois,
      batch_size, channels,
      args_of<Acc<T>>(height, width, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned), output);
}

template <typename T>
cudaError_t roi_align_backward(
    const T* grad, const T* rois, int64_t batch_size, int64_t channels, int64_t height, int64_t width,
    int64_t num_rois, double spatial_scale, int64_t pooled_height, int64_t pooled_width,
    int64_t sampling_ratio, bool aligned, Acc<T>* grad_input, cudaStream_t stream) {
  return launch_over(
      roi_align_backward_kernel<T>, num_rois * channels * pooled_height * pooled_width, stream, grad, rois, num_rois,
      batch_size, channels,
      args_of<Acc<T>>(height, width, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned),
      grad_input);
}

#define RCNN_CLI_INSTANTIATE(T)                                                                              \
  template cudaError_t roi_align_forward<T>(                                                                 \
      const T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, double, int64_t, int64_t, int64_t,   \
      bool, T*, cudaStream_t);                                                                               \
  template cudaError_t roi_align_backward<T>(                                                                \
      const T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, double, int64_t, int64_t, int64_t,   \
      bool, Acc<T>*, cudaStream_t);
RCNN_CLI_FOR_EACH_SCALAR(RCNN_CLI_INSTANTIATE)
#undef RCNN_CLI_INSTANTIATE

}  // namespace rcnn_cli::cuda
