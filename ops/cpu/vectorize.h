// Function multi-versioning for the hot CPU loops.
//
// On x86-64 with GCC, a function marked RCNN_CLI_VECTOR_CLONES is compiled for
// AVX-512, AVX2 and the baseline (SSE2), and the best one for the running CPU is
// picked when the library loads. Elsewhere it is an ordinary function.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RCNN_CLI_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define RCNN_CLI_VECTOR_CLONES
#endif

#include <cstdint>

namespace rcnn_cli::cpu {

// A 256-bit vector of T (GCC/Clang vector extensions): 8 floats or 4 doubles, and the
// integer vector of the same lane count and width that comparisons yield (used for the
// argmax lanes too). Spelled out because GCC does not vectorize the fixed-size channel
// loops over local arrays of the max poolings and RoIAlign by itself: it unrolled them into
// scalar code. In the "default" clone each vector is two SSE registers.
template <typename T>
struct Simd;

template <>
struct Simd<float> {
  using V = float __attribute__((vector_size(32)));
  using I = int32_t __attribute__((vector_size(32)));
  static constexpr int64_t kLanes = 8;
};

template <>
struct Simd<double> {
  using V = double __attribute__((vector_size(32)));
  using I = int64_t __attribute__((vector_size(32)));
  static constexpr int64_t kLanes = 4;
};

// Unaligned load and store (memcpy compiles to one vmovups). The load writes through a
// pointer rather than returning the vector: a function returning a 256-bit vector has another
// ABI in the "default" clone, which GCC warns about (-Wpsabi) even when it is inlined.
template <typename V, typename T>
[[gnu::always_inline]] inline void load_vector(V* v, const T* p) {
  __builtin_memcpy(v, p, sizeof(V));
}

template <typename V, typename T>
[[gnu::always_inline]] inline void store_vector(T* p, const V& v) {
  __builtin_memcpy(p, &v, sizeof(V));
}

}  // namespace rcnn_cli::cpu
