// The bin maxima declared in cpu/bin_max.h. Written with unconditional loads and a bit
// mask so that GCC vectorizes the channel loop, and compiled for several instruction
// sets (cpu/vectorize.h).
#include "cpu/bin_max.h"

#include "cpu/vectorize.h"

namespace rcnn_cli::cpu {

namespace {

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

}  // namespace

RCNN_CLI_VECTOR_CLONES
void bin_max(
    const float* map, int64_t width, int64_t stride, const Bin& bin, float* maxval, int32_t* maxidx, int64_t block) {
  bin_max_impl(map, width, stride, bin, maxval, maxidx, block);
}

RCNN_CLI_VECTOR_CLONES
void bin_max(
    const double* map, int64_t width, int64_t stride, const Bin& bin, double* maxval, int32_t* maxidx,
    int64_t block) {
  bin_max_impl(map, width, stride, bin, maxval, maxidx, block);
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

}  // namespace rcnn_cli::cpu
