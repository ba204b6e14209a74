// The maximum over one RoI bin for a block of channels of a channels-last map, the
// innermost loop of the CPU max poolings (cpu/roi_max_pool_forward.cpp):
//   maxval[c], maxidx[c] <- max over (h, w) in the bin of map[(h * width + w) * stride + c]
// starting from the values already in maxval/maxidx. Strict '>' keeps the first maximum
// in row-major scan order, as torchvision; maxidx is the plane index h * width + w.
//
// Each is one multi-versioned call per bin (RCNN_CLI_VECTOR_CLONES), not one per pixel.
#pragma once

#include <cstdint>

#include "roi_pool_math.h"

namespace rcnn_cli::cpu {

using roi_pool_math::Bin;

// Training: the value and where it is (for the backward pass).
void bin_max(
    const float* map, int64_t width, int64_t stride, const Bin& bin, float* maxval, int32_t* maxidx, int64_t block);
void bin_max(
    const double* map, int64_t width, int64_t stride, const Bin& bin, double* maxval, int32_t* maxidx,
    int64_t block);

// Inference: the same value without its position (no index blend, no argmax to store).
void bin_max_values(const float* map, int64_t width, int64_t stride, const Bin& bin, float* maxval, int64_t block);
void bin_max_values(
    const double* map, int64_t width, int64_t stride, const Bin& bin, double* maxval, int64_t block);

}  // namespace rcnn_cli::cpu

namespace rcnn_cli::cpu {

// out[c * bins + j] = tile[j * tile_stride + c] for c < block, j < bins: a bin-major tile of
// 32-bit values (float maxima or int32 argmax, moved as bits) into the channel-major output,
// in 8x8 vector transposes. The forward's scalar transposition cost as much as the maxima.
void store_channel_major_32(const void* tile, int64_t tile_stride, int64_t bins, int64_t block, void* out);

}  // namespace rcnn_cli::cpu
