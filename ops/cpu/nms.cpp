// Greedy non-maximum suppression on CPU, with torchvision's exact rule:
// visit boxes by decreasing score (stable sort, so ties keep index order), keep a
// box unless an earlier kept box overlaps it with IoU > iou_threshold (strictly),
// IoU of continuous boxes: area = (x2 - x1) * (y2 - y1).
//
// The boxes are gathered into sorted, contiguous coordinate arrays and the
// suppression sweep is branch-free (suppressed |= iou > t), so it vectorizes;
// re-testing an already suppressed box changes nothing, so the result is the same.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "arg_checks.h"
#include "cpu/vectorize.h"

namespace rcnn_cli::cpu {

namespace {

// The float (or double) threshold t such that, for every value x of type T,
// x > t exactly when x > iou_threshold (a double): round iou_threshold down to T.
// Comparing in T keeps the sweep below in one vector width.
template <typename T>
T threshold_in(double iou_threshold) {
  T t = static_cast<T>(iou_threshold);
  if (static_cast<double>(t) > iou_threshold) t = std::nextafter(t, -std::numeric_limits<T>::infinity());
  return t;
}

// suppressed[j] |= IoU(box i, box j) > threshold for every j > i (sorted arrays).
template <typename T>
inline void suppress_overlaps_impl(
    const T* x1, const T* y1, const T* x2, const T* y2, const T* area, uint8_t* suppressed, int64_t i,
    int64_t n, T threshold) {
  const T ix1 = x1[i], iy1 = y1[i], ix2 = x2[i], iy2 = y2[i], iarea = area[i];
  for (int64_t j = i + 1; j < n; ++j) {
    const T xx1 = std::max(ix1, x1[j]);
    const T yy1 = std::max(iy1, y1[j]);
    const T xx2 = std::min(ix2, x2[j]);
    const T yy2 = std::min(iy2, y2[j]);
    const T w = std::max(static_cast<T>(0), xx2 - xx1);
    const T h = std::max(static_cast<T>(0), yy2 - yy1);
    const T inter = w * h;
    const T iou = inter / (iarea + area[j] - inter);
    suppressed[j] |= static_cast<uint8_t>(iou > threshold);
  }
}

RCNN_CLI_VECTOR_CLONES
void suppress_overlaps(
    const float* x1, const float* y1, const float* x2, const float* y2, const float* area, uint8_t* suppressed,
    int64_t i, int64_t n, float threshold) {
  suppress_overlaps_impl(x1, y1, x2, y2, area, suppressed, i, n, threshold);
}

RCNN_CLI_VECTOR_CLONES
void suppress_overlaps(
    const double* x1, const double* y1, const double* x2, const double* y2, const double* area,
    uint8_t* suppressed, int64_t i, int64_t n, double threshold) {
  suppress_overlaps_impl(x1, y1, x2, y2, area, suppressed, i, n, threshold);
}

template <typename T>
int64_t nms_kernel(const T* boxes, const int64_t* order, int64_t n, double iou_threshold, int64_t* keep) {
  std::vector<T> x1(n), y1(n), x2(n), y2(n), area(n);
  for (int64_t i = 0; i < n; ++i) {
    const T* b = boxes + order[i] * 4;
    x1[i] = b[0];
    y1[i] = b[1];
    x2[i] = b[2];
    y2[i] = b[3];
    area[i] = (b[2] - b[0]) * (b[3] - b[1]);
  }
  const T threshold = threshold_in<T>(iou_threshold);
  std::vector<uint8_t> suppressed(n, 0);
  int64_t num_kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (suppressed[i]) continue;
    keep[num_kept++] = order[i];
    suppress_overlaps(x1.data(), y1.data(), x2.data(), y2.data(), area.data(), suppressed.data(), i, n, threshold);
  }
  return num_kept;
}

at::Tensor nms_cpu(const at::Tensor& dets, const at::Tensor& scores, double iou_threshold) {
  check_nms(dets, scores);
  const int64_t n = dets.size(0);
  if (n == 0) return at::empty({0}, dets.options().dtype(at::kLong));
  const at::Tensor order = std::get<1>(scores.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true)).contiguous();
  const at::Tensor dets_c = dets.contiguous();
  at::Tensor keep = at::empty({n}, dets.options().dtype(at::kLong));
  int64_t num_kept = 0;
  AT_DISPATCH_FLOATING_TYPES(dets.scalar_type(), "nms", [&] {
    num_kept = nms_kernel<scalar_t>(
        dets_c.data_ptr<scalar_t>(), order.data_ptr<int64_t>(), n, iou_threshold, keep.data_ptr<int64_t>());
  });
  return keep.narrow(0, 0, num_kept).clone();
}

}  // namespace

TORCH_LIBRARY_IMPL(rcnn_cli, CPU, m) {
  m.impl("nms", &nms_cpu);
}

}  // namespace rcnn_cli::cpu
