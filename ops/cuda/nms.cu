// Greedy NMS on CUDA, the bitmask method: nms_mask compares every box with the
// 64 boxes of one column block per thread (IoU > threshold strictly, in Acc<T>),
// nms_gather_keep then replays the greedy choice in a single block on the device,
// so no mask is copied to the host. Boxes come sorted by decreasing score.
#include "common.cuh"

namespace rcnn_cli::cuda {

namespace {

template <typename A>
__device__ __forceinline__ A iou(const A* a, const A* b) {
  const A left = max(a[0], b[0]), right = min(a[2], b[2]);
  const A top = max(a[1], b[1]), bottom = min(a[3], b[3]);
  const A width = max(right - left, A(0)), height = max(bottom - top, A(0));
  const A inter = width * height;
  const A area_a = (a[2] - a[0]) * (a[3] - a[1]);
  const A area_b = (b[2] - b[0]) * (b[3] - b[1]);
  return inter / (area_a + area_b - inter);
}

template <typename T>
__global__ void nms_mask_kernel(
    const T* __restrict__ boxes, int64_t num_boxes, double iou_threshold, int64_t col_blocks,
    unsigned long long* __restrict__ mask) {
  using A = Acc<T>;
  const int64_t row_block = blockIdx.y;
  const int64_t col_block = blockIdx.x;
  if (row_block > col_block) return;  // only j > i matters
  const int64_t row_size = min(num_boxes - row_block * kNmsBlock, int64_t(kNmsBlock));
  const int64_t col_size = min(num_boxes - col_block * kNmsBlock, int64_t(kNmsBlock));

  __shared__ A block_boxes[kNmsBlock * 4];
  if (threadIdx.x < col_size) {
    for (int d = 0; d < 4; ++d) {
      block_boxes[threadIdx.x * 4 + d] = to_acc(boxes[(col_block * kNmsBlock + threadIdx.x) * 4 + d]);
    }
  }
  __syncthreads();
  if (threadIdx.x >= row_size) return;

  const int64_t i = row_block * kNmsBlock + threadIdx.x;
  A box[4];
  for (int d = 0; d < 4; ++d) box[d] = to_acc(boxes[i * 4 + d]);
  unsigned long long bits = 0;
  const int64_t start = row_block == col_block ? threadIdx.x + 1 : 0;
  for (int64_t j = start; j < col_size; ++j) {
    if (iou<A>(box, block_boxes + j * 4) > iou_threshold) bits |= 1ULL << j;
  }
  mask[i * col_blocks + col_block] = bits;
}

// One block: removed[] holds the boxes suppressed so far, one bit per box.
__global__ void nms_gather_keep_kernel(
    const unsigned long long* __restrict__ mask, int64_t num_boxes, int64_t col_blocks, bool* __restrict__ keep) {
  extern __shared__ unsigned long long removed[];
  for (int64_t b = threadIdx.x; b < col_blocks; b += blockDim.x) removed[b] = 0;
  __syncthreads();
  for (int64_t block = 0; block < col_blocks; ++block) {
    unsigned long long removed_here = removed[block];
    __syncthreads();
    for (int bit = 0; bit < kNmsBlock; ++bit) {
      const int64_t i = block * kNmsBlock + bit;
      if (i >= num_boxes) break;
      if (removed_here & (1ULL << bit)) continue;  // uniform across the block
      if (threadIdx.x == 0) keep[i] = true;
      const unsigned long long* row = mask + i * col_blocks;
      for (int64_t b = block + threadIdx.x; b < col_blocks; b += blockDim.x) removed[b] |= row[b];
      __syncthreads();
      removed_here = removed[block];
      __syncthreads();
    }
  }
}

}  // namespace

template <typename T>
cudaError_t nms_mask(
    const T* sorted_boxes, int64_t num_boxes, double iou_threshold, unsigned long long* mask, cudaStream_t stream) {
  if (num_boxes == 0) return cudaSuccess;
  const int64_t col_blocks = (num_boxes + kNmsBlock - 1) / kNmsBlock;
  if (col_blocks > 65535) return cudaErrorInvalidValue;
  const dim3 blocks(static_cast<unsigned int>(col_blocks), static_cast<unsigned int>(col_blocks));
  nms_mask_kernel<T><<<blocks, kNmsBlock, 0, stream>>>(sorted_boxes, num_boxes, iou_threshold, col_blocks, mask);
  return cudaGetLastError();
}

cudaError_t nms_gather_keep(const unsigned long long* mask, int64_t num_boxes, bool* keep, cudaStream_t stream) {
  if (num_boxes == 0) return cudaSuccess;
  const int64_t col_blocks = (num_boxes + kNmsBlock - 1) / kNmsBlock;
  const size_t shared = static_cast<size_t>(col_blocks) * sizeof(unsigned long long);
  if (shared > 48 * 1024) return cudaErrorInvalidValue;  // more than 393216 boxes
  nms_gather_keep_kernel<<<1, 256, shared, stream>>>(mask, num_boxes, col_blocks, keep);
  return cudaGetLastError();
}

#define RCNN_CLI_INSTANTIATE(T) \
  template cudaError_t nms_mask<T>(const T*, int64_t, double, unsigned long long*, cudaStream_t);
RCNN_CLI_FOR_EACH_SCALAR(RCNN_CLI_INSTANTIATE)
#undef RCNN_CLI_INSTANTIATE

}  // namespace rcnn_cli::cuda
