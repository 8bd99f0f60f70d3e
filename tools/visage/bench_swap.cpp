// `visage bench swap`: latency of one face swap in a 1080p photo, per stage.
// `visage bench swap-quality`: identity and landmark figures of swaps over
// source/target pairs, against the plain mesh paste, with a contact sheet.
#include <ATen/ATen.h>
#include <ATen/record_function.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cli.hpp"
#include "visage/face.hpp"
#include "visage/image.hpp"
#include "visage/swap.hpp"

namespace visage::cli {

namespace {

const Face* largest_face(const std::vector<Face>& faces) {
  const Face* best = nullptr;
  for (const auto& f : faces)
    if (!best || f.box.area() > best->box.area()) best = &f;
  return best;
}

// A square tile around a face box (1.8x its size), `size` pixels.
at::Tensor face_tile(const at::Tensor& rgb, const Box& box, int size) {
  float side = std::max(box.width, box.height) * 1.8f;
  double s = side / size;
  Point2 c = box.centre();
  Affine crop_to_image = {s, 0, c.x - side / 2, 0, s, c.y - side / 2};
  // warp_face takes image -> crop.
  Affine image_to_crop = {1 / s, 0, -crop_to_image[2] / s, 0, 1 / s, -crop_to_image[5] / s};
  return warp_face(rgb, image_to_crop, size);
}

// 68-point NME: mean distance / outer eye-corner distance of the reference.
float nme(const std::vector<Point2>& a, const std::vector<Point2>& ref) {
  float norm = std::hypot(ref[36].x - ref[45].x, ref[36].y - ref[45].y), sum = 0;
  for (size_t i = 0; i < 68; ++i) sum += std::hypot(a[i].x - ref[i].x, a[i].y - ref[i].y);
  return sum / 68.f / norm;
}

// ATen ops launched while a swap runs, per stage (the library names its
// stages with RecordFunction user scopes, "swap.*"), through a global
// RecordFunction observer: `top` counts the calls made by the swap's own code
// (what the host issues one after another), `all` also the ops they call
// inside, `kernels` the innermost ops that compute on the run's device (not
// views or allocations): about the kernel launches. `waits` counts the calls that make the host wait for a device (a
// scalar read or a copy to the host from it, a blocking copy from pageable
// memory to it, nonzero / masked_select on it), once each where one calls
// another; on the CPU there are none.
class OpCounter {
 public:
  struct Stage {
    int64_t top = 0, all = 0, kernels = 0, waits = 0;
    std::map<std::string, int64_t> ops;  // top-level calls by name
    std::map<std::string, int64_t> wait_ops;
  };

  explicit OpCounter(bool on_device) {
    s_device = on_device;
    handle_ = at::addGlobalCallback(at::RecordFunctionCallback(&OpCounter::on_start, &OpCounter::on_end)
                                        .needsInputs(true)
                                        .scopes({at::RecordScope::FUNCTION, at::RecordScope::USER_SCOPE}));
  }
  ~OpCounter() { at::removeCallback(handle_); }
  OpCounter(const OpCounter&) = delete;
  OpCounter& operator=(const OpCounter&) = delete;

  static std::map<std::string, Stage>& stages() {
    static std::map<std::string, Stage> s;
    return s;
  }

 private:
  struct ThreadState {
    std::vector<std::string> stage;
    int depth = 0;
    int wait_depth = -1;  // the depth of the wait being counted, if any
    struct Open {
      bool counted;    // in a swap stage, computes on the run's device, not a view or an allocation
      bool has_inner;  // called other ops
    };
    std::vector<Open> open;
  };

  static ThreadState& state() {
    thread_local ThreadState s;
    return s;
  }
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }

