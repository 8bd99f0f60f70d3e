// Blending the swapped face into the target: feathered alpha, a multi-band
// blend whose bands all fade out inside alpha > 0, and seamless (Poisson)
// cloning solved by multigrid.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "swap/compose.hpp"
#include "swap/compose_internal.hpp"

namespace visage::swap {
namespace {

void check_inputs(const at::Tensor& fg, const at::Tensor& bg, const at::Tensor& alpha) {
  for (const at::Tensor* t : {&fg, &bg}) {
    if (!t->defined() || t->dim() != 3 || t->size(2) != 3 || t->scalar_type() != at::kFloat) {
      throw std::invalid_argument("blend: expected float [H, W, 3] images");
    }
  }
  if (!fg.sizes().equals(bg.sizes()) || !alpha.defined() || alpha.dim() != 2 || alpha.size(0) != fg.size(0) ||
      alpha.size(1) != fg.size(1) || alpha.scalar_type() != at::kFloat) {
    throw std::invalid_argument("blend: foreground, background and alpha sizes differ");
  }
}

// A plane of the multiband pyramid (planar channels, CPU).
struct Plane {
  int64_t h = 0, w = 0;
  std::vector<float> v;  // [3, h, w]
  float at(int c, int64_t y, int64_t x) const { return v[static_cast<size_t>((c * h + y) * w + x)]; }
};

// out = [1 3 3 1]/8 along both axes, every other sample: a [1 2 1] blur and
// a 2x2 mean, borders replicated. Sizes are even.
Plane down_cpu(const Plane& in) {
  static constexpr float kTaps[4] = {0.125f, 0.375f, 0.375f, 0.125f};
  Plane out{in.h / 2, in.w / 2, {}};
  out.v.resize(static_cast<size_t>(3 * out.h * out.w));
  at::parallel_for(0, 3 * out.h, 16, [&](int64_t r0, int64_t r1) {
    std::vector<float> row(static_cast<size_t>(in.w));
    for (int64_t cr = r0; cr < r1; ++cr) {
      const int c = static_cast<int>(cr / out.h);
      const int64_t y = cr % out.h;
      std::fill(row.begin(), row.end(), 0.f);
      for (int i = 0; i < 4; ++i) {
        const int64_t yy = std::clamp<int64_t>(2 * y - 1 + i, 0, in.h - 1);
        const float* src = in.v.data() + (c * in.h + yy) * in.w;
        for (int64_t x = 0; x < in.w; ++x) row[x] += kTaps[i] * src[x];
      }
      float* dst = out.v.data() + (c * out.h + y) * out.w;
      for (int64_t x = 0; x < out.w; ++x) {
        float sum = 0.f;
        for (int i = 0; i < 4; ++i) sum += kTaps[i] * row[std::clamp<int64_t>(2 * x - 1 + i, 0, in.w - 1)];
        dst[x] = sum;
      }
    }
  });
  return out;
}

// [1 2 1]/4 along both axes, borders replicated (the ATen version's 3x3 kernel).
Plane blur_121_cpu(const Plane& in) {
  Plane tmp = in, out = in;
  for (int c = 0; c < 3; ++c) {
    for (int64_t y = 0; y < in.h; ++y) {
      for (int64_t x = 0; x < in.w; ++x) {
        tmp.v[(c * in.h + y) * in.w + x] = 0.25f * in.at(c, y, std::max<int64_t>(x - 1, 0)) + 0.5f * in.at(c, y, x) +
                                           0.25f * in.at(c, y, std::min(x + 1, in.w - 1));
      }
    }
    for (int64_t y = 0; y < in.h; ++y) {
      for (int64_t x = 0; x < in.w; ++x) {
        out.v[(c * in.h + y) * in.w + x] = 0.25f * tmp.at(c, std::max<int64_t>(y - 1, 0), x) + 0.5f * tmp.at(c, y, x) +
                                           0.25f * tmp.at(c, std::min(y + 1, in.h - 1), x);
      }
    }
  }
  return out;
}

// The multiband blend on the CPU: the pyramid of foreground - background,
// then one pass in which only pixels with 0 < alpha < 1 sample its levels.
at::Tensor blend_multiband_cpu(const at::Tensor& fg_in, const at::Tensor& bg_in, const at::Tensor& alpha_in,
                               int levels) {
  at::Tensor fg = fg_in.contiguous(), bg = bg_in.contiguous(), alpha = alpha_in.contiguous();
  const int64_t h = fg.size(0), w = fg.size(1);
  const int64_t unit = int64_t{1} << levels;
  const int64_t hp = (h + unit - 1) / unit * unit, wp = (w + unit - 1) / unit * unit;
  const float* f = fg.data_ptr<float>();
  const float* b = bg.data_ptr<float>();
  const float* a = alpha.data_ptr<float>();
  std::vector<Plane> pyramid(static_cast<size_t>(levels + 1));
  Plane& base = pyramid[0];
  base = Plane{hp, wp, std::vector<float>(static_cast<size_t>(3 * hp * wp))};
  at::parallel_for(0, hp, 32, [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      const int64_t sy = std::min(y, h - 1);
      for (int64_t x = 0; x < wp; ++x) {
        const int64_t p = (sy * w + std::min(x, w - 1)) * 3;
        for (int c = 0; c < 3; ++c) base.v[(c * hp + y) * wp + x] = f[p + c] - b[p + c];
      }
    }
  });
  for (int l = 1; l <= levels; ++l) pyramid[l] = down_cpu(pyramid[l - 1]);
  for (int l = 1; l <= levels; ++l) pyramid[l] = blur_121_cpu(pyramid[l]);

