// Hierarchical grouping of Selective Search (Uijlings et al., IJCV 2013, Algorithm 1).
//
// Start from the initial regions of a label map; regions are neighbours when their
// pixels touch (4-connectivity). Repeatedly merge the most similar pair of neighbours
// into a new region until one region covers the image. Similarity (section 3.2) is a
// sum of the chosen terms, each in [0, 1]:
//   colour  sum_k min(c_i^k, c_j^k)   25-bin histogram per channel, L1-normalised
//   texture sum_k min(t_i^k, t_j^k)   8 orientations x 10 bins per channel, L1-normalised
//   size    1 - (size(r_i) + size(r_j)) / size(image)
//   fill    1 - (size(BB_ij) - size(r_i) - size(r_j)) / size(image)
// A merged region's histograms are the size-weighted average of its parts.
//
// The best pair comes from a max-heap with lazy deletion: entries that name a region
// already merged away are skipped when popped. Ties go to the pair with the smallest
// (i, j), so the result is deterministic (the Python reference does the same).
#include <torch/library.h>
#include <ATen/ATen.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <tuple>
#include <vector>

namespace rcnn_cli {
namespace {

constexpr int kColourBins = 25;

struct Regions {
  int64_t colour_dims = 0;
  int64_t texture_dims = 0;
  std::vector<int64_t> size;
  std::vector<std::array<int32_t, 4>> box;  // x1, y1, x2, y2, inclusive pixels
  std::vector<float> colour;                // [R, colour_dims]
  std::vector<float> texture;               // [R, texture_dims]
};

struct SimilarityTerms {
  bool colour, texture, size, fill;
};

struct Candidate {
  double s;
  int32_t i, j;  // i < j
};

// Max-heap order: larger similarity first, then the smaller (i, j).
bool heap_less(const Candidate& a, const Candidate& b) {
  if (a.s != b.s) return a.s < b.s;
  if (a.i != b.i) return a.i > b.i;
  return a.j > b.j;
}

double histogram_intersection(const float* a, const float* b, int64_t n) {
  double s = 0.0;
  for (int64_t k = 0; k < n; ++k) s += std::min(a[k], b[k]);
  return s;
}

double similarity(const Regions& r, int32_t a, int32_t b, const SimilarityTerms& t, double image_size) {
  double s = 0.0;
  if (t.colour)
    s += histogram_intersection(&r.colour[a * r.colour_dims], &r.colour[b * r.colour_dims], r.colour_dims);
  if (t.texture)
    s += histogram_intersection(&r.texture[a * r.texture_dims], &r.texture[b * r.texture_dims], r.texture_dims);
  const double sa = static_cast<double>(r.size[a]), sb = static_cast<double>(r.size[b]);
  if (t.size) s += 1.0 - (sa + sb) / image_size;
  if (t.fill) {
    const auto& p = r.box[a];
    const auto& q = r.box[b];
    const double bw = std::max(p[2], q[2]) - std::min(p[0], q[0]) + 1;
    const double bh = std::max(p[3], q[3]) - std::min(p[1], q[1]) + 1;
    s += 1.0 - (bw * bh - sa - sb) / image_size;
  }
  return s;
}

// Size, box and normalised histograms of the N initial regions, stored in tables with
// room for the N - 1 regions that grouping creates.
Regions initial_regions(const int32_t* labels, const uint8_t* image, const uint8_t* texture, int64_t H, int64_t W,
                        int64_t C, int64_t T, int64_t N) {
  Regions r;
  r.colour_dims = C * kColourBins;
  r.texture_dims = T * 10;
  const int64_t R = 2 * N - 1;
  r.size.assign(R, 0);
  r.box.assign(R, {INT32_MAX, INT32_MAX, -1, -1});
  r.colour.assign(R * r.colour_dims, 0.f);
  r.texture.assign(R * r.texture_dims, 0.f);
  for (int64_t y = 0; y < H; ++y) {
    for (int64_t x = 0; x < W; ++x) {
      const int64_t p = y * W + x;
      const int32_t l = labels[p];
      r.size[l] += 1;
      auto& b = r.box[l];
      b[0] = std::min<int32_t>(b[0], x);
      b[1] = std::min<int32_t>(b[1], y);
      b[2] = std::max<int32_t>(b[2], x);
      b[3] = std::max<int32_t>(b[3], y);
      float* ch = &r.colour[l * r.colour_dims];
      for (int64_t c = 0; c < C; ++c) ch[c * kColourBins + image[p * C + c] * kColourBins / 256] += 1.f;
      float* th = &r.texture[l * r.texture_dims];
      for (int64_t j = 0; j < T; ++j) th[texture[p * T + j]] += 1.f;
    }
  }
  for (int64_t l = 0; l < N; ++l) {
    TORCH_CHECK(r.size[l] > 0, "hierarchical_grouping: label ", l, " has no pixels; labels must be 0..N-1");
    const float cn = 1.f / static_cast<float>(r.size[l] * C), tn = 1.f / static_cast<float>(r.size[l] * T);
    for (int64_t k = 0; k < r.colour_dims; ++k) r.colour[l * r.colour_dims + k] *= cn;
    for (int64_t k = 0; k < r.texture_dims; ++k) r.texture[l * r.texture_dims + k] *= tn;
  }
  return r;
}

// Pairs (a, b), a < b, of labels whose pixels touch horizontally or vertically.
std::vector<std::pair<int32_t, int32_t>> adjacent_pairs(const int32_t* labels, int64_t H, int64_t W, int64_t N) {
  std::vector<int64_t> keys;
  auto add = [&](int32_t a, int32_t b) {
    if (a == b) return;
    const int64_t key = a < b ? a * N + b : b * N + a;
    if (keys.empty() || keys.back() != key) keys.push_back(key);  // drops runs along a boundary
  };
  for (int64_t y = 0; y < H; ++y) {
    for (int64_t x = 0; x < W; ++x) {
      const int32_t l = labels[y * W + x];
      if (x + 1 < W) add(l, labels[y * W + x + 1]);
      if (y + 1 < H) add(l, labels[(y + 1) * W + x]);
    }
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  std::vector<std::pair<int32_t, int32_t>> pairs;
  pairs.reserve(keys.size());
  for (int64_t k : keys) pairs.emplace_back(static_cast<int32_t>(k / N), static_cast<int32_t>(k % N));
  return pairs;
}

// One grouping run: fills boxes [2N - 1, 4] (creation order) and merges [N - 1, 2].
void group(Regions r, const std::vector<std::pair<int32_t, int32_t>>& pairs, int64_t N, const SimilarityTerms& terms,
           double image_size, int32_t* boxes, int32_t* merges) {
  const int64_t R = 2 * N - 1;
  std::vector<std::vector<int32_t>> neighbours(R);
  std::vector<Candidate> heap;
  heap.reserve(pairs.size() * 4);
  for (const auto& [a, b] : pairs) {
    neighbours[a].push_back(b);
    neighbours[b].push_back(a);
    heap.push_back({similarity(r, a, b, terms, image_size), a, b});
  }
  std::make_heap(heap.begin(), heap.end(), heap_less);
  std::vector<char> alive(R, 0);
  std::fill(alive.begin(), alive.begin() + N, 1);
  std::vector<int32_t> stamp(R, -1);
  std::vector<int32_t> merged_neighbours;

  for (int64_t m = 0; m < N - 1; ++m) {
    Candidate best{};
    do {
      TORCH_CHECK(!heap.empty(), "hierarchical_grouping: the regions are not connected");
      std::pop_heap(heap.begin(), heap.end(), heap_less);
      best = heap.back();
      heap.pop_back();
    } while (!alive[best.i] || !alive[best.j]);
    const int32_t i = best.i, j = best.j, t = static_cast<int32_t>(N + m);
    merges[2 * m] = i;
    merges[2 * m + 1] = j;

    const double si = static_cast<double>(r.size[i]), sj = static_cast<double>(r.size[j]);
    r.size[t] = r.size[i] + r.size[j];
    const float wi = static_cast<float>(si / (si + sj)), wj = static_cast<float>(sj / (si + sj));
    for (int64_t k = 0; k < r.colour_dims; ++k)
      r.colour[t * r.colour_dims + k] = wi * r.colour[i * r.colour_dims + k] + wj * r.colour[j * r.colour_dims + k];
    for (int64_t k = 0; k < r.texture_dims; ++k)
      r.texture[t * r.texture_dims + k] =
          wi * r.texture[i * r.texture_dims + k] + wj * r.texture[j * r.texture_dims + k];
    const auto& bi = r.box[i];
    const auto& bj = r.box[j];
    r.box[t] = {std::min(bi[0], bj[0]), std::min(bi[1], bj[1]), std::max(bi[2], bj[2]), std::max(bi[3], bj[3])};
    alive[i] = alive[j] = 0;
    alive[t] = 1;

    // Neighbours of t: the live neighbours of i and j. Lists may still name regions
    // merged away earlier; those are dropped here rather than searched for eagerly.
    merged_neighbours.clear();
    stamp[i] = stamp[j] = t;
    for (int32_t part : {i, j}) {
      for (int32_t n : neighbours[part]) {
        if (alive[n] && stamp[n] != t) {
          stamp[n] = t;
          merged_neighbours.push_back(n);
        }
      }
      std::vector<int32_t>().swap(neighbours[part]);
    }
    for (int32_t n : merged_neighbours) {
      neighbours[n].push_back(t);
      heap.push_back({similarity(r, n, t, terms, image_size), n, t});
      std::push_heap(heap.begin(), heap.end(), heap_less);
    }
    neighbours[t] = merged_neighbours;
  }
  for (int64_t k = 0; k < R; ++k)
    for (int c = 0; c < 4; ++c) boxes[k * 4 + c] = r.box[k][c];
}

}  // namespace

// labels int32 [H, W] (0..N-1), image uint8 [H, W, C], texture uint8 [H, W, T] (bin
// indices from selective_search_texture_bins), similarity_sets int64 [S, 4] (use colour,
// texture, size, fill) -> (boxes int32 [S, 2N - 1, 4] inclusive x1 y1 x2 y2 in creation
// order: the N initial regions, then each merge; merges int32 [S, N - 1, 2]).
std::tuple<at::Tensor, at::Tensor> hierarchical_grouping(const at::Tensor& labels, const at::Tensor& image,
                                                         const at::Tensor& texture,
                                                         const at::Tensor& similarity_sets) {
  TORCH_CHECK(labels.dim() == 2 && labels.scalar_type() == at::kInt, "hierarchical_grouping: labels must be int32 [H, W]");
  TORCH_CHECK(image.dim() == 3 && image.scalar_type() == at::kByte, "hierarchical_grouping: image must be uint8 [H, W, C]");
  TORCH_CHECK(texture.dim() == 3 && texture.scalar_type() == at::kByte,
              "hierarchical_grouping: texture must be uint8 [H, W, T]");
  TORCH_CHECK(similarity_sets.dim() == 2 && similarity_sets.size(1) == 4,
              "hierarchical_grouping: similarity_sets must be [S, 4]");
  const int64_t H = labels.size(0), W = labels.size(1);
  TORCH_CHECK(image.size(0) == H && image.size(1) == W && texture.size(0) == H && texture.size(1) == W,
              "hierarchical_grouping: labels, image and texture must have the same height and width");
  const int64_t C = image.size(2), T = texture.size(2);
  TORCH_CHECK(T * 10 <= 256, "hierarchical_grouping: texture has too many channels");
  const at::Tensor lab = labels.contiguous(), img = image.contiguous(), tex = texture.contiguous();
  const at::Tensor sets = similarity_sets.to(at::kLong).contiguous();
  const int32_t* l = lab.data_ptr<int32_t>();
  const int64_t N = H * W > 0 ? static_cast<int64_t>(lab.max().item<int32_t>()) + 1 : 0;
  TORCH_CHECK(N > 0 && lab.min().item<int32_t>() >= 0, "hierarchical_grouping: labels must be 0..N-1");
  const int64_t S = sets.size(0);

  const Regions initial = initial_regions(l, img.data_ptr<uint8_t>(), tex.data_ptr<uint8_t>(), H, W, C, T, N);
  const auto pairs = adjacent_pairs(l, H, W, N);
  at::Tensor boxes = at::empty({S, 2 * N - 1, 4}, at::kInt);
  at::Tensor merges = at::empty({S, N - 1, 2}, at::kInt);
  const int64_t* f = sets.data_ptr<int64_t>();
  for (int64_t s = 0; s < S; ++s) {
    const SimilarityTerms terms{f[4 * s] != 0, f[4 * s + 1] != 0, f[4 * s + 2] != 0, f[4 * s + 3] != 0};
    group(initial, pairs, N, terms, static_cast<double>(H * W), boxes.data_ptr<int32_t>() + s * (2 * N - 1) * 4,
          merges.data_ptr<int32_t>() + s * (N - 1) * 2);
  }
  return {boxes, merges};
}

TORCH_LIBRARY_FRAGMENT(rcnn_cli, m) {
  // Selective Search hierarchical grouping, one run per row of similarity_sets.
  m.def(
      "hierarchical_grouping(Tensor labels, Tensor image, Tensor texture, Tensor similarity_sets) "
      "-> (Tensor, Tensor)",
      &hierarchical_grouping);
}

}  // namespace rcnn_cli
