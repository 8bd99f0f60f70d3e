// Colour transfer for the swap: sRGB <-> CIE L*a*b* (D65), L*a*b* mean and
// spread matching, and low-frequency relighting in linear light.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "swap/compose.hpp"
#include "swap/compose_internal.hpp"

namespace visage::swap {
namespace {

// Limits on the Lab spread ratio target/source per channel (L*, a*, b*).
// Lightness contrast moves within +-35%: beyond that a dark-skinned source on
// a pale target (or the reverse) turns into a high-contrast mask. Chroma may
// shrink to nothing (a greyscale target) but grows at most 30%: the target's
// region often holds non-skin (glasses, stubble) whose spread would otherwise
// paint blue or red streaks.
constexpr double kMinSpread[3] = {0.65, 0.0, 0.0};
constexpr double kMaxSpread[3] = {1.35, 1.3, 1.3};

// sRGB primaries, D65 white (IEC 61966-2-1), rows X, Y, Z.
constexpr float kRgbToXyz[3][3] = {
    {0.4124564f, 0.3575761f, 0.1804375f}, {0.2126729f, 0.7151522f, 0.0721750f}, {0.0193339f, 0.1191920f, 0.9503041f}};
constexpr float kXyzToRgb[3][3] = {{3.2404542f, -1.5371385f, -0.4985314f},
                                   {-0.9692660f, 1.8760108f, 0.0415560f},
                                   {0.0556434f, -0.2040259f, 1.0572252f}};
constexpr float kWhite[3] = {0.95047f, 1.f, 1.08883f};
constexpr float kDelta = 6.f / 29.f;
constexpr float kDelta3 = kDelta * kDelta * kDelta;
constexpr float kLinearSlope = 1.f / (3.f * kDelta * kDelta);  // below kDelta3
constexpr float kOffset = 4.f / 29.f;

void check_image(const at::Tensor& t, const char* what) {
  if (!t.defined() || t.dim() != 3 || t.size(2) != 3 || t.scalar_type() != at::kFloat) {
    throw std::invalid_argument(std::string(what) + ": expected a float [H, W, 3] image");
  }
}

// Cube root to float precision without libm's cbrt (two Halley steps from
// a bit-level first guess): the conversions call it three times a pixel.
inline float fast_cbrt(float x) {
  if (x <= 0.f) return 0.f;
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  bits = bits / 3 + 709921077u;
  float y;
  std::memcpy(&y, &bits, 4);
  // Halley's iteration (cubic convergence): 3% -> 3e-5 -> float precision.
  for (int i = 0; i < 2; ++i) {
    const float y3 = y * y * y;
    y *= (y3 + 2.f * x) / (2.f * y3 + x);
  }
  return y;
}

// sRGB 0..255 -> linear light, tabulated and interpolated linearly (the
// curve is smooth enough that 8192 intervals keep the error below 1e-7).
struct SrgbTable {
  static constexpr int kSize = 8192;
  std::array<float, kSize + 2> values{};
  SrgbTable() {
    for (int i = 0; i <= kSize + 1; ++i) {
      double c = std::min(1.0, double(i) / kSize);
      values[i] = static_cast<float>(c <= 0.04045 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4));
    }
  }
  float operator()(float v) const {
    float p = std::clamp(v, 0.f, 255.f) * (float(kSize) / 255.f);
    int i = static_cast<int>(p);
    float t = p - float(i);
    return values[i] + t * (values[i + 1] - values[i]);
  }
};

const SrgbTable& srgb_table() {
  static const SrgbTable table;
  return table;
}

inline float lab_f(float t) { return t > kDelta3 ? fast_cbrt(t) : t * kLinearSlope + kOffset; }
inline double lab_f_inverse(double t) { return t > kDelta ? t * t * t : (t - kOffset) / kLinearSlope; }

// linear 0..1 -> sRGB 0..255; c^(1/2.4) = c^(5/12) = cbrt(c) * cbrt(c)^(1/4).
inline float linear_to_srgb_value(float c) {
  c = std::clamp(c, 0.f, 1.f);
  if (c <= 0.0031308f) return 255.f * 12.92f * c;
  const float r = fast_cbrt(c);
  return 255.f * (1.055f * r * std::sqrt(std::sqrt(r)) - 0.055f);
}

inline void rgb_to_lab_pixel(const float* in, float* out, const SrgbTable& table) {
  const float r = table(in[0]), g = table(in[1]), b = table(in[2]);
  float f[3];
  for (int k = 0; k < 3; ++k)
    f[k] = lab_f((kRgbToXyz[k][0] * r + kRgbToXyz[k][1] * g + kRgbToXyz[k][2] * b) / kWhite[k]);
  out[0] = 116.f * f[1] - 16.f;
  out[1] = 500.f * (f[0] - f[1]);
  out[2] = 200.f * (f[1] - f[2]);
}

at::Tensor rgb_to_lab_cpu(const at::Tensor& rgb_in) {
  at::Tensor rgb = rgb_in.contiguous();
  at::Tensor lab = at::empty_like(rgb);
  const float* src = rgb.data_ptr<float>();
  float* dst = lab.data_ptr<float>();
  const SrgbTable& table = srgb_table();
  at::parallel_for(0, rgb.numel() / 3, 8192, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) rgb_to_lab_pixel(src + 3 * p, dst + 3 * p, table);
  });
  return lab;
}

