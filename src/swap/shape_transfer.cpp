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

#include <algorithm>
#include <array>
#include <cmath>

#include "swap/mesh_topology.hpp"

namespace visage::swap {

namespace {

// The shape steps run on the host in plain doubles: as ATen calls on
// [468, 3] tensors they were ~90 calls and 0.7 ms a face, a host cost that
// on a device comes before any of the face's kernels can start.
using Vec3 = std::array<double, 3>;
using Mat3 = std::array<Vec3, 3>;
using Cloud = std::vector<Vec3>;

Cloud cloud_of(std::span<const Point3> mesh) {
  Cloud c(mesh.size());
  for (size_t i = 0; i < mesh.size(); ++i) c[i] = {mesh[i].x, mesh[i].y, mesh[i].z};
  return c;
}

std::vector<Point3> points_of(const Cloud& c) {
  std::vector<Point3> out(c.size());
  for (size_t i = 0; i < c.size(); ++i)
    out[i] = {static_cast<float>(c[i][0]), static_cast<float>(c[i][1]), static_cast<float>(c[i][2])};
  return out;
}

Vec3 mean_of(const Cloud& c) {
  Vec3 m{0, 0, 0};
  for (const Vec3& p : c)
    for (int k = 0; k < 3; ++k) m[k] += p[k];
  for (double& v : m) v /= static_cast<double>(std::max<size_t>(1, c.size()));
  return m;
}

// `c` minus `m`, divided by the result's RMS distance from the origin (set
// into `rms` when given; 1 for a degenerate set).
Cloud centred_unit(const Cloud& c, const Vec3& m, double* rms = nullptr) {
  Cloud out(c.size());
  double sum = 0;
  for (size_t i = 0; i < c.size(); ++i)
    for (int k = 0; k < 3; ++k) {
      out[i][k] = c[i][k] - m[k];
      sum += out[i][k] * out[i][k];
    }
  double scale = std::sqrt(sum / static_cast<double>(std::max<size_t>(1, c.size())));
  if (!(scale > 0)) scale = 1;
  for (Vec3& p : out)
    for (double& v : p) v /= scale;
  if (rms) *rms = scale;
  return out;
}

// Rotation R (row vectors: from R ~ to) without reflection minimising
// |from R - to| for centred point sets: Horn's closed form (the unit
// quaternion is the eigenvector of the largest eigenvalue of a symmetric 4x4
// matrix, found by Jacobi rotations); an SVD fit gives the same rotation.
Mat3 rotation_between(const Cloud& from, const Cloud& to) {
  double s[3][3] = {};
  for (size_t i = 0; i < from.size(); ++i)
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 3; ++b) s[a][b] += from[i][a] * to[i][b];
  const double xx = s[0][0], xy = s[0][1], xz = s[0][2], yx = s[1][0], yy = s[1][1], yz = s[1][2], zx = s[2][0],
               zy = s[2][1], zz = s[2][2];
  double n[4][4] = {{xx + yy + zz, yz - zy, zx - xz, xy - yx},
                    {yz - zy, xx - yy - zz, xy + yx, zx + xz},
                    {zx - xz, xy + yx, -xx + yy - zz, yz + zy},
                    {xy - yx, zx + xz, yz + zy, -xx - yy + zz}};
  double v[4][4] = {{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}};
  for (int sweep = 0; sweep < 32; ++sweep) {
    double off = 0, diag = 0;
    for (int p = 0; p < 4; ++p) {
      diag += n[p][p] * n[p][p];
      for (int q = p + 1; q < 4; ++q) off += n[p][q] * n[p][q];
    }
    if (off <= 1e-30 * std::max(diag, 1e-300)) break;
    for (int p = 0; p < 3; ++p)
      for (int q = p + 1; q < 4; ++q) {
        if (n[p][q] == 0) continue;
        const double theta = (n[q][q] - n[p][p]) / (2 * n[p][q]);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), sn = t * c;
        for (int k = 0; k < 4; ++k) {  // columns p, q
          const double kp = n[k][p], kq = n[k][q];
          n[k][p] = c * kp - sn * kq, n[k][q] = sn * kp + c * kq;
        }
        for (int k = 0; k < 4; ++k) {  // rows p, q
          const double pk = n[p][k], qk = n[q][k];
          n[p][k] = c * pk - sn * qk, n[q][k] = sn * pk + c * qk;
        }
        for (int k = 0; k < 4; ++k) {
          const double kp = v[k][p], kq = v[k][q];
          v[k][p] = c * kp - sn * kq, v[k][q] = sn * kp + c * kq;
        }
      }
  }
  int best = 0;
  for (int k = 1; k < 4; ++k)
    if (n[k][k] > n[best][best]) best = k;
  double w = v[0][best], x = v[1][best], y = v[2][best], z = v[3][best];
  const double norm = std::sqrt(w * w + x * x + y * y + z * z);
  w /= norm, x /= norm, y /= norm, z /= norm;
  // The quaternion's rotation Q acts on column vectors (to ~ Q from); for
  // row vectors R is its transpose.
  const Mat3 q = {{{w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y)},
                   {2 * (x * y + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x)},
                   {2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z}}};
  Mat3 r;
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) r[a][b] = q[b][a];
  return r;
}

