#include <fstream>
#include <string>

#include "runtime/loaders/loaders.hpp"
#include "visage/error.hpp"

namespace visage::rt {

Graph load_any(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error(ErrorKind::model, path.string() + ": no such model file");
  if (path.extension() == ".onnx") return load_onnx(path);
  if (path.extension() == ".json") {
    // Both TF.js formats are model.json; the layers-model names its format.
    std::ifstream in(path);
    std::string head(4096, '\0');
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<size_t>(in.gcount()));
    if (head.find("\"layers-model\"") != std::string::npos || head.find("\"model_config\"") != std::string::npos ||
        head.find("\"class_name\"") != std::string::npos)
      return load_tfjs_layers(path);
    return load_tfjs_graph(path);
  }
  throw Error(ErrorKind::unsupported, path.string() + ": unknown model format (expected .onnx or a TF.js model.json)");
}

}  // namespace visage::rt
