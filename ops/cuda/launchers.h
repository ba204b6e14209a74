// Plain launchers of the CUDA kernels: raw pointers, sizes and a stream, no torch.
//
// The .cu files compile with nothing but nvcc (no torch headers), so that
// `nvcc -c` checks them on any machine with the CUDA toolkit, GPU or not. The
// torch glue in ops/cuda/*_dispatch.cpp checks tensors, picks the dtype, gets the
// current stream and calls these. Every launcher returns the launch's cudaError_t.
//
// T is float, double, __half or __nv_bfloat16; arithmetic (bin edges, bilinear
// weights, IoU, gradient sums) runs in Acc<T>: double for double, float otherwise.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace rcnn_cli::cuda {

template <typename T>
struct AccType {
  using type = float;
};
template <>
struct AccType<double> {
  using type = double;
};
template <typename T>
using Acc = typename AccType<T>::type;

// MACRO(T) for every T above: the explicit instantiations of the launchers in each .cu.
#define RCNN_CLI_FOR_EACH_SCALAR(MACRO) MACRO(float) MACRO(double) MACRO(__half) MACRO(__nv_bfloat16)

// The grids of an RoI max pooling: one for roi_pool, the pyramid levels for spp_pool.
constexpr int kMaxGrids = 8;
struct PoolGrids {
  int count;
  int height[kMaxGrids];
  int width[kMaxGrids];
};

// sum(h * w) over the grids: the bins of one channel.
inline int64_t total_bins(const PoolGrids& grids) {
  int64_t bins = 0;
  for (int g = 0; g < grids.count; ++g) bins += static_cast<int64_t>(grids.height[g]) * grids.width[g];
  return bins;
}

// input [N, C, H, W] contiguous, rois [K, 5] -> output, argmax [K, C * sum(h*w)]
// (grid by grid, each channel-major). RoIs with a batch index outside [0, N) give 0.
template <typename T>
cudaError_t roi_max_pool_forward(
    const T* input, const T* rois, int64_t batch_size, int64_t channels, int64_t height, int64_t width,
    int64_t num_rois, double spatial_scale, PoolGrids grids, T* output, int32_t* argmax, cudaStream_t stream);

// grad, argmax [K, C * sum(h*w)] -> grad_input [N, C, H, W] (zeroed by the caller), accumulated
// with atomics in Acc<T>.
template <typename T>
cudaError_t roi_max_pool_backward(
    const T* grad, const T* rois, const int32_t* argmax, int64_t batch_size, int64_t channels,
    int64_t height, int64_t width, int64_t num_rois, PoolGrids grids, Acc<T>* grad_input, cudaStream_t stream);

// input [N, C, H, W] contiguous, rois [K, 5] -> output [K, C, ph, pw].
template <typename T>
cudaError_t roi_align_forward(
    const T* input, const T* rois, int64_t batch_size, int64_t channels, int64_t height, int64_t width,
    int64_t num_rois, double spatial_scale, int64_t pooled_height, int64_t pooled_width,
    int64_t sampling_ratio, bool aligned, T* output, cudaStream_t stream);

// grad [K, C, ph, pw] contiguous -> grad_input [N, C, H, W] (zeroed by the caller) in Acc<T>.
template <typename T>
cudaError_t roi_align_backward(
    const T* grad, const T* rois, int64_t batch_size, int64_t channels, int64_t height, int64_t width,
    int64_t num_rois, double spatial_scale, int64_t pooled_height, int64_t pooled_width,
    int64_t sampling_ratio, bool aligned, Acc<T>* grad_input, cudaStream_t stream);

// NMS in two launches on boxes already sorted by decreasing score:
// nms_mask fills mask [n, ceil(n / 64)] (bit j of word (i, b): box 64 b + j overlaps box i > threshold,
// for j > i), then nms_gather_keep walks it greedily in one block and sets keep[i] (zeroed by the caller).
constexpr int kNmsBlock = 64;
template <typename T>
cudaError_t nms_mask(
    const T* sorted_boxes, int64_t num_boxes, double iou_threshold, unsigned long long* mask, cudaStream_t stream);
cudaError_t nms_gather_keep(const unsigned long long* mask, int64_t num_boxes, bool* keep, cudaStream_t stream);

}  // namespace rcnn_cli::cuda
