// The compositing's ATen paths (what a device runs), on the CPU against the
// CPU loops: the L*a*b* transfer, the multi-band blend and the device
// paste. These paths are written for few launches (batched, fused); the
// tests hold them to the CPU's results on real photos.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <numbers>

#include "face_test_support.hpp"
#include "swap/compose.hpp"
#include "swap/compose_internal.hpp"
#include "test_support.hpp"
#include "visage/image.hpp"

namespace visage::swap {
namespace {

using test::demo_photo;

at::Tensor ellipse_mask(int64_t size, float rx, float ry) {
  Polygon p;
  for (int i = 0; i < 180; ++i) {
    const double t = 2 * std::numbers::pi * i / 180;
    p.push_back({static_cast<float>(size / 2.0 + rx * std::cos(t)), static_cast<float>(size / 2.0 + ry * std::sin(t))});
  }
  return fill_polygons(size, size, {p}, at::kCPU);
}

double max_abs(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

TEST(SwapComposeAten, LabTransferMatchesTheCpuLoops) {
  VISAGE_REQUIRE_NPM_DIR(npm);
  for (auto [s, t] : {std::pair{6, 2}, std::pair{3, 5}}) {
    at::Tensor source = demo_photo(npm, s, 301), target = demo_photo(npm, t, 301);
    at::Tensor region = feather_mask(ellipse_mask(301, 100, 120), 12.f);
    at::Tensor loops = transfer_colour(source, target, region, ColourTransfer::lab);  // the CPU loops
    at::Tensor aten = detail::lab_transfer_aten(source, target, region);
    ASSERT_EQ(aten.sizes(), source.sizes());
    // The loops work in double where the ATen path works in float.
    EXPECT_LT(max_abs(aten, loops), 0.05) << s << " onto " << t;
    // And it moved the colours (the photos differ).
    EXPECT_GT(max_abs(aten, source), 10.0) << s << " onto " << t;
  }
}

TEST(SwapComposeAten, MultibandMatchesTheCpuLoopsAtEveryLevelCount) {
  VISAGE_REQUIRE_NPM_DIR(npm);
  // Odd and even sizes: the padded pyramid and the unpadded one.
  for (int64_t size : {250, 256}) {
    at::Tensor bg = demo_photo(npm, 2, size), fg = demo_photo(npm, 6, size);
    at::Tensor alpha = feather_mask(ellipse_mask(size, 80, 100), 25.f);
    for (int levels : {1, 3, 4, 6}) {
      at::Tensor aten = detail::blend_multiband_aten(fg, bg, alpha, levels);
      EXPECT_LT(max_abs(blend_multiband(fg, bg, alpha, levels), aten), 1e-3) << size << ", " << levels;
      // Where alpha is 0 the background, exactly.
      at::Tensor outside = (alpha <= 0.f).unsqueeze(2).expand_as(bg);
      EXPECT_TRUE(aten.masked_select(outside).equal(bg.masked_select(outside))) << size << ", " << levels;
    }
  }
}

}  // namespace
}  // namespace visage::swap
