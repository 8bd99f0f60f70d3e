// Shared pieces of the visage command-line tool.
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "visage/error.hpp"
#include "visage/pipeline.hpp"
#include "visage/runtime.hpp"
#include "visage/swap.hpp"

namespace visage::cli {

// Minimal argument reader: `--name value`, `--flag`, and positionals.
class Args {
 public:
  Args(int argc, char** argv, int first);

  bool flag(const std::string& name);
  std::optional<std::string> value(const std::string& name);
  // Every occurrence of a repeatable option (and of its short alias, e.g. -s).
  std::vector<std::string> values(const std::string& name, const std::string& alias = "");
  std::string value_or(const std::string& name, const std::string& fallback);
  int int_or(const std::string& name, int fallback);
  const std::vector<std::string>& positionals() const { return positionals_; }
  // Throws visage::Error{bad_input} naming any option nobody asked for.
  void finish() const;

 private:
  std::vector<std::string> tokens_;
  std::vector<bool> used_;
  std::vector<std::string> positionals_;
};

// Files named on the command line, directories expanded to the images they
// hold (sorted, not recursive).
std::vector<std::filesystem::path> expand_inputs(const std::vector<std::string>& names);
bool is_image_name(const std::filesystem::path& path);
std::vector<int> parse_int_list(const std::string& text, const std::string& option);
// The items of a `sep`-separated list, empty items left out.
std::vector<std::string> split_list(const std::string& text, char sep = ',');
// --face-mask-types box,region,occlusion: the listed types on, the others off.
void parse_face_mask_types(const std::string& text, FaceMaskOptions& mask);
float parse_float(const std::string& text, const std::string& option);
// A number within 0..1 (weights).
float parse_unit_float(const std::string& text, const std::string& option);
// --device cpu|cuda, --fp16, --cuda-graphs, --threads N (sets the CPU thread count).
RuntimeOptions parse_runtime_options(Args& args);
// "IMAGE[:N]": the image path and the face index (0 when not given).
std::pair<std::string, size_t> parse_face_reference(const std::string& text);
// Stable identifiers for JSON error objects (to_string is for people).
const char* error_id(ErrorKind kind);

// Scales and centres an image into a black w x h frame (letterbox).
at::Tensor fit_into(const at::Tensor& rgb, int64_t w, int64_t h);
// The face whose box centre is nearest `box`'s (within a box width); nullptr if none.
const Face* nearest_face(const std::vector<Face>& faces, const Box& box);
struct Timing {
  double p50 = 0, p90 = 0;
};
// Runs `run` warmup times, then times `iterations` runs (CUDA synchronised).
Timing time_it(int warmup, int iterations, const std::function<void()>& run);

int bench_runtime(Args& args);
int inspect_model(Args& args);
int analyse_images(Args& args);
int bench_landmarks(Args& args);
int bench_analyse(Args& args);
int enhance_images(Args& args);
int bench_enhance(Args& args);
int bench_mesh_canonical(Args& args);
// The swap options shared by `swap` (images, videos) and `stream`.
struct SwapCommand {
  SwapOptions options;
  FaceSelector selector;
  std::optional<std::string> reference;  // --reference-face IMAGE[:N]
  std::vector<std::string> sources;      // -s
  std::vector<std::string> maps;         // --map REF[:N]=SOURCE
};
SwapCommand parse_swap_command(Args& args);

struct Mapping {
  std::vector<float> reference;
  SourceFace source;
};
// The swapper with its sources loaded and the references resolved.
struct PreparedSwap {
  FaceSwapper swapper;
  std::optional<SourceFace> source;
  std::vector<Mapping> mappings;
  FaceSelector selector;
};
PreparedSwap prepare_swap(const SwapCommand& command);

// Video options of `swap` and `stream`: trimming, decoding, encoding, tracking, progress.
enum class ProgressStyle { automatic, bar, json, none };
struct VideoCommand {
  VideoSwapOptions options;
  ProgressStyle progress = ProgressStyle::automatic;
};
VideoCommand parse_video_command(Args& args);
int swap_video_target(PreparedSwap& prepared, const std::string& input, const std::string& output,
                      const VideoCommand& video, bool json);

const char* video_options_usage();

int swap_images(Args& args);
int stream_video(Args& args);
int bench_video(Args& args);
int bench_swap(Args& args);
int bench_swap_quality(Args& args);
int bench_swap_cases(Args& args);

}  // namespace visage::cli
