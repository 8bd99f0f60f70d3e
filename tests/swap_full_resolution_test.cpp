// The swap's full-resolution steps (src/swap/full_resolution.cpp: outline
// warp, paste of a face composed at a reduced size) and the device version
// of the feathering, all against the ATen formulations they replace, on
// random images and synthetic masks (fixed seeds).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <numbers>

#include "swap/compose.hpp"
#include "swap/compose_internal.hpp"
#include "test_support.hpp"

namespace visage::swap {
namespace {

double max_abs(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

// A smooth random image with some sharp detail, float [h, w, 3] in 0..255.
at::Tensor random_image(int64_t h, int64_t w, uint64_t seed) {
  at::manual_seed(seed);
  at::Tensor coarse = at::rand({1, 3, h / 8 + 1, w / 8 + 1}) * 255.f;
  at::Tensor smooth = at::upsample_bilinear2d(coarse, {h, w}, false).squeeze(0).permute({1, 2, 0});
  return (smooth + at::randn({h, w, 3}) * 20.f).clamp(0.f, 255.f).contiguous();
}

// What swapper.cpp ran before full_resolution.cpp: the field upsampled as a
// tensor, pixel centres minus the field, grid_sampler with border padding.
at::Tensor warp_reference(const at::Tensor& image, const at::Tensor& coarse, int64_t step) {
  const int64_t h = image.size(0), w = image.size(1), gh = coarse.size(0), gw = coarse.size(1);
  at::Tensor field = at::upsample_bilinear2d(coarse.permute({2, 0, 1}).unsqueeze(0), {gh * step, gw * step}, false)
                         .narrow(2, 0, h)
                         .narrow(3, 0, w)
                         .permute({0, 2, 3, 1})
                         .reshape({h * w, 2});
  auto grid = at::meshgrid({at::arange(h, at::kFloat).add_(0.5f), at::arange(w, at::kFloat).add_(0.5f)}, "ij");
  at::Tensor p = at::stack({grid[1], grid[0]}, 2).view({h * w, 2});
  at::Tensor src = (p - field).view({h, w, 2});
  at::Tensor scale = at::tensor(std::vector<float>{2.f / w, 2.f / h});
  at::Tensor g = (src * scale - 1.f).unsqueeze(0).contiguous();
  at::Tensor nchw = image.to(at::kFloat).permute({2, 0, 1}).unsqueeze(0).contiguous();
  return at::grid_sampler(nchw, g, 0, 1, false).squeeze(0).permute({1, 2, 0});
}

TEST(SwapFullResolution, WarpByFieldMatchesGridSampler) {
  const int64_t h = 203, w = 170, step = 8;
  at::Tensor image = random_image(h, w, 1);
  // A field of several pixels around a ring, fading to (almost) zero elsewhere.
  const int64_t gh = (h + step - 1) / step, gw = (w + step - 1) / step;
  at::Tensor ys = (at::arange(gh, at::kFloat) + 0.5f) * step, xs = (at::arange(gw, at::kFloat) + 0.5f) * step;
  auto g = at::meshgrid({ys, xs}, "ij");
  at::Tensor r = ((g[1] - 85.f).square() + (g[0] - 100.f).square()).sqrt();
  at::Tensor strength = (-(r - 60.f).square() / 400.f).exp() * 6.f;
  at::Tensor coarse = at::stack({strength * 0.8f, -strength * 0.6f}, 2).contiguous();
  ASSERT_GT(coarse.abs().max().item<float>(), 4.f);
  at::Tensor expected = warp_reference(image, coarse, step);
  // Float input, and uint8 input read through a strided view (a region of a frame).
  EXPECT_LT(max_abs(detail::warp_by_field(image, coarse, step), expected), 0.03);
  at::Tensor frame = at::zeros({h + 20, w + 30, 3}, at::kByte);
  at::Tensor bytes = image.round().to(at::kByte);
  frame.narrow(0, 7, h).narrow(1, 11, w).copy_(bytes);
  at::Tensor view = frame.narrow(0, 7, h).narrow(1, 11, w);
  ASSERT_FALSE(view.is_contiguous());
  EXPECT_LT(max_abs(detail::warp_by_field(view, coarse, step), warp_reference(bytes, coarse, step)), 0.03);
  // Where the field is zero the pixels come through unchanged.
  at::Tensor none = detail::warp_by_field(view, at::zeros_like(coarse), step);
  EXPECT_EQ(max_abs(none, bytes), 0.0);
}

TEST(SwapFullResolution, WarpInPlaceWritesTheWarpOutsideTheBoxAndReturnsTheBox) {
  const int64_t h = 203, w = 170, step = 8, bx = 40, by = 55, bw = 90, bh = 100;
  at::Tensor image = random_image(h, w, 11).round().to(at::kByte);
  // A field around a ring (inside and outside the box), zero far from it.
  const int64_t gh = (h + step - 1) / step, gw = (w + step - 1) / step;
  at::Tensor ys = (at::arange(gh, at::kFloat) + 0.5f) * step, xs = (at::arange(gw, at::kFloat) + 0.5f) * step;
  auto g = at::meshgrid({ys, xs}, "ij");
  at::Tensor r = ((g[1] - 85.f).square() + (g[0] - 100.f).square()).sqrt();
  at::Tensor strength = at::where(r < 80.f, (-(r - 50.f).square() / 300.f).exp() * 7.f, at::zeros_like(r));
  at::Tensor coarse = at::stack({strength * 0.6f, strength * 0.8f}, 2).contiguous();
  at::Tensor expected = detail::warp_by_field(image, coarse, step);

  at::Tensor frame = at::full({h + 6, w + 8, 3}, 9, at::kByte);
  at::Tensor roi = frame.narrow(0, 3, h).narrow(1, 5, w);
  roi.copy_(image);
  at::Tensor box = detail::warp_in_place(roi, coarse, step, bx, by, bw, bh);
  ASSERT_EQ(box.sizes(), (at::IntArrayRef{bh, bw, 3}));
  EXPECT_EQ(max_abs(box, expected.narrow(0, by, bh).narrow(1, bx, bw)), 0.0);
  // Outside the box: the warp, rounded (the box's pixels are the caller's to write).
  at::Tensor rounded = expected.round().clamp(0, 255).to(at::kByte);
  at::Tensor outside = at::ones({h, w}, at::kBool);
  outside.narrow(0, by, bh).narrow(1, bx, bw).fill_(false);
  at::Tensor moved = (roi.to(at::kShort) - image.to(at::kShort)).abs().amax(2) > 0;
  EXPECT_GT((moved & outside).sum().item<int64_t>(), 1000) << "the field must move pixels outside the box";
  at::Tensor wrong = (roi.to(at::kShort) - rounded.to(at::kShort)).abs().amax(2) > 0;
  EXPECT_EQ((wrong & outside).sum().item<int64_t>(), 0);
  EXPECT_TRUE((roi.narrow(0, by, bh).narrow(1, bx, bw) == image.narrow(0, by, bh).narrow(1, bx, bw)).all().item<bool>())
      << "the box is left for paste_face";
  // Nothing beyond the region is touched.
  EXPECT_TRUE((frame.narrow(0, 0, 3) == 9).all().item<bool>());
  EXPECT_TRUE((frame.narrow(1, w + 5, 3) == 9).all().item<bool>());
}

TEST(SwapFullResolution, PasteUpsamplesAndRestoresDetailOutsideTheMask) {
  const int64_t h = 120, w = 150, bx = 23, by = 17, bw = 97, bh = 88, sh = 61, sw = 67;
  at::Tensor background = random_image(h, w, 2);
  at::Tensor blended = random_image(sh, sw, 3), small = random_image(sh, sw, 4);
  at::Tensor alpha = at::rand({sh, sw}).pow(3);
  alpha.narrow(0, 0, 10).zero_();
  alpha.narrow(0, 40, 12).fill_(1.f);
  // As blend() leaves it: the background itself where alpha is 0.
  blended.narrow(0, 0, 10).copy_(small.narrow(0, 0, 10));
  at::Tensor frame = at::full({h + 4, w + 9, 3}, 7, at::kByte);
  at::Tensor roi = frame.narrow(0, 2, h).narrow(1, 5, w);
  detail::paste_face(roi, background, bx, by, bw, bh, blended, small, alpha);
  // The formula with ATen ops.
  auto up = [&](const at::Tensor& hwc) {
    return at::upsample_bilinear2d(hwc.permute({2, 0, 1}).unsqueeze(0), {bh, bw}, false).squeeze(0).permute({1, 2, 0});
  };
  at::Tensor expected = background.clone();
  at::Tensor box = expected.narrow(0, by, bh).narrow(1, bx, bw);
  box.copy_(up(blended) + (1.f - up(alpha.unsqueeze(2))) * (box - up(small)));
  EXPECT_LE(max_abs(roi, expected.round().clamp(0, 255)), 1.0);  // rounding of near-ties
  EXPECT_LT((roi.to(at::kFloat) - expected.round().clamp(0, 255)).abs().mean().item<float>(), 0.01f);
  // Nothing outside the ROI is touched.
  EXPECT_TRUE((frame.narrow(0, 0, 2) == 7).all().item<bool>());
  EXPECT_TRUE((frame.narrow(1, w + 5, 4) == 7).all().item<bool>());
  // At the box's own size the composite is pasted as it is.
  at::Tensor same = random_image(bh, bw, 5);
  detail::paste_face(roi, background, bx, by, bw, bh, same, same, at::ones({bh, bw}));
  EXPECT_EQ(max_abs(roi.narrow(0, by, bh).narrow(1, bx, bw), same.round()), 0.0);
  EXPECT_EQ(max_abs(roi.narrow(0, 0, by), background.narrow(0, 0, by).round()), 0.0);
}

TEST(SwapFullResolution, DeviceFeatherMatchesTheExactTransform) {
  // An ellipse with a hole and a box cut (shapes of the swap's masks).
  const int64_t h = 230, w = 200;
  auto oval = [](float cx, float cy, float rx, float ry) {
    Polygon p;
    for (int i = 0; i < 128; ++i) {
      const double t = 2 * std::numbers::pi * i / 128;
      p.push_back({static_cast<float>(cx + rx * std::cos(t)), static_cast<float>(cy + ry * std::sin(t))});
    }
    return p;
  };
  at::Tensor mask = fill_polygons(h, w, {oval(100, 115, 80, 100)}, at::kCPU) -
                    fill_polygons(h, w, {oval(100, 150, 25, 10)}, at::kCPU);
  mask = mask.clamp(0.f, 1.f).contiguous();
  mask.narrow(1, 0, 35).zero_();
  for (float radius : {3.f, 17.5f, 40.f}) {
    at::Tensor exact = feather_mask(mask, radius);
    at::Tensor device_version = detail::feather_mask_aten(mask, radius);
    EXPECT_LT(max_abs(device_version, exact), 1e-5) << "radius " << radius;
    EXPECT_GT(exact.sum().item<float>(), 100.f);
  }
  // No outside pixel at all: the mask itself.
  at::Tensor full = at::ones({40, 50});
  EXPECT_EQ(max_abs(detail::feather_mask_aten(full, 10.f), full), 0.0);
}

// Not a speed assertion: prints what the fused passes cost against the ATen
// chains they replace, at the sizes of a close-up 720p face (~480 px tall:
// ROI 770 x 770, compose box 560 x 560 composed at 460 x 460).
TEST(SwapFullResolution, TimingOfACloseUpFace) {
  const int64_t roi = 770, box = 560, small = 460, box_at = 105, step = 8;
  at::Tensor frame = random_image(900, 1280, 6).round().to(at::kByte);
  at::Tensor view = frame.narrow(0, 50, roi).narrow(1, 200, roi);
  const int64_t g = (roi + step - 1) / step;
  at::Tensor coarse = at::randn({g, g, 2}) * 3.f;
  at::Tensor blended = random_image(small, small, 7), small_bg = random_image(small, small, 8);
  at::Tensor alpha = at::rand({small, small});
  at::Tensor warped;
  std::printf("close-up face on %d threads (ms):\n", at::get_num_threads());
  std::printf("  outline warp, ATen chain   %7.2f\n",
              test::best_time_ms([&] { warped = warp_reference(view, coarse, step).contiguous(); }));
  std::printf("  outline warp, fused        %7.2f\n",
              test::best_time_ms([&] { warped = detail::warp_by_field(view, coarse, step); }));
  std::printf("  upsample + paste, ATen     %7.2f\n", test::best_time_ms([&] {
                auto up = [&](const at::Tensor& hwc) {
                  return at::upsample_bilinear2d(hwc.permute({2, 0, 1}).unsqueeze(0), {roi, roi}, false)
                      .squeeze(0)
                      .permute({1, 2, 0});
                };
                // The old code: the whole ROI was composed and scaled up.
                at::Tensor r = up(blended) + (1.f - up(alpha.unsqueeze(2))) * (warped - up(small_bg));
                view.copy_(r.round().clamp(0, 255).to(at::kByte));
              }));
  std::printf("  upsample + paste, fused    %7.2f\n", test::best_time_ms([&] {
                detail::paste_face(view, warped, box_at, box_at, box, box, blended, small_bg, alpha);
              }));
  // What the swap runs now: the warp written in place outside the compose
  // box (the box's pixels returned), and the paste of the box alone.
  at::Tensor box_bg;
  std::printf("  warp in place              %7.2f\n", test::best_time_ms([&] {
                box_bg = detail::warp_in_place(view, coarse, step, box_at, box_at, box, box);
              }));
  at::Tensor box_view = view.narrow(0, box_at, box).narrow(1, box_at, box);
  std::printf("  paste of the box           %7.2f\n", test::best_time_ms([&] {
                detail::paste_face(box_view, box_bg, 0, 0, box, box, blended, small_bg, alpha);
              }));
  SUCCEED();
}

}  // namespace
}  // namespace visage::swap
