// Torch glue of the CUDA RoIAlign (forward and backward) in roi_align.cu.
#include <torch/library.h>

#include "cuda/dispatch.h"

namespace rcnn_cli::cuda {

namespace {

at::Tensor roi_align_cuda(
    const at::Tensor& input,
    const at::Tensor& rois,
    double spatial_scale,
    int64_t pooled_height,
    int64_t pooled_width,
    int64_t sampling_ratio,
    bool aligned) {
  TORCH_CHECK(input.is_cuda() && rois.is_cuda(), "roi_align: input and rois must be CUDA tensors");
  TORCH_CHECK(input.dim() == 4, "roi_align: input must be [N, C, H, W]");
  TORCH_CHECK(rois.dim() == 2 && rois.size(1) == 5, "roi_align: rois must be [K, 5]");
  TORCH_CHECK(input.scalar_type() == rois.scalar_type(), "roi_align: input and rois must have the same dtype");
  TORCH_CHECK(pooled_height > 0 && pooled_width > 0, "roi_align: output size must be positive");
  const c10::cuda::CUDAGuard guard(input.device());
  const int64_t num_rois = rois.size(0);
  at::Tensor output = at::zeros({num_rois, input.size(1), pooled_height, pooled_width}, input.options());
  if (output.numel() == 0 || input.numel() == 0) return output;
  const at::Tensor input_c = input.contiguous();
  const at::Tensor rois_c = rois.contiguous();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "roi_align_forward_cuda", [&] {
    check_launch(
        roi_align_forward(
            cuda_ptr<scalar_t>(input_c), cuda_ptr<scalar_t>(rois_c), input.size(0), input.size(1), input.size(2),
            input.size(3), num_rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned,
            cuda_ptr<scalar_t>(output), stream),
        "roi_align");
  });
  return output;
}

at::Tensor roi_align_backward_cuda(
    const at::Tensor& grad,
    const at::Tensor& rois,
    double spatial_scale,
    int64_t pooled_height,
    int64_t pooled_width,
    int64_t batch_size,
    int64_t channels,
    int64_t height,
    int64_t width,
    int64_t sampling_ratio,
    bool aligned) {
  TORCH_CHECK(grad.is_cuda() && rois.is_cuda(), "roi_align_backward: CUDA tensors expected");
  TORCH_CHECK(rois.dim() == 2 && rois.size(1) == 5, "roi_align_backward: rois must be [K, 5]");
  TORCH_CHECK(
      grad.dim() == 4 && grad.size(0) == rois.size(0) && grad.size(1) == channels &&
          grad.size(2) == pooled_height && grad.size(3) == pooled_width,
      "roi_align_backward: grad must be [K, C, pooled_height, pooled_width]");
  const c10::cuda::CUDAGuard guard(grad.device());
  at::Tensor grad_acc =
      at::zeros({batch_size, channels, height, width}, grad.options().dtype(acc_dtype(grad.scalar_type())));
  if (grad.numel() > 0 && grad_acc.numel() > 0) {
    const at::Tensor grad_c = grad.contiguous();
    const at::Tensor rois_c = rois.to(grad.scalar_type()).contiguous();
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "roi_align_backward_cuda", [&] {
      using acc_t = Acc<typename CudaScalar<scalar_t>::type>;
      check_launch(
          roi_align_backward(
              cuda_ptr<scalar_t>(grad_c), cuda_ptr<scalar_t>(rois_c), batch_size, channels, height, width,
              rois.size(0), spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned,
              grad_acc.data_ptr<acc_t>(), stream),
          "roi_align_backward");
    });
  }
  return grad_acc.to(grad.scalar_type());
}

}  // namespace

TORCH_LIBRARY_IMPL(rcnn_cli, CUDA, m) {
  m.impl("roi_align", &roi_align_cuda);
  m.impl("_roi_align_backward", &roi_align_backward_cuda);
}

}  // namespace rcnn_cli::cuda
