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
#include <cstring>
#include <stdexcept>
#include <vector>

#include "swap/compose_internal.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

// Resampling through a coarse displacement field (warp_by_field's maths),
// one row at a time: row_field() upsamples the field along the row (the two
// coarse rows mixed once per coarse column), sample() reads one pixel.
template <typename Pixel>
class FieldSampler {
 public:
  FieldSampler(const at::Tensor& image, const at::Tensor& coarse_in, int64_t step)
      : coarse_(coarse_in.to(at::kCPU, at::kFloat).contiguous()),
        src_(image.data_ptr<Pixel>()),
        h_(image.size(0)),
        w_(image.size(1)),
        s0_(image.stride(0)),
        s1_(image.stride(1)),
        s2_(image.stride(2)),
        gh_(coarse_.size(0)),
        gw_(coarse_.size(1)),
        step_(step),
        cols_(static_cast<size_t>(w_)) {
    // The field is upsampled to gh*step x gw*step and cropped to h x w.
    for (int64_t x = 0; x < w_; ++x) cols_[x] = upsample_tap(x, 1.0 / static_cast<double>(step_), gw_);
  }

  int64_t field_width() const { return gw_ * 2; }

  // The field along row y at the coarse columns (`out`: field_width()
  // floats). Returns false when it is zero (below 1e-4 pixels) along the
  // whole row: the row's pixels stay as they are.
  bool row_field(int64_t y, float* out) const {
    const Tap row = upsample_tap(y, 1.0 / static_cast<double>(step_), gh_);
    const float* r0 = coarse_.data_ptr<float>() + row.i0 * gw_ * 2;
    const float* r1 = coarse_.data_ptr<float>() + row.i1 * gw_ * 2;
    float largest = 0.f;
    for (int64_t i = 0; i < gw_ * 2; ++i) {
      out[i] = r0[i] + row.t * (r1[i] - r0[i]);
      largest = std::max(largest, std::abs(out[i]));
    }
    return largest >= 1e-4f;
  }

  // Pixel (x, y) of the warped image into o[0..2]; false (and nothing
  // written) where the field is zero: the pixel is the image's own.
  bool sample(int64_t y, int64_t x, const float* field, float* o) const {
    const Tap& c = cols_[x];
    const float fx = field[c.i0 * 2] + c.t * (field[c.i1 * 2] - field[c.i0 * 2]);
    const float fy = field[c.i0 * 2 + 1] + c.t * (field[c.i1 * 2 + 1] - field[c.i0 * 2 + 1]);
    if (std::abs(fx) < 1e-4f && std::abs(fy) < 1e-4f) return false;
    // grid_sampler's bilinear sampling with border padding.
    const float sx = std::clamp(static_cast<float>(x) - fx, 0.f, static_cast<float>(w_ - 1));
    const float sy = std::clamp(static_cast<float>(y) - fy, 0.f, static_cast<float>(h_ - 1));
    const int64_t x0 = static_cast<int64_t>(sx), y0 = static_cast<int64_t>(sy);
    const int64_t x1 = std::min(x0 + 1, w_ - 1), y1 = std::min(y0 + 1, h_ - 1);
    const float tx = sx - static_cast<float>(x0), ty = sy - static_cast<float>(y0);
    const Pixel* a = src_ + y0 * s0_ + x0 * s1_;
    const Pixel* b = src_ + y0 * s0_ + x1 * s1_;
    const Pixel* cc = src_ + y1 * s0_ + x0 * s1_;
    const Pixel* d = src_ + y1 * s0_ + x1 * s1_;
    for (int ch = 0; ch < 3; ++ch) {
      const int64_t k = ch * s2_;
      const float top = static_cast<float>(a[k]) + tx * (static_cast<float>(b[k]) - static_cast<float>(a[k]));
      const float bottom = static_cast<float>(cc[k]) + tx * (static_cast<float>(d[k]) - static_cast<float>(cc[k]));
      o[ch] = top + ty * (bottom - top);
    }
    return true;
  }

  // The image's own pixel (x, y) as floats.
  void own(int64_t y, int64_t x, float* o) const {
    const Pixel* p = src_ + y * s0_ + x * s1_;
    for (int ch = 0; ch < 3; ++ch) o[ch] = static_cast<float>(p[ch * s2_]);
  }

