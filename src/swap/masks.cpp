// Masks for compositing: polygon rasterisation with exact area coverage,
// Gaussian blur, inward feathering and a skin-colour occlusion model.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "swap/compose.hpp"
#include "swap/compose_internal.hpp"

namespace visage::swap {
namespace {

void check_mask(const at::Tensor& mask, const char* what) {
  if (!mask.defined() || mask.dim() != 2 || mask.scalar_type() != at::kFloat) {
    throw std::invalid_argument(std::string(what) + ": expected a float [H, W] mask");
  }
}

// Exact-area scanline rasteriser (the signed-area accumulation of font-rs):
// every edge deposits, per pixel row, the area it adds to the cells on its
// right; a prefix sum along the row then gives each pixel's covered fraction.
// `Sink` takes the deposits: sink(y, x, value) for cells x = 0..width + 1 of
// row y (a dense row buffer on the CPU, a list for a device).
template <typename Sink>
class EdgeDepositor {
 public:
  EdgeDepositor(int64_t height, int64_t width, Sink& sink) : height_(height), width_(width), sink_(sink) {}

  // An edge of a polygon; `sign` makes the polygon's interior positive.
  void add_edge(Point2 a, Point2 b, float sign) {
    // Split where the edge crosses x = 0 and x = width, then clamp x: the
    // parts left of the image become vertical edges at x = 0 (covering the
    // row from there on, as the real edge would), those right of it land in
    // the padding cells beyond the last pixel.
    const float w = static_cast<float>(width_);
    float ts[4] = {0.f, 1.f, 1.f, 1.f};
    int n = 1;
    const float dx = b.x - a.x;
    if (dx != 0.f) {
      for (float xc : {0.f, w}) {
        float t = (xc - a.x) / dx;
        if (t > 0.f && t < 1.f) ts[n++] = t;
      }
    }
    ts[n++] = 1.f;
    if (n == 4 && ts[2] < ts[1]) std::swap(ts[1], ts[2]);  // two crossings, in order
    for (int i = 0; i + 1 < n; ++i) {
      if (ts[i + 1] <= ts[i]) continue;
      Point2 p{a.x + dx * ts[i], a.y + (b.y - a.y) * ts[i]};
      Point2 q{a.x + dx * ts[i + 1], a.y + (b.y - a.y) * ts[i + 1]};
      p.x = std::clamp(p.x, 0.f, w);
      q.x = std::clamp(q.x, 0.f, w);
      draw_line(p, q, sign);
    }
  }

  // Every edge of `polygons`, oriented so that each polygon's interior is
  // positive (degenerate polygons skipped).
  void add_polygons(const std::vector<Polygon>& polygons) {
    for (const Polygon& poly : polygons) {
      if (poly.size() < 3) continue;
      double area2 = 0;
      for (size_t i = 0; i < poly.size(); ++i) {
        const Point2& a = poly[i];
        const Point2& b = poly[(i + 1) % poly.size()];
        area2 += double(a.x) * b.y - double(b.x) * a.y;
      }
      if (area2 == 0) continue;
      // Edges that run down the image add coverage on their right for
      // clockwise-on-screen polygons (negative shoelace sum in y-down space).
      const float sign = area2 > 0 ? -1.f : 1.f;
      for (size_t i = 0; i < poly.size(); ++i) add_edge(poly[i], poly[(i + 1) % poly.size()], sign);
    }
  }

