#include "swap/mesh_raster.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "swap/mesh_topology.hpp"

namespace visage::swap {

namespace {

// Calls visit(x, y, w0, w1, w2) for every pixel centre inside the triangle
// (barycentric weights of a, b, c), clipped to the grid. Back-facing
// (negative area) and degenerate triangles are skipped.
template <typename Visit>
void scan_triangle(Point3 a, Point3 b, Point3 c, int height, int width, Visit visit) {
  float area = signed_area({a.x, a.y}, {b.x, b.y}, {c.x, c.y});
  if (area <= 1e-6f) return;
  int x0 = std::max(0, static_cast<int>(std::floor(std::min({a.x, b.x, c.x}) - 0.5f)));
  int x1 = std::min(width - 1, static_cast<int>(std::ceil(std::max({a.x, b.x, c.x}) - 0.5f)));
  int y0 = std::max(0, static_cast<int>(std::floor(std::min({a.y, b.y, c.y}) - 0.5f)));
  int y1 = std::min(height - 1, static_cast<int>(std::ceil(std::max({a.y, b.y, c.y}) - 0.5f)));
  const float eps = -1e-4f;
  for (int y = y0; y <= y1; ++y) {
    float py = y + 0.5f;
    for (int x = x0; x <= x1; ++x) {
      float px = x + 0.5f;
      float w0 = signed_area({px, py}, {b.x, b.y}, {c.x, c.y}) / area;
      float w1 = signed_area({a.x, a.y}, {px, py}, {c.x, c.y}) / area;
      float w2 = 1.f - w0 - w1;
      if (w0 < eps || w1 < eps || w2 < eps) continue;
      visit(x, y, w0, w1, w2);
    }
  }
}

}  // namespace

at::Tensor depth_map(std::span<const Point3> mesh, const Triangles& triangles, int height, int width, float far_depth) {
  at::Tensor depth = at::full({height, width}, far_depth, at::kFloat);
  float* d = depth.data_ptr<float>();
  for (const auto& t : triangles) {
    Point3 a = mesh[t[0]], b = mesh[t[1]], c = mesh[t[2]];
    scan_triangle(a, b, c, height, width, [&](int x, int y, float w0, float w1, float w2) {
      float z = w0 * a.z + w1 * b.z + w2 * c.z;
      float& slot = d[static_cast<int64_t>(y) * width + x];
      slot = std::min(slot, z);
    });
  }
  return depth;
}

at::Tensor facing_map(std::span<const Point3> mesh, const Triangles& triangles, int height, int width) {
  const int64_t pixels = static_cast<int64_t>(height) * width;
  std::vector<float> zbuf(pixels, std::numeric_limits<float>::max());
  at::Tensor facing = at::zeros({height, width}, at::kFloat);
  float* f = facing.data_ptr<float>();
  for (const auto& t : triangles) {
    Point3 a = mesh[t[0]], b = mesh[t[1]], c = mesh[t[2]];
    const float ux = b.x - a.x, uy = b.y - a.y, uz = b.z - a.z, vx = c.x - a.x, vy = c.y - a.y, vz = c.z - a.z;
    const float nx = uy * vz - uz * vy, ny = uz * vx - ux * vz, nz = ux * vy - uy * vx;
    const float cosine = std::abs(nz) / std::max(1e-12f, std::sqrt(nx * nx + ny * ny + nz * nz));
    scan_triangle(a, b, c, height, width, [&](int x, int y, float w0, float w1, float w2) {
      int64_t i = static_cast<int64_t>(y) * width + x;
      float z = w0 * a.z + w1 * b.z + w2 * c.z;
      if (z >= zbuf[i]) return;
      zbuf[i] = z, f[i] = cosine;
    });
  }
  return facing;
}

void mesh_correspondence_into(std::span<const Point3> dst, std::span<const Point3> src, std::span<const int> mirror,
                              const Triangles& triangles, int height, int width, float* cov, float* dir, float* mir) {
  const int64_t pixels = static_cast<int64_t>(height) * width;
  std::vector<float> zbuf(pixels, std::numeric_limits<float>::max());
  std::vector<int> owner(pixels, -1);
  std::vector<std::array<float, 3>> weights(pixels);
  for (size_t ti = 0; ti < triangles.size(); ++ti) {
    const auto& t = triangles[ti];
    Point3 a = dst[t[0]], b = dst[t[1]], c = dst[t[2]];
    scan_triangle(a, b, c, height, width, [&](int x, int y, float w0, float w1, float w2) {
      int64_t i = static_cast<int64_t>(y) * width + x;
      float z = w0 * a.z + w1 * b.z + w2 * c.z;
      if (z >= zbuf[i]) return;
      zbuf[i] = z, owner[i] = static_cast<int>(ti), weights[i] = {w0, w1, w2};
    });
  }
  std::fill(cov, cov + pixels, 0.f);
  std::fill(dir, dir + 3 * pixels, 0.f);
  std::fill(mir, mir + 3 * pixels, 0.f);
  for (int64_t i = 0; i < pixels; ++i) {
    if (owner[i] < 0) continue;
    const auto& t = triangles[owner[i]];
    const auto& w = weights[i];
    cov[i] = 1.f;
    for (int k = 0; k < 3; ++k) {
      const Point3& s = src[t[k]];
      const Point3& m = src[mirror[t[k]]];
      dir[3 * i] += w[k] * s.x, dir[3 * i + 1] += w[k] * s.y, dir[3 * i + 2] += w[k] * s.z;
      mir[3 * i] += w[k] * m.x, mir[3 * i + 1] += w[k] * m.y, mir[3 * i + 2] += w[k] * m.z;
    }
  }
}

Correspondence mesh_correspondence(std::span<const Point3> dst, std::span<const Point3> src,
                                   std::span<const int> mirror, const Triangles& triangles, int height, int width) {
  Correspondence out;
  out.covered = at::empty({height, width}, at::kFloat);
  out.pairs = at::empty({2, height, width, 3}, at::kFloat);
  out.direct = out.pairs.select(0, 0);
  out.mirrored = out.pairs.select(0, 1);
  mesh_correspondence_into(dst, src, mirror, triangles, height, width, out.covered.data_ptr<float>(),
                           out.direct.data_ptr<float>(), out.mirrored.data_ptr<float>());
  return out;
}

}  // namespace visage::swap