at::Tensor lab_to_rgb_cpu(const at::Tensor& lab_in) {
  at::Tensor lab = lab_in.contiguous();
  at::Tensor rgb = at::empty_like(lab);
  const float* src = lab.data_ptr<float>();
  float* dst = rgb.data_ptr<float>();
  at::parallel_for(0, lab.numel() / 3, 8192, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      // In double: the inverse matrix amplifies float rounding enough to
      // show in dark channels of bright colours (the sRGB curve is steep there).
      const double fy = (double(src[3 * p]) + 16.0) / 116.0;
      const double xyz[3] = {kWhite[0] * lab_f_inverse(fy + src[3 * p + 1] / 500.0), lab_f_inverse(fy),
                             kWhite[2] * lab_f_inverse(fy - src[3 * p + 2] / 200.0)};
      for (int k = 0; k < 3; ++k) {
        dst[3 * p + k] = linear_to_srgb_value(
            static_cast<float>(kXyzToRgb[k][0] * xyz[0] + kXyzToRgb[k][1] * xyz[1] + kXyzToRgb[k][2] * xyz[2]));
      }
    }
  });
  return rgb;
}

at::Tensor matrix_tensor(const float (&m)[3][3], const at::Tensor& like) {
  at::Tensor t = at::empty({3, 3}, at::kFloat);
  std::memcpy(t.data_ptr<float>(), &m[0][0], sizeof(m));
  return detail::constant(t, like.device());
}

// The L*a*b* conversions' constants on a device, from one upload: each
// conversion is then a few batched ops (on a device every op is a launch).
//   to_f:     linear RGB -> XYZ / white (rows: RGB in, columns: XYZ out)
//   to_lab:   f(X), f(Y), f(Z) -> L*, a*, b* (with lab_shift added)
//   from_lab: L*, a*, b* -> f(X), f(Y), f(Z) (with f_shift added)
//   to_rgb:   XYZ / white -> linear RGB
//   low, high: limits of the spread ratio (kMinSpread, kMaxSpread)
struct LabConstants {
  at::Tensor to_f, to_lab, lab_shift, from_lab, f_shift, to_rgb, low, high;

