// Nested grids of the CPU max poolings: a grid whose every side is a power-of-two multiple
// of another grid's (SPPnet's 6x6 and 3x3, 2x2 and 1x1) contains it exactly. Coarse bin i
// spans fine bins k*i ... k*i + k - 1: the floor/ceil edges of ops/roi_pool_math.h
// coincide, because dividing a bin size by a power of two is exact in floating point. So
// the coarse grid's maxima are combined from the fine grid's instead of rescanning the
// map: about half the work for SPP. (CUDA computes one output per thread and rescans.)
#pragma once

#include <cstdint>
#include <vector>

#include "cpu/roi_max_pool.h"

namespace rcnn_cli::cpu {

// How the grids of one max pooling are computed, the same for every RoI.
struct GridPlan {
  std::vector<PoolGrid> grids;
  int64_t num_bins = 0;            // all grids' bins, per channel
  std::vector<int64_t> first_bin;  // where grid g's bins start in a RoI's bins (grid order)
  std::vector<int64_t> source;     // the finer grid that grid g is combined from; -1: scan the map
  std::vector<int64_t> factor;     // side of grid source[g] / side of grid g (a power of two)
  std::vector<int64_t> order;      // the grids finest first, so that a source is ready before use

  int64_t bins(int64_t g) const { return grids[g].height * grids[g].width; }
};

GridPlan plan_grids(const std::vector<PoolGrid>& grids);

// fn(b) for each bin b (in the RoI's bins) of the source grid inside bin j of grid g.
template <typename Fn>
inline void for_each_fine_bin(const GridPlan& plan, int64_t g, int64_t j, Fn&& fn) {
  const int64_t f = plan.source[g], s = plan.factor[g];
  const int64_t ph = j / plan.grids[g].width, pw = j % plan.grids[g].width;
  for (int64_t dy = 0; dy < s; ++dy) {
    for (int64_t dx = 0; dx < s; ++dx) fn(plan.first_bin[f] + (ph * s + dy) * plan.grids[f].width + pw * s + dx);
  }
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

// The same without positions, for inference.
template <typename T>
inline void combine_max_values(const T* sub_max, T* maxval, int64_t block) {
  for (int64_t c = 0; c < block; ++c) maxval[c] = sub_max[c] > maxval[c] ? sub_max[c] : maxval[c];
}

}  // namespace rcnn_cli::cpu
