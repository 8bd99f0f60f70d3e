// The source-texture fill of the swapper (src/swap/source_fill.hpp) on
// synthetic layouts whose answer is known: shadows inside a face are the
// face's own while hair coming in from the outline is not; a direct side and
// a differently lit mirrored side meet without a step; the blend mask gives
// way to the target before a wide unusable area, not at its edge.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <iostream>

#include "swap/source_fill.hpp"

namespace {

using namespace visage::swap;

TEST(SwapSourceFill, ShadowsInsideTheFaceAreUsableHairFromTheOutlineIsNot) {
  const int64_t n = 120;
  const float face_size = 100.f;
  at::Tensor hull = at::zeros({n, n});
  hull.narrow(0, 10, 100).narrow(1, 10, 100).fill_(1.f);
  at::Tensor usable = hull.clone();
  usable.narrow(0, 55, 6).narrow(1, 55, 6).zero_();    // a nostril's shadow, inside
  usable.narrow(0, 10, 25).narrow(1, 20, 80).zero_();  // a fringe, from the top edge
  at::Tensor out = with_inner_shadows(usable, hull, face_size);
  const float shadow = out.narrow(0, 55, 6).narrow(1, 55, 6).min().item<float>();
  const float hair = out.narrow(0, 12, 20).narrow(1, 25, 70).max().item<float>();
  std::cout << "inner shadow usable (min) " << shadow << ", fringe (max) " << hair << "\n";
  EXPECT_GT(shadow, 0.9f);
  EXPECT_LT(hair, 0.05f);
  // Nothing outside the face becomes usable.
  EXPECT_EQ(out.narrow(0, 0, 10).max().item<float>(), 0.f);
}

TEST(SwapSourceFill, DirectAndMirroredSidesMeetWithoutAStep) {
  // A three-quarter source: the direct side is usable on the left only and
  // darker towards its edge (shaded), the mirrored side is lit and usable on
  // the right; both see the same surface (equal facing).
  const int64_t h = 80, w = 200;
  const float face_size = 200.f;
  at::Tensor x = at::arange(w, at::kFloat).view({1, w, 1}).expand({h, w, 3});
  SourceSide direct{(180.f - 0.8f * x).contiguous(), at::zeros({h, w}), at::full({h, w}, 0.8f)};
  direct.usable.narrow(1, 0, 100).fill_(1.f);
  SourceSide mirrored{at::full({h, w, 3}, 200.f), at::zeros({h, w}), at::full({h, w}, 0.8f)};
  mirrored.usable.narrow(1, 104, 96).fill_(1.f);  // a 4-pixel gap neither side covers
  const at::Tensor covered = at::ones({h, w});
  MixedTexture mixed = mix_sides(direct, mirrored, covered, face_size);
  // The largest change between neighbouring columns in the middle row. A
  // plain switch steps by ~99 at column 100 (the old relighting measured the
  // two sides only where both were usable: nowhere here, so it did the
  // same); measured 10.1 (the shading field's own slope over the gap and the
  // low-pass's bias at the direct side's edge).
  at::Tensor row = mixed.rgb.select(0, h / 2).select(1, 1);
  const float step = (row.narrow(0, 1, w - 1) - row.narrow(0, 0, w - 1)).abs().max().item<float>();
  std::cout << "largest step between columns " << step << "\n";
  EXPECT_LT(step, 15.f);
  // The gap is filled from both sides; far from the seam each side keeps its own values.
  EXPECT_GT(mixed.weight.select(0, h / 2).narrow(0, 100, 4).min().item<float>(), 0.95f);
  EXPECT_NEAR(row[10].item<float>(), 172.f, 3.f);
  EXPECT_NEAR(row[w - 10].item<float>(), 200.f, 3.f);
}

TEST(SwapSourceFill, BlendMaskEndsBeforeAWideUnusableArea) {
  const int64_t n = 200;
  const float face_size = 200.f;
  const at::Tensor covered = at::ones({n, n});
  at::Tensor weight = at::ones({n, n});
  weight.narrow(0, 0, 60).zero_();                        // hair above row 60
  weight.narrow(0, 150, 3).narrow(1, 100, 3).fill_(0.f);  // a nostril
  at::Tensor fade = unusable_fade(covered, weight, face_size);
  auto column = fade.select(1, 50);
  std::cout << "fade at rows 60, 70, 80, 90, 100: " << column[60].item<float>() << ", " << column[70].item<float>()
            << ", " << column[80].item<float>() << ", " << column[90].item<float>() << ", " << column[100].item<float>()
            << "\n";
  // 0 on the last usable rows (6% of the face: a fringe's shadow), rising
  // smoothly over a band proportional to the face: no step in the mask.
  EXPECT_EQ(column.narrow(0, 0, 71).max().item<float>(), 0.f);
  EXPECT_GT(column[105].item<float>(), 0.97f);
  EXPECT_LT((column.narrow(0, 1, n - 1) - column.narrow(0, 0, n - 1)).abs().max().item<float>(), 0.15f);
  // A small hole is left to the blend.
  EXPECT_GT(fade.narrow(0, 140, 20).narrow(1, 90, 20).min().item<float>(), 0.97f);
}

}  // namespace
