// Fast R-CNN RoI max pooling on CPU (Girshick, "Fast R-CNN", 2015, section 2.1),
// with torchvision's exact quantization so that the numbers match it:
//   corners  x1' = round(x1 * spatial_scale)  (round half away from zero)
//   sizes    w' = max(x2' - x1' + 1, 1)
//   bin j    [floor(j * w'/pw), ceil((j + 1) * w'/pw)) shifted by x1', clipped to the map
//   an empty bin outputs 0 with argmax -1.
//
// Forward: one task per RoI (at::parallel_for). The bin edges are computed once
// per RoI and the maximum runs over a channels-last copy of the feature map, so
// the innermost loop is a branch-free max over C contiguous channels that the
// compiler vectorizes.
// Backward: one task per channel range; each task walks the RoIs in order, so
// every input element receives its sum in the same order whatever the thread
// count: deterministic, no atomics.
#include "cpu/roi_max_pool.h"
#include "cpu/vectorize.h"

#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace rcnn_cli::cpu {

namespace {

struct Bin {
  int64_t hstart, hend, wstart, wend;
};

// Rounded RoI corner on the feature map, in 64-bit. Clamped to +-2^40 so that an
// extreme spatial_scale stays defined (no overflow in the bin arithmetic below);
// below 2^31, where torchvision's int arithmetic is defined, nothing changes.
template <typename T>
int64_t quantize(T coordinate, T spatial_scale) {
  const T v = std::round(coordinate * spatial_scale);
  constexpr T limit = T(int64_t(1) << 40);
  return static_cast<int64_t>(std::min(std::max(v, -limit), limit));
}

// Bin edges of one RoI for every grid, in output order (grid, ph, pw).
template <typename T>
void roi_bins(
    const T* roi,
    T spatial_scale,
    const std::vector<PoolGrid>& grids,
    int64_t height,
    int64_t width,
    Bin* bins) {
  const int64_t roi_start_w = quantize(roi[1], spatial_scale);
  const int64_t roi_start_h = quantize(roi[2], spatial_scale);
  const int64_t roi_end_w = quantize(roi[3], spatial_scale);
  const int64_t roi_end_h = quantize(roi[4], spatial_scale);
  // Malformed RoIs (x2 < x1) are forced to be 1x1, as in Fast R-CNN.
  const int64_t roi_width = std::max<int64_t>(roi_end_w - roi_start_w + 1, 1);
  const int64_t roi_height = std::max<int64_t>(roi_end_h - roi_start_h + 1, 1);
  for (const PoolGrid& grid : grids) {
    const T bin_size_h = static_cast<T>(roi_height) / static_cast<T>(grid.height);
    const T bin_size_w = static_cast<T>(roi_width) / static_cast<T>(grid.width);
    for (int64_t ph = 0; ph < grid.height; ++ph) {
      int64_t hstart = static_cast<int64_t>(std::floor(static_cast<T>(ph) * bin_size_h));
      int64_t hend = static_cast<int64_t>(std::ceil(static_cast<T>(ph + 1) * bin_size_h));
      hstart = std::min(std::max(hstart + roi_start_h, int64_t(0)), height);
      hend = std::min(std::max(hend + roi_start_h, int64_t(0)), height);
      for (int64_t pw = 0; pw < grid.width; ++pw) {
        int64_t wstart = static_cast<int64_t>(std::floor(static_cast<T>(pw) * bin_size_w));
        int64_t wend = static_cast<int64_t>(std::ceil(static_cast<T>(pw + 1) * bin_size_w));
        wstart = std::min(std::max(wstart + roi_start_w, int64_t(0)), width);
        wend = std::min(std::max(wend + roi_start_w, int64_t(0)), width);
        *bins++ = Bin{hstart, hend, wstart, wend};
      }
    }
  }
}

// Max over one bin for a block of channels of a channels-last map:
// maxval[c], maxidx[c] <- max over (h, w) in the bin of map[(h * width + w) * stride + c].
// Strict '>' keeps the first maximum in scan order, as torchvision. Written with
// unconditional loads and a bit mask so that GCC vectorizes the channel loop; the
// whole bin is one multi-versioned call (RCNN_CLI_VECTOR_CLONES), not one per pixel.
template <typename T>
inline void bin_max_impl(
    const T* map, int64_t width, int64_t stride, const Bin& bin, T* maxval, int32_t* maxidx, int64_t block) {
  for (int64_t h = bin.hstart; h < bin.hend; ++h) {
    for (int64_t w = bin.wstart; w < bin.wend; ++w) {
      const T* pixel = map + (h * width + w) * stride;
      const int32_t index = static_cast<int32_t>(h * width + w);
      for (int64_t c = 0; c < block; ++c) {
        const T v = pixel[c];
        const T m = maxval[c];
        const int32_t i = maxidx[c];
        const int32_t greater = -static_cast<int32_t>(v > m);
        maxval[c] = v > m ? v : m;
        maxidx[c] = (index & greater) | (i & ~greater);
      }
    }
  }
}

RCNN_CLI_VECTOR_CLONES
void bin_max(
    const float* map, int64_t width, int64_t stride, const Bin& bin, float* maxval, int32_t* maxidx,
    int64_t block) {
  bin_max_impl(map, width, stride, bin, maxval, maxidx, block);
}

RCNN_CLI_VECTOR_CLONES
void bin_max(
    const double* map, int64_t width, int64_t stride, const Bin& bin, double* maxval, int32_t* maxidx,
    int64_t block) {
  bin_max_impl(map, width, stride, bin, maxval, maxidx, block);
}

// The same maximum without its position, for inference (no backward will need it):
// no index blend in the loop and no argmax tensor to write.
template <typename T>
inline void bin_max_values_impl(const T* map, int64_t width, int64_t stride, const Bin& bin, T* maxval, int64_t block) {
  for (int64_t h = bin.hstart; h < bin.hend; ++h) {
    for (int64_t w = bin.wstart; w < bin.wend; ++w) {
      const T* pixel = map + (h * width + w) * stride;
      for (int64_t c = 0; c < block; ++c) {
        const T v = pixel[c];
        const T m = maxval[c];
        maxval[c] = v > m ? v : m;  // the argmax version's expression: the same value, NaN included
      }
    }
  }
}

RCNN_CLI_VECTOR_CLONES
void bin_max_values(const float* map, int64_t width, int64_t stride, const Bin& bin, float* maxval, int64_t block) {
  bin_max_values_impl(map, width, stride, bin, maxval, block);
}

RCNN_CLI_VECTOR_CLONES
void bin_max_values(
    const double* map, int64_t width, int64_t stride, const Bin& bin, double* maxval, int64_t block) {
  bin_max_values_impl(map, width, stride, bin, maxval, block);
}

// Merges the maximum of a sub-bin into a bin's: the larger value wins and, between
// equal values, the smaller plane index, which is the one a row-major scan of the
// whole bin meets first. So combining gives exactly the scan's value and argmax.
template <typename T>
inline void combine_max(const T* sub_max, const int32_t* sub_idx, T* maxval, int32_t* maxidx, int64_t block) {
  for (int64_t c = 0; c < block; ++c) {
    const T v = sub_max[c];
    const T m = maxval[c];
    const int32_t i = sub_idx[c];
    const int32_t mi = maxidx[c];
    const int32_t take = -static_cast<int32_t>((v > m) | ((v == m) & (i < mi)));
    maxval[c] = take ? v : m;
    maxidx[c] = (i & take) | (mi & ~take);
  }
}

// Work is split into (channel block, RoI chunk) tiles. A block of 64 channels of a
// channels-last 38x50 map is ~0.5 MB, so it stays in L2 while every RoI of the chunk
// reads it; a whole-channel pass per RoI would stream the map from memory each time.
constexpr int64_t kChannelBlock = 64;
constexpr int64_t kRoiChunk = 64;

// kArgmax false: values only (argmax is null), for inference.
template <typename T, bool kArgmax>
void forward_kernel(
    const T* input_nhwc,
    const T* rois,
    int64_t num_rois,
    int64_t channels,
    int64_t height,
    int64_t width,
    T spatial_scale,
    const std::vector<PoolGrid>& grids,
    T* output,
    int32_t* argmax) {
  int64_t num_bins = 0;
  for (const PoolGrid& g : grids) num_bins += g.height * g.width;
  const int64_t roi_stride = channels * num_bins;

  // Bin edges once per RoI, shared by all channel blocks.
  std::vector<Bin> bins(num_rois * num_bins);
  at::parallel_for(0, num_rois, 64, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      roi_bins(rois + k * 5, spatial_scale, grids, height, width, bins.data() + k * num_bins);
    }
  });

  const int64_t channel_blocks = (channels + kChannelBlock - 1) / kChannelBlock;
  const int64_t roi_chunks = (num_rois + kRoiChunk - 1) / kRoiChunk;
  // A grid whose every side is a power-of-two multiple of another grid's (SPPnet's
  // 6x6 and 3x3, 2x2 and 1x1) contains it exactly: coarse bin i spans fine bins k*i
  // ... k*i + k - 1 (the floor/ceil edges coincide, and dividing a bin size by a power
  // of two is exact in floating point). Such a coarse grid is then combined from the
  // fine grid's maxima instead of rescanning the map: about half the work for SPP.
  const int64_t num_grids = static_cast<int64_t>(grids.size());
  std::vector<int64_t> first_bin(num_grids, 0);
  for (int64_t g = 1; g < num_grids; ++g) first_bin[g] = first_bin[g - 1] + grids[g - 1].height * grids[g - 1].width;
  std::vector<int64_t> source(num_grids, -1), factor(num_grids, 0);
  for (int64_t g = 0; g < num_grids; ++g) {
    for (int64_t f = 0; f < num_grids; ++f) {
      const int64_t k = grids[f].height / grids[g].height;
      const bool nested = k >= 2 && (k & (k - 1)) == 0 && grids[f].height == k * grids[g].height &&
          grids[f].width == k * grids[g].width;
      if (nested && (source[g] < 0 || k < factor[g])) {
        source[g] = f;
        factor[g] = k;
      }
    }
  }
  // Finer grids first, so that every source is ready before it is used.
  std::vector<int64_t> order(num_grids);
  for (int64_t g = 0; g < num_grids; ++g) order[g] = g;
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return grids[a].height * grids[a].width > grids[b].height * grids[b].width;
  });

  at::parallel_for(0, channel_blocks * roi_chunks, 1, [&](int64_t begin, int64_t end) {
    // Results of every grid for one channel block, bin-major; written out channel-major
    // afterwards so that the stores to the output run sequentially.
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
        const Bin* roi_bins_k = bins.data() + k * num_bins;
        for (int64_t g : order) {
          const PoolGrid& grid = grids[g];
          for (int64_t j = 0; j < grid.height * grid.width; ++j) {
            const int64_t b = first_bin[g] + j;
            const Bin& bin = roi_bins_k[b];
            const bool empty = bin.hend <= bin.hstart || bin.wend <= bin.wstart;
            T* maxval = tile_max.data() + b * kChannelBlock;
            int32_t* maxidx = kArgmax ? tile_idx.data() + b * kChannelBlock : nullptr;
            // torchvision starts from -FLT_MAX for every dtype; so do we.
            std::fill(maxval, maxval + block, empty ? T(0) : T(std::numeric_limits<float>::lowest()));
            if constexpr (kArgmax) std::fill(maxidx, maxidx + block, -1);
            if (empty) continue;
            if (source[g] < 0) {
              if constexpr (kArgmax) {
                bin_max(map, width, channels, bin, maxval, maxidx, block);
              } else {
                bin_max_values(map, width, channels, bin, maxval, block);
              }
              continue;
            }
            const int64_t f = source[g], s = factor[g];
            const int64_t ph = j / grid.width, pw = j % grid.width;
            for (int64_t dy = 0; dy < s; ++dy) {
              for (int64_t dx = 0; dx < s; ++dx) {
                const int64_t fine = first_bin[f] + (ph * s + dy) * grids[f].width + pw * s + dx;
                const Bin& fine_bin = roi_bins_k[fine];
                if (fine_bin.hend <= fine_bin.hstart || fine_bin.wend <= fine_bin.wstart) continue;
                const T* fine_max = tile_max.data() + fine * kChannelBlock;
                if constexpr (kArgmax) {
                  combine_max(fine_max, tile_idx.data() + fine * kChannelBlock, maxval, maxidx, block);
                } else {
                  for (int64_t c = 0; c < block; ++c) maxval[c] = fine_max[c] > maxval[c] ? fine_max[c] : maxval[c];
                }
              }
            }
          }
        }
        for (int64_t g = 0; g < num_grids; ++g) {
          const int64_t grid_bins = grids[g].height * grids[g].width;
          T* out_grid = output + k * roi_stride + first_bin[g] * channels + c0 * grid_bins;
          const T* tmax = tile_max.data() + first_bin[g] * kChannelBlock;
          for (int64_t c = 0; c < block; ++c) {
            for (int64_t j = 0; j < grid_bins; ++j) out_grid[c * grid_bins + j] = tmax[j * kChannelBlock + c];
          }
          if constexpr (kArgmax) {
            int32_t* arg_grid = argmax + k * roi_stride + first_bin[g] * channels + c0 * grid_bins;
            const int32_t* tidx = tile_idx.data() + first_bin[g] * kChannelBlock;
            for (int64_t c = 0; c < block; ++c) {
              for (int64_t j = 0; j < grid_bins; ++j) arg_grid[c * grid_bins + j] = tidx[j * kChannelBlock + c];
            }
          }
        }
      }
    }
  });
}