 private:
  at::Tensor coarse_;
  const Pixel* src_;
  int64_t h_, w_, s0_, s1_, s2_, gh_, gw_, step_;
  std::vector<Tap> cols_;
};

template <typename Pixel>
at::Tensor warp_by_field_cpu(const at::Tensor& image, const at::Tensor& coarse, int64_t step) {
  const int64_t h = image.size(0), w = image.size(1);
  const FieldSampler<Pixel> sampler(image, coarse, step);
  at::Tensor out = at::empty({h, w, 3}, at::kFloat);
  float* dst = out.data_ptr<float>();
  at::parallel_for(0, h, 16, [&](int64_t y_begin, int64_t y_end) {
    std::vector<float> field(static_cast<size_t>(sampler.field_width()));
    for (int64_t y = y_begin; y < y_end; ++y) {
      float* o = dst + y * w * 3;
      const bool moves = sampler.row_field(y, field.data());
      for (int64_t x = 0; x < w; ++x)
        if (!moves || !sampler.sample(y, x, field.data(), o + x * 3)) sampler.own(y, x, o + x * 3);
    }
  });
  return out;
}

// std::nearbyint (round half to even) and a clamp to 0..255, without the
// libm call per channel that nearbyint costs on baseline x86-64: adding and
// subtracting 1.5 * 2^23 rounds a float of magnitude below 2^22 to an
// integer in the current (nearest-even) mode.
inline uint8_t to_byte(float v) {
  const float c = std::clamp(v, -1.f, 256.f);
  return static_cast<uint8_t>(std::clamp((c + 12582912.f) - 12582912.f, 0.f, 255.f));
}

// One warped pixel of a contiguous 3-byte-per-pixel image `src` (rows of
// `row` bytes, h x w) at (x, y) - (fx, fy), bilinear with borders
// replicated: FieldSampler::sample's maths (the same float operations, so the
// same values) with the channels side by side. The image has 4 bytes of
// padding after its last pixel (each tap reads 4 bytes).
struct BytePixelSampler {
  const uint8_t* src;
  int64_t row, h, w;

#if defined(__SSE2__)
  static __m128 load(const uint8_t* p) {
    int32_t bits;
    std::memcpy(&bits, p, 4);
    const __m128i zero = _mm_setzero_si128();
    const __m128i b = _mm_unpacklo_epi16(_mm_unpacklo_epi8(_mm_cvtsi32_si128(bits), zero), zero);
    return _mm_cvtepi32_ps(b);
  }
  __m128 operator()(int64_t x, int64_t y, float fx, float fy) const {
    const float sx = std::clamp(static_cast<float>(x) - fx, 0.f, static_cast<float>(w - 1));
    const float sy = std::clamp(static_cast<float>(y) - fy, 0.f, static_cast<float>(h - 1));
    const int64_t x0 = static_cast<int64_t>(sx), y0 = static_cast<int64_t>(sy);
    const int64_t dx = x0 + 1 < w ? 3 : 0, dy = y0 + 1 < h ? row : 0;
    const __m128 tx = _mm_set1_ps(sx - static_cast<float>(x0)), ty = _mm_set1_ps(sy - static_cast<float>(y0));
    const uint8_t* a = src + y0 * row + x0 * 3;
    const __m128 pa = load(a), pb = load(a + dx), pc = load(a + dy), pd = load(a + dy + dx);
    const __m128 top = _mm_add_ps(pa, _mm_mul_ps(tx, _mm_sub_ps(pb, pa)));
    const __m128 bottom = _mm_add_ps(pc, _mm_mul_ps(tx, _mm_sub_ps(pd, pc)));
    return _mm_add_ps(top, _mm_mul_ps(ty, _mm_sub_ps(bottom, top)));
  }
  static void store(__m128 v, float* o) {
    alignas(16) float lanes[4];
    _mm_store_ps(lanes, v);
    o[0] = lanes[0], o[1] = lanes[1], o[2] = lanes[2];
  }
  // Rounded half to even (the default rounding mode) and saturated to 0..255.
  static void store(__m128 v, uint8_t* o) {
    const __m128i i = _mm_cvtps_epi32(v);
    const int32_t packed = _mm_cvtsi128_si32(_mm_packus_epi16(_mm_packs_epi32(i, i), _mm_setzero_si128()));
    o[0] = static_cast<uint8_t>(packed), o[1] = static_cast<uint8_t>(packed >> 8);
    o[2] = static_cast<uint8_t>(packed >> 16);
  }
#else
  struct Value {
    float c[3];
  };
  Value operator()(int64_t x, int64_t y, float fx, float fy) const {
    const float sx = std::clamp(static_cast<float>(x) - fx, 0.f, static_cast<float>(w - 1));
    const float sy = std::clamp(static_cast<float>(y) - fy, 0.f, static_cast<float>(h - 1));
    const int64_t x0 = static_cast<int64_t>(sx), y0 = static_cast<int64_t>(sy);
    const int64_t dx = x0 + 1 < w ? 3 : 0, dy = y0 + 1 < h ? row : 0;
    const float tx = sx - static_cast<float>(x0), ty = sy - static_cast<float>(y0);
    const uint8_t* a = src + y0 * row + x0 * 3;
    Value v;
    for (int ch = 0; ch < 3; ++ch) {
      const float pa = a[ch], pb = a[dx + ch], pc = a[dy + ch], pd = a[dy + dx + ch];
      const float top = pa + tx * (pb - pa), bottom = pc + tx * (pd - pc);
      v.c[ch] = top + ty * (bottom - top);
    }
    return v;
  }
  static void store(const Value& v, float* o) { o[0] = v.c[0], o[1] = v.c[1], o[2] = v.c[2]; }
  static void store(const Value& v, uint8_t* o) {
    for (int ch = 0; ch < 3; ++ch) o[ch] = to_byte(v.c[ch]);
  }
#endif
};

