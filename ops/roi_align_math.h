// The arithmetic of RoIAlign (He et al., "Mask R-CNN", 2017, section 3), written once
// for both backends: ops/cpu/roi_align.cpp (g++) and ops/cuda/roi_align.cu (plain nvcc).
// No torch header here, so that the .cu still compiles without one. The rules, which
// follow torchvision.ops.roi_align, are described at the top of ops/cpu/roi_align.cpp.
//
// T is the arithmetic type: the tensor's dtype on the CPU; on the GPU the accumulation
// type (float for half and bfloat16).
#pragma once

#include <cstdint>

#include "host_device.h"

namespace rcnn_cli::roi_align_math {

// Where a RoI's bins and samples lie on the feature map.
template <typename T>
struct Geometry {
  T start_h, start_w, bin_size_h, bin_size_w;
  int64_t grid_h, grid_w;  // samples per bin along each side
};

// What places a RoI's bins and samples, besides the RoI: the op's arguments and the
// size of the map.
template <typename T>
struct Args {
  T spatial_scale;
  int64_t pooled_height, pooled_width, sampling_ratio;
  bool aligned;
  int64_t height, width;
};

// (x1, y1, x2, y2) in image pixels -> bins of pooled_height x pooled_width on the map.
template <typename T>
RCNN_CLI_HOST_DEVICE Geometry<T> roi_geometry(T x1, T y1, T x2, T y2, const Args<T>& a) {
  Geometry<T> g;
  const T offset = a.aligned ? T(0.5) : T(0.0);
  g.start_w = x1 * a.spatial_scale - offset;
  g.start_h = y1 * a.spatial_scale - offset;
  T roi_width = x2 * a.spatial_scale - offset - g.start_w;
  T roi_height = y2 * a.spatial_scale - offset - g.start_h;
  if (!a.aligned) {
    // Legacy (Detectron) behaviour: force malformed RoIs to be 1x1.
    roi_width = larger(roi_width, T(1.));
    roi_height = larger(roi_height, T(1.));
  }
  g.bin_size_h = roi_height / static_cast<T>(a.pooled_height);
  g.bin_size_w = roi_width / static_cast<T>(a.pooled_width);
  // The adaptive grid (ceil of the bin size) is capped, see ops/cpu/roi_align.cpp.
  const T cap = static_cast<T>(2 * larger(a.height, a.width) + 2);
  g.grid_h = a.sampling_ratio > 0
      ? a.sampling_ratio
      : static_cast<int64_t>(smaller(round_up(roi_height / static_cast<T>(a.pooled_height)), cap));
  g.grid_w = a.sampling_ratio > 0
      ? a.sampling_ratio
      : static_cast<int64_t>(smaller(round_up(roi_width / static_cast<T>(a.pooled_width)), cap));
  // An inverted RoI (aligned, x2 < x1) gives a negative adaptive grid: no samples,
  // the output is 0 as in torchvision.
  g.grid_h = larger(g.grid_h, int64_t(0));
  g.grid_w = larger(g.grid_w, int64_t(0));
  return g;
}

// Sample (iy, ix) of bin (ph, pw): the centres of a regular grid_h x grid_w sub-grid.
template <typename T>
RCNN_CLI_HOST_DEVICE T sample_y(const Geometry<T>& g, int64_t ph, int64_t iy) {
  return g.start_h + ph * g.bin_size_h + static_cast<T>(iy + .5f) * g.bin_size_h / static_cast<T>(g.grid_h);
}

template <typename T>
RCNN_CLI_HOST_DEVICE T sample_x(const Geometry<T>& g, int64_t pw, int64_t ix) {
  return g.start_w + pw * g.bin_size_w + static_cast<T>(ix + .5f) * g.bin_size_w / static_cast<T>(g.grid_w);
}

// One bilinear sample: four neighbour offsets in the H x W plane and their weights.
template <typename T>
struct Sample {
  int64_t pos1, pos2, pos3, pos4;
  T w1, w2, w3, w4;
  bool valid;  // false: more than one pixel outside the map, contributes 0
};

template <typename T>
RCNN_CLI_HOST_DEVICE Sample<T> bilinear_sample(int64_t height, int64_t width, T y, T x) {
  Sample<T> s{0, 0, 0, 0, T(0), T(0), T(0), T(0), false};
  if (y < T(-1.0) || y > T(height) || x < T(-1.0) || x > T(width)) return s;
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

}  // namespace rcnn_cli::roi_align_math
