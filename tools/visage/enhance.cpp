// `visage enhance`: sharper faces (face enhancer) and bigger images (frame enhancer).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <optional>
#include <set>

#include "cli.hpp"
#include "visage/enhance.hpp"
#include "visage/face.hpp"
#include "visage/image.hpp"

namespace visage::cli {

namespace {

namespace fs = std::filesystem;

const char* kEnhanceUsage = R"(usage: visage enhance IMAGE|DIR... -o OUTPUT [options]

Re-synthesises the detail of the faces in each image (ESRGAN on an aligned
crop of each face, blended back through a feathered face mask; nothing
outside the faces changes) and/or super-resolves the whole image x2 or x4.
Without --face-enhancer or --frame-enhancer, the faces are enhanced with
esrgan-slim-x4.

OUTPUT is an image file when there is one input (its extension picks the
format), else a directory (created when missing) where each result keeps its
input's file name. Files are written atomically; inputs are never overwritten.

options:
  -o, --output PATH            output file or directory (required)
  --face-enhancer MODEL        esrgan-slim-x2, esrgan-slim-x4, esrgan-medium-x2, esrgan-medium-x4, or none
  --face-enhancer-weight W     0..1, how much of the enhanced face is blended in (default 0.8)
  --frame-enhancer MODEL       also upscale the whole image with this model (after the faces)
  --frame-tile-size N          frame enhancer tile side in input pixels (default 192)
  --detector NAME              face detector: blazeface (default), blazeface-front, ultraface
  --device cpu|cuda            where the networks run (default cpu)
  --fp16                       half precision (CUDA)
  --output-image-quality N     JPEG/WebP quality 1..100 (default 92; WebP 100 = lossless)
  --threads N                  CPU threads (default: all cores)
)";

}  // namespace

int enhance_images(Args& args) {
  if (args.flag("--help")) {
    std::cout << kEnhanceUsage;
    return 0;
  }
  auto output = args.value("-o");
  if (auto v = args.value("--output")) output = v;
  auto face_model = args.value("--face-enhancer");
  auto frame_model = args.value("--frame-enhancer");
  FaceEnhancerOptions face_options;
  if (auto v = args.value("--face-enhancer-weight"))
    face_options.weight = parse_unit_float(*v, "--face-enhancer-weight");
  FrameEnhancerOptions frame_options;
  frame_options.tile_size = args.int_or("--frame-tile-size", frame_options.tile_size);
  FaceAnalyserOptions analyser_options;
  analyser_options.landmarker = FaceLandmarkerModel::mesh;  // the mask needs the outline, not the irises
  analyser_options.embeddings = false;
  analyser_options.attributes = false;
  if (auto v = args.value("--detector")) analyser_options.detector = parse_face_detector(*v);
  RuntimeOptions runtime = parse_runtime_options(args);
  analyser_options.runtime = runtime;
  ImageWriteOptions write_options;
  write_options.quality = args.int_or("--output-image-quality", write_options.quality);
  if (write_options.quality < 1 || write_options.quality > 100)
    throw Error(ErrorKind::bad_input,
                "--output-image-quality must be in 1..100, got " + std::to_string(write_options.quality));
  args.finish();

  const std::vector<std::string>& names = args.positionals();
  if (names.empty() || !output) {
    std::cerr << kEnhanceUsage;
    return 2;
  }
  bool enhance_faces = !frame_model || face_model;
  if (face_model && *face_model == "none") enhance_faces = false;
  if (enhance_faces && face_model) face_options.model = *face_model;
  if (enhance_faces) parse_enhancer_model(face_options.model);  // bad names exit 2 before any work
  if (frame_model) {
    frame_options.model = *frame_model;
    parse_enhancer_model(frame_options.model);
  }
  if (!enhance_faces && !frame_model)
    throw Error(ErrorKind::bad_input, "--face-enhancer none without --frame-enhancer leaves nothing to do");

  std::vector<fs::path> inputs = expand_inputs(names);
  const fs::path out_path(*output);
  std::error_code ec;
  const bool to_directory = fs::is_directory(out_path, ec) || output->back() == '/' || !out_path.has_extension() ||
                            names.size() > 1 || fs::is_directory(fs::path(names[0]), ec);
  if (!to_directory) {
    try {
      image_format_from_path(out_path);
    } catch (const Error& e) {
      throw Error(ErrorKind::bad_input, std::string("-o ") + *output + ": " + e.what());
    }
  } else if (out_path.has_extension() && !fs::is_directory(out_path, ec) && is_image_name(out_path)) {
    throw Error(ErrorKind::bad_input,
                "-o " + *output + " names one image, but there are several inputs: give a directory");
  }

  std::optional<FaceAnalyser> analyser;
  std::optional<FaceEnhancer> face_enhancer;
  std::optional<FrameEnhancer> frame_enhancer;
  if (enhance_faces) {
    analyser.emplace(analyser_options);
    face_enhancer.emplace(face_options, runtime);
  }
  if (frame_model) frame_enhancer.emplace(frame_options, runtime);
  if (to_directory) fs::create_directories(out_path);

  int failed = 0;
  std::set<fs::path> written;
  for (const auto& file : inputs) {
    try {
      fs::path target = to_directory ? out_path / file.filename() : out_path;
      if (fs::equivalent(target, file, ec))
        throw Error(ErrorKind::bad_input, target.string() + ": refusing to overwrite an input");
      if (!written.insert(fs::absolute(target).lexically_normal()).second)
        throw Error(ErrorKind::bad_input, target.string() + ": another input of the same name was written there");
      Image image = read_image(file);
      at::Tensor rgb = image.rgb;
      size_t face_count = 0;
      if (face_enhancer) {
        at::Tensor on_device = runtime.device == Device::cuda ? rgb.to(at::kCUDA) : rgb;
        std::vector<Face> faces = analyser->analyse(on_device);
        face_count = faces.size();
        rgb = face_enhancer->enhance_faces(on_device, faces);
      }
      if (frame_enhancer) rgb = frame_enhancer->enhance(rgb);
      write_image(target, rgb, write_options);
      std::cout << file.string() << " -> " << target.string() << ": ";
      if (face_enhancer) std::cout << face_count << " face(s) enhanced" << (frame_enhancer ? ", " : "");
      if (frame_enhancer) std::cout << "upscaled x" << frame_enhancer->scale();
      std::cout << " (" << rgb.size(1) << "x" << rgb.size(0) << ")\n";
    } catch (const Error& e) {
      ++failed;
      std::cerr << "visage: " << file.string() << ": " << to_string(e.kind()) << ": " << e.what() << "\n";
    }
  }
  if (failed) std::cerr << "visage: " << failed << " of " << inputs.size() << " image(s) failed\n";
  return failed ? 1 : 0;
}

}  // namespace visage::cli
