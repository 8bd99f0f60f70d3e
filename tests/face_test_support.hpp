// Helpers the face and swap tests share: picking the main face, its mesh
// outline, point-in-polygon tests, resizing a photo.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "face/geometry.hpp"
#include "test_support.hpp"
#include "visage/face.hpp"
#include "visage/image.hpp"

namespace visage::test {

// The face with the largest box; nullptr when there is none.
inline const Face* largest_face(const std::vector<Face>& faces) {
  const Face* best = nullptr;
  for (const auto& f : faces)
    if (!best || f.box.area() > best->box.area()) best = &f;
  return best;
}

// Even-odd rule.
inline bool inside_polygon(const std::vector<Point2>& poly, float x, float y) {
  bool in = false;
  for (size_t a = 0, b = poly.size() - 1; a < poly.size(); b = a++)
    if ((poly[a].y > y) != (poly[b].y > y) &&
        x < (poly[b].x - poly[a].x) * (y - poly[a].y) / (poly[b].y - poly[a].y) + poly[a].x)
      in = !in;
  return in;
}

// Convex hull of the mesh's 468 points.
inline std::vector<Point2> mesh_hull(const Face& f) {
  std::vector<Point2> p;
  for (size_t i = 0; i < 468; ++i) p.push_back({f.mesh[i].x, f.mesh[i].y});
  return face::convex_hull(std::move(p));
}

// An RGB uint8 [H, W, 3] image resized bilinearly (no antialiasing) to
// height x width, rounded back to uint8, contiguous.
inline at::Tensor resize_image(const at::Tensor& rgb, int64_t height, int64_t width) {
  return at::upsample_bilinear2d(rgb.permute({2, 0, 1}).unsqueeze(0).to(at::kFloat), {height, width}, false)
      .squeeze(0)
      .permute({1, 2, 0})
      .round()
      .clamp(0, 255)
      .to(at::kByte)
      .contiguous();
}

// A face-api demo photo (npm: the node_modules folder) as float
// [size, size, 3]: its centre square, resized.
inline at::Tensor demo_photo(const std::filesystem::path& npm, int index, int64_t size = 450) {
  at::Tensor rgb = read_image(RegistryPhotos(npm).demo(index)).rgb.to(at::kFloat);
  const int64_t h = rgb.size(0), w = rgb.size(1), s = std::min(h, w);
  at::Tensor square = rgb.narrow(0, (h - s) / 2, s).narrow(1, (w - s) / 2, s).permute({2, 0, 1}).unsqueeze(0);
  at::Tensor resized = at::upsample_bilinear2d(square, {size, size}, false);
  return resized.squeeze(0).permute({1, 2, 0}).clamp(0, 255).contiguous();
}

}  // namespace visage::test
