#include "image/draw.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "visage/error.hpp"

namespace visage::image {
namespace {

// 5x7 glyphs for printable ASCII (32..126): one byte per row, top row first,
// bit 4 is the leftmost column.
constexpr int kGlyphWidth = 5, kGlyphHeight = 7;
constexpr int kAdvance = kGlyphWidth + 1, kLineHeight = kGlyphHeight + 1;
constexpr uint8_t kFont[95][kGlyphHeight] = {
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},  // ' '
    {0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04},  // '!'
    {0x0A, 0x0A, 0x0A, 0x00, 0x00, 0x00, 0x00},  // '"'
    {0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A},  // '#'
    {0x04, 0x0F, 0x14, 0x0E, 0x05, 0x1E, 0x04},  // '$'
    {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03},  // '%'
    {0x0C, 0x12, 0x14, 0x08, 0x15, 0x12, 0x0D},  // '&'
    {0x04, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00},  // "'"
    {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02},  // '('
    {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08},  // ')'
    {0x00, 0x04, 0x15, 0x0E, 0x15, 0x04, 0x00},  // '*'
    {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00},  // '+'
    {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08},  // ','
    {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00},  // '-'
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C},  // '.'
    {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00},  // '/'
    {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E},  // '0'
    {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E},  // '1'
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F},  // '2'
    {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E},  // '3'
    {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02},  // '4'
    {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E},  // '5'
    {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E},  // '6'
    {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08},  // '7'
    {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E},  // '8'
    {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C},  // '9'
    {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00},  // ':'
    {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x04, 0x08},  // ';'
    {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02},  // '<'
    {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00},  // '='
    {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08},  // '>'
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04},  // '?'
    {0x0E, 0x11, 0x01, 0x0D, 0x15, 0x15, 0x0E},  // '@'
    {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11},  // 'A'
    {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E},  // 'B'
    {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E},  // 'C'
    {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C},  // 'D'
    {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F},  // 'E'
    {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10},  // 'F'
    {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F},  // 'G'
    {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11},  // 'H'
    {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E},  // 'I'
    {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C},  // 'J'
    {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11},  // 'K'
    {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F},  // 'L'
    {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11},  // 'M'
    {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11},  // 'N'
    {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E},  // 'O'
    {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10},  // 'P'
    {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D},  // 'Q'
    {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11},  // 'R'
    {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E},  // 'S'
    {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04},  // 'T'
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E},  // 'U'
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04},  // 'V'
    {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A},  // 'W'
    {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11},  // 'X'
    {0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04},  // 'Y'
    {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F},  // 'Z'
    {0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E},  // '['
    {0x00, 0x10, 0x08, 0x04, 0x02, 0x01, 0x00},  // backslash
    {0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E},  // ']'
    {0x04, 0x0A, 0x11, 0x00, 0x00, 0x00, 0x00},  // '^'
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F},  // '_'
    {0x08, 0x04, 0x02, 0x00, 0x00, 0x00, 0x00},  // '`'
    {0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F},  // 'a'
    {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1E},  // 'b'
    {0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E},  // 'c'
    {0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F},  // 'd'
    {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E},  // 'e'
    {0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08},  // 'f'
    {0x00, 0x0F, 0x11, 0x11, 0x0F, 0x01, 0x0E},  // 'g'
    {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11},  // 'h'
    {0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E},  // 'i'
    {0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0C},  // 'j'
    {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12},  // 'k'
    {0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E},  // 'l'
    {0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11},  // 'm'
    {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11},  // 'n'
    {0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E},  // 'o'
    {0x00, 0x00, 0x1E, 0x11, 0x1E, 0x10, 0x10},  // 'p'
    {0x00, 0x00, 0x0D, 0x13, 0x0F, 0x01, 0x01},  // 'q'
    {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10},  // 'r'
    {0x00, 0x00, 0x0E, 0x10, 0x0E, 0x01, 0x1E},  // 's'
    {0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06},  // 't'
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D},  // 'u'
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04},  // 'v'
    {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0A},  // 'w'
    {0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11},  // 'x'
    {0x00, 0x00, 0x11, 0x11, 0x0F, 0x01, 0x0E},  // 'y'
    {0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F},  // 'z'
    {0x02, 0x04, 0x04, 0x08, 0x04, 0x04, 0x02},  // '{'
    {0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04},  // '|'
    {0x08, 0x04, 0x04, 0x02, 0x04, 0x04, 0x08},  // '}'
    {0x00, 0x00, 0x08, 0x15, 0x02, 0x00, 0x00},  // '~'
};

