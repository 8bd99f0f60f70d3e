// Video I/O (visage/video.hpp) on real clips that the `ffmpeg` program makes
// from real photos: frame counts, timing (including variable frame rate),
// rotation, colour tags, audio kept and trimmed in sync, pixels through a
// read -> write -> read round trip, and the errors for broken inputs.
#include "visage/video.hpp"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace fs = std::filesystem;
using visage::Error;
using visage::ErrorKind;

namespace {

// Runs a shell command; returns its exit code and stdout.
int run(const std::string& command, std::string* out = nullptr) {
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return -1;
  std::string text;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) text.append(buffer, n);
  const int status = ::pclose(pipe);
  if (out) *out = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string quote(const fs::path& p) {
  std::string quoted = "'";
  quoted += p.string();
  quoted += '\'';
  return quoted;
}

struct Clips {
  std::string skip_reason;
  fs::path dir;
  fs::path pan;          // 320x240, 2 s, 25 fps H.264 + 440 Hz AAC, tagged BT.709
  fs::path vfr;          // H.264 mp4 with frames 10..19 missing (a 0.4 s gap)
  fs::path rotated;      // pan.mp4 tagged rotate=90
  fs::path mpeg2;        // MPEG-2 video + MP2 audio in MPEG-PS
  fs::path webm;         // VP9 + Opus
  fs::path audio_only;   // AAC in .m4a
  fs::path garbage;      // random bytes named .mp4
  fs::path no_moov;      // an mp4 with its index at the end, cut in half
  fs::path cut;          // a faststart mp4 (index first) cut in half
  fs::path size_change;  // MPEG-TS: 1 s of 320x240 then 1 s of 160x120
  fs::path damaged;      // MPEG-TS, 1 s, with 4 KiB of its middle overwritten by random bytes
};

const Clips& clips() {
  static const Clips made = [] {
    Clips c;
#ifndef VISAGE_WITH_VIDEO
    c.skip_reason = "built without FFmpeg (VISAGE_VIDEO=OFF)";
    return c;
#endif
    if (run("command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null") != 0) {
      c.skip_reason = "the ffmpeg and ffprobe programs are not installed (Debian package ffmpeg)";
      return c;
    }
    const auto npm = visage::test::npm_dir();
    if (!npm) {
      c.skip_reason = visage::test::npm_dir_missing_reason();
      return c;
    }
    const fs::path photo = *npm / "../../debian/skimage/astronaut.png";
    const fs::path group = *npm / "@vladmandic/face-api/demo/sample1.jpg";
    if (!fs::exists(photo) || !fs::exists(group)) {
      c.skip_reason = "test photos missing: " + photo.string() + ", " + group.string();
      return c;
    }
    c.dir = fs::temp_directory_path() / ("visage-video-io-" + std::to_string(::getpid()));
    fs::create_directories(c.dir);
    const std::string ff = "ffmpeg -nostdin -hide_banner -loglevel error -y ";
    const std::string pan_filter = "scale=480:480,crop=320:240:x='t*60':y='t*40',format=yuv420p";
    const std::string sine = " -f lavfi -i sine=frequency=440:sample_rate=44100 ";
    const std::string bt709 = " -colorspace bt709 -color_primaries bt709 -color_trc bt709 -color_range tv ";
    c.pan = c.dir / "pan.mp4";
    c.vfr = c.dir / "vfr.mp4";
    c.rotated = c.dir / "rotated.mp4";
    c.mpeg2 = c.dir / "clip.mpg";
    c.webm = c.dir / "clip.webm";
    c.audio_only = c.dir / "tone.m4a";
    c.garbage = c.dir / "garbage.mp4";
    c.no_moov = c.dir / "no_moov.mp4";
    c.cut = c.dir / "cut.mp4";
    c.size_change = c.dir / "size_change.ts";
    const fs::path full_end = c.dir / "index_at_end.mp4", small = c.dir / "small.ts", large = c.dir / "large.ts";
    const std::vector<std::string> commands = {
        ff + "-loop 1 -framerate 25 -i " + quote(photo) + sine + "-vf \"" + pan_filter + "\" -t 2 -c:v libx264 " +
            "-preset veryfast -crf 18" + bt709 + "-c:a aac -b:a 128k -movflags +faststart " + quote(c.pan),
        ff + "-i " + quote(c.pan) + " -vf \"select='not(between(n,10,19))'\" -vsync vfr -an -c:v libx264 " +
            "-preset veryfast -crf 18 " + quote(c.vfr),
        ff + "-i " + quote(c.pan) + " -c copy -metadata:s:v:0 rotate=90 " + quote(c.rotated),
        ff + "-i " + quote(c.pan) + " -c:v mpeg2video -q:v 2 -c:a mp2 " + quote(c.mpeg2),
        ff + "-i " + quote(c.pan) + " -c:v libvpx-vp9 -deadline realtime -cpu-used 8 -crf 30 -b:v 0 -c:a libopus " +
            quote(c.webm),
        ff + sine + "-t 1 -c:a aac " + quote(c.audio_only),
        ff + "-i " + quote(c.pan) + " -c copy " + quote(full_end),
        ff + "-loop 1 -framerate 25 -i " + quote(group) + " -vf scale=320:240,format=yuv420p -t 1 -c:v libx264 " +
            "-preset veryfast " + quote(small),
        ff + "-loop 1 -framerate 25 -i " + quote(photo) + " -vf scale=160:120,format=yuv420p -t 1 -c:v libx264 " +
            "-preset veryfast -output_ts_offset 1 " + quote(large),
    };
    for (const auto& command : commands) {
      if (run(command + " 2>&1") != 0) {
        c.skip_reason.clear();
        ADD_FAILURE() << "making a test clip failed: " << command;
        c.dir.clear();
        return c;
      }
    }
    auto cut_half = [](const fs::path& from, const fs::path& to) {
      std::string bytes = visage::test::read_text(from);
      std::ofstream(to, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
    };
    cut_half(full_end, c.no_moov);
    cut_half(c.pan, c.cut);
    {
      std::mt19937 random(5);
      std::string bytes(64 * 1024, '\0');
      for (auto& b : bytes) b = static_cast<char>(random());
      std::ofstream(c.garbage, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
    run("cat " + quote(small) + " " + quote(large) + " > " + quote(c.size_change));
    c.damaged = c.dir / "damaged.ts";
    {
      std::string bytes = visage::test::read_text(small);
      std::mt19937 random(7);
      for (size_t i = bytes.size() / 2; i < bytes.size() / 2 + 4096 && i < bytes.size(); ++i) {
        bytes[i] = static_cast<char>(random());
      }
      std::ofstream(c.damaged, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
    return c;
  }();
  // The clips go when the test program ends.
  struct Remover {
    fs::path dir;
    ~Remover() {
      std::error_code ignored;
      if (!dir.empty()) fs::remove_all(dir, ignored);
    }
  };
  static const Remover remover{made.dir};
  return made;
}

#define REQUIRE_CLIPS()                                            \
  const Clips& clip = clips();                                     \
  if (!clip.skip_reason.empty()) GTEST_SKIP() << clip.skip_reason; \
  ASSERT_FALSE(clip.dir.empty()) << "the test clips could not be made"

using visage::test::read_video_frames;

double psnr(const at::Tensor& a, const at::Tensor& b) {
  const double mse = (a.to(at::kDouble) - b.to(at::kDouble)).pow(2).mean().item<double>();
  return mse == 0 ? 99.0 : 10.0 * std::log10(255.0 * 255.0 / mse);
}

// Start and end (seconds) of the first audio stream's packets, as ffprobe reads them.
struct AudioSpan {
  double start = 0, end = 0;
  int packets = 0;
  std::string codec;
};
AudioSpan audio_span(const fs::path& file) {
  AudioSpan span;
  std::string out;
  run("ffprobe -v error -select_streams a:0 -show_entries packet=pts_time,duration_time -of csv=p=0 " + quote(file),
      &out);
  std::istringstream lines(out);
  std::string line;
  bool first = true;
  while (std::getline(lines, line)) {
    double pts = 0, duration = 0;
    if (std::sscanf(line.c_str(), "%lf,%lf", &pts, &duration) != 2) continue;
    if (first) span.start = pts;
    first = false;
    span.end = std::max(span.end, pts + duration);
    ++span.packets;
  }
  run("ffprobe -v error -select_streams a:0 -show_entries stream=codec_name -of csv=p=0 " + quote(file), &out);
  span.codec = out.substr(0, out.find_first_of("\n,"));
  return span;
}

using visage::test::expect_error;

}  // namespace

TEST(VideoIo, ProbeDescribesTheClip) {
  REQUIRE_CLIPS();
  const visage::VideoInfo info = visage::probe_video(clip.pan.string());
  EXPECT_NE(info.container.find("mp4"), std::string::npos) << info.container;
  EXPECT_EQ(info.video_codec, "h264");
  EXPECT_EQ(info.width, 320);
  EXPECT_EQ(info.height, 240);
  EXPECT_EQ(info.rotation, 0);
  EXPECT_NEAR(info.frame_rate, 25.0, 1e-6);
  EXPECT_EQ(info.frame_count, 50);
  EXPECT_NEAR(info.duration, 2.0, 0.05);
  EXPECT_EQ(info.colour_space, "bt709");
  EXPECT_EQ(info.colour_primaries, "bt709");
  EXPECT_EQ(info.colour_transfer, "bt709");
  EXPECT_EQ(info.colour_range, "tv");
  EXPECT_TRUE(info.has_audio);
  EXPECT_EQ(info.audio_codec, "aac");

  visage::VideoReaderOptions trim;
  trim.start = 0.4;
  trim.end = 1.4;
  const visage::VideoInfo trimmed = visage::probe_video(clip.pan.string(), trim);
  EXPECT_EQ(trimmed.frame_count, 25);
  EXPECT_NEAR(trimmed.duration, 1.0, 1e-6);
  EXPECT_NEAR(trimmed.start_time, 0.4, 1e-6);
}

TEST(VideoIo, ReadsEveryFrameInOrderWithItsTime) {
  REQUIRE_CLIPS();
  visage::VideoReader reader(clip.pan.string());
  EXPECT_EQ(reader.info().decoder, "h264");
  EXPECT_NEAR(reader.info().start_time, 0.0, 1e-9);
  int64_t count = 0;
  at::Tensor first;
  while (auto frame = reader.read()) {
    ASSERT_EQ(frame->index, count);
    EXPECT_NEAR(frame->time, count / 25.0, 1e-6);
    EXPECT_NEAR(frame->pts * reader.info().time_base_num / double(reader.info().time_base_den), frame->time, 1e-9);
    ASSERT_EQ(frame->rgb.sizes(), (std::vector<int64_t>{240, 320, 3}));
    ASSERT_EQ(frame->rgb.scalar_type(), at::kByte);
    ASSERT_TRUE(frame->rgb.is_contiguous());
    if (count == 0) first = frame->rgb;
    ++count;
  }
  EXPECT_EQ(count, 50);
  // A photo, not a flat test pattern: the first frame has texture and colour.
  EXPECT_GT(first.to(at::kFloat).std().item<double>(), 20.0);
  EXPECT_FALSE(reader.read().has_value());  // stays at the end
}

TEST(VideoIo, RoundTripKeepsFramesTimingColourAndAudio) {
  REQUIRE_CLIPS();
  const auto source = read_video_frames(clip.pan.string());
  visage::VideoReader reader(clip.pan.string());
  const fs::path out = clip.dir / "round_trip.mp4";
  visage::VideoWriterOptions options;
  options.audio_from = clip.pan.string();
  {
    visage::VideoWriter writer(out.string(), reader.info(), options);
    EXPECT_EQ(writer.encoder_name(), "libx264");
    while (auto frame = reader.read()) writer.write(*frame);
    EXPECT_TRUE(fs::exists(out.string() + ".part"));
    EXPECT_FALSE(fs::exists(out));
    writer.finish();
    EXPECT_EQ(writer.frames_written(), 50);
  }
  EXPECT_FALSE(fs::exists(out.string() + ".part"));
  ASSERT_TRUE(fs::exists(out));

  visage::VideoReader again(out.string());
  const visage::VideoInfo& info = again.info();
  EXPECT_EQ(info.frame_count, 50);
  EXPECT_NEAR(info.frame_rate, 25.0, 1e-3);
  EXPECT_EQ(info.colour_space, "bt709");
  EXPECT_EQ(info.colour_primaries, "bt709");
  EXPECT_EQ(info.colour_transfer, "bt709");
  EXPECT_EQ(info.colour_range, "tv");
  EXPECT_TRUE(info.has_audio);
  EXPECT_EQ(info.audio_codec, "aac");
  size_t i = 0;
  double worst = 99;
  while (auto frame = again.read()) {
    ASSERT_LT(i, source.size());
    EXPECT_NEAR(frame->time, source[i].time, 1e-4) << "frame " << i;
    worst = std::min(worst, psnr(frame->rgb, source[i].rgb));
    ++i;
  }
  EXPECT_EQ(i, source.size());
  EXPECT_GT(worst, 35.0) << "lowest PSNR of a frame against the decoded input";

  // The copied audio lasts as long as the video (within one AAC frame, 23 ms) and starts with it.
  const AudioSpan audio = audio_span(out);
  EXPECT_EQ(audio.codec, "aac");
  EXPECT_GT(audio.packets, 50);
  EXPECT_NEAR(audio.start, 0.0, 0.03);
  EXPECT_NEAR(audio.end - audio.start, 2.0, 0.05);
}

TEST(VideoIo, TrimCutsVideoAndAudioTogether) {
  REQUIRE_CLIPS();
  const auto source = read_video_frames(clip.pan.string());
  visage::VideoReaderOptions trim;
  trim.start = 0.4;  // frame 10
  trim.end = 1.4;    // up to frame 34
  visage::VideoReader reader(clip.pan.string(), trim);
  EXPECT_EQ(reader.info().frame_count, 25);
  const fs::path out = clip.dir / "trimmed.mp4";
  visage::VideoWriterOptions options;
  options.audio_from = clip.pan.string();
  options.audio_start = trim.start;
  options.audio_end = trim.end;
  visage::VideoWriter writer(out.string(), reader.info(), options);
  int64_t n = 0;
  while (auto frame = reader.read()) {
    if (n == 0) {
      EXPECT_EQ(frame->pts, 0);
      EXPECT_GT(psnr(frame->rgb, source[10].rgb), 45.0) << "the first trimmed frame is the source's frame 10";
    }
    writer.write(*frame);
    ++n;
  }
  EXPECT_NEAR(reader.info().start_time, 0.4, 1e-6);
  writer.finish();
  EXPECT_EQ(n, 25);
  const auto frames = read_video_frames(out.string());
  ASSERT_EQ(frames.size(), 25u);
  EXPECT_NEAR(frames.back().time, 24 / 25.0, 1e-4);
  const AudioSpan audio = audio_span(out);
  EXPECT_NEAR(audio.start, 0.0, 0.03);
  EXPECT_NEAR(audio.end - audio.start, 1.0, 0.05) << "audio trimmed with the video";
}

TEST(VideoIo, VariableFrameRateIsKept) {
  REQUIRE_CLIPS();
  const auto source = read_video_frames(clip.vfr.string());
  ASSERT_EQ(source.size(), 40u);
  // Frames 10..19 of the 25 fps clip were dropped: a 0.44 s step between frames 9 and 10 of this one.
  EXPECT_NEAR(source[10].time - source[9].time, 0.44, 1e-3);
  EXPECT_NEAR(source[9].time - source[8].time, 0.04, 1e-3);

  visage::VideoReader reader(clip.vfr.string());
  const fs::path out = clip.dir / "vfr_out.mkv";
  visage::VideoWriter writer(out.string(), reader.info());
  while (auto frame = reader.read()) writer.write(*frame);
  writer.finish();
  const auto again = read_video_frames(out.string());
  ASSERT_EQ(again.size(), source.size());
  for (size_t i = 0; i < source.size(); ++i) EXPECT_NEAR(again[i].time, source[i].time, 2e-3) << "frame " << i;
}

TEST(VideoIo, RotationIsReadAndWritten) {
  REQUIRE_CLIPS();
  // FFmpeg 5.1's `-metadata:s:v rotate=90` stores a display matrix that FFmpeg's own
  // autorotation (and so a player) turns 90 degrees counter-clockwise: 270 clockwise.
  visage::VideoReader reader(clip.rotated.string());
  EXPECT_EQ(reader.info().rotation, 270);
  auto frame = reader.read();
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->rgb.size(0), 240) << "frames stay in coded orientation";
  const fs::path out = clip.dir / "rotated_out.mp4";
  visage::VideoWriter writer(out.string(), reader.info());
  writer.write(*frame);
  while (auto next = reader.read()) writer.write(*next);
  writer.finish();
  EXPECT_EQ(visage::probe_video(out.string()).rotation, 270);
  // ffprobe reads the same display matrix rotation from both files.
  auto ffprobe_rotation = [](const fs::path& file) {
    std::string out;
    run("ffprobe -v error -select_streams v:0 -show_entries stream_side_data=rotation -of csv=p=0 " + quote(file),
        &out);
    return out;
  };
  EXPECT_EQ(ffprobe_rotation(out), ffprobe_rotation(clip.rotated));
  EXPECT_FALSE(ffprobe_rotation(out).empty());
}

TEST(VideoIo, ReadsMpeg2AndWebm) {
  REQUIRE_CLIPS();
  visage::VideoReader mpeg(clip.mpeg2.string());
  EXPECT_EQ(mpeg.info().video_codec, "mpeg2video");
  EXPECT_EQ(mpeg.info().audio_codec, "mp2");
  int64_t n = 0;
  while (mpeg.read()) ++n;
  EXPECT_EQ(n, 50);

  visage::VideoReader webm(clip.webm.string());
  EXPECT_EQ(webm.info().video_codec, "vp9");
  EXPECT_EQ(webm.info().audio_codec, "opus");
  n = 0;
  double last = 0;
  while (auto frame = webm.read()) {
    last = frame->time;
    ++n;
  }
  EXPECT_EQ(n, 50);
  EXPECT_NEAR(last, 49 / 25.0, 2e-3);
}

TEST(VideoIo, AudioIsReencodedWhereTheContainerNeedsIt) {
  REQUIRE_CLIPS();
  // AAC is not allowed in WebM: the writer re-encodes it as Opus.
  visage::VideoReader reader(clip.pan.string());
  const fs::path out = clip.dir / "reencoded.webm";
  visage::VideoWriterOptions options;
  options.encode.encoder = "libvpx-vp9";
  options.encode.preset = "realtime";
  options.encode.quality = 30;
  options.audio_from = clip.pan.string();
  visage::VideoWriter writer(out.string(), reader.info(), options);
  while (auto frame = reader.read()) writer.write(*frame);
  writer.finish();
  const visage::VideoInfo info = visage::probe_video(out.string());
  EXPECT_EQ(info.video_codec, "vp9");
  EXPECT_EQ(info.audio_codec, "opus");
  EXPECT_EQ(read_video_frames(out.string()).size(), 50u);
  const AudioSpan audio = audio_span(out);
  EXPECT_NEAR(audio.end - std::max(0.0, audio.start), 2.0, 0.05);

  // MP2 audio from an MPEG-PS source is copied into MPEG-4 Part 2 in AVI.
  visage::VideoReader mpeg(clip.mpeg2.string());
  const fs::path avi = clip.dir / "mpeg4.avi";
  visage::VideoWriterOptions avi_options;
  avi_options.encode.encoder = "mpeg4";
  avi_options.audio_from = clip.mpeg2.string();
  avi_options.audio_start = mpeg.info().start_time;
  visage::VideoWriter avi_writer(avi.string(), mpeg.info(), avi_options);
  while (auto frame = mpeg.read()) avi_writer.write(*frame);
  avi_writer.finish();
  const visage::VideoInfo avi_info = visage::probe_video(avi.string());
  EXPECT_EQ(avi_info.video_codec, "mpeg4");
  EXPECT_EQ(avi_info.audio_codec, "mp2");
  EXPECT_EQ(read_video_frames(avi.string()).size(), 50u);
}

TEST(VideoIo, BrokenInputsFailClearly) {
  REQUIRE_CLIPS();
  auto expect_bad = [](const fs::path& file, const std::string& words) {
    const Error e = expect_error([&] { read_video_frames(file.string()); });
    EXPECT_EQ(e.kind(), ErrorKind::bad_input) << e.what();
    EXPECT_NE(std::string(e.what()).find(file.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
  };
  expect_bad(clip.audio_only, "has no video stream");
  expect_bad(clip.garbage, "");
  expect_bad(clip.no_moov, "");
  expect_bad(clip.cut, "truncated?");
  expect_bad(clip.size_change, "is 160x120, the stream started at 320x240 (resolution changes are not supported)");

  const Error missing = expect_error([&] { visage::VideoReader((clip.dir / "absent.mp4").string()); });
  EXPECT_EQ(missing.kind(), ErrorKind::io) << missing.what();
  EXPECT_NE(std::string(missing.what()).find("absent.mp4"), std::string::npos);

  // The truncated clip still delivers the frames it has before saying so.
  visage::VideoReader cut(clip.cut.string());
  int64_t delivered = 0;
  const Error truncated = expect_error([&] {
    while (cut.read()) ++delivered;
  });
  EXPECT_GT(delivered, 5);
  EXPECT_LT(delivered, 50);
}

TEST(VideoIo, DamagedPacketsAreSkippedNotFatal) {
  REQUIRE_CLIPS();
  // 4 KiB of noise in the middle of a 25-frame stream of a still photo (small P-frames: the
  // noise covers several): the decoder conceals or drops the damaged frames and the rest,
  // after the damage too, are delivered in order at their own times.
  const auto frames = read_video_frames(clip.damaged.string());
  EXPECT_GE(frames.size(), 12u);
  EXPECT_LE(frames.size(), 25u);
  for (size_t i = 1; i < frames.size(); ++i) EXPECT_GT(frames[i].pts, frames[i - 1].pts);
  EXPECT_NEAR(frames.back().time, 24 / 25.0, 0.05);
}

TEST(VideoIo, OddFrameSizesAreWritten) {
  REQUIRE_CLIPS();
  // 4:2:0 needs even sizes: a 161x121 picture is written as 4:4:4 and comes back intact.
  auto source = read_video_frames(clip.pan.string());
  visage::VideoInfo info = visage::probe_video(clip.pan.string());
  info.width = 161;
  info.height = 121;
  const fs::path out = clip.dir / "odd.mp4";
  visage::VideoWriter writer(out.string(), info);
  std::vector<at::Tensor> written;
  for (int i = 0; i < 10; ++i) {
    visage::VideoFrame frame = source[i];
    frame.rgb = source[i].rgb.slice(0, 20, 141).slice(1, 30, 191).contiguous();
    written.push_back(frame.rgb);
    writer.write(frame);
  }
  writer.finish();
  const auto again = read_video_frames(out.string());
  ASSERT_EQ(again.size(), 10u);
  for (size_t i = 0; i < again.size(); ++i) {
    ASSERT_EQ(again[i].rgb.sizes(), (std::vector<int64_t>{121, 161, 3}));
    EXPECT_GT(psnr(again[i].rgb, written[i]), 35.0) << "frame " << i;
  }
}

TEST(VideoIo, HardwareDecodeFallsBackOrRefuses) {
  REQUIRE_CLIPS();
  visage::VideoReaderOptions automatic;
  automatic.hardware = visage::HardwareDecode::auto_;
  visage::VideoReader reader(clip.pan.string(), automatic);
  const std::string decoder = reader.info().decoder;
  EXPECT_TRUE(decoder == "h264" || decoder == "h264_cuvid") << decoder;
  int64_t n = 0;
  while (reader.read()) ++n;
  EXPECT_EQ(n, 50);

  visage::VideoReaderOptions cuda;
  cuda.hardware = visage::HardwareDecode::cuda;
  if (decoder == "h264_cuvid") {
    EXPECT_EQ(visage::VideoReader(clip.pan.string(), cuda).info().decoder, "h264_cuvid");
  } else {
    const Error e = expect_error([&] { visage::VideoReader(clip.pan.string(), cuda); });
    EXPECT_EQ(e.kind(), ErrorKind::unsupported) << e.what();
    EXPECT_NE(std::string(e.what()).find("NVDEC"), std::string::npos) << e.what();
  }
}

TEST(VideoIo, UnfinishedWriterLeavesNoFile) {
  REQUIRE_CLIPS();
  visage::VideoReader reader(clip.pan.string());
  const fs::path out = clip.dir / "abandoned.mp4";
  {
    visage::VideoWriterOptions options;
    options.audio_from = clip.pan.string();
    visage::VideoWriter writer(out.string(), reader.info(), options);
    for (int i = 0; i < 5; ++i) writer.write(*reader.read());
    EXPECT_TRUE(fs::exists(out.string() + ".part"));
  }  // destroyed without finish(), as when processing fails
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out.string() + ".part"));
}

TEST(VideoIo, WriterErrors) {
  REQUIRE_CLIPS();
  const visage::VideoInfo info = visage::probe_video(clip.pan.string());
  if (::geteuid() != 0) {
    const fs::path locked = clip.dir / "locked";
    fs::create_directories(locked);
    fs::permissions(locked, fs::perms::owner_read | fs::perms::owner_exec);
    const Error e = expect_error([&] { visage::VideoWriter((locked / "out.mp4").string(), info); });
    EXPECT_EQ(e.kind(), ErrorKind::io) << e.what();
    EXPECT_NE(std::string(e.what()).find("out.mp4"), std::string::npos) << e.what();
    fs::permissions(locked, fs::perms::owner_all);
  }
  const Error no_dir = expect_error([&] { visage::VideoWriter((clip.dir / "no/such/dir/out.mp4").string(), info); });
  EXPECT_EQ(no_dir.kind(), ErrorKind::io) << no_dir.what();

  visage::VideoWriterOptions unknown;
  unknown.encode.encoder = "no_such_encoder";
  const Error e = expect_error([&] { visage::VideoWriter((clip.dir / "x.mp4").string(), info, unknown); });
  EXPECT_EQ(e.kind(), ErrorKind::unsupported) << e.what();
  EXPECT_FALSE(fs::exists(clip.dir / "x.mp4.part"));

  const Error extension = expect_error([&] { visage::VideoWriter((clip.dir / "x.notavideo").string(), info); });
  EXPECT_EQ(extension.kind(), ErrorKind::unsupported) << extension.what();

  visage::VideoWriter writer((clip.dir / "wrong_size.mp4").string(), info);
  visage::VideoFrame wrong;
  wrong.rgb = at::zeros({100, 100, 3}, at::kByte);
  EXPECT_EQ(expect_error([&] { writer.write(wrong); }).kind(), ErrorKind::bad_input);
}

TEST(VideoIo, AutoEncoderFallsBackToX264) {
  REQUIRE_CLIPS();
  visage::VideoReader reader(clip.pan.string());
  visage::VideoWriterOptions options;
  options.encode.encoder = "auto";
  const fs::path out = clip.dir / "auto.mp4";
  visage::VideoWriter writer(out.string(), reader.info(), options);
  if (fs::exists("/dev/nvidia0")) {
    EXPECT_TRUE(writer.encoder_name() == "h264_nvenc" || writer.encoder_name() == "libx264");
  } else {
    EXPECT_EQ(writer.encoder_name(), "libx264") << "no NVIDIA device here";
  }
  while (auto frame = reader.read()) writer.write(*frame);
  writer.finish();
  EXPECT_EQ(visage::probe_video(out.string()).video_codec, "h264");
}

TEST(VideoIo, StreamOutputsAreWrittenDirectly) {
  REQUIRE_CLIPS();
  // A URL output (here file://, as udp:// or rtp:// would be) with a forced container:
  // written in place as it goes, no .part file, readable with the demuxer forced too.
  const fs::path target = clip.dir / "stream_without_extension";
  visage::VideoReader reader(clip.pan.string());
  visage::VideoWriterOptions options;
  options.format = "mpegts";
  options.audio_from = clip.pan.string();
  visage::VideoWriter writer("file://" + target.string(), reader.info(), options);
  int64_t n = 0;
  while (auto frame = reader.read()) {
    writer.write(*frame);
    if (++n == 25) {
      EXPECT_TRUE(fs::exists(target)) << "written while it runs";
    }
  }
  writer.finish();
  EXPECT_FALSE(fs::exists(target.string() + ".part"));
  visage::VideoReaderOptions forced;
  forced.input_format = "mpegts";
  visage::VideoReader again(target.string(), forced);
  EXPECT_EQ(again.info().container, "mpegts");
  EXPECT_TRUE(again.info().has_audio);
  int64_t count = 0;
  while (again.read()) ++count;
  EXPECT_EQ(count, 50);

  forced.input_format = "no_such_demuxer";
  const Error e = expect_error([&] { visage::VideoReader(clip.pan.string(), forced); });
  EXPECT_EQ(e.kind(), ErrorKind::unsupported) << e.what();
}

TEST(VideoIo, RealtimeReadingKeepsPace) {
  REQUIRE_CLIPS();
  // A lower bound only: frames must not come faster than their timestamps.
  visage::VideoReaderOptions options;
  options.realtime = true;
  options.end = 0.4;
  visage::VideoReader reader(clip.pan.string(), options);
  const auto begin = std::chrono::steady_clock::now();
  double last = 0;
  int n = 0;
  while (auto frame = reader.read()) {
    last = frame->time;
    ++n;
  }
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  EXPECT_EQ(n, 10);
  EXPECT_GE(elapsed, last - 0.005);
}

TEST(VideoIo, VideoPathNames) {
  EXPECT_TRUE(visage::is_video_path("a/b/clip.MP4"));
  EXPECT_TRUE(visage::is_video_path("x.webm"));
  EXPECT_TRUE(visage::is_video_path("x.ts"));
  EXPECT_FALSE(visage::is_video_path("photo.jpg"));
  EXPECT_FALSE(visage::is_video_path("dir.mp4/file"));
#ifndef VISAGE_WITH_VIDEO
  GTEST_SKIP() << "built without FFmpeg (VISAGE_VIDEO=OFF): no encoders or decoders";
#endif
  EXPECT_TRUE(visage::has_video_encoder("libx264"));
  EXPECT_TRUE(visage::has_video_decoder("h264"));
  EXPECT_FALSE(visage::has_video_encoder("aac")) << "an audio encoder is not a video encoder";
  EXPECT_FALSE(visage::has_video_encoder("no_such_encoder"));
}

TEST(VideoIo, SilentSourcesTimeOut) {
  REQUIRE_CLIPS();
  // A network source that never sends: the open gives up with Error{io} instead of waiting for ever.
  const int port = 40000 + ::getpid() % 20000;
  const std::string url = "udp://127.0.0.1:" + std::to_string(port);
  visage::VideoReaderOptions options;
  options.timeout = 0.5;
  Error e = expect_error([&] { visage::VideoReader(url, options); });
  EXPECT_EQ(e.kind(), ErrorKind::io) << e.what();
  EXPECT_NE(std::string(e.what()).find("no data"), std::string::npos) << e.what();

  // A source that sends a second of video and then goes silent: the frames it sent are read,
  // then the next read gives up. FFmpeg starts sending once this reader listens.
  const std::string sender = "(sleep 0.5; timeout 30 ffmpeg -v error -re -i '" + clip.pan.string() +
                             "' -t 1 -an -c:v libx264 -preset ultrafast -f mpegts '" + url +
                             "?pkt_size=1316') > /dev/null 2>&1 &";
  ASSERT_EQ(std::system(sender.c_str()), 0);
  options.timeout = 3;  // covers FFmpeg's start-up
  visage::VideoReader reader(url + "?fifo_size=100000", options);
  ASSERT_TRUE(reader.read());  // the first frame arrived: from now on silence counts from the last data
  int64_t frames = 1;
  e = expect_error([&] {
    while (reader.read()) ++frames;
  });
  EXPECT_EQ(e.kind(), ErrorKind::io) << e.what();
  EXPECT_NE(std::string(e.what()).find("no data"), std::string::npos) << e.what();
  EXPECT_GT(frames, 5) << "frames sent before the silence are delivered";
}