template <typename T>
void backward_kernel(
    const T* grad,
    const T* rois,
    const int32_t* argmax,
    int64_t num_rois,
    int64_t channels,
    int64_t plane_size,
    const std::vector<int64_t>& grid_bins,
    T* grad_input) {
  int64_t bins_per_channel = 0;
  for (int64_t b : grid_bins) bins_per_channel += b;
  const int64_t roi_stride = channels * bins_per_channel;
  at::parallel_for(0, channels, 1, [&](int64_t c_begin, int64_t c_end) {
    for (int64_t k = 0; k < num_rois; ++k) {
      const int64_t n = static_cast<int64_t>(rois[k * 5]);
      int64_t grid_offset = 0;
      for (int64_t bins : grid_bins) {
        for (int64_t c = c_begin; c < c_end; ++c) {
          const int64_t offset = k * roi_stride + grid_offset * channels + c * bins;
          const T* g = grad + offset;
          const int32_t* a = argmax + offset;
          T* plane = grad_input + (n * channels + c) * plane_size;
          for (int64_t j = 0; j < bins; ++j) {
            if (a[j] >= 0) plane[a[j]] += g[j];
          }
        }
        grid_offset += bins;
      }
    }
  });
}

}  // namespace

void check_rois(const at::Tensor& input, const at::Tensor& rois, const char* op) {
  TORCH_CHECK(input.dim() == 4, op, ": input must be [N, C, H, W], got ", input.sizes());
  TORCH_CHECK(rois.dim() == 2 && rois.size(1) == 5, op, ": rois must be [K, 5], got ", rois.sizes());
  TORCH_CHECK(input.scalar_type() == rois.scalar_type(), op, ": input and rois must have the same dtype");
  TORCH_CHECK(input.device() == rois.device(), op, ": input and rois must be on the same device");
  // argmax is int32 (as torchvision's): an index inside one H x W plane.
  TORCH_CHECK(input.size(2) * input.size(3) < (int64_t(1) << 31), op, ": H * W must be below 2^31");
  if (rois.size(0) > 0 && rois.device().is_cpu()) {
    const at::Tensor batch = rois.select(1, 0);
    const bool ok = at::logical_and(batch.ge(0), batch.lt(input.size(0))).all().item<bool>();
    TORCH_CHECK(ok, op, ": rois[:, 0] must be batch indices in [0, ", input.size(0), ")");
  }
}