Vec3 times(const Vec3& p, const Mat3& r) {
  return {p[0] * r[0][0] + p[1] * r[1][0] + p[2] * r[2][0], p[0] * r[0][1] + p[1] * r[1][1] + p[2] * r[2][1],
          p[0] * r[0][2] + p[1] * r[1][2] + p[2] * r[2][2]};
}

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

// `points` (468, canonical frame) with each vertex turned by its jaw weight
// times `turn` (radians, opening the mouth when positive) about the hinge
// `hinge_y`, `hinge_z`.
Cloud turn_jaw(const Cloud& points, double turn, double hinge_y, double hinge_z) {
  const auto& weight = jaw_weights();
  Cloud out = points;
  for (int v = 0; v < mesh_vertices; ++v) {
    const double t = turn * weight[v], c = std::cos(t), s = std::sin(t);
    const double ry = points[v][1] - hinge_y, rz = points[v][2] - hinge_z;
    out[v][1] = hinge_y + ry * c - rz * s;
    out[v][2] = hinge_z + ry * s + rz * c;
  }
  return out;
}

}  // namespace

const std::vector<float>& jaw_weights() {
  static const std::vector<float> weights = make_jaw_weights();
  return weights;
}

namespace {

// `target` (a posed mesh, any frame) in the frame of `shape` (canonical,
// unit RMS), aligned on the skull alone (an open jaw would tilt and shrink
// a fit over the whole face).
Cloud target_in_shape_frame(const Cloud& s, const Cloud& t) {
  const auto& weight = jaw_weights();
  Cloud s_skull, t_skull;
  for (int v = 0; v < mesh_vertices; ++v)
    if (weight[v] < 0.5f) s_skull.push_back(s[v]), t_skull.push_back(t[v]);
  const Vec3 s_mean = mean_of(s_skull), t_mean = mean_of(t_skull);
  double s_scale = 1, t_scale = 1;
  const Mat3 r = rotation_between(centred_unit(t_skull, t_mean, &t_scale), centred_unit(s_skull, s_mean, &s_scale));
  Cloud out(mesh_vertices);
  for (int v = 0; v < mesh_vertices; ++v) {
    const Vec3 p = times({t[v][0] - t_mean[0], t[v][1] - t_mean[1], t[v][2] - t_mean[2]}, r);
    for (int k = 0; k < 3; ++k) out[v][k] = p[k] / t_scale * s_scale + s_mean[k];
  }
  return out;
}

// Brows (upper and lower edge) and each eye's corners (which stay put when
// the lids move), per side of the face.
constexpr int kBrows[2][10] = {{70, 63, 105, 66, 107, 46, 53, 52, 65, 55},
                               {300, 293, 334, 296, 336, 276, 283, 282, 295, 285}};
constexpr int kEyeCorners[2][2] = {{33, 133}, {263, 362}};
// A brow moves by at most about a third of its height above the eye
// corners (a misread mesh must not fling it).
constexpr double kMaxBrowMove = 0.12;

double smoothstep(double t) {
  t = std::clamp(t, 0.0, 1.0);
  return t * t * (3 - 2 * t);
}

// How much a vertex moves with its side's brow when the brow is raised (the
// canonical frame's y: eye corners at -0.58, brows -0.9 to -1.1, the top of
// the forehead -1.68): none from the upper lid down (the eyes move rigidly
// anyway), fully on the brow, fading out up the forehead and past the
// brow's outer end.
double brow_weight(const Point3& c) {
  const double up = smoothstep((-0.70 - c.y) / 0.20) * smoothstep((c.y + 1.60) / 0.50);
  return up * smoothstep((1.45 - std::abs(c.x)) / 0.35);
}

}  // namespace

std::vector<Point3> raise_brows_like(std::span<const Point3> shape, std::span<const Point3> target, float brow_share) {
  Cloud s = cloud_of(shape.first(mesh_vertices));
  if (brow_share == 0.f) return points_of(s);
  const Cloud t = target_in_shape_frame(s, cloud_of(target.first(mesh_vertices)));
  // Each brow's height above its eye's corners (y grows downwards).
  auto raise = [](const Cloud& m, int side) {
    double brow = 0, corners = 0;
    for (int v : kBrows[side]) brow += m[v][1];
    for (int v : kEyeCorners[side]) corners += m[v][1];
    return corners / 2 - brow / 10;
  };
  double move[2];
  for (int side = 0; side < 2; ++side)
    move[side] = std::clamp((raise(t, side) - raise(s, side)) * brow_share, -kMaxBrowMove, kMaxBrowMove);
  for (int v = 0; v < mesh_vertices; ++v) {
    const Point3 c = canonical_point(v);
    // Side 0 is the image-left brow (negative x); the midline takes both halves.
    const double left = smoothstep((0.15 - c.x) / 0.30);
    s[v][1] -= (left * move[0] + (1 - left) * move[1]) * brow_weight(c);
  }
  return points_of(s);
}

