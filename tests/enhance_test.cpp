// Enhancers on real photos: the frame enhancer's quality against bicubic
// upscaling, tiling, sizes; the face enhancer changes the face and nothing
// else; CUDA against CPU; `visage enhance` as a user runs it.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "test_support.hpp"
#include "visage/enhance.hpp"
#include "visage/face.hpp"
#include "visage/image.hpp"

namespace visage {
namespace {

namespace fs = std::filesystem;

const fs::path kGraceHopper = "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg";

#define REQUIRE_GRACE_HOPPER(var)                                                                         \
  if (!fs::exists(kGraceHopper)) {                                                                        \
    if (test::npm_required()) GTEST_FAIL() << kGraceHopper << " missing (Debian python-matplotlib-data)"; \
    GTEST_SKIP() << kGraceHopper << " missing: install Debian's python-matplotlib-data";                  \
  }                                                                                                       \
  const at::Tensor var = read_image(kGraceHopper).rgb

at::Tensor to_nchw(const at::Tensor& rgb) { return rgb.permute({2, 0, 1}).unsqueeze(0).to(at::kFloat); }
at::Tensor to_rgb(const at::Tensor& nchw) {
  return nchw.squeeze(0).permute({1, 2, 0}).round().clamp(0, 255).to(at::kByte).contiguous();
}

// Antialiased bicubic downscaling (MATLAB's imresize, PIL's BICUBIC): how the
// DIV2K low-resolution images the networks were trained on were made.
at::Tensor downscale(const at::Tensor& rgb, int factor) {
  return to_rgb(at::_upsample_bicubic2d_aa(to_nchw(rgb), {rgb.size(0) / factor, rgb.size(1) / factor}, false));
}

at::Tensor bicubic_upscale(const at::Tensor& rgb, int factor) {
  return to_rgb(at::upsample_bicubic2d(to_nchw(rgb), {rgb.size(0) * factor, rgb.size(1) * factor}, false));
}

// PSNR in dB over the pixels `border` or more away from the edge.
double psnr(const at::Tensor& a, const at::Tensor& b, int64_t border) {
  auto crop = [border](const at::Tensor& t) {
    return t.slice(0, border, t.size(0) - border).slice(1, border, t.size(1) - border).to(at::kDouble);
  };
  double mse = (crop(a) - crop(b)).pow(2).mean().item<double>();
  return 10 * std::log10(255.0 * 255.0 / std::max(mse, 1e-12));
}

at::Tensor crop_to_multiple(const at::Tensor& rgb, int64_t multiple) {
  return rgb.slice(0, 0, rgb.size(0) / multiple * multiple).slice(1, 0, rgb.size(1) / multiple * multiple).contiguous();
}

// A shared analyser (mesh, no embeddings) for the face tests.
FaceAnalyser& analyser() {
  static FaceAnalyser instance{
      FaceAnalyserOptions{.landmarker = FaceLandmarkerModel::mesh, .embeddings = false, .attributes = false}};
  return instance;
}

// Distance of pixel centre (x + 0.5, y + 0.5) inside (positive) or outside
// (negative) the convex hull of the face's mesh.
struct Hull {
  std::vector<std::array<double, 3>> planes;  // n.p + c >= 0 inside
  explicit Hull(const Face& face) {
    std::vector<Point2> p;
    for (size_t i = 0; i < 468; ++i) p.push_back({face.mesh[i].x, face.mesh[i].y});
    // Gift wrapping is enough for a test.
    std::sort(p.begin(), p.end(), [](Point2 a, Point2 b) { return a.x < b.x || (a.x == b.x && a.y < b.y); });
    auto cross = [](Point2 o, Point2 a, Point2 b) {
      return (a.x - o.x) * static_cast<double>(b.y - o.y) - (a.y - o.y) * static_cast<double>(b.x - o.x);
    };
    std::vector<Point2> hull;
    for (int pass = 0; pass < 2; ++pass) {
      size_t start = hull.size();
      for (size_t k = 0; k < p.size(); ++k) {
        Point2 q = pass == 0 ? p[k] : p[p.size() - 1 - k];
        while (hull.size() >= start + 2 && cross(hull[hull.size() - 2], hull.back(), q) <= 0) hull.pop_back();
        hull.push_back(q);
      }
      hull.pop_back();
    }
    double cx = 0, cy = 0;
    for (auto q : hull) cx += q.x / hull.size(), cy += q.y / hull.size();
    for (size_t i = 0; i < hull.size(); ++i) {
      Point2 a = hull[i], b = hull[(i + 1) % hull.size()];
      double ex = b.x - a.x, ey = b.y - a.y, len = std::hypot(ex, ey);
      if (len < 1e-9) continue;
      std::array<double, 3> h = {-ey / len, ex / len, 0};
      h[2] = -(h[0] * a.x + h[1] * a.y);
      if (h[0] * cx + h[1] * cy + h[2] < 0) h = {-h[0], -h[1], -h[2]};
      planes.push_back(h);
    }
  }
  double depth(int64_t x, int64_t y) const {
    double d = 1e9;
    for (const auto& h : planes) d = std::min(d, h[0] * (x + 0.5) + h[1] * (y + 0.5) + h[2]);
    return d;
  }
};

TEST(EnhancerModels, ParseNamesAndScales) {
  EXPECT_EQ(parse_enhancer_model("esrgan-slim-x2"), EnhancerModel::esrgan_slim_x2);
  EXPECT_EQ(parse_enhancer_model("esrgan-medium-x4"), EnhancerModel::esrgan_medium_x4);
  for (auto m : {EnhancerModel::esrgan_slim_x2, EnhancerModel::esrgan_slim_x4, EnhancerModel::esrgan_medium_x2,
                 EnhancerModel::esrgan_medium_x4})
    EXPECT_EQ(parse_enhancer_model(std::string(to_string(m))), m);
  EXPECT_EQ(enhancer_scale(EnhancerModel::esrgan_slim_x2), 2);
  EXPECT_EQ(enhancer_scale(EnhancerModel::esrgan_medium_x4), 4);
  EXPECT_EQ(enhancer_model_file(EnhancerModel::esrgan_medium_x2), "@upscalerjs/esrgan-medium/models/x2/model.json");
  try {
    parse_enhancer_model("esrgan-x3");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    EXPECT_NE(std::string(e.what()).find("esrgan-slim-x4"), std::string::npos) << e.what();
  }
  EXPECT_THROW(FaceEnhancer({.model = "gfpgan"}), Error);
  EXPECT_THROW(FaceEnhancer({.weight = 1.5f}), Error);
  EXPECT_THROW(FrameEnhancer({.tile_size = 16}), Error);
  EXPECT_THROW(FrameEnhancer({.tile_size = 64, .tile_overlap = 40}), Error);
}

// The whole pipeline (input range, pixel grid, tiling, edge handling)
// reproduces the result images UpscalerJS ships in each package, made by its
// own TF.js pipeline from assets/fixture.png. Our edges differ (we repeat the
// edge pixels where TF.js pads with zeros), so the comparison skips 16 pixels.
TEST(FrameEnhancer, ReproducesTheUpscalerJSSampleResults) {
  VISAGE_REQUIRE_NPM_DIR(npm);
  for (const char* name : {"esrgan-slim-x2", "esrgan-slim-x4", "esrgan-medium-x2", "esrgan-medium-x4"}) {
    EnhancerModel model = parse_enhancer_model(name);
    fs::path package = npm / enhancer_model_file(model).parent_path().parent_path().parent_path();
    at::Tensor fixture = read_image(package / "assets/fixture.png").rgb;
    at::Tensor expected =
        read_image(package / ("assets/samples/" + std::to_string(enhancer_scale(model)) + "x/result.png")).rgb;
    // Small tiles, so that the seams are inside the compared area.
    at::Tensor ours = FrameEnhancer({.model = name, .tile_size = 64, .tile_overlap = 16}).enhance(fixture);
    ASSERT_EQ(ours.sizes(), expected.sizes()) << name;
    EXPECT_GT(psnr(ours, expected, 16), 50.0) << name;
  }
}

// Quality on real photos shrunk 4x (antialiased bicubic, as the training
// data was made). These GAN-trained networks aim at a plausible texture, not
// the lowest error: on these photos their PSNR is up to 1.2 dB BELOW bicubic
// upscaling (measured 2026-11-25), so the test asserts what holds: close to
// bicubic, clearly above nearest-neighbour, and sharper (more gradient
// energy) than bicubic.
TEST(FrameEnhancer, X4QualityOnRealPhotos) {
  VISAGE_REQUIRE_NPM_DIR(npm);
  REQUIRE_GRACE_HOPPER(portrait);
  at::Tensor group = read_image(npm / "@vladmandic/face-api/demo/sample3.jpg").rgb;
  group = group.slice(0, 300, 700).slice(1, 600, 1240).contiguous();
  auto gradient_energy = [](const at::Tensor& rgb) {
    at::Tensor f = rgb.to(at::kFloat).mean(2);
    return (f.slice(1, 1) - f.slice(1, 0, -1)).abs().mean().item<double>() +
           (f.slice(0, 1) - f.slice(0, 0, -1)).abs().mean().item<double>();
  };
  for (const char* model : {"esrgan-slim-x4", "esrgan-medium-x4"}) {
    FrameEnhancer enhancer({.model = model});
    for (const at::Tensor& photo : {portrait, group}) {
      at::Tensor original = crop_to_multiple(photo, 4);
      at::Tensor small = downscale(original, 4);
      at::Tensor sr = enhancer.enhance(small);
      ASSERT_EQ(sr.sizes(), original.sizes());
      at::Tensor bicubic = bicubic_upscale(small, 4);
      at::Tensor nearest = to_rgb(at::upsample_nearest2d(to_nchw(small), {original.size(0), original.size(1)}));
      double ours = psnr(sr, original, 8), reference = psnr(bicubic, original, 8), blocky = psnr(nearest, original, 8);
      std::cout << "[ info ] " << model << " " << original.size(1) << "x" << original.size(0) << ": ESRGAN " << ours
                << " dB, bicubic " << reference << " dB, nearest " << blocky << " dB\n";
      EXPECT_GT(ours, reference - 1.5) << model;
      EXPECT_GT(ours, blocky + 0.5) << model;
      EXPECT_GT(gradient_energy(sr), gradient_energy(bicubic)) << model;
    }
  }
}

TEST(FrameEnhancer, TiledMatchesOneTile) {
  REQUIRE_GRACE_HOPPER(portrait);
  // 200x170 (216x186 with the edge padding): 3 x 3 tiles of 80, unevenly spaced.
  at::Tensor image = portrait.slice(0, 150, 320).slice(1, 150, 350).contiguous();
  for (const char* model : {"esrgan-slim-x2", "esrgan-slim-x4"}) {
    FrameEnhancer whole({.model = model, .tile_size = 512, .tile_overlap = 32});
    FrameEnhancer tiled({.model = model, .tile_size = 80, .tile_overlap = 16});
    at::Tensor a = whole.enhance(image), b = tiled.enhance(image);
    ASSERT_EQ(a.sizes(), b.sizes());
    at::Tensor diff = (a.to(at::kFloat) - b.to(at::kFloat)).abs();
    double mean = diff.mean().item<double>(), max = diff.max().item<double>();
    EXPECT_LT(mean, 0.01) << model;
    EXPECT_LE(max, 4) << model;
    std::cout << "[ info ] " << model << " tiled vs whole: mean |diff| " << mean << ", max " << max << "\n";
    // And the tiled result is not trivially equal to a blur: it matches the
    // untiled one far better than bicubic does.
    double bicubic_mean =
        (bicubic_upscale(image, whole.scale()).to(at::kFloat) - a.to(at::kFloat)).abs().mean().item<double>();
    EXPECT_LT(mean * 5, bicubic_mean) << model;
  }
}

TEST(FrameEnhancer, OutputSizesAndDevice) {
  REQUIRE_GRACE_HOPPER(portrait);
  FrameEnhancer x2({.model = "esrgan-slim-x2", .tile_size = 64, .tile_overlap = 16});
  FrameEnhancer x4 = FrameEnhancer({.model = "esrgan-slim-x4", .tile_size = 64, .tile_overlap = 16}).clone();
  for (auto [h, w] : {std::pair<int64_t, int64_t>{97, 131}, {5, 7}, {1, 1}, {64, 65}, {200, 33}}) {
    at::Tensor image = portrait.slice(0, 150, 150 + h).slice(1, 200, 200 + w);  // a strided view
    at::Tensor a = x2.enhance(image), b = x4.enhance(image);
    EXPECT_EQ(a.sizes(), (at::IntArrayRef{h * 2, w * 2, 3}));
    EXPECT_EQ(b.sizes(), (at::IntArrayRef{h * 4, w * 4, 3}));
    EXPECT_EQ(a.scalar_type(), at::kByte);
    EXPECT_TRUE(a.is_cpu());
    // Roughly the same picture: the means agree.
    EXPECT_NEAR(a.to(at::kFloat).mean().item<double>(), image.to(at::kFloat).mean().item<double>(), 6.0);
  }
  EXPECT_THROW(x2.enhance(at::zeros({10, 10}, at::kByte)), Error);
  EXPECT_THROW(x2.enhance(at::zeros({10, 10, 3}, at::kFloat)), Error);
}

TEST(FaceEnhancer, ChangesTheFaceAndNothingOutsideIt) {
  VISAGE_REQUIRE_NPM_DIR(npm);
  REQUIRE_GRACE_HOPPER(portrait);
  auto faces = analyser().analyse(portrait);
  ASSERT_EQ(faces.size(), 1u);
  FaceEnhancer enhancer({.model = "esrgan-slim-x4"});
  at::Tensor out = enhancer.enhance_faces(portrait, faces, 1.0f);
  ASSERT_EQ(out.sizes(), portrait.sizes());
  ASSERT_EQ(out.scalar_type(), at::kByte);
  at::Tensor changed = (out != portrait).any(2);
  auto changed_a = changed.accessor<bool, 2>();
  Hull hull(faces[0]);
  int64_t changed_outside = 0, changed_inside = 0, inside = 0;
  for (int64_t y = 0; y < out.size(0); ++y)
    for (int64_t x = 0; x < out.size(1); ++x) {
      double d = hull.depth(x, y);
      if (d < -0.01 && changed_a[y][x]) ++changed_outside;
      if (d > 10) inside++, changed_inside += changed_a[y][x];
    }
  EXPECT_EQ(changed_outside, 0) << "pixels outside the face's hull must stay bit-identical";
  ASSERT_GT(inside, 10000);
  EXPECT_GT(changed_inside, inside / 2) << "the face itself should change";
  // The change is real detail, not noise: it stays close to the original.
  at::Tensor face_box = out.slice(0, 180, 300).slice(1, 200, 320).to(at::kFloat);
  at::Tensor before = portrait.slice(0, 180, 300).slice(1, 200, 320).to(at::kFloat);
  double mean_change = (face_box - before).abs().mean().item<double>();
  EXPECT_GT(mean_change, 0.5);
  EXPECT_LT(mean_change, 12.0);

  // A smaller weight changes less; weight 0 is the identity.
  at::Tensor half = enhancer.enhance_faces(portrait, faces, 0.4f);
  double half_change = (half.slice(0, 180, 300).slice(1, 200, 320).to(at::kFloat) - before).abs().mean().item<double>();
  EXPECT_LT(half_change, mean_change * 0.7);
  EXPECT_GT(half_change, mean_change * 0.2);
  EXPECT_TRUE(at::equal(enhancer.enhance_faces(portrait, faces, 0.f), portrait));
  EXPECT_TRUE(at::equal(enhancer.enhance_faces(portrait, {}, 1.f), portrait));
  EXPECT_THROW(enhancer.enhance_faces(portrait, faces, -0.1f), Error);
  // The input is never modified.
  EXPECT_TRUE(at::equal(portrait, read_image(kGraceHopper).rgb));
}

TEST(FaceEnhancer, WithoutMeshUsesAnEllipseAroundTheFace) {
  VISAGE_REQUIRE_NPM_DIR(npm);
  at::Tensor group = read_image(npm / "@vladmandic/face-api/demo/sample1.jpg").rgb;
  FaceAnalyser detector({.landmarker = FaceLandmarkerModel::none, .embeddings = false, .attributes = false});
  auto faces = detector.analyse(group);
  ASSERT_EQ(faces.size(), 3u);
  FaceEnhancer enhancer({.model = "esrgan-slim-x2"});
  at::Tensor out = enhancer.enhance_faces(group, faces, 0.8f);
  at::Tensor changed = (out != group).any(2);
  // Every changed pixel is near one of the faces (box grown by 40%), and each face changed.
  at::Tensor near_a_face = at::zeros_like(changed);
  for (const auto& f : faces) {
    int64_t x0 = std::max<int64_t>(0, std::lround(f.box.x - 0.4 * f.box.width));
    int64_t x1 = std::lround(f.box.x + 1.4 * f.box.width);
    int64_t y0 = std::max<int64_t>(0, std::lround(f.box.y - 0.4 * f.box.height));
    int64_t y1 = std::lround(f.box.y + 1.4 * f.box.height);
    near_a_face.slice(0, y0, y1).slice(1, x0, x1).fill_(true);
    Point2 c = f.box.centre();
    int64_t cx = std::lround(c.x), cy = std::lround(c.y), r = std::lround(f.box.width / 4);
    EXPECT_GT(changed.slice(0, cy - r, cy + r).slice(1, cx - r, cx + r).to(at::kFloat).mean().item<double>(), 0.3)
        << "face at " << c.x << "," << c.y;
  }
  EXPECT_EQ((changed & ~near_a_face).sum().item<int64_t>(), 0);
}

TEST(FaceEnhancer, CloneSharesTheModelAndGivesTheSameResult) {
  VISAGE_REQUIRE_NPM_DIR(npm);
  REQUIRE_GRACE_HOPPER(portrait);
  auto faces = analyser().analyse(portrait);
  FaceEnhancer enhancer({.model = "esrgan-medium-x2"});
  FaceEnhancer copy = enhancer.clone();
  EXPECT_EQ(copy.model(), EnhancerModel::esrgan_medium_x2);
  EXPECT_TRUE(at::equal(enhancer.enhance_faces(portrait, faces, 0.7f), copy.enhance_faces(portrait, faces, 0.7f)));
}

TEST(Enhancers, CudaMatchesCpu) {
  VISAGE_REQUIRE_NPM_DIR(npm);
  REQUIRE_GRACE_HOPPER(portrait);
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device (or a CPU-only build): CUDA-vs-CPU parity not run";
  auto faces = analyser().analyse(portrait);
  ASSERT_EQ(faces.size(), 1u);
  RuntimeOptions cuda{.device = Device::cuda};
  FaceEnhancer cpu_faces({.model = "esrgan-slim-x4"}), gpu_faces({.model = "esrgan-slim-x4"}, cuda);
  at::Tensor a = cpu_faces.enhance_faces(portrait, faces, 1.f);
  at::Tensor b = gpu_faces.enhance_faces(portrait.to(at::kCUDA), faces, 1.f);
  ASSERT_TRUE(b.is_cuda());
  b = b.cpu();
  // A CUDA model fed a CPU image gives a CPU image.
  EXPECT_TRUE(gpu_faces.enhance_faces(portrait, faces, 1.f).is_cpu());
  at::Tensor diff = (a.to(at::kFloat) - b.to(at::kFloat)).abs();
  EXPECT_LT(diff.mean().item<double>(), 0.1);
  EXPECT_LE(diff.max().item<double>(), 8);
  // Outside the face both are the untouched photo.
  EXPECT_TRUE(at::equal(a.slice(0, 450), b.slice(0, 450)));

  at::Tensor image = portrait.slice(0, 100, 360).slice(1, 100, 400).contiguous();
  for (Precision precision : {Precision::fp32, Precision::fp16}) {
    FrameEnhancer cpu_frames({.model = "esrgan-medium-x2", .tile_size = 96});
    FrameEnhancer gpu_frames({.model = "esrgan-medium-x2", .tile_size = 96},
                             {.device = Device::cuda, .precision = precision});
    at::Tensor c = cpu_frames.enhance(image), g = gpu_frames.enhance(image.to(at::kCUDA));
    ASSERT_TRUE(g.is_cuda());
    at::Tensor d = (c.to(at::kFloat) - g.cpu().to(at::kFloat)).abs();
    double mean_limit = precision == Precision::fp32 ? 0.05 : 0.5;
    EXPECT_LT(d.mean().item<double>(), mean_limit) << (precision == Precision::fp32 ? "fp32" : "fp16");
    EXPECT_LE(d.max().item<double>(), precision == Precision::fp32 ? 2 : 12);
  }
}

// `visage enhance` as a user runs it.
struct CliRun {
  int exit_code = -1;
  std::string out, err;
};

CliRun run_cli(const std::string& arguments, const fs::path& dir) {
  fs::path err_file = dir / "stderr.txt";
  visage::test::CliRun ran = visage::test::run_cli(arguments, err_file);
  return {ran.exit_code, std::move(ran.out), visage::test::read_text(err_file)};
}

TEST(CliEnhance, BatchWithACorruptFileKeepsGoing) {
  VISAGE_REQUIRE_NPM_DIR(npm);
  REQUIRE_GRACE_HOPPER(portrait);
  fs::path dir = fs::temp_directory_path() / ("visage-enhance-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "in");
  fs::copy_file(kGraceHopper, dir / "in/a_portrait.jpg");
  {
    std::string bytes = visage::test::read_text(kGraceHopper);
    std::ofstream(dir / "in/b_truncated.jpg", std::ios::binary) << bytes.substr(0, bytes.size() / 3);
  }
  CliRun run = run_cli("enhance " + (dir / "in").string() + " -o " + (dir / "out").string() +
                           " --face-enhancer esrgan-slim-x2 --face-enhancer-weight 1 --output-image-quality 95",
                       dir);
  EXPECT_EQ(run.exit_code, 1) << run.err;
  EXPECT_NE(run.out.find("1 face(s) enhanced"), std::string::npos) << run.out;
  EXPECT_NE(run.err.find("b_truncated.jpg"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("1 of 2 image(s) failed"), std::string::npos) << run.err;
  ASSERT_TRUE(fs::exists(dir / "out/a_portrait.jpg"));
  EXPECT_FALSE(fs::exists(dir / "out/b_truncated.jpg"));
  at::Tensor result = read_image(dir / "out/a_portrait.jpg").rgb;
  ASSERT_EQ(result.sizes(), portrait.sizes());
  // The face changed; a corner far from it is the photo (up to JPEG re-encoding).
  auto region_diff = [&](int64_t y0, int64_t y1, int64_t x0, int64_t x1) {
    return (result.slice(0, y0, y1).slice(1, x0, x1).to(at::kFloat) -
            portrait.slice(0, y0, y1).slice(1, x0, x1).to(at::kFloat))
        .abs()
        .mean()
        .item<double>();
  };
  EXPECT_LT(region_diff(500, 600, 0, 100), 1.5);
  EXPECT_GT(region_diff(180, 300, 200, 320), region_diff(500, 600, 0, 100) + 0.3);
  // No temporary files left behind.
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir / "out")) ++entries;
  EXPECT_EQ(entries, 1u);

  // Frame enhancer into a named file (PNG: lossless, so sizes and pixels are exact).
  at::Tensor small = portrait.slice(0, 200, 300).slice(1, 200, 280).contiguous();
  write_image(dir / "small.png", small);
  run = run_cli("enhance " + (dir / "small.png").string() + " -o " + (dir / "big.png").string() +
                    " --frame-enhancer esrgan-slim-x2",
                dir);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  at::Tensor big = read_image(dir / "big.png").rgb;
  EXPECT_EQ(big.sizes(), (at::IntArrayRef{200, 160, 3}));
  // The same as the library call (up to the rounding of convolution
  // algorithms the CPU runtime picks by timing).
  at::Tensor in_process = FrameEnhancer({.model = "esrgan-slim-x2"}).enhance(small);
  EXPECT_LE((big.to(at::kFloat) - in_process.to(at::kFloat)).abs().max().item<double>(), 2.0);
  fs::remove_all(dir);
}

TEST(CliEnhance, BadOptionsExitWithUsageError) {
  fs::path dir = fs::temp_directory_path();
  EXPECT_EQ(run_cli("enhance x.jpg -o y.jpg --face-enhancer esrgan-huge", dir).exit_code, 2);
  EXPECT_EQ(run_cli("enhance x.jpg -o y.jpg --frame-enhancer x3", dir).exit_code, 2);
  EXPECT_EQ(run_cli("enhance x.jpg -o y.jpg --face-enhancer-weight 1.5", dir).exit_code, 2);
  EXPECT_EQ(run_cli("enhance x.jpg -o y.jpg --output-image-quality 0", dir).exit_code, 2);
  EXPECT_EQ(run_cli("enhance x.jpg -o y.jpg --device tpu", dir).exit_code, 2);
  EXPECT_EQ(run_cli("enhance x.jpg -o y.xyz", dir).exit_code, 2);
  EXPECT_EQ(run_cli("enhance x.jpg a.jpg -o y.jpg", dir).exit_code, 2);
  EXPECT_EQ(run_cli("enhance x.jpg", dir).exit_code, 2);
  EXPECT_EQ(run_cli("enhance x.jpg -o y.jpg --no-such-option", dir).exit_code, 2);
}

}  // namespace
}  // namespace visage
