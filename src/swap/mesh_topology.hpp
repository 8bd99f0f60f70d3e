// Fixed structure of the 468-point face mesh that the swapper relies on:
// the canonical (mean, frontal, symmetric) shape, a triangulation, each
// vertex's mirror partner, the outline, and the vertices of the parts whose
// shape is expression rather than identity (lips, eyes).
#pragma once

#include <array>
#include <vector>

#include "visage/face.hpp"

namespace visage::swap {

constexpr int mesh_vertices = 468;

// x, y, z per vertex (see canonical_mesh.cpp).
extern const std::array<float, mesh_vertices * 3> canonical_mesh;

struct MeshTopology {
  // Delaunay triangulation of the canonical mesh seen from the front, each
  // triangle ordered so that its signed_area() is positive when frontal (a
  // triangle of a posed mesh with negative area faces away from the camera).
  std::vector<std::array<int, 3>> triangles;
  // The vertex at the mirrored position across the face's midline (itself
  // for midline vertices).
  std::array<int, mesh_vertices> mirror{};
  // The outline (convex hull of the frontal canonical mesh), in order.
  std::vector<int> outline;
  // Vertices whose position is expression (mouth opening, eyelids): the
  // swapper moves them rigidly with their region rather than reshaping them.
  std::vector<int> mouth, left_eye, right_eye;
};

// Built once from canonical_mesh on first use; immutable afterwards.
const MeshTopology& mesh_topology();

// Signed area of a triangle in image coordinates.
inline float signed_area(Point2 a, Point2 b, Point2 c) {
  return 0.5f * ((b.x - a.x) * (c.y - a.y) - (c.x - a.x) * (b.y - a.y));
}

}  // namespace visage::swap
