#include "face/warp.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cmath>

namespace visage::face {

void check_rgb(const at::Tensor& rgb) {
  bool ok = rgb.defined() && rgb.dim() == 3 && rgb.size(2) == 3 && rgb.scalar_type() == at::kByte && rgb.size(0) > 0 &&
            rgb.size(1) > 0;
  if (ok) return;
  std::string got = rgb.defined()
                        ? std::string(at::toString(rgb.scalar_type())) + " tensor of shape " + c10::str(rgb.sizes())
                        : std::string("an empty tensor");
  throw Error(ErrorKind::bad_input, "expected an [H, W, 3] uint8 RGB image, got " + got);
}

namespace {

// CPU: one bilinear sample per output pixel, straight from uint8.
template <typename Out, typename Store>
void warp_cpu(const at::Tensor& rgb, const Affine& m, int out_h, int out_w, Out* out, Store store) {
  at::Tensor src = rgb.contiguous();
  const uint8_t* in = src.data_ptr<uint8_t>();
  const int64_t h = src.size(0), w = src.size(1);
  at::parallel_for(0, out_h, 16, [&](int64_t v0, int64_t v1) {
    for (int64_t v = v0; v < v1; ++v) {
      for (int64_t u = 0; u < out_w; ++u) {
        double cu = u + 0.5, cv = v + 0.5;
        double x = m[0] * cu + m[1] * cv + m[2] - 0.5;
        double y = m[3] * cu + m[4] * cv + m[5] - 0.5;
        double fx = std::floor(x), fy = std::floor(y);
        int64_t x0 = static_cast<int64_t>(fx), y0 = static_cast<int64_t>(fy);
        float ax = static_cast<float>(x - fx), ay = static_cast<float>(y - fy);
        float acc[3] = {0, 0, 0};
        const float wts[4] = {(1 - ax) * (1 - ay), ax * (1 - ay), (1 - ax) * ay, ax * ay};
        const int64_t xs[4] = {x0, x0 + 1, x0, x0 + 1}, ys[4] = {y0, y0, y0 + 1, y0 + 1};
        for (int k = 0; k < 4; ++k) {
          if (xs[k] < 0 || ys[k] < 0 || xs[k] >= w || ys[k] >= h || wts[k] == 0.f) continue;
          const uint8_t* p = in + (ys[k] * w + xs[k]) * 3;
          acc[0] += wts[k] * p[0], acc[1] += wts[k] * p[1], acc[2] += wts[k] * p[2];
        }
        Out* o = out + (v * out_w + u) * 3;
        store(o, acc);
      }
    }
  });
}

// CUDA (or any device): grid_sample over the float image.
at::Tensor warp_device(const at::Tensor& rgb, const Affine& m, int out_h, int out_w) {
  const int64_t h = rgb.size(0), w = rgb.size(1);
  auto opts = at::TensorOptions().dtype(at::kFloat).device(rgb.device());
  at::Tensor image = rgb.permute({2, 0, 1}).unsqueeze(0).to(at::kFloat);
  // grid_sample with align_corners=false: normalised x = (2 * (x_pixel + 0.5)) / w - 1
  // where x_pixel indexes pixel centres; our image coordinates already put
  // centres at +0.5, so x_norm = 2 * x_image / w - 1.
  double a = 2.0 / w, b = 2.0 / h;
  at::Tensor u = at::arange(out_w, opts).add_(0.5);
  at::Tensor v = at::arange(out_h, opts).add_(0.5);
  at::Tensor uu = u.view({1, out_w}).expand({out_h, out_w});
  at::Tensor vv = v.view({out_h, 1}).expand({out_h, out_w});
  at::Tensor gx = (uu * m[0] + vv * m[1] + m[2]) * a - 1.0;
  at::Tensor gy = (uu * m[3] + vv * m[4] + m[5]) * b - 1.0;
  at::Tensor grid = at::stack({gx, gy}, -1).unsqueeze(0);
  at::Tensor out = at::grid_sampler(image, grid, /*bilinear*/ 0, /*zeros*/ 0, /*align_corners*/ false);
  return out.permute({0, 2, 3, 1});  // [1, out_h, out_w, 3]
}

}  // namespace

at::Tensor warp_to_input(const at::Tensor& rgb, const Affine& m, int out_h, int out_w, float scale, float offset) {
  check_rgb(rgb);
  if (!rgb.is_cpu()) return warp_device(rgb, m, out_h, out_w).mul(scale).add_(offset).contiguous();
  at::Tensor out = at::empty({1, out_h, out_w, 3}, at::kFloat);
  warp_cpu(rgb, m, out_h, out_w, out.data_ptr<float>(), [scale, offset](float* o, const float* acc) {
    o[0] = acc[0] * scale + offset, o[1] = acc[1] * scale + offset, o[2] = acc[2] * scale + offset;
  });
  return out;
}

at::Tensor warp_to_image(const at::Tensor& rgb, const Affine& m, int out_h, int out_w) {
  check_rgb(rgb);
  if (!rgb.is_cpu()) return warp_device(rgb, m, out_h, out_w).squeeze(0).round().clamp(0, 255).to(at::kByte);
  at::Tensor out = at::empty({out_h, out_w, 3}, at::kByte);
  warp_cpu(rgb, m, out_h, out_w, out.data_ptr<uint8_t>(), [](uint8_t* o, const float* acc) {
    for (int c = 0; c < 3; ++c) o[c] = static_cast<uint8_t>(std::lround(std::fmin(255.f, std::fmax(0.f, acc[c]))));
  });
  return out;
}

}  // namespace visage::face
