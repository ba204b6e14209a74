// Torch glue of the CUDA NMS in nms.cu: sort by score on the device (stable,
// descending), build the overlap bitmask, gather the kept boxes, map back to indices.
#include <torch/library.h>

#include "arg_checks.h"
#include "cuda/dispatch.h"

namespace rcnn_cli::cuda {

namespace {

at::Tensor nms_cuda(const at::Tensor& dets, const at::Tensor& scores, double iou_threshold) {
  check_nms(dets, scores);
  const c10::cuda::CUDAGuard guard(dets.device());
  const int64_t n = dets.size(0);
  if (n == 0) return at::empty({0}, dets.options().dtype(at::kLong));
  const at::Tensor order = std::get<1>(scores.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));
  const at::Tensor sorted = dets.index_select(0, order).contiguous();
  const int64_t col_blocks = (n + kNmsBlock - 1) / kNmsBlock;
  at::Tensor mask = at::empty({n * col_blocks}, dets.options().dtype(at::kLong));
  at::Tensor keep = at::zeros({n}, dets.options().dtype(at::kBool));
  auto* mask_ptr = reinterpret_cast<unsigned long long*>(mask.data_ptr<int64_t>());
  launch_for(dets.scalar_type(), "nms", [&](auto tag, cudaStream_t stream) {
    return nms_mask(cuda_ptr<decltype(tag)>(sorted), n, iou_threshold, mask_ptr, stream);
  });
  check_launch(nms_gather_keep(mask_ptr, n, keep.data_ptr<bool>(), c10::cuda::getCurrentCUDAStream()), "nms");
  return order.masked_select(keep);
}

}  // namespace

TORCH_LIBRARY_IMPL(rcnn_cli, CUDA, m) {
  m.impl("nms", &nms_cuda);
}

}  // namespace rcnn_cli::cuda
