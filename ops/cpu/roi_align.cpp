// RoIAlign on CPU (He et al., "Mask R-CNN", 2017, section 3), with torchvision's
// semantics so that the numbers match torchvision.ops.roi_align:
//   - the RoI is not quantized: corners x * spatial_scale (- 0.5 when aligned);
//   - without `aligned`, RoIs are at least 1x1;
//   - each bin averages grid_h x grid_w bilinear samples at the centres of a regular
//     sub-grid; grid = sampling_ratio, or ceil(bin size) when sampling_ratio <= 0;
//   - samples farther than one pixel outside the map contribute 0.
//
// One deviation, only for absurd inputs: the adaptive grid is capped at
// 2 * max(H, W) + 2 samples per side. The cap never binds for a RoI no larger
// than twice the map; without it an extreme spatial_scale (1e6) would ask for
// billions of samples per bin.
//
// Forward: over a channels-last copy of the map, in (channel block, RoI chunk) tiles; the
// samples of a RoI are computed once per tile and each bilinear tap is a vectorized
// multiply-add over contiguous channels. Backward: one task per channel range walking
// the RoIs in order: deterministic, no atomics.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "arg_checks.h"
#include "cpu/vectorize.h"
#include "roi_align_math.h"

namespace rcnn_cli::cpu {

namespace {

using namespace roi_align_math;

// The bilinear samples of one RoI, in order (ph, pw, iy, ix), and its batch index.
template <typename T>
struct RoiSamples {
  int64_t batch = 0;
  int64_t per_bin = 0;  // samples per bin
  std::vector<Sample<T>> samples;