 private:
  void draw_line(Point2 p0, Point2 p1, float sign) {
    if (std::abs(p0.y - p1.y) <= 1e-12f) return;
    float dir = sign;
    if (p0.y > p1.y) {
      std::swap(p0, p1);
      dir = -sign;
    }
    if (p1.y <= 0.f || p0.y >= static_cast<float>(height_)) return;
    const float dxdy = (p1.x - p0.x) / (p1.y - p0.y);
    float x = p0.x;
    if (p0.y < 0.f) x -= p0.y * dxdy;
    const int64_t y_begin = std::max<int64_t>(0, static_cast<int64_t>(std::floor(p0.y)));
    const int64_t y_end = std::min<int64_t>(height_, static_cast<int64_t>(std::ceil(p1.y)));
    const float wmax = static_cast<float>(width_);
    for (int64_t y = y_begin; y < y_end; ++y) {
      auto row = [&](int64_t cell) { return Cell{sink_, y, cell}; };
      const float dy = std::min(static_cast<float>(y + 1), p1.y) - std::max(static_cast<float>(y), p0.y);
      // Clamped against float drift: the edge was clipped to 0..width.
      const float xnext = std::clamp(x + dxdy * dy, 0.f, wmax);
      const float d = dy * dir;
      const float x0 = std::min(x, xnext), x1 = std::max(x, xnext);
      const float x0floor = std::floor(x0);
      const int64_t x0i = static_cast<int64_t>(x0floor);
      const float x1ceil = std::ceil(x1);
      const int64_t x1i = static_cast<int64_t>(x1ceil);
      if (x1i <= x0i + 1) {
        const float xmf = 0.5f * (x + xnext) - x0floor;
        row(x0i) += d - d * xmf;
        row(x0i + 1) += d * xmf;
      } else {
        const float s = 1.f / (x1 - x0);
        const float x0f = x0 - x0floor;
        const float a0 = 0.5f * s * (1.f - x0f) * (1.f - x0f);
        const float x1f = x1 - x1ceil + 1.f;
        const float am = 0.5f * s * x1f * x1f;
        row(x0i) += d * a0;
        if (x1i == x0i + 2) {
          row(x0i + 1) += d * (1.f - a0 - am);
        } else {
          const float a1 = s * (1.5f - x0f);
          row(x0i + 1) += d * (a1 - a0);
          for (int64_t xi = x0i + 2; xi < x1i - 1; ++xi) row(xi) += d * s;
          const float a2 = a1 + static_cast<float>(x1i - x0i - 3) * s;
          row(x1i - 1) += d * (1.f - a2 - am);
        }
        row(x1i) += d * am;
      }
      x = xnext;
    }
  }

  // `row(x) += v` hands the deposit to the sink.
  struct Cell {
    Sink& sink;
    int64_t y, x;
    void operator+=(float v) { sink(y, x, v); }
  };

  int64_t height_, width_;
  Sink& sink_;
};

// The CPU's sink: one row buffer of width + 2 cells per pixel row.
struct DenseDeposits {
  DenseDeposits(int64_t height, int64_t width)
      : height(height), width(width), stride(width + 2), acc(static_cast<size_t>(height * (width + 2)), 0.f) {}
  void operator()(int64_t y, int64_t x, float v) { acc[static_cast<size_t>(y * stride + x)] += v; }

  // Prefix sums along rows, clamped to 0..1 (overlapping polygons saturate).
  void resolve(float* out) const {
    at::parallel_for(0, height, 64, [&](int64_t y0, int64_t y1) {
      for (int64_t y = y0; y < y1; ++y) {
        const float* row = acc.data() + y * stride;
        float* dst = out + y * width;
        float sum = 0.f;
        for (int64_t x = 0; x < width; ++x) {
          sum += row[x];
          dst[x] = std::clamp(sum, 0.f, 1.f);
        }
      }
    });
  }

