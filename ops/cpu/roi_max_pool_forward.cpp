// Forward pass of RoI max pooling on CPU, shared by roi_pool and spp_pool (and their
// inference form, _roi_max_pool_values, registered here). Bin geometry: ops/roi_pool_math.h.
//
// The bin edges are computed once per RoI and the maximum runs over a channels-last copy
// of the feature map, so the innermost loop is a branch-free max over contiguous
// channels that the compiler vectorizes (cpu/bin_max.h). Work is split into (channel
// block, RoI chunk) tiles: a block of 64 channels of a channels-last 38x50 map is ~0.5 MB,
// so it stays in L2 while every RoI of the chunk reads it; a whole-channel pass per RoI
// would stream the map from memory each time. Nested grids are combined from finer ones
// instead of rescanning the map (cpu/nested_grids.h).
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>

#include "arg_checks.h"
#include "cpu/bin_max.h"
#include "cpu/huge_pages.h"
#include "cpu/nested_grids.h"
#include "cpu/roi_max_pool.h"
#include "roi_pool_math.h"

namespace rcnn_cli::cpu {

namespace {

constexpr int64_t kChannelBlock = 64;
constexpr int64_t kRoiChunk = 64;

// Bin edges of one RoI (x1, y1, x2, y2) for every grid, in output order (grid, ph, pw).
template <typename T>
void roi_bins(const T* box, T spatial_scale, const GridPlan& plan, int64_t height, int64_t width, Bin* bins) {
  const roi_pool_math::Window window = roi_pool_math::roi_window(box[0], box[1], box[2], box[3], spatial_scale);
  for (const PoolGrid& grid : plan.grids) {
    for (int64_t ph = 0; ph < grid.height; ++ph) {
      for (int64_t pw = 0; pw < grid.width; ++pw) {
        *bins++ = roi_pool_math::roi_bin<T>(window, grid.height, grid.width, ph, pw, height, width);
      }
    }
  }
}

// The results of one grid for a channel block are computed bin-major (tile[j * kChannelBlock
// + c]); the output is channel-major, so they are written out afterwards and the stores run
// sequentially.
template <typename U>
void store_channel_major(const U* tile, int64_t grid_bins, int64_t block, U* out) {
  if constexpr (sizeof(U) == 4) {
    store_channel_major_32(tile, kChannelBlock, grid_bins, block, out);  // float, int32: vector transposes
  } else {
    for (int64_t c = 0; c < block; ++c) {
      for (int64_t j = 0; j < grid_bins; ++j) out[c * grid_bins + j] = tile[j * kChannelBlock + c];
    }
  }
}

// The maxima of every bin of every grid for one RoI and one block of channels, bin-major
// (tile_max[b * kChannelBlock + c]). kArgmax false: values only (tile_idx unused), for inference.
template <typename T, bool kArgmax>
void pool_tile(
    const T* map, const Bin* bins, const GridPlan& plan, int64_t width, int64_t stride, int64_t block, T* tile_max,
    int32_t* tile_idx) {
  for (int64_t g : plan.order) {
    for (int64_t j = 0; j < plan.bins(g); ++j) {
      const int64_t b = plan.first_bin[g] + j;
      const Bin& bin = bins[b];
      T* maxval = tile_max + b * kChannelBlock;
      int32_t* maxidx = kArgmax ? tile_idx + b * kChannelBlock : nullptr;
      std::fill(maxval, maxval + block, bin.empty() ? T(0) : T(roi_pool_math::kMaxStart));
      if constexpr (kArgmax) std::fill(maxidx, maxidx + block, -1);
      if (bin.empty()) continue;
      if (plan.source[g] < 0) {
        if constexpr (kArgmax) {
          bin_max(map, width, stride, bin, maxval, maxidx, block);
        } else {
          bin_max_values(map, width, stride, bin, maxval, block);
        }
        continue;
      }
      for_each_fine_bin(plan, g, j, [&](int64_t fine) {
        if (bins[fine].empty()) return;
        const T* fine_max = tile_max + fine * kChannelBlock;
        if constexpr (kArgmax) {
          combine_max(fine_max, tile_idx + fine * kChannelBlock, maxval, maxidx, block);
        } else {
          combine_max_values(fine_max, maxval, block);
        }
      });
    }
  }
}

template <typename T, bool kArgmax>
void forward_kernel(
    const T* input_nhwc, const T* rois, int64_t num_rois, int64_t channels, int64_t height, int64_t width,
    T spatial_scale, const GridPlan& plan, T* output, int32_t* argmax) {
  const int64_t num_bins = plan.num_bins;
  const int64_t roi_stride = channels * num_bins;

  // Bin edges once per RoI, shared by all channel blocks.
  std::vector<Bin> bins(num_rois * num_bins);
  at::parallel_for(0, num_rois, 64, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      roi_bins(rois + k * 5 + 1, spatial_scale, plan, height, width, bins.data() + k * num_bins);
    }
  });

