// `visage swap -t clip.mp4` and `visage stream` as a user runs them, on clips
// made with FFmpeg from a real photo: every frame kept and swapped, audio in
// sync, progress reported, bad inputs refused without a partial output.
#include <gtest/gtest.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "test_support.hpp"
#include "visage/face.hpp"
#include "visage/image.hpp"
#include "visage/video.hpp"

namespace {

namespace fs = std::filesystem;

using visage::test::read_text;
using visage::test::read_video_frames;

class CliVideo : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto npm = visage::test::npm_dir();
    if (!npm) return;
    source = *npm / "../../debian/skimage/astronaut.png";
    if (!fs::exists(source) || !fs::exists(hopper) || std::system("command -v ffmpeg >/dev/null 2>&1") != 0) return;
    dir = fs::temp_directory_path() / ("visage-cli-video-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    // 2 s at 25 fps of a slow pan over Grace Hopper's portrait, with a 440 Hz tone.
    std::string pan = "scale=400:-2,crop=320:320:x='40+10*t':y=20,format=yuv420p";
    made = make_clip(pan, "clip.mp4", "-c:v libx264 -preset ultrafast -c:a aac") &&
           // The same, stored sideways with rotation metadata that players undo (as phones do;
           // FFmpeg 5.1 keeps the tag only when remuxing).
           make_clip(pan + ",transpose=1", "sideways-untagged.mp4", "-c:v libx264 -preset ultrafast -c:a aac") &&
           std::system(("ffmpeg -v error -y -i " + (dir / "sideways-untagged.mp4").string() +
                        " -c copy -metadata:s:v:0 rotate=90 " + (dir / "sideways.mp4").string())
                           .c_str()) == 0;
  }
  static bool make_clip(const std::string& filter, const std::string& name, const std::string& codecs) {
    std::string command = "ffmpeg -v error -y -loop 1 -i " + hopper.string() +
                          " -f lavfi -i sine=frequency=440:sample_rate=44100 -filter_complex '[0:v]" + filter +
                          "[v]' -map '[v]' -map 1:a -t 2 -r 25 " + codecs + " " + (dir / name).string();
    return std::system(command.c_str()) == 0;
  }
  static void TearDownTestSuite() {
    if (!dir.empty()) fs::remove_all(dir);
  }
  void SetUp() override {
    if (!made) {
      if (visage::test::npm_required()) GTEST_FAIL() << "test media or ffmpeg missing (VISAGE_REQUIRE_NPM set)";
      GTEST_SKIP() << "needs the registry photos (scripts/install_deps.sh) and the ffmpeg program";
    }
  }
  static inline fs::path source, dir;
  static inline bool made = false;
  static inline const fs::path hopper = "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg";
};

TEST_F(CliVideo, SwapsEveryFrameKeepsTimingAndAudioAndReportsProgress) {
  fs::path out = dir / "swapped.mp4";
  auto run = visage::test::run_cli("swap -s " + source.string() + " -t " + (dir / "clip.mp4").string() + " -o " +
                                       out.string() + " --progress json --landmarker mesh",
                                   dir / "stderr.txt");
  ASSERT_EQ(run.exit_code, 0) << read_text(dir / "stderr.txt");
  ASSERT_TRUE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out.string() + ".part"));

  // JSON lines: frames never go backwards, the last one is the finished run.
  std::istringstream lines(run.out);
  std::string line;
  int64_t last_done = -1;
  nlohmann::json last;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    last = nlohmann::json::parse(line);
    EXPECT_GE(last["frames_done"].get<int64_t>(), last_done);
    last_done = last["frames_done"];
  }
  EXPECT_TRUE(last["finished"].get<bool>());
  EXPECT_EQ(last["frames_done"], 50);
  EXPECT_EQ(last["faces_swapped"], 50);  // the face is visible in every frame

  visage::VideoInfo in_info = visage::probe_video((dir / "clip.mp4").string());
  visage::VideoInfo out_info = visage::probe_video(out.string());
  EXPECT_EQ(out_info.width, in_info.width);
  EXPECT_EQ(out_info.height, in_info.height);
  EXPECT_TRUE(out_info.has_audio);
  EXPECT_NEAR(out_info.duration, in_info.duration, 0.1);

  std::vector<visage::VideoFrame> before = read_video_frames(dir / "clip.mp4"), after = read_video_frames(out);
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) EXPECT_NEAR(after[i].time, before[i].time, 1e-3) << "frame " << i;

  // The person in the output looks like the source, not like the clip's.
  visage::FaceAnalyser analyser;
  auto source_faces = analyser.analyse(visage::read_image(source).rgb);
  ASSERT_FALSE(source_faces.empty());
  for (size_t i : {size_t{0}, after.size() / 2, after.size() - 1}) {
    auto original = analyser.analyse(before[i].rgb);
    auto swapped = analyser.analyse(after[i].rgb);
    ASSERT_EQ(original.size(), 1u);
    ASSERT_EQ(swapped.size(), 1u) << "frame " << i;
    float to_source = visage::face_distance(swapped[0].embedding, source_faces[0].embedding);
    float original_to_source = visage::face_distance(original[0].embedding, source_faces[0].embedding);
    EXPECT_LT(to_source, original_to_source) << "frame " << i;
  }
}