  int64_t height, width, stride;
  std::vector<float> acc;
};

// A device's sink: (cell index, value) pairs of a [sets, height, width + 2]
// accumulator, resolved by detail::resolve_polygon_deposits.
struct SparseDeposits {
  void operator()(int64_t y, int64_t x, float v) {
    cells.push_back(static_cast<int32_t>(base + y * stride + x));
    values.push_back(v);
  }
  int64_t base = 0, stride = 0;
  std::vector<int32_t>& cells;
  std::vector<float>& values;
};

std::vector<float> gaussian_kernel(float sigma) {
  const int radius = std::max(1, static_cast<int>(std::ceil(3.f * sigma)));
  std::vector<float> k(2 * radius + 1);
  double sum = 0;
  for (int i = -radius; i <= radius; ++i) {
    k[i + radius] = static_cast<float>(std::exp(-0.5 * (i * i) / (double(sigma) * sigma)));
    sum += k[i + radius];
  }
  for (float& v : k) v = static_cast<float>(v / sum);
  return k;
}

// Separable convolution of contiguous CPU planes [P, H, W] with a symmetric
// kernel, borders replicated: ATen's depthwise conv2d is several times
// slower than these loops for one or three channels.
at::Tensor separable_blur_cpu(const at::Tensor& input, const std::vector<float>& k) {
  at::Tensor x = input.contiguous();
  const int64_t h = x.size(-2), w = x.size(-1), planes = x.numel() / std::max<int64_t>(1, h * w);
  const int64_t r = static_cast<int64_t>(k.size() / 2);
  at::Tensor tmp = at::empty_like(x), out = at::empty_like(x);
  const float* src = x.data_ptr<float>();
  float* mid = tmp.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  at::parallel_for(0, planes * h, 16, [&](int64_t r0, int64_t r1) {
    std::vector<float> row(static_cast<size_t>(w + 2 * r));
    for (int64_t pr = r0; pr < r1; ++pr) {
      const float* in = src + pr * w;
      for (int64_t i = 0; i < r; ++i) {
        row[i] = in[0];
        row[w + r + i] = in[w - 1];
      }
      std::copy(in, in + w, row.begin() + r);
      float* o = mid + pr * w;
      for (int64_t x0 = 0; x0 < w; ++x0) o[x0] = 0.f;
      for (int64_t i = 0; i <= 2 * r; ++i) {
        const float ki = k[i];
        const float* shifted = row.data() + i;
        for (int64_t x0 = 0; x0 < w; ++x0) o[x0] += ki * shifted[x0];
      }
    }
  });
  at::parallel_for(0, planes * h, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t pr = r0; pr < r1; ++pr) {
      const int64_t plane = pr / h, y = pr % h;
      const float* base = mid + plane * h * w;
      float* o = dst + pr * w;
      for (int64_t x0 = 0; x0 < w; ++x0) o[x0] = 0.f;
      for (int64_t i = 0; i <= 2 * r; ++i) {
        const int64_t yy = std::clamp<int64_t>(y - r + i, 0, h - 1);
        const float ki = k[i];
        const float* in = base + yy * w;
        for (int64_t x0 = 0; x0 < w; ++x0) o[x0] += ki * in[x0];
      }
    }
  });
  return out;
}

at::Tensor separable_blur(const at::Tensor& x, float sigma) {
  const auto k1 = gaussian_kernel(sigma);
  if (x.device().is_cpu()) return separable_blur_cpu(x, k1);
  const int64_t r = static_cast<int64_t>(k1.size() / 2), n = static_cast<int64_t>(k1.size()), c = x.size(1);
  // The depthwise weights of every channel, built on the host and sent in
  // one upload: [C, 1, 1, K] for rows, the same memory as [C, 1, K, 1] for columns.
  at::Tensor host = at::empty({c, n}, at::kFloat);
  for (int64_t i = 0; i < c; ++i) std::copy(k1.begin(), k1.end(), host.data_ptr<float>() + i * n);
  at::Tensor k = detail::constant(host, x.device());
  const int64_t one[2] = {1, 1}, zero[2] = {0, 0};
  auto conv = [&](const at::Tensor& input, const at::Tensor& weight) {
    return at::conv2d(input, weight, at::Tensor(), at::IntArrayRef(one, 2), at::IntArrayRef(zero, 2),
                      at::IntArrayRef(one, 2), c);
  };
  // Replicate padding, one axis at a time.
  at::Tensor h = conv(at::replication_pad2d(x, {r, r, 0, 0}), k.view({c, 1, 1, n}));
  return conv(at::replication_pad2d(h, {0, 0, r, r}), k.view({c, 1, n, 1}));
}

// Squared 1-D distance transform (Felzenszwalb & Huttenlocher) over `n`
// samples `f` with stride; writes into `d`. v/z are scratch of size n / n+1.
void distance_transform_1d(const float* f, int64_t n, int64_t stride, float* d, int64_t* v, float* z) {
  const float inf = std::numeric_limits<float>::infinity();
  int64_t k = -1;
  for (int64_t q = 0; q < n; ++q) {
    const float fq = f[q * stride];
    if (fq == inf) continue;
    while (k >= 0) {
      const int64_t p = v[k];
      const float s = ((fq + float(q * q)) - (f[p * stride] + float(p * p))) / float(2 * (q - p));
      if (s <= z[k]) {
        --k;
      } else {
        break;
      }
    }
    ++k;
    v[k] = q;
    z[k] = k == 0 ? -inf
                  : ((fq + float(q * q)) - (f[v[k - 1] * stride] + float(v[k - 1] * v[k - 1]))) /
                        float(2 * (q - v[k - 1]));
    z[k + 1] = inf;
  }
  if (k < 0) {
    for (int64_t q = 0; q < n; ++q) d[q * stride] = inf;
    return;
  }
  int64_t j = 0;
  for (int64_t q = 0; q < n; ++q) {
    while (j < k && z[j + 1] < float(q)) ++j;
    const float diff = float(q - v[j]);
    d[q * stride] = diff * diff + f[v[j] * stride];
  }
}

