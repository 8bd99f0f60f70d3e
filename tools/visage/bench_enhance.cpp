// `visage bench enhance`: cost of the face enhancer (ms per face) and of the
// frame enhancer (ms per input megapixel), per model and device.
//
// Faces: the faces of a real photo (Debian's matplotlib portrait by default;
// --group adds a group photo), found once, then enhance_faces() timed alone.
// Frames: a real photo scaled to --frame-width pixels wide, enhanced whole
// (tiled as the library tiles it).
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <iomanip>
#include <iostream>

#include "cli.hpp"
#include "visage/enhance.hpp"
#include "visage/face.hpp"
#include "visage/image.hpp"

namespace visage::cli {

namespace {

at::Tensor resize_to_width(const at::Tensor& rgb, int64_t width) {
  int64_t height = std::max<int64_t>(1, std::llround(rgb.size(0) * static_cast<double>(width) / rgb.size(1)));
  return at::upsample_bilinear2d(rgb.permute({2, 0, 1}).unsqueeze(0).to(at::kFloat), {height, width}, false)
      .squeeze(0)
      .permute({1, 2, 0})
      .round()
      .clamp(0, 255)
      .to(at::kByte)
      .contiguous();
}

}  // namespace

const char* kBenchEnhanceUsage = R"(usage: visage bench enhance [options]

Times the face enhancer (ms per face: enhance_faces alone, the faces found
once) and the frame enhancer (ms per input megapixel: a photo scaled to
--frame-width pixels, enhanced whole, tiled) per ESRGAN model and device.

options:
  --device cpu|cuda|all  configurations to time (default cpu)
  --threads N            CPU threads (default 2)
  --iterations N         timed runs (default 5), after --warmup N (default 1)
  --image FILE           the photo (default Debian's matplotlib grace_hopper.jpg)
  --frame-width N        width the photo is scaled to for the frame enhancer (default 640)
  --model NAME           only this model (default all: esrgan-slim-x2, esrgan-slim-x4, esrgan-medium-x2, esrgan-medium-x4)
  --json FILE            also write the results as JSON
)";

int bench_enhance(Args& args) {
  if (args.flag("--help")) {
    std::cout << kBenchEnhanceUsage;
    return 0;
  }
  std::string device = args.value_or("--device", "cpu");
  int threads = args.int_or("--threads", 2);
  int iterations = args.int_or("--iterations", 5);
  int warmup = args.int_or("--warmup", 1);
  int frame_width = args.int_or("--frame-width", 640);
  auto json_path = args.value("--json");
  auto image_path = args.value("--image");
  std::vector<std::string> models = {"esrgan-slim-x2", "esrgan-slim-x4", "esrgan-medium-x2", "esrgan-medium-x4"};
  if (auto v = args.value("--model")) models = {*v};
  args.finish();
  for (const auto& m : models) parse_enhancer_model(m);
  if (iterations < 1 || warmup < 0 || frame_width < 16)
    throw Error(ErrorKind::bad_input, "--iterations >= 1, --warmup >= 0, --frame-width >= 16");
  set_cpu_threads(threads);

  struct Config {
    std::string name;
    RuntimeOptions runtime;
  };
  std::vector<Config> configs;
  if (device == "cpu" || device == "all") configs.push_back({"cpu", {}});
  if ((device == "cuda" || device == "all") && cuda_available()) {
    configs.push_back({"cuda-fp32", {.device = Device::cuda}});
    configs.push_back({"cuda-fp16", {.device = Device::cuda, .precision = Precision::fp16}});
  }
  if (configs.empty())
    throw Error(ErrorKind::bad_input, "--device " + device + ": nothing to run (cpu, cuda, all; CUDA needs a device)");

  std::filesystem::path photo_file =
      image_path ? std::filesystem::path(*image_path)
                 : std::filesystem::path("/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg");
  at::Tensor photo = read_image(photo_file).rgb;
  at::Tensor frame = resize_to_width(photo, frame_width);
  FaceAnalyser analyser({.landmarker = FaceLandmarkerModel::mesh, .embeddings = false, .attributes = false});
  std::vector<Face> faces = analyser.analyse(photo);
  if (faces.empty()) throw Error(ErrorKind::bad_input, photo_file.string() + ": no face to enhance");
  const double megapixels = frame.size(0) * frame.size(1) / 1e6;

  std::cout << "enhancers on " << photo_file.filename().string() << " (" << photo.size(1) << "x" << photo.size(0)
            << ", " << faces.size() << " face(s), face box " << std::lround(faces[0].box.width) << " px; frame "
            << frame.size(1) << "x" << frame.size(0) << "), " << threads << " CPU thread(s), median of " << iterations
            << "\n";
  std::cout << std::left << std::setw(12) << "config" << std::setw(20) << "model" << std::right << std::setw(14)
            << "face ms/face" << std::setw(14) << "frame ms" << std::setw(16) << "frame ms/MP"
            << "\n";
  nlohmann::json results = nlohmann::json::array();
  for (const auto& config : configs)
    for (const auto& model : models) {
      at::Tensor image = config.runtime.device == Device::cuda ? photo.to(at::kCUDA) : photo;
      at::Tensor frame_image = config.runtime.device == Device::cuda ? frame.to(at::kCUDA) : frame;
      FaceEnhancer face_enhancer({.model = model}, config.runtime);
      FrameEnhancer frame_enhancer({.model = model}, config.runtime);
      double face_ms =
          time_it(warmup, iterations, [&] { face_enhancer.enhance_faces(image, faces, 0.8f); }).p50 / faces.size();
      double frame_ms = time_it(warmup, iterations, [&] { frame_enhancer.enhance(frame_image); }).p50;
      std::cout << std::left << std::setw(12) << config.name << std::setw(20) << model << std::right << std::fixed
                << std::setprecision(1) << std::setw(14) << face_ms << std::setw(14) << frame_ms << std::setw(16)
                << frame_ms / megapixels << "\n";
      results.push_back({{"config", config.name},
                         {"model", model},
                         {"threads", threads},
                         {"photo", photo_file.filename().string()},
                         {"faces", faces.size()},
                         {"face_ms_per_face", face_ms},
                         {"frame_width", frame.size(1)},
                         {"frame_height", frame.size(0)},
                         {"frame_ms", frame_ms},
                         {"frame_ms_per_megapixel", frame_ms / megapixels}});
    }
  if (json_path) {
    std::string text = results.dump(2) + "\n";
    write_file_atomically(*json_path,
                          std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  }
  return 0;
}

}  // namespace visage::cli
