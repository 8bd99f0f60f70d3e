// The analyser's non-human check (FaceAnalyserOptions::reject_non_human):
// scikit-image's cat, made small and passed through H.264 4:2:0 as in a
// video, is taken for a person by BlazeFace and the mesh; the check must drop
// it and keep every real face.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <unistd.h>
#include <cmath>

#include <filesystem>

#include "face_test_support.hpp"
#include "test_support.hpp"
#include "visage/face.hpp"
#include "visage/image.hpp"
#include "visage/video.hpp"

namespace visage {
namespace {

namespace fs = std::filesystem;

// `rgb` scaled to `width` pixels (even height), encoded as an H.264 4:2:0
// clip with x264 at crf 23 (FFmpeg's default quality, what a user's clip
// holds) by the library's own writer, and decoded back: the first frame.
// Undefined when this build or FFmpeg cannot encode H.264 (then `why` says so).
at::Tensor through_h264(const at::Tensor& rgb, int width, const fs::path& clip, std::string& why) {
  const int height = static_cast<int>(std::lround(rgb.size(0) * static_cast<double>(width) / rgb.size(1))) / 2 * 2;
  at::Tensor small = test::resize_image(rgb, height, width);
  try {
    if (!has_video_encoder("libx264")) {
      why = "FFmpeg here has no libx264 encoder";
      return {};
    }
    VideoInfo info;
    info.width = width;
    info.height = height;
    info.frame_rate = 25;
    info.time_base_num = 1;
    info.time_base_den = 25;
    VideoWriterOptions options;
    options.encode.encoder = "libx264";
    options.encode.preset = "medium";
    options.encode.quality = 23;
    {
      VideoWriter writer(clip.string(), info, options);
      for (int64_t i = 0; i < 3; ++i) writer.write(VideoFrame{small, i, i, i / 25.0});
      writer.finish();
    }
    VideoReader reader(clip.string());
    auto frame = reader.read();
    if (!frame) throw Error(ErrorKind::internal, clip.string() + ": no frame decoded");
    return frame->rgb;
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::unsupported) throw;
    why = std::string("no H.264 video in this build: ") + e.what();
    return {};
  }
}

fs::path temp_dir() {
  fs::path dir = fs::temp_directory_path() / ("visage_face_species_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

TEST(FaceSpecies, TheCheckIsOnByDefault) {
  FaceAnalyserOptions options;
  EXPECT_TRUE(options.reject_non_human);
  EXPECT_GT(options.human_check_below, 0.5f);  // low-scoring detections, where animals are, are checked
  EXPECT_LE(options.human_check_below, 1.01f);
}

TEST(FaceSpecies, CatAfterVideoEncodingIsNotAPerson) {
  VISAGE_REQUIRE_NPM_DIR(npm);
  const fs::path cat_file = npm / "../../debian/skimage/chelsea.png";
  const fs::path portrait_file = "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg";
  for (const auto& f : {cat_file, portrait_file})
    if (!fs::exists(f)) {
      if (test::npm_required()) GTEST_FAIL() << f << " missing (make deps; Debian python-matplotlib-data)";
      GTEST_SKIP() << f << " missing: run make deps / install Debian's python-matplotlib-data";
    }
  const fs::path dir = temp_dir();
  std::string why;
  at::Tensor cat = through_h264(read_image(cat_file).rgb, 320, dir / "cat.mp4", why);
  if (!cat.defined()) GTEST_SKIP() << why;
  at::Tensor portrait = through_h264(read_image(portrait_file).rgb, 320, dir / "portrait.mp4", why);
  ASSERT_TRUE(portrait.defined()) << why;
  fs::remove_all(dir);

  FaceAnalyserOptions options;
  options.embeddings = options.attributes = false;
  FaceAnalyser checked(options);
  EXPECT_TRUE(checked.analyse(cat).empty()) << "the cat's face was taken for a person's";
  // The same path keeps a person: the portrait at 320 px scores below
  // human_check_below too, so the check ran on it.
  auto people = checked.analyse(portrait);
  ASSERT_EQ(people.size(), 1u);
  EXPECT_LT(people[0].detector_score, options.human_check_below);
  // detect() alone does not check (it has no mesh yet); landmark() does.
  auto detections = checked.detect(cat);
  checked.landmark(cat, detections);
  EXPECT_TRUE(detections.empty());

  // Without the check the cat is a "person": what the check is for.
  options.reject_non_human = false;
  auto unchecked = FaceAnalyser(options).analyse(cat);
  if (unchecked.empty())
    GTEST_SKIP() << "this x264 build's output of the cat is not taken for a face even without the check";
  EXPECT_GT(unchecked[0].landmark_score, options.landmark_score);
}

TEST(FaceSpecies, EveryFaceOfTheGroupPhotosIsAPerson) {
  VISAGE_REQUIRE_NPM_DIR(npm);
  // The face counts of FaceAnalysis.GroupPhotosFaceCounts with every face
  // checked, whatever its detector score: small faces, a framed photo on a
  // wall (sample5) and profiles stay people.
  const std::pair<const char*, size_t> expected[] = {{"sample1.jpg", 3}, {"sample2.jpg", 2}, {"sample3.jpg", 3},
                                                     {"sample4.jpg", 4}, {"sample5.jpg", 6}, {"sample6.jpg", 4}};
  FaceAnalyserOptions options;
  options.embeddings = options.attributes = false;
  options.human_check_below = 1.01f;
  FaceAnalyser analyser(options);
  for (const auto& [name, count] : expected)
    EXPECT_EQ(analyser.analyse(read_image(npm / "@vladmandic/face-api/demo" / name).rgb).size(), count) << name;
}

TEST(FaceSpecies, AFollowedFaceIsNotCheckedAgain) {
  VISAGE_REQUIRE_NPM_DIR(npm);
  const fs::path cat_file = npm / "../../debian/skimage/chelsea.png";
  if (!fs::exists(cat_file)) GTEST_SKIP() << cat_file << " missing: run make deps";
  const fs::path dir = temp_dir();
  std::string why;
  at::Tensor cat = through_h264(read_image(cat_file).rgb, 320, dir / "cat.mp4", why);
  fs::remove_all(dir);
  if (!cat.defined()) GTEST_SKIP() << why;
  FaceAnalyserOptions options;
  options.embeddings = options.attributes = false;
  options.reject_non_human = false;
  auto found = FaceAnalyser(options).analyse(cat);
  if (found.empty()) GTEST_SKIP() << "this x264 build's output of the cat is not taken for a face";
  // A face that comes with a mesh (a tracker following it) was checked when
  // it was found: landmark() refines it without the (slow) check.
  options.reject_non_human = true;
  FaceAnalyser checked(options);
  checked.landmark(cat, found);
  EXPECT_EQ(found.size(), 1u);
  // A fresh detection of the same face is checked.
  std::vector<Face> fresh = found;
  for (Face& f : fresh) f.mesh.clear();
  checked.landmark(cat, fresh);
  EXPECT_TRUE(fresh.empty());
}

}  // namespace
}  // namespace visage