// Euclidean distance from each pixel centre to the nearest pixel with mask
// < 0.5 (infinite when there is none).
std::vector<float> distance_to_outside(const float* mask, int64_t h, int64_t w) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> f(static_cast<size_t>(h * w)), g(static_cast<size_t>(h * w));
  for (int64_t i = 0; i < h * w; ++i) f[i] = mask[i] < 0.5f ? 0.f : inf;
  at::parallel_for(0, w, 32, [&](int64_t x0, int64_t x1) {
    std::vector<int64_t> v(h);
    std::vector<float> z(h + 1);
    for (int64_t x = x0; x < x1; ++x) distance_transform_1d(f.data() + x, h, w, g.data() + x, v.data(), z.data());
  });
  at::parallel_for(0, h, 32, [&](int64_t y0, int64_t y1) {
    std::vector<int64_t> v(w);
    std::vector<float> z(w + 1);
    for (int64_t y = y0; y < y1; ++y) {
      distance_transform_1d(g.data() + y * w, w, 1, f.data() + y * w, v.data(), z.data());
    }
  });
  for (auto& d : f) d = std::sqrt(d);
  return f;
}

// distance_to_outside with ATen ops (any device), exact up to `cap` pixels;
// farther pixels get more than `cap`. The squared transform is separable:
// a minimum over a window of 2 cap + 1 rows of f + dy^2, then the same over
// columns. The windows are unfolded a block of rows at a time (bounded memory).
at::Tensor capped_distance_to_outside(const at::Tensor& mask, int64_t cap) {
  const int64_t k = 2 * cap + 1;
  const float far = static_cast<float>(4 * cap * cap + 4);
  const auto opts = at::TensorOptions().dtype(at::kFloat).device(mask.device());
  at::Tensor offsets = at::arange(-cap, cap + 1, opts).square_();  // [k]
  // Along dim 0 of [H', W'], windows of k rows.
  auto pass = [&](const at::Tensor& f) {
    const int64_t rows = f.size(0), cols = f.size(1);
    at::Tensor padded = at::constant_pad_nd(f, {0, 0, cap, cap}, far);
    const int64_t block = std::max<int64_t>(1, (int64_t{1} << 24) / std::max<int64_t>(1, cols * k));
    if (block >= rows) return at::amin(padded.unfold(0, k, 1) + offsets, 2);  // one block (a face's mask)
    at::Tensor out = at::empty({rows, cols}, opts);
    for (int64_t r0 = 0; r0 < rows; r0 += block) {
      const int64_t n = std::min(block, rows - r0);
      // [n + 2 cap, W'] -> [n, W', k]: window j of row r is padded row r + j.
      at::Tensor windows = padded.narrow(0, r0, n + 2 * cap).unfold(0, k, 1);
      out.narrow(0, r0, n).copy_(at::amin(windows + offsets, 2));
    }
    return out;
  };
  at::Tensor f = (mask >= 0.5f) * far;  // 0 outside, far inside
  at::Tensor columns = pass(f);
  return pass(columns.t().contiguous()).t().clamp_max(far).sqrt();
}

// The skin model: a Gaussian in L*a*b* fitted with Tukey-style reweighting
// (weights (1 - d2 / cut)^2), so that occluders inside the sample (usually
// the face area itself) do not widen it; a trimmed fit underestimates the
// spread, hence the factor. Skin up to ~3.5 standard deviations, occluder
// from ~5.5.
constexpr int kSkinIterations = 4;
constexpr float kSkinCut = 16.f;
constexpr double kTrimmedSpread = 1.6;
constexpr double kRegulariser[3] = {9.0, 1.0, 1.0};
constexpr float kSkinFrom = 12.f, kOccluderFrom = 30.f;

}  // namespace

