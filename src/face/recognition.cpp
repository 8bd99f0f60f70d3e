#include "face/recognition.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <numbers>

#include "face/geometry.hpp"
#include "face/warp.hpp"

namespace visage::face {

std::vector<float> compute_embedding(FaceRecognizerModel model, Session& session, const at::Tensor& rgb,
                                     const Face& face) {
  constexpr int size = 112;
  Affine to_crop = estimate_alignment(face.landmarks_5, AlignmentTemplate::arcface_112_v2, size);
  Affine crop_to_image = invert(to_crop);
  at::Tensor out;
  if (model == FaceRecognizerModel::arcface) {
    at::Tensor input = warp_to_input(rgb, crop_to_image, size, size, 1.f / 128.f, -127.f / 128.f);
    out = session.run({input.permute({0, 3, 1, 2}).contiguous()})[0];
  } else {
    at::Tensor input = warp_to_input(rgb, crop_to_image, size, size, 1.f / 255.f, 0.f);
    out = session.run({input})[0];
  }
  at::Tensor v = out.to(at::kCPU).to(at::kFloat).reshape({-1});
  v = v / v.norm().clamp_min(1e-12);
  return std::vector<float>(v.data_ptr<float>(), v.data_ptr<float>() + v.numel());
}

void estimate_attributes(Session& session, const at::Tensor& rgb, Face& face) {
  // faceres wants the upright face with a margin: the mesh's box grown by a fifth,
  // stretched to 224 x 224, values 0..255.
  constexpr int size = 224;
  float roll = face.roll * std::numbers::pi_v<float> / 180.f;
  Point2 c = face.box.centre();
  double sx = face.box.width * 1.2 / size, sy = face.box.height * 1.2 / size;
  double cs = std::cos(roll), sn = std::sin(roll);
  double h = size / 2.0;
  Affine m = {cs * sx, -sn * sy, c.x - cs * sx * h + sn * sy * h, sn * sx, cs * sy, c.y - sn * sx * h - cs * sy * h};
  at::Tensor input = warp_to_input(rgb, m, size, size, 1.f, 0.f);
  for (const at::Tensor& host : outputs_to_host(session.run({input}))) {
    at::Tensor c2 = host.view({-1});
    if (c2.numel() == 1) {
      float g = c2.item<float>();
      face.gender = g <= 0.5f ? Gender::female : Gender::male;
      face.gender_score = std::min(1.f, 2.f * std::abs(g - 0.5f));
    } else if (c2.numel() == 100) {
      // Softmax over ages 0..99: the expected value is steadier than the arg-max.
      at::Tensor ages = at::arange(100, at::kFloat);
      face.age = (c2 * ages).sum().item<float>() / std::max(1e-6f, c2.sum().item<float>());
    }
  }
}

}  // namespace visage::face
