// A source whose face is far smaller than the target's (a full-length photo)
// must not leave a blurred patch on a sharp target: on the skin the result
// keeps the target's own fine detail (grain, texture), which the enlarged
// source texture does not have.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

#include "face_test_support.hpp"
#include "test_support.hpp"
#include "visage/face.hpp"
#include "visage/image.hpp"
#include "visage/swap.hpp"

namespace {

namespace fs = std::filesystem;
using namespace visage;

// Mean absolute difference between the luminance and its 5x5 box mean, in
// the square of `side` pixels round (x, y): the patch's fine detail.
double fine_detail(const at::Tensor& rgb, float x, float y, int side) {
  const int64_t x0 = std::clamp<int64_t>(static_cast<int64_t>(x) - side / 2, 0, rgb.size(1) - side);
  const int64_t y0 = std::clamp<int64_t>(static_cast<int64_t>(y) - side / 2, 0, rgb.size(0) - side);
  at::Tensor patch = rgb.narrow(0, y0, side).narrow(1, x0, side).to(at::kFloat).mean(2).unsqueeze(0).unsqueeze(0);
  at::Tensor mean = at::avg_pool2d(patch, {5, 5}, {1, 1}, {2, 2}, false, false);
  return (patch - mean).abs().narrow(2, 2, side - 4).narrow(3, 2, side - 4).mean().item<double>();
}

TEST(SwapDetail, SmallSourceFaceKeepsTheTargetsSkinDetail) {
  VISAGE_REQUIRE_NPM_FILE(astronaut_path, test::kSkimageInNpm / "astronaut.png");
  const fs::path hopper_path = test::kGraceHopper;
  if (!fs::exists(hopper_path)) GTEST_SKIP() << hopper_path << " missing (Debian's python-matplotlib-data)";
  // The astronaut at a quarter of its size (a face of ~50 px) onto
  // grace_hopper enlarged 1.5x (a face of ~280 px): ~5.5x coarser.
  at::Tensor small = test::resize_image(read_image(astronaut_path).rgb, 128, 128);
  at::Tensor hopper = read_image(hopper_path).rgb;
  at::Tensor target = test::resize_image(hopper, hopper.size(0) * 3 / 2, hopper.size(1) * 3 / 2);
  FaceSwapper swapper;
  at::Tensor out = swapper.swap(target, swapper.prepare_source({small}));
  ASSERT_EQ(swapper.faces_swapped(), 1u);
  const std::vector<Face> faces = swapper.analyser().analyse(target);
  const Face* face = test::largest_face(faces);
  ASSERT_TRUE(face && face->landmarks_68.size() == 68);
  const auto& p = face->landmarks_68;
  const float size = std::max(face->box.width, face->box.height);
  const int side = std::max(16, static_cast<int>(0.12f * size));
  // Both cheeks: between the lower lid's middle and the mouth's corner.
  double target_detail = 0, out_detail = 0;
  for (const auto& [eye, mouth] : {std::pair{41, 48}, std::pair{46, 54}}) {
    const float x = 0.5f * (p[eye].x + p[mouth].x), y = 0.5f * (p[eye].y + p[mouth].y);
    target_detail += fine_detail(target, x, y, side);
    out_detail += fine_detail(out, x, y, side);
  }
  std::printf("fine detail on the cheeks: target %.3f, result %.3f (ratio %.2f)\n", target_detail, out_detail,
              out_detail / target_detail);
  // Measured 2026-11-26: without the target's detail the result's cheeks
  // held 0.09 of the target's; with it 0.76.
  EXPECT_GT(out_detail, 0.5 * target_detail);
  // And the face is swapped, not left as the target's: the cheeks differ.
  EXPECT_GT((out.to(at::kFloat) - target.to(at::kFloat)).abs().mean().item<double>(), 1.0);
}

}  // namespace