std::tuple<at::Tensor, at::Tensor> roi_max_pool_forward(
    const at::Tensor& input,
    const at::Tensor& rois,
    double spatial_scale,
    const std::vector<PoolGrid>& grids,
    bool with_argmax) {
  check_rois(input, rois, "roi_max_pool");
  int64_t num_bins = 0;
  for (const PoolGrid& g : grids) {
    TORCH_CHECK(g.height > 0 && g.width > 0, "roi_max_pool: grid sizes must be positive");
    num_bins += g.height * g.width;
  }
  const int64_t num_rois = rois.size(0);
  const int64_t channels = input.size(1);
  // The kernel writes every element (empty bins included), so no zero fill.
  at::Tensor output = at::empty({num_rois, channels * num_bins}, input.options());
  at::Tensor argmax =
      with_argmax ? at::empty({num_rois, channels * num_bins}, input.options().dtype(at::kInt)) : at::Tensor();
  if (output.numel() == 0) return {output, argmax};

  // Channels-last makes the innermost max run over contiguous channels; for a
  // channels-last input this is free.
  const at::Tensor input_nhwc = input.permute({0, 2, 3, 1}).contiguous();
  const at::Tensor rois_c = rois.contiguous();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "roi_max_pool_forward", [&] {
    const auto run = [&](auto kernel, int32_t* argmax_ptr) {
      kernel(
          input_nhwc.data_ptr<scalar_t>(),
          rois_c.data_ptr<scalar_t>(),
          num_rois,
          channels,
          input.size(2),
          input.size(3),
          static_cast<scalar_t>(spatial_scale),
          grids,
          output.data_ptr<scalar_t>(),
          argmax_ptr);
    };
    if (with_argmax) {
      run(forward_kernel<scalar_t, true>, argmax.data_ptr<int32_t>());
    } else {
      run(forward_kernel<scalar_t, false>, nullptr);
    }
  });
  return {output, argmax};
}