namespace detail {

at::Tensor one_minus(const at::Tensor& x) { return at::rsub(x, 1.f); }

at::Tensor smoothstep_unit(const at::Tensor& t) { return t * t * at::rsub(t * 2.f, 3.f); }

at::Tensor upload(const at::Tensor& host, at::Device device) {
  if (device.is_cpu() || !host.is_cpu()) return host.to(device);
  // The caching host allocator keeps the pinned block until the copy is done.
  return host.pin_memory().to(device, host.scalar_type(), /*non_blocking=*/true);
}

namespace {

thread_local ConstantsKept* kept_constants = nullptr;

// Content-keyed constants per device, the least recently used dropped past
// kEntries. Each entry keeps its pinned host copy too: the upload (or a
// graph's copy node captured from it) reads that memory.
class ConstantCache {
 public:
  at::Tensor get(const at::Tensor& host, at::Device device) {
    const at::Tensor bytes = host.contiguous();
    const auto* data = static_cast<const char*>(bytes.data_ptr());
    const size_t size = static_cast<size_t>(bytes.nbytes());
    std::string key;
    key.reserve(size + 64);
    key.append(device.str()).append(1, '|').append(c10::toString(bytes.scalar_type())).append(1, '|');
    for (int64_t d : bytes.sizes()) key.append(std::to_string(d)).append(1, 'x');
    key.append(data, size);
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = entries_.find(key);
    if (it == entries_.end()) {
      Entry entry;
      entry.host = bytes.pin_memory();
      entry.device = entry.host.to(device, bytes.scalar_type(), /*non_blocking=*/true);
      it = entries_.emplace(std::move(key), std::move(entry)).first;
      it->second.used = ++clock_;
      if (entries_.size() > kEntries) drop_oldest();
    }
    it->second.used = ++clock_;
    if (kept_constants) {
      kept_constants->tensors.push_back(it->second.host);
      kept_constants->tensors.push_back(it->second.device);
    }
    return it->second.device;
  }

