// Rasterising the face mesh: which triangle covers each pixel, and where the
// same surface point lies in another image of the face.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "visage/face.hpp"

namespace visage::swap {

using Triangles = std::vector<std::array<int, 3>>;

// Depth of the nearest front-facing triangle at every pixel centre of an
// height x width grid (vertices in that grid's pixel coordinates, z as in
// Face::mesh); `far_depth` where no triangle covers the pixel. float [H, W], CPU.
at::Tensor depth_map(std::span<const Point3> mesh, const Triangles& triangles, int height, int width, float far_depth);

// How squarely the nearest front-facing triangle at every pixel centre faces
// the camera: the cosine between its normal and the view axis (its image area
// over its 3-D area), 0 where no triangle covers the pixel. Texture near a
// silhouette (cosine near 0) is stretched and mixes in what lies behind the
// face. float [H, W], CPU.
at::Tensor facing_map(std::span<const Point3> mesh, const Triangles& triangles, int height, int width);

// Dense correspondence from `dst` (a mesh in an height x width grid) to the
// same surface in another image (`src`): for every pixel centre covered by a
// front-facing triangle of dst (the nearest one by z), the barycentric
// combination of that triangle's vertices in src, and again with each vertex
// replaced by its mirror partner (`mirror`), so that a point can be read from
// the other side of the face. All CPU float tensors.
struct Correspondence {
  at::Tensor covered;   // [H, W], 1 where a triangle covers the pixel
  at::Tensor direct;    // [H, W, 3]: x, y in src pixels and the src depth at that point
  at::Tensor mirrored;  // [H, W, 3]: the same from the mirrored triangle
  // [2, H, W, 3]: direct and mirrored in one tensor, where they were made
  // so (direct and mirrored are then its views); may be undefined.
  at::Tensor pairs;
};
Correspondence mesh_correspondence(std::span<const Point3> dst, std::span<const Point3> src,
                                   std::span<const int> mirror, const Triangles& triangles, int height, int width);
// The same written into host buffers of height * width (covered) and
// height * width * 3 floats (direct, mirrored), e.g. parts of one upload.
void mesh_correspondence_into(std::span<const Point3> dst, std::span<const Point3> src, std::span<const int> mirror,
                              const Triangles& triangles, int height, int width, float* covered, float* direct,
                              float* mirrored);

// mesh_correspondence with ATen ops on a device. The CPU prepares one row
// per front-facing triangle of dst (O(triangles)): its pixel bounding box
// (clipped to the grid, as the CPU's scan) and, as affine functions of the
// pixel centre relative to the box's corner (u, v), its barycentric weights,
// depth and source points. The device tests every pixel of every box (the
// "candidates", numbered box after box), keeps the nearest by z per pixel
// (ties to the earlier triangle, like the CPU's scan) and evaluates the
// source points there: about 50 ATen ops whatever the mesh's size.
struct TriangleTables {
  // x0, y0, box width; then (w0, w1, w2, z) = u * [3..7) + v * [7..11) + [11..15)
  static constexpr int kGeometry = 15;
  // x0, y0; then (direct xyz, mirrored xyz) = u * [2..8) + v * [8..14) + [14..20)
  static constexpr int kSources = 20;
  std::vector<float> geometry;  // [T, kGeometry]
  std::vector<float> sources;   // [T, kSources]
  std::vector<int32_t> first;   // [T]: each triangle's first candidate
  int64_t candidates = 0;
  int64_t rows() const { return static_cast<int64_t>(first.size()); }
};
TriangleTables triangle_tables(std::span<const Point3> dst, std::span<const Point3> src, std::span<const int> mirror,
                               const Triangles& triangles, int height, int width);
// The tables on the device (geometry and sources float, first int32, all
// contiguous); the result's tensors are contiguous on that device and match
// mesh_correspondence up to float rounding (SwapRasters tests: the owner
// triangle differs only for pixel centres on a shared edge).
Correspondence mesh_correspondence_aten(const at::Tensor& geometry, const at::Tensor& sources, const at::Tensor& first,
                                        int64_t candidates, int height, int width);

}  // namespace visage::swap
