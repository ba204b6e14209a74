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
// Forward: one task per RoI; the sample positions and weights of a RoI are computed
// once and reused for every channel. Backward: one task per channel range walking
// the RoIs in order: deterministic, no atomics.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "arg_checks.h"
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

// input [N, C, H, W] contiguous -> output [K, C, ph, pw].
template <typename T>
void forward_kernel(
    const T* input, const T* rois, int64_t num_rois, int64_t channels, const Args<T>& a, T* output) {
  const int64_t bins = a.pooled_height * a.pooled_width;
  const auto pool = [&](int64_t k, const RoiSamples<T>& r, int64_t c) {
    const T count = static_cast<T>(std::max<int64_t>(r.per_bin, 1));
    const T* plane = input + (r.batch * channels + c) * a.height * a.width;
    T* out_c = output + (k * channels + c) * bins;
    const Sample<T>* s = r.samples.data();
    for (int64_t b = 0; b < bins; ++b) {
      T value = 0;
      for (int64_t i = 0; i < r.per_bin; ++i, ++s) {
        value += s->w1 * plane[s->pos1] + s->w2 * plane[s->pos2] + s->w3 * plane[s->pos3] + s->w4 * plane[s->pos4];
      }
      out_c[b] = value / count;
    }
  };
  for_each_roi_channel(Split::kRois, rois, num_rois, channels, a, pool);
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
  at::Tensor output = at::zeros({num_rois, channels, pooled_height, pooled_width}, input.options());
  if (num_rois == 0 || input.numel() == 0) return output;
  const at::Tensor input_c = input.contiguous();
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
