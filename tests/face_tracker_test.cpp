// Face tracking over frame sequences made from real photos: a camera pan
// (known motion), sensor noise on a still picture, a scene cut, a face
// covered for a few frames, faces crossing, frames without faces; and the
// One-Euro filter and jitter metric on their own.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <set>

#include "test_support.hpp"
#include "visage/error.hpp"
#include "visage/face.hpp"
#include "visage/image.hpp"
#include "visage/track.hpp"

namespace {

using namespace visage;

constexpr double kFps = 30;

// ---------------------------------------------------------------- One-Euro

TEST(OneEuroFilter, ConstantInputConverges) {
  OneEuroFilter filter(1.0f, 0.5f, 1.0f);
  EXPECT_EQ(filter(0.f, 0.0), 0.f);  // the first sample passes through
  float previous = 0;
  for (int i = 1; i <= 90; ++i) {
    float y = filter(5.f, i / kFps);
    EXPECT_GE(y, previous) << "a step is followed monotonically";
    EXPECT_LE(y, 5.f);
    if (i == 1) {
      EXPECT_LT(y, 4.f) << "a step is not followed at once";
    }
    previous = y;
  }
  EXPECT_NEAR(previous, 5.f, 0.02f);
}

TEST(OneEuroFilter, HigherBetaLessLagOnAMove) {
  // A ramp of 2 units per second (units of the face size).
  auto lag_after_one_second = [](float beta) {
    OneEuroFilter filter(1.0f, beta, 1.0f);
    float y = 0;
    for (int i = 0; i <= 30; ++i) y = filter(2.f * i / kFps, i / kFps);
    return 2.f - y;
  };
  float slow = lag_after_one_second(0), fast = lag_after_one_second(5);
  EXPECT_GT(slow, 0.1f) << "without beta the filter lags a ramp by about speed / (2 pi min_cutoff)";
  EXPECT_GT(fast, 0.f);
  EXPECT_LT(fast, slow / 3);
}

TEST(OneEuroFilter, ScaleMakesParametersResolutionFree) {
  // The same motion in pixels of a 100 px and a 400 px face, with scale set
  // to the face size, gives the same output in face units.
  OneEuroFilter small(1.0f, 1.0f, 1.0f), large(1.0f, 1.0f, 1.0f);
  for (int i = 0; i <= 20; ++i) {
    float move = std::sin(i * 0.4f);
    float a = small(100 * move, i / kFps, 100), b = large(400 * move, i / kFps, 400);
    EXPECT_NEAR(a / 100, b / 400, 1e-5f);
  }
  // Without the scale, the same 1 face/s ramp is 100 px/s on one and
  // 400 px/s on the other: the larger picture is smoothed less and lags less.
  OneEuroFilter plain_small(1.0f, 0.02f, 1.0f), plain_large(1.0f, 0.02f, 1.0f);
  float a = 0, b = 0;
  for (int i = 0; i <= 30; ++i)
    a = plain_small(100.f * i / kFps, i / kFps), b = plain_large(400.f * i / kFps, i / kFps);
  EXPECT_GT(b / 400, a / 100 + 0.01f);
}

TEST(OneEuroFilter, RepeatedTimeAndResetAndBadParameters) {
  OneEuroFilter filter(1.0f, 0.f, 1.0f);
  filter(0.f, 0.0);
  float y = filter(1.f, 0.1);
  EXPECT_EQ(filter(100.f, 0.1), y) << "a repeated time stamp changes nothing";
  filter.reset();
  EXPECT_EQ(filter(7.f, 0.2), 7.f) << "after reset the next sample passes through";
  EXPECT_THROW(OneEuroFilter(0.f, 1.f, 1.f), Error);
  EXPECT_THROW(OneEuroFilter(1.f, -1.f, 1.f), Error);
  EXPECT_THROW(OneEuroFilter(1.f, 1.f, 0.f), Error);
}

TEST(LandmarkJitter, MeasuresRoughnessNotMotion) {
  std::vector<std::vector<Point2>> steady, shaking;
  std::vector<float> eyes(6, 2.f);
  for (int t = 0; t < 6; ++t) {
    steady.push_back({{3.f * t, 1.f}, {10.f, 2.f * t}});        // constant speed: no jitter
    shaking.push_back({{t % 2 ? 1.f : 0.f, 0.f}, {5.f, 5.f}});  // 0,1,0,1: |1 - 2*0 + 1| = 2 on one point of two
  }
  EXPECT_NEAR(landmark_jitter(steady, eyes), 0.0, 1e-9);
  EXPECT_NEAR(landmark_jitter(shaking, eyes), 2.0 / 2 / 2, 1e-9);  // per point 1, over 2 points, per eye distance 2
  EXPECT_THROW(landmark_jitter({steady[0], steady[1]}, {1.f, 1.f}), Error);
  EXPECT_THROW(landmark_jitter(steady, std::vector<float>(5, 1.f)), Error);
  auto uneven = steady;
  uneven[3].pop_back();
  EXPECT_THROW(landmark_jitter(uneven, eyes), Error);
}

// ---------------------------------------------------------------- tracking

at::Tensor crop(const at::Tensor& rgb, int64_t x, int64_t y, int64_t w, int64_t h) {
  return rgb.slice(0, y, y + h).slice(1, x, x + w).contiguous();
}

at::Tensor add_noise(const at::Tensor& rgb, double sigma) {
  return (rgb.to(at::kFloat) + at::randn(rgb.sizes()) * sigma).round().clamp(0, 255).to(at::kByte);
}

at::Tensor shrink(const at::Tensor& rgb, int factor) {
  at::Tensor f = rgb.permute({2, 0, 1}).unsqueeze(0).to(at::kFloat);
  return at::avg_pool2d(f, {factor, factor}).squeeze(0).permute({1, 2, 0}).round().to(at::kByte).contiguous();
}

float eye_distance(const Face& f) {
  return std::hypot(f.landmarks_5[left_eye].x - f.landmarks_5[right_eye].x,
                    f.landmarks_5[left_eye].y - f.landmarks_5[right_eye].y);
}

// Mean distance between two faces' 68 points, in eye distances of `b`.
float mean_error(const Face& a, const Face& b, float dx = 0, float dy = 0) {
  double sum = 0;
  for (size_t i = 0; i < 68; ++i)
    sum += std::hypot(a.landmarks_68[i].x + dx - b.landmarks_68[i].x, a.landmarks_68[i].y + dy - b.landmarks_68[i].y);
  return static_cast<float>(sum / 68 / eye_distance(b));
}

class FaceTracking : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const auto photos = test::registry_photos();
    if (!photos || !test::all_exist({photos->astronaut, photos->grace_hopper, photos->demo(1)})) return;
    FaceAnalyserOptions options;
    options.landmarker = FaceLandmarkerModel::mesh;  // the faster mesh: tracking logic does not depend on irises
    options.attributes = false;
    analyser = std::make_unique<FaceAnalyser>(options);
    astronaut = read_image(photos->astronaut).rgb;
    hopper = read_image(photos->grace_hopper).rgb;
    group = shrink(read_image(photos->demo(1)).rgb, 3);  // 640 x 426, three women
  }
  static void TearDownTestSuite() { analyser.reset(); }
  void SetUp() override {
    if (!analyser) VISAGE_SKIP_OR_FAIL_WITHOUT_PHOTOS();
    at::manual_seed(11);
  }

  // The one face of a single-face frame (by the detector and mesh, no tracking).
  static Face analyse_one(const at::Tensor& rgb) {
    auto faces = analyser->detect(rgb);
    analyser->landmark(rgb, faces);
    EXPECT_EQ(faces.size(), 1u);
    return faces.empty() ? Face{} : faces[0];
  }

  static inline std::unique_ptr<FaceAnalyser> analyser;
  static inline at::Tensor astronaut, hopper, group;
};

