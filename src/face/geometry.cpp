#include "face/geometry.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace visage::face {

Affine identity_affine() { return {1, 0, 0, 0, 1, 0}; }

Affine compose(const Affine& a, const Affine& b) {
  return {a[0] * b[0] + a[1] * b[3], a[0] * b[1] + a[1] * b[4], a[0] * b[2] + a[1] * b[5] + a[2],
          a[3] * b[0] + a[4] * b[3], a[3] * b[1] + a[4] * b[4], a[3] * b[2] + a[4] * b[5] + a[5]};
}

Affine invert(const Affine& m) {
  double det = m[0] * m[4] - m[1] * m[3];
  if (std::abs(det) < 1e-12) return identity_affine();
  double ia = m[4] / det, ib = -m[1] / det, id = -m[3] / det, ie = m[0] / det;
  return {ia, ib, -(ia * m[2] + ib * m[5]), id, ie, -(id * m[2] + ie * m[5])};
}

Point2 apply(const Affine& m, Point2 p) {
  return {static_cast<float>(m[0] * p.x + m[1] * p.y + m[2]), static_cast<float>(m[3] * p.x + m[4] * p.y + m[5])};
}

Affine crop_to_image(Point2 centre, float side, float angle_rad, int size) {
  double s = static_cast<double>(side) / size;
  double c = std::cos(angle_rad) * s, n = std::sin(angle_rad) * s;
  double half = size / 2.0;
  // p_image = centre + R * s * (p_crop - half)
  return {c, -n, centre.x - c * half + n * half, n, c, centre.y - n * half - c * half};
}

Affine fit_similarity(std::span<const Point2> src, std::span<const Point2> dst) {
  size_t n = std::min(src.size(), dst.size());
  if (n == 0) return identity_affine();
  double msx = 0, msy = 0, mdx = 0, mdy = 0;
  for (size_t i = 0; i < n; ++i) {
    msx += src[i].x, msy += src[i].y, mdx += dst[i].x, mdy += dst[i].y;
  }
  msx /= n, msy /= n, mdx /= n, mdy /= n;
  // For a 2D similarity the Umeyama solution reduces to a closed form:
  // [a -b; b a] minimising sum |dst - (R s src + t)|^2.
  double sxx = 0, sab = 0, var = 0;
  for (size_t i = 0; i < n; ++i) {
    double sx = src[i].x - msx, sy = src[i].y - msy, dx = dst[i].x - mdx, dy = dst[i].y - mdy;
    sxx += sx * dx + sy * dy;
    sab += sx * dy - sy * dx;
    var += sx * sx + sy * sy;
  }
  if (var < 1e-12) return identity_affine();
  double a = sxx / var, b = sab / var;
  return {a, -b, mdx - (a * msx - b * msy), b, a, mdy - (b * msx + a * msy)};
}

float iou(const Box& a, const Box& b) {
  float x0 = std::max(a.x, b.x), y0 = std::max(a.y, b.y);
  float x1 = std::min(a.x + a.width, b.x + b.width), y1 = std::min(a.y + a.height, b.y + b.height);
  float inter = std::max(0.f, x1 - x0) * std::max(0.f, y1 - y0);
  float uni = a.area() + b.area() - inter;
  return uni > 0 ? inter / uni : 0.f;
}

float overlap(const Box& a, const Box& b) {
  float x0 = std::max(a.x, b.x), y0 = std::max(a.y, b.y);
  float x1 = std::min(a.x + a.width, b.x + b.width), y1 = std::min(a.y + a.height, b.y + b.height);
  float inter = std::max(0.f, x1 - x0) * std::max(0.f, y1 - y0);
  float smaller = std::min(a.area(), b.area());
  return smaller > 0 ? inter / smaller : 0.f;
}

std::vector<size_t> non_max_suppression(std::span<const Box> boxes, std::span<const float> scores,
                                        float iou_threshold) {
  std::vector<size_t> order(boxes.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t i, size_t j) { return scores[i] > scores[j]; });
  std::vector<size_t> kept;
  for (size_t i : order) {
    bool overlaps = false;
    for (size_t k : kept) {
      if (iou(boxes[i], boxes[k]) > iou_threshold) {
        overlaps = true;
        break;
      }
    }
    if (!overlaps) kept.push_back(i);
  }
  return kept;
}

std::vector<Point2> convex_hull(std::vector<Point2> p) {
  if (p.size() < 3) return p;
  std::sort(p.begin(), p.end(), [](Point2 a, Point2 b) { return a.x < b.x || (a.x == b.x && a.y < b.y); });
  auto cross = [](Point2 o, Point2 a, Point2 b) { return (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x); };
  std::vector<Point2> hull(2 * p.size());
  size_t k = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    while (k >= 2 && cross(hull[k - 2], hull[k - 1], p[i]) <= 0) --k;
    hull[k++] = p[i];
  }
  for (size_t i = p.size() - 1, t = k + 1; i > 0; --i) {
    while (k >= t && cross(hull[k - 2], hull[k - 1], p[i - 1]) <= 0) --k;
    hull[k++] = p[i - 1];
  }
  hull.resize(k - 1);
  return hull;
}

Box bounding_box(std::span<const Point2> points) {
  if (points.empty()) return {};
  float x0 = points[0].x, y0 = points[0].y, x1 = x0, y1 = y0;
  for (const auto& p : points) {
    x0 = std::min(x0, p.x), y0 = std::min(y0, p.y), x1 = std::max(x1, p.x), y1 = std::max(y1, p.y);
  }
  return {x0, y0, x1 - x0, y1 - y0};
}

}  // namespace visage::face