std::vector<Point3> open_jaw_like(std::span<const Point3> shape, std::span<const Point3> target, float jaw_share) {
  const auto& weight = jaw_weights();
  const Cloud s = cloud_of(shape.first(mesh_vertices));
  const Cloud target_here = target_in_shape_frame(s, cloud_of(target.first(mesh_vertices)));
  // The hinge where the canonical frame has it; `shape` is centred on its mean.
  const Point3 centre = canonical_mean();
  const double hinge_y = kHingeY - centre.y, hinge_z = kHingeZ - centre.z;
  // Gauss-Newton on the turn: the inner lips' gaps (y, z) as the target's.
  double turn = 0;
  Cloud turned = s;
  for (int iteration = 0; iteration < 3; ++iteration) {
    double num = 0, den = 0;
    for (const auto& pair : kLipPairs) {
      const int u = pair[0], l = pair[1];
      double jy = 0, jz = 0;  // d(lower - upper) / d(turn)
      for (int k = 0; k < 2; ++k) {
        const int v = k ? l : u;
        const double sign = k ? 1.0 : -1.0;
        jy += sign * weight[v] * -(turned[v][2] - hinge_z);
        jz += sign * weight[v] * (turned[v][1] - hinge_y);
      }
      const double ey = (target_here[l][1] - target_here[u][1]) - (turned[l][1] - turned[u][1]);
      const double ez = (target_here[l][2] - target_here[u][2]) - (turned[l][2] - turned[u][2]);
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
  return points_of(turn_jaw(s, turn * jaw_share, hinge_y, hinge_z));
}

namespace {

// The canonical mesh, centred on its mean.
Cloud centred_canonical() {
  Cloud canonical(mesh_vertices);
  for (int v = 0; v < mesh_vertices; ++v) {
    const Point3 p = canonical_point(v);
    canonical[v] = {p.x, p.y, p.z};
  }
  const Vec3 centre = mean_of(canonical);
  for (Vec3& p : canonical)
    for (int k = 0; k < 3; ++k) p[k] -= centre[k];
  return canonical;
}

}  // namespace

std::vector<Point3> canonical_shape(std::span<const Point3> mesh) {
  const Cloud m = cloud_of(mesh.first(mesh_vertices));
  const Cloud shape = centred_unit(m, mean_of(m));
  const Mat3 r = rotation_between(shape, centred_canonical());
  Cloud out(mesh_vertices);
  for (int v = 0; v < mesh_vertices; ++v) out[v] = times(shape[v], r);
  return points_of(out);
}

float frontalness(std::span<const Point3> mesh) {
  const Cloud m = cloud_of(mesh.first(mesh_vertices));
  return static_cast<float>(rotation_between(centred_canonical(), centred_unit(m, mean_of(m)))[2][2]);
}

std::vector<Point3> mean_shape(std::span<const std::vector<Point3>> shapes) {
  Cloud sum(mesh_vertices, Vec3{0, 0, 0});
  for (const auto& shape : shapes) {
    const Cloud c = cloud_of(std::span<const Point3>(shape).first(mesh_vertices));
    for (int v = 0; v < mesh_vertices; ++v)
      for (int k = 0; k < 3; ++k) sum[v][k] += c[v][k];
  }
  // Shapes of one frame, each centred: their mean is centred too.
  return points_of(centred_unit(sum, Vec3{0, 0, 0}));
}

std::vector<Point3> transfer_shape(std::span<const Point3> shape, std::span<const Point3> target, float weight,
                                   float jaw_share, float brow_share) {
  const auto& topo = mesh_topology();
  const Cloud t = cloud_of(target.first(mesh_vertices));
  const Cloud opened = cloud_of(raise_brows_like(open_jaw_like(shape, target, jaw_share), target, brow_share));
  const Cloud s = centred_unit(opened, mean_of(opened));
  // The shape placed onto the target mesh (3D similarity), as the target
  // mesh would be with the source's face shape.
  const Vec3 t_mean = mean_of(t);
  double scale = 1;
  const Mat3 r = rotation_between(s, centred_unit(t, t_mean, &scale));
  Cloud delta(mesh_vertices);
  for (int v = 0; v < mesh_vertices; ++v) {
    const Vec3 p = times(s[v], r);
    for (int k = 0; k < 3; ++k) delta[v][k] = (p[k] * scale + t_mean[k] - t[v][k]) * static_cast<double>(weight);
  }
  // Lips and eyes keep their own shape (expression) and move with their region.
  for (const auto* region : {&topo.mouth, &topo.left_eye, &topo.right_eye}) {
    if (region->empty()) continue;
    Vec3 mean{0, 0, 0};
    for (int v : *region)
      for (int k = 0; k < 3; ++k) mean[k] += delta[v][k];
    for (double& m : mean) m /= static_cast<double>(region->size());
    for (int v : *region) delta[v] = mean;
  }
  Cloud moved(mesh_vertices);
  for (int v = 0; v < mesh_vertices; ++v)
    for (int k = 0; k < 3; ++k) moved[v][k] = t[v][k] + delta[v][k];
  return points_of(moved);
}

}  // namespace visage::swap