TEST_F(FaceTracking, PanKeepsOneIdAndFollowsTheKnownMotion) {
  // A 320x320 camera window moving 4 px right and 2 px down per frame over
  // the astronaut photo: the face moves the other way in the frame.
  const int n = 25;
  FaceTrackerOptions raw_options;
  raw_options.smoothing = false;
  FaceTracker raw_tracker(*analyser, raw_options), smooth_tracker(*analyser);
  std::set<int> ids;
  float worst_raw = 0, mean_raw = 0, mean_lag = 0, worst_lag = 0;
  std::vector<Point2> photo_points;  // the left eye, nose tip, mouth corner in photo coordinates, per frame
  double tracker_ms = 0, analyse_ms = 0;
  for (int i = 0; i < n; ++i) {
    const int64_t x0 = 4 * i, y0 = 2 * i;
    at::Tensor frame = crop(astronaut, x0, y0, 320, 320);
    auto start = std::chrono::steady_clock::now();
    auto raw = raw_tracker.track(frame, i / kFps);
    if (i > 0)
      tracker_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    auto smooth = smooth_tracker.track(frame, i / kFps);
    start = std::chrono::steady_clock::now();
    auto analysed = analyser->analyse(frame);  // what a tracker-less pipeline does on every frame
    if (i > 0)
      analyse_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    ASSERT_EQ(analysed.size(), 1u) << "frame " << i;
    const Face& truth = analysed[0];
    ASSERT_EQ(raw.size(), 1u) << "frame " << i;
    ASSERT_EQ(smooth.size(), 1u) << "frame " << i;
    ids.insert(raw[0].id), ids.insert(1000 + smooth[0].id);
    ASSERT_EQ(raw[0].face.landmarks_68.size(), 68u);
    EXPECT_EQ(raw[0].frames, i + 1);
    EXPECT_EQ(raw[0].detected, i % 10 == 0) << "frame " << i;
    // Followed landmarks agree with a fresh analysis of the frame.
    float e = mean_error(raw[0].face, truth);
    worst_raw = std::max(worst_raw, e), mean_raw += e / n;
    float lag = mean_error(smooth[0].face, truth);
    worst_lag = std::max(worst_lag, lag), mean_lag += lag / n;
    const Point2 nose = raw[0].face.landmarks_5[nose_tip];
    photo_points.push_back({nose.x + x0, nose.y + y0});
    EXPECT_EQ(raw[0].face.embedding.size(), 512u) << "the track's identity comes with every frame";
  }
  std::printf(
      "[ pan      ] 68-point error vs analysis: followed mean %.4f worst %.4f, smoothed mean %.4f worst %.4f "
      "(eye distances)\n",
      mean_raw, worst_raw, mean_lag, worst_lag);
  std::printf(
      "[ timing   ] after the first frame: tracker %.1f ms/frame, full analyse per frame %.1f ms/frame (noisy: shared "
      "machine)\n",
      tracker_ms / (n - 1), analyse_ms / (n - 1));
  EXPECT_EQ(ids.size(), 2u) << "one id per tracker over the whole pan";
  EXPECT_LT(worst_raw, 0.05f);
  EXPECT_LT(mean_lag, 0.06f) << "smoothing must not drag far behind a pan";
  EXPECT_LT(worst_lag, 0.12f);
  // In photo coordinates the nose stays put while the camera moves 96 px.
  float spread = 0;
  for (const auto& p : photo_points)
    spread = std::max(spread, std::hypot(p.x - photo_points[0].x, p.y - photo_points[0].y));
  EXPECT_LT(spread, 4.f);
  // Steady sequence: the detector ran on frames 0, 10 and 20 only; no cut.
  EXPECT_EQ(raw_tracker.stats().frames, n);
  EXPECT_EQ(raw_tracker.stats().detector_runs, 3);
  EXPECT_EQ(raw_tracker.stats().scene_cuts, 0);
  EXPECT_EQ(raw_tracker.stats().tracks_started, 1);
}

