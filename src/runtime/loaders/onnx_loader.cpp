#include "runtime/loaders/loaders.hpp"
#include "visage/error.hpp"

namespace visage::rt {
Graph load_onnx(const std::filesystem::path& path) { throw Error(ErrorKind::unsupported, path.string() + ": ONNX loader not built yet"); }
}  // namespace visage::rt