// Keeps coordinate arithmetic far from integer overflow; anything this far
// out is off every image anyway.
constexpr double kCoordinateLimit = 1 << 30;

class Canvas {
 public:
  explicit Canvas(at::Tensor& img) {
    if (!img.defined() || !img.device().is_cpu() || img.scalar_type() != at::kByte || img.dim() != 3 ||
        img.size(2) != 3 || !img.is_contiguous())
      throw Error(ErrorKind::bad_input, "drawing needs a contiguous [H, W, 3] uint8 CPU image");
    data_ = img.data_ptr<uint8_t>();
    height_ = img.size(0);
    width_ = img.size(1);
  }

  int64_t width() const { return width_; }
  int64_t height() const { return height_; }

  // Fills x0..x1, y0..y1 (inclusive), clipped.
  void fill_rect(int64_t x0, int64_t y0, int64_t x1, int64_t y1, Rgb color) {
    x0 = std::max<int64_t>(x0, 0), y0 = std::max<int64_t>(y0, 0);
    x1 = std::min(x1, width_ - 1), y1 = std::min(y1, height_ - 1);
    for (int64_t y = y0; y <= y1; ++y) {
      uint8_t* p = data_ + (y * width_ + x0) * 3;
      for (int64_t x = x0; x <= x1; ++x, p += 3) p[0] = color.r, p[1] = color.g, p[2] = color.b;
    }
  }

  void put(int64_t x, int64_t y, Rgb color) {
    if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
    uint8_t* p = data_ + (y * width_ + x) * 3;
    p[0] = color.r, p[1] = color.g, p[2] = color.b;
  }

 private:
  uint8_t* data_ = nullptr;
  int64_t width_ = 0, height_ = 0;
};

// Largest x >= 0 with x * x <= v, or -1 when v < 0.
int64_t floor_sqrt(double v) {
  if (v < 0) return -1;
  auto x = int64_t(std::sqrt(v));
  while (x > 0 && double(x) * double(x) > v) --x;
  while (double(x + 1) * double(x + 1) <= v) ++x;
  return x;
}

// Pixels of the circle band inner < distance <= outer around (cx, cy), row by
// row over the visible rows only (inner < 0: a disc).
void fill_ring(Canvas& canvas, int64_t cx, int64_t cy, double inner, double outer, Rgb color) {
  if (outer < 0) return;
  const double outer2 = outer * outer, inner2 = inner >= 0 ? inner * inner : -1;
  const auto reach = int64_t(std::floor(outer));
  const int64_t y_begin = std::max<int64_t>(cy - reach, 0), y_end = std::min(cy + reach, canvas.height() - 1);
  for (int64_t y = y_begin; y <= y_end; ++y) {
    const double dy2 = double(y - cy) * double(y - cy);
    const int64_t xo = floor_sqrt(outer2 - dy2);
    if (xo < 0) continue;
    const int64_t xi = floor_sqrt(inner2 - dy2);  // |dx| <= xi is inside the hole
    if (xi < 0) {
      canvas.fill_rect(cx - xo, y, cx + xo, y, color);
    } else {
      canvas.fill_rect(cx - xo, y, cx - xi - 1, y, color);
      canvas.fill_rect(cx + xi + 1, y, cx + xo, y, color);
    }
  }
}

