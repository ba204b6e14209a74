// Torch-side helpers of the CUDA glue: dtype -> CUDA scalar type, error checks.
#pragma once

#include <ATen/ATen.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>

#include "cuda/launchers.h"

namespace rcnn_cli::cuda {

template <typename T>
struct CudaScalar {
  using type = T;
};
template <>
struct CudaScalar<at::Half> {
  using type = __half;
};
template <>
struct CudaScalar<at::BFloat16> {
  using type = __nv_bfloat16;
};

// Pointer of a tensor as the CUDA scalar type the launchers take.
template <typename scalar_t>
auto cuda_ptr(const at::Tensor& t) {
  return reinterpret_cast<typename CudaScalar<scalar_t>::type*>(t.data_ptr<scalar_t>());
}

// The dtype gradients are summed in on the device: float64 for float64, float32 otherwise.
inline at::ScalarType acc_dtype(at::ScalarType t) {
  return t == at::kDouble ? at::kDouble : at::kFloat;
}

inline void check_launch(cudaError_t error, const char* op) {
  TORCH_CHECK(error == cudaSuccess, op, ": CUDA launch failed: ", cudaGetErrorString(error));
}

}  // namespace rcnn_cli::cuda