namespace visage::swap {

namespace {

// The pixel box scan_triangle visits, or false for a back-facing,
// degenerate or off-grid triangle.
bool triangle_box(Point3 a, Point3 b, Point3 c, int height, int width, int box[4], float& area) {
  area = signed_area({a.x, a.y}, {b.x, b.y}, {c.x, c.y});
  if (area <= 1e-6f) return false;
  box[0] = std::max(0, static_cast<int>(std::floor(std::min({a.x, b.x, c.x}) - 0.5f)));
  box[1] = std::min(width - 1, static_cast<int>(std::ceil(std::max({a.x, b.x, c.x}) - 0.5f)));
  box[2] = std::max(0, static_cast<int>(std::floor(std::min({a.y, b.y, c.y}) - 0.5f)));
  box[3] = std::min(height - 1, static_cast<int>(std::ceil(std::max({a.y, b.y, c.y}) - 0.5f)));
  return box[1] >= box[0] && box[3] >= box[2];
}

}  // namespace

TriangleTables triangle_tables(std::span<const Point3> dst, std::span<const Point3> src, std::span<const int> mirror,
                               const Triangles& triangles, int height, int width) {
  TriangleTables t;
  t.geometry.reserve(triangles.size() * TriangleTables::kGeometry);
  t.sources.reserve(triangles.size() * TriangleTables::kSources);
  t.first.reserve(triangles.size());
  for (const auto& tri : triangles) {
    Point3 a = dst[tri[0]], b = dst[tri[1]], c = dst[tri[2]];
    int box[4];
    float area;
    if (!triangle_box(a, b, c, height, width, box, area)) continue;
    const int64_t count = int64_t{box[1] - box[0] + 1} * (box[3] - box[2] + 1);
    if (t.candidates + count > std::numeric_limits<int32_t>::max()) {
      throw std::invalid_argument("mesh correspondence: too many pixels for 32-bit candidate numbers");
    }
    t.first.push_back(static_cast<int32_t>(t.candidates));
    t.candidates += count;
    // Relative to the box's corner the affine functions' terms stay small
    // (a few box widths), so float evaluation keeps ~1e-6 of a weight.
    const double x0 = box[0], y0 = box[2];
    const double ax = a.x - x0, ay = a.y - y0, bx = b.x - x0, by = b.y - y0, cx = c.x - x0, cy = c.y - y0;
    const double a2 = (bx - ax) * (cy - ay) - (cx - ax) * (by - ay);  // twice the area
    // Weights of a, b, c as (u coefficient, v coefficient, constant).
    const double w0[3] = {(by - cy) / a2, (cx - bx) / a2, (bx * cy - cx * by) / a2};
    const double w1[3] = {(cy - ay) / a2, (ax - cx) / a2, (cx * ay - ax * cy) / a2};
    const double w2[3] = {-w0[0] - w1[0], -w0[1] - w1[1], 1.0 - w0[2] - w1[2]};
    const double* w[3] = {w0, w1, w2};
    auto affine = [&](double qa, double qb, double qc, int term) {
      return static_cast<float>(w0[term] * qa + w1[term] * qb + w2[term] * qc);
    };
    float g[TriangleTables::kGeometry] = {float(box[0]), float(box[2]), float(box[1] - box[0] + 1)};
    for (int term = 0; term < 3; ++term) {
      for (int k = 0; k < 3; ++k) g[3 + 4 * term + k] = static_cast<float>(w[k][term]);
      g[3 + 4 * term + 3] = affine(a.z, b.z, c.z, term);
    }
    t.geometry.insert(t.geometry.end(), g, g + TriangleTables::kGeometry);
    const Point3 s[3] = {src[tri[0]], src[tri[1]], src[tri[2]]};
    const Point3 m[3] = {src[mirror[tri[0]]], src[mirror[tri[1]]], src[mirror[tri[2]]]};
    float q[TriangleTables::kSources] = {float(box[0]), float(box[2])};
    for (int term = 0; term < 3; ++term) {
      float* out = q + 2 + 6 * term;
      out[0] = affine(s[0].x, s[1].x, s[2].x, term);
      out[1] = affine(s[0].y, s[1].y, s[2].y, term);
      out[2] = affine(s[0].z, s[1].z, s[2].z, term);
      out[3] = affine(m[0].x, m[1].x, m[2].x, term);
      out[4] = affine(m[0].y, m[1].y, m[2].y, term);
      out[5] = affine(m[0].z, m[1].z, m[2].z, term);
    }
    t.sources.insert(t.sources.end(), q, q + TriangleTables::kSources);
  }
  return t;
}

Correspondence mesh_correspondence_aten(const at::Tensor& geometry, const at::Tensor& sources, const at::Tensor& first,
                                        int64_t candidates, int height, int width) {
  const auto fopts = geometry.options().dtype(at::kFloat);
  const auto lopts = fopts.dtype(at::kLong);
  const int64_t pixels = int64_t{height} * width;
  Correspondence out;
  if (candidates == 0 || geometry.size(0) == 0) {
    out.covered = at::zeros({height, width}, fopts);
    out.direct = at::zeros({height, width, 3}, fopts);
    out.mirrored = at::zeros({height, width, 3}, fopts);
    return out;
  }
  constexpr int64_t kNone = std::numeric_limits<int64_t>::max();
  // Pixel numbers are exact in float up to 2^24.
  const auto index_type = pixels < (int64_t{1} << 24) ? at::kFloat : at::kDouble;
  // 1. Every candidate: its triangle (row), pixel, weights and depth.
  at::Tensor c = at::arange(candidates, fopts.dtype(at::kInt));
  at::Tensor row = at::searchsorted(first, c, /*out_int32=*/false, /*right=*/true) - 1;
  at::Tensor g = geometry.index_select(0, row);
  at::Tensor local = (c - first.index_select(0, row)).to(at::kFloat);
  at::Tensor box_w = g.select(1, 2);
  at::Tensor ly = at::floor(local / box_w);  // exact: small integers
  at::Tensor lx = local - ly * box_w;
  at::Tensor pixel = ((g.select(1, 1) + ly).to(index_type) * width + (g.select(1, 0) + lx)).to(at::kLong);
  at::Tensor values =
      (lx + 0.5f).unsqueeze(1) * g.narrow(1, 3, 4) + (ly + 0.5f).unsqueeze(1) * g.narrow(1, 7, 4) + g.narrow(1, 11, 4);
  const float eps = -1e-4f;
  at::Tensor inside = (values.narrow(1, 0, 3) >= eps).all(1);
  at::Tensor z = values.select(1, 3).contiguous();
  // 2. The nearest per pixel: the depth's bits, made to sort as the float
  // does (negative floats' magnitude bits flipped), then the row number
  // (earlier triangle wins a tie), in one int64 key for a scatter minimum.
  at::Tensor bits = z.view(at::kInt).to(at::kLong);
  bits = at::where(bits >= 0, bits, at::rsub(bits, int64_t{-2147483649}));
  at::Tensor key = at::where(inside, bits * int64_t{4294967296} + row, at::full({}, kNone, lopts));
  at::Tensor nearest = at::full({pixels}, kNone, lopts);
  nearest.scatter_reduce_(0, pixel, key, "amin", /*include_self=*/true);
  // 3. Every pixel: its triangle's source points at the pixel centre.
  at::Tensor covered = (nearest != kNone).view({height, width, 1});
  at::Tensor owner = at::where(covered.view({pixels}), nearest.bitwise_and(int64_t{4294967295}), at::zeros({}, lopts));
  at::Tensor s = sources.index_select(0, owner).view({height, width, TriangleTables::kSources});
  at::Tensor u = at::arange(width, fopts).add_(0.5f).view({1, width, 1}) - s.narrow(2, 0, 1);
  at::Tensor v = at::arange(height, fopts).add_(0.5f).view({height, 1, 1}) - s.narrow(2, 1, 1);
  at::Tensor cov = covered.to(at::kFloat);
  at::Tensor points = (u * s.narrow(2, 2, 6) + v * s.narrow(2, 8, 6) + s.narrow(2, 14, 6)) * cov;
  out.covered = cov.view({height, width});
  out.pairs = points.view({height, width, 2, 3}).permute({2, 0, 1, 3}).contiguous();
  out.direct = out.pairs.select(0, 0);
  out.mirrored = out.pairs.select(0, 1);
  return out;
}

}  // namespace visage::swap
