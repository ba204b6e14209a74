// The operator schemas of rcnn_cli._C, one place for all backends.
//
// CPU kernels register in ops/cpu/*.cpp, CUDA kernels in ops/cuda/*.cpp
// (TORCH_LIBRARY_IMPL). Autograd formulas and fake (meta) kernels are
// registered from Python in src/rcnn_cli/ops/_registrations.py, so that
// torch.compile and torch.library.opcheck see the same ops as eager mode.
//
// Shapes use torchvision's conventions: rois is Tensor[K, 5] =
// (batch_index, x1, y1, x2, y2) in input-image pixels; spatial_scale maps
// them onto the feature map (1/16 for VGG16 conv5).
#include <Python.h>
#include <torch/library.h>

// setup.py writes the line it printed at build time ("rcnn_cli._C: CPU and CUDA kernels
// (torch ..., nvcc ..., arch sm_90)") into this header, so that the installed library can
// say what it was built with (rcnn --version).
#if __has_include("rcnn_cli_build_info.h")
#include "rcnn_cli_build_info.h"
#else
#define RCNN_CLI_BUILD_SUMMARY "rcnn_cli._C: built without setup.py (no build summary)"
#endif

// A Python module whose only content is build_summary, so that `import rcnn_cli._C`
// loads this library and runs the registrations below.
static PyModuleDef rcnn_cli_c_module = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
PyMODINIT_FUNC PyInit__C(void) {
  PyObject* module = PyModule_Create(&rcnn_cli_c_module);
  if (module != nullptr && PyModule_AddStringConstant(module, "build_summary", RCNN_CLI_BUILD_SUMMARY) < 0) {
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}

TORCH_LIBRARY(rcnn_cli, m) {
  // Fast R-CNN RoI max pooling -> (output [K, C, ph, pw], argmax int32 [K, C, ph, pw]).
  m.def(
      "roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, "
      "SymInt pooled_width) -> (Tensor, Tensor)");
  // SPPnet pyramid pooling of every RoI, all levels in one pass ->
  // (output [K, C * sum(l*l)], argmax int32, same shape). Layout: level by level,
  // each level channel-major (c, ph, pw), i.e. cat([roi_pool(l).flatten(1) for l in levels], 1).
  m.def("spp_pool(Tensor input, Tensor rois, float spatial_scale, int[] levels) -> (Tensor, Tensor)");
  // Inference form of both: the output alone, no argmax to compute or store (nothing
  // will ask for a gradient). grids = [h0, w0, h1, w1, ...] -> [K, C * sum(h*w)], the
  // spp_pool layout; roi_pool is one grid, its output a view [K, C, ph, pw] of this.
  // CPU only; on other devices the Python wrappers call roi_pool/spp_pool.
  m.def("_roi_max_pool_values(Tensor input, Tensor rois, float spatial_scale, int[] grids) -> Tensor");
  // Backward of both max poolings: route grad to the argmax element of each output.
  // grad and argmax are in the forward's layout, grid_bins the bins of each grid
  // ([ph * pw] for roi_pool, [l * l for l in levels] for spp_pool).
  // Returns [batch_size, channels, height, width].
  m.def(
      "_roi_max_pool_backward(Tensor grad, Tensor rois, Tensor argmax, int[] grid_bins, SymInt batch_size, "
      "SymInt channels, SymInt height, SymInt width) -> Tensor");
  // Mask R-CNN RoIAlign (bilinear sampling, no quantization) -> [K, C, ph, pw].
  m.def(
      "roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, "
      "SymInt pooled_width, int sampling_ratio, bool aligned) -> Tensor");
  m.def(
      "_roi_align_backward(Tensor grad, Tensor rois, float spatial_scale, SymInt pooled_height, "
      "SymInt pooled_width, SymInt batch_size, SymInt channels, SymInt height, SymInt width, "
      "int sampling_ratio, bool aligned) -> Tensor");
  // Greedy non-maximum suppression -> int64 indices of kept boxes, by decreasing score.
  m.def("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor");
}
