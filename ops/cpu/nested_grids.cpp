// plan_grids of cpu/nested_grids.h.
#include "cpu/nested_grids.h"

#include <algorithm>

namespace rcnn_cli::cpu {

GridPlan plan_grids(const std::vector<PoolGrid>& grids) {
  GridPlan plan;
  plan.grids = grids;
  const int64_t num_grids = static_cast<int64_t>(grids.size());
  plan.first_bin.assign(num_grids, 0);
  for (int64_t g = 0; g < num_grids; ++g) {
    plan.first_bin[g] = plan.num_bins;
    plan.num_bins += plan.bins(g);
  }
  // Each grid's source is the nested grid with the smallest factor (the least to combine).
  plan.source.assign(num_grids, -1);
  plan.factor.assign(num_grids, 0);
  for (int64_t g = 0; g < num_grids; ++g) {
    for (int64_t f = 0; f < num_grids; ++f) {
      const int64_t k = grids[f].height / grids[g].height;
      const bool nested = k >= 2 && (k & (k - 1)) == 0 && grids[f].height == k * grids[g].height &&
          grids[f].width == k * grids[g].width;
      if (nested && (plan.source[g] < 0 || k < plan.factor[g])) {
        plan.source[g] = f;
        plan.factor[g] = k;
      }
    }
  }
  plan.order.resize(num_grids);
  for (int64_t g = 0; g < num_grids; ++g) plan.order[g] = g;
  std::stable_sort(
      plan.order.begin(), plan.order.end(), [&](int64_t a, int64_t b) { return plan.bins(a) > plan.bins(b); });
  return plan;
}

}  // namespace rcnn_cli::cpu