  at::Tensor result = at::empty_like(bg);
  float* out = result.data_ptr<float>();
  at::parallel_for(0, h, 16, [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      for (int64_t x = 0; x < w; ++x) {
        const int64_t p = (y * w + x) * 3;
        const float av = std::clamp(a[y * w + x], 0.f, 1.f);
        if (av <= 0.f) {
          for (int c = 0; c < 3; ++c) out[p + c] = b[p + c];
          continue;
        }
        auto weight = [&](int l) {
          const float t = std::clamp((av - 0.5f) / std::ldexp(1.f, l - levels) + 0.5f, 0.f, 1.f);
          return t * t * (3.f - 2.f * t);
        };
        float previous = weight(0);
        float acc[3];
        for (int c = 0; c < 3; ++c) acc[c] = b[p + c] + previous * (f[p + c] - b[p + c]);
        for (int l = 1; l <= levels; ++l) {
          const float current = weight(l);
          const float dw = current - previous;
          previous = current;
          if (dw == 0.f) continue;
          const Plane& g = pyramid[l];
          const float scale = std::ldexp(1.f, -l);
          const float sy = std::max(0.f, (float(y) + 0.5f) * scale - 0.5f);
          const float sx = std::max(0.f, (float(x) + 0.5f) * scale - 0.5f);
          const int64_t iy = std::min<int64_t>(static_cast<int64_t>(sy), g.h - 1);
          const int64_t ix = std::min<int64_t>(static_cast<int64_t>(sx), g.w - 1);
          const int64_t iy1 = std::min(iy + 1, g.h - 1), ix1 = std::min(ix + 1, g.w - 1);
          const float ty = sy - float(iy), tx = sx - float(ix);
          for (int c = 0; c < 3; ++c) {
            const float top = g.at(c, iy, ix) + tx * (g.at(c, iy, ix1) - g.at(c, iy, ix));
            const float bottom = g.at(c, iy1, ix) + tx * (g.at(c, iy1, ix1) - g.at(c, iy1, ix));
            acc[c] += dw * (top + ty * (bottom - top));
          }
        }
        for (int c = 0; c < 3; ++c) out[p + c] = acc[c];
      }
    }
  });
  return result;
}

// ---------------------------------------------------------------------------
// Poisson: multigrid on cell-centred grids with Dirichlet zero outside the
// domain. Arrays carry a one-pixel zero border and C interleaved channels.

constexpr int kChannels = 3;

struct Grid {
  int64_t h = 0, w = 0;
  std::vector<uint8_t> inside;  // (h+2) x (w+2)
  std::vector<float> diagonal;  // (h+2) x (w+2): 4, plus the outside neighbours on coarse grids
  std::vector<float> u, f, r;   // (h+2) x (w+2) x C
  int64_t stride() const { return w + 2; }
  int64_t index(int64_t y, int64_t x) const { return (y + 1) * (w + 2) + (x + 1); }
  void allocate(int64_t height, int64_t width) {
    h = height;
    w = width;
    const size_t n = static_cast<size_t>((h + 2) * (w + 2));
    inside.assign(n, 0);
    diagonal.assign(n, 4.f);
    u.assign(n * kChannels, 0.f);
    f.assign(n * kChannels, 0.f);
    r.assign(n * kChannels, 0.f);
  }
};

