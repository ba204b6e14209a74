// Felzenszwalb-Huttenlocher graph segmentation (IJCV 2004), the initial regions of
// Selective Search (Uijlings et al., IJCV 2013, section 3.1).
//
// The image is one graph: pixels are vertices, each joined to its 8 neighbours by an
// edge weighted with the Euclidean distance of the (Gaussian-smoothed) channel values.
// Edges are visited by increasing weight; two components merge when the edge is no
// heavier than each component's internal difference plus k / |component|. Components
// smaller than min_size are then merged into a neighbour along the lightest edges.
//
// Single-threaded on purpose: Selective Search runs one strategy per call and scales
// out over images (rcnn propose --workers), not inside one segmentation.
#include <torch/library.h>
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "cpu/selective_search_common.h"

namespace rcnn_cli {
namespace {

struct Edge {
  int32_t a;
  int32_t b;
  float w;
};

// Union-find with union by rank and path halving; size and threshold live at the root.
class DisjointSet {
 public:
  explicit DisjointSet(int64_t n) : parent_(n), rank_(n, 0), size_(n, 1) {
    for (int64_t i = 0; i < n; ++i) parent_[i] = static_cast<int32_t>(i);
  }
  int32_t find(int32_t x) {
    while (parent_[x] != x) {
      parent_[x] = parent_[parent_[x]];
      x = parent_[x];
    }
    return x;
  }
  // Joins two roots; returns the new root.
  int32_t join(int32_t a, int32_t b) {
    if (rank_[a] < rank_[b]) std::swap(a, b);
    parent_[b] = a;
    size_[a] += size_[b];
    if (rank_[a] == rank_[b]) ++rank_[a];
    return a;
  }
  int32_t size(int32_t root) const { return size_[root]; }