  const int64_t channel_blocks = (channels + kChannelBlock - 1) / kChannelBlock;
  const int64_t roi_chunks = (num_rois + kRoiChunk - 1) / kRoiChunk;
  at::parallel_for(0, channel_blocks * roi_chunks, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> tile_max(num_bins * kChannelBlock);
    std::vector<int32_t> tile_idx(kArgmax ? num_bins * kChannelBlock : 0);
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t c0 = (tile / roi_chunks) * kChannelBlock;
      const int64_t block = std::min(kChannelBlock, channels - c0);
      const int64_t k_begin = (tile % roi_chunks) * kRoiChunk;
      const int64_t k_end = std::min(k_begin + kRoiChunk, num_rois);
      for (int64_t k = k_begin; k < k_end; ++k) {
        const int64_t n = static_cast<int64_t>(rois[k * 5]);
        const T* map = input_nhwc + n * height * width * channels + c0;
        pool_tile<T, kArgmax>(
            map, bins.data() + k * num_bins, plan, width, channels, block, tile_max.data(), tile_idx.data());
        for (int64_t g = 0; g < static_cast<int64_t>(plan.grids.size()); ++g) {
          const int64_t out = k * roi_stride + plan.first_bin[g] * channels + c0 * plan.bins(g);
          const int64_t first = plan.first_bin[g] * kChannelBlock;
          store_channel_major(tile_max.data() + first, plan.bins(g), block, output + out);
          if constexpr (kArgmax) store_channel_major(tile_idx.data() + first, plan.bins(g), block, argmax + out);
        }
      }
    }
  });
}

// grids = [h0, w0, h1, w1, ...] -> output [K, C * sum(h * w)] of roi_max_pool_forward, without argmax.
at::Tensor roi_max_pool_values_cpu(
    const at::Tensor& input, const at::Tensor& rois, double spatial_scale, at::IntArrayRef grids) {
  check_grid_pairs(grids);
  std::vector<PoolGrid> pool_grids;
  for (size_t i = 0; i < grids.size(); i += 2) pool_grids.push_back({grids[i], grids[i + 1]});
  return std::get<0>(
      roi_max_pool_forward("_roi_max_pool_values", input, rois, spatial_scale, pool_grids, /*with_argmax=*/false));
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> roi_max_pool_forward(
    const char* op, const at::Tensor& input, const at::Tensor& rois, double spatial_scale,
    const std::vector<PoolGrid>& grids, bool with_argmax) {
  check_rois(input, rois, op);
  const GridPlan plan = plan_grids(grids);
  const int64_t num_rois = rois.size(0);
  const int64_t channels = input.size(1);
  // The kernel writes every element (empty bins included), so no zero fill.
  at::Tensor output = at::empty({num_rois, channels * plan.num_bins}, input.options());
  at::Tensor argmax =
      with_argmax ? at::empty({num_rois, channels * plan.num_bins}, input.options().dtype(at::kInt)) : at::Tensor();
  if (output.numel() == 0) return {output, argmax};
  advise_huge_pages(output.data_ptr(), output.nbytes());
  if (with_argmax) advise_huge_pages(argmax.data_ptr(), argmax.nbytes());

  // Channels-last makes the innermost max run over contiguous channels; for a
  // channels-last input this is free.
  const at::Tensor input_nhwc = input.permute({0, 2, 3, 1}).contiguous();
  const at::Tensor rois_c = rois.contiguous();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "roi_max_pool_forward", [&] {
    const auto run = [&](auto kernel, int32_t* argmax_ptr) {
      kernel(
          input_nhwc.data_ptr<scalar_t>(), rois_c.data_ptr<scalar_t>(), num_rois, channels, input.size(2),
          input.size(3), static_cast<scalar_t>(spatial_scale), plan, output.data_ptr<scalar_t>(), argmax_ptr);
    };
    if (with_argmax) {
      run(forward_kernel<scalar_t, true>, argmax.data_ptr<int32_t>());
    } else {
      run(forward_kernel<scalar_t, false>, nullptr);
    }
  });
  return {output, argmax};
}

TORCH_LIBRARY_IMPL(rcnn_cli, CPU, m) {
  m.impl("_roi_max_pool_values", &roi_max_pool_values_cpu);
}

}  // namespace rcnn_cli::cpu