// The pen of a thick line: a rounded square of thickness x thickness pixels.
std::vector<std::array<int, 2>> pen_offsets(int thickness) {
  std::vector<std::array<int, 2>> offsets;
  const int lo = -(thickness - 1) / 2, hi = lo + thickness - 1;
  const double centre = (lo + hi) / 2.0, radius2 = thickness * thickness / 4.0;
  for (int dy = lo; dy <= hi; ++dy)
    for (int dx = lo; dx <= hi; ++dx)
      if ((dx - centre) * (dx - centre) + (dy - centre) * (dy - centre) <= radius2) offsets.push_back({dx, dy});
  return offsets;
}

// Liang-Barsky: clips the segment to [lo, hi] in both axes; false when nothing
// of it is inside.
bool clip_segment(double& x0, double& y0, double& x1, double& y1, double x_lo, double y_lo, double x_hi, double y_hi) {
  const double dx = x1 - x0, dy = y1 - y0;
  double t0 = 0, t1 = 1;
  const double p[4] = {-dx, dx, -dy, dy};
  const double q[4] = {x0 - x_lo, x_hi - x0, y0 - y_lo, y_hi - y0};
  for (int i = 0; i < 4; ++i) {
    if (p[i] == 0) {
      if (q[i] < 0) return false;
      continue;
    }
    const double t = q[i] / p[i];
    if (p[i] < 0) {
      t0 = std::max(t0, t);
    } else {
      t1 = std::min(t1, t);
    }
    if (t0 > t1) return false;
  }
  x1 = x0 + t1 * dx, y1 = y0 + t1 * dy;
  x0 = x0 + t0 * dx, y0 = y0 + t0 * dy;
  return true;
}

void line(Canvas& canvas, double fx0, double fy0, double fx1, double fy1, Rgb color, int thickness) {
  thickness = std::max(thickness, 1);
  const double margin = thickness;
  if (!clip_segment(fx0, fy0, fx1, fy1, -margin, -margin, double(canvas.width() - 1) + margin,
                    double(canvas.height() - 1) + margin))
    return;
  int64_t x = std::llround(fx0), y = std::llround(fy0);
  const int64_t x1 = std::llround(fx1), y1 = std::llround(fy1);
  const int64_t dx = std::abs(x1 - x), dy = -std::abs(y1 - y);
  const int64_t sx = x < x1 ? 1 : -1, sy = y < y1 ? 1 : -1;
  const std::vector<std::array<int, 2>> pen =
      thickness > 1 ? pen_offsets(thickness) : std::vector<std::array<int, 2>>{};
  int64_t error = dx + dy;
  while (true) {
    if (pen.empty()) {
      canvas.put(x, y, color);
    } else {
      for (const auto& [ox, oy] : pen) canvas.put(x + ox, y + oy, color);
    }
    if (x == x1 && y == y1) break;
    const int64_t e2 = 2 * error;
    if (e2 >= dy) error += dy, x += sx;
    if (e2 <= dx) error += dx, y += sy;
  }
}

bool usable(PointF p) {
  return std::isfinite(p.x) && std::isfinite(p.y) && std::abs(p.x) < kCoordinateLimit &&
         std::abs(p.y) < kCoordinateLimit;
}

}  // namespace

void draw_line(at::Tensor& img, int x0, int y0, int x1, int y1, Rgb color, int thickness) {
  Canvas canvas(img);
  line(canvas, x0, y0, x1, y1, color, thickness);
}

void draw_rect(at::Tensor& img, int x0, int y0, int x1, int y1, Rgb color, int thickness, bool filled) {
  Canvas canvas(img);
  int64_t left = std::min(x0, x1), right = std::max(x0, x1), top = std::min(y0, y1), bottom = std::max(y0, y1);
  const int64_t t = std::max(thickness, 1);
  if (filled || 2 * t >= right - left + 1 || 2 * t >= bottom - top + 1) {
    canvas.fill_rect(left, top, right, bottom, color);
    return;
  }
  canvas.fill_rect(left, top, right, top + t - 1, color);
  canvas.fill_rect(left, bottom - t + 1, right, bottom, color);
  canvas.fill_rect(left, top + t, left + t - 1, bottom - t, color);
  canvas.fill_rect(right - t + 1, top + t, right, bottom - t, color);
}

