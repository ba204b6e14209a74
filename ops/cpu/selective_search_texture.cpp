// The texture feature of Selective Search (Uijlings et al., IJCV 2013, section 3.2):
// Gaussian derivatives (sigma = 1) in eight orientations for each colour channel, each
// response quantised into 10 bins. This kernel does the per-pixel part once per colour
// space: for every pixel and every (channel, orientation) it stores the index of the
// histogram bin the pixel falls into, so that region histograms are plain counting.
#include <torch/library.h>
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "cpu/selective_search_common.h"

namespace rcnn_cli {

constexpr int kTextureOrientations = 8;
constexpr int kTextureBins = 10;
constexpr float kNoise = 1e-3f;  // in grey levels per pixel

// uint8 [H, W, C] -> uint8 [H, W, 8 C]; entry (c, o) holds (c * 8 + o) * 10 + bin.
at::Tensor selective_search_texture_bins(const at::Tensor& image) {
  TORCH_CHECK(image.dim() == 3 && image.scalar_type() == at::kByte && image.device().is_cpu(),
              "selective_search_texture_bins: image must be a CPU uint8 tensor [H, W, C]");
  const at::Tensor img = image.contiguous();
  const int64_t H = img.size(0), W = img.size(1), C = img.size(2);
  TORCH_CHECK(C * kTextureOrientations * kTextureBins <= 256,
              "selective_search_texture_bins: at most 3 channels are supported");
  const uint8_t* px = img.data_ptr<uint8_t>();
  std::vector<float> f(px, px + H * W * C);
  const Kernel1d g = gaussian_kernel(1.0);
  const Kernel1d dg = gaussian_derivative_kernel(1.0);
  const std::vector<float> gx = separable_filter(f.data(), H, W, C, dg, g);
  const std::vector<float> gy = separable_filter(f.data(), H, W, C, g, dg);

  // Derivative along direction theta = o * 45 degrees: the positive part of the
  // derivative at 0, 45, 90, 135 degrees gives orientations 0..3, the negative part
  // (the derivative at theta + 180) gives orientations 4..7.
  const float c45 = static_cast<float>(std::sqrt(0.5));
  const int64_t npix = H * W;
  std::vector<float> response(static_cast<size_t>(npix * C * kTextureOrientations));
  std::vector<float> max_response(static_cast<size_t>(C * kTextureOrientations), 0.f);
  for (int64_t p = 0; p < npix; ++p) {
    for (int64_t c = 0; c < C; ++c) {
      const float dx = gx[p * C + c], dy = gy[p * C + c];
      const float d[4] = {dx, c45 * (dx + dy), dy, c45 * (dy - dx)};
      float* r = &response[(p * C + c) * kTextureOrientations];
      float* m = &max_response[c * kTextureOrientations];
      for (int o = 0; o < 4; ++o) {
        // Below kNoise the response is float round-off of a flat patch, not texture.
        r[o] = d[o] > kNoise ? d[o] : 0.f;
        r[o + 4] = -d[o] > kNoise ? -d[o] : 0.f;
        m[o] = std::max(m[o], r[o]);
        m[o + 4] = std::max(m[o + 4], r[o + 4]);
      }
    }
  }
  // Bins span [0, max] of each (channel, orientation) over the image, so the feature
  // does not depend on the image's contrast.
  std::vector<float> inv(max_response.size());
  for (size_t i = 0; i < inv.size(); ++i) inv[i] = max_response[i] > 0.f ? kTextureBins / max_response[i] : 0.f;
  at::Tensor out = at::empty({H, W, C * kTextureOrientations}, at::kByte);
  uint8_t* o = out.data_ptr<uint8_t>();
  const int64_t channels = C * kTextureOrientations;
  for (int64_t p = 0; p < npix; ++p) {
    for (int64_t j = 0; j < channels; ++j) {
      const int bin = std::min(kTextureBins - 1, static_cast<int>(response[p * channels + j] * inv[j]));
      o[p * channels + j] = static_cast<uint8_t>(j * kTextureBins + bin);
    }
  }
  return out;
}

TORCH_LIBRARY_FRAGMENT(rcnn_cli, m) {
  // Selective Search texture bins: uint8 [H, W, C] -> uint8 [H, W, 8 C] histogram bin indices.
  m.def("selective_search_texture_bins(Tensor image) -> Tensor", &selective_search_texture_bins);
}

}  // namespace rcnn_cli