at::Tensor roi_max_pool_backward(
    const at::Tensor& grad,
    const at::Tensor& rois,
    const at::Tensor& argmax,
    at::IntArrayRef grid_bins,
    int64_t batch_size,
    int64_t channels,
    int64_t height,
    int64_t width) {
  TORCH_CHECK(grad.sizes() == argmax.sizes(), "roi_max_pool_backward: grad and argmax shapes differ");
  TORCH_CHECK(argmax.scalar_type() == at::kInt, "roi_max_pool_backward: argmax must be int32");
  TORCH_CHECK(rois.dim() == 2 && rois.size(1) == 5, "roi_max_pool_backward: rois must be [K, 5]");
  TORCH_CHECK(grad.dim() >= 2 && grad.size(0) == rois.size(0), "roi_max_pool_backward: grad must be [K, ...]");
  at::Tensor grad_input = at::zeros({batch_size, channels, height, width}, grad.options());
  const int64_t num_rois = rois.size(0);
  if (num_rois == 0 || grad.numel() == 0) return grad_input;
  std::vector<int64_t> bins(grid_bins.begin(), grid_bins.end());
  int64_t bins_per_channel = 0;
  for (int64_t b : bins) {
    TORCH_CHECK(b > 0, "roi_max_pool_backward: grid_bins must be positive");
    bins_per_channel += b;
  }
  TORCH_CHECK(
      grad.numel() == num_rois * channels * bins_per_channel,
      "roi_max_pool_backward: grad has ", grad.numel(), " elements, expected K * C * sum(grid_bins)");
  const at::Tensor grad_c = grad.contiguous();
  const at::Tensor argmax_c = argmax.contiguous();
  const at::Tensor rois_c = rois.to(grad.scalar_type()).contiguous();
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "roi_max_pool_backward", [&] {
    backward_kernel<scalar_t>(
        grad_c.data_ptr<scalar_t>(),
        rois_c.data_ptr<scalar_t>(),
        argmax_c.data_ptr<int32_t>(),
        num_rois,
        channels,
        height * width,
        bins,
        grad_input.data_ptr<scalar_t>());
  });
  return grad_input;
}