 private:
  static constexpr size_t kEntries = 512;
  struct Entry {
    at::Tensor host, device;
    uint64_t used = 0;
  };
  void drop_oldest() {
    auto oldest = entries_.begin();
    for (auto it = entries_.begin(); it != entries_.end(); ++it)
      if (it->second.used < oldest->second.used) oldest = it;
    entries_.erase(oldest);
  }
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
  uint64_t clock_ = 0;
};

}  // namespace

at::Tensor constant(const at::Tensor& host, at::Device device) {
  if (device.is_cpu()) return host;
  if (!host.is_cpu() || host.nbytes() > static_cast<size_t>(kMaxConstantBytes)) return upload(host, device);
  // Never destroyed: device tensors freed at exit would outlive the CUDA context.
  static ConstantCache* cache = new ConstantCache;
  return cache->get(host, device);
}

ConstantsKept::ConstantsKept() : outer_(kept_constants) { kept_constants = this; }
ConstantsKept::~ConstantsKept() { kept_constants = outer_; }

// The skin model with ATen ops (any device). Returns the occluder mask
// [H, W] inside face_region (before growing and smoothing).
at::Tensor skin_occlusion_aten(const at::Tensor& lab_image, const at::Tensor& skin_sample,
                               const at::Tensor& face_region) {
  const int64_t h = lab_image.size(0), w = lab_image.size(1);
  at::Tensor lab = lab_image.reshape({h * w, 3});
  at::Tensor sample = skin_sample.reshape({h * w, 1});
  at::Tensor weight = sample.clone();
  const at::Tensor regulariser =
      constant(at::tensor({float(kRegulariser[0]), float(kRegulariser[1]), float(kRegulariser[2])}, at::kFloat),
               lab.device())
          .diag();
  at::Tensor d2;
  for (int iteration = 0; iteration < kSkinIterations; ++iteration) {
    at::Tensor total = weight.sum().clamp_min(1e-6);
    at::Tensor mean = (lab * weight).sum(0, true) / total;
    at::Tensor centred = lab - mean;
    at::Tensor cov = at::mm((centred * weight).t(), centred) / total + regulariser;
    if (iteration > 0) cov = cov * float(kTrimmedSpread);
    at::Tensor inv = at::inverse(cov);
    d2 = (at::mm(centred, inv) * centred).sum(1, true);
    weight = sample * one_minus(d2 / kSkinCut).clamp_min(0.f).square();
  }
  at::Tensor t = ((d2 - kSkinFrom) / (kOccluderFrom - kSkinFrom)).clamp(0.f, 1.f);
  at::Tensor occluded = smoothstep_unit(t).view({h, w}) * face_region.clamp(0.f, 1.f);
  return occluded;
}

// The same model in CPU loops: per-row moments, a 3x3 inverse, one pass of
// distances per iteration.
at::Tensor skin_occlusion_cpu(const at::Tensor& lab_image, const at::Tensor& sample_mask, const at::Tensor& region) {
  const int64_t h = lab_image.size(0), w = lab_image.size(1), n = h * w;
  const float* lab = lab_image.data_ptr<float>();
  const float* sample = sample_mask.data_ptr<float>();
  const float* rg = region.data_ptr<float>();
  std::vector<float> weight(sample, sample + n), d2(static_cast<size_t>(n), 0.f);
  std::vector<double> rows(static_cast<size_t>(h * 10));
  for (int iteration = 0; iteration < kSkinIterations; ++iteration) {
    at::parallel_for(0, h, 16, [&](int64_t y0, int64_t y1) {
      for (int64_t y = y0; y < y1; ++y) {
        double acc[10] = {};
        for (int64_t p = y * w; p < (y + 1) * w; ++p) {
          const double wt = weight[p];
          if (wt == 0.0) continue;
          const double l = lab[3 * p], a = lab[3 * p + 1], b = lab[3 * p + 2];
          acc[0] += wt;
          acc[1] += wt * l;
          acc[2] += wt * a;
          acc[3] += wt * b;
          acc[4] += wt * l * l;
          acc[5] += wt * l * a;
          acc[6] += wt * l * b;
          acc[7] += wt * a * a;
          acc[8] += wt * a * b;
          acc[9] += wt * b * b;
        }
        std::copy(acc, acc + 10, rows.begin() + y * 10);
      }
    });
    double m[10] = {};
    for (int64_t y = 0; y < h; ++y) {
      for (int k = 0; k < 10; ++k) m[k] += rows[y * 10 + k];
    }
    const double total = std::max(m[0], 1e-6);
    const double mean[3] = {m[1] / total, m[2] / total, m[3] / total};
    const double spread = iteration > 0 ? kTrimmedSpread : 1.0;
    // Covariance (symmetric), regularised, scaled as the ATen version.
    double c00 = (m[4] / total - mean[0] * mean[0] + kRegulariser[0]) * spread;
    double c01 = (m[5] / total - mean[0] * mean[1]) * spread;
    double c02 = (m[6] / total - mean[0] * mean[2]) * spread;
    double c11 = (m[7] / total - mean[1] * mean[1] + kRegulariser[1]) * spread;
    double c12 = (m[8] / total - mean[1] * mean[2]) * spread;
    double c22 = (m[9] / total - mean[2] * mean[2] + kRegulariser[2]) * spread;
    const double i00 = c11 * c22 - c12 * c12, i01 = c02 * c12 - c01 * c22, i02 = c01 * c12 - c02 * c11;
    const double i11 = c00 * c22 - c02 * c02, i12 = c01 * c02 - c00 * c12, i22 = c00 * c11 - c01 * c01;
    const double det = c00 * i00 + c01 * i01 + c02 * i02;
    const float inv[6] = {float(i00 / det), float(i01 / det), float(i02 / det),
                          float(i11 / det), float(i12 / det), float(i22 / det)};
    const float mu[3] = {float(mean[0]), float(mean[1]), float(mean[2])};
    at::parallel_for(0, n, 16384, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        const float l = lab[3 * p] - mu[0], a = lab[3 * p + 1] - mu[1], b = lab[3 * p + 2] - mu[2];
        const float d =
            inv[0] * l * l + inv[3] * a * a + inv[5] * b * b + 2.f * (inv[1] * l * a + inv[2] * l * b + inv[4] * a * b);
        d2[p] = d;
        const float keep = std::max(0.f, 1.f - d / kSkinCut);
        weight[p] = sample[p] * keep * keep;
      }
    });
  }
  at::Tensor occluded = at::empty({h, w}, at::kFloat);
  float* o = occluded.data_ptr<float>();
  at::parallel_for(0, n, 16384, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const float t = std::clamp((d2[p] - kSkinFrom) / (kOccluderFrom - kSkinFrom), 0.f, 1.f);
      o[p] = t * t * (3.f - 2.f * t) * rg[p];
    }
  });
  return occluded;
}