  static bool waits(const at::RecordFunction& fn, const char* name) {
    auto inputs = fn.inputs();
    if (inputs.empty() || !inputs[0].isTensor()) return false;
    if (std::strcmp(name, "aten::_local_scalar_dense") == 0 || std::strcmp(name, "aten::nonzero") == 0 ||
        std::strcmp(name, "aten::masked_select") == 0)
      return !inputs[0].toTensor().is_cpu();
    if (std::strcmp(name, "aten::copy_") != 0) return false;
    if (inputs.size() < 2 || !inputs[1].isTensor()) return false;
    const at::Tensor& dst = inputs[0].toTensor();
    const at::Tensor& src = inputs[1].toTensor();
    const bool non_blocking = inputs.size() > 2 && inputs[2].isBool() && inputs[2].toBool();
    if (dst.is_cpu() && !src.is_cpu()) return true;
    if (dst.is_cpu() || !src.is_cpu()) return false;
    at::DisableRecordFunctionGuard not_counted;  // is_pinned is an op itself
    return !(non_blocking && src.is_pinned());
  }

  // Ops that compute nothing: views and allocations.
  static bool free_op(const char* name) {
    static const char* const names[] = {
        "aten::view",       "aten::_unsafe_view",   "aten::narrow",
        "aten::select",     "aten::slice",          "aten::permute",
        "aten::unsqueeze",  "aten::squeeze",        "aten::expand",
        "aten::t",          "aten::transpose",      "aten::unfold",
        "aten::as_strided", "aten::alias",          "aten::view_as",
        "aten::diagonal",   "aten::detach",         "aten::empty",
        "aten::empty_like", "aten::empty_strided",  "aten::resize_",
        "aten::is_pinned",  "aten::_reshape_alias", "aten::lift_fresh",
        "aten::unbind",     "aten::split",          "aten::split_with_sizes",
        "aten::chunk",      "aten::set_",           "aten::reshape",
        "aten::contiguous", "aten::expand_as",      "aten::_has_compatible_shallow_copy_type"};
    for (const char* n : names)
      if (std::strcmp(name, n) == 0) return true;
    return false;
  }
  // Whether a tensor input lies on the device the run uses (CPU runs: any tensor).
  static bool computes_here(const at::RecordFunction& fn) {
    for (const c10::IValue& v : fn.inputs()) {
      if (v.isTensor() && v.toTensor().defined() && (!s_device || !v.toTensor().is_cpu())) return true;
    }
    return false;
  }

  static std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
    ThreadState& t = state();
    const char* name = fn.name();
    if (fn.scope() == at::RecordScope::USER_SCOPE) {
      t.stage.emplace_back(name);
      return nullptr;
    }
    const bool in_swap = !t.stage.empty() && t.stage.back().rfind("swap.", 0) == 0;
    if (!t.open.empty()) t.open.back().has_inner = true;
    t.open.push_back({in_swap && !free_op(name) && computes_here(fn), false});
    if (in_swap) {
      const bool wait = t.wait_depth < 0 && waits(fn, name);
      if (wait) t.wait_depth = t.depth;
      std::lock_guard<std::mutex> lock(mutex());
      Stage& s = stages()[t.stage.back()];
      ++s.all;
      if (t.depth == 0) ++s.top, ++s.ops[name];
      if (wait) ++s.waits, ++s.wait_ops[name];
    }
    ++t.depth;
    return nullptr;
  }

  static void on_end(const at::RecordFunction& fn, at::ObserverContext*) {
    ThreadState& t = state();
    if (fn.scope() == at::RecordScope::USER_SCOPE) {
      if (!t.stage.empty()) t.stage.pop_back();
      return;
    }
    if (t.depth > 0) --t.depth;
    if (t.wait_depth == t.depth) t.wait_depth = -1;
    if (t.open.empty()) return;
    const ThreadState::Open op = t.open.back();
    t.open.pop_back();
    if (op.counted && !op.has_inner && !t.stage.empty()) {
      std::lock_guard<std::mutex> lock(mutex());
      ++stages()[t.stage.back()].kernels;
    }
  }

  static inline bool s_device = false;  // set before the observer is registered, read by its callbacks
  at::CallbackHandle handle_;
};

