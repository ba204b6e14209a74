// Torch glue of the CUDA RoIAlign (forward and backward) in roi_align.cu.
#include <torch/library.h>

#include "arg_checks.h"
#include "cuda/dispatch.h"

namespace rcnn_cli::cuda {

namespace {

at::Tensor roi_align_cuda(
    const at::Tensor& input, const at::Tensor& rois, double spatial_scale, int64_t pooled_height,
    int64_t pooled_width, int64_t sampling_ratio, bool aligned) {
  check_rois(input, rois, "roi_align");
  check_output_size(pooled_height, pooled_width, "roi_align");
  const c10::cuda::CUDAGuard guard(input.device());
  const int64_t num_rois = rois.size(0);
  at::Tensor output = at::zeros({num_rois, input.size(1), pooled_height, pooled_width}, input.options());
  if (output.numel() == 0 || input.numel() == 0) return output;
  const at::Tensor input_c = input.contiguous();
  const at::Tensor rois_c = rois.contiguous();
  launch_for(input.scalar_type(), "roi_align", [&](auto tag, cudaStream_t stream) {
    using scalar_t = decltype(tag);
    return roi_align_forward(
        cuda_ptr<scalar_t>(input_c), cuda_ptr<scalar_t>(rois_c), input.size(0), input.size(1), input.size(2),
        input.size(3), num_rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned,
        cuda_ptr<scalar_t>(output), stream);
  });
  return output;
}

at::Tensor roi_align_backward_cuda(
    const at::Tensor& grad, const at::Tensor& rois, double spatial_scale, int64_t pooled_height,
    int64_t pooled_width, int64_t batch_size, int64_t channels, int64_t height, int64_t width,
    int64_t sampling_ratio, bool aligned) {
  check_roi_align_backward(grad, rois, channels, pooled_height, pooled_width);
  const c10::cuda::CUDAGuard guard(grad.device());
  const at::Tensor grad_c = grad.contiguous();
  const at::Tensor rois_c = rois.to(grad.scalar_type()).contiguous();
  return grad_input_of(
      grad, {batch_size, channels, height, width}, "roi_align_backward", [&](auto tag, auto* out, cudaStream_t stream) {
        using scalar_t = decltype(tag);
        return roi_align_backward(
            cuda_ptr<scalar_t>(grad_c), cuda_ptr<scalar_t>(rois_c), batch_size, channels, height, width,
            rois.size(0), spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned, out, stream);
      });
}

}  // namespace

TORCH_LIBRARY_IMPL(rcnn_cli, CUDA, m) {
  m.impl("roi_align", &roi_align_cuda);
  m.impl("_roi_align_backward", &roi_align_backward_cuda);
}

}  // namespace rcnn_cli::cuda
