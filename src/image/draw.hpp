// Drawing on images for debug output (boxes, landmarks, labels): lines,
// rectangles, circles, points, polylines and text in a built-in 5x7 bitmap
// font. No anti-aliasing. Every primitive clips to the image: coordinates
// far outside it are fine and cost time proportional to what is visible.
//
// The image is modified in place and must be an [H, W, 3] uint8 contiguous
// CPU tensor (what read_image returns); anything else throws Error{bad_input}.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <span>
#include <string_view>

namespace visage::image {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

struct PointF {
  float x = 0, y = 0;
};

// Pixel centres are at integer coordinates; float points are rounded.
void draw_line(at::Tensor& img, int x0, int y0, int x1, int y1, Rgb color, int thickness = 1);

// The rectangle with corners (x0, y0) and (x1, y1), both inclusive; its
// outline is `thickness` pixels wide, inside the corners.
void draw_rect(at::Tensor& img, int x0, int y0, int x1, int y1, Rgb color, int thickness = 1, bool filled = false);

// A circle outline `thickness` pixels wide centred on the radius, or a disc.
void draw_circle(at::Tensor& img, int cx, int cy, int radius, Rgb color, int thickness = 1, bool filled = false);

// A filled disc of `radius` at each point (radius 0: single pixels).
void draw_points(at::Tensor& img, std::span<const PointF> points, Rgb color, int radius = 1);
// Same for a float tensor of shape [N, >=2] (x, y in its first two columns).
void draw_points(at::Tensor& img, const at::Tensor& points, Rgb color, int radius = 1);

// Segments between consecutive points; `closed` joins the last to the first.
void draw_polyline(at::Tensor& img, std::span<const PointF> points, Rgb color, int thickness = 1, bool closed = false);

// Text with its top-left corner at (x, y); each font pixel becomes a
// scale x scale block. '\n' starts a new line; characters outside printable
// ASCII draw as '?'.
void draw_text(at::Tensor& img, int x, int y, std::string_view text, Rgb color, int scale = 1);

// The size draw_text covers, for placing labels.
int text_width(std::string_view text, int scale = 1);
int text_height(std::string_view text, int scale = 1);

}  // namespace visage::image