TEST_F(FaceTracking, SmoothingRemovesJitterOnANoisyStillHead) {
  const int n = 20;
  at::Tensor still = crop(astronaut, 96, 16, 320, 320);
  FaceTrackerOptions raw_options;
  raw_options.smoothing = false;
  FaceTracker raw_tracker(*analyser, raw_options), smooth_tracker(*analyser);
  std::vector<std::vector<Point2>> raw_points, smooth_points;
  std::vector<float> raw_eyes, smooth_eyes;
  for (int i = 0; i < n; ++i) {
    at::Tensor frame = add_noise(still, 8);
    auto raw = raw_tracker.track(frame, i / kFps);
    auto smooth = smooth_tracker.track(frame, i / kFps);
    ASSERT_EQ(raw.size(), 1u);
    ASSERT_EQ(smooth.size(), 1u);
    raw_points.push_back(raw[0].face.landmarks_68), raw_eyes.push_back(eye_distance(raw[0].face));
    smooth_points.push_back(smooth[0].face.landmarks_68), smooth_eyes.push_back(eye_distance(smooth[0].face));
    EXPECT_EQ(smooth[0].id, 1);
  }
  double raw_jitter = landmark_jitter(raw_points, raw_eyes),
         smooth_jitter = landmark_jitter(smooth_points, smooth_eyes);
  std::printf("[ jitter   ] noisy still head (sigma 8): raw %.5f, smoothed %.5f (x%.1f)\n", raw_jitter, smooth_jitter,
              raw_jitter / smooth_jitter);
  EXPECT_GT(raw_jitter, 0.0) << "noise must move the raw landmarks";
  EXPECT_LT(smooth_jitter, raw_jitter / 2);
  // Smoothing removes jitter, not position: the last smoothed points sit
  // near the raw points' average.
  float bias = 0;
  for (size_t p = 0; p < 68; ++p) {
    double mx = 0, my = 0;
    for (const auto& f : raw_points) mx += f[p].x / n, my += f[p].y / n;
    bias += std::hypot(smooth_points.back()[p].x - mx, smooth_points.back()[p].y - my) / 68;
  }
  EXPECT_LT(bias / raw_eyes.back(), 0.03f);
  EXPECT_EQ(raw_tracker.stats().scene_cuts, 0) << "noise is not a scene cut";
}