// On the finest grid the unknowns next to the domain's edge see u = 0 at the
// outside pixels' centres. Coarse grids put the zero on the faces of their
// outside cells instead (ghost value -u, hence a larger diagonal): zero at the
// ghost cells' centres would move the edge outwards by half a coarse cell per
// level, and the corrections from the coarsest grids would overshoot.
void set_diagonal(Grid& g, bool faces) {
  const int64_t s = g.stride();
  for (int64_t y = 0; y < g.h; ++y) {
    for (int64_t x = 0; x < g.w; ++x) {
      const int64_t i = g.index(y, x);
      const int outside = 4 - g.inside[i - 1] - g.inside[i + 1] - g.inside[i - s] - g.inside[i + s];
      g.diagonal[i] = 4.f + (faces ? float(outside) : 0.f);
    }
  }
}

// Rows per task: grids under ~64K cells run on the calling thread (waking
// the pool costs more than they do, many times per V-cycle).
int64_t grain_rows(const Grid& g) { return std::max<int64_t>(1, 65536 / std::max<int64_t>(1, g.w)); }

// Red-black Gauss-Seidel: u = (f + sum of neighbours) / diagonal on the
// domain; `reverse` visits black before red (the adjoint sweep, so that a
// V-cycle is a symmetric preconditioner).
void smooth(Grid& g, int sweeps, bool reverse) {
  const int64_t s = g.stride();
  for (int sweep = 0; sweep < sweeps; ++sweep) {
    for (int step = 0; step < 2; ++step) {
      const int colour = reverse ? 1 - step : step;
      at::parallel_for(0, g.h, grain_rows(g), [&](int64_t y0, int64_t y1) {
        for (int64_t y = y0; y < y1; ++y) {
          for (int64_t x = (y + colour) & 1; x < g.w; x += 2) {
            const int64_t i = g.index(y, x);
            if (!g.inside[i]) continue;
            float* u = g.u.data() + i * kChannels;
            const float* f = g.f.data() + i * kChannels;
            const float inv = 1.f / g.diagonal[i];
            for (int c = 0; c < kChannels; ++c) {
              u[c] = inv * (f[c] + u[c - kChannels] + u[c + kChannels] + u[c - s * kChannels] + u[c + s * kChannels]);
            }
          }
        }
      });
    }
  }
}

// out = A v on the domain (zero elsewhere); with `rhs`, out = rhs - A v.
void apply_operator(const Grid& g, const std::vector<float>& v, std::vector<float>& out,
                    const std::vector<float>* rhs = nullptr) {
  const int64_t s = g.stride();
  at::parallel_for(0, g.h, grain_rows(g), [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      for (int64_t x = 0; x < g.w; ++x) {
        const int64_t i = g.index(y, x);
        float* o = out.data() + i * kChannels;
        if (!g.inside[i]) {
          for (int c = 0; c < kChannels; ++c) o[c] = 0.f;
          continue;
        }
        const float* u = v.data() + i * kChannels;
        const float diagonal = g.diagonal[i];
        for (int c = 0; c < kChannels; ++c) {
          o[c] = diagonal * u[c] - u[c - kChannels] - u[c + kChannels] - u[c - s * kChannels] - u[c + s * kChannels];
        }
        if (rhs) {
          const float* f = rhs->data() + i * kChannels;
          for (int c = 0; c < kChannels; ++c) o[c] = f[c] - o[c];
        }
      }
    }
  });
}

// r = f - A u.
void residual(Grid& g) { apply_operator(g, g.u, g.r, &g.f); }

// Coarse domain: cells with at least three of their four children inside.
void coarsen_domain(const Grid& fine, Grid& coarse) {
  coarse.allocate((fine.h + 1) / 2, (fine.w + 1) / 2);
  for (int64_t y = 0; y < fine.h; ++y) {
    for (int64_t x = 0; x < fine.w; ++x) {
      if (fine.inside[fine.index(y, x)]) coarse.inside[coarse.index(y / 2, x / 2)] += 1;
    }
  }
  for (int64_t y = 0; y < coarse.h; ++y) {
    for (int64_t x = 0; x < coarse.w; ++x) {
      const int64_t i = coarse.index(y, x);
      const int children = int(std::min<int64_t>(2, fine.h - 2 * y) * std::min<int64_t>(2, fine.w - 2 * x));
      coarse.inside[i] = coarse.inside[i] >= std::min(3, children) ? 1 : 0;
    }
  }
}