  explicit LabConstants(at::Device device) {
    at::Tensor host = at::zeros({4 * 9 + 4 * 3}, at::kFloat);
    float* p = host.data_ptr<float>();
    float* to_f_p = p;
    float* to_lab_p = p + 9;
    float* from_lab_p = p + 18;
    float* to_rgb_p = p + 27;
    float* lab_shift_p = p + 36;
    float* f_shift_p = p + 39;
    float* low_p = p + 42;
    float* high_p = p + 45;
    for (int i = 0; i < 3; ++i) {
      for (int k = 0; k < 3; ++k) {
        to_f_p[i * 3 + k] = kRgbToXyz[k][i] / kWhite[k];
        to_rgb_p[k * 3 + i] = kXyzToRgb[i][k] * kWhite[k];
      }
    }
    // L* = 116 fy - 16, a* = 500 (fx - fy), b* = 200 (fy - fz).
    to_lab_p[0 * 3 + 1] = 500.f;
    to_lab_p[1 * 3 + 0] = 116.f, to_lab_p[1 * 3 + 1] = -500.f, to_lab_p[1 * 3 + 2] = 200.f;
    to_lab_p[2 * 3 + 2] = -200.f;
    lab_shift_p[0] = -16.f;
    // fy = (L* + 16) / 116, fx = fy + a* / 500, fz = fy - b* / 200.
    for (int k = 0; k < 3; ++k) from_lab_p[0 * 3 + k] = 1.f / 116.f, f_shift_p[k] = 16.f / 116.f;
    from_lab_p[1 * 3 + 0] = 1.f / 500.f;
    from_lab_p[2 * 3 + 2] = -1.f / 200.f;
    for (int c = 0; c < 3; ++c) low_p[c] = float(kMinSpread[c]), high_p[c] = float(kMaxSpread[c]);
    const at::Tensor all = detail::constant(host, device);
    auto part = [&](int64_t offset, int64_t n) { return all.narrow(0, offset, n); };
    to_f = part(0, 9).view({3, 3});
    to_lab = part(9, 9).view({3, 3});
    from_lab = part(18, 9).view({3, 3});
    to_rgb = part(27, 9).view({3, 3});
    lab_shift = part(36, 3);
    f_shift = part(39, 3);
    low = part(42, 3);
    high = part(45, 3);
  }
};

// [..., 3] sRGB 0..255 -> L*a*b* and back with ATen ops (any device).
at::Tensor rgb_to_lab_with(const at::Tensor& rgb, const LabConstants& k) {
  at::Tensor t = at::matmul(detail::srgb_to_linear(rgb), k.to_f);
  at::Tensor f = at::where(t > kDelta3, t.clamp_min(0.f).pow(1.0 / 3.0), t * kLinearSlope + kOffset);
  return at::addmm(k.lab_shift, f.reshape({-1, 3}), k.to_lab).view(rgb.sizes());
}

at::Tensor lab_to_rgb_with(const at::Tensor& lab, const LabConstants& k) {
  at::Tensor f = at::addmm(k.f_shift, lab.reshape({-1, 3}), k.from_lab).view(lab.sizes());
  at::Tensor t = at::where(f > kDelta, f.pow(3), (f - kOffset) / kLinearSlope);
  return detail::linear_to_srgb(at::matmul(t, k.to_rgb));
}

// Root-mean-square chroma of an sRGB image inside the weights (0 for grey).
at::Tensor rgb_chroma(const at::Tensor& rgb_flat, const at::Tensor& w, const at::Tensor& total) {
  if (rgb_flat.device().is_cpu()) {
    at::Tensor rgb = rgb_flat.contiguous(), wc = w.contiguous();
    const float* p = rgb.data_ptr<float>();
    const float* wp = wc.data_ptr<float>();
    double sum = 0;
    for (int64_t i = 0; i < rgb.size(0); ++i) {
      if (wp[i] == 0.f) continue;
      const double r = p[3 * i], g = p[3 * i + 1], b = p[3 * i + 2];
      sum += wp[i] * ((r - g) * (r - g) + (g - b) * (g - b) + (b - r) * (b - r));
    }
    return at::scalar_tensor(std::sqrt(sum / total.item<double>()), at::kFloat);
  }
  at::Tensor r = rgb_flat.select(1, 0), g = rgb_flat.select(1, 1), b = rgb_flat.select(1, 2);
  at::Tensor c2 = (r - g).square() + (g - b).square() + (b - r).square();
  return ((c2 * w.squeeze(1)).sum() / total).sqrt();
}

