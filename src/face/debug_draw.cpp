// draw_faces: the face debugger image (boxes, points, outline, labels).
#include <ATen/ATen.h>

#include <cmath>
#include <cstdio>

#include "face/geometry.hpp"
#include "face/warp.hpp"
#include "image/draw.hpp"

namespace visage {

namespace {

using image::Rgb;

// Tints the inside of a convex polygon (the face outline) towards `color`.
void tint_convex(at::Tensor& img, const std::vector<Point2>& hull, Rgb color, float alpha) {
  if (hull.size() < 3) return;
  const int64_t h = img.size(0), w = img.size(1);
  uint8_t* px = img.data_ptr<uint8_t>();
  Box b = face::bounding_box(hull);
  int64_t y0 = std::max<int64_t>(0, static_cast<int64_t>(b.y)),
          y1 = std::min<int64_t>(h - 1, static_cast<int64_t>(b.y + b.height));
  for (int64_t y = y0; y <= y1; ++y) {
    float yc = y + 0.5f, lo = 1e30f, hi = -1e30f;
    for (size_t i = 0; i < hull.size(); ++i) {
      Point2 a = hull[i], c = hull[(i + 1) % hull.size()];
      if ((a.y <= yc && c.y > yc) || (c.y <= yc && a.y > yc)) {
        float x = a.x + (yc - a.y) * (c.x - a.x) / (c.y - a.y);
        lo = std::min(lo, x), hi = std::max(hi, x);
      }
    }
    if (lo > hi) continue;
    int64_t xa = std::max<int64_t>(0, static_cast<int64_t>(std::ceil(lo - 0.5f)));
    int64_t xb = std::min<int64_t>(w - 1, static_cast<int64_t>(std::floor(hi - 0.5f)));
    for (int64_t x = xa; x <= xb; ++x) {
      uint8_t* p = px + (y * w + x) * 3;
      p[0] = static_cast<uint8_t>(p[0] + alpha * (color.r - p[0]));
      p[1] = static_cast<uint8_t>(p[1] + alpha * (color.g - p[1]));
      p[2] = static_cast<uint8_t>(p[2] + alpha * (color.b - p[2]));
    }
  }
}

}  // namespace

at::Tensor draw_faces(const at::Tensor& rgb, const std::vector<Face>& faces) {
  face::check_rgb(rgb);
  at::Tensor img = rgb.to(at::kCPU).contiguous().clone();
  const int64_t longest = std::max(img.size(0), img.size(1));
  const int thick = static_cast<int>(std::max<int64_t>(1, longest / 500));
  const int text_scale = static_cast<int>(std::max<int64_t>(1, longest / 600));
  const Rgb box_color{0, 255, 0}, mesh_color{255, 255, 255}, five_color{255, 0, 0}, sixty_eight_color{0, 200, 255};
  for (size_t i = 0; i < faces.size(); ++i) {
    const Face& f = faces[i];
    if (!f.mesh.empty()) {
      std::vector<Point2> flat;
      for (size_t k = 0; k < std::min<size_t>(468, f.mesh.size()); ++k) flat.push_back({f.mesh[k].x, f.mesh[k].y});
      tint_convex(img, face::convex_hull(flat), Rgb{255, 0, 255}, 0.18f);
      std::vector<image::PointF> pts;
      for (const auto& p : f.mesh) pts.push_back({p.x - 0.5f, p.y - 0.5f});
      image::draw_points(img, pts, mesh_color, 0);
    }
    std::vector<image::PointF> p68;
    for (const auto& p : f.landmarks_68) p68.push_back({p.x - 0.5f, p.y - 0.5f});
    image::draw_points(img, p68, sixty_eight_color, thick);
    std::vector<image::PointF> p5;
    for (const auto& p : f.landmarks_5) p5.push_back({p.x - 0.5f, p.y - 0.5f});
    image::draw_points(img, p5, five_color, thick + 1);
    int x0 = static_cast<int>(std::lround(f.box.x)), y0 = static_cast<int>(std::lround(f.box.y));
    int x1 = static_cast<int>(std::lround(f.box.x + f.box.width)),
        y1 = static_cast<int>(std::lround(f.box.y + f.box.height));
    image::draw_rect(img, x0, y0, x1, y1, box_color, thick);
    char label[96];
    int n =
        std::snprintf(label, sizeof label, "#%zu %.2f", i, f.landmark_score > 0 ? f.landmark_score : f.detector_score);
    if (f.age) n += std::snprintf(label + n, sizeof label - n, " %.0fy", *f.age);
    if (f.gender != Gender::unknown)
      std::snprintf(label + n, sizeof label - n, " %s", f.gender == Gender::female ? "F" : "M");
    int ty = y0 - image::text_height(label, text_scale) - 2 * thick;
    image::draw_text(img, x0, ty < 0 ? y1 + 2 * thick : ty, label, box_color, text_scale);
  }
  return img;
}

}  // namespace visage