void polygon_deposits(int64_t height, int64_t width, const std::vector<Polygon>& polygons, int64_t set,
                      std::vector<int32_t>& cells, std::vector<float>& values) {
  if (height <= 0 || width <= 0) throw std::invalid_argument("polygon_deposits: empty size");
  if ((set + 1) * height * (width + 2) > std::numeric_limits<int32_t>::max()) {
    throw std::invalid_argument("polygon_deposits: more cells than 32-bit indices hold");
  }
  SparseDeposits sink{set * height * (width + 2), width + 2, cells, values};
  EdgeDepositor<SparseDeposits>(height, width, sink).add_polygons(polygons);
}

at::Tensor resolve_polygon_deposits(const at::Tensor& cells, const at::Tensor& values, int64_t sets, int64_t height,
                                    int64_t width) {
  at::Tensor acc = at::zeros({sets * height * (width + 2)}, values.options());
  if (cells.numel() > 0) acc.index_add_(0, cells, values);
  // The two padding cells of each row hold what lies right of the image.
  return acc.view({sets, height, width + 2}).narrow(2, 0, width).cumsum(2).clamp_(0.f, 1.f);
}

at::Tensor feather_mask_aten(const at::Tensor& mask, float radius) {
  // Distances past the radius all give 1: the capped transform is exact
  // wherever the result is below 1.
  const int64_t cap = static_cast<int64_t>(std::ceil(radius + 0.5f)) + 1;
  at::Tensor dist = capped_distance_to_outside(mask, cap);
  at::Tensor t = ((dist - 0.5f) * (1.f / radius)).clamp(0.f, 1.f);
  return at::minimum(smoothstep_unit(t), mask);
}

at::Tensor gaussian_blur_nchw(const at::Tensor& input, float sigma) {
  if (sigma <= 0.f) return input;
  if (sigma <= 4.f) return separable_blur(input, sigma);
  // Box-downsample by f, blur with the remaining variance, upsample.
  const int64_t f = std::max<int64_t>(2, static_cast<int64_t>(sigma / 3.f));
  const int64_t h = input.size(2), w = input.size(3);
  const int64_t hp = (h + f - 1) / f * f, wp = (w + f - 1) / f * f;
  at::Tensor x = (hp != h || wp != w) ? at::replication_pad2d(input, {0, wp - w, 0, hp - h}) : input;
  at::Tensor low = at::avg_pool2d(x, {f, f}, {f, f});
  // The box adds a variance of f^2/12, the bilinear interpolation f^2/6.
  const float rest = std::sqrt(std::max(0.25f, sigma * sigma - float(f * f) / 4.f)) / float(f);
  low = separable_blur(low, rest);
  // Explicit scale factors keep the padded grid's sample positions while
  // writing only the H x W pixels (no crop copy).
  return at::upsample_bilinear2d(low, {h, w}, false, static_cast<double>(f), static_cast<double>(f));
}

}  // namespace detail

void fill_polygons_into(float* out, int64_t height, int64_t width, const std::vector<Polygon>& polygons) {
  if (height <= 0 || width <= 0) throw std::invalid_argument("fill_polygons: empty size");
  DenseDeposits deposits(height, width);
  EdgeDepositor<DenseDeposits>(height, width, deposits).add_polygons(polygons);
  deposits.resolve(out);
}

at::Tensor fill_polygons(int64_t height, int64_t width, const std::vector<Polygon>& polygons, at::Device device) {
  if (height <= 0 || width <= 0) throw std::invalid_argument("fill_polygons: empty size");
  at::Tensor out = at::empty({height, width}, at::kFloat);
  fill_polygons_into(out.data_ptr<float>(), height, width, polygons);
  return device.is_cpu() ? out : out.to(device);
}

