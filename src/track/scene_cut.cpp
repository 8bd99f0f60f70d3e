// Scene-cut detection: colour histograms of small copies of the frames.
#include "track/scene_cut.hpp"

#include <ATen/ATen.h>

#include <algorithm>

namespace visage::track {

at::Tensor colour_histogram(const at::Tensor& rgb) {
  const int64_t h = rgb.size(0), w = rgb.size(1);
  // A strided view (nearest-neighbour) to ~128 px, then 2x2 means to ~64 px:
  // only a few thousand pixels are ever converted, whatever the frame size.
  const int64_t step = std::max<int64_t>(1, std::min(w, h) >= 128 ? w / 128 : 1);
  at::Tensor small = rgb.slice(0, 0, h, step).slice(1, 0, w, step).permute({2, 0, 1}).unsqueeze(0).to(at::kFloat);
  if (small.size(2) >= 2 && small.size(3) >= 2) small = at::avg_pool2d(small, {2, 2});
  at::Tensor level = (small.squeeze(0) * (8.0 / 256.0)).floor().clamp(0, 7).to(at::kLong);
  at::Tensor bins = (level[0] * 64 + level[1] * 8 + level[2]).flatten();
  at::Tensor hist = at::bincount(bins, {}, 512).to(at::kFloat);
  return (hist / std::max<int64_t>(1, bins.numel())).cpu();
}

float histogram_distance(const at::Tensor& a, const at::Tensor& b) { return 0.5f * (a - b).abs().sum().item<float>(); }

}  // namespace visage::track