  // roi = (batch, x1, y1, x2, y2).
  void load(const T* roi, const Args<T>& a) {
    batch = static_cast<int64_t>(roi[0]);
    const Geometry<T> g = roi_geometry<T>(roi[1], roi[2], roi[3], roi[4], a);
    per_bin = g.grid_h * g.grid_w;
    samples.clear();
    for (int64_t ph = 0; ph < a.pooled_height; ++ph) {
      for (int64_t pw = 0; pw < a.pooled_width; ++pw) {
        for (int64_t iy = 0; iy < g.grid_h; ++iy) {
          const T y = sample_y(g, ph, iy);
          for (int64_t ix = 0; ix < g.grid_w; ++ix) {
            samples.push_back(bilinear_sample<T>(a.height, a.width, y, sample_x(g, pw, ix)));
          }
        }
      }
    }
  }
};

// How the work is split among tasks. The forward pass splits the RoIs (each RoI's samples
// are computed once). The backward pass splits the channels and every task walks the RoIs
// in order, so that no two tasks add to one element and the sums do not depend on the
// thread count.
enum class Split { kRois, kChannels };

// fn(k, samples of RoI k, c) for every RoI k and channel c.
template <typename T, typename Fn>
void for_each_roi_channel(
    Split split, const T* rois, int64_t num_rois, int64_t channels, const Args<T>& a, const Fn& fn) {
  const bool by_roi = split == Split::kRois;
  at::parallel_for(0, by_roi ? num_rois : channels, 1, [&](int64_t begin, int64_t end) {
    RoiSamples<T> r;
    for (int64_t k = by_roi ? begin : 0; k < (by_roi ? end : num_rois); ++k) {
      r.load(rois + k * 5, a);
      for (int64_t c = by_roi ? 0 : begin; c < (by_roi ? channels : end); ++c) fn(k, r, c);
    }
  });
}

// Forward tiles: blocks of channels x chunks of RoIs. The channels-last map of one block,
// 64 channels of a 38x50 map, is ~0.5 MB and stays in L2 while every RoI of the chunk reads
// it, and each bilinear tap reads 64 contiguous channels, which the inner loop vectorizes.
constexpr int64_t kChannelBlock = 64;
constexpr int64_t kRoiChunk = 32;

// Channels per register group: four 256-bit vectors of sums (32 floats, 16 doubles), kept
// in registers over all the samples of a bin (cpu/vectorize.h says why they are spelled out).
constexpr int64_t kVectors = 4;
template <typename T>
constexpr int64_t kGroup = kVectors * Simd<T>::kLanes;

// sum[c] = sum over the bin's samples of w1 * p1[c] + w2 * p2[c] + w3 * p3[c] + w4 * p4[c], for
// c in [from, to) of a channels-last map (pixel stride `stride`); G = 0: any count, through
// memory. Per channel this is exactly the NCHW kernel's (and torchvision's) expression, in
// the same order: vectorizing across channels changes no rounding.
template <typename T, int64_t G>
[[gnu::always_inline]] inline void bin_sums(
    const T* map, int64_t stride, const Sample<T>* s, int64_t count, int64_t from, int64_t to, T* sum) {
  if constexpr (G > 0) {
    using V = typename Simd<T>::V;
    constexpr int64_t L = Simd<T>::kLanes;
    V acc[kVectors];
    for (int64_t j = 0; j < kVectors; ++j) acc[j] = V{};
    for (int64_t i = 0; i < count; ++i, ++s) {
      const T* p1 = map + s->pos1 * stride + from;
      const T* p2 = map + s->pos2 * stride + from;
      const T* p3 = map + s->pos3 * stride + from;
      const T* p4 = map + s->pos4 * stride + from;
      const V w1 = V{} + s->w1, w2 = V{} + s->w2, w3 = V{} + s->w3, w4 = V{} + s->w4;
      for (int64_t j = 0; j < kVectors; ++j) {
        V v1, v2, v3, v4;
        load_vector(&v1, p1 + j * L);
        load_vector(&v2, p2 + j * L);
        load_vector(&v3, p3 + j * L);
        load_vector(&v4, p4 + j * L);
        acc[j] += w1 * v1 + w2 * v2 + w3 * v3 + w4 * v4;
      }
    }
    for (int64_t j = 0; j < kVectors; ++j) store_vector(sum + from + j * L, acc[j]);
  } else {
    for (int64_t c = from; c < to; ++c) sum[c] = 0;
    for (int64_t i = 0; i < count; ++i, ++s) {
      const T* p1 = map + s->pos1 * stride;
      const T* p2 = map + s->pos2 * stride;
      const T* p3 = map + s->pos3 * stride;
      const T* p4 = map + s->pos4 * stride;
      for (int64_t c = from; c < to; ++c) sum[c] += s->w1 * p1[c] + s->w2 * p2[c] + s->w3 * p3[c] + s->w4 * p4[c];
    }
  }
}

// The sums of one bin for a block of channels: whole register groups, then the rest.
template <typename T>
[[gnu::always_inline]] inline void block_sums(const T* map, int64_t stride, const Sample<T>* s, int64_t count, int64_t block, T* sum) {
  constexpr int64_t G = kGroup<T>;
  int64_t c = 0;
  for (; c + G <= block; c += G) bin_sums<T, G>(map, stride, s, count, c, c + G, sum);
  if (c < block) bin_sums<T, 0>(map, stride, s, count, c, block, sum);
}

RCNN_CLI_VECTOR_CLONES
void block_sums_float(const float* map, int64_t stride, const Sample<float>* s, int64_t count, int64_t block, float* sum) {
  block_sums(map, stride, s, count, block, sum);
}

RCNN_CLI_VECTOR_CLONES
void block_sums_double(
    const double* map, int64_t stride, const Sample<double>* s, int64_t count, int64_t block, double* sum) {
  block_sums(map, stride, s, count, block, sum);
}

inline void dispatch_block_sums(
    const float* map, int64_t stride, const Sample<float>* s, int64_t count, int64_t block, float* sum) {
  block_sums_float(map, stride, s, count, block, sum);
}

inline void dispatch_block_sums(
    const double* map, int64_t stride, const Sample<double>* s, int64_t count, int64_t block, double* sum) {
  block_sums_double(map, stride, s, count, block, sum);
}

// input [N, H, W, C] (channels-last, contiguous) -> output [K, C, ph, pw].
template <typename T>
void forward_kernel(
    const T* input_nhwc, const T* rois, int64_t num_rois, int64_t channels, const Args<T>& a, T* output) {
  const int64_t bins = a.pooled_height * a.pooled_width;
  const int64_t plane = a.height * a.width;
  const int64_t channel_blocks = (channels + kChannelBlock - 1) / kChannelBlock;
  const int64_t roi_chunks = (num_rois + kRoiChunk - 1) / kRoiChunk;
  at::parallel_for(0, channel_blocks * roi_chunks, 1, [&](int64_t begin, int64_t end) {
    RoiSamples<T> r;
    std::vector<T> tile(bins * kChannelBlock);  // bin-major sums of one RoI: tile[b * kChannelBlock + c]
    for (int64_t t = begin; t < end; ++t) {
      const int64_t c0 = (t / roi_chunks) * kChannelBlock;
      const int64_t block = std::min(kChannelBlock, channels - c0);
      const int64_t k_begin = (t % roi_chunks) * kRoiChunk;
      const int64_t k_end = std::min(k_begin + kRoiChunk, num_rois);
      for (int64_t k = k_begin; k < k_end; ++k) {
        // Recomputed for each channel block: ~200 samples against 64 x 800 multiply-adds.
        r.load(rois + k * 5, a);
        const T count = static_cast<T>(std::max<int64_t>(r.per_bin, 1));
        const T* map = input_nhwc + r.batch * plane * channels + c0;
        for (int64_t b = 0; b < bins; ++b) {
          dispatch_block_sums(
              map, channels, r.samples.data() + b * r.per_bin, r.per_bin, block, tile.data() + b * kChannelBlock);
        }
        // Channel-major output: sequential stores, strided reads of the small tile.
        T* out = output + (k * channels + c0) * bins;
        for (int64_t c = 0; c < block; ++c) {
          for (int64_t b = 0; b < bins; ++b) out[c * bins + b] = tile[b * kChannelBlock + c] / count;
        }
      }
    }
  });
}

// grad [K, C, ph, pw] contiguous -> grad_input [N, C, H, W] (zeroed), deterministic.
template <typename T>
void backward_kernel(
    const T* grad, const T* rois, int64_t num_rois, int64_t channels, const Args<T>& a, T* grad_input) {
  const int64_t bins = a.pooled_height * a.pooled_width;
  const auto scatter = [&](int64_t k, const RoiSamples<T>& r, int64_t c) {
    const T count = static_cast<T>(r.per_bin);
    T* plane = grad_input + (r.batch * channels + c) * a.height * a.width;
    const T* g_c = grad + (k * channels + c) * bins;
    const Sample<T>* s = r.samples.data();
    for (int64_t b = 0; b < bins; ++b) {
      const T g_bin = g_c[b];
      for (int64_t i = 0; i < r.per_bin; ++i, ++s) {
        if (!s->valid) continue;
        plane[s->pos1] += g_bin * s->w1 / count;
        plane[s->pos2] += g_bin * s->w2 / count;
        plane[s->pos3] += g_bin * s->w3 / count;
        plane[s->pos4] += g_bin * s->w4 / count;
      }
    }
  };
  for_each_roi_channel(Split::kChannels, rois, num_rois, channels, a, scatter);
}

at::Tensor roi_align_cpu(
    const at::Tensor& input, const at::Tensor& rois, double spatial_scale, int64_t pooled_height,
    int64_t pooled_width, int64_t sampling_ratio, bool aligned) {
  check_rois(input, rois, "roi_align");
  check_output_size(pooled_height, pooled_width, "roi_align");
  const int64_t num_rois = rois.size(0);
  const int64_t channels = input.size(1);
  if (num_rois == 0 || input.numel() == 0) {
    return at::zeros({num_rois, channels, pooled_height, pooled_width}, input.options());
  }
  // Every element is written, so no zero fill.
  at::Tensor output = at::empty({num_rois, channels, pooled_height, pooled_width}, input.options());
  // Channels-last, so that a bilinear tap reads contiguous channels (free for a channels-last input).
  const at::Tensor input_c = input.permute({0, 2, 3, 1}).contiguous();
  const at::Tensor rois_c = rois.contiguous();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "roi_align_forward", [&] {
    const Args<scalar_t> a{
        static_cast<scalar_t>(spatial_scale), pooled_height, pooled_width, sampling_ratio, aligned, input.size(2),
        input.size(3)};
    forward_kernel<scalar_t>(
        input_c.data_ptr<scalar_t>(), rois_c.data_ptr<scalar_t>(), num_rois, channels, a, output.data_ptr<scalar_t>());
  });
  return output;
}

at::Tensor roi_align_backward_cpu(
    const at::Tensor& grad, const at::Tensor& rois, double spatial_scale, int64_t pooled_height,
    int64_t pooled_width, int64_t batch_size, int64_t channels, int64_t height, int64_t width,
    int64_t sampling_ratio, bool aligned) {
  check_roi_align_backward(grad, rois, channels, pooled_height, pooled_width);
  at::Tensor grad_input = at::zeros({batch_size, channels, height, width}, grad.options());
  const int64_t num_rois = rois.size(0);
  if (num_rois == 0 || grad_input.numel() == 0) return grad_input;
  const at::Tensor grad_c = grad.contiguous();
  const at::Tensor rois_c = rois.to(grad.scalar_type()).contiguous();
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "roi_align_backward", [&] {
    const Args<scalar_t> a{
        static_cast<scalar_t>(spatial_scale), pooled_height, pooled_width, sampling_ratio, aligned, height, width};
    backward_kernel<scalar_t>(
        grad_c.data_ptr<scalar_t>(), rois_c.data_ptr<scalar_t>(), num_rois, channels, a,
        grad_input.data_ptr<scalar_t>());
  });
  return grad_input;
}

}  // namespace

TORCH_LIBRARY_IMPL(rcnn_cli, CPU, m) {
  m.impl("roi_align", &roi_align_cpu);
  m.impl("_roi_align_backward", &roi_align_backward_cpu);
}

}  // namespace rcnn_cli::cpu