at::Tensor blur_mask(const at::Tensor& mask, float sigma) {
  check_mask(mask, "blur_mask");
  if (sigma <= 0.f) return mask;
  return detail::gaussian_blur_nchw(mask.view({1, 1, mask.size(0), mask.size(1)}), sigma)
      .view({mask.size(0), mask.size(1)});
}

at::Tensor feather_mask(const at::Tensor& mask, float radius) {
  check_mask(mask, "feather_mask");
  if (radius <= 0.f) return mask;
  // On a device, without a round trip to the host.
  if (!mask.device().is_cpu()) return detail::feather_mask_aten(mask, radius);
  at::Tensor cpu = mask.contiguous();
  const int64_t h = cpu.size(0), w = cpu.size(1);
  const float* m = cpu.data_ptr<float>();
  std::vector<float> dist = distance_to_outside(m, h, w);
  at::Tensor out = at::empty({h, w}, at::kFloat);
  float* o = out.data_ptr<float>();
  // The edge lies about half a pixel beyond the last inside pixel centre.
  const float inv = 1.f / radius;
  at::parallel_for(0, h * w, 16384, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const float t = std::clamp((dist[i] - 0.5f) * inv, 0.f, 1.f);
      o[i] = std::min(t * t * (3.f - 2.f * t), m[i]);
    }
  });
  return out;
}

at::Tensor connected_to(const at::Tensor& mask, const at::Tensor& seeds, float threshold) {
  check_mask(mask, "connected_to (mask)");
  check_mask(seeds, "connected_to (seeds)");
  if (!mask.sizes().equals(seeds.sizes())) throw std::invalid_argument("connected_to: mask and seeds differ in size");
  at::Tensor m = mask.to(at::kCPU).contiguous(), s = seeds.to(at::kCPU).contiguous();
  const int64_t h = m.size(0), w = m.size(1);
  const float* mp = m.data_ptr<float>();
  const float* sp = s.data_ptr<float>();
  at::Tensor out = at::zeros({h, w}, at::kFloat);
  float* op = out.data_ptr<float>();
  std::vector<int64_t> stack;
  for (int64_t i = 0; i < h * w; ++i)
    if (sp[i] > 0.5f && mp[i] > threshold) op[i] = 1.f, stack.push_back(i);
  while (!stack.empty()) {
    const int64_t i = stack.back();
    stack.pop_back();
    const int64_t y = i / w, x = i % w;
    for (int64_t dy = -1; dy <= 1; ++dy)
      for (int64_t dx = -1; dx <= 1; ++dx) {
        const int64_t yy = y + dy, xx = x + dx;
        if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
        const int64_t j = yy * w + xx;
        if (op[j] == 0.f && mp[j] > threshold) op[j] = 1.f, stack.push_back(j);
      }
  }
  return mask.device().is_cpu() ? out : out.to(mask.device());
}

at::Tensor skin_visibility_mask(const at::Tensor& image, const at::Tensor& face_region, const at::Tensor& skin_sample) {
  if (!image.defined() || image.dim() != 3 || image.size(2) != 3 || image.scalar_type() != at::kFloat) {
    throw std::invalid_argument("skin_visibility_mask: expected a float [H, W, 3] image");
  }
  check_mask(face_region, "skin_visibility_mask (face_region)");
  check_mask(skin_sample, "skin_visibility_mask (skin_sample)");
  at::Tensor occluded;
  if (image.device().is_cpu()) {
    occluded = detail::skin_occlusion_cpu(detail::rgb_to_lab(image), skin_sample.contiguous(),
                                          face_region.clamp(0.f, 1.f).contiguous());
  } else {
    occluded = detail::skin_occlusion_aten(detail::rgb_to_lab(image), skin_sample, face_region);
  }
  // Grow occluders a little (their fringes blend into the skin) and smooth.
  at::Tensor grown = blur_mask(occluded, 2.f);
  occluded = at::maximum(occluded, (grown * 2.f).clamp_max(1.f));
  return detail::one_minus(blur_mask(occluded, 1.f));
}

}  // namespace visage::swap
