#include "enhance/models.hpp"

#include <array>

namespace visage {

namespace {

struct ModelName {
  EnhancerModel model;
  std::string_view name;
  int scale;
  std::string_view file;
};

constexpr std::array<ModelName, 4> kModels = {{
    {EnhancerModel::esrgan_slim_x2, "esrgan-slim-x2", 2, "@upscalerjs/esrgan-slim/models/x2/model.json"},
    {EnhancerModel::esrgan_slim_x4, "esrgan-slim-x4", 4, "@upscalerjs/esrgan-slim/models/x4/model.json"},
    {EnhancerModel::esrgan_medium_x2, "esrgan-medium-x2", 2, "@upscalerjs/esrgan-medium/models/x2/model.json"},
    {EnhancerModel::esrgan_medium_x4, "esrgan-medium-x4", 4, "@upscalerjs/esrgan-medium/models/x4/model.json"},
}};

const ModelName& entry(EnhancerModel model) {
  for (const auto& m : kModels)
    if (m.model == model) return m;
  return kModels[0];
}

}  // namespace

EnhancerModel parse_enhancer_model(const std::string& text) {
  for (const auto& m : kModels)
    if (text == m.name) return m.model;
  std::string accepted;
  for (const auto& m : kModels) accepted += (accepted.empty() ? "" : ", ") + std::string(m.name);
  throw Error(ErrorKind::bad_input, "unknown enhancer model '" + text + "' (accepted: " + accepted + ")");
}

std::string_view to_string(EnhancerModel model) noexcept { return entry(model).name; }

int enhancer_scale(EnhancerModel model) noexcept { return entry(model).scale; }

std::filesystem::path enhancer_model_file(EnhancerModel model) { return std::filesystem::path(entry(model).file); }

namespace enhance {

std::shared_ptr<const Model> load_enhancer_model(EnhancerModel model, const RuntimeOptions& runtime) {
  if (runtime.device == Device::cuda && !cuda_available())
    throw Error(ErrorKind::resource, std::string(to_string(model)) +
                                         ": CUDA asked for, but this build has no CUDA "
                                         "or no device is visible");
  std::filesystem::path dir = model_package_dir();
  if (dir.empty())
    throw Error(ErrorKind::model,
                "model packages not found: run scripts/install_deps.sh (or `make deps`), or set VISAGE_NPM_DIR to "
                "the directory holding @upscalerjs/esrgan-slim");
  std::filesystem::path path = dir / enhancer_model_file(model);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error(ErrorKind::model, path.string() + ": model file missing (run scripts/install_deps.sh)");
  return Model::load(path, runtime);
}

}  // namespace enhance

}  // namespace visage