TEST_F(CliVideo, TrimsVideoAndAudioTogether) {
  fs::path out = dir / "trimmed.mkv";
  auto run =
      visage::test::run_cli("swap -s " + source.string() + " -t " + (dir / "clip.mp4").string() + " -o " +
                                out.string() + " --trim-start 0.5 --trim-end 1.5 --quiet --json --landmarker mesh",
                            dir / "stderr.txt");
  ASSERT_EQ(run.exit_code, 0) << read_text(dir / "stderr.txt");
  auto report = nlohmann::json::parse(run.out);
  EXPECT_NEAR(report["frames_written"].get<double>(), 25, 1);
  visage::VideoInfo info = visage::probe_video(out.string());
  EXPECT_TRUE(info.has_audio);
  EXPECT_NEAR(info.duration, 1.0, 0.1);
  EXPECT_NEAR(static_cast<double>(read_video_frames(out).size()), 25, 1);
}

TEST_F(CliVideo, RotatedClipIsSwappedUprightAndKeepsItsRotation) {
  fs::path out = dir / "sideways-swapped.mp4";
  auto run = visage::test::run_cli("swap -s " + source.string() + " -t " + (dir / "sideways.mp4").string() + " -o " +
                                       out.string() + " --quiet --json --landmarker mesh",
                                   dir / "stderr.txt");
  ASSERT_EQ(run.exit_code, 0) << read_text(dir / "stderr.txt");
  auto report = nlohmann::json::parse(run.out);
  EXPECT_EQ(report["frames_with_faces"], report["frames_written"]);
  visage::VideoInfo in_info = visage::probe_video((dir / "sideways.mp4").string());
  visage::VideoInfo out_info = visage::probe_video(out.string());
  EXPECT_NE(in_info.rotation, 0);
  EXPECT_EQ(out_info.rotation, in_info.rotation);
  EXPECT_EQ(out_info.width, in_info.width);
}

