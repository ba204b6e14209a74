// The bin maxima declared in cpu/bin_max.h. Written with unconditional loads and selects
// so that GCC vectorizes the channel loop, and compiled for several instruction sets
// (cpu/vectorize.h).
#include "cpu/bin_max.h"

#include "cpu/vectorize.h"

namespace rcnn_cli::cpu {

namespace {

// Channels per register group: four 256-bit vectors, 32 floats or 16 doubles, of maxima
// and, with argmax, four of indices. With the loaded pixel and the compare masks that fits
// the 16 AVX2 registers, so the running maxima stay in registers over the whole bin
// instead of going through memory for every pixel. (The rest of a block, fewer than a
// group, takes the loop over memory below.)
constexpr int64_t kVectors = 4;
template <typename T>
constexpr int64_t kGroup = kVectors * Simd<T>::kLanes;

// The bin's maximum of channels [0, kGroup) starting from maxval/maxidx. Per lane the same
// select as the scalar loop: strict '>', so the first maximum in row-major order wins and a
// NaN never replaces the running maximum.
template <typename T, bool kArgmax>
[[gnu::always_inline]] inline void group_max(
    const T* map, int64_t width, int64_t stride, const Bin& bin, T* maxval, int32_t* maxidx) {
  using V = typename Simd<T>::V;
  using I = typename Simd<T>::I;
  constexpr int64_t L = Simd<T>::kLanes;
  V m[kVectors];
  I mi[kVectors];
  for (int64_t j = 0; j < kVectors; ++j) {
    load_vector(&m[j], maxval + j * L);
    if constexpr (kArgmax && sizeof(T) == 4) {
      load_vector(&mi[j], maxidx + j * L);
    } else if constexpr (kArgmax) {
      for (int64_t l = 0; l < L; ++l) mi[j][l] = maxidx[j * L + l];  // int32 -> int64 lanes
    }
  }
  for (int64_t h = bin.hstart; h < bin.hend; ++h) {
    const T* pixel = map + (h * width + bin.wstart) * stride;
    int32_t index = static_cast<int32_t>(h * width + bin.wstart);
    for (int64_t w = bin.wstart; w < bin.wend; ++w, pixel += stride, ++index) {
      const I index_v = I{} + index;
      for (int64_t j = 0; j < kVectors; ++j) {
        V v;
        load_vector(&v, pixel + j * L);
        const I greater = v > m[j];
        m[j] = greater ? v : m[j];
        if constexpr (kArgmax) mi[j] = greater ? index_v : mi[j];
      }
    }
  }
  for (int64_t j = 0; j < kVectors; ++j) {
    store_vector(maxval + j * L, m[j]);
    if constexpr (kArgmax && sizeof(T) == 4) {
      store_vector(maxidx + j * L, mi[j]);
    } else if constexpr (kArgmax) {
      for (int64_t l = 0; l < L; ++l) maxidx[j * L + l] = static_cast<int32_t>(mi[j][l]);
    }
  }
}

// The channels [from, block) that do not fill a group: the running maxima in memory.
template <typename T, bool kArgmax>
[[gnu::always_inline]] inline void tail_max(
    const T* map, int64_t width, int64_t stride, const Bin& bin, T* maxval, int32_t* maxidx, int64_t from,
    int64_t block) {
  for (int64_t h = bin.hstart; h < bin.hend; ++h) {
    for (int64_t w = bin.wstart; w < bin.wend; ++w) {
      const T* pixel = map + (h * width + w) * stride;
      const int32_t index = static_cast<int32_t>(h * width + w);
      for (int64_t c = from; c < block; ++c) {
        const T v = pixel[c];
        const T m = maxval[c];
        maxval[c] = v > m ? v : m;  // NaN: never greater, the same expression in both forms
        if constexpr (kArgmax) maxidx[c] = v > m ? index : maxidx[c];
      }
    }
  }
}

template <typename T, bool kArgmax>
[[gnu::always_inline]] inline void block_max(
    const T* map, int64_t width, int64_t stride, const Bin& bin, T* maxval, int32_t* maxidx, int64_t block) {
  constexpr int64_t G = kGroup<T>;
  int64_t c = 0;
  for (; c + G <= block; c += G) {
    group_max<T, kArgmax>(map + c, width, stride, bin, maxval + c, kArgmax ? maxidx + c : nullptr);
  }
  if (c < block) tail_max<T, kArgmax>(map, width, stride, bin, maxval, maxidx, c, block);
}

}  // namespace

RCNN_CLI_VECTOR_CLONES
void bin_max(
    const float* map, int64_t width, int64_t stride, const Bin& bin, float* maxval, int32_t* maxidx, int64_t block) {
  block_max<float, true>(map, width, stride, bin, maxval, maxidx, block);
}

RCNN_CLI_VECTOR_CLONES
void bin_max(
    const double* map, int64_t width, int64_t stride, const Bin& bin, double* maxval, int32_t* maxidx,
    int64_t block) {
  block_max<double, true>(map, width, stride, bin, maxval, maxidx, block);
}

RCNN_CLI_VECTOR_CLONES
void bin_max_values(const float* map, int64_t width, int64_t stride, const Bin& bin, float* maxval, int64_t block) {
  block_max<float, false>(map, width, stride, bin, maxval, nullptr, block);
}

RCNN_CLI_VECTOR_CLONES
void bin_max_values(
    const double* map, int64_t width, int64_t stride, const Bin& bin, double* maxval, int64_t block) {
  block_max<double, false>(map, width, stride, bin, maxval, nullptr, block);
}

}  // namespace rcnn_cli::cpu