namespace {

std::tuple<at::Tensor, at::Tensor> roi_pool_cpu(
    const at::Tensor& input,
    const at::Tensor& rois,
    double spatial_scale,
    int64_t pooled_height,
    int64_t pooled_width) {
  auto [output, argmax] = roi_max_pool_forward(input, rois, spatial_scale, {{pooled_height, pooled_width}});
  const int64_t k = rois.size(0);
  const int64_t c = input.size(1);
  return {output.view({k, c, pooled_height, pooled_width}), argmax.view({k, c, pooled_height, pooled_width})};
}

// grids = [h0, w0, h1, w1, ...] -> output [K, C * sum(h * w)] of roi_max_pool_forward, without argmax.
at::Tensor roi_max_pool_values_cpu(
    const at::Tensor& input, const at::Tensor& rois, double spatial_scale, at::IntArrayRef grids) {
  TORCH_CHECK(
      !grids.empty() && grids.size() % 2 == 0, "_roi_max_pool_values: grids must be (height, width) pairs");
  std::vector<PoolGrid> pool_grids;
  for (size_t i = 0; i < grids.size(); i += 2) pool_grids.push_back({grids[i], grids[i + 1]});
  return std::get<0>(roi_max_pool_forward(input, rois, spatial_scale, pool_grids, /*with_argmax=*/false));
}

}  // namespace

TORCH_LIBRARY_IMPL(rcnn_cli, CPU, m) {
  m.impl("_roi_max_pool_values", &roi_max_pool_values_cpu);
  m.impl("roi_pool", &roi_pool_cpu);
  m.impl("_roi_max_pool_backward", &roi_max_pool_backward);
}

}  // namespace rcnn_cli::cpu
