#include <cstdlib>
#include <filesystem>

#include "visage/runtime.hpp"

namespace visage {

std::filesystem::path model_package_dir() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("VISAGE_NPM_DIR"); env && *env) return fs::path(env);
  std::error_code ec;
  std::vector<fs::path> candidates;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    candidates.push_back(exe.parent_path().parent_path() / "third_party/npm/node_modules");
    candidates.push_back(exe.parent_path().parent_path().parent_path() / "third_party/npm/node_modules");
  }
  candidates.push_back(fs::current_path(ec) / "third_party/npm/node_modules");
  for (const auto& candidate : candidates)
    if (fs::is_directory(candidate, ec)) return fs::canonical(candidate, ec);
  return {};
}

}  // namespace visage