// Runs `run` once under an OpCounter; prints the counts per stage and the
// most frequent ops, and returns them as JSON.
nlohmann::json count_ops(const std::function<void()>& run, bool on_device) {
  OpCounter::stages().clear();
  {
    OpCounter counter(on_device);
    run();
  }
  const auto& stages = OpCounter::stages();
  std::cout << "ATen ops per stage of one swap (top: called by the swap's code; all: with the ops inside them; "
            << "kernels: innermost ops computing on the " << (on_device ? "device" : "CPU")
            << "; waits: the host waits for the device" << (on_device ? "" : ", none on the CPU") << ")\n"
            << "  stage              top    all kernels waits\n";
  OpCounter::Stage total;
  nlohmann::json j = nlohmann::json::object();
  auto row = [](const std::string& name, const OpCounter::Stage& s) {
    std::cout << "  " << std::left << std::setw(16) << name << std::right << std::setw(6) << s.top << std::setw(7)
              << s.all << std::setw(8) << s.kernels << std::setw(6) << s.waits;
    for (const auto& [op, n] : s.wait_ops) std::cout << "  " << op << " x" << n;
    std::cout << "\n";
  };
  for (const auto& [name, s] : stages) {
    row(name, s);
    total.top += s.top, total.all += s.all, total.kernels += s.kernels, total.waits += s.waits;
    for (const auto& [op, n] : s.ops) total.ops[op] += n;
    j[name] = {{"top", s.top},     {"all", s.all}, {"kernels", s.kernels},
               {"waits", s.waits}, {"ops", s.ops}, {"wait_ops", s.wait_ops}};
  }
  row("total", total);
  std::vector<std::pair<int64_t, std::string>> by_count;
  for (const auto& [op, n] : total.ops) by_count.push_back({n, op});
  std::sort(by_count.rbegin(), by_count.rend());
  std::cout << "  most called:";
  for (size_t i = 0; i < by_count.size() && i < 16; ++i)
    std::cout << (i % 4 == 0 ? "\n   " : "") << " " << by_count[i].second << " " << by_count[i].first;
  std::cout << "\n";
  j["total"] = {{"top", total.top}, {"all", total.all}, {"kernels", total.kernels}, {"waits", total.waits}};
  return j;
}

// Milliseconds per swap stage ("swap.*" user scopes), through a global
// RecordFunction observer on user scopes only (no per-op cost). With `sync`
// the device is waited for at every stage boundary: host and device time of
// each stage. Without, the host's time to issue the stage's work: on a
// device, where that is close to the synchronised figure the stage is bound
// by the host (launches), not by the kernels.
class StageTimer {
 public:
  explicit StageTimer(bool sync) {
    s_sync = sync;
    handle_ = at::addGlobalCallback(
        at::RecordFunctionCallback(&StageTimer::on_start, &StageTimer::on_end).scopes({at::RecordScope::USER_SCOPE}));
  }
  ~StageTimer() { at::removeCallback(handle_); }
  StageTimer(const StageTimer&) = delete;
  StageTimer& operator=(const StageTimer&) = delete;

  // Milliseconds of each stage in each run (a stage entered twice in one run adds up).
  static std::map<std::string, std::vector<double>>& runs() {
    static std::map<std::string, std::vector<double>> r;
    return r;
  }
  static void next_run() {
    for (auto& [name, ms] : runs()) ms.push_back(0.0);
  }

 private:
  using Clock = std::chrono::steady_clock;
  static Clock::time_point& started() {
    thread_local Clock::time_point t;
    return t;
  }
  static std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
    if (std::strncmp(fn.name(), "swap.", 5) != 0) return nullptr;
    if (s_sync) cuda_synchronize();
    started() = Clock::now();
    return nullptr;
  }
  static void on_end(const at::RecordFunction& fn, at::ObserverContext*) {
    if (std::strncmp(fn.name(), "swap.", 5) != 0) return;
    if (s_sync) cuda_synchronize();
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - started()).count();
    auto& series = runs()[fn.name()];
    if (series.empty()) series.push_back(0.0);
    series.back() += ms;
  }
  static inline bool s_sync = false;
  at::CallbackHandle handle_;
};

