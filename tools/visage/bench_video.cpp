// `visage bench video`: a whole clip through the video pipeline (decode,
// track, swap, encode) in frames per second, per-stage time and resident
// memory at start and end; landmark jitter with and without smoothing.
#include <ATen/ATen.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>

#include "cli.hpp"
#include "visage/face.hpp"
#include "visage/image.hpp"
#include "visage/pipeline.hpp"
#include "visage/track.hpp"
#include "visage/video.hpp"

namespace visage::cli {

namespace {

const char* kBenchVideoUsage = R"(usage: visage bench video --video CLIP --source IMAGE [options]

Runs CLIP through the whole pipeline (decode, track, swap, encode into a
temporary file) and prints frames per second, the time of each stage, the
slowest frame and resident memory at the start and the end. With --jitter,
also tracks the clip's first face with and without smoothing and prints the
landmark jitter (roughness of the eye, brow and nose points, in eye distances).

options:
  --video CLIP              input clip (required)
  --source IMAGE            source face (required unless --jitter-only)
  --runs N                  pipeline runs, the best is reported (default 1)
  --jitter                  also measure landmark jitter; --jitter-only skips the pipeline
  --detector NAME, --landmarker NAME, --device cpu|cuda, --fp16, --threads N
  --json FILE               also write the results as JSON
  the video options of `visage swap` (encoder, preset, quality, --hwaccel, --workers,
  --queue-frames, --detect-interval, smoothing, trim), below.
)";

double resident_mib() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "VmRSS:") {
      double kib = 0;
      status >> kib;
      return kib / 1024.0;
    }
    status.ignore(1 << 16, '\n');
  }
  return 0;
}

// Landmark jitter of the clip's first track: brows, nose and eyes of the 68
// points (the jaw and lips move with speech).
// `per_frame`: no tracker, the detector and the mesh on every frame (what a
// pipeline without tracking sees); the largest face.
double clip_jitter(FaceAnalyser& analyser, const std::string& clip, const FaceTrackerOptions& options,
                   bool per_frame = false) {
  FaceTracker tracker(analyser, options);
  VideoReader reader(clip);
  std::vector<std::vector<Point2>> points;
  std::vector<float> eyes;
  std::optional<int> id;
  while (auto frame = reader.read()) {
    Face face;
    if (per_frame) {
      std::vector<Face> faces = analyser.detect(frame->rgb);
      analyser.landmark(frame->rgb, faces);
      auto largest = std::max_element(faces.begin(), faces.end(),
                                      [](const Face& a, const Face& b) { return a.box.area() < b.box.area(); });
      if (largest == faces.end()) continue;
      face = *largest;
    } else {
      auto tracks = tracker.track(frame->rgb, frame->time);
      const TrackedFace* t = nullptr;
      for (const auto& candidate : tracks)
        if (!id || candidate.id == *id) t = &candidate;
      if (!t) continue;
      id = t->id;
      face = t->face;
    }
    if (face.landmarks_68.size() != 68) continue;
    const auto& l = face.landmarks_68;
    points.emplace_back(l.begin() + 17, l.begin() + 48);
    eyes.push_back(std::hypot(l[36].x - l[45].x, l[36].y - l[45].y));
  }
  if (points.size() < 3) throw Error(ErrorKind::bad_input, clip + ": fewer than 3 frames with a face");
  return landmark_jitter(points, eyes);
}

}  // namespace

