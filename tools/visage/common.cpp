// Pieces shared by the visage commands: input lists, number parsing, runtime
// options, error identifiers.
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>

#include "cli.hpp"
#include "visage/face.hpp"
#include "visage/image.hpp"

namespace visage::cli {

bool is_image_name(const std::filesystem::path& p) {
  try {
    image_format_from_path(p);
    return true;
  } catch (const Error&) {
    return false;
  }
}

// Files named on the command line, with directories expanded to the images
// they hold (sorted, not recursive).
std::vector<std::filesystem::path> expand_inputs(const std::vector<std::string>& names) {
  std::vector<std::filesystem::path> files;
  for (const auto& name : names) {
    std::filesystem::path p(name);
    std::error_code ec;
    if (std::filesystem::is_directory(p, ec)) {
      std::vector<std::filesystem::path> inside;
      for (const auto& entry : std::filesystem::directory_iterator(p, ec))
        if (entry.is_regular_file() && is_image_name(entry.path())) inside.push_back(entry.path());
      std::sort(inside.begin(), inside.end());
      files.insert(files.end(), inside.begin(), inside.end());
    } else {
      files.push_back(p);
    }
  }
  return files;
}

std::vector<int> parse_int_list(const std::string& text, const std::string& option) {
  std::vector<int> values;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      size_t used = 0;
      values.push_back(std::stoi(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw Error(ErrorKind::bad_input, option + " needs a comma-separated list of whole numbers, got '" + text + "'");
    }
  }
  return values;
}

float parse_float(const std::string& text, const std::string& option) {
  try {
    size_t used = 0;
    float v = std::stof(text, &used);
    if (used != text.size() || !std::isfinite(v)) throw std::invalid_argument(text);
    return v;
  } catch (const std::exception&) {
    throw Error(ErrorKind::bad_input, option + " needs a number, got '" + text + "'");
  }
}

// Stable identifiers for the JSON error objects (to_string is for people).
const char* error_id(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::bad_input: return "bad_input";
    case ErrorKind::unsupported: return "unsupported";
    case ErrorKind::model: return "model";
    case ErrorKind::io: return "io";
    case ErrorKind::resource: return "resource";
    case ErrorKind::internal: return "internal";
  }
  return "internal";
}

float parse_unit_float(const std::string& text, const std::string& option) {
  try {
    size_t used = 0;
    float v = std::stof(text, &used);
    if (used != text.size() || !(v >= 0.f && v <= 1.f)) throw std::invalid_argument(text);
    return v;
  } catch (const std::exception&) {
    throw Error(ErrorKind::bad_input, option + " needs a number in 0..1, got '" + text + "'");
  }
}

RuntimeOptions parse_runtime_options(Args& args) {
  RuntimeOptions runtime;
  std::string device = args.value_or("--device", "cpu");
  if (device == "cuda") {
    runtime.device = Device::cuda;
    if (!cuda_available()) throw Error(ErrorKind::resource, "--device cuda: no CUDA device (or a CPU-only build)");
  } else if (device != "cpu") {
    throw Error(ErrorKind::bad_input, "--device must be cpu or cuda, got '" + device + "'");
  }
  if (args.flag("--fp16")) runtime.precision = Precision::fp16;
  if (args.flag("--cuda-graphs")) runtime.cuda_graphs = true;
  if (auto v = args.value("--threads")) {
    std::vector<int> threads = parse_int_list(*v, "--threads");
    if (threads.size() != 1 || threads[0] < 1)
      throw Error(ErrorKind::bad_input, "--threads needs a positive whole number, got '" + *v + "'");
    set_cpu_threads(threads[0]);
  }
  return runtime;
}

std::pair<std::string, size_t> parse_face_reference(const std::string& text) {
  std::string path = text;
  size_t index = 0;
  if (auto colon = path.rfind(':'); colon != std::string::npos && colon + 1 < path.size() &&
                                    std::all_of(path.begin() + colon + 1, path.end(), ::isdigit)) {
    index = std::stoul(path.substr(colon + 1));
    path = path.substr(0, colon);
  }
  return {path, index};
}

// Scales and centres an image into a black w x h frame (letterbox).
at::Tensor fit_into(const at::Tensor& rgb, int64_t w, int64_t h) {
  double s = std::min(static_cast<double>(w) / rgb.size(1), static_cast<double>(h) / rgb.size(0));
  int64_t nw = std::max<int64_t>(1, std::llround(rgb.size(1) * s)),
          nh = std::max<int64_t>(1, std::llround(rgb.size(0) * s));
  at::Tensor scaled = at::upsample_bilinear2d(rgb.permute({2, 0, 1}).unsqueeze(0).to(at::kFloat), {nh, nw}, false)
                          .squeeze(0)
                          .permute({1, 2, 0})
                          .round()
                          .clamp(0, 255)
                          .to(at::kByte);
  at::Tensor frame = at::zeros({h, w, 3}, at::kByte);
  frame.slice(0, (h - nh) / 2, (h - nh) / 2 + nh).slice(1, (w - nw) / 2, (w - nw) / 2 + nw).copy_(scaled);
  return frame;
}

Timing time_it(int warmup, int iterations, const std::function<void()>& run) {
  for (int i = 0; i < warmup; ++i) run();
  cuda_synchronize();  // warm-up work still queued must not count against the first timed run
  std::vector<double> ms;
  for (int i = 0; i < iterations; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    run();
    cuda_synchronize();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms[std::min(ms.size() - 1, ms.size() * 9 / 10)]};
}

std::vector<std::string> split_list(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, sep))
    if (!item.empty()) out.push_back(item);
  return out;
}

void parse_face_mask_types(const std::string& text, FaceMaskOptions& mask) {
  mask.box = mask.region = mask.occlusion = false;
  for (const auto& type : split_list(text)) {
    if (type == "box")
      mask.box = true;
    else if (type == "region")
      mask.region = true;
    else if (type == "occlusion")
      mask.occlusion = true;
    else
      throw Error(ErrorKind::bad_input, "unknown face mask type '" + type + "' (box, region, occlusion)");
  }
}

const Face* nearest_face(const std::vector<Face>& faces, const Box& box) {
  const Face* best = nullptr;
  float best_d = box.width;
  for (const auto& f : faces) {
    float d = std::hypot(f.box.centre().x - box.centre().x, f.box.centre().y - box.centre().y);
    if (d < best_d) best_d = d, best = &f;
  }
  return best;
}

}  // namespace visage::cli
