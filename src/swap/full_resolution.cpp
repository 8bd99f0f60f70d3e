// The swap's steps at the target's full resolution: the outline warp of the
// region around a face and the final paste of the face composed at a reduced
// working size. On the CPU each is one fused pass over the pixels (a chain of
// ATen ops over a close-up face's region of ~600K pixels cost more than all
// the work at the reduced size); other devices run the same maths in ATen ops.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "swap/compose_internal.hpp"

namespace visage::swap::detail {
namespace {

// Source index and weight of ATen's bilinear upsampling (align_corners=false,
// scale = in/out) for one output index.
struct Tap {
  int64_t i0, i1;
  float t;
};

Tap upsample_tap(int64_t out_index, double scale, int64_t in_size) {
  const double src = std::max(0.0, (out_index + 0.5) * scale - 0.5);
  const int64_t i0 = std::min<int64_t>(static_cast<int64_t>(src), in_size - 1);
  return {i0, std::min(i0 + 1, in_size - 1), static_cast<float>(src - static_cast<double>(i0))};
}

std::vector<Tap> upsample_taps(int64_t out_size, int64_t in_size) {
  std::vector<Tap> taps(static_cast<size_t>(out_size));
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  for (int64_t i = 0; i < out_size; ++i) taps[i] = upsample_tap(i, scale, in_size);
  return taps;
}

template <typename Pixel>
at::Tensor warp_by_field_cpu(const at::Tensor& image, const at::Tensor& coarse_in, int64_t step) {
  const int64_t h = image.size(0), w = image.size(1);
  const int64_t s0 = image.stride(0), s1 = image.stride(1), s2 = image.stride(2);
  at::Tensor coarse = coarse_in.to(at::kCPU, at::kFloat).contiguous();
  const int64_t gh = coarse.size(0), gw = coarse.size(1);
  const float* field = coarse.data_ptr<float>();
  const Pixel* src = image.data_ptr<Pixel>();
  at::Tensor out = at::empty({h, w, 3}, at::kFloat);
  float* dst = out.data_ptr<float>();
  // The field is upsampled to gh*step x gw*step and cropped to h x w.
  std::vector<Tap> cols(static_cast<size_t>(w));
  for (int64_t x = 0; x < w; ++x) cols[x] = upsample_tap(x, 1.0 / static_cast<double>(step), gw);
  at::parallel_for(0, h, 16, [&](int64_t y_begin, int64_t y_end) {
    for (int64_t y = y_begin; y < y_end; ++y) {
      const Tap row = upsample_tap(y, 1.0 / static_cast<double>(step), gh);
      const float* r0 = field + row.i0 * gw * 2;
      const float* r1 = field + row.i1 * gw * 2;
      float* o = dst + y * w * 3;
      for (int64_t x = 0; x < w; ++x) {
        const Tap& c = cols[x];
        float f[2];
        for (int k = 0; k < 2; ++k) {
          const float top = r0[c.i0 * 2 + k] + c.t * (r0[c.i1 * 2 + k] - r0[c.i0 * 2 + k]);
          const float bottom = r1[c.i0 * 2 + k] + c.t * (r1[c.i1 * 2 + k] - r1[c.i0 * 2 + k]);
          f[k] = top + row.t * (bottom - top);
        }
        if (std::abs(f[0]) < 1e-4f && std::abs(f[1]) < 1e-4f) {
          const Pixel* p = src + y * s0 + x * s1;
          for (int ch = 0; ch < 3; ++ch) o[x * 3 + ch] = static_cast<float>(p[ch * s2]);
          continue;
        }
        // grid_sampler's bilinear sampling with border padding.
        const float sx = std::clamp(static_cast<float>(x) - f[0], 0.f, static_cast<float>(w - 1));
        const float sy = std::clamp(static_cast<float>(y) - f[1], 0.f, static_cast<float>(h - 1));
        const int64_t x0 = static_cast<int64_t>(sx), y0 = static_cast<int64_t>(sy);
        const int64_t x1 = std::min(x0 + 1, w - 1), y1 = std::min(y0 + 1, h - 1);
        const float tx = sx - static_cast<float>(x0), ty = sy - static_cast<float>(y0);
        const Pixel* a = src + y0 * s0 + x0 * s1;
        const Pixel* b = src + y0 * s0 + x1 * s1;
        const Pixel* cc = src + y1 * s0 + x0 * s1;
        const Pixel* d = src + y1 * s0 + x1 * s1;
        for (int ch = 0; ch < 3; ++ch) {
          const int64_t k = ch * s2;
          const float top = static_cast<float>(a[k]) + tx * (static_cast<float>(b[k]) - static_cast<float>(a[k]));
          const float bottom = static_cast<float>(cc[k]) + tx * (static_cast<float>(d[k]) - static_cast<float>(cc[k]));
          o[x * 3 + ch] = top + ty * (bottom - top);
        }
      }
    }
  });
  return out;
}

uint8_t to_byte(float v) { return static_cast<uint8_t>(std::clamp(std::nearbyint(v), 0.f, 255.f)); }

void paste_cpu(at::Tensor& out_roi, const at::Tensor& background_in, int64_t bx, int64_t by, int64_t bw, int64_t bh,
               const at::Tensor& blended_in, const at::Tensor& small_background_in, const at::Tensor& alpha_in) {
  const int64_t h = out_roi.size(0), w = out_roi.size(1);
  const int64_t s0 = out_roi.stride(0), s1 = out_roi.stride(1), s2 = out_roi.stride(2);
  at::Tensor background = background_in.contiguous(), blended = blended_in.contiguous();
  const bool scaled = blended.size(0) != bh || blended.size(1) != bw;
  at::Tensor small_background = scaled ? small_background_in.contiguous() : at::Tensor();
  at::Tensor alpha = scaled ? alpha_in.contiguous() : at::Tensor();
  const int64_t sh = blended.size(0), sw = blended.size(1);
  const float* bg = background.data_ptr<float>();
  const float* bl = blended.data_ptr<float>();
  const float* sb = scaled ? small_background.data_ptr<float>() : nullptr;
  const float* al = scaled ? alpha.data_ptr<float>() : nullptr;
  uint8_t* dst = out_roi.data_ptr<uint8_t>();
  const std::vector<Tap> cols = scaled ? upsample_taps(bw, sw) : std::vector<Tap>();
  const double row_scale = static_cast<double>(sh) / static_cast<double>(bh);
  at::parallel_for(0, h, 16, [&](int64_t y_begin, int64_t y_end) {
    for (int64_t y = y_begin; y < y_end; ++y) {
      uint8_t* o = dst + y * s0;
      const float* b = bg + y * w * 3;
      const bool in_rows = y >= by && y < by + bh;
      for (int64_t x = 0; x < w; ++x) {
        if (!in_rows || x < bx || x >= bx + bw) {
          for (int c = 0; c < 3; ++c) o[x * s1 + c * s2] = to_byte(b[x * 3 + c]);
        }
      }
      if (!in_rows) continue;
      const int64_t ly = y - by;
      if (!scaled) {
        const float* s = bl + ly * bw * 3;
        for (int64_t x = 0; x < bw; ++x)
          for (int c = 0; c < 3; ++c) o[(x + bx) * s1 + c * s2] = to_byte(s[x * 3 + c]);
        continue;
      }
      // Upsampled; where alpha is below 1 the full-resolution background's
      // detail (what the reduced size lost) comes back in proportion:
      // up(blended) + (1 - up(alpha)) (background - up(small background)).
      const Tap row = upsample_tap(ly, row_scale, sh);
      for (int64_t lx = 0; lx < bw; ++lx) {
        const Tap& col = cols[lx];
        const int64_t i00 = row.i0 * sw + col.i0, i01 = row.i0 * sw + col.i1;
        const int64_t i10 = row.i1 * sw + col.i0, i11 = row.i1 * sw + col.i1;
        auto lerp = [&](const float* p, int64_t stride, int c) {
          const float top = p[i00 * stride + c] + col.t * (p[i01 * stride + c] - p[i00 * stride + c]);
          const float bottom = p[i10 * stride + c] + col.t * (p[i11 * stride + c] - p[i10 * stride + c]);
          return top + row.t * (bottom - top);
        };
        const float keep = 1.f - lerp(al, 1, 0);
        const float* full = b + (lx + bx) * 3;
        for (int c = 0; c < 3; ++c) {
          const float v = lerp(bl, 3, c) + keep * (full[c] - lerp(sb, 3, c));
          o[(lx + bx) * s1 + c * s2] = to_byte(v);
        }
      }
    }
  });
}

}  // namespace

at::Tensor warp_by_field(const at::Tensor& image, const at::Tensor& coarse, int64_t step) {
  if (image.dim() != 3 || image.size(2) != 3) throw std::invalid_argument("warp_by_field: expected an [H, W, 3] image");
  if (coarse.dim() != 3 || coarse.size(2) != 2 || step < 1)
    throw std::invalid_argument("warp_by_field: expected a [GH, GW, 2] field and a step >= 1");
  const int64_t h = image.size(0), w = image.size(1);
  if (coarse.size(0) * step < h || coarse.size(1) * step < w)
    throw std::invalid_argument("warp_by_field: the field does not cover the image");
  if (image.device().is_cpu()) {
    if (image.scalar_type() == at::kByte) return warp_by_field_cpu<uint8_t>(image, coarse, step);
    if (image.scalar_type() == at::kFloat) return warp_by_field_cpu<float>(image, coarse, step);
    throw std::invalid_argument("warp_by_field: expected a uint8 or float image");
  }
  const at::Device dev = image.device();
  const int64_t gh = coarse.size(0), gw = coarse.size(1);
  at::Tensor field = at::upsample_bilinear2d(upload(coarse.to(at::kFloat), dev).permute({2, 0, 1}).unsqueeze(0),
                                             {gh * step, gw * step}, false)
                         .narrow(2, 0, h)
                         .narrow(3, 0, w)
                         .squeeze(0);  // [2, H, W]
  const auto opts = at::TensorOptions().dtype(at::kFloat).device(dev);
  // Normalised grid_sampler coordinates (align_corners=false) of pixel
  // centre - field.
  at::Tensor gx = (at::arange(w, opts).add_(0.5f).view({1, w}) - field[0]).mul_(2.f / w).sub_(1.f);
  at::Tensor gy = (at::arange(h, opts).add_(0.5f).view({h, 1}) - field[1]).mul_(2.f / h).sub_(1.f);
  at::Tensor grid = at::stack({gx, gy}, 2).unsqueeze(0);
  at::Tensor nchw = image.to(at::kFloat).permute({2, 0, 1}).unsqueeze(0);
  return at::grid_sampler(nchw, grid, 0, 1, false).squeeze(0).permute({1, 2, 0}).contiguous();
}

void paste_face(at::Tensor out_roi, const at::Tensor& background, int64_t box_x, int64_t box_y, int64_t box_w,
                int64_t box_h, const at::Tensor& blended, const at::Tensor& small_background, const at::Tensor& alpha) {
  if (out_roi.scalar_type() != at::kByte || out_roi.dim() != 3 || out_roi.size(2) != 3)
    throw std::invalid_argument("paste_face: expected a uint8 [H, W, 3] destination");
  if (!background.sizes().equals(out_roi.sizes()) || box_x < 0 || box_y < 0 || box_x + box_w > out_roi.size(1) ||
      box_y + box_h > out_roi.size(0))
    throw std::invalid_argument("paste_face: the background or the box does not match the destination");
  const bool scaled = blended.size(0) != box_h || blended.size(1) != box_w;
  if (out_roi.device().is_cpu()) {
    paste_cpu(out_roi, background, box_x, box_y, box_w, box_h, blended, small_background, alpha);
    return;
  }
  at::Tensor composite = blended;
  if (scaled) {
    auto up = [&](const at::Tensor& hwc) {
      return at::upsample_bilinear2d(hwc.permute({2, 0, 1}).unsqueeze(0), {box_h, box_w}, false)
          .squeeze(0)
          .permute({1, 2, 0});
    };
    at::Tensor full = background.narrow(0, box_y, box_h).narrow(1, box_x, box_w);
    composite = up(blended) + (1.f - up(alpha.unsqueeze(2))) * (full - up(small_background));
  }
  at::Tensor result = background.clone();
  result.narrow(0, box_y, box_h).narrow(1, box_x, box_w).copy_(composite);
  out_roi.copy_(result.round().clamp(0, 255).to(at::kByte));
}

}  // namespace visage::swap::detail