 private:
  std::vector<int32_t> parent_;
  std::vector<uint8_t> rank_;
  std::vector<int32_t> size_;
};

// All 8-neighbour edges (each pair once: right, down, down-right, up-right), sorted by
// weight with a counting sort on the weight quantised to 2^15 levels: O(E) instead of
// O(E log E), and equal weights keep raster order, so the result is deterministic.
std::vector<Edge> sorted_edges(const std::vector<float>& smooth, int64_t H, int64_t W, int64_t C) {
  std::vector<Edge> edges;
  edges.reserve(static_cast<size_t>(4 * H * W));
  auto dist = [&](int64_t p, int64_t q) {
    float s = 0.f;
    for (int64_t c = 0; c < C; ++c) {
      const float d = smooth[p * C + c] - smooth[q * C + c];
      s += d * d;
    }
    return std::sqrt(s);
  };
  for (int64_t y = 0; y < H; ++y) {
    for (int64_t x = 0; x < W; ++x) {
      const int64_t p = y * W + x;
      if (x + 1 < W) edges.push_back({int32_t(p), int32_t(p + 1), dist(p, p + 1)});
      if (y + 1 < H) edges.push_back({int32_t(p), int32_t(p + W), dist(p, p + W)});
      if (x + 1 < W && y + 1 < H) edges.push_back({int32_t(p), int32_t(p + W + 1), dist(p, p + W + 1)});
      if (x + 1 < W && y > 0) edges.push_back({int32_t(p), int32_t(p - W + 1), dist(p, p - W + 1)});
    }
  }
  float max_w = 0.f;
  for (const Edge& e : edges) max_w = std::max(max_w, e.w);
  constexpr int kLevels = 1 << 15;
  const float scale = max_w > 0.f ? (kLevels - 1) / max_w : 0.f;
  std::vector<int64_t> start(kLevels + 1, 0);
  for (const Edge& e : edges) ++start[static_cast<int>(e.w * scale) + 1];
  for (int i = 0; i < kLevels; ++i) start[i + 1] += start[i];
  std::vector<Edge> sorted(edges.size());
  for (const Edge& e : edges) sorted[start[static_cast<int>(e.w * scale)]++] = e;
  return sorted;
}

// One segmentation from the sorted edges: merge by the threshold k, absorb components smaller
// than min_size, write consecutive labels 0..N-1 (raster order of each component's first pixel).
void segment(const std::vector<Edge>& edges, int64_t H, int64_t W, double k, int64_t min_size, int32_t* out) {
  DisjointSet sets(H * W);
  std::vector<float> threshold(static_cast<size_t>(H * W), static_cast<float>(k));
  for (const Edge& e : edges) {
    int32_t a = sets.find(e.a), b = sets.find(e.b);
    if (a != b && e.w <= threshold[a] && e.w <= threshold[b]) {
      const int32_t r = sets.join(a, b);
      threshold[r] = e.w + static_cast<float>(k / sets.size(r));
    }
  }
  // Small components join the neighbour across their lightest edge (edges are sorted).
  for (const Edge& e : edges) {
    int32_t a = sets.find(e.a), b = sets.find(e.b);
    if (a != b && (sets.size(a) < min_size || sets.size(b) < min_size)) sets.join(a, b);
  }
  std::vector<int32_t> label_of(static_cast<size_t>(H * W), -1);
  int32_t next = 0;
  for (int64_t p = 0; p < H * W; ++p) {
    const int32_t r = sets.find(static_cast<int32_t>(p));
    if (label_of[r] < 0) label_of[r] = next++;
    out[p] = label_of[r];
  }
}

std::vector<Edge> checked_sorted_edges(const at::Tensor& image, double sigma, const char* name) {
  TORCH_CHECK(image.dim() == 3, name, ": image must be uint8 [H, W, C]");
  TORCH_CHECK(image.scalar_type() == at::kByte, name, ": image must be uint8");
  TORCH_CHECK(image.device().is_cpu(), name, ": image must be on the CPU");
  const at::Tensor img = image.contiguous();
  const int64_t H = img.size(0), W = img.size(1), C = img.size(2);
  TORCH_CHECK(H > 0 && W > 0 && C > 0, name, ": empty image");
  TORCH_CHECK(H * W < (int64_t(1) << 31), name, ": image too large");
  const std::vector<float> smooth = gaussian_smooth(img.data_ptr<uint8_t>(), H, W, C, sigma);
  return sorted_edges(smooth, H, W, C);
}

}  // namespace

at::Tensor felzenszwalb_segmentation(const at::Tensor& image, double k, int64_t min_size, double sigma) {
  const std::vector<Edge> edges = checked_sorted_edges(image, sigma, "felzenszwalb_segmentation");
  const int64_t H = image.size(0), W = image.size(1);
  at::Tensor labels = at::empty({H, W}, at::kInt);
  segment(edges, H, W, k, min_size, labels.data_ptr<int32_t>());
  return labels;
}

// Several thresholds on one image: the smoothing and the sorted edges do not depend on k, so
// they are computed once (they are most of a segmentation's time) and each (k, min_size) pair
// only reruns the merging. Row i equals felzenszwalb_segmentation(image, ks[i], min_sizes[i], sigma).
at::Tensor felzenszwalb_segmentations(const at::Tensor& image, at::ArrayRef<double> ks, at::IntArrayRef min_sizes,
                                      double sigma) {
  TORCH_CHECK(ks.size() == min_sizes.size() && !ks.empty(),
              "felzenszwalb_segmentations: give one min_size per k, at least one k");
  const std::vector<Edge> edges = checked_sorted_edges(image, sigma, "felzenszwalb_segmentations");
  const int64_t H = image.size(0), W = image.size(1), K = static_cast<int64_t>(ks.size());
  at::Tensor labels = at::empty({K, H, W}, at::kInt);
  for (int64_t i = 0; i < K; ++i) segment(edges, H, W, ks[i], min_sizes[i], labels.data_ptr<int32_t>() + i * H * W);
  return labels;
}

TORCH_LIBRARY_FRAGMENT(rcnn_cli, m) {
  // Felzenszwalb-Huttenlocher segmentation of uint8 [H, W, C] -> int32 labels [H, W], 0..N-1.
  m.def("felzenszwalb_segmentation(Tensor image, float k, int min_size, float sigma) -> Tensor",
        &felzenszwalb_segmentation);
  // The same for several (k, min_size) pairs sharing the smoothing and the sorted edges: int32 [K, H, W].
  m.def("felzenszwalb_segmentations(Tensor image, float[] ks, int[] min_sizes, float sigma) -> Tensor",
        &felzenszwalb_segmentations);
}

}  // namespace rcnn_cli