// coarse.f = P^T values: the transpose of prolong_add's interpolation
// (weights 1/4, 3/4, 3/4, 1/4 per axis over fine offsets -1..2 of 2Y).
void restrict_to(const Grid& fine, const std::vector<float>& values, Grid& coarse) {
  static constexpr float kWeights[4] = {0.25f, 0.75f, 0.75f, 0.25f};
  at::parallel_for(0, coarse.h, grain_rows(coarse), [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      for (int64_t x = 0; x < coarse.w; ++x) {
        const int64_t j = coarse.index(y, x);
        float* dst = coarse.f.data() + j * kChannels;
        for (int c = 0; c < kChannels; ++c) dst[c] = 0.f;
        if (!coarse.inside[j]) continue;
        for (int dy = 0; dy < 4; ++dy) {
          const int64_t fy = 2 * y - 1 + dy;
          if (fy < 0 || fy >= fine.h) continue;
          for (int dx = 0; dx < 4; ++dx) {
            const int64_t fx = 2 * x - 1 + dx;
            if (fx < 0 || fx >= fine.w) continue;
            const float weight = kWeights[dy] * kWeights[dx];
            const float* src = values.data() + fine.index(fy, fx) * kChannels;
            for (int c = 0; c < kChannels; ++c) dst[c] += weight * src[c];
          }
        }
      }
    }
  });
}

// fine.u += bilinear (9/16, 3/16, 3/16, 1/16) interpolation of coarse.u.
void prolong_add(const Grid& coarse, Grid& fine) {
  const int64_t cs = coarse.stride();
  at::parallel_for(0, fine.h, grain_rows(fine), [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      const int64_t cy = y / 2, ny = (y & 1) ? 1 : -1;
      for (int64_t x = 0; x < fine.w; ++x) {
        const int64_t i = fine.index(y, x);
        if (!fine.inside[i]) continue;
        const int64_t cx = x / 2, nx = (x & 1) ? 1 : -1;
        const int64_t j = coarse.index(cy, cx);
        const float* a = coarse.u.data() + j * kChannels;
        const float* b = coarse.u.data() + (j + nx) * kChannels;
        const float* c0 = coarse.u.data() + (j + ny * cs) * kChannels;
        const float* d = coarse.u.data() + (j + ny * cs + nx) * kChannels;
        float* u = fine.u.data() + i * kChannels;
        for (int c = 0; c < kChannels; ++c) {
          u[c] += 0.5625f * a[c] + 0.1875f * (b[c] + c0[c]) + 0.0625f * d[c];
        }
      }
    }
  });
}

// A symmetric V-cycle on levels[l] (u starts at zero): the preconditioner
// of conjugate gradients, which keep the solve convergent however poorly
// the coarse grids follow an irregular domain's edge.
// V(2, 2): one sweep each way needs twice the iterations.
constexpr int kSweeps = 2;

void v_cycle(std::vector<Grid>& levels, size_t l) {
  Grid& g = levels[l];
  if (l + 1 == levels.size()) {
    for (int i = 0; i < 10; ++i) {
      smooth(g, 1, false);
      smooth(g, 1, true);
    }
    return;
  }
  smooth(g, kSweeps, false);
  residual(g);
  Grid& coarse = levels[l + 1];
  restrict_to(g, g.r, coarse);
  std::fill(coarse.u.begin(), coarse.u.end(), 0.f);
  v_cycle(levels, l + 1);
  prolong_add(coarse, g);
  smooth(g, kSweeps, true);
}

std::array<double, kChannels> channel_dot(const std::vector<float>& a, const std::vector<float>& b) {
  const int64_t n = static_cast<int64_t>(a.size() / kChannels);
  constexpr int64_t kChunk = 16384;
  std::vector<std::array<double, kChannels>> partial(static_cast<size_t>((n + kChunk - 1) / kChunk));
  at::parallel_for(0, static_cast<int64_t>(partial.size()), 1, [&](int64_t c0, int64_t c1) {
    for (int64_t chunk = c0; chunk < c1; ++chunk) {
      std::array<double, kChannels> sum{};
      for (int64_t i = chunk * kChunk; i < std::min(n, (chunk + 1) * kChunk); ++i) {
        for (int c = 0; c < kChannels; ++c) sum[c] += double(a[i * kChannels + c]) * b[i * kChannels + c];
      }
      partial[chunk] = sum;
    }
  });
  std::array<double, kChannels> total{};
  for (const auto& p : partial) {
    for (int c = 0; c < kChannels; ++c) total[c] += p[c];
  }
  return total;
}

