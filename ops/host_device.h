// What the headers shared by the CPU and CUDA kernels (roi_pool_math.h, roi_align_math.h)
// need to be compiled by both g++ and plain nvcc: the host+device marker and the few
// math functions whose spelling differs between host and device code. No torch header.
#pragma once

#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define RCNN_CLI_HOST_DEVICE __host__ __device__ inline
#else
#define RCNN_CLI_HOST_DEVICE inline
#endif

namespace rcnn_cli {

// a > b ? a : b, so that a NaN in `a` gives `b` (std::max would give the NaN).
template <typename T>
RCNN_CLI_HOST_DEVICE T larger(T a, T b) {
  return a > b ? a : b;
}

// a < b ? a : b, so that a NaN in `a` gives `b`.
template <typename T>
RCNN_CLI_HOST_DEVICE T smaller(T a, T b) {
  return a < b ? a : b;
}

// ceil, floor and round (half away from zero) for float and double: the CUDA math
// functions in device code, <cmath> on the host. They give the same results.
#ifdef __CUDA_ARCH__
#define RCNN_CLI_MATH(name) name
#else
#define RCNN_CLI_MATH(name) std::name
#endif

template <typename T>
RCNN_CLI_HOST_DEVICE T round_up(T v) {
  return RCNN_CLI_MATH(ceil)(v);
}

template <typename T>
RCNN_CLI_HOST_DEVICE T round_down(T v) {
  return RCNN_CLI_MATH(floor)(v);
}

template <typename T>
RCNN_CLI_HOST_DEVICE T round_nearest(T v) {
  return RCNN_CLI_MATH(round)(v);
}

#undef RCNN_CLI_MATH

}  // namespace rcnn_cli
