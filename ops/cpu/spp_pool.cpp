// SPPnet spatial pyramid pooling of RoIs on CPU (He et al., "Spatial Pyramid
// Pooling in Deep Convolutional Networks", 2014, section 2.3 and 3.1.1).
//
// Each RoI is max-pooled into l x l bins for every pyramid level l and the
// results are concatenated into one fixed-length vector [C * sum(l*l)]. All
// levels are computed in one pass over the RoI (one kernel call), with the same
// bin rule as roi_pool, so levels=(7,) equals roi_pool 7x7 exactly. The
// backward pass is the shared roi_max_pool backward.
#include <torch/library.h>

#include "arg_checks.h"
#include "cpu/roi_max_pool.h"

namespace rcnn_cli::cpu {

namespace {

std::tuple<at::Tensor, at::Tensor> spp_pool_cpu(
    const at::Tensor& input,
    const at::Tensor& rois,
    double spatial_scale,
    at::IntArrayRef levels) {
  check_levels(levels);
  std::vector<PoolGrid> grids;
  for (int64_t l : levels) grids.push_back({l, l});
  return roi_max_pool_forward("spp_pool", input, rois, spatial_scale, grids);
}

}  // namespace

TORCH_LIBRARY_IMPL(rcnn_cli, CPU, m) {
  m.impl("spp_pool", &spp_pool_cpu);
}

}  // namespace rcnn_cli::cpu
