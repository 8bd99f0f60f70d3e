// The 468/478-point face mesh: running the network and reading points off it.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <optional>
#include <vector>

#include "face/geometry.hpp"
#include "visage/face.hpp"
#include "visage/runtime.hpp"

namespace visage::face {

constexpr int mesh_input_size = 192;

struct MeshResult {
  std::vector<Point3> points;                        // image coordinates; 468, or 478 with irises
  float score = 0;                                   // face presence, 0..1
  std::optional<std::array<float, 2>> eye_openness;  // see Face::eye_openness
};

// Runs the mesh network on the square crop that `crop_to_image` maps from
// mesh_input_size pixels onto the image.
MeshResult run_mesh(FaceLandmarkerModel model, Session& session, const at::Tensor& rgb, const Affine& crop_to_image);

// Gap between the lids over the eye's width from a 71-point eye contour of
// the attention mesh or the iris model (points 0-8: lower lid from corner to
// corner, 9-15: upper lid).
float lid_openness(std::span<const Point2> contour);

// Eyes, nose tip and mouth corners from the mesh (iris centres when present).
std::array<Point2, 5> mesh_landmarks_5(const std::vector<Point3>& mesh);

// The 68 iBUG points from the mesh.
std::vector<Point2> mesh_landmarks_68(const std::vector<Point3>& mesh);

// In-plane rotation of a face from its eye centres, radians (0 = upright).
float roll_from_eyes(Point2 left_eye, Point2 right_eye);

}  // namespace visage::face