float relight_sigma(const at::Tensor& region) {
  const double area = region.sum().item<double>();
  return static_cast<float>(std::max(4.0, 0.1 * std::sqrt(area)));
}

// Carries the target's low-frequency luminance onto the source: linear RGB
// times the ratio of the two blurred luminances (normalised inside region,
// tending to the region's mean ratio far from it).
at::Tensor relight(const at::Tensor& source, const at::Tensor& target, const at::Tensor& region) {
  const int64_t h = source.size(0), w = source.size(1);
  const float sigma = relight_sigma(region);
  at::Tensor lin_s = detail::srgb_to_linear(source);
  at::Tensor lin_t = detail::srgb_to_linear(target);
  at::Tensor luma = matrix_tensor(kRgbToXyz, source).select(0, 1);
  at::Tensor ys = at::matmul(lin_s, luma), yt = at::matmul(lin_t, luma);  // [H, W]
  at::Tensor r = region.clamp(0.f, 1.f);
  at::Tensor stack = at::stack({ys * r, yt * r, r}).unsqueeze(0);  // [1, 3, H, W]
  at::Tensor low = detail::gaussian_blur_nchw(stack, sigma).squeeze(0);
  at::Tensor total = r.sum().clamp_min(1e-6);
  at::Tensor mean_s = (ys * r).sum() / total, mean_t = (yt * r).sum() / total;
  const float eps = 0.02f;
  at::Tensor denom = low[2] + eps;
  at::Tensor ys_low = (low[0] + eps * mean_s) / denom;
  at::Tensor yt_low = (low[1] + eps * mean_t) / denom;
  at::Tensor ratio = (yt_low / ys_low.clamp_min(1e-5)).clamp(0.25, 4.0);
  return detail::linear_to_srgb(lin_s * ratio.view({h, w, 1}));
}

// relight() on the CPU in two fused passes around the blur.
at::Tensor relight_cpu(const at::Tensor& source_in, const at::Tensor& target_in, const at::Tensor& region_in) {
  at::Tensor source = source_in.contiguous(), target = target_in.contiguous(), region = region_in.contiguous();
  const int64_t h = source.size(0), w = source.size(1), n = h * w;
  const float* s = source.data_ptr<float>();
  const float* t = target.data_ptr<float>();
  const float* r = region.data_ptr<float>();
  const SrgbTable& table = srgb_table();
  const float* luma = kRgbToXyz[1];
  at::Tensor planes = at::empty({1, 3, h, w}, at::kFloat);
  float* pl = planes.data_ptr<float>();
  at::parallel_for(0, n, 8192, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const float ys = luma[0] * table(s[3 * p]) + luma[1] * table(s[3 * p + 1]) + luma[2] * table(s[3 * p + 2]);
      const float yt = luma[0] * table(t[3 * p]) + luma[1] * table(t[3 * p + 1]) + luma[2] * table(t[3 * p + 2]);
      const float weight = std::clamp(r[p], 0.f, 1.f);
      pl[p] = ys * weight;
      pl[n + p] = yt * weight;
      pl[2 * n + p] = weight;
    }
  });
  at::Tensor sums = planes.sum({0, 2, 3});
  const float total = std::max(sums[2].item<float>(), 1e-6f);
  const float sigma = std::max(4.f, 0.1f * std::sqrt(total));  // relight_sigma
  const float mean_s = sums[0].item<float>() / total, mean_t = sums[1].item<float>() / total;
  at::Tensor low = detail::gaussian_blur_nchw(planes, sigma).contiguous();
  const float* lo = low.data_ptr<float>();
  at::Tensor out = at::empty_like(source);
  float* o = out.data_ptr<float>();
  const float eps = 0.02f;
  at::parallel_for(0, n, 8192, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const float denom = lo[2 * n + p] + eps;
      const float ys_low = (lo[p] + eps * mean_s) / denom;
      const float yt_low = (lo[n + p] + eps * mean_t) / denom;
      const float ratio = std::clamp(yt_low / std::max(ys_low, 1e-5f), 0.25f, 4.f);
      for (int c = 0; c < 3; ++c) o[3 * p + c] = linear_to_srgb_value(table(s[3 * p + c]) * ratio);
    }
  });
  return out;
}

