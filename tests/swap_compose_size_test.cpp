// The swap's working size (SwapOptions::compose_face_size): a close-up target
// face is composed at the source texture's face size and scaled up. On a real
// photo the result stays close to composing at full resolution, and pixels
// outside the face are still the target's.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "face/geometry.hpp"
#include "face_test_support.hpp"
#include "test_support.hpp"
#include "visage/face.hpp"
#include "visage/image.hpp"
#include "visage/swap.hpp"

namespace {

using namespace visage;
using test::inside_polygon;
using test::mesh_hull;

// Whether (x, y) lies within `tolerance` pixels of the polygon (checked at
// 8 directions and the point itself).
bool near_polygon(const std::vector<Point2>& poly, float x, float y, float tolerance) {
  if (inside_polygon(poly, x, y)) return true;
  for (int k = 0; k < 8; ++k) {
    const float a = static_cast<float>(k) * 0.785398f;
    if (inside_polygon(poly, x + tolerance * std::cos(a), y + tolerance * std::sin(a))) return true;
  }
  return false;
}

class SwapComposeSize : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const auto photos = test::registry_photos();
    if (!photos || !test::all_exist({photos->astronaut, photos->grace_hopper})) return;
    astronaut = read_image(photos->astronaut).rgb;
    // A close-up: Grace Hopper's portrait at twice its size (face ~400 px),
    // while the astronaut's face in the source texture is ~200 px.
    at::Tensor hopper = read_image(photos->grace_hopper).rgb;
    closeup = test::resize_image(hopper, hopper.size(0) * 2, hopper.size(1) * 2);
    ready = true;
  }
  void SetUp() override {
    if (!ready) VISAGE_SKIP_OR_FAIL_WITHOUT_PHOTOS();
  }
  static inline bool ready = false;
  static inline at::Tensor astronaut, closeup;
};

TEST_F(SwapComposeSize, RejectsATinyWorkingSize) {
  SwapOptions options;
  options.compose_face_size = 8;
  EXPECT_THROW(FaceSwapper{options}, Error);
  options.compose_face_size = -1;
  EXPECT_THROW(FaceSwapper{options}, Error);
}

TEST_F(SwapComposeSize, CloseUpComposedAtTheSourceSizeMatchesFullResolution) {
  FaceSwapper capped{SwapOptions{}};
  SwapOptions full_options;
  full_options.compose_face_size = 4096;  // every face at its own size
  FaceSwapper full{full_options};
  SourceFace source = capped.prepare_source({astronaut});
  SourceFace full_source = full.prepare_source({astronaut});

  // One analysis for both (two analysers may differ in the last bits).
  const std::vector<Face> found = capped.analyser().analyse(closeup);
  const Face* t = test::largest_face(found);
  ASSERT_TRUE(t);
  at::Tensor a = capped.swap(closeup, {SwapAssignment{*t, &source}});
  ASSERT_EQ(capped.faces_swapped(), 1u);
  at::Tensor b = full.swap(closeup, {SwapAssignment{*t, &full_source}});
  ASSERT_EQ(full.faces_swapped(), 1u);
  ASSERT_GT(std::max(t->box.width, t->box.height), 330.f) << "the target must be a close-up for this test";
  std::vector<Point2> hull = mesh_hull(*t);

  at::Tensor diff = (a.to(at::kShort) - b.to(at::kShort)).abs().to(at::kFloat);  // [H, W, 3]
  at::Tensor changed = ((closeup.to(at::kShort) - b.to(at::kShort)).abs().amax(2) > 0);
  ASSERT_GT(changed.sum().item<int64_t>(), 20000) << "the full-resolution swap must change the face";

  // Inside the face: the same picture (mean and high percentile of the
  // per-pixel difference over the face's hull).
  std::vector<float> face_diffs;
  auto d = diff.amax(2).contiguous();
  const float* dp = d.data_ptr<float>();
  const int64_t h = d.size(0), w = d.size(1);
  int64_t outside_changed = 0;
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      const float v = dp[y * w + x];
      if (inside_polygon(hull, x + 0.5f, y + 0.5f)) {
        face_diffs.push_back(v);
      } else if (v > 1.f && !near_polygon(hull, x + 0.5f, y + 0.5f, 0.1f * std::max(t->box.width, t->box.height))) {
        // Beyond the face both composites are the warped target (up to a
        // rounding where the new, taller outline's faint mask reaches).
        ++outside_changed;
      }
    }
  ASSERT_GT(face_diffs.size(), 50000u);
  double mean = 0;
  for (float v : face_diffs) mean += v;
  mean /= static_cast<double>(face_diffs.size());
  std::sort(face_diffs.begin(), face_diffs.end());
  const float p99 = face_diffs[face_diffs.size() * 99 / 100];
  std::printf("capped vs full resolution inside the face: mean %.2f, 99th percentile %.0f, max %.0f levels\n", mean,
              p99, face_diffs.back());
  EXPECT_LT(mean, 2.5) << "the composite at the source's size must stay close to the full-resolution one";
  EXPECT_LE(p99, 16.f);
  EXPECT_EQ(outside_changed, 0) << "pixels away from the face differ between the two working sizes";
}

TEST_F(SwapComposeSize, WithoutShapeChangeNothingOutsideTheFaceOutlineChanges) {
  SwapOptions options;
  options.shape_weight = 0;
  FaceSwapper texture_only(options);
  SourceFace source = texture_only.prepare_source({astronaut});
  at::Tensor out = texture_only.swap(closeup, source);
  ASSERT_EQ(texture_only.faces_swapped(), 1u);
  const std::vector<Face> found = texture_only.analyser().analyse(closeup);
  const Face* t = test::largest_face(found);
  ASSERT_TRUE(t);
  std::vector<Point2> hull = mesh_hull(*t);
  at::Tensor diff = ((out.to(at::kShort) - closeup.to(at::kShort)).abs().amax(2) > 0).nonzero();
  ASSERT_GT(diff.size(0), 20000) << "the face must change";
  // The face is composed at about half its size: its outline moves by up to
  // a pixel there, two here.
  int64_t outside = 0;
  auto idx = diff.accessor<int64_t, 2>();
  for (int64_t i = 0; i < diff.size(0); ++i) outside += !near_polygon(hull, idx[i][1] + 0.5f, idx[i][0] + 0.5f, 2.5f);
  EXPECT_EQ(outside, 0) << "pixels outside the target's face outline changed";
}

}  // namespace
