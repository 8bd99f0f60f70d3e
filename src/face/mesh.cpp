#include "face/mesh.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "face/warp.hpp"

namespace visage::face {

namespace {

// Mesh vertices (MediaPipe numbering) used for the 5 points. The person's
// right eye is the image-left one on an upright face.
constexpr int left_eye_ring[] = {33, 133, 159, 145};    // outer and inner corner, upper and lower lid
constexpr int right_eye_ring[] = {263, 362, 386, 374};  // same for the other eye
constexpr int nose_tip_vertex = 1;
constexpr int mouth_left_vertex = 61, mouth_right_vertex = 291;
constexpr int left_iris_centre = 468, right_iris_centre = 473;

float sigmoid(float x) { return 1.f / (1.f + std::exp(-std::clamp(x, -80.f, 80.f))); }

Point2 mean_of(const std::vector<Point3>& mesh, std::span<const int> ids) {
  Point2 p;
  for (int i : ids) p.x += mesh[i].x, p.y += mesh[i].y;
  p.x /= ids.size(), p.y /= ids.size();
  return p;
}

}  // namespace

MeshResult run_mesh(FaceLandmarkerModel model, Session& session, const at::Tensor& rgb, const Affine& m) {
  at::Tensor input = warp_to_input(rgb, m, mesh_input_size, mesh_input_size, 1.f / 255.f, 0.f);
  std::vector<at::Tensor> outputs = session.run({input});
  at::Tensor coords, flag;
  std::vector<at::Tensor> irises, eye_contours;
  for (const auto& host : outputs_to_host(outputs)) {
    at::Tensor c = host.view({-1});
    if (c.numel() == 1404)
      coords = c;
    else if (c.numel() == 1)
      flag = c;
    else if (c.numel() == 10)
      irises.push_back(c);
    else if (c.numel() == 142)
      eye_contours.push_back(c);
  }
  if (!coords.defined() || !flag.defined()) throw Error(ErrorKind::model, "face mesh: unexpected output shapes");
  MeshResult result;
  float f = flag.item<float>();
  result.score = (f < 0.f || f > 1.f) ? sigmoid(f) : f;
  double scale = std::hypot(m[0], m[3]);
  const float* v = coords.data_ptr<float>();
  result.points.reserve(478);
  for (int i = 0; i < 468; ++i) {
    Point2 p = apply(m, {v[3 * i], v[3 * i + 1]});
    result.points.push_back({p.x, p.y, static_cast<float>(v[3 * i + 2] * scale)});
  }
  if (model == FaceLandmarkerModel::mesh_attention && irises.size() == 2) {
    // Each iris output is 5 points (centre first). Put the one nearer the
    // image-left eye first (468..472), as MediaPipe numbers them.
    auto iris_points = [&](const at::Tensor& t) {
      std::vector<Point2> pts;
      const float* d = t.data_ptr<float>();
      for (int k = 0; k < 5; ++k) pts.push_back(apply(m, {d[2 * k], d[2 * k + 1]}));
      return pts;
    };
    auto a = iris_points(irises[0]), b = iris_points(irises[1]);
    Point2 left = mean_of(result.points, left_eye_ring);
    auto dist = [](Point2 p, Point2 q) { return std::hypot(p.x - q.x, p.y - q.y); };
    if (dist(b[0], left) < dist(a[0], left)) std::swap(a, b);
    auto depth = [&](std::span<const int> ring) {
      float z = 0;
      for (int i : ring) z += result.points[i].z;
      return z / ring.size();
    };
    for (auto p : a) result.points.push_back({p.x, p.y, depth(left_eye_ring)});
    for (auto p : b) result.points.push_back({p.x, p.y, depth(right_eye_ring)});
  }
  if (model == FaceLandmarkerModel::mesh_attention && eye_contours.size() == 2) {
    // The eye outputs (71 points each: the lids, then rings up to the brow)
    // are what MediaPipe refines the mesh's eyes with. Only their lid gap is
    // kept: the mesh's own lids stay about half open on a closed eye, these
    // close. The output nearer the image-left eye is that eye's.
    std::vector<Point2> contours[2];
    for (int e = 0; e < 2; ++e) {
      const float* d = eye_contours[e].data_ptr<float>();
      for (int k = 0; k < 71; ++k) contours[e].push_back(apply(m, {d[2 * k], d[2 * k + 1]}));
    }
    const Point2 left = mean_of(result.points, left_eye_ring);
    auto dist = [](Point2 p, Point2 q) { return std::hypot(p.x - q.x, p.y - q.y); };
    if (dist(contours[1][0], left) < dist(contours[0][0], left)) std::swap(contours[0], contours[1]);
    result.eye_openness = std::array<float, 2>{lid_openness(contours[0]), lid_openness(contours[1])};
  }
  return result;
}

float lid_openness(std::span<const Point2> contour) {
  if (contour.size() < 16) return 0.f;
  auto dist = [](Point2 p, Point2 q) { return std::hypot(p.x - q.x, p.y - q.y); };
  // Five pairs across the eye (upper lid point, the lower lid point below it),
  // the corners' neighbours left out: they meet whether the eye is open or not.
  constexpr int pairs[5][2] = {{10, 2}, {11, 3}, {12, 4}, {13, 5}, {14, 6}};
  float gap = 0;
  for (const auto& [upper, lower] : pairs) gap += dist(contour[upper], contour[lower]) / 5.f;
  return gap / std::max(1e-3f, dist(contour[0], contour[8]));
}

std::array<Point2, 5> mesh_landmarks_5(const std::vector<Point3>& mesh) {
  std::array<Point2, 5> out;
  if (mesh.size() >= 478) {
    out[left_eye] = {mesh[left_iris_centre].x, mesh[left_iris_centre].y};
    out[right_eye] = {mesh[right_iris_centre].x, mesh[right_iris_centre].y};
  } else {
    out[left_eye] = mean_of(mesh, left_eye_ring);
    out[right_eye] = mean_of(mesh, right_eye_ring);
  }
  out[nose_tip] = {mesh[nose_tip_vertex].x, mesh[nose_tip_vertex].y};
  out[mouth_left] = {mesh[mouth_left_vertex].x, mesh[mouth_left_vertex].y};
  out[mouth_right] = {mesh[mouth_right_vertex].x, mesh[mouth_right_vertex].y};
  return out;
}

float roll_from_eyes(Point2 l, Point2 r) { return std::atan2(r.y - l.y, r.x - l.x); }

}  // namespace visage::face