namespace rcnn_cli::cpu {

namespace {

using V8 = Simd<float>::I;  // eight 32-bit lanes

// Rows r[0..8) of 8 lanes -> their transpose, in place (the unpack/shuffle/permute of AVX).
[[gnu::always_inline]] inline void transpose8(V8* r) {
  V8 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
    t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = __builtin_shufflevector(t[i], t[i + 2], 0, 1, 8, 9, 4, 5, 12, 13);
    u[i + 1] = __builtin_shufflevector(t[i], t[i + 2], 2, 3, 10, 11, 6, 7, 14, 15);
    u[i + 2] = __builtin_shufflevector(t[i + 1], t[i + 3], 0, 1, 8, 9, 4, 5, 12, 13);
    u[i + 3] = __builtin_shufflevector(t[i + 1], t[i + 3], 2, 3, 10, 11, 6, 7, 14, 15);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = __builtin_shufflevector(u[i], u[i + 4], 0, 1, 2, 3, 8, 9, 10, 11);
    r[i + 4] = __builtin_shufflevector(u[i], u[i + 4], 4, 5, 6, 7, 12, 13, 14, 15);
  }
}

}  // namespace

RCNN_CLI_VECTOR_CLONES
void store_channel_major_32(const void* tile_bytes, int64_t tile_stride, int64_t bins, int64_t block, void* out_bytes) {
  const auto* tile = static_cast<const int32_t*>(tile_bytes);
  auto* out = static_cast<int32_t*>(out_bytes);
  int64_t c0 = 0;
  for (; c0 + 8 <= block; c0 += 8) {
    int64_t j0 = 0;
    for (; j0 + 8 <= bins; j0 += 8) {
      V8 r[8];
      for (int i = 0; i < 8; ++i) load_vector(&r[i], tile + (j0 + i) * tile_stride + c0);
      transpose8(r);
      for (int i = 0; i < 8; ++i) store_vector(out + (c0 + i) * bins + j0, r[i]);
    }
    for (; j0 < bins; ++j0) {
      for (int64_t c = c0; c < c0 + 8; ++c) out[c * bins + j0] = tile[j0 * tile_stride + c];
    }
  }
  for (int64_t c = c0; c < block; ++c) {
    for (int64_t j = 0; j < bins; ++j) out[c * bins + j] = tile[j * tile_stride + c];
  }
}

}  // namespace rcnn_cli::cpu