// Conjugate-gradient iterations for blend(): from the feathered start, 5
// leave errors of a few tenths of a level at most (8 converge fully).
constexpr int kPoissonIterations = 5;

at::Tensor poisson_blend(const at::Tensor& fg, const at::Tensor& bg, const at::Tensor& alpha) {
  // The solve runs on the CPU for every device (its loops beat ATen ops there).
  at::Tensor u =
      detail::poisson_offset_cpu((fg - bg).to(at::kCPU), alpha.to(at::kCPU), kPoissonIterations).to(bg.device());
  // Exactly the background where alpha == 0 (u is zero there).
  return at::where(alpha.unsqueeze(2) > 0.f, bg + u, bg);
}

}  // namespace

namespace detail {

int multiband_levels(int64_t h, int64_t w) {
  // Coarsest band about 1/16 of the region's short side, 3..6 levels.
  const double side = static_cast<double>(std::min(h, w));
  return std::clamp(static_cast<int>(std::lround(std::log2(std::max(side, 1.0) / 16.0))), 3, 6);
}

at::Tensor poisson_offset_cpu(const at::Tensor& d_in, const at::Tensor& alpha_in, int max_iterations) {
  // Solve on the box around alpha > 0 grown by one pixel (so that the
  // outside neighbours of the domain, which feed the right-hand side, are in it).
  at::Tensor nonzero = (alpha_in > 0.f);
  at::Tensor rows = nonzero.any(1).nonzero(), cols = nonzero.any(0).nonzero();
  if (rows.numel() == 0) return at::zeros_like(d_in);
  const int64_t full_h = d_in.size(0), full_w = d_in.size(1);
  const int64_t y0 = std::max<int64_t>(0, rows.min().item<int64_t>() - 1);
  const int64_t y1 = std::min<int64_t>(full_h, rows.max().item<int64_t>() + 2);
  const int64_t x0 = std::max<int64_t>(0, cols.min().item<int64_t>() - 1);
  const int64_t x1 = std::min<int64_t>(full_w, cols.max().item<int64_t>() + 2);
  at::Tensor d = d_in.narrow(0, y0, y1 - y0).narrow(1, x0, x1 - x0).contiguous();
  at::Tensor alpha = alpha_in.narrow(0, y0, y1 - y0).narrow(1, x0, x1 - x0).contiguous();
  const int64_t h = d.size(0), w = d.size(1);
  const float* dp = d.data_ptr<float>();
  const float* ap = alpha.data_ptr<float>();
  std::vector<Grid> levels;
  levels.reserve(24);  // `top` stays valid while coarser grids are added
  Grid& top = levels.emplace_back();
  top.allocate(h, w);
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) top.inside[top.index(y, x)] = ap[y * w + x] > 0.f ? 1 : 0;
  }
  // Right-hand side: divergence of alpha * grad(d), alpha averaged over each
  // pixel pair; neighbours beyond the region contribute nothing.
  at::parallel_for(0, h, 32, [&](int64_t y0, int64_t y1) {
    const int64_t dy[4] = {-1, 1, 0, 0}, dx[4] = {0, 0, -1, 1};
    for (int64_t y = y0; y < y1; ++y) {
      for (int64_t x = 0; x < w; ++x) {
        const int64_t p = y * w + x;
        if (ap[p] <= 0.f) continue;
        float* f = top.f.data() + top.index(y, x) * kChannels;
        for (int k = 0; k < 4; ++k) {
          const int64_t qy = y + dy[k], qx = x + dx[k];
          if (qy < 0 || qy >= h || qx < 0 || qx >= w) continue;
          const int64_t q = qy * w + qx;
          const float weight = 0.5f * (ap[p] + ap[q]);
          for (int c = 0; c < kChannels; ++c) f[c] += weight * (dp[p * 3 + c] - dp[q * 3 + c]);
        }
      }
    }
  });
  while (std::min(levels.back().h, levels.back().w) > 8) {
    Grid coarse;
    coarsen_domain(levels.back(), coarse);
    set_diagonal(coarse, true);
    levels.push_back(std::move(coarse));
  }
  // Preconditioned conjugate gradients, one independent solve per channel
  // (the vectors interleave them), started from the feathered paste
  // u = alpha * d: what is left to find is the smooth seamless correction.
  const size_t n = top.u.size();
  std::vector<float> x(n, 0.f), r(n), p, q(n);
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t xx = 0; xx < w; ++xx) {
      const int64_t i = top.index(y, xx);
      for (int c = 0; c < kChannels; ++c) x[i * kChannels + c] = ap[y * w + xx] * dp[(y * w + xx) * 3 + c];
    }
  }
  const auto f_norm = channel_dot(top.f, top.f);
  apply_operator(top, x, r, &top.f);
  std::vector<float> z(n);
  // z = M r (buffers swapped, not reallocated: fresh pages cost more than the arithmetic).
  auto precondition = [&]() {
    std::copy(r.begin(), r.end(), top.f.begin());
    std::fill(top.u.begin(), top.u.end(), 0.f);
    v_cycle(levels, 0);
    z.swap(top.u);
  };
  precondition();
  p = z;
  auto rz = channel_dot(r, z);
  for (int iteration = 0; iteration < max_iterations; ++iteration) {
    apply_operator(top, p, q);
    const auto pq = channel_dot(p, q);
    std::array<float, kChannels> step{};
    for (int c = 0; c < kChannels; ++c) step[c] = pq[c] > 0 ? static_cast<float>(rz[c] / pq[c]) : 0.f;
    at::parallel_for(0, static_cast<int64_t>(n / kChannels), 16384, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0 * kChannels; i < i1 * kChannels; i += kChannels) {
        for (int c = 0; c < kChannels; ++c) {
          x[i + c] += step[c] * p[i + c];
          r[i + c] -= step[c] * q[i + c];
        }
      }
    });
    const auto r_norm = channel_dot(r, r);
    bool converged = true;
    for (int c = 0; c < kChannels; ++c) converged = converged && r_norm[c] <= 1e-8 * f_norm[c];
    if (converged) break;
    precondition();
    const auto rz_next = channel_dot(r, z);
    std::array<float, kChannels> beta{};
    for (int c = 0; c < kChannels; ++c) beta[c] = rz[c] > 0 ? static_cast<float>(rz_next[c] / rz[c]) : 0.f;
    at::parallel_for(0, static_cast<int64_t>(n / kChannels), 16384, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0 * kChannels; i < i1 * kChannels; i += kChannels) {
        for (int c = 0; c < kChannels; ++c) p[i + c] = z[i + c] + beta[c] * p[i + c];
      }
    });
    rz = rz_next;
  }
  top.u = std::move(x);

  at::Tensor u = at::zeros({full_h, full_w, kChannels}, at::kFloat);
  float* up = u.data_ptr<float>();
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      const float* src = top.u.data() + top.index(y, x) * kChannels;
      float* dst = up + ((y + y0) * full_w + x + x0) * kChannels;
      for (int c = 0; c < kChannels; ++c) dst[c] = src[c];
    }
  }
  return u;
}

}  // namespace detail

