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
#include <cmath>
#include <vector>

#include "cpu/roi_max_pool.h"
#include "roi_align_math.h"

namespace rcnn_cli::cpu {

namespace {

using roi_align_math::bilinear_sample;
using roi_align_math::Geometry;
using roi_align_math::roi_geometry;
using roi_align_math::Sample;

// All samples of one RoI in order (ph, pw, iy, ix).
template <typename T>
void roi_samples(
    const Geometry<T>& g,
    int64_t pooled_height,
    int64_t pooled_width,
    int64_t height,
    int64_t width,
    std::vector<Sample<T>>& samples) {
  samples.clear();
  for (int64_t ph = 0; ph < pooled_height; ++ph) {
    for (int64_t pw = 0; pw < pooled_width; ++pw) {
      for (int64_t iy = 0; iy < g.grid_h; ++iy) {
        const T y = roi_align_math::sample_y(g, ph, iy);
        for (int64_t ix = 0; ix < g.grid_w; ++ix) {
          const T x = roi_align_math::sample_x(g, pw, ix);
          samples.push_back(bilinear_sample<T>(height, width, y, x));
        }
      }
    }
  }
}

at::Tensor roi_align_cpu(
    const at::Tensor& input,
    const at::Tensor& rois,
    double spatial_scale,
    int64_t pooled_height,
    int64_t pooled_width,
    int64_t sampling_ratio,
    bool aligned) {
  check_rois(input, rois, "roi_align");
  TORCH_CHECK(pooled_height > 0 && pooled_width > 0, "roi_align: output size must be positive");
  const int64_t num_rois = rois.size(0);
  const int64_t channels = input.size(1);
  const int64_t height = input.size(2);
  const int64_t width = input.size(3);
  at::Tensor output = at::zeros({num_rois, channels, pooled_height, pooled_width}, input.options());
  if (num_rois == 0 || input.numel() == 0) return output;
  const at::Tensor input_c = input.contiguous();
  const at::Tensor rois_c = rois.contiguous();

  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "roi_align_forward", [&] {
    using T = scalar_t;
    const T* in = input_c.data_ptr<T>();
    const T* r = rois_c.data_ptr<T>();
    T* out = output.data_ptr<T>();
    const T scale = static_cast<T>(spatial_scale);
    const int64_t bins = pooled_height * pooled_width;
    at::parallel_for(0, num_rois, 1, [&](int64_t begin, int64_t end) {
      std::vector<Sample<T>> samples;
      for (int64_t k = begin; k < end; ++k) {
        const T* roi = r + k * 5;  // (batch, x1, y1, x2, y2)
        const int64_t batch = static_cast<int64_t>(roi[0]);
        const Geometry<T> g = roi_geometry<T>(
            roi[1], roi[2], roi[3], roi[4], scale, pooled_height, pooled_width, sampling_ratio, aligned, height, width);
        roi_samples<T>(g, pooled_height, pooled_width, height, width, samples);
        const int64_t per_bin = g.grid_h * g.grid_w;
        const T count = static_cast<T>(std::max<int64_t>(per_bin, 1));
        for (int64_t c = 0; c < channels; ++c) {
          const T* plane = in + (batch * channels + c) * height * width;
          T* out_c = out + (k * channels + c) * bins;
          const Sample<T>* s = samples.data();
          for (int64_t b = 0; b < bins; ++b) {
            T value = 0;
            for (int64_t i = 0; i < per_bin; ++i, ++s) {
              value += s->w1 * plane[s->pos1] + s->w2 * plane[s->pos2] + s->w3 * plane[s->pos3] +
                  s->w4 * plane[s->pos4];
            }
            out_c[b] = value / count;
          }
        }
      }
    });
  });
  return output;
}

at::Tensor roi_align_backward_cpu(
    const at::Tensor& grad,
    const at::Tensor& rois,
    double spatial_scale,
    int64_t pooled_height,
    int64_t pooled_width,
    int64_t batch_size,
    int64_t channels,
    int64_t height,
    int64_t width,
    int64_t sampling_ratio,
    bool aligned) {
  TORCH_CHECK(rois.dim() == 2 && rois.size(1) == 5, "roi_align_backward: rois must be [K, 5]");
  TORCH_CHECK(
      grad.dim() == 4 && grad.size(0) == rois.size(0) && grad.size(1) == channels &&
          grad.size(2) == pooled_height && grad.size(3) == pooled_width,
      "roi_align_backward: grad must be [K, C, pooled_height, pooled_width]");
  at::Tensor grad_input = at::zeros({batch_size, channels, height, width}, grad.options());
  const int64_t num_rois = rois.size(0);
  if (num_rois == 0 || grad_input.numel() == 0) return grad_input;
  const at::Tensor grad_c = grad.contiguous();
  const at::Tensor rois_c = rois.to(grad.scalar_type()).contiguous();

  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "roi_align_backward", [&] {
    using T = scalar_t;
    const T* g_out = grad_c.data_ptr<T>();
    const T* r = rois_c.data_ptr<T>();
    T* g_in = grad_input.data_ptr<T>();
    const T scale = static_cast<T>(spatial_scale);
    const int64_t bins = pooled_height * pooled_width;
    at::parallel_for(0, channels, 1, [&](int64_t c_begin, int64_t c_end) {
      std::vector<Sample<T>> samples;
      for (int64_t k = 0; k < num_rois; ++k) {
        const T* roi = r + k * 5;  // (batch, x1, y1, x2, y2)
        const int64_t batch = static_cast<int64_t>(roi[0]);
        const Geometry<T> g = roi_geometry<T>(
            roi[1], roi[2], roi[3], roi[4], scale, pooled_height, pooled_width, sampling_ratio, aligned, height, width);
        roi_samples<T>(g, pooled_height, pooled_width, height, width, samples);
        const int64_t per_bin = g.grid_h * g.grid_w;
        const T count = static_cast<T>(per_bin);
        for (int64_t c = c_begin; c < c_end; ++c) {
          T* plane = g_in + (batch * channels + c) * height * width;
          const T* g_c = g_out + (k * channels + c) * bins;
          const Sample<T>* s = samples.data();
          for (int64_t b = 0; b < bins; ++b) {
            const T g_bin = g_c[b];
            for (int64_t i = 0; i < per_bin; ++i, ++s) {
              if (!s->valid) continue;
              plane[s->pos1] += g_bin * s->w1 / count;
              plane[s->pos2] += g_bin * s->w2 / count;
              plane[s->pos3] += g_bin * s->w3 / count;
              plane[s->pos4] += g_bin * s->w4 / count;
            }
          }
        }
      }
    });
  });
  return grad_input;
}

}  // namespace

TORCH_LIBRARY_IMPL(rcnn_cli, CPU, m) {
  m.impl("roi_align", &roi_align_cpu);
  m.impl("_roi_align_backward", &roi_align_backward_cpu);
}

}  // namespace rcnn_cli::cpu
