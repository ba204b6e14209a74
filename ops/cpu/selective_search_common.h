// Image filters shared by the Selective Search kernels (segmentation and texture).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace rcnn_cli {

// A 1-D kernel of length 2 * radius + 1, index radius being the centre.
struct Kernel1d {
  int radius;
  std::vector<float> taps;
};

// Normalised Gaussian, radius ceil(4 sigma) as in Felzenszwalb-Huttenlocher's code.
inline Kernel1d gaussian_kernel(double sigma) {
  sigma = std::max(sigma, 0.01);
  const int radius = static_cast<int>(std::ceil(sigma * 4.0));
  Kernel1d k{radius, std::vector<float>(2 * radius + 1)};
  double sum = 0.0;
  for (int i = -radius; i <= radius; ++i) {
    const double v = std::exp(-0.5 * (i / sigma) * (i / sigma));
    k.taps[i + radius] = static_cast<float>(v);
    sum += v;
  }
  for (float& t : k.taps) t = static_cast<float>(t / sum);
  return k;
}

// Taps that give the first derivative of the Gaussian-smoothed signal when applied as
// separable_filter does (correlation, out[x] = sum_i taps[i] in[x + i]): the mirrored
// derivative of the Gaussian, x / sigma^2 G(x), so a rising step gives a positive response.
inline Kernel1d gaussian_derivative_kernel(double sigma) {
  Kernel1d g = gaussian_kernel(sigma);
  for (int i = -g.radius; i <= g.radius; ++i) g.taps[i + g.radius] *= static_cast<float>(i / (sigma * sigma));
  return g;
}

// out = (kx along x, then ky along y) applied to every channel of a float [H, W, C]
// image; borders replicate the edge pixel.
inline std::vector<float> separable_filter(const float* in, int64_t H, int64_t W, int64_t C, const Kernel1d& kx,
                                           const Kernel1d& ky) {
  std::vector<float> tmp(static_cast<size_t>(H * W * C));
  std::vector<float> out(static_cast<size_t>(H * W * C), 0.f);
  // x pass over a row padded with replicated edge pixels, so the inner loop has no branches.
  const int r = kx.radius;
  std::vector<float> row(static_cast<size_t>((W + 2 * r) * C));
  for (int64_t y = 0; y < H; ++y) {
    const float* src = in + y * W * C;
    for (int64_t x = -r; x < W + r; ++x) {
      const int64_t xx = std::clamp<int64_t>(x, 0, W - 1);
      for (int64_t c = 0; c < C; ++c) row[(x + r) * C + c] = src[xx * C + c];
    }
    float* dst = &tmp[y * W * C];
    for (int64_t j = 0; j < W * C; ++j) {
      float s = 0.f;
      for (int i = 0; i <= 2 * r; ++i) s += kx.taps[i] * row[j + i * C];
      dst[j] = s;
    }
  }
  for (int64_t y = 0; y < H; ++y) {
    for (int i = -ky.radius; i <= ky.radius; ++i) {
      const int64_t yy = std::clamp<int64_t>(y + i, 0, H - 1);
      const float t = ky.taps[i + ky.radius];
      const float* src = &tmp[yy * W * C];
      float* dst = &out[y * W * C];
      for (int64_t j = 0; j < W * C; ++j) dst[j] += t * src[j];
    }
  }
  return out;
}

inline std::vector<float> gaussian_smooth(const uint8_t* image, int64_t H, int64_t W, int64_t C, double sigma) {
  std::vector<float> f(image, image + H * W * C);
  const Kernel1d g = gaussian_kernel(sigma);
  return separable_filter(f.data(), H, W, C, g, g);
}

}  // namespace rcnn_cli
