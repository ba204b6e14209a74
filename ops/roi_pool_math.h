// The bin geometry of RoI max pooling (Girshick, "Fast R-CNN", 2015, section 2.1), written
// once for both backends: ops/cpu/ (g++) and ops/cuda/roi_max_pool.cu (plain nvcc). roi_pool
// and every level of spp_pool (He et al., "Spatial Pyramid Pooling", 2014) use it. No torch
// header here, so that the .cu still compiles without one.
//
// torchvision's exact quantization, so that the numbers match torchvision.ops.roi_pool:
//   corners  x1' = round(x1 * spatial_scale)  (round half away from zero)
//   sizes    w' = max(x2' - x1' + 1, 1)       (a malformed RoI, x2 < x1, is 1x1, as in Fast R-CNN)
//   bin j    [floor(j * w'/pw), ceil((j + 1) * w'/pw)) shifted by x1', clipped to the map
//   an empty bin outputs 0 (argmax -1).
//
// T is the arithmetic type: the tensor's dtype on the CPU; on the GPU the accumulation
// type (float for half and bfloat16).
#pragma once

#include <cstdint>
#include <limits>

#include "host_device.h"

namespace rcnn_cli::roi_pool_math {

// A bin's maximum starts from -FLT_MAX for every dtype, as in torchvision (so a bin of
// -inf values outputs -FLT_MAX, not -inf).
constexpr float kMaxStart = -3.402823466e+38f;
static_assert(kMaxStart == std::numeric_limits<float>::lowest());

// Rounded RoI corner on the feature map, in 64-bit. Clamped to +-2^40 so that an extreme
// spatial_scale stays defined (no overflow in the bin arithmetic below); below 2^31, where
// torchvision's int arithmetic is defined, nothing changes. A NaN gives -2^40.
template <typename T>
RCNN_CLI_HOST_DEVICE int64_t quantize(T coordinate, T spatial_scale) {
  const T v = round_nearest(coordinate * spatial_scale);
  const T limit = T(int64_t(1) << 40);
  return static_cast<int64_t>(smaller(larger(v, -limit), limit));
}

// A RoI on the feature map in whole pixels: its first row and column and its size.
struct Window {
  int64_t start_h, start_w, height, width;
};

// (x1, y1, x2, y2) in image pixels -> the quantized window on the map.
template <typename T>
RCNN_CLI_HOST_DEVICE Window roi_window(T x1, T y1, T x2, T y2, T spatial_scale) {
  Window r;
  r.start_w = quantize(x1, spatial_scale);
  r.start_h = quantize(y1, spatial_scale);
  r.width = larger<int64_t>(quantize(x2, spatial_scale) - r.start_w + 1, 1);
  r.height = larger<int64_t>(quantize(y2, spatial_scale) - r.start_h + 1, 1);
  return r;
}

// One bin on the map: rows [hstart, hend), columns [wstart, wend).
struct Bin {
  int64_t hstart, hend, wstart, wend;

  RCNN_CLI_HOST_DEVICE bool empty() const { return hend <= hstart || wend <= wstart; }
};

// Bin `index` of `bins` along one side of a window that starts at `start` and is `size`
// pixels long, clipped to [0, limit]: *begin, *end.
template <typename T>
RCNN_CLI_HOST_DEVICE void bin_edges(
    int64_t index, int64_t bins, int64_t start, int64_t size, int64_t limit, int64_t* begin, int64_t* end) {
  const T bin_size = static_cast<T>(size) / static_cast<T>(bins);
  const int64_t first = static_cast<int64_t>(round_down(static_cast<T>(index) * bin_size));
  const int64_t last = static_cast<int64_t>(round_up(static_cast<T>(index + 1) * bin_size));
  *begin = smaller(larger(first + start, int64_t(0)), limit);
  *end = smaller(larger(last + start, int64_t(0)), limit);
}

// Bin (ph, pw) of a pooled_height x pooled_width grid over the window, on a height x width map.
template <typename T>
RCNN_CLI_HOST_DEVICE Bin roi_bin(
    const Window& r, int64_t pooled_height, int64_t pooled_width, int64_t ph, int64_t pw, int64_t height,
    int64_t width) {
  Bin b;
  bin_edges<T>(ph, pooled_height, r.start_h, r.height, height, &b.hstart, &b.hend);
  bin_edges<T>(pw, pooled_width, r.start_w, r.width, width, &b.wstart, &b.wend);
  return b;
}

}  // namespace rcnn_cli::roi_pool_math