// L*a*b* statistics transfer on the CPU: one pass for the weighted moments
// of both images, one affine map, one conversion back.
at::Tensor lab_transfer_cpu(const at::Tensor& source, const at::Tensor& target, const at::Tensor& region_in) {
  // The target is converted only where the region is (for its moments).
  at::Tensor lab_s = rgb_to_lab_cpu(source), target_rgb = target.contiguous(), region = region_in.contiguous();
  const int64_t h = source.size(0), w = source.size(1);
  const float* ls = lab_s.data_ptr<float>();
  const float* tr = target_rgb.data_ptr<float>();
  const SrgbTable& table = srgb_table();
  const float* r = region.data_ptr<float>();
  // Per row: weight, then sum and sum of squares of 3 channels, for both images.
  std::vector<double> rows(static_cast<size_t>(h * 13), 0.0);
  at::parallel_for(0, h, 16, [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      double acc[13] = {};
      for (int64_t x = 0; x < w; ++x) {
        const int64_t p = y * w + x;
        const double wt = std::clamp(r[p], 0.f, 1.f);
        if (wt == 0.0) continue;
        acc[0] += wt;
        float lt[3];
        rgb_to_lab_pixel(tr + 3 * p, lt, table);
        for (int c = 0; c < 3; ++c) {
          const double a = ls[3 * p + c], b = lt[c];
          acc[1 + c] += wt * a;
          acc[4 + c] += wt * a * a;
          acc[7 + c] += wt * b;
          acc[10 + c] += wt * b * b;
        }
      }
      std::copy(acc, acc + 13, rows.begin() + y * 13);
    }
  });
  double sum[13] = {};
  for (int64_t y = 0; y < h; ++y) {
    for (int k = 0; k < 13; ++k) sum[k] += rows[y * 13 + k];
  }
  const double total = std::max(sum[0], 1e-6);
  float scale[3], shift[3];
  for (int c = 0; c < 3; ++c) {
    const double mean_s = sum[1 + c] / total, mean_t = sum[7 + c] / total;
    const double std_s = std::sqrt(std::max(0.0, sum[4 + c] / total - mean_s * mean_s));
    const double std_t = std::sqrt(std::max(0.0, sum[10 + c] / total - mean_t * mean_t));
    const double k = std::clamp(std_t / std::max(std_s, 1e-3), kMinSpread[c], kMaxSpread[c]);
    scale[c] = static_cast<float>(k);
    shift[c] = static_cast<float>(mean_t - mean_s * k);
  }
  float* l = lab_s.data_ptr<float>();
  at::parallel_for(0, h * w, 16384, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      for (int c = 0; c < 3; ++c) l[3 * p + c] = l[3 * p + c] * scale[c] + shift[c];
    }
  });
  return lab_to_rgb_cpu(lab_s);
}

}  // namespace