// warp_in_place on the CPU: one pass over the ROI; pixels the field does not
// move are neither read nor written outside the box.
at::Tensor warp_in_place_cpu(at::Tensor& roi, const at::Tensor& coarse_in, int64_t step, int64_t bx, int64_t by,
                             int64_t bw, int64_t bh) {
  const int64_t h = roi.size(0), w = roi.size(1);
  const int64_t s0 = roi.stride(0), s1 = roi.stride(1), s2 = roi.stride(2);
  // The warp reads the original pixels around each one it writes: a
  // contiguous copy, with the padding the 4-byte taps read.
  at::Tensor buffer = at::empty({h * w * 3 + 4}, at::kByte);
  buffer.narrow(0, h * w * 3, 4).zero_();
  buffer.narrow(0, 0, h * w * 3).view({h, w, 3}).copy_(roi);
  const BytePixelSampler sample{buffer.data_ptr<uint8_t>(), w * 3, h, w};
  const at::Tensor coarse = coarse_in.to(at::kCPU, at::kFloat).contiguous();
  const int64_t gh = coarse.size(0), gw = coarse.size(1);
  const float* field = coarse.data_ptr<float>();
  const std::vector<Tap> cols = [&] {
    std::vector<Tap> taps(static_cast<size_t>(w));
    for (int64_t x = 0; x < w; ++x) taps[x] = upsample_tap(x, 1.0 / static_cast<double>(step), gw);
    return taps;
  }();
  const bool packed = s1 == 3 && s2 == 1;
  at::Tensor box = at::empty({bh, bw, 3}, at::kFloat);
  float* box_out = box.data_ptr<float>();
  uint8_t* dst = roi.data_ptr<uint8_t>();
  const uint8_t* own = buffer.data_ptr<uint8_t>();
  at::parallel_for(0, h, 16, [&](int64_t y_begin, int64_t y_end) {
    std::vector<float> coarse_row(static_cast<size_t>(gw * 2)), fxy(static_cast<size_t>(w * 2));
    for (int64_t y = y_begin; y < y_end; ++y) {
      // The field along the row: the two coarse rows mixed at each coarse
      // column, then at each pixel.
      const Tap r = upsample_tap(y, 1.0 / static_cast<double>(step), gh);
      const float* r0 = field + r.i0 * gw * 2;
      const float* r1 = field + r.i1 * gw * 2;
      float largest = 0.f;
      for (int64_t i = 0; i < gw * 2; ++i) {
        coarse_row[i] = r0[i] + r.t * (r1[i] - r0[i]);
        largest = std::max(largest, std::abs(coarse_row[i]));
      }
      const bool moves = largest >= 1e-4f;
      if (moves) {
        for (int64_t x = 0; x < w; ++x) {
          const Tap& c = cols[x];
          for (int k = 0; k < 2; ++k)
            fxy[x * 2 + k] = coarse_row[c.i0 * 2 + k] + c.t * (coarse_row[c.i1 * 2 + k] - coarse_row[c.i0 * 2 + k]);
        }
      }
      auto still = [&](int64_t x) { return std::abs(fxy[x * 2]) < 1e-4f && std::abs(fxy[x * 2 + 1]) < 1e-4f; };
      const bool in_rows = y >= by && y < by + bh;
      if (in_rows) {
        float* o = box_out + (y - by) * bw * 3;
        for (int64_t x = bx; x < bx + bw; ++x) {
          float* p = o + (x - bx) * 3;
          if (!moves || still(x)) {
            const uint8_t* q = own + (y * w + x) * 3;
            p[0] = q[0], p[1] = q[1], p[2] = q[2];
          } else {
            BytePixelSampler::store(sample(x, y, fxy[x * 2], fxy[x * 2 + 1]), p);
          }
        }
      }
      if (!moves) continue;
      uint8_t* row = dst + y * s0;
      for (int64_t x = 0; x < w; ++x) {
        if (in_rows && x == bx) {
          x = bx + bw - 1;
          continue;
        }
        if (still(x)) continue;
        if (packed) {
          BytePixelSampler::store(sample(x, y, fxy[x * 2], fxy[x * 2 + 1]), row + x * 3);
        } else {
          uint8_t v[3];
          BytePixelSampler::store(sample(x, y, fxy[x * 2], fxy[x * 2 + 1]), v);
          for (int c = 0; c < 3; ++c) row[x * s1 + c * s2] = v[c];
        }
      }
    }
  });
  return box;
}

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
#if !defined(__SSE2__)
  const float* bl = blended.data_ptr<float>();
