// End-to-end face analysis on real photos from the package registries:
// Debian's matplotlib sample portrait and @vladmandic/face-api's demo photos.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "face_test_support.hpp"
#include "test_support.hpp"
#include "visage/face.hpp"
#include "visage/image.hpp"

namespace visage {
namespace {

const std::filesystem::path kGraceHopper = "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg";

at::Tensor grace_hopper() {
  if (!std::filesystem::exists(kGraceHopper)) return {};
  return read_image(kGraceHopper).rgb;
}

#define REQUIRE_GRACE_HOPPER(var)                                                                         \
  at::Tensor var = grace_hopper();                                                                        \
  if (!var.defined()) {                                                                                   \
    if (test::npm_required()) GTEST_FAIL() << kGraceHopper << " missing (Debian python-matplotlib-data)"; \
    GTEST_SKIP() << kGraceHopper << " missing: install Debian's python-matplotlib-data";                  \
  }

FaceAnalyser& shared_analyser() {
  static FaceAnalyser analyser{FaceAnalyserOptions{}};
  return analyser;
}

float dist(Point2 a, Point2 b) { return std::hypot(a.x - b.x, a.y - b.y); }

TEST(FaceAnalysis, PortraitHasOneUprightFaceWithFullLandmarks) {
  VISAGE_REQUIRE_NPM_DIR(npm);
  REQUIRE_GRACE_HOPPER(rgb);
  auto faces = shared_analyser().analyse(rgb);
  ASSERT_EQ(faces.size(), 1u);
  const Face& f = faces[0];
  // The face (brow to chin, ear to ear) sits around x 170..360, y 130..335 of
  // the 512x600 photo; the uniform and flag around it are not faces.
  EXPECT_NEAR(f.box.centre().x, 263, 25);
  EXPECT_NEAR(f.box.centre().y, 233, 30);
  EXPECT_GT(f.box.width, 140);
  EXPECT_LT(f.box.width, 240);
  EXPECT_GT(f.detector_score, 0.7f);
  EXPECT_GT(f.landmark_score, 0.9f);
  EXPECT_EQ(f.mesh.size(), 478u);
  EXPECT_EQ(f.landmarks_68.size(), 68u);
  EXPECT_NEAR(f.roll, 0, 8);
  // Anatomy: eyes above the nose, nose above the mouth, left eye on the left.
  const auto& p = f.landmarks_5;
  EXPECT_LT(p[left_eye].x, p[right_eye].x);
  EXPECT_LT(p[mouth_left].x, p[mouth_right].x);
  EXPECT_LT(p[left_eye].y, p[nose_tip].y);
  EXPECT_LT(p[nose_tip].y, p[mouth_left].y);
  float eyes = dist(p[left_eye], p[right_eye]);
  EXPECT_GT(eyes, 0.25f * f.box.width);
  EXPECT_LT(eyes, 0.6f * f.box.width);
  // Every point inside the face box grown by 10%.
  for (const auto& q : f.landmarks_68) {
    EXPECT_GT(q.x, f.box.x - 0.1f * f.box.width);
    EXPECT_LT(q.x, f.box.x + 1.1f * f.box.width);
  }
  // Iris centres (468, 473) lie between their eye corners (33/133, 263/362).
  EXPECT_LT(dist({f.mesh[468].x, f.mesh[468].y}, p[left_eye]), 1e-3f);
  EXPECT_GT(f.mesh[468].x, std::min(f.mesh[33].x, f.mesh[133].x));
  EXPECT_LT(f.mesh[468].x, std::max(f.mesh[33].x, f.mesh[133].x));
  ASSERT_TRUE(f.age.has_value());
  EXPECT_GT(*f.age, 30.f);  // an elderly woman; faceres guesses ~60
  EXPECT_EQ(f.embedding.size(), 512u);
}

TEST(FaceAnalysis, GroupPhotosFaceCounts) {
  VISAGE_REQUIRE_NPM_DIR(npm);
  // Counted by eye on the face-api demo photos: every face seen from the
  // front or three-quarters (sample5's includes a framed photo on the wall).
  // sample2 has a third woman in full profile, which BlazeFace does not find.
  const std::pair<const char*, size_t> expected[] = {{"sample1.jpg", 3}, {"sample2.jpg", 2}, {"sample3.jpg", 3},
                                                     {"sample4.jpg", 4}, {"sample5.jpg", 6}, {"sample6.jpg", 4}};
  FaceAnalyserOptions options;
  options.embeddings = options.attributes = false;
  FaceAnalyser analyser(options);
  for (const auto& [name, count] : expected) {
    auto image = read_image(npm / "@vladmandic/face-api/demo" / name);
    auto faces = analyser.analyse(image.rgb);
    EXPECT_EQ(faces.size(), count) << name;
    for (const auto& f : faces) {
      EXPECT_GT(f.landmark_score, 0.5f) << name;
      EXPECT_EQ(f.mesh.size(), 478u) << name;
    }
  }
}

TEST(FaceAnalysis, RotatedImageNeedsTheAngleSearch) {
  VISAGE_REQUIRE_NPM_DIR(npm);
  REQUIRE_GRACE_HOPPER(rgb);
  at::Tensor turned = at::rot90(rgb, 1, {0, 1}).contiguous();  // face lying on its side
  FaceAnalyserOptions options;
  options.embeddings = options.attributes = false;
  options.detector_angles = {0, 90, 180, 270};
  FaceAnalyser analyser(options);
  auto faces = analyser.analyse(turned);
  ASSERT_EQ(faces.size(), 1u);
  EXPECT_NE(faces[0].detector_angle, 0);
  EXPECT_NEAR(std::abs(faces[0].roll), 90, 10);
  // The eyes are stacked vertically now.
  const auto& p = faces[0].landmarks_5;
  EXPECT_GT(std::abs(p[left_eye].y - p[right_eye].y), 3 * std::abs(p[left_eye].x - p[right_eye].x));
  // Landmarks follow the rotation: rot90 maps (x, y) to (y, W - x).
  auto upright = shared_analyser().analyse(rgb);
  ASSERT_EQ(upright.size(), 1u);
  const float w = static_cast<float>(rgb.size(1));
  for (int i = 0; i < 5; ++i) {
    Point2 q = upright[0].landmarks_5[i];
    EXPECT_LT(dist(p[i], {q.y, w - q.x}), 0.06f * upright[0].box.width) << "point " << i;
  }
}

TEST(FaceAnalysis, SmallFaceInLargeImageFoundByTiles) {
  VISAGE_REQUIRE_NPM_DIR(npm);
  REQUIRE_GRACE_HOPPER(rgb);
  // The portrait shrunk to 128 px high inside a 2400x1600 grey canvas: the face
  // is ~40 px, 1/60 of the canvas, below the whole-image detector's reach.
  at::Tensor small = test::resize_image(rgb, 128, 109);
  at::Tensor canvas = at::full({1600, 2400, 3}, 128, at::kByte);
  canvas.slice(0, 1000, 1128).slice(1, 1700, 1809).copy_(small);
  FaceAnalyserOptions options;
  options.embeddings = options.attributes = false;
  options.tile_size = -1;
  auto whole = FaceAnalyser(options).detect(canvas);
  options.tile_size = 0;  // automatic
  FaceAnalyser tiled(options);
  auto faces = tiled.analyse(canvas);
  ASSERT_EQ(faces.size(), 1u) << "whole-image detection found " << whole.size();
  EXPECT_NEAR(faces[0].box.centre().x, 1700 + 109 * 263.f / 512, 10);
  EXPECT_NEAR(faces[0].box.centre().y, 1000 + 128 * 233.f / 600, 10);
}

TEST(FaceAnalysis, ImagesWithoutFacesGiveNone) {
  VISAGE_REQUIRE_NPM_DIR(npm);
  // Flat grey, noise, and the portrait's flag corner (stars and stripes).
  REQUIRE_GRACE_HOPPER(rgb);
  at::manual_seed(7);
  std::vector<at::Tensor> images = {at::full({480, 640, 3}, 128, at::kByte),
                                    at::randint(0, 256, {300, 300, 3}, at::kByte),
                                    rgb.slice(0, 0, 250).slice(1, 0, 150).contiguous()};
  for (const auto& image : images) EXPECT_TRUE(shared_analyser().analyse(image).empty());
}

TEST(FaceAnalysis, TinyAndMalformedImages) {
  VISAGE_REQUIRE_NPM_DIR(npm);
  EXPECT_TRUE(shared_analyser().analyse(at::full({1, 1, 3}, 200, at::kByte)).empty());
  EXPECT_TRUE(shared_analyser().analyse(at::full({3, 2000, 3}, 200, at::kByte)).empty());
  try {
    shared_analyser().analyse(at::zeros({10, 10}, at::kByte));
    FAIL() << "a 2-D tensor was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
  }
  EXPECT_THROW(shared_analyser().analyse(at::zeros({10, 10, 3}, at::kFloat)), Error);
  EXPECT_THROW(FaceAnalyser(FaceAnalyserOptions{.detector_angles = {45}}), Error);
}

TEST(FaceAnalysis, SamePersonCloserThanOthers) {
  VISAGE_REQUIRE_NPM_DIR(npm);
  REQUIRE_GRACE_HOPPER(rgb);
  // The same person through what cameras and sharing do to a photo (mirror,
  // half resolution, JPEG at quality 30) against the women of sample1.jpg.
  auto& analyser = shared_analyser();
  auto reference = analyser.analyse(rgb);
  ASSERT_EQ(reference.size(), 1u);
  std::vector<at::Tensor> variants = {
      rgb.flip(1).contiguous(), test::resize_image(rgb, 300, 256),
      decode_image(encode_image(rgb, ImageFormat::jpeg, {.quality = 30}), "q30.jpg").rgb};
  float worst_same = 0;
  for (const auto& v : variants) {
    auto faces = analyser.analyse(v);
    ASSERT_EQ(faces.size(), 1u);
    worst_same = std::max(worst_same, face_distance(reference[0].embedding, faces[0].embedding));
  }
  auto others = analyser.analyse(read_image(npm / "@vladmandic/face-api/demo/sample1.jpg").rgb);
  ASSERT_GE(others.size(), 3u);
  float best_other = 2;
  for (const auto& f : others) best_other = std::min(best_other, face_distance(reference[0].embedding, f.embedding));
  EXPECT_LT(worst_same, best_other);
  EXPECT_LT(worst_same, 0.4f);
  EXPECT_GT(best_other, 0.6f);
  // Reference selection keeps the same person and only them.
  FaceSelector selector{.mode = FaceSelectorMode::reference, .references = {reference[0].embedding}};
  EXPECT_TRUE(select_faces(others, selector).empty());
  EXPECT_EQ(select_faces(reference, selector).size(), 1u);
}

TEST(FaceAnalysis, AlignmentPutsTheEyesOnTheTemplate) {
  VISAGE_REQUIRE_NPM_DIR(npm);
  REQUIRE_GRACE_HOPPER(rgb);
  auto faces = shared_analyser().analyse(rgb);
  ASSERT_EQ(faces.size(), 1u);
  for (auto which : {AlignmentTemplate::arcface_112_v2, AlignmentTemplate::arcface_128, AlignmentTemplate::ffhq_512}) {
    const int size = which == AlignmentTemplate::ffhq_512 ? 512 : which == AlignmentTemplate::arcface_128 ? 128 : 112;
    Affine m = estimate_alignment(faces[0].landmarks_5, which, size);
    const auto& t = alignment_template(which);
    for (int i = 0; i < 5; ++i) {
      Point2 p = faces[0].landmarks_5[i];
      Point2 q{static_cast<float>(m[0] * p.x + m[1] * p.y + m[2]), static_cast<float>(m[3] * p.x + m[4] * p.y + m[5])};
      EXPECT_LT(dist(q, {t[i].x * size, t[i].y * size}), 0.06f * size) << "template point " << i;
    }
    at::Tensor crop = warp_face(rgb, m, size);
    EXPECT_EQ(crop.sizes(), at::IntArrayRef({size, size, 3}));
    // The crop is mostly face, not the black outside of the image.
    EXPECT_GT(crop.to(at::kFloat).mean().item<float>(), 60.f);
  }
}

TEST(FaceAnalysis, CudaMatchesCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device in this build/machine";
  VISAGE_REQUIRE_NPM_DIR(npm);
  at::Tensor rgb = read_image(npm / "@vladmandic/face-api/demo/sample1.jpg").rgb;
  auto cpu_faces = shared_analyser().analyse(rgb);
  for (Precision precision : {Precision::fp32, Precision::fp16}) {
    FaceAnalyserOptions options;
    options.runtime.device = Device::cuda;
    options.runtime.precision = precision;
    options.runtime.cuda_graphs = precision == Precision::fp16;
    FaceAnalyser gpu(options);
    auto gpu_faces = gpu.analyse(rgb.to(at::kCUDA));
    ASSERT_EQ(gpu_faces.size(), cpu_faces.size());
    for (size_t i = 0; i < cpu_faces.size(); ++i) {
      const float tolerance = (precision == Precision::fp32 ? 0.01f : 0.03f) * cpu_faces[i].box.width;
      for (int k = 0; k < 5; ++k)
        EXPECT_LT(dist(gpu_faces[i].landmarks_5[k], cpu_faces[i].landmarks_5[k]), tolerance) << "face " << i;
      EXPECT_LT(face_distance(gpu_faces[i].embedding, cpu_faces[i].embedding), 0.02f) << "face " << i;
    }
  }
}

}  // namespace
}  // namespace visage
