// Fast R-CNN RoI max pooling on CPU (Girshick, "Fast R-CNN", 2015, section 2.1): one
// pooled_height x pooled_width grid of the shared RoI max pooling (cpu/roi_max_pool.h),
// with torchvision's quantization (ops/roi_pool_math.h). Its backward pass is the shared
// _roi_max_pool_backward (cpu/roi_max_pool_backward.cpp).
#include <torch/library.h>

#include "arg_checks.h"
#include "cpu/roi_max_pool.h"

namespace rcnn_cli::cpu {

namespace {

// -> (output [K, C, ph, pw], argmax int32 [K, C, ph, pw]), views of the shared [K, C * ph * pw] layout.
std::tuple<at::Tensor, at::Tensor> roi_pool_cpu(
    const at::Tensor& input, const at::Tensor& rois, double spatial_scale, int64_t pooled_height,
    int64_t pooled_width) {
  check_output_size(pooled_height, pooled_width, "roi_pool");
  auto [output, argmax] = roi_max_pool_forward("roi_pool", input, rois, spatial_scale, {{pooled_height, pooled_width}});
  const int64_t k = rois.size(0);
  const int64_t c = input.size(1);
  return {output.view({k, c, pooled_height, pooled_width}), argmax.view({k, c, pooled_height, pooled_width})};
}

}  // namespace

TORCH_LIBRARY_IMPL(rcnn_cli, CPU, m) {
  m.impl("roi_pool", &roi_pool_cpu);
}

}  // namespace rcnn_cli::cpu
