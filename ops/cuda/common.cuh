// Helpers shared by the .cu kernels: conversions to the accumulation type, the 1-D
// grid-stride launch.
#pragma once

#include <utility>

#include "launchers.h"

namespace rcnn_cli::cuda {

__device__ __forceinline__ float to_acc(float v) { return v; }
__device__ __forceinline__ double to_acc(double v) { return v; }
__device__ __forceinline__ float to_acc(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_acc(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_acc(Acc<T> v);
template <>
__device__ __forceinline__ float from_acc<float>(float v) { return v; }
template <>
__device__ __forceinline__ double from_acc<double>(double v) { return v; }
template <>
__device__ __forceinline__ __half from_acc<__half>(float v) { return __float2half(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_acc<__nv_bfloat16>(float v) { return __float2bfloat16(v); }

constexpr int kThreads = 256;

inline unsigned int blocks_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned int>(blocks < 65535 * 64 ? blocks : 65535 * 64);
}

// Launches a kernel with a grid-stride loop over `total` elements on enough blocks
// (nothing when there are none) and returns the launch's error.
template <typename... Params, typename... KernelArgs>
cudaError_t launch_over(void (*kernel)(Params...), int64_t total, cudaStream_t stream, KernelArgs&&... args) {
  if (total == 0) return cudaSuccess;
  kernel<<<blocks_for(total), kThreads, 0, stream>>>(std::forward<KernelArgs>(args)...);
  return cudaGetLastError();
}

}  // namespace rcnn_cli::cuda