// p50 ms per stage over `iterations` runs of `run`, issued (no waits) and
// synchronised at the stage boundaries; printed and returned as JSON.
nlohmann::json time_stages(const std::function<void()>& run, int iterations) {
  nlohmann::json j = nlohmann::json::object();
  std::map<std::string, std::array<double, 2>> p50;
  for (const bool sync : {false, true}) {
    StageTimer::runs().clear();
    run();  // warm-up
    cuda_synchronize();
    StageTimer timer(sync);
    for (int i = 0; i < iterations; ++i) {
      StageTimer::next_run();
      run();
      cuda_synchronize();
    }
    for (auto& [name, ms] : StageTimer::runs()) {
      std::sort(ms.begin(), ms.end());
      p50[name][sync ? 1 : 0] = ms[ms.size() / 2];
    }
  }
  std::cout << "ms per stage of one swap, p50 (issued: the host's time without waiting for the device; "
            << "synchronised: waiting at each stage's end)\n  stage            issued synchronised\n";
  std::array<double, 2> total{0, 0};
  for (const auto& [name, ms] : p50) {
    std::cout << "  " << std::left << std::setw(16) << name << std::right << std::fixed << std::setprecision(2)
              << std::setw(7) << ms[0] << std::setw(13) << ms[1] << "\n";
    total[0] += ms[0], total[1] += ms[1];
    j[name] = {{"issued_ms", ms[0]}, {"synchronised_ms", ms[1]}};
  }
  std::cout << "  " << std::left << std::setw(16) << "sum" << std::right << std::setw(7) << total[0] << std::setw(13)
            << total[1] << "\n";
  return j;
}

}  // namespace

const char* kBenchSwapQualityUsage = R"(usage: visage bench swap-quality --sources A,B,... --targets X,Y,... [options]

Swaps every source onto every target (pairs of the same person skipped) twice:
the plain mesh paste (shape weight 0, Lab colour, feathered alpha, default
mask) and the given settings (the defaults unless options say otherwise), and
judges each output with the recogniser (distance to the source and to the
target) and the 68 points (NME against the target); prints the means.

options:
  --sheet FILE                 also write a contact sheet (source | target | plain paste | result)
  --tile N                     contact sheet tile size in pixels (default 160)
  --min-distance F             skip pairs whose faces are closer than this (same person; default 0.6)
  --face-swapper-weight F, --blend MODE, --colour MODE, --face-mask-blur F, --face-mask-types LIST
                               the settings judged (as for `visage swap`)
  --device cpu|cuda, --fp16, --threads N
  --json FILE                  also write the results as JSON
)";