at::Tensor blend(const at::Tensor& foreground, const at::Tensor& background, const at::Tensor& alpha, BlendMode mode) {
  check_inputs(foreground, background, alpha);
  switch (mode) {
    case BlendMode::feather:
      return at::addcmul(background, foreground - background, alpha.clamp(0.f, 1.f).unsqueeze(2));
    case BlendMode::multiband:
      return blend_multiband(foreground, background, alpha,
                             detail::multiband_levels(foreground.size(0), foreground.size(1)));
    case BlendMode::poisson: return poisson_blend(foreground, background, alpha);
  }
  throw std::invalid_argument("blend: unknown mode");
}

// Bands of foreground - background: U_0 = the difference itself, U_l its
// level-l Gaussian approximation at full size. The result is
//   background + W_0 U_0 + sum_l (W_l - W_{l-1}) U_l,
// i.e. band l is blended with W_l, a function of alpha that is 0 where alpha
// is 0, sharp (around alpha = 0.5) for fine bands and as wide as alpha itself
// for the coarsest. Every term vanishes where alpha == 0, and all are
// continuous, so the edge has no step.
at::Tensor blend_multiband(const at::Tensor& foreground, const at::Tensor& background, const at::Tensor& alpha,
                           int levels) {
  check_inputs(foreground, background, alpha);
  levels = std::clamp(levels, 1, 8);
  if (foreground.device().is_cpu()) return blend_multiband_cpu(foreground, background, alpha, levels);
  return detail::blend_multiband_aten(foreground, background, alpha, levels);
}

