// RoIAlign on CUDA with the CPU kernel's (and torchvision's) semantics; see
// ops/cpu/roi_align.cpp for the rules, including the cap on the adaptive grid.
// Forward: one thread per output element. Backward: one thread per output
// gradient, atomicAdd of the four bilinear shares into an Acc<T> buffer.
#include "common.cuh"

namespace rcnn_cli::cuda {

namespace {

template <typename A>
struct Geometry {
  A start_h, start_w, bin_size_h, bin_size_w;
  int64_t grid_h, grid_w;
};

template <typename A>
__device__ Geometry<A> roi_geometry(
    A x1, A y1, A x2, A y2, A spatial_scale, int64_t pooled_height, int64_t pooled_width,
    int64_t sampling_ratio, bool aligned, int64_t height, int64_t width) {
  Geometry<A> g;
  const A offset = aligned ? A(0.5) : A(0.0);
  g.start_w = x1 * spatial_scale - offset;
  g.start_h = y1 * spatial_scale - offset;
  A roi_width = x2 * spatial_scale - offset - g.start_w;
  A roi_height = y2 * spatial_scale - offset - g.start_h;
  if (!aligned) {
    roi_width = max(roi_width, A(1.));
    roi_height = max(roi_height, A(1.));
  }
  g.bin_size_h = roi_height / static_cast<A>(pooled_height);
  g.bin_size_w = roi_width / static_cast<A>(pooled_width);
  const A cap = static_cast<A>(2 * max(height, width) + 2);
  g.grid_h = sampling_ratio > 0 ? sampling_ratio
                                : static_cast<int64_t>(min(ceil(roi_height / static_cast<A>(pooled_height)), cap));
  g.grid_w = sampling_ratio > 0 ? sampling_ratio
                                : static_cast<int64_t>(min(ceil(roi_width / static_cast<A>(pooled_width)), cap));
  g.grid_h = max(g.grid_h, int64_t(0));
  g.grid_w = max(g.grid_w, int64_t(0));
  return g;
}

// Bilinear neighbours and weights of (y, x); false when the point is outside.
template <typename A>
__device__ bool bilinear_weights(
    int64_t height, int64_t width, A y, A x, A* w1, A* w2, A* w3, A* w4, int64_t* p1, int64_t* p2, int64_t* p3,
    int64_t* p4) {
  if (y < A(-1.0) || y > A(height) || x < A(-1.0) || x > A(width)) return false;
  if (y <= 0) y = 0;
  if (x <= 0) x = 0;
  int64_t y_low = static_cast<int64_t>(y);
  int64_t x_low = static_cast<int64_t>(x);
  int64_t y_high, x_high;
  if (y_low >= height - 1) {
    y_high = y_low = height - 1;
    y = static_cast<A>(y_low);
  } else {
    y_high = y_low + 1;
  }
  if (x_low >= width - 1) {
    x_high = x_low = width - 1;
    x = static_cast<A>(x_low);
  } else {
    x_high = x_low + 1;
  }
  const A ly = y - y_low, lx = x - x_low;
  const A hy = A(1.) - ly, hx = A(1.) - lx;
  *w1 = hy * hx;
  *w2 = hy * lx;
  *w3 = ly * hx;
  *w4 = ly * lx;
  *p1 = y_low * width + x_low;
  *p2 = y_low * width + x_high;
  *p3 = y_high * width + x_low;
  *p4 = y_high * width + x_high;
  return true;
}

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
      const A y = g.start_h + ph * g.bin_size_h + static_cast<A>(iy + .5f) * g.bin_size_h / static_cast<A>(g.grid_h);
      for (int64_t ix = 0; ix < g.grid_w; ++ix) {
        const A x =
            g.start_w + pw * g.bin_size_w + static_cast<A>(ix + .5f) * g.bin_size_w / static_cast<A>(g.grid_w);
        A w1, w2, w3, w4;
        int64_t p1, p2, p3, p4;
        if (!bilinear_weights<A>(height, width, y, x, &w1, &w2, &w3, &w4, &p1, &p2, &p3, &p4)) continue;
        value += w1 * to_acc(plane[p1]) + w2 * to_acc(plane[p2]) + w3 * to_acc(plane[p3]) +
            w4 * to_acc(plane[p4]);
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
      const A y = g.start_h + ph * g.bin_size_h + static_cast<A>(iy + .5f) * g.bin_size_h / static_cast<A>(g.grid_h);
      for (int64_t ix = 0; ix < g.grid_w; ++ix) {
        const A x =
            g.start_w + pw * g.bin_size_w + static_cast<A>(ix + .5f) * g.bin_size_w / static_cast<A>(g.grid_w);
        A w1, w2, w3, w4;
        int64_t p1, p2, p3, p4;
        if (!bilinear_weights<A>(height, width, y, x, &w1, &w2, &w3, &w4, &p1, &p2, &p3, &p4)) continue;
        atomicAdd(plane + p1, g_bin * w1 / count);
        atomicAdd(plane + p2, g_bin * w2 / count);
        atomicAdd(plane + p3, g_bin * w3 / count);
        atomicAdd(plane + p4, g_bin * w4 / count);
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