int bench_swap_quality(Args& args) {
  if (args.flag("--help")) {
    std::cout << kBenchSwapQualityUsage;
    return 0;
  }
  std::vector<std::string> sources = split_list(args.value_or("--sources", ""));
  std::vector<std::string> targets = split_list(args.value_or("--targets", ""));
  auto sheet_path = args.value("--sheet");
  auto json_path = args.value("--json");
  int tile = args.int_or("--tile", 160);
  // Pairs of the same person (closer than this) are skipped: a swap needs two people.
  float min_distance = parse_float(args.value_or("--min-distance", "0.6"), "--min-distance");
  SwapOptions tuned;
  if (auto v = args.value("--face-swapper-weight")) tuned.shape_weight = parse_float(*v, "--face-swapper-weight");
  if (auto v = args.value("--blend")) tuned.blend = parse_blend_mode(*v);
  if (auto v = args.value("--colour")) tuned.colour = parse_colour_transfer(*v);
  if (auto v = args.value("--face-mask-blur")) tuned.mask.blur = parse_float(*v, "--face-mask-blur");
  if (auto v = args.value("--face-mask-types")) parse_face_mask_types(*v, tuned.mask);
  tuned.analyser.runtime = parse_runtime_options(args);
  args.finish();
  if (sources.empty() || targets.empty())
    throw Error(ErrorKind::bad_input, "bench swap-quality needs --sources A,B,... and --targets X,Y,...");
  tuned.analyser.attributes = false;
  SwapOptions plain = tuned;
  plain.mask = SwapOptions{}.mask;  // the baseline keeps the default box + region mask
  plain.mask.occlusion = false;
  plain.shape_weight = 0;
  plain.colour = ColourTransfer::lab;
  plain.blend = BlendMode::feather;
  FaceSwapper tuned_swapper(tuned), plain_swapper(plain);
  FaceAnalyser& judge = tuned_swapper.analyser();

  nlohmann::json rows = nlohmann::json::array();
  std::vector<at::Tensor> sheet_rows;
  double sum_plain = 0, sum_tuned = 0;
  int pairs = 0, tuned_closer = 0, plain_closer = 0;
  float worst_nme = 0;
  double sum_nme = 0;
  std::cout << std::left << std::setw(28) << "source" << std::setw(28) << "target"
            << " d(src,tgt)  plain:d_src d_tgt  tuned:d_src d_tgt   nme\n";
  for (const auto& s : sources) {
    Image src_img = read_image(s);
    auto src_faces = judge.analyse(src_img.rgb);
    const Face* src_face = largest_face(src_faces);
    if (!src_face) throw Error(ErrorKind::bad_input, s + ": no face");
    SourceFace source = tuned_swapper.prepare_source({src_img.rgb});
    for (const auto& t : targets) {
      if (t == s) continue;
      Image tgt_img = read_image(t);
      auto tgt_faces = judge.analyse(tgt_img.rgb);
      const Face* tgt_face = largest_face(tgt_faces);
      if (!tgt_face) throw Error(ErrorKind::bad_input, t + ": no face");
      float base = face_distance(src_face->embedding, tgt_face->embedding);
      if (base < min_distance) continue;
      FaceSelector one;
      one.mode = FaceSelectorMode::one;
      one.order = FaceOrder::large_small;
      at::Tensor out_plain = plain_swapper.swap(tgt_img.rgb, source, one);
      at::Tensor out_tuned = tuned_swapper.swap(tgt_img.rgb, source, one);
      auto judge_output = [&](const at::Tensor& out, float& d_src, float& d_tgt, float& n) {
        auto faces = judge.analyse(out);
        const Face* f = nearest_face(faces, tgt_face->box);
        if (!f) throw Error(ErrorKind::internal, t + ": the swapped face is not found again");
        d_src = face_distance(f->embedding, src_face->embedding);
        d_tgt = face_distance(f->embedding, tgt_face->embedding);
        n = nme(f->landmarks_68, tgt_face->landmarks_68);
      };
      float ps, pt, pn, ts, tt, tn;
      judge_output(out_plain, ps, pt, pn);
      judge_output(out_tuned, ts, tt, tn);
      sum_plain += ps, sum_tuned += ts, ++pairs;
      tuned_closer += ts < tt, plain_closer += ps < pt;
      worst_nme = std::max(worst_nme, tn);
      sum_nme += tn;
      std::filesystem::path sp(s), tp(t);
      std::cout << std::left << std::setw(28) << sp.filename().string() << std::setw(28) << tp.filename().string()
                << std::right << std::fixed << std::setprecision(3) << std::setw(10) << base << std::setw(12) << ps
                << std::setw(7) << pt << std::setw(12) << ts << std::setw(7) << tt << std::setw(7) << tn << "\n";
      rows.push_back({{"source", s},
                      {"target", t},
                      {"source_target_distance", base},
                      {"plain", {{"to_source", ps}, {"to_target", pt}, {"nme", pn}}},
                      {"tuned", {{"to_source", ts}, {"to_target", tt}, {"nme", tn}}}});
      if (sheet_path)
        sheet_rows.push_back(
            at::cat({face_tile(src_img.rgb, src_face->box, tile), face_tile(tgt_img.rgb, tgt_face->box, tile),
                     face_tile(out_plain, tgt_face->box, tile), face_tile(out_tuned, tgt_face->box, tile)},
                    1));
    }
  }
  if (pairs == 0) throw Error(ErrorKind::bad_input, "no source/target pairs");
  double mean_plain = sum_plain / pairs, mean_tuned = sum_tuned / pairs;
  std::cout << "pairs " << pairs << ": mean distance to source, plain " << std::setprecision(3) << mean_plain
            << ", tuned " << mean_tuned << " (" << std::setprecision(1)
            << 100.0 * (mean_plain - mean_tuned) / mean_plain << "% lower); closer to source than target: plain "
            << plain_closer << ", tuned " << tuned_closer << "; tuned NME mean " << std::setprecision(4)
            << sum_nme / pairs << ", worst " << worst_nme << "\n";
  if (sheet_path) {
    write_image(*sheet_path, at::cat(sheet_rows, 0));
    std::cout << "contact sheet (source | target | plain paste | tuned): " << *sheet_path << "\n";
  }
  if (json_path) {
    nlohmann::json j = {{"pairs", rows},
                        {"mean_to_source", {{"plain", mean_plain}, {"tuned", mean_tuned}}},
                        {"closer_to_source", {{"plain", plain_closer}, {"tuned", tuned_closer}}},
                        {"mean_tuned_nme", sum_nme / pairs},
                        {"worst_tuned_nme", worst_nme}};
    std::string text = j.dump(2);
    write_file_atomically(*json_path, std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  }
  return 0;
}

const char* kBenchSwapUsage = R"(usage: visage bench swap [options]

Times one face swap in a 1920x1080 frame per stage: detection + landmarks,
then swap + mask + colour + blend; JPEG decode and encode apart (p50/p90 ms).

options:
  --target FILE        the photo fitted into 1920x1080 (default Debian's matplotlib grace_hopper.jpg)
  --source FILE        the source face (default the target photo mirrored)
  --iterations N       timed runs (default 20)
  --blend MODE         feather, poisson, multiband (default)
  --face-enhancer NAME also run the face enhancer (reported in the swap stage)
  --detector NAME, --landmarker NAME, --tile-size N (as for `visage analyse`)
  --device cpu|cuda, --fp16, --cuda-graphs, --threads N
  --count-ops          also count the ATen ops (and host waits) of one swap, per stage
  --stage-times        also time each stage (host issue time, and with the device waited for at each stage's end)
  --moving N           swap N frames in turn, the photo zoomed in 0.4% more and shifted a pixel in each (as a
                       video's face moves from frame to frame), not one frame over and over
  --json FILE          also write the results as JSON
)";

int bench_swap(Args& args) {
  if (args.flag("--help")) {
    std::cout << kBenchSwapUsage;
    return 0;
  }
  std::string target_path = args.value_or("--target", "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg");
  auto source_path = args.value("--source");
  int iterations = args.int_or("--iterations", 20);
  auto json_path = args.value("--json");
  SwapOptions options;
  options.analyser.attributes = false;
  options.analyser.runtime = parse_runtime_options(args);
  if (auto v = args.value("--blend")) options.blend = parse_blend_mode(*v);
  if (auto v = args.value("--face-enhancer")) options.enhancer = {.enabled = true, .model = *v};
  if (auto v = args.value("--detector")) options.analyser.detector = parse_face_detector(*v);
  if (auto v = args.value("--landmarker")) options.analyser.landmarker = parse_face_landmarker(*v);
  options.analyser.tile_size = args.int_or("--tile-size", 0);
  const bool with_op_counts = args.flag("--count-ops");
  const bool with_stage_times = args.flag("--stage-times");
  const int moving = args.int_or("--moving", 1);
  if (moving < 1 || moving > 100) throw Error(ErrorKind::bad_input, "--moving takes 1 to 100 frames");
  args.finish();
  Image target_img = read_image(target_path);
  at::Tensor frame = fit_into(target_img.rgb, 1920, 1080);
  at::Tensor source_rgb =
      source_path ? read_image(*source_path).rgb : target_img.rgb.flip(1).contiguous();  // mirrored self by default
  FaceSwapper swapper(options);
  SourceFace source = swapper.prepare_source({source_rgb});
  FaceAnalyser& analyser = swapper.analyser();
  std::vector<Face> faces;
  Timing analyse = time_it(2, iterations, [&] {
    faces = analyser.detect(frame);
    analyser.landmark(frame, faces);
  });
  if (faces.empty()) throw Error(ErrorKind::bad_input, target_path + ": no face in the 1080p frame");
  std::vector<SwapAssignment> jobs = {{faces[0], &source}};
  // The other frames of --moving: crops of the photo, each 0.4% smaller and a
  // pixel or two off the last, fitted into the frame again.
  std::vector<at::Tensor> frames = {frame};
  std::vector<std::vector<SwapAssignment>> frame_jobs = {jobs};
  for (int k = 1; k < moving; ++k) {
    const at::Tensor& photo = target_img.rgb;
    const int64_t ch = std::llround(photo.size(0) * (1.0 - 0.004 * k)),
                  cw = std::llround(photo.size(1) * (1.0 - 0.004 * k));
    const int64_t y0 = std::min(photo.size(0) - ch, (photo.size(0) - ch) / 2 + k % 3);
    const int64_t x0 = std::min(photo.size(1) - cw, (photo.size(1) - cw) / 2 + k % 2);
    at::Tensor f = fit_into(photo.narrow(0, y0, ch).narrow(1, x0, cw).contiguous(), 1920, 1080);
    std::vector<Face> found = analyser.detect(f);
    analyser.landmark(f, found);
    if (found.empty())
      throw Error(ErrorKind::bad_input, target_path + ": no face in moving frame " + std::to_string(k));
    frames.push_back(f);
    frame_jobs.push_back({{found[0], &source}});
  }
  size_t next = 0;
  Timing compose = time_it(2, iterations, [&] {
    const size_t i = next++ % frames.size();
    swapper.swap(frames[i], frame_jobs[i]);
  });
  at::Tensor out = swapper.swap(frame, jobs);
  Timing encode = time_it(1, 5, [&] { encode_image(out, ImageFormat::jpeg); });
  std::vector<uint8_t> jpeg = encode_image(frame, ImageFormat::jpeg);
  Timing decode = time_it(1, 5, [&] { decode_image(jpeg, "frame.jpg"); });
  std::string device = options.analyser.runtime.device == Device::cuda ? "cuda" : "cpu";
  if (options.analyser.runtime.precision == Precision::fp16) device += " fp16";
  if (options.analyser.runtime.cuda_graphs) device += " graphs";
  device += options.analyser.landmarker == FaceLandmarkerModel::mesh ? ", mesh" : ", attention mesh";
  if (options.analyser.tile_size < 0) device += ", no tiles";
  if (moving > 1) device += ", " + std::to_string(moving) + " moving frames";
  std::cout << "one face in a 1920x1080 frame (" << target_path << "), " << device
            << (options.enhancer.enabled ? ", with face enhancer " + options.enhancer.model : "") << ", p50/p90 ms\n"
            << std::fixed << std::setprecision(2) << "  detect + landmarks   " << analyse.p50 << " / " << analyse.p90
            << "\n  swap+mask+colour+blend " << compose.p50 << " / " << compose.p90 << "\n  total                "
            << analyse.p50 + compose.p50 << "\n  (apart) jpeg decode  " << decode.p50 << ", jpeg encode " << encode.p50
            << "\n";
  nlohmann::json op_counts;
  if (with_op_counts)
    op_counts = count_ops([&] { swapper.swap(frame, jobs); }, options.analyser.runtime.device != Device::cpu);
  nlohmann::json stage_times;
  if (with_stage_times) stage_times = time_stages([&] { swapper.swap(frame, jobs); }, iterations);
  if (json_path) {
    nlohmann::json j = {{"device", device},
                        {"analyse_ms", {analyse.p50, analyse.p90}},
                        {"swap_ms", {compose.p50, compose.p90}},
                        {"decode_ms", decode.p50},
                        {"encode_ms", encode.p50}};
    if (with_op_counts) j["ops"] = op_counts;
    if (with_stage_times) j["stage_ms"] = stage_times;
    std::string text = j.dump(2);
    write_file_atomically(*json_path, std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  }
  return 0;
}

}  // namespace visage::cli
