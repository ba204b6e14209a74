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

namespace rcnn_cli::cpu {

namespace {

// One bilinear sample: four neighbour offsets in the plane and their weights.
template <typename T>
struct Sample {
  int64_t pos1, pos2, pos3, pos4;
  T w1, w2, w3, w4;
  bool valid;
};

template <typename T>
struct RoiGeometry {
  int64_t batch;
  T start_h, start_w, bin_size_h, bin_size_w;
  int64_t grid_h, grid_w;
};

template <typename T>
RoiGeometry<T> roi_geometry(
    const T* roi,
    T spatial_scale,
    int64_t pooled_height,
    int64_t pooled_width,
    int64_t sampling_ratio,
    bool aligned,
    int64_t height,
    int64_t width) {
  RoiGeometry<T> g;
  g.batch = static_cast<int64_t>(roi[0]);
  const T offset = aligned ? T(0.5) : T(0.0);
  g.start_w = roi[1] * spatial_scale - offset;
  g.start_h = roi[2] * spatial_scale - offset;
  const T end_w = roi[3] * spatial_scale - offset;
  const T end_h = roi[4] * spatial_scale - offset;
  T roi_width = end_w - g.start_w;
  T roi_height = end_h - g.start_h;
  if (!aligned) {
    // Legacy (Detectron) behaviour: force malformed RoIs to be 1x1.
    roi_width = std::max(roi_width, T(1.));
    roi_height = std::max(roi_height, T(1.));
  }
  g.bin_size_h = roi_height / static_cast<T>(pooled_height);
  g.bin_size_w = roi_width / static_cast<T>(pooled_width);
  const T cap = static_cast<T>(2 * std::max(height, width) + 2);
  g.grid_h = sampling_ratio > 0
      ? sampling_ratio
      : static_cast<int64_t>(std::min(std::ceil(roi_height / static_cast<T>(pooled_height)), cap));
  g.grid_w = sampling_ratio > 0
      ? sampling_ratio
      : static_cast<int64_t>(std::min(std::ceil(roi_width / static_cast<T>(pooled_width)), cap));
  // An inverted RoI (aligned, x2 < x1) gives a negative adaptive grid: no samples,
  // the output is 0 as in torchvision.
  g.grid_h = std::max<int64_t>(g.grid_h, 0);
  g.grid_w = std::max<int64_t>(g.grid_w, 0);
  return g;
}

template <typename T>
Sample<T> bilinear_sample(int64_t height, int64_t width, T y, T x) {
  Sample<T> s{0, 0, 0, 0, T(0), T(0), T(0), T(0), false};
  if (y < -1.0 || y > height || x < -1.0 || x > width) return s;  // outside: contributes 0
  if (y <= 0) y = 0;
  if (x <= 0) x = 0;
  int64_t y_low = static_cast<int64_t>(y);
  int64_t x_low = static_cast<int64_t>(x);
  int64_t y_high, x_high;
  if (y_low >= height - 1) {
    y_high = y_low = height - 1;
    y = static_cast<T>(y_low);
  } else {
    y_high = y_low + 1;
  }
  if (x_low >= width - 1) {
    x_high = x_low = width - 1;
    x = static_cast<T>(x_low);
  } else {
    x_high = x_low + 1;
  }
  const T ly = y - y_low, lx = x - x_low;
  const T hy = T(1.) - ly, hx = T(1.) - lx;
  s.pos1 = y_low * width + x_low;
  s.pos2 = y_low * width + x_high;
  s.pos3 = y_high * width + x_low;
  s.pos4 = y_high * width + x_high;
  s.w1 = hy * hx;
  s.w2 = hy * lx;
  s.w3 = ly * hx;
  s.w4 = ly * lx;
  s.valid = true;
  return s;
}

// All samples of one RoI in order (ph, pw, iy, ix).
template <typename T>
void roi_samples(
    const RoiGeometry<T>& g,
    int64_t pooled_height,
    int64_t pooled_width,
    int64_t height,
    int64_t width,
    std::vector<Sample<T>>& samples) {
  samples.clear();
  for (int64_t ph = 0; ph < pooled_height; ++ph) {
    for (int64_t pw = 0; pw < pooled_width; ++pw) {
      for (int64_t iy = 0; iy < g.grid_h; ++iy) {
        const T y = g.start_h + ph * g.bin_size_h +
            static_cast<T>(iy + .5f) * g.bin_size_h / static_cast<T>(g.grid_h);
        for (int64_t ix = 0; ix < g.grid_w; ++ix) {
          const T x = g.start_w + pw * g.bin_size_w +
              static_cast<T>(ix + .5f) * g.bin_size_w / static_cast<T>(g.grid_w);
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
        const RoiGeometry<T> g =
            roi_geometry<T>(r + k * 5, scale, pooled_height, pooled_width, sampling_ratio, aligned, height, width);
        roi_samples<T>(g, pooled_height, pooled_width, height, width, samples);
        const int64_t per_bin = g.grid_h * g.grid_w;
        const T count = static_cast<T>(std::max<int64_t>(per_bin, 1));
        for (int64_t c = 0; c < channels; ++c) {
          const T* plane = in + (g.batch * channels + c) * height * width;
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
        const RoiGeometry<T> g =
            roi_geometry<T>(r + k * 5, scale, pooled_height, pooled_width, sampling_ratio, aligned, height, width);
        roi_samples<T>(g, pooled_height, pooled_width, height, width, samples);
        const int64_t per_bin = g.grid_h * g.grid_w;
        const T count = static_cast<T>(per_bin);
        for (int64_t c = c_begin; c < c_end; ++c) {
          T* plane = g_in + (g.batch * channels + c) * height * width;
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
