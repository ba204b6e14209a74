// Torch-side helpers of the CUDA glue: dtype -> CUDA scalar type, launching on the
// current stream, the float accumulation of gradients. The argument checks are the
// backends' shared ones (ops/arg_checks.h).
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

// launch(scalar_t{}, stream) -> cudaError_t, with scalar_t the torch type of `dtype` (a
// launcher's T is CudaScalar<scalar_t>::type), on the current stream; raises if it failed.
// A switch rather than AT_DISPATCH, so that the error names the op.
template <typename Launch>
void launch_for(at::ScalarType dtype, const char* op, Launch&& launch) {
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  switch (dtype) {
    case at::kFloat:
      return check_launch(launch(float{}, stream), op);
    case at::kDouble:
      return check_launch(launch(double{}, stream), op);
    case at::kHalf:
      return check_launch(launch(at::Half{}, stream), op);
    case at::kBFloat16:
      return check_launch(launch(at::BFloat16{}, stream), op);
    default:
      TORCH_CHECK(false, op, ": the CUDA kernels take float16, bfloat16, float32 and float64, not ", dtype);
  }
}

// The backward passes add gradients with atomics into a buffer of acc_dtype (half and
// bfloat16 gradients are summed in float): launch(scalar_t{}, buffer, stream) fills the
// zeroed buffer of `sizes`, which comes back in grad's dtype.
template <typename Launch>
at::Tensor grad_input_of(const at::Tensor& grad, at::IntArrayRef sizes, const char* op, Launch&& launch) {
  at::Tensor buffer = at::zeros(sizes, grad.options().dtype(acc_dtype(grad.scalar_type())));
  if (grad.numel() > 0 && buffer.numel() > 0) {
    launch_for(grad.scalar_type(), op, [&](auto tag, cudaStream_t stream) {
      using acc_t = Acc<typename CudaScalar<decltype(tag)>::type>;
      return launch(tag, buffer.data_ptr<acc_t>(), stream);
    });
  }
  return buffer.to(grad.scalar_type());
}

}  // namespace rcnn_cli::cuda