#endif
#if defined(__SSE2__)
  // The taps read a pixel's three floats and the next one's first: copies
  // with one float of padding.
  auto padded = [](const at::Tensor& t) {
    at::Tensor p = at::empty({t.numel() + 1}, at::kFloat);
    p.narrow(0, t.numel(), 1).zero_();
    p.narrow(0, 0, t.numel()).copy_(t.view({-1}));
    return p;
  };
  if (scaled) {
    blended = padded(blended);
    small_background = padded(small_background);
  }
  const float* bl = blended.data_ptr<float>();
#endif
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
        const float* full = b + (lx + bx) * 3;
        uint8_t* px = o + (lx + bx) * s1;
        const float a00 = al[i00], a01 = al[i01], a10 = al[i10], a11 = al[i11];
#if defined(__SSE2__)
        // The same operations on the three channels at once.
        const __m128 ct = _mm_set1_ps(col.t), rt = _mm_set1_ps(row.t);
        auto lerp3 = [&](const float* p) {
          const __m128 v00 = _mm_loadu_ps(p + i00 * 3), v01 = _mm_loadu_ps(p + i01 * 3);
          const __m128 v10 = _mm_loadu_ps(p + i10 * 3), v11 = _mm_loadu_ps(p + i11 * 3);
          const __m128 top = _mm_add_ps(v00, _mm_mul_ps(ct, _mm_sub_ps(v01, v00)));
          const __m128 bottom = _mm_add_ps(v10, _mm_mul_ps(ct, _mm_sub_ps(v11, v10)));
          return _mm_add_ps(top, _mm_mul_ps(rt, _mm_sub_ps(bottom, top)));
        };
        auto put = [&](__m128 v) {
          const __m128i i = _mm_cvtps_epi32(v);  // half to even, as to_byte
          const int32_t bytes = _mm_cvtsi128_si32(_mm_packus_epi16(_mm_packs_epi32(i, i), _mm_setzero_si128()));
          px[0] = static_cast<uint8_t>(bytes), px[s2] = static_cast<uint8_t>(bytes >> 8);
          px[2 * s2] = static_cast<uint8_t>(bytes >> 16);
        };
        if (a00 == 1.f && a01 == 1.f && a10 == 1.f && a11 == 1.f) {
          put(lerp3(bl));
          continue;
        }
        if (a00 == 0.f && a01 == 0.f && a10 == 0.f && a11 == 0.f) {
          for (int c = 0; c < 3; ++c) px[c * s2] = to_byte(full[c]);
          continue;
        }
        const __m128 kept = _mm_set1_ps(1.f - lerp(al, 1, 0));
        const __m128 background_px = _mm_setr_ps(full[0], full[1], full[2], 0.f);
        put(_mm_add_ps(lerp3(bl), _mm_mul_ps(kept, _mm_sub_ps(background_px, lerp3(sb)))));