TEST_F(FaceTracking, SceneCutStartsNewTracks) {
  at::Tensor first = crop(astronaut, 96, 16, 320, 320), second = crop(hopper, 110, 80, 320, 320);
  FaceTracker tracker(*analyser);
  std::set<int> before, after;
  for (int i = 0; i < 12; ++i) {
    auto faces = tracker.track(add_noise(i < 6 ? first : second, 3), i / kFps);
    ASSERT_EQ(faces.size(), 1u) << "frame " << i;
    (i < 6 ? before : after).insert(faces[0].id);
    if (i == 6) {
      EXPECT_TRUE(faces[0].detected) << "the detector runs on the cut";
    }
    if (i == 6) {
      EXPECT_EQ(faces[0].frames, 1);
    }
  }
  EXPECT_EQ(tracker.stats().scene_cuts, 1);
  EXPECT_EQ(tracker.stats().detector_runs, 2);  // frame 0 and the cut
  EXPECT_EQ(tracker.stats().tracks_started, 2);
  ASSERT_EQ(before.size(), 1u);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_GT(*after.begin(), *before.begin()) << "ids are never reused";
  // reset() forgets the tracks too, without counting a cut.
  tracker.reset();
  auto faces = tracker.track(second, 12 / kFps);
  ASSERT_EQ(faces.size(), 1u);
  EXPECT_GT(faces[0].id, *after.begin());
  EXPECT_EQ(tracker.stats().scene_cuts, 1);
  EXPECT_EQ(tracker.stats().detector_runs, 3);
}

