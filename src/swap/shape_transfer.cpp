// Identity shape for the mesh swapper. A face shape measured on one photo
// holds expression as well as identity: above all how far the mouth is open.
// Fitted as it is onto a target that speaks, a source with a closed mouth
// pulled the target's chin up by 0.12 of the eye distance and the lips by
// 0.06 (the lips then no longer framed the target's own mouth interior,
// which stays where it was), and the similarity fit, pulled by the jaw,
// misplaced the brows and eyes too. So the source's lower jaw is first
// turned about its hinge towards the target's opening; what remains is the
// difference in shape.
#include "swap/shape_transfer.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "swap/mesh_topology.hpp"

namespace visage::swap {

at::Tensor as_tensor(std::span<const Point3> mesh) {
  at::Tensor t = at::empty({static_cast<int64_t>(mesh.size()), 3}, at::kDouble);
  auto a = t.accessor<double, 2>();
  for (size_t i = 0; i < mesh.size(); ++i) a[i][0] = mesh[i].x, a[i][1] = mesh[i].y, a[i][2] = mesh[i].z;
  return t;
}

std::vector<Point3> as_points(const at::Tensor& t) {
  at::Tensor c = t.to(at::kDouble).contiguous();
  auto a = c.accessor<double, 2>();
  std::vector<Point3> out(c.size(0));
  for (int64_t i = 0; i < c.size(0); ++i)
    out[i] = {static_cast<float>(a[i][0]), static_cast<float>(a[i][1]), static_cast<float>(a[i][2])};
  return out;
}

// Rotation R (no reflection) minimising |from R - to| for centred point sets.
at::Tensor kabsch(const at::Tensor& from, const at::Tensor& to) {
  auto [u, s, vh] = at::linalg_svd(from.t().mm(to), false);
  at::Tensor d = at::eye(3, at::kDouble);
  if (at::linalg_det(u.mm(vh)).item<double>() < 0) d[2][2] = -1;
  return u.mm(d).mm(vh);
}

namespace {

// The jaw's hinge in the canonical frame (y down, z away from the camera):
// in front of the ears (vertices 234 / 454 lie at y -0.10, z 1.23), a little
// lower and deeper.
constexpr double kHingeY = 0.0, kHingeZ = 1.4;
// Inner-lip vertex pairs (upper, lower) about the mouth's middle: their gaps
// say how far the mouth is open.
constexpr int kLipPairs[][2] = {{13, 14}, {82, 87}, {312, 317}};
// A jaw opens by at most about 25 degrees from closed; the difference of two
// openings is bounded by that too (a misread mesh must not fold the chin).
constexpr double kMaxTurn = 0.45;

Point3 canonical_point(int v) { return {canonical_mesh[3 * v], canonical_mesh[3 * v + 1], canonical_mesh[3 * v + 2]}; }

Point3 canonical_mean() {
  double x = 0, y = 0, z = 0;
  for (int v = 0; v < mesh_vertices; ++v) {
    const Point3 p = canonical_point(v);
    x += p.x, y += p.y, z += p.z;
  }
  return {static_cast<float>(x / mesh_vertices), static_cast<float>(y / mesh_vertices),
          static_cast<float>(z / mesh_vertices)};
}

// Angle of a point about the hinge, seen from the side: 0 straight ahead of
// it, growing downwards.
double hinge_angle(double y, double z) { return std::atan2(y - kHingeY, kHingeZ - z); }

std::vector<float> make_jaw_weights() {
  auto angle = [](int v) { return hinge_angle(canonical_point(v).y, canonical_point(v).z); };
  // The mouth opening is the line from the hinge between the inner lips;
  // the upper inner lip is skull, the lower one jaw. Beside the mouth the
  // change is spread wider: the cheek's skin stretches.
  const double upper = angle(13), lower = angle(14);
  const double middle = 0.5 * (upper + lower), half = 0.5 * (lower - upper);
  std::vector<float> w(mesh_vertices);
  for (int v = 0; v < mesh_vertices; ++v) {
    const double beside = std::clamp((std::abs(canonical_point(v).x) - 0.45) / 0.6, 0.0, 1.0);
    const double band = half + 0.3 * beside;
    const double t = std::clamp((angle(v) - middle) / band * 0.5 + 0.5, 0.0, 1.0);
    w[v] = static_cast<float>(t * t * (3 - 2 * t));
  }
  return w;
}

// `points` [468, 3] (canonical frame) with each vertex turned by its jaw
// weight times `turn` (radians, opening the mouth when positive) about the
// hinge `hinge_y`, `hinge_z`.
at::Tensor turn_jaw(const at::Tensor& points, double turn, double hinge_y, double hinge_z) {
  const auto& weight = jaw_weights();
  at::Tensor out = points.clone();
  auto a = out.accessor<double, 2>();
  for (int v = 0; v < mesh_vertices; ++v) {
    const double t = turn * weight[v], c = std::cos(t), s = std::sin(t);
    const double ry = a[v][1] - hinge_y, rz = a[v][2] - hinge_z;
    a[v][1] = hinge_y + ry * c - rz * s;
    a[v][2] = hinge_z + ry * s + rz * c;
  }
  return out;
}

}  // namespace

const std::vector<float>& jaw_weights() {
  static const std::vector<float> weights = make_jaw_weights();
  return weights;
}

std::vector<Point3> open_jaw_like(std::span<const Point3> shape, std::span<const Point3> target, float jaw_share) {
  const auto& weight = jaw_weights();
  at::Tensor s = as_tensor(shape.first(mesh_vertices));
  at::Tensor t = as_tensor(target.first(mesh_vertices));
  // The target in the shape's frame, aligned on the skull alone (an open jaw
  // would tilt and shrink a fit over the whole face).
  std::vector<int64_t> skull;
  for (int v = 0; v < mesh_vertices; ++v)
    if (weight[v] < 0.5f) skull.push_back(v);
  at::Tensor ids = at::tensor(skull);
  at::Tensor s_mean = s.index_select(0, ids).mean(0, true), t_mean = t.index_select(0, ids).mean(0, true);
  at::Tensor s_skull = s.index_select(0, ids) - s_mean, t_skull = t.index_select(0, ids) - t_mean;
  const double s_scale = s_skull.pow(2).sum(1).mean().sqrt().item<double>();
  const double t_scale = t_skull.pow(2).sum(1).mean().sqrt().item<double>();
  at::Tensor r = kabsch(t_skull / t_scale, s_skull / s_scale);
  at::Tensor target_here = ((t - t_mean) / t_scale).mm(r) * s_scale + s_mean;
  // The hinge where the canonical frame has it; `shape` is centred on its mean.
  const Point3 centre = canonical_mean();
  const double hinge_y = kHingeY - centre.y, hinge_z = kHingeZ - centre.z;
  auto ta = target_here.accessor<double, 2>();
  // Gauss-Newton on the turn: the inner lips' gaps (y, z) as the target's.
  double turn = 0;
  at::Tensor turned = s;
  for (int iteration = 0; iteration < 3; ++iteration) {
    auto sa = turned.accessor<double, 2>();
    double num = 0, den = 0;
    for (const auto& pair : kLipPairs) {
      const int u = pair[0], l = pair[1];
      double jy = 0, jz = 0;  // d(lower - upper) / d(turn)
      for (int k = 0; k < 2; ++k) {
        const int v = k ? l : u;
        const double sign = k ? 1.0 : -1.0;
        jy += sign * weight[v] * -(sa[v][2] - hinge_z);
        jz += sign * weight[v] * (sa[v][1] - hinge_y);
      }
      const double ey = (ta[l][1] - ta[u][1]) - (sa[l][1] - sa[u][1]);
      const double ez = (ta[l][2] - ta[u][2]) - (sa[l][2] - sa[u][2]);
      num += ey * jy + ez * jz;
      den += jy * jy + jz * jz;
    }
    if (den < 1e-12) break;
    turn = std::clamp(turn + num / den, -kMaxTurn, kMaxTurn);
    turned = turn_jaw(s, turn, hinge_y, hinge_z);
  }
  // The lips' share: see kJawShareOfGap. On the 12 portrait pairs of bench
  // swap-quality (2026-11-26) half the gap gave an identity gain of 13.7% and
  // a worst NME of 0.040; 0.7: 12.9% / 0.038; all of it: 9.8% / 0.043 (a
  // closed-mouthed source looks less like itself on a wide-open jaw); none
  // (the shape as measured): 11.9% / 0.057.
  return as_points(turn_jaw(s, turn * jaw_share, hinge_y, hinge_z));
}

std::vector<Point3> canonical_shape(std::span<const Point3> mesh) {
  at::Tensor m = as_tensor(mesh.first(mesh_vertices));
  m = m - m.mean(0, true);
  m = m / m.pow(2).sum(1).mean().sqrt();
  at::Tensor c = at::empty({mesh_vertices, 3}, at::kDouble);
  auto a = c.accessor<double, 2>();
  for (int v = 0; v < mesh_vertices; ++v) {
    const Point3 p = canonical_point(v);
    a[v][0] = p.x, a[v][1] = p.y, a[v][2] = p.z;
  }
  return as_points(m.mm(kabsch(m, c - c.mean(0, true))));
}

std::vector<Point3> transfer_shape(std::span<const Point3> shape, std::span<const Point3> target, float weight,
                                   float jaw_share) {
  const auto& topo = mesh_topology();
  at::Tensor t = as_tensor(target.first(mesh_vertices));
  at::Tensor s = as_tensor(open_jaw_like(shape, target, jaw_share));
  s = s - s.mean(0, true);
  s = s / s.pow(2).sum(1).mean().sqrt();
  // The shape placed onto the target mesh (3D similarity), as the target
  // mesh would be with the source's face shape.
  at::Tensor t_mean = t.mean(0, true);
  at::Tensor tc = t - t_mean;
  const double scale = tc.pow(2).sum(1).mean().sqrt().item<double>();
  at::Tensor fitted = s.mm(kabsch(s, tc / scale)) * scale + t_mean;
  at::Tensor delta = (fitted - t) * static_cast<double>(weight);
  // Lips and eyes keep their own shape (expression) and move with their region.
  for (const auto* region : {&topo.mouth, &topo.left_eye, &topo.right_eye}) {
    if (region->empty()) continue;
    at::Tensor ids = at::tensor(std::vector<int64_t>(region->begin(), region->end()));
    delta.index_copy_(0, ids, delta.index_select(0, ids).mean(0, true).expand({ids.size(0), 3}).contiguous());
  }
  return as_points(t + delta);
}

}  // namespace visage::swap
