#include "swap/mesh_raster.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>

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