TEST_F(FaceTracking, CoveredFaceKeepsItsIdWithinMaxMissed) {
  at::Tensor still = crop(astronaut, 96, 16, 320, 320);
  const Face face = analyse_one(still);
  // A grey card over the face (its mesh box grown by 10%) on frames 4..7.
  at::Tensor covered = still.clone();
  const int64_t gx = static_cast<int64_t>(face.box.x - 0.1f * face.box.width);
  const int64_t gy = static_cast<int64_t>(face.box.y - 0.1f * face.box.height);
  covered.slice(0, std::max<int64_t>(0, gy), gy + static_cast<int64_t>(1.2f * face.box.height))
      .slice(1, std::max<int64_t>(0, gx), gx + static_cast<int64_t>(1.2f * face.box.width))
      .fill_(128);
  auto run = [&](int max_missed) {
    FaceTrackerOptions options;
    options.max_missed = max_missed;
    FaceTracker tracker(*analyser, options);
    std::vector<int> ids;  // -1 where no face
    for (int i = 0; i < 16; ++i) {
      auto faces = tracker.track(add_noise(i >= 4 && i < 8 ? covered : still, 3), i / kFps);
      EXPECT_LE(faces.size(), 1u);
      ids.push_back(faces.empty() ? -1 : faces[0].id);
    }
    EXPECT_EQ(tracker.stats().scene_cuts, 0) << "a card over the face is not a cut";
    return std::make_pair(ids, tracker.stats());
  };
  auto [ids, stats] = run(10);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(ids[i], i >= 4 && i < 8 ? -1 : 1) << "frame " << i;
  EXPECT_EQ(stats.tracks_started, 1);
  // With max_missed 2 the track is retired while covered: the face comes back
  // (at the next detection, frame 15) as a new person.
  auto [short_ids, short_stats] = run(2);
  EXPECT_EQ(short_ids[3], 1);
  EXPECT_EQ(short_ids.back(), 2);
  EXPECT_EQ(short_stats.tracks_started, 2);
}

TEST_F(FaceTracking, GroupKeepsDistinctIds) {
  auto expected = analyser->detect(group);
  analyser->landmark(group, expected);
  ASSERT_GE(expected.size(), 2u);
  FaceTrackerOptions options;
  options.detect_interval = 4;
  FaceTracker tracker(*analyser, options);
  std::map<int, Point2> first_seen;  // id -> nose tip
  for (int i = 0; i < 10; ++i) {
    auto faces = tracker.track(add_noise(group, 3), i / kFps);
    ASSERT_EQ(faces.size(), expected.size()) << "frame " << i;
    for (size_t k = 0; k < faces.size(); ++k) {
      if (k > 0) {
        EXPECT_LT(faces[k - 1].id, faces[k].id) << "in id order, distinct";
      }
      Point2 nose = faces[k].face.landmarks_5[nose_tip];
      auto [it, inserted] = first_seen.emplace(faces[k].id, nose);
      if (!inserted) {
        EXPECT_LT(std::hypot(nose.x - it->second.x, nose.y - it->second.y), 0.2f * eye_distance(faces[k].face))
            << "id " << faces[k].id << " moved to another face at frame " << i;
      }
    }
  }
  EXPECT_EQ(first_seen.size(), expected.size());
  EXPECT_EQ(tracker.stats().tracks_started, static_cast<int64_t>(expected.size()));
  EXPECT_EQ(tracker.stats().detector_runs, 3);  // frames 0, 4, 8
}