int bench_video(Args& args) {
  if (args.flag("--help")) {
    std::cout << kBenchVideoUsage << video_options_usage();
    return 0;
  }
  auto clip = args.value("--video");
  auto source_path = args.value("--source");
  int runs = args.int_or("--runs", 1);
  bool jitter_only = args.flag("--jitter-only");
  bool jitter = args.flag("--jitter") || jitter_only;
  auto json_path = args.value("--json");
  SwapOptions swap_options;
  swap_options.analyser.attributes = false;
  swap_options.analyser.runtime = parse_runtime_options(args);
  if (auto v = args.value("--detector")) swap_options.analyser.detector = parse_face_detector(*v);
  if (auto v = args.value("--landmarker")) swap_options.analyser.landmarker = parse_face_landmarker(*v);
  VideoSwapOptions options = parse_video_command(args).options;  // its progress style is not used here
  args.finish();
  if (!clip || (!source_path && !jitter_only) || runs < 1) {
    std::cerr << kBenchVideoUsage;
    return 2;
  }

  nlohmann::json result;
  result["clip"] = *clip;
  VideoInfo info = probe_video(*clip);
  result["video"] = {{"width", info.width},
                     {"height", info.height},
                     {"frames", info.frame_count},
                     {"fps", info.frame_rate},
                     {"codec", info.video_codec}};
  std::cout << *clip << ": " << info.width << "x" << info.height << ", " << info.frame_count << " frames, "
            << info.video_codec << "\n";
  FaceSwapper swapper(swap_options);
  if (!jitter_only) {
    SourceFace source = swapper.prepare_source({read_image(*source_path).rgb});
    std::filesystem::path out =
        std::filesystem::temp_directory_path() / ("visage-bench-video-" + std::to_string(::getpid()) + ".mp4");
    VideoSwapReport best;
    double rss_start = 0, rss_end = 0, rss_peak = 0, steady_fps = 0;
    for (int run = 0; run < runs; ++run) {
      double first_rss = 0, last_rss_sample = -1;
      // Steady state: frames written after the first 10% (start-up: model
      // warm-up, cuDNN algorithm search, queues filling) over the time they took.
      int64_t skip = std::max<int64_t>(1, info.frame_count / 10);
      double t_skip = 0, t_last = 0;
      int64_t n_last = 0;
      auto sample = [&](const VideoProgress& p) {
        if (p.frames_done == skip) t_skip = p.elapsed;
        if (!p.finished) t_last = p.elapsed, n_last = p.frames_done;
        if (p.elapsed - last_rss_sample < 0.5 && !p.finished) return;
        last_rss_sample = p.elapsed;
        double rss = resident_mib();
        if (first_rss == 0 && p.elapsed >= 1.0) first_rss = rss;
        rss_peak = std::max(rss_peak, rss);
        if (p.finished) rss_end = rss;
      };
      options.progress_interval = 0;
      VideoSwapReport r = swap_video(swapper, &source, *clip, out.string(), options, sample);
      std::filesystem::remove(out);
      double steady = t_last > t_skip && n_last > skip ? (n_last - skip) / (t_last - t_skip) : 0;
      if (run == 0 || r.seconds < best.seconds) best = r, steady_fps = steady;
      rss_start = first_rss;
    }
    double fps = best.frames_written / best.seconds;
    std::cout << std::fixed << std::setprecision(1) << "pipeline: " << best.frames_written << " frames in "
              << best.seconds << " s = " << fps << " fps, steady state " << steady_fps << " fps (decoder "
              << best.input.decoder << ", encoder " << best.encoder << ")\n"
              << "  stage seconds (summed over threads): decode " << best.decode_seconds << ", track "
              << best.track_seconds << ", swap " << best.swap_seconds << ", encode " << best.encode_seconds << "\n"
              << "  slowest frame read->written " << best.max_latency * 1000 << " ms; detector ran "
              << best.tracking.detector_runs << " times\n"
              << "  resident memory: " << rss_start << " MiB after the first second, " << rss_end
              << " MiB at the end, peak " << rss_peak << " MiB\n";
    result["pipeline"] = {{"frames", best.frames_written},
                          {"seconds", best.seconds},
                          {"fps", fps},
                          {"steady_fps", steady_fps},
                          {"decoder", best.input.decoder},
                          {"encoder", best.encoder},
                          {"faces_swapped", best.faces_swapped},
                          {"stage_seconds",
                           {{"decode", best.decode_seconds},
                            {"track", best.track_seconds},
                            {"swap", best.swap_seconds},
                            {"encode", best.encode_seconds}}},
                          {"max_latency_ms", best.max_latency * 1000},
                          {"detector_runs", best.tracking.detector_runs},
                          {"rss_mib", {{"start", rss_start}, {"end", rss_end}, {"peak", rss_peak}}}};
  }
  if (jitter) {
    FaceTrackerOptions raw = options.tracking, smooth = options.tracking;
    raw.smoothing = false;
    raw.describe = smooth.describe = false;
    // What a per-frame pipeline sees: detector and mesh on every frame, no smoothing.
    double j_frame = clip_jitter(swapper.analyser(), *clip, raw, /*per_frame=*/true);
    double j_raw = clip_jitter(swapper.analyser(), *clip, raw);
    double j_smooth = clip_jitter(swapper.analyser(), *clip, smooth);
    std::cout << std::setprecision(5) << "jitter (eye distances per frame^2): detector every frame " << j_frame
              << ", tracked " << j_raw << ", tracked + smoothed " << j_smooth << " (" << std::setprecision(2)
              << j_frame / std::max(j_smooth, 1e-12) << "x steadier than per frame)\n";
    result["jitter"] = {{"per_frame", j_frame}, {"tracked", j_raw}, {"smoothed", j_smooth}};
  }
  if (json_path) std::ofstream(*json_path) << result.dump(2) << "\n";
  return 0;
}

}  // namespace visage::cli