TEST_F(CliVideo, BadVideoInputsFailCleanly) {
  {
    std::ofstream(dir / "garbage.mp4", std::ios::binary) << std::string(5000, '\x17') << "not a video";
    std::string bytes = read_text(dir / "clip.mp4");
    std::ofstream(dir / "half.mp4", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  for (const char* name : {"garbage.mp4", "half.mp4", "missing.mp4"}) {
    fs::path out = dir / (std::string("out-") + name);
    auto run = visage::test::run_cli(
        "swap -s " + source.string() + " -t " + (dir / name).string() + " -o " + out.string() + " --quiet",
        dir / "stderr.txt");
    std::string err = read_text(dir / "stderr.txt");
    EXPECT_NE(run.exit_code, 0) << name;
    EXPECT_NE(err.find(name), std::string::npos) << "the error names the file: " << err;
    EXPECT_FALSE(fs::exists(out)) << name;
    EXPECT_FALSE(fs::exists(out.string() + ".part")) << name;
  }
  // The output is the input: refused before anything is written.
  std::string before = read_text(dir / "clip.mp4");
  auto run = visage::test::run_cli("swap -s " + source.string() + " -t " + (dir / "clip.mp4").string() + " -o " +
                                       (dir / "clip.mp4").string() + " --quiet",
                                   dir / "stderr.txt");
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(read_text(dir / "stderr.txt").find("overwrite"), std::string::npos);
  EXPECT_EQ(read_text(dir / "clip.mp4"), before);
}

TEST_F(CliVideo, StreamReadsAFileAtItsOwnPaceAndAccountsForEveryFrame) {
  fs::path out = dir / "live.ts";
  auto run = visage::test::run_cli("stream -s " + source.string() + " -i " + (dir / "clip.mp4").string() + " -o " +
                                       out.string() + " --quiet --json --landmarker mesh",
                                   dir / "stderr.txt");
  ASSERT_EQ(run.exit_code, 0) << read_text(dir / "stderr.txt");
  auto report = nlohmann::json::parse(run.out);
  EXPECT_EQ(report["frames_read"], 50);
  // Under load frames are dropped, never queued without limit: every frame read is written or dropped.
  EXPECT_EQ(report["frames_written"].get<int64_t>() + report["frames_dropped"].get<int64_t>(), 50);
  EXPECT_GT(report["frames_written"].get<int64_t>(), 0);
  // Real-time pacing: reading 2 s of video takes about 2 s however fast the machine is.
  EXPECT_GE(report["seconds"].get<double>(), 1.9);
  EXPECT_EQ(static_cast<int64_t>(read_video_frames(out).size()), report["frames_written"].get<int64_t>());
}

TEST_F(CliVideo, StreamSendsMpegTsOverUdpToARealReceiver) {
  // The receiver is FFmpeg itself, listening before the stream starts; it
  // stops 15 s after the last packet (or without one: the sender loads its models first).
  const int port = 20000 + ::getpid() % 20000;
  const fs::path received = dir / "received.ts";
  std::string receiver = "timeout 60 ffmpeg -v error -y -i 'udp://127.0.0.1:" + std::to_string(port) +
                         "?timeout=15000000' -c copy " + received.string() + " > /dev/null 2>&1 & echo $! > " +
                         (dir / "receiver.pid").string();
  ASSERT_EQ(std::system(receiver.c_str()), 0);
  std::system("sleep 1");
  auto run =
      visage::test::run_cli("stream -s " + source.string() + " -i " + (dir / "clip.mp4").string() +
                                " -o udp://127.0.0.1:" + std::to_string(port) + " --quiet --json --landmarker mesh",
                            dir / "stderr.txt");
  ASSERT_EQ(run.exit_code, 0) << read_text(dir / "stderr.txt");
  auto report = nlohmann::json::parse(run.out);
  std::string pid = read_text(dir / "receiver.pid");
  pid.erase(pid.find_last_not_of(" \n") + 1);
  std::system(("while kill -0 " + pid + " 2>/dev/null; do sleep 0.2; done").c_str());
  ASSERT_TRUE(fs::exists(received)) << "the receiver got nothing";
  int64_t written = report["frames_written"];
  int64_t got = static_cast<int64_t>(read_video_frames(received).size());
  EXPECT_GT(written, 0);
  EXPECT_GE(got, written - 2) << "frames lost between sender and receiver on localhost";
  EXPECT_LE(got, written);
}

TEST_F(CliVideo, AClipWithoutFacesIsWrittenUnchangedAndReported) {
  // scikit-image's cat: no person's face. After this 4:2:0 encoding the
  // detector and the mesh both take its face for a person's (score 0.74, mesh
  // 0.99); the analyser's non-human check (on by default) must drop it.
  fs::path photo = source.parent_path() / "chelsea.png";
  ASSERT_TRUE(fs::exists(photo));
  fs::path clip = dir / "no-face.mp4", out = dir / "no-face-swapped.mp4";
  ASSERT_EQ(std::system(("ffmpeg -v error -y -loop 1 -i " + photo.string() +
                         " -vf scale=320:-2,format=yuv420p -t 1 -r 25 -c:v libx264 -preset ultrafast " + clip.string())
                            .c_str()),
            0);
  auto run = visage::test::run_cli(
      "swap -s " + source.string() + " -t " + clip.string() + " -o " + out.string() + " --quiet --json",
      dir / "stderr.txt");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(read_text(dir / "stderr.txt").find("no face"), std::string::npos);
  auto report = nlohmann::json::parse(run.out);
  EXPECT_EQ(report["faces_swapped"], 0);
  EXPECT_EQ(report["frames_written"], 25);
  EXPECT_EQ(static_cast<int64_t>(read_video_frames(out).size()), 25);
}

}  // namespace
