#include "runtime/loaders/loaders.hpp"
#include "visage/error.hpp"

namespace visage::rt {
Graph load_tfjs_graph(const std::filesystem::path& path) { throw Error(ErrorKind::unsupported, path.string() + ": TF.js loader not built yet"); }
Graph load_tfjs_layers(const std::filesystem::path& path) { throw Error(ErrorKind::unsupported, path.string() + ": TF.js layers loader not built yet"); }
}  // namespace visage::rt