TEST_F(FaceTracking, CrossingFacesKeepTheirIds) {
  // Two faces on a grey background pass each other: A (the astronaut) left
  // to right behind B (Grace Hopper) right to left. While B covers A, A is
  // unseen; afterwards each id must be on its own person again.
  at::Tensor a = crop(astronaut, 130, 20, 180, 200), b = shrink(crop(hopper, 110, 60, 360, 400), 2);
  const int n = 23, width = 640, step = 20;
  FaceTrackerOptions options;
  options.detect_interval = 5;
  FaceTracker tracker(*analyser, options);
  int id_a = -1, id_b = -1;
  for (int i = 0; i < n; ++i) {
    at::Tensor frame = at::full({220, width, 3}, 110, at::kByte);
    const int64_t xa = 10 + step * i, xb = width - 190 - step * i;
    frame.slice(0, 10, 210).slice(1, xa, xa + 180).copy_(a);
    frame.slice(0, 10, 210).slice(1, xb, xb + 180).copy_(b);
    auto faces = tracker.track(add_noise(frame, 3), i / kFps);
    for (const auto& t : faces) {
      const float cx = t.face.box.centre().x;
      const bool on_a = std::abs(cx - (xa + 90)) < 40, on_b = std::abs(cx - (xb + 90)) < 40;
      if (std::abs(xa - xb) < 100) continue;  // overlapping: either may be visible
      ASSERT_TRUE(on_a || on_b) << "frame " << i << ": a face where none is";
      int& id = on_a ? id_a : id_b;
      if (id < 0) id = t.id;
      EXPECT_EQ(t.id, id) << "frame " << i << ": " << (on_a ? "A" : "B") << " changed id";
    }
    if (i == 0) {
      EXPECT_EQ(faces.size(), 2u);
    }
    if (i == n - 1) {
      EXPECT_EQ(faces.size(), 2u);
    }
  }
  EXPECT_NE(id_a, id_b);
  EXPECT_EQ(tracker.stats().tracks_started, 2);
}

TEST_F(FaceTracking, FramesWithoutFacesGiveNoTracks) {
  FaceTracker tracker(*analyser);
  for (int i = 0; i < 6; ++i) {
    at::Tensor frame = add_noise(at::full({240, 320, 3}, 120, at::kByte), 10);
    EXPECT_TRUE(tracker.track(frame, i / kFps).empty());
  }
  EXPECT_EQ(tracker.stats().tracks_started, 0);
  EXPECT_EQ(tracker.stats().detector_runs, 1);
  EXPECT_THROW(tracker.track(at::zeros({10, 10}, at::kByte), 1.0), Error);
  EXPECT_THROW(FaceTracker(*analyser, FaceTrackerOptions{.detect_interval = 0}), Error);
}

TEST_F(FaceTracking, WithoutMeshTheDetectorRunsOnEveryFrame) {
  FaceAnalyserOptions options;
  options.landmarker = FaceLandmarkerModel::none;
  options.embeddings = options.attributes = false;
  FaceAnalyser detector_only(options);
  FaceTracker tracker(detector_only);
  for (int i = 0; i < 6; ++i) {
    auto faces = tracker.track(crop(astronaut, 4 * i, 2 * i, 320, 320), i / kFps);
    ASSERT_EQ(faces.size(), 1u) << "frame " << i;
    EXPECT_EQ(faces[0].id, 1);
    EXPECT_TRUE(faces[0].face.mesh.empty());
    EXPECT_TRUE(faces[0].detected);
    EXPECT_GT(eye_distance(faces[0].face), 10.f);
  }
  EXPECT_EQ(tracker.stats().detector_runs, 6);
}

TEST_F(FaceTracking, CudaFramesMatchCpu) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  FaceAnalyserOptions options = analyser->options();
  options.runtime.device = Device::cuda;
  FaceAnalyser cuda_analyser(options);
  FaceTracker cpu(*analyser), cuda(cuda_analyser);
  for (int i = 0; i < 12; ++i) {
    at::Tensor frame = crop(astronaut, 4 * i, 2 * i, 320, 320);
    auto a = cpu.track(frame, i / kFps);
    auto b = cuda.track(i % 2 ? frame.to(at::kCUDA) : frame, i / kFps);  // CUDA and CPU frames alike
    ASSERT_EQ(a.size(), 1u);
    ASSERT_EQ(b.size(), 1u);
    EXPECT_EQ(a[0].id, b[0].id);
    EXPECT_LT(mean_error(b[0].face, a[0].face), 0.02f) << "frame " << i;
  }
  EXPECT_EQ(cuda.stats().detector_runs, cpu.stats().detector_runs);
}

}  // namespace