void draw_circle(at::Tensor& img, int cx, int cy, int radius, Rgb color, int thickness, bool filled) {
  Canvas canvas(img);
  if (radius < 0) return;
  const double half = std::max(thickness, 1) / 2.0;
  if (filled) {
    fill_ring(canvas, cx, cy, -1, radius + 0.5, color);
  } else {
    fill_ring(canvas, cx, cy, radius - half, radius + half, color);
  }
}

void draw_points(at::Tensor& img, std::span<const PointF> points, Rgb color, int radius) {
  Canvas canvas(img);
  for (const PointF& p : points) {
    if (!usable(p)) continue;
    fill_ring(canvas, std::llround(p.x), std::llround(p.y), -1, std::max(radius, 0) + 0.5, color);
  }
}

void draw_points(at::Tensor& img, const at::Tensor& points, Rgb color, int radius) {
  if (!points.defined() || points.dim() != 2 || points.size(1) < 2)
    throw Error(ErrorKind::bad_input, "draw_points needs an [N, 2] tensor of x, y");
  const at::Tensor xy = points.slice(1, 0, 2).to(at::kCPU, at::kFloat).contiguous();
  const auto* data = reinterpret_cast<const PointF*>(xy.data_ptr<float>());
  draw_points(img, std::span<const PointF>(data, size_t(xy.size(0))), color, radius);
}

void draw_polyline(at::Tensor& img, std::span<const PointF> points, Rgb color, int thickness, bool closed) {
  Canvas canvas(img);
  const size_t n = points.size();
  const size_t segments = closed && n > 2 ? n : (n > 0 ? n - 1 : 0);
  for (size_t i = 0; i < segments; ++i) {
    const PointF a = points[i], b = points[(i + 1) % n];
    if (!usable(a) || !usable(b)) continue;
    line(canvas, std::round(a.x), std::round(a.y), std::round(b.x), std::round(b.y), color, thickness);
  }
  if (n == 1 && usable(points[0])) line(canvas, points[0].x, points[0].y, points[0].x, points[0].y, color, thickness);
}

void draw_text(at::Tensor& img, int x, int y, std::string_view text, Rgb color, int scale) {
  Canvas canvas(img);
  const int64_t s = std::max(scale, 1);
  int64_t pen_x = x, pen_y = y;
  for (const char ch : text) {
    if (ch == '\n') {
      pen_x = x;
      pen_y += kLineHeight * s;
      continue;
    }
    const int code = static_cast<unsigned char>(ch);
    const uint8_t* glyph = kFont[(code >= 32 && code <= 126 ? code : '?') - 32];
    for (int row = 0; row < kGlyphHeight; ++row)
      for (int column = 0; column < kGlyphWidth; ++column)
        if (glyph[row] >> (kGlyphWidth - 1 - column) & 1) {
          const int64_t px = pen_x + column * s, py = pen_y + row * s;
          canvas.fill_rect(px, py, px + s - 1, py + s - 1, color);
        }
    pen_x += kAdvance * s;
  }
}

int text_width(std::string_view text, int scale) {
  const int s = std::max(scale, 1);
  size_t longest = 0, current = 0;
  for (const char ch : text) {
    current = ch == '\n' ? 0 : current + 1;
    longest = std::max(longest, current);
  }
  return longest ? int(longest) * kAdvance * s - s : 0;
}

int text_height(std::string_view text, int scale) {
  if (text.empty()) return 0;
  const int s = std::max(scale, 1);
  const auto lines = int(std::count(text.begin(), text.end(), '\n')) + 1;
  return lines * kLineHeight * s - s;
}

}  // namespace visage::image