namespace detail {

at::Tensor srgb_to_linear(const at::Tensor& srgb) {
  at::Tensor c = (srgb / 255.f).clamp(0.f, 1.f);
  return at::where(c <= 0.04045f, c / 12.92f, ((c + 0.055f) / 1.055f).pow(2.4));
}

at::Tensor linear_to_srgb(const at::Tensor& linear) {
  at::Tensor c = linear.clamp(0.f, 1.f);
  return at::where(c <= 0.0031308f, c * 12.92f, c.pow(1.0 / 2.4) * 1.055f - 0.055f) * 255.f;
}

at::Tensor rgb_to_lab_aten(const at::Tensor& rgb) { return rgb_to_lab_with(rgb, LabConstants(rgb.device())); }

at::Tensor lab_to_rgb_aten(const at::Tensor& lab) { return lab_to_rgb_with(lab, LabConstants(lab.device())); }

at::Tensor lab_transfer_aten(const at::Tensor& source, const at::Tensor& target, const at::Tensor& region) {
  // Source and target go through the conversion and the statistics
  // together, as one [2, N, 3] batch.
  const int64_t n = source.size(0) * source.size(1);
  const LabConstants k(source.device());
  at::Tensor w = region.clamp(0.f, 1.f).reshape({n, 1});
  at::Tensor total = w.sum().clamp_min(1e-6);
  at::Tensor lab = rgb_to_lab_with(at::stack({source, target}), k).view({2, n, 3});
  at::Tensor mean = (lab * w).sum(1, true) / total;                            // [2, 1, 3]
  at::Tensor spread = ((lab - mean).square() * w).sum(1).div_(total).sqrt_();  // [2, 3]
  at::Tensor scale = at::maximum(at::minimum(spread.select(0, 1) / spread.select(0, 0).clamp_min(1e-3), k.high), k.low);
  at::Tensor shift = mean.select(0, 1).squeeze(0) - mean.select(0, 0).squeeze(0) * scale;
  at::Tensor moved = at::addcmul(shift, lab.select(0, 0), scale).view(source.sizes());
  return lab_to_rgb_with(moved, k).clamp_(0.f, 255.f);
}

at::Tensor rgb_to_lab(const at::Tensor& rgb) {
  check_image(rgb, "rgb_to_lab");
  return rgb.device().is_cpu() ? rgb_to_lab_cpu(rgb) : rgb_to_lab_aten(rgb);
}

at::Tensor lab_to_rgb(const at::Tensor& lab) {
  check_image(lab, "lab_to_rgb");
  return lab.device().is_cpu() ? lab_to_rgb_cpu(lab) : lab_to_rgb_aten(lab);
}

}  // namespace detail

at::Tensor transfer_colour(const at::Tensor& source, const at::Tensor& target, const at::Tensor& region,
                           ColourTransfer mode) {
  check_image(source, "transfer_colour (source)");
  check_image(target, "transfer_colour (target)");
  if (!region.defined() || region.dim() != 2 || region.size(0) != source.size(0) || region.size(1) != source.size(1) ||
      !source.sizes().equals(target.sizes())) {
    throw std::invalid_argument("transfer_colour: source, target and region sizes differ");
  }
  if (mode == ColourTransfer::none) return source;
  const int64_t n = source.size(0) * source.size(1);
  const bool cpu = source.device().is_cpu();
  const bool lab = mode == ColourTransfer::lab || mode == ColourTransfer::lab_relight;
  at::Tensor result = source;
  if (mode == ColourTransfer::relight || mode == ColourTransfer::lab_relight) {
    result = cpu ? relight_cpu(source, target, region) : relight(source, target, region);
  }
  if (lab && cpu) {
    // The CPU loops keep values in 0..255: no clamping pass.
    return lab_transfer_cpu(result, target, region);
  }
  if (lab) return detail::lab_transfer_aten(result, target, region);
  at::Tensor w = region.clamp(0.f, 1.f).reshape({n, 1});
  at::Tensor total = w.sum().clamp_min(1e-6);
  // Relighting alone keeps the source's colours, except on a target without
  // colour (greyscale photo): then its chroma goes as well.
  const float chroma_t = rgb_chroma(target.reshape({n, 3}), w, total).item<float>();
  if (chroma_t < 12.f) {
    const float chroma_s = rgb_chroma(result.reshape({n, 3}), w, total).item<float>();
    const float k = std::clamp((chroma_t - 6.f) / 6.f, 0.f, 1.f);
    const float keep = k * k * (3.f - 2.f * k);
    const float scale = keep + (1.f - keep) * std::min(1.f, chroma_t / std::max(chroma_s, 1e-3f));
    at::Tensor lab_image = detail::rgb_to_lab(result);
    at::Tensor factors = detail::upload(at::tensor({1.f, scale, scale}, at::kFloat), lab_image.device());
    result = detail::lab_to_rgb(lab_image * factors);
  }
  return cpu ? result : result.clamp(0.f, 255.f).contiguous();
}

}  // namespace visage::swap