#else
        if (a00 == 1.f && a01 == 1.f && a10 == 1.f && a11 == 1.f) {  // inside the face: nothing comes back
          for (int c = 0; c < 3; ++c) px[c * s2] = to_byte(lerp(bl, 3, c));
          continue;
        }
        if (a00 == 0.f && a01 == 0.f && a10 == 0.f && a11 == 0.f) {  // blended == small background there
          for (int c = 0; c < 3; ++c) px[c * s2] = to_byte(full[c]);
          continue;
        }
        const float keep = 1.f - lerp(al, 1, 0);
        for (int c = 0; c < 3; ++c) {
          const float v = lerp(bl, 3, c) + keep * (full[c] - lerp(sb, 3, c));
          px[c * s2] = to_byte(v);
        }
#endif
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

at::Tensor warp_in_place(at::Tensor roi, const at::Tensor& coarse, int64_t step, int64_t box_x, int64_t box_y,
                         int64_t box_w, int64_t box_h) {
  if (roi.scalar_type() != at::kByte || roi.dim() != 3 || roi.size(2) != 3)
    throw std::invalid_argument("warp_in_place: expected a uint8 [H, W, 3] region");
  if (box_x < 0 || box_y < 0 || box_w < 1 || box_h < 1 || box_x + box_w > roi.size(1) || box_y + box_h > roi.size(0))
    throw std::invalid_argument("warp_in_place: the box does not lie inside the region");
  if (coarse.dim() != 3 || coarse.size(2) != 2 || step < 1)
    throw std::invalid_argument("warp_in_place: expected a [GH, GW, 2] field and a step >= 1");
  if (coarse.size(0) * step < roi.size(0) || coarse.size(1) * step < roi.size(1))
    throw std::invalid_argument("warp_in_place: the field does not cover the region");
  if (roi.device().is_cpu()) return warp_in_place_cpu(roi, coarse, step, box_x, box_y, box_w, box_h);
  at::Tensor warped = warp_by_field(roi, coarse, step);
  // Rounded and clamped, the float values are exact bytes: copy_ converts.
  roi.copy_(warped.round().clamp_(0, 255));
  return warped.narrow(0, box_y, box_h).narrow(1, box_x, box_w).contiguous();
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
    // The three upsampled in one call: [1, 7, h, w].
    at::Tensor planes = at::cat({blended, small_background, alpha.unsqueeze(2)}, 2).permute({2, 0, 1}).unsqueeze(0);
    at::Tensor up = at::upsample_bilinear2d(planes, {box_h, box_w}, false).squeeze(0).permute({1, 2, 0});
    at::Tensor full = background.narrow(0, box_y, box_h).narrow(1, box_x, box_w);
    composite = at::addcmul(up.narrow(2, 0, 3), one_minus(up.narrow(2, 6, 1)), full - up.narrow(2, 3, 3));
  }
  // Rounded and clamped, the float values are exact bytes: copy_ converts.
  const bool whole = box_x == 0 && box_y == 0 && box_w == out_roi.size(1) && box_h == out_roi.size(0);
  if (whole) {
    out_roi.copy_(composite.round().clamp_(0, 255));
    return;
  }
  at::Tensor result = background.clone();
  result.narrow(0, box_y, box_h).narrow(1, box_x, box_w).copy_(composite);
  out_roi.copy_(result.round_().clamp_(0, 255));
}

}  // namespace visage::swap::detail