namespace detail {

at::Tensor blend_multiband_aten(const at::Tensor& foreground, const at::Tensor& background, const at::Tensor& alpha,
                                int levels) {
  // Written for few launches (on a device every op is one, and a face's
  // blend is a few hundred thousand pixels): the band weights of all levels
  // in one batch, each level's [1 2 1] blur and its next level's
  // blur-and-average as one padded copy and two convolutions (a 3x3 and a
  // stride-2 4x4 binomial: the separable [1 3 3 1] / 8 that blur_121 and
  // the 2x2 mean make, also at the replicated border), and the kernels
  // uploaded together.
  const int64_t h = foreground.size(0), w = foreground.size(1);
  const int64_t unit = int64_t{1} << levels;
  const int64_t hp = (h + unit - 1) / unit * unit, wp = (w + unit - 1) / unit * unit;
  const at::Device device = foreground.device();
  // Host constants, one upload: the 3x3 and 4x4 kernels for 3 channels and
  // each band's slope 2^(levels - l).
  constexpr float k3[3] = {0.25f, 0.5f, 0.25f}, k4[4] = {0.125f, 0.375f, 0.375f, 0.125f};
  at::Tensor host = at::empty({3 * 9 + 3 * 16 + levels + 1}, at::kFloat);
  float* c = host.data_ptr<float>();
  for (int ch = 0; ch < 3; ++ch) {
    for (int i = 0; i < 9; ++i) *c++ = k3[i / 3] * k3[i % 3];
  }
  for (int ch = 0; ch < 3; ++ch) {
    for (int i = 0; i < 16; ++i) *c++ = k4[i / 4] * k4[i % 4];
  }
  for (int l = 0; l <= levels; ++l) *c++ = std::ldexp(1.f, levels - l);
  const at::Tensor constants = constant(host, device);
  const at::Tensor blur3 = constants.narrow(0, 0, 27).view({3, 1, 3, 3});
  const at::Tensor down4 = constants.narrow(0, 27, 48).view({3, 1, 4, 4});
  const at::Tensor slopes = constants.narrow(0, 75, levels + 1).view({levels + 1, 1, 1});
  const int64_t one[2] = {1, 1}, two[2] = {2, 2}, zero[2] = {0, 0};
  auto conv = [&](const at::Tensor& x, const at::Tensor& k, const int64_t* stride) {
    return at::conv2d(x, k, at::Tensor(), at::IntArrayRef(stride, 2), at::IntArrayRef(zero, 2), at::IntArrayRef(one, 2),
                      3);
  };
  // Band l's weight: a smoothstep of alpha over 0.5 +- 2^(l - levels - 1);
  // [levels + 1, H, W], then the steps between neighbouring bands.
  at::Tensor t = (alpha.clamp(0.f, 1.f).sub(0.5f) * slopes).add_(0.5f).clamp_(0.f, 1.f);
  at::Tensor weights = smoothstep_unit(t);
  at::Tensor steps = weights.narrow(0, 1, levels) - weights.narrow(0, 0, levels);
  at::Tensor diff = foreground - background;
  at::Tensor result = at::addcmul(background, diff, weights.select(0, 0).unsqueeze(2));
  at::Tensor g = diff.permute({2, 0, 1}).unsqueeze(0);  // [1, 3, H, W]
  if (hp != h || wp != w) g = at::replication_pad2d(g, {0, wp - w, 0, hp - h});
  at::Tensor padded = at::replication_pad2d(g, {1, 1, 1, 1});
  for (int l = 1; l <= levels; ++l) {
    g = conv(padded, down4, two);
    padded = at::replication_pad2d(g, {1, 1, 1, 1});
    // One more [1 2 1] pass before the bilinear upsampling hides its kinks.
    // Explicit scales keep the padded grid's sample positions while writing
    // only the H x W pixels.
    const double scale = std::ldexp(1.0, l);
    at::Tensor up = at::upsample_bilinear2d(conv(padded, blur3, one), {h, w}, false, scale, scale);
    result.addcmul_(up.squeeze(0).permute({1, 2, 0}), steps.select(0, l - 1).unsqueeze(2));
  }
  return result;
}

}  // namespace detail

}  // namespace visage::swap
