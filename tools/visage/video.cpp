// Videos and live streams: `visage swap -t clip.mp4`, `visage stream`, progress display.
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "cli.hpp"
#include "visage/pipeline.hpp"
#include "visage/video.hpp"

namespace visage::cli {

namespace {

const char* kStreamUsage = R"(usage: visage stream -s SOURCE... -i INPUT -o OUTPUT [options]

Swaps faces live: reads a camera (-i /dev/video0), a URL or a file, and writes
a file, a v4l2loopback device (/dev/videoN) or a network stream
(udp://host:port, rtp://host:port). Frames the swap cannot keep up with are
dropped, so the delay stays bounded; a file input is read at its own pace
(like ffmpeg -re) unless --as-fast-as-possible.

options:
  -s, --source IMAGE           source face photo (repeatable)
  -i, --input INPUT            camera device, URL or file
  -o, --output OUTPUT          file, /dev/videoN or udp://, rtp:// URL
  --input-format NAME          FFmpeg input format (default: v4l2 for /dev/video*, else probed)
  --format NAME                output container (default: v4l2 for /dev/video*, mpegts for udp://,
                               rtp for rtp://, else from the file name)
  --as-fast-as-possible        read a file input without real-time pacing (and drop nothing)
  --input-timeout SECONDS      give up when a camera or URL sends nothing for this long (default 10, 0 = never)
  every swap option of `visage swap` (masks, colour, blend, selector, --map, --device, ...),
  and the video options below.
)";

const char* kVideoOptionsUsage = R"(
video options (`visage swap -t VIDEO -o VIDEO` and `visage stream`):
  --trim-start SECONDS         start the output at this time of the input
  --trim-end SECONDS           end the output at this time of the input
  --hwaccel MODE               decoding: off (default), auto (NVDEC when present), cuda (NVDEC or fail)
  --output-video-encoder NAME  libx264 (default), libx265, libvpx-vp9, h264_nvenc, hevc_nvenc, mpeg4,
                               auto (h264_nvenc when the card has NVENC, else libx264)
  --output-video-preset NAME   the encoder's preset (default veryfast for x264/x265, p4 for nvenc)
  --output-video-quality N     crf (x264, x265, vp9) or cq (nvenc); lower is better (default 18)
  --no-audio                   do not copy the input's audio
  --workers N                  parallel swaps (default: CPU threads up to 4, 2 on CUDA)
  --queue-frames N             frames in flight between reading and writing (default 2 x workers + 4)
  --detect-interval N          run the face detector every N frames (default 10; 1 = every frame)
  --no-smoothing               do not smooth landmarks over time
  --smoothing MIN_CUTOFF,BETA  One-Euro filter: lower cut-off = steadier, higher beta = less lag (default 1,1)
  --progress MODE              bar (default on a terminal), json (JSON lines on stdout), none
  --quiet                      no progress display (same as --progress none)
)";

std::string clock_text(double seconds) {
  int s = static_cast<int>(std::lround(std::max(0.0, seconds)));
  char text[32];
  if (s >= 3600)
    std::snprintf(text, sizeof text, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(text, sizeof text, "%d:%02d", s / 60, s % 60);
  return text;
}

nlohmann::json progress_json(const VideoProgress& p) {
  return {{"frames_done", p.frames_done},
          {"frames_total", p.frames_total},
          {"frames_dropped", p.frames_dropped},
          {"faces_swapped", p.faces_swapped},
          {"elapsed", p.elapsed},
          {"fps", p.fps},
          {"eta", p.eta},
          {"latency", p.latency},
          {"finished", p.finished}};
}

// One line redrawn in place on stderr.
void draw_bar(const VideoProgress& p) {
  const int width = 30;
  std::string bar;
  if (p.frames_total > 0) {
    int filled = static_cast<int>(width * std::min<double>(1.0, static_cast<double>(p.frames_done) / p.frames_total));
    bar = "[" + std::string(filled, '#') + std::string(width - filled, '.') + "] ";
  }
  std::ostringstream line;
  line << "\r" << bar << p.frames_done;
  if (p.frames_total > 0) line << "/" << p.frames_total;
  line << " frames  " << std::fixed;
  line.precision(1);
  line << p.fps << " fps  " << clock_text(p.elapsed);
  if (!p.finished && p.eta > 0) line << "  ETA " << clock_text(p.eta);
  if (p.frames_dropped) line << "  dropped " << p.frames_dropped;
  line << "  faces " << p.faces_swapped << "\x1b[K";
  if (p.finished) line << "\n";
  std::cerr << line.str() << std::flush;
}

VideoProgressCallback progress_printer(ProgressStyle style) {
  if (style == ProgressStyle::automatic) style = isatty(STDERR_FILENO) ? ProgressStyle::bar : ProgressStyle::none;
  switch (style) {
    case ProgressStyle::bar: return draw_bar;
    case ProgressStyle::json:
      return [](const VideoProgress& p) { std::cout << progress_json(p).dump() << "\n" << std::flush; };
    default: return {};
  }
}

nlohmann::json report_json(const VideoSwapReport& r, const std::string& input, const std::string& output) {
  return {{"input", input},
          {"output", output},
          {"encoder", r.encoder},
          {"decoder", r.input.decoder},
          {"width", r.input.width},
          {"height", r.input.height},
          {"frames_read", r.frames_read},
          {"frames_written", r.frames_written},
          {"frames_dropped", r.frames_dropped},
          {"frames_with_faces", r.frames_with_faces},
          {"faces_swapped", r.faces_swapped},
          {"seconds", r.seconds},
          {"fps", r.seconds > 0 ? r.frames_written / r.seconds : 0},
          {"max_latency", r.max_latency},
          {"stage_seconds",
           {{"decode", r.decode_seconds},
            {"track", r.track_seconds},
            {"swap", r.swap_seconds},
            {"encode", r.encode_seconds}}},
          {"tracking",
           {{"detector_runs", r.tracking.detector_runs},
            {"scene_cuts", r.tracking.scene_cuts},
            {"tracks_started", r.tracking.tracks_started}}}};
}

void fill_targets(PreparedSwap& prepared, VideoSwapOptions& options) {
  options.selector = prepared.selector;
  options.mappings.clear();
  for (const auto& m : prepared.mappings) options.mappings.push_back({m.reference, &m.source});
}

bool is_device(const std::string& path) { return path.rfind("/dev/", 0) == 0; }

}  // namespace

VideoCommand parse_video_command(Args& args) {
  VideoCommand c;
  VideoSwapOptions& o = c.options;
  if (auto v = args.value("--trim-start")) o.input.start = parse_float(*v, "--trim-start");
  if (auto v = args.value("--trim-end")) o.input.end = parse_float(*v, "--trim-end");
  if (o.input.start < 0 || o.input.end < 0 || (o.input.end > 0 && o.input.end <= o.input.start))
    throw Error(ErrorKind::bad_input, "--trim-start/--trim-end: need 0 <= start < end");
  if (auto v = args.value("--hwaccel")) {
    if (*v == "off" || *v == "none")
      o.input.hardware = HardwareDecode::off;
    else if (*v == "auto")
      o.input.hardware = HardwareDecode::auto_;
    else if (*v == "cuda" || *v == "nvdec" || *v == "cuvid")
      o.input.hardware = HardwareDecode::cuda;
    else
      throw Error(ErrorKind::bad_input, "--hwaccel must be off, auto or cuda, got '" + *v + "'");
  }
  if (auto v = args.value("--output-video-encoder")) {
    if (*v != "auto" && !has_video_encoder(*v))
      throw Error(ErrorKind::unsupported, "--output-video-encoder " + *v + ": this FFmpeg has no such encoder");
    o.output.encode.encoder = *v;
  }
  if (auto v = args.value("--output-video-preset")) o.output.encode.preset = *v;
  if (auto v = args.value("--output-video-quality")) {
    o.output.encode.quality = parse_int_list(*v, "--output-video-quality").at(0);
    if (o.output.encode.quality < 0 || o.output.encode.quality > 63)
      throw Error(ErrorKind::bad_input, "--output-video-quality must be within 0..63");
  }
  if (args.flag("--no-audio")) o.copy_audio = false;
  o.workers = args.int_or("--workers", 0);
  o.queue_frames = args.int_or("--queue-frames", 0);
  if (o.workers < 0 || o.queue_frames < 0)
    throw Error(ErrorKind::bad_input, "--workers and --queue-frames must not be negative");
  o.tracking.detect_interval = args.int_or("--detect-interval", o.tracking.detect_interval);
  if (o.tracking.detect_interval < 1) throw Error(ErrorKind::bad_input, "--detect-interval must be at least 1");
  if (args.flag("--no-smoothing")) o.tracking.smoothing = false;
  if (auto v = args.value("--smoothing")) {
    std::stringstream in(*v);
    std::string a, b;
    std::getline(in, a, ',');
    std::getline(in, b);
    o.tracking.min_cutoff = parse_float(a, "--smoothing");
    if (!b.empty()) o.tracking.beta = parse_float(b, "--smoothing");
    if (o.tracking.min_cutoff <= 0 || o.tracking.beta < 0)
      throw Error(ErrorKind::bad_input, "--smoothing needs MIN_CUTOFF > 0 and BETA >= 0");
  }
  if (auto v = args.value("--progress")) {
    if (*v == "bar")
      c.progress = ProgressStyle::bar;
    else if (*v == "json")
      c.progress = ProgressStyle::json;
    else if (*v == "none")
      c.progress = ProgressStyle::none;
    else
      throw Error(ErrorKind::bad_input, "--progress must be bar, json or none, got '" + *v + "'");
  }
  if (args.flag("--quiet") || args.flag("-q")) c.progress = ProgressStyle::none;
  return c;
}

int swap_video_target(PreparedSwap& prepared, const std::string& input, const std::string& output,
                      const VideoCommand& video, bool json) {
  if (!is_video_path(output))
    throw Error(ErrorKind::unsupported,
                output + ": a video target needs a video output (.mp4 .mov .mkv .webm .avi .m4v .ts .mpg)");
  VideoSwapOptions options = video.options;
  fill_targets(prepared, options);
  VideoSwapReport report = swap_video(prepared.swapper, prepared.source ? &*prepared.source : nullptr, input, output,
                                      options, progress_printer(video.progress));
  if (json) {
    std::cout << report_json(report, input, output).dump(2) << "\n";
  } else if (video.progress != ProgressStyle::json) {
    std::cout << input << " -> " << output << ": " << report.frames_written << " frames, " << report.faces_swapped
              << " face(s) swapped in " << report.frames_with_faces << " frames, "
              << static_cast<int>(report.seconds * 10) / 10.0 << " s ("
              << static_cast<int>(report.frames_written / std::max(report.seconds, 1e-9)) << " fps)\n";
  }
  if (report.faces_swapped == 0) {
    std::cerr << "visage: " << input << ": no face to swap found in any frame\n";
    return 1;
  }
  return 0;
}

int stream_video(Args& args) {
  if (args.flag("--help")) {
    std::cout << kStreamUsage << kVideoOptionsUsage;
    return 0;
  }
  SwapCommand command = parse_swap_command(args);
  VideoCommand video = parse_video_command(args);
  auto input = args.value("--input");
  if (!input) input = args.value("-i");
  auto output = args.value("--output");
  if (!output) output = args.value("-o");
  auto input_format = args.value("--input-format");
  auto format = args.value("--format");
  bool fast = args.flag("--as-fast-as-possible");
  bool json = args.flag("--json");
  std::optional<double> timeout;
  if (auto v = args.value("--input-timeout")) timeout = parse_float(*v, "--input-timeout");
  args.finish();
  if (timeout && *timeout < 0) throw Error(ErrorKind::bad_input, "--input-timeout: need a number of seconds >= 0");
  if ((command.sources.empty() && command.maps.empty()) || !input || !output) {
    std::cerr << kStreamUsage;
    return 2;
  }
  VideoSwapOptions& o = video.options;
  o.live = !fast;
  o.copy_audio = false;
  if (input_format)
    o.input.input_format = *input_format;
  else if (is_device(*input))
    o.input.input_format = "v4l2";
  bool file_input = o.input.input_format.empty() && input->find("://") == std::string::npos;
  o.input.realtime = file_input && !fast;
  if (timeout) o.input.timeout = *timeout;
  if (format) {
    o.output.format = *format;
  } else if (is_device(*output)) {
    o.output.format = "v4l2";
  } else if (output->rfind("udp://", 0) == 0 || output->rfind("tcp://", 0) == 0) {
    o.output.format = "mpegts";
  } else if (output->rfind("rtp://", 0) == 0) {
    o.output.format = "rtp";
  }
  if (o.output.format == "v4l2" && o.output.encode.encoder == "libx264") o.output.encode.encoder = "rawvideo";
  if (o.output.format == "mpegts" || o.output.format == "rtp") {
    if (o.output.encode.preset.empty() && o.output.encode.encoder == "libx264") o.output.encode.preset = "ultrafast";
  }
  PreparedSwap prepared = prepare_swap(command);
  fill_targets(prepared, o);
  VideoSwapReport report = swap_video(prepared.swapper, prepared.source ? &*prepared.source : nullptr, *input, *output,
                                      o, progress_printer(video.progress));
  if (json) {
    std::cout << report_json(report, *input, *output).dump(2) << "\n";
  } else if (video.progress != ProgressStyle::json) {
    std::cout << *input << " -> " << *output << ": " << report.frames_written << " frames written, "
              << report.frames_dropped << " dropped, max latency " << static_cast<int>(report.max_latency * 1000)
              << " ms\n";
  }
  return 0;
}

const char* video_options_usage() { return kVideoOptionsUsage; }

}  // namespace visage::cli
