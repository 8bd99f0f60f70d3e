#include "swap/mesh_topology.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "face/geometry.hpp"
#include "face/mesh.hpp"

namespace visage::swap {

namespace {

Point2 canonical_xy(int i) { return {canonical_mesh[3 * i], canonical_mesh[3 * i + 1]}; }

// Bowyer-Watson: insert points one by one, re-triangulating the cavity of
// triangles whose circumcircle holds the new point. Quadratic, run once.
std::vector<std::array<int, 3>> delaunay(const std::vector<Point2>& pts) {
  struct Tri {
    int v[3];
    double cx, cy, r2;
  };
  std::vector<Point2> p = pts;
  const int n = static_cast<int>(pts.size());
  // A super-triangle far outside the points (which lie within a few units of 0).
  p.push_back({-100.f, -100.f});
  p.push_back({100.f, -100.f});
  p.push_back({0.f, 100.f});
  auto make = [&](int a, int b, int c) {
    if (signed_area(p[a], p[b], p[c]) < 0) std::swap(b, c);
    double ax = p[a].x, ay = p[a].y, bx = p[b].x, by = p[b].y, cx = p[c].x, cy = p[c].y;
    double d = 2 * (ax * (by - cy) + bx * (cy - ay) + cx * (ay - by));
    double ux =
        ((ax * ax + ay * ay) * (by - cy) + (bx * bx + by * by) * (cy - ay) + (cx * cx + cy * cy) * (ay - by)) / d;
    double uy =
        ((ax * ax + ay * ay) * (cx - bx) + (bx * bx + by * by) * (ax - cx) + (cx * cx + cy * cy) * (bx - ax)) / d;
    return Tri{{a, b, c}, ux, uy, (ax - ux) * (ax - ux) + (ay - uy) * (ay - uy)};
  };
  std::vector<Tri> tris = {make(n, n + 1, n + 2)};
  for (int i = 0; i < n; ++i) {
    std::vector<std::array<int, 2>> edges;
    std::vector<Tri> kept;
    for (const Tri& t : tris) {
      double dx = p[i].x - t.cx, dy = p[i].y - t.cy;
      if (dx * dx + dy * dy < t.r2) {
        for (int e = 0; e < 3; ++e) edges.push_back({t.v[e], t.v[(e + 1) % 3]});
      } else {
        kept.push_back(t);
      }
    }
    // The cavity's boundary: edges that belong to one removed triangle only.
    for (size_t e = 0; e < edges.size(); ++e) {
      bool shared = false;
      for (size_t f = 0; f < edges.size() && !shared; ++f)
        shared = f != e && edges[f][0] == edges[e][1] && edges[f][1] == edges[e][0];
      if (!shared) kept.push_back(make(edges[e][0], edges[e][1], i));
    }
    tris = std::move(kept);
  }
  std::vector<std::array<int, 3>> out;
  for (const Tri& t : tris)
    if (t.v[0] < n && t.v[1] < n && t.v[2] < n) out.push_back({t.v[0], t.v[1], t.v[2]});
  return out;
}

std::vector<int> vertices_inside(const std::vector<Point2>& polygon, float grow) {
  Point2 c;
  for (auto q : polygon) c.x += q.x / polygon.size(), c.y += q.y / polygon.size();
  std::vector<Point2> grown;
  for (auto q : polygon) grown.push_back({c.x + (q.x - c.x) * grow, c.y + (q.y - c.y) * grow});
  std::vector<int> inside;
  for (int i = 0; i < mesh_vertices; ++i) {
    Point2 q = canonical_xy(i);
    bool in = false;
    for (size_t a = 0, b = grown.size() - 1; a < grown.size(); b = a++)
      if ((grown[a].y > q.y) != (grown[b].y > q.y) &&
          q.x < (grown[b].x - grown[a].x) * (q.y - grown[a].y) / (grown[b].y - grown[a].y) + grown[a].x)
        in = !in;
    if (in) inside.push_back(i);
  }
  return inside;
}

MeshTopology build() {
  MeshTopology t;
  std::vector<Point2> pts;
  std::vector<Point3> mesh;
  for (int i = 0; i < mesh_vertices; ++i) {
    pts.push_back(canonical_xy(i));
    mesh.push_back({canonical_mesh[3 * i], canonical_mesh[3 * i + 1], canonical_mesh[3 * i + 2]});
  }
  t.triangles = delaunay(pts);
  for (int i = 0; i < mesh_vertices; ++i) {
    float best = std::numeric_limits<float>::max();
    for (int j = 0; j < mesh_vertices; ++j) {
      float dx = pts[j].x + pts[i].x, dy = pts[j].y - pts[i].y;
      float dz = canonical_mesh[3 * j + 2] - canonical_mesh[3 * i + 2];
      float d = dx * dx + dy * dy + dz * dz;
      if (d < best) best = d, t.mirror[i] = j;
    }
  }
  for (Point2 h : face::convex_hull(pts))
    for (int i = 0; i < mesh_vertices; ++i)
      if (pts[i].x == h.x && pts[i].y == h.y) {
        t.outline.push_back(i);
        break;
      }
  std::vector<Point2> p68 = face::mesh_landmarks_68(mesh);
  auto polygon = [&](int first, int last) { return std::vector<Point2>(p68.begin() + first, p68.begin() + last + 1); };
  t.mouth = vertices_inside(polygon(48, 59), 1.15f);
  t.left_eye = vertices_inside(polygon(36, 41), 1.5f);
  t.right_eye = vertices_inside(polygon(42, 47), 1.5f);
  return t;
}

}  // namespace

const MeshTopology& mesh_topology() {
  static const MeshTopology topology = build();
  return topology;
}

}  // namespace visage::swap
