// Compositing for the swap (src/swap/compose.hpp): polygon masks, blur,
// feathering, skin occlusion, colour transfer and the three blend modes, on
// synthetic masks and real photos (face-api's demo photos, Debian's
// matplotlib portrait).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <malloc.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numbers>

#include "face_test_support.hpp"
#include "swap/compose.hpp"
#include "swap/compose_internal.hpp"
#include "test_support.hpp"
#include "visage/face.hpp"
#include "visage/image.hpp"

namespace visage::swap {
namespace {

using test::demo_photo;

const std::filesystem::path kGraceHopper = "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg";

Polygon circle(float cx, float cy, float r, int n = 256, bool clockwise = false) {
  Polygon p;
  for (int i = 0; i < n; ++i) {
    double t = 2 * std::numbers::pi * i / n * (clockwise ? -1 : 1);
    p.push_back({static_cast<float>(cx + r * std::cos(t)), static_cast<float>(cy + r * std::sin(t))});
  }
  return p;
}

double polygon_area(const Polygon& p) {
  double a = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const auto& u = p[i];
    const auto& v = p[(i + 1) % p.size()];
    a += double(u.x) * v.y - double(v.x) * u.y;
  }
  return std::abs(a) / 2;
}

at::Tensor ellipse_mask(int64_t size, float rx, float ry) {
  Polygon p = circle(0, 0, 1, 180);
  for (auto& q : p) q = {size / 2.f + rx * q.x, size / 2.f + ry * q.y};
  return fill_polygons(size, size, {p}, at::kCPU);
}

at::Tensor to_u8(const at::Tensor& t) { return t.round().clamp(0, 255).to(at::kByte); }

double max_abs(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

// ---------------------------------------------------------------------------

TEST(SwapCompose, PolygonAreaMatchesAnalyticWithAntialiasedEdges) {
  const Polygon disc = circle(200.37f, 150.71f, 100.3f);
  at::Tensor m = fill_polygons(300, 400, {disc}, at::kCPU);
  ASSERT_EQ(m.sizes(), (at::IntArrayRef{300, 400}));
  const double area = polygon_area(disc);
  EXPECT_NEAR(m.sum().item<double>(), area, 0.001 * area);
  EXPECT_GE(m.min().item<float>(), 0.f);
  EXPECT_LE(m.max().item<float>(), 1.f);
  // Anti-aliased: the rim holds fractional coverage, about one pixel per unit of perimeter.
  const double fractional = ((m > 0.01f) & (m < 0.99f)).sum().item<double>();
  EXPECT_GT(fractional, 0.7 * 2 * std::numbers::pi * 100.3);
  EXPECT_LT(fractional, 2.0 * 2 * std::numbers::pi * 100.3);
  // Orientation does not matter.
  at::Tensor cw = fill_polygons(300, 400, {circle(200.37f, 150.71f, 100.3f, 256, true)}, at::kCPU);
  EXPECT_LT(max_abs(m, cw), 1e-5);

  // Exact coverage on axis-aligned edges: x in [10.25, 50.75], y in [20.5, 30].
  at::Tensor r = fill_polygons(40, 60, {{{10.25f, 20.5f}, {50.75f, 20.5f}, {50.75f, 30.f}, {10.25f, 30.f}}}, at::kCPU);
  EXPECT_NEAR(r[25][10].item<float>(), 0.75f, 1e-5);
  EXPECT_NEAR(r[25][50].item<float>(), 0.75f, 1e-5);
  EXPECT_NEAR(r[20][30].item<float>(), 0.5f, 1e-5);
  EXPECT_NEAR(r[20][10].item<float>(), 0.375f, 1e-5);
  EXPECT_EQ(r[19][30].item<float>(), 0.f);
  EXPECT_EQ(r[30][30].item<float>(), 0.f);
  EXPECT_NEAR(r.sum().item<double>(), 40.5 * 9.5, 1e-3);
}

TEST(SwapCompose, PolygonsClipAtTheBordersAndUnite) {
  // A square reaching past every border: coverage is the part inside.
  at::Tensor m =
      fill_polygons(50, 80, {{{-20.5f, -10.f}, {100.f, -10.f}, {100.f, 30.25f}, {-20.5f, 30.25f}}}, at::kCPU);
  EXPECT_NEAR(m.sum().item<double>(), 80 * 30.25, 1e-2);
  EXPECT_EQ(m[10][0].item<float>(), 1.f);
  EXPECT_EQ(m[10][79].item<float>(), 1.f);
  // A triangle crossing the left border.
  Polygon tri = {{-30.f, 5.f}, {30.f, 5.f}, {-30.f, 45.f}};
  at::Tensor t = fill_polygons(50, 80, {tri}, at::kCPU);
  EXPECT_NEAR(t.sum().item<double>(), 0.5 * 30 * 20, 0.01 * 300);  // the part x >= 0: a triangle 30 x 20
  // Two overlapping discs: the union, not the sum.
  Polygon a = circle(40, 25, 15), b = circle(55, 25, 15);
  at::Tensor u = fill_polygons(50, 80, {a, b}, at::kCPU);
  EXPECT_LE(u.max().item<float>(), 1.f);
  const double r = 15, dd = 15;
  const double lens = 2 * r * r * std::acos(dd / (2 * r)) - dd / 2 * std::sqrt(4 * r * r - dd * dd);
  const double expected = polygon_area(a) + polygon_area(b) - lens;
  EXPECT_NEAR(u.sum().item<double>(), expected, 0.01 * expected);
  // Degenerate input is ignored.
  at::Tensor e = fill_polygons(10, 10, {{}, {{1, 1}, {5, 5}}}, at::kCPU);
  EXPECT_EQ(e.sum().item<float>(), 0.f);
}

TEST(SwapCompose, BlurKeepsTheSumAndHasTheRequestedWidth) {
  at::Tensor mask = ellipse_mask(300, 60, 80);
  for (float sigma : {1.5f, 3.f, 8.f, 25.f}) {
    at::Tensor b = blur_mask(mask, sigma);
    EXPECT_NEAR(b.sum().item<double>(), mask.sum().item<double>(), 2e-3 * mask.sum().item<double>()) << sigma;
    EXPECT_GE(b.min().item<float>(), -1e-5f);
    EXPECT_LE(b.max().item<float>(), 1.f + 1e-5f);
    // A point's spread: variance along x close to sigma^2.
    at::Tensor dot = at::zeros({301, 301});
    dot[150][150] = 1.f;
    at::Tensor p = blur_mask(dot, sigma);
    at::Tensor x = at::arange(301, at::kFloat) - 150.f;
    const double var = (p.sum(0) * x * x).sum().item<double>() / p.sum().item<double>();
    EXPECT_NEAR(std::sqrt(var), sigma, 0.1 * sigma + 0.1) << sigma;
  }
  at::Tensor flat = at::full({64, 64}, 0.5f);
  EXPECT_LT(max_abs(blur_mask(flat, 10.f), flat), 1e-5);
  EXPECT_TRUE(blur_mask(mask, 0.f).equal(mask));
}

TEST(SwapCompose, FeatherStaysInsideTheMask) {
  at::Tensor mask = ellipse_mask(300, 100, 120);
  const float radius = 15.f;
  at::Tensor f = feather_mask(mask, radius);
  EXPECT_TRUE((f.masked_select(mask == 0) == 0).all().item<bool>());
  EXPECT_TRUE((f <= mask + 1e-6f).all().item<bool>());
  // 1 more than `radius` inside: the inner ellipse.
  at::Tensor inner = ellipse_mask(300, 100 - radius - 3.f, 120 - radius - 3.f);
  EXPECT_GE(f.masked_select(inner == 1).min().item<float>(), 1.f - 1e-6f);
  // Smooth ramp: along the row through the centre, rising from the edge over ~radius pixels.
  at::Tensor row = f[150];
  const float left_edge = 150 - 100;
  EXPECT_EQ(row[int64_t(left_edge) - 1].item<float>(), 0.f);
  const float mid = row[int64_t(left_edge + radius / 2)].item<float>();
  EXPECT_GT(mid, 0.3f);
  EXPECT_LT(mid, 0.7f);
  for (int64_t x = 40; x < 150; ++x) EXPECT_LE(row[x].item<float>(), row[x + 1].item<float>() + 1e-6f);
  EXPECT_LT((row.narrow(0, 40, 110).diff(1)).abs().max().item<float>(), 2.f / radius);
}

TEST(SwapCompose, ConnectedToKeepsOnlyRegionsTouchingTheSeeds) {
  // Two blobs: one reaching the border band (seeds), one isolated inside.
  at::Tensor mask = at::zeros({100, 100}, at::kFloat);
  mask.narrow(0, 0, 40).narrow(1, 10, 8).fill_(0.9f);    // a "finger" from the top edge
  mask.narrow(0, 60, 10).narrow(1, 60, 10).fill_(0.9f);  // a "nostril" inside
  mask.narrow(0, 80, 5).narrow(1, 20, 5).fill_(0.3f);    // below the threshold
  at::Tensor seeds = at::zeros({100, 100}, at::kFloat);
  seeds.narrow(0, 0, 5).fill_(1.f);
  seeds.narrow(0, 80, 5).narrow(1, 20, 5).fill_(1.f);  // a seed on a weak pixel starts nothing
  at::Tensor reach = connected_to(mask, seeds, 0.5f);
  EXPECT_EQ(reach.narrow(0, 0, 40).narrow(1, 10, 8).min().item<float>(), 1.f);
  EXPECT_EQ(reach.narrow(0, 60, 10).narrow(1, 60, 10).max().item<float>(), 0.f);
  EXPECT_EQ(reach.sum().item<float>(), 40.f * 8.f);
  // Diagonal neighbours connect (8-neighbourhood).
  mask.zero_();
  for (int i = 0; i < 50; ++i) mask[i][i] = 1.f;
  EXPECT_EQ(connected_to(mask, seeds, 0.5f).sum().item<float>(), 50.f);
  EXPECT_THROW(connected_to(mask, at::zeros({10, 10}, at::kFloat), 0.5f), std::invalid_argument);
}

TEST(SwapCompose, LabRoundTripAndReferenceValues) {
  at::Tensor rgb = at::rand({256, 256, 3}, at::kFloat) * 255.f;
  rgb.narrow(0, 0, 1).copy_(at::arange(256, at::kFloat).view({1, 256, 1}).expand({1, 256, 3}));  // greys
  // Float L*a*b* limits the precision of dark channels in bright colours
  // (about 0.002 of a level); far inside half a level of 8 bits.
  at::Tensor levels = at::randint(0, 256, {256, 256, 3}, at::kFloat);
  for (bool cpu_loop : {true, false}) {
    at::Tensor lab = cpu_loop ? detail::rgb_to_lab(rgb) : detail::rgb_to_lab_aten(rgb);
    at::Tensor back = cpu_loop ? detail::lab_to_rgb(lab) : detail::lab_to_rgb_aten(lab);
    EXPECT_LT(max_abs(back, rgb), 0.01) << (cpu_loop ? "cpu loop" : "aten");
    at::Tensor level_lab = cpu_loop ? detail::rgb_to_lab(levels) : detail::rgb_to_lab_aten(levels);
    at::Tensor level_back = cpu_loop ? detail::lab_to_rgb(level_lab) : detail::lab_to_rgb_aten(level_lab);
    EXPECT_TRUE(to_u8(level_back).equal(levels.to(at::kByte))) << (cpu_loop ? "cpu loop" : "aten");
  }
  EXPECT_LT(max_abs(detail::rgb_to_lab(rgb), detail::rgb_to_lab_aten(rgb)), 2e-3);
  // Reference values (D65): white, red, a mid grey.
  at::Tensor probe = at::tensor({255.f, 255.f, 255.f, 255.f, 0.f, 0.f, 119.f, 119.f, 119.f}).view({1, 3, 3});
  at::Tensor lab = detail::rgb_to_lab(probe).view({3, 3});
  at::Tensor expected = at::tensor({100.f, 0.f, 0.f, 53.24f, 80.09f, 67.20f, 50.03f, 0.f, 0.f}).view({3, 3});
  EXPECT_LT(max_abs(lab, expected), 0.05);
}

TEST(SwapCompose, LabTransferMatchesRegionStatistics) {
  VISAGE_REQUIRE_NPM_DIR(npm);
  // A pair whose colours map into each other without much clipping (a very
  // dark source stretched onto a bright target leaves the sRGB gamut).
  at::Tensor source = demo_photo(npm, 6), target = demo_photo(npm, 2);
  at::Tensor region = ellipse_mask(450, 150, 180);
  at::Tensor out = transfer_colour(source, target, region, ColourTransfer::lab);
  const double clipped = ((out <= 0) | (out >= 255)).any(2).to(at::kFloat).mul(region).sum().item<double>();
  EXPECT_LT(clipped, 0.005 * region.sum().item<double>());
  ASSERT_EQ(out.sizes(), source.sizes());
  auto stats = [&](const at::Tensor& img) {
    at::Tensor lab = detail::rgb_to_lab(img).view({-1, 3});
    at::Tensor w = region.view({-1, 1});
    at::Tensor mean = (lab * w).sum(0) / w.sum();
    at::Tensor sd = (((lab - mean).square() * w).sum(0) / w.sum()).sqrt();
    return std::pair{mean, sd};
  };
  auto [mo, so] = stats(out);
  auto [mt, st] = stats(target);
  auto [ms, ss] = stats(source);
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(mo[c].item<float>(), mt[c].item<float>(), 0.3) << "channel " << c;
    EXPECT_NEAR(so[c].item<float>(), st[c].item<float>(), 0.02 * st[c].item<float>() + 0.1) << "channel " << c;
  }
  // The photos differ to begin with, or the test proves nothing.
  EXPECT_GT((ms - mt).abs().max().item<float>(), 3.f);
  EXPECT_TRUE(transfer_colour(source, target, region, ColourTransfer::none).equal(source));
}

TEST(SwapCompose, GreyscaleTargetGivesGreyscaleResult) {
  VISAGE_REQUIRE_NPM_DIR(npm);
  at::Tensor source = demo_photo(npm, 2);
  at::Tensor grey = demo_photo(npm, 4).mean(2, true).expand({450, 450, 3}).contiguous();
  at::Tensor region = ellipse_mask(450, 150, 180);
  for (ColourTransfer mode : {ColourTransfer::lab, ColourTransfer::relight, ColourTransfer::lab_relight}) {
    at::Tensor out = to_u8(transfer_colour(source, grey, region, mode)).to(at::kInt);
    const int spread = (out.amax(2) - out.amin(2)).max().item<int>();
    EXPECT_LE(spread, 1) << "mode " << int(mode);
  }
  // A colour target keeps colour (the rule only drops chroma that is absent).
  at::Tensor coloured =
      to_u8(transfer_colour(source, demo_photo(npm, 4), region, ColourTransfer::relight)).to(at::kInt);
  EXPECT_GT((coloured.amax(2) - coloured.amin(2)).to(at::kFloat).mean().item<float>(), 10.f);
}

TEST(SwapCompose, RelightRemovesAShadingGradient) {
  VISAGE_REQUIRE_NPM_DIR(npm);
  at::Tensor target = demo_photo(npm, 1);
  at::Tensor region = ellipse_mask(450, 150, 180);
  // The same photo lit from the right: linear light times 0.4 .. 1.3.
  at::Tensor ramp = at::linspace(0.4, 1.3, 450, at::kFloat).view({1, 450, 1});
  at::Tensor source = detail::linear_to_srgb(detail::srgb_to_linear(target) * ramp);
  at::Tensor out = transfer_colour(source, target, region, ColourTransfer::relight);
  auto half_ratio = [&](const at::Tensor& img) {
    at::Tensor y = img.mean(2) * region;
    return y.narrow(1, 0, 225).sum().item<double>() / y.narrow(1, 225, 225).sum().item<double>();
  };
  const double want = half_ratio(target);
  EXPECT_GT(std::abs(half_ratio(source) - want), 0.1);
  EXPECT_NEAR(half_ratio(out), want, 0.03);
  const double before = ((source - target).abs().mean(2) * region).sum().item<double>();
  const double after = ((out - target).abs().mean(2) * region).sum().item<double>();
  EXPECT_LT(after, 0.25 * before);
}

TEST(SwapCompose, BlendModesLeaveZeroAlphaPixelsExactlyAlone) {
  VISAGE_REQUIRE_NPM_DIR(npm);
  at::Tensor bg = demo_photo(npm, 2), fg = demo_photo(npm, 5);
  at::Tensor alpha = feather_mask(ellipse_mask(450, 140, 170), 25.f);
  at::Tensor outside = (alpha == 0).unsqueeze(2).expand({450, 450, 3});
  at::Tensor bg8 = to_u8(bg);
  for (BlendMode mode : {BlendMode::feather, BlendMode::multiband, BlendMode::poisson}) {
    at::Tensor out = blend(fg, bg, alpha, mode);
    ASSERT_EQ(out.sizes(), bg.sizes());
    EXPECT_TRUE(to_u8(out).masked_select(outside).equal(bg8.masked_select(outside))) << "mode " << int(mode);
    EXPECT_TRUE(at::isfinite(out).all().item<bool>());
    // Deep inside (alpha == 1) the face is the foreground's, give or take
    // the seamless modes' smooth offset.
    at::Tensor inside = (alpha == 1).unsqueeze(2).expand({450, 450, 3});
    const double mean_err = (out - fg).abs().masked_select(inside).mean().item<double>();
    EXPECT_LT(mean_err, mode == BlendMode::poisson ? 40.0 : 1e-3) << "mode " << int(mode);
  }
}

TEST(SwapCompose, MultibandWithFullAlphaIsTheForeground) {
  VISAGE_REQUIRE_NPM_DIR(npm);
  at::Tensor bg = demo_photo(npm, 2, 333), fg = demo_photo(npm, 6, 333);  // odd size: padded pyramid
  at::Tensor ones = at::ones({333, 333});
  for (int levels : {3, 5, 6}) {
    EXPECT_LT(max_abs(blend_multiband(fg, bg, ones, levels), fg), 1e-3) << levels;
    EXPECT_TRUE(blend_multiband(fg, bg, at::zeros({333, 333}), levels).equal(bg)) << levels;
  }
  // The CPU loops against the ATen version (what CUDA runs) on a feathered mask.
  at::Tensor alpha = feather_mask(ellipse_mask(333, 100, 130), 30.f);
  for (int levels : {3, 5}) {
    EXPECT_LT(max_abs(blend_multiband(fg, bg, alpha, levels), detail::blend_multiband_aten(fg, bg, alpha, levels)),
              1e-3)
        << levels;
  }
}

// Deviation of the result's gradients from the guidance alpha*grad(fg) +
// (1 - alpha)*grad(bg), over the pixels with alpha > 0 and their ring: what
// a seam adds that neither image has.
double seam_error(const at::Tensor& out, const at::Tensor& fg, const at::Tensor& bg, const at::Tensor& alpha) {
  auto gx = [](const at::Tensor& t) { return t.narrow(1, 1, t.size(1) - 1) - t.narrow(1, 0, t.size(1) - 1); };
  auto gy = [](const at::Tensor& t) { return t.narrow(0, 1, t.size(0) - 1) - t.narrow(0, 0, t.size(0) - 1); };
  at::Tensor a = alpha.unsqueeze(2);
  at::Tensor ax = 0.5 * (a.narrow(1, 1, a.size(1) - 1) + a.narrow(1, 0, a.size(1) - 1));
  at::Tensor ay = 0.5 * (a.narrow(0, 1, a.size(0) - 1) + a.narrow(0, 0, a.size(0) - 1));
  at::Tensor ex = (gx(out) - ax * gx(fg) - (1 - ax) * gx(bg)).abs();
  at::Tensor ey = (gy(out) - ay * gy(fg) - (1 - ay) * gy(bg)).abs();
  at::Tensor band = blur_mask((alpha > 0).to(at::kFloat), 1.f) > 0.01f;
  band = band & (alpha < 1);
  at::Tensor bx = band.narrow(1, 0, band.size(1) - 1).unsqueeze(2).expand_as(ex);
  at::Tensor by = band.narrow(0, 0, band.size(0) - 1).unsqueeze(2).expand_as(ey);
  return (ex.masked_select(bx).sum().item<double>() + ey.masked_select(by).sum().item<double>()) /
         double(bx.sum().item<int64_t>() + by.sum().item<int64_t>());
}

TEST(SwapCompose, PoissonIsSeamlessAndKeepsTheBoundary) {
  VISAGE_REQUIRE_NPM_DIR(npm);
  at::Tensor bg = demo_photo(npm, 1);
  // A foreground from another photo, much brighter and redder: a paste would show its outline.
  at::Tensor fg = (demo_photo(npm, 4) + at::tensor({60.f, 30.f, 10.f}).view({1, 1, 3})).clamp(0, 255);
  at::Tensor hard = ellipse_mask(450, 140, 170);
  at::Tensor alpha = feather_mask(hard, 20.f);
  at::Tensor feather = blend(fg, bg, alpha, BlendMode::feather);
  at::Tensor poisson = blend(fg, bg, alpha, BlendMode::poisson);
  at::Tensor multiband = blend(fg, bg, alpha, BlendMode::multiband);
  at::Tensor boundary = (alpha == 0).unsqueeze(2).expand({450, 450, 3});
  EXPECT_TRUE(poisson.masked_select(boundary).equal(bg.masked_select(boundary)));
  const double e_feather = seam_error(feather, fg, bg, alpha);
  const double e_poisson = seam_error(poisson, fg, bg, alpha);
  const double e_multiband = seam_error(multiband, fg, bg, alpha);
  std::printf("seam error (mean |grad - guidance|, 0..255 units): feather %.3f, multiband %.3f, poisson %.3f\n",
              e_feather, e_multiband, e_poisson);
  EXPECT_LT(e_poisson, 0.5 * e_feather);
  // Solved, not just started: the discrete Poisson equation holds inside.
  at::Tensor u = detail::poisson_offset_cpu(fg - bg, alpha, 30);
  EXPECT_LT(max_abs(poisson - bg, u), 0.5);  // what blend's 5 iterations reach
  // With a hard mask, the classic seamless clone: fg's gradients inside.
  at::Tensor hard_alpha = (hard > 0.5f).to(at::kFloat);
  at::Tensor clone = blend(fg, bg, hard_alpha, BlendMode::poisson);
  at::Tensor lap = [](const at::Tensor& t) {
    return 4 * t.narrow(0, 1, 448).narrow(1, 1, 448) - t.narrow(0, 0, 448).narrow(1, 1, 448) -
           t.narrow(0, 2, 448).narrow(1, 1, 448) - t.narrow(0, 1, 448).narrow(1, 0, 448) -
           t.narrow(0, 1, 448).narrow(1, 2, 448);
  }(clone - fg);
  at::Tensor deep =
      (feather_mask(hard_alpha, 2.f) == 1).narrow(0, 1, 448).narrow(1, 1, 448).unsqueeze(2).expand_as(lap);
  EXPECT_LT(lap.masked_select(deep).abs().mean().item<double>(), 0.02);
}

TEST(SwapCompose, SkinVisibilityMarksOccluders) {
  VISAGE_REQUIRE_NPM_DIR(npm);
  if (!std::filesystem::exists(kGraceHopper)) {
    if (test::npm_required()) GTEST_FAIL() << kGraceHopper << " missing (Debian python-matplotlib-data)";
    GTEST_SKIP() << kGraceHopper << " missing: install Debian's python-matplotlib-data";
  }
  at::Tensor rgb = read_image(kGraceHopper).rgb;
  FaceAnalyser analyser{FaceAnalyserOptions{}};
  auto faces = analyser.analyse(rgb);
  ASSERT_EQ(faces.size(), 1u);
  const auto& p = faces[0].landmarks_68;
  ASSERT_EQ(p.size(), 68u);
  at::Tensor image = rgb.to(at::kFloat).contiguous();
  const int64_t h = image.size(0), w = image.size(1);
  // Face region: the jaw line and the brows.
  Polygon face;
  for (int i = 0; i <= 16; ++i) face.push_back(p[i]);
  for (int i = 26; i >= 17; --i) face.push_back(p[i]);
  at::Tensor region = fill_polygons(h, w, {face}, at::kCPU);
  const float face_width = p[16].x - p[0].x;
  auto mid = [&](int a, int b) { return Point2{(p[a].x + p[b].x) / 2, (p[a].y + p[b].y) / 2}; };
  // Occluders: a lock of dark hair over the left cheek, a green object on the chin.
  const Point2 left_cheek = mid(30, 3), right_cheek = mid(30, 13), chin = mid(8, 57);
  const int64_t s = static_cast<int64_t>(0.16f * face_width);
  auto paste = [&](Point2 c, const at::Tensor& patch) {
    image.narrow(0, int64_t(c.y) - s / 2, s).narrow(1, int64_t(c.x) - s / 2, s).copy_(patch);
  };
  at::Tensor strands = (at::arange(s, at::kFloat).view({1, s, 1}) * 0.9f).sin() * 10.f;
  at::Tensor hair = (at::tensor({45.f, 32.f, 22.f}).view({1, 1, 3}) + strands).expand({s, s, 3}).contiguous();
  at::Tensor green = at::tensor({40.f, 150.f, 60.f}).view({1, 1, 3}).expand({s, s, 3}).contiguous();
  paste(left_cheek, hair);
  paste(chin, green);
  at::Tensor vis = skin_visibility_mask(image, region, region);
  ASSERT_EQ(vis.sizes(), region.sizes());
  auto mean_in = [&](Point2 c, int64_t half) {
    return vis.narrow(0, int64_t(c.y) - half, 2 * half).narrow(1, int64_t(c.x) - half, 2 * half).mean().item<float>();
  };
  auto max_in = [&](Point2 c, int64_t half) {
    return vis.narrow(0, int64_t(c.y) - half, 2 * half).narrow(1, int64_t(c.x) - half, 2 * half).max().item<float>();
  };
  EXPECT_LT(max_in(left_cheek, s / 2 - 2), 0.5f);
  EXPECT_LT(max_in(chin, s / 2 - 2), 0.5f);
  // The other cheek and the nose bridge stay visible.
  const int64_t r = static_cast<int64_t>(0.07f * face_width);
  EXPECT_GT((vis.narrow(0, int64_t(right_cheek.y) - r, 2 * r).narrow(1, int64_t(right_cheek.x) - r, 2 * r) > 0.5f)
                .to(at::kFloat)
                .mean()
                .item<float>(),
            0.85f);
  EXPECT_GT(mean_in(mid(28, 29), 4), 0.5f);
  // Over the whole face, the unoccluded skin is mostly visible.
  at::Tensor skin = (region > 0.5f) & (vis > 0.5f);
  EXPECT_GT(skin.sum().item<double>() / (region > 0.5f).sum().item<double>(), 0.7);
  // The CPU loops agree with the ATen version (what CUDA runs).
  at::Tensor lab = detail::rgb_to_lab(image);
  EXPECT_LT(max_abs(detail::skin_occlusion_cpu(lab, region, region), detail::skin_occlusion_aten(lab, region, region)),
            1e-3);
  // Outside the face region nothing is marked.
  EXPECT_TRUE((vis.masked_select(blur_mask(region, 3.f) == 0) == 1).all().item<bool>());
  if (const char* dir = std::getenv("VISAGE_COMPOSE_DEBUG_DIR")) {
    write_image(std::filesystem::path(dir) / "skin_visibility.png",
                (image * (0.3f + 0.7f * vis.unsqueeze(2))).round().clamp(0, 255).to(at::kByte));
  }
}

TEST(SwapCompose, CudaMatchesCpu) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device in this build or machine";
  VISAGE_REQUIRE_NPM_DIR(npm);
  const at::Device cuda(at::kCUDA);
  at::Tensor bg = demo_photo(npm, 2), fg = demo_photo(npm, 5);
  std::vector<Polygon> polys = {circle(225, 225, 160), circle(300, 180, 40)};
  at::Tensor mask = fill_polygons(450, 450, polys, at::kCPU);
  EXPECT_LT(max_abs(fill_polygons(450, 450, polys, cuda).cpu(), mask), 1e-6);
  EXPECT_LT(max_abs(blur_mask(mask.to(cuda), 2.f).cpu(), blur_mask(mask, 2.f)), 1e-4);
  EXPECT_LT(max_abs(blur_mask(mask.to(cuda), 20.f).cpu(), blur_mask(mask, 20.f)), 1e-4);
  at::Tensor alpha = feather_mask(mask, 20.f);
  EXPECT_LT(max_abs(feather_mask(mask.to(cuda), 20.f).cpu(), alpha), 1e-6);
  EXPECT_LT(max_abs(detail::rgb_to_lab(fg.to(cuda)).cpu(), detail::rgb_to_lab(fg)), 1e-2);
  EXPECT_LT(max_abs(skin_visibility_mask(fg.to(cuda), mask.to(cuda), mask.to(cuda)).cpu(),
                    skin_visibility_mask(fg, mask, mask)),
            0.02);
  for (ColourTransfer mode : {ColourTransfer::lab, ColourTransfer::relight, ColourTransfer::lab_relight}) {
    EXPECT_LT(max_abs(transfer_colour(fg.to(cuda), bg.to(cuda), mask.to(cuda), mode).cpu(),
                      transfer_colour(fg, bg, mask, mode)),
              0.1)
        << "mode " << int(mode);
  }
  for (BlendMode mode : {BlendMode::feather, BlendMode::multiband, BlendMode::poisson}) {
    at::Tensor on_gpu = blend(fg.to(cuda), bg.to(cuda), alpha.to(cuda), mode);
    EXPECT_EQ(on_gpu.device().type(), at::kCUDA);
    EXPECT_LT(max_abs(on_gpu.cpu(), blend(fg, bg, alpha, mode)), 0.05) << "mode " << int(mode);
  }
}

