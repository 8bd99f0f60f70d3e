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
  out.direct = at::empty({height, width, 3}, at::kFloat);
  out.mirrored = at::empty({height, width, 3}, at::kFloat);
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

// signed_area(p, q, r) of face.hpp points given as tensors.
at::Tensor signed_area(const at::Tensor& px, const at::Tensor& py, const at::Tensor& qx, const at::Tensor& qy,
                       const at::Tensor& rx, const at::Tensor& ry) {
  return 0.5f * ((qx - px) * (ry - py) - (rx - px) * (qy - py));
}

// Barycentric weights of pixel centres (px, py) in the triangles of
// `geometry` rows [N, kGeometry], in the CPU scan's arithmetic.
std::array<at::Tensor, 3> barycentric(const at::Tensor& g, const at::Tensor& px, const at::Tensor& py) {
  auto col = [&](int k) { return g.select(1, k); };
  const at::Tensor ax = col(3), ay = col(4), bx = col(6), by = col(7), cx = col(9), cy = col(10), area = col(12);
  at::Tensor w0 = signed_area(px, py, bx, by, cx, cy) / area;
  at::Tensor w1 = signed_area(ax, ay, px, py, cx, cy) / area;
  at::Tensor w2 = (1.f - w0) - w1;
  return {w0, w1, w2};
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
    const float g[TriangleTables::kGeometry] = {
        float(box[0]), float(box[2]), float(box[1] - box[0] + 1), a.x, a.y, a.z, b.x, b.y, b.z, c.x, c.y, c.z, area};
    t.geometry.insert(t.geometry.end(), g, g + TriangleTables::kGeometry);
    for (int k = 0; k < 3; ++k) {
      const Point3& s = src[tri[k]];
      const Point3& m = src[mirror[tri[k]]];
      const float v[6] = {s.x, s.y, s.z, m.x, m.y, m.z};
      t.sources.insert(t.sources.end(), v, v + 6);
    }
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
  // 1. Every candidate: its triangle, pixel, weights and depth.
  at::Tensor c = at::arange(candidates, fopts.dtype(at::kInt));
  at::Tensor row = at::searchsorted(first, c, /*out_int32=*/false, /*right=*/true) - 1;
  at::Tensor g = geometry.index_select(0, row);
  at::Tensor local = (c - first.index_select(0, row)).to(at::kLong);
  at::Tensor box_w = g.select(1, 2).to(at::kLong);
  at::Tensor x = g.select(1, 0).to(at::kLong) + at::remainder(local, box_w);
  at::Tensor y = g.select(1, 1).to(at::kLong) + at::div(local, box_w, "trunc");
  auto [w0, w1, w2] = barycentric(g, x.to(at::kFloat) + 0.5f, y.to(at::kFloat) + 0.5f);
  const float eps = -1e-4f;
  at::Tensor inside = (w0 >= eps).logical_and_(w1 >= eps).logical_and_(w2 >= eps);
  at::Tensor z = (w0 * g.select(1, 5) + w1 * g.select(1, 8) + w2 * g.select(1, 11)).contiguous();
  // 2. The nearest per pixel: the depth's bits, made to sort as the float
  // does (negative floats' magnitude bits flipped), then the row number
  // (earlier triangle wins a tie), in one int64 key for a scatter minimum.
  at::Tensor bits = z.view(at::kInt).to(at::kLong);
  bits = at::where(bits >= 0, bits, int64_t{-2147483649} - bits);
  at::Tensor key = at::where(inside, bits * int64_t{4294967296} + row, at::full({}, kNone, lopts));
  at::Tensor nearest = at::full({pixels}, kNone, lopts);
  nearest.scatter_reduce_(0, y * width + x, key, "amin", /*include_self=*/true);
  // 3. Every pixel: its triangle's weights at the pixel centre, and the
  // source points they interpolate.
  at::Tensor covered = nearest != kNone;
  at::Tensor owner = at::where(covered, nearest.bitwise_and(int64_t{4294967295}), at::zeros({}, lopts));
  at::Tensor gp = geometry.index_select(0, owner);
  at::Tensor i = at::arange(pixels, lopts);
  auto [v0, v1, v2] =
      barycentric(gp, at::remainder(i, width).to(at::kFloat) + 0.5f, at::div(i, width, "trunc").to(at::kFloat) + 0.5f);
  at::Tensor s = sources.index_select(0, owner).view({pixels, 3, 6});
  at::Tensor cov = covered.to(at::kFloat);
  at::Tensor points =
      (v0.unsqueeze(1) * s.select(1, 0) + v1.unsqueeze(1) * s.select(1, 1) + v2.unsqueeze(1) * s.select(1, 2)) *
      cov.unsqueeze(1);
  out.covered = cov.view({height, width});
  out.direct = points.narrow(1, 0, 3).reshape({height, width, 3}).contiguous();
  out.mirrored = points.narrow(1, 3, 3).reshape({height, width, 3}).contiguous();
  return out;
}

}  // namespace visage::swap
