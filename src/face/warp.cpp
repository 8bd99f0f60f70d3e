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

// CUDA (or any device): grid_sample over the float image, the sampling grid
// from one affine_grid kernel. With align_corners=false, normalised -1/+1 are
// the outer edges of the image, so x_norm = 2 * x_image / w - 1 in our
// convention (pixel centres at +0.5); theta maps output normalised
// coordinates to input normalised coordinates.
at::Tensor warp_device(const at::Tensor& rgb, const Affine& m, int out_h, int out_w) {
  const double w = static_cast<double>(rgb.size(1)), h = static_cast<double>(rgb.size(0));
  const float theta_host[6] = {static_cast<float>(m[0] * out_w / w),
                               static_cast<float>(m[1] * out_h / w),
                               static_cast<float>((m[0] * out_w + m[1] * out_h + 2 * m[2]) / w - 1),
                               static_cast<float>(m[3] * out_w / h),
                               static_cast<float>(m[4] * out_h / h),
                               static_cast<float>((m[3] * out_w + m[4] * out_h + 2 * m[5]) / h - 1)};
  at::Tensor theta = at::from_blob(const_cast<float*>(theta_host), {1, 2, 3}, at::kFloat).to(rgb.device());
  at::Tensor grid = at::affine_grid_generator(theta, {1, 3, out_h, out_w}, /*align_corners=*/false);
  at::Tensor image = rgb.permute({2, 0, 1}).unsqueeze(0).to(at::kFloat);
  at::Tensor out = at::grid_sampler(image, grid, /*bilinear*/ 0, /*zeros*/ 0, /*align_corners*/ false);
  return out.permute({0, 2, 3, 1});  // [1, out_h, out_w, 3]
}

}  // namespace

std::vector<at::Tensor> outputs_to_host(const std::vector<at::Tensor>& outputs) {
  std::vector<at::Tensor> host;
  if (outputs.empty()) return host;
  if (outputs[0].is_cpu()) {
    for (const auto& t : outputs) host.push_back(t.to(at::kFloat).contiguous());
    return host;
  }
  std::vector<at::Tensor> flat;
  for (const auto& t : outputs) flat.push_back(t.to(at::kFloat).reshape({-1}));
  at::Tensor all = at::cat(flat).to(at::kCPU);
  int64_t at_offset = 0;
  for (const auto& t : outputs) {
    host.push_back(all.slice(0, at_offset, at_offset + t.numel()).view(t.sizes()));
    at_offset += t.numel();
  }
  return host;
}

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