// Not a speed assertion: prints the cost of each step on a 450x450 region
// (the size around one face of a 1080p photo), best of a few runs.
TEST(SwapCompose, TimingOn450Region) {
  VISAGE_REQUIRE_NPM_DIR(npm);
  at::Tensor bg = demo_photo(npm, 2), fg = demo_photo(npm, 5);
  const Polygon oval = circle(225, 230, 170, 64);
  at::Tensor hard = fill_polygons(450, 450, {oval}, at::kCPU);
  at::Tensor alpha = feather_mask(hard, 25.f);
  auto time_ms = [](auto&& fn) {
    return test::best_time_ms([&] {
      at::Tensor r = fn();
      if (!r.device().is_cpu()) r.sum().item<float>();  // waits for the device
      EXPECT_TRUE(r.defined());
    });
  };
  if (std::getenv("VISAGE_COMPOSE_MALLOPT")) {
    // What the timings are once big buffers are recycled instead of freshly
    // page-faulted (glibc returns them to the system by default).
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  }
  std::printf("450x450 on %d threads (ms):\n", at::get_num_threads());
  std::printf("  fill_polygons        %7.2f\n", time_ms([&] { return fill_polygons(450, 450, {oval}, at::kCPU); }));
  std::printf("  blur_mask s=3        %7.2f\n", time_ms([&] { return blur_mask(hard, 3.f); }));
  std::printf("  blur_mask s=20       %7.2f\n", time_ms([&] { return blur_mask(hard, 20.f); }));
  std::printf("  feather_mask r=25    %7.2f\n", time_ms([&] { return feather_mask(hard, 25.f); }));
  std::printf("  skin_visibility_mask %7.2f\n", time_ms([&] { return skin_visibility_mask(fg, hard, hard); }));
  std::printf("  rgb_to_lab           %7.2f\n", time_ms([&] { return detail::rgb_to_lab(fg); }));
  for (auto [name, mode] : {std::pair{"lab", ColourTransfer::lab}, std::pair{"relight", ColourTransfer::relight},
                            std::pair{"lab_relight", ColourTransfer::lab_relight}}) {
    std::printf("  colour %-13s %7.2f\n", name, time_ms([&] { return transfer_colour(fg, bg, hard, mode); }));
  }
  for (auto [name, mode] : {std::pair{"feather", BlendMode::feather}, std::pair{"multiband", BlendMode::multiband},
                            std::pair{"poisson", BlendMode::poisson}}) {
    std::printf("  blend %-14s %7.2f\n", name, time_ms([&] { return blend(fg, bg, alpha, mode); }));
  }
  if (!at::hasCUDA()) return;
  const at::Device cuda(at::kCUDA);
  at::Tensor fg_d = fg.to(cuda), bg_d = bg.to(cuda), hard_d = hard.to(cuda), alpha_d = alpha.to(cuda);
  std::printf("450x450 on CUDA (ms, including the wait for the result):\n");
  std::printf("  fill_polygons        %7.2f\n", time_ms([&] { return fill_polygons(450, 450, {oval}, cuda); }));
  std::printf("  blur_mask s=20       %7.2f\n", time_ms([&] { return blur_mask(hard_d, 20.f); }));
  std::printf("  feather_mask r=25    %7.2f\n", time_ms([&] { return feather_mask(hard_d, 25.f); }));
  std::printf("  skin_visibility_mask %7.2f\n", time_ms([&] { return skin_visibility_mask(fg_d, hard_d, hard_d); }));
  std::printf("  colour lab_relight   %7.2f\n",
              time_ms([&] { return transfer_colour(fg_d, bg_d, hard_d, ColourTransfer::lab_relight); }));
  for (auto [name, mode] : {std::pair{"feather", BlendMode::feather}, std::pair{"multiband", BlendMode::multiband},
                            std::pair{"poisson", BlendMode::poisson}}) {
    std::printf("  blend %-14s %7.2f\n", name, time_ms([&] { return blend(fg_d, bg_d, alpha_d, mode); }));
  }
}

}  // namespace
}  // namespace visage::swap
