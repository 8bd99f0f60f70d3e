#include "test_support.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <vector>

#include <sys/wait.h>

namespace visage::test {
namespace {

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

std::filesystem::path candidate_npm_dir() {
  std::string from_env = env("VISAGE_NPM_DIR");
  if (!from_env.empty()) return from_env;
  return source_dir() / "third_party" / "npm" / "node_modules";
}

[[noreturn]] void npy_error(const std::filesystem::path& file, const std::string& why) {
  throw std::runtime_error(file.string() + ": " + why);
}

}  // namespace

std::filesystem::path source_dir() {
#ifdef VISAGE_SOURCE_DIR
  return VISAGE_SOURCE_DIR;
#else
  return std::filesystem::current_path();
#endif
}

std::optional<std::filesystem::path> npm_dir() {
  auto dir = candidate_npm_dir();
  if (std::filesystem::is_directory(dir)) return dir;
  return std::nullopt;
}

std::string npm_dir_missing_reason() {
  return "npm models not installed: " + candidate_npm_dir().string() +
         " is missing (run scripts/install_deps.sh or set VISAGE_NPM_DIR)";
}

bool npm_required() {
  std::string value = env("VISAGE_REQUIRE_NPM");
  return !value.empty() && value != "0";
}

RegistryPhotos::RegistryPhotos(const std::filesystem::path& npm)
    : astronaut(npm / kSkimageInNpm / "astronaut.png"),
      chelsea(npm / kSkimageInNpm / "chelsea.png"),
      demo_dir_(npm / "@vladmandic/face-api/demo") {}

std::filesystem::path RegistryPhotos::demo(int index) const {
  return demo_dir_ / ("sample" + std::to_string(index) + ".jpg");
}

std::optional<RegistryPhotos> registry_photos() {
  const auto npm = npm_dir();
  if (!npm) return std::nullopt;
  return RegistryPhotos(*npm);
}

bool all_exist(std::initializer_list<std::filesystem::path> files) {
  return std::all_of(files.begin(), files.end(), [](const auto& f) { return std::filesystem::exists(f); });
}

at::Tensor read_npy(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) npy_error(file, "cannot open");
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0) npy_error(file, "not a .npy file");
  const int major = static_cast<unsigned char>(magic[6]);
  uint32_t header_len = 0;
  if (major == 1) {
    unsigned char len[2];
    if (!in.read(reinterpret_cast<char*>(len), 2)) npy_error(file, "truncated header");
    header_len = len[0] | (len[1] << 8);
  } else if (major == 2 || major == 3) {
    unsigned char len[4];
    if (!in.read(reinterpret_cast<char*>(len), 4)) npy_error(file, "truncated header");
    header_len = len[0] | (len[1] << 8) | (len[2] << 16) | (static_cast<uint32_t>(len[3]) << 24);
  } else {
    npy_error(file, "unsupported .npy version " + std::to_string(major));
  }
  std::string header(header_len, '\0');
  if (!in.read(header.data(), header_len)) npy_error(file, "truncated header");

  std::smatch m;
  if (!std::regex_search(header, m, std::regex("'descr':\\s*'([^']*)'"))) npy_error(file, "header has no descr");
  const std::string descr = m[1];
  if (std::regex_search(header, std::regex("'fortran_order':\\s*True"))) npy_error(file, "Fortran order unsupported");
  if (!std::regex_search(header, m, std::regex("'shape':\\s*\\(([^)]*)\\)"))) npy_error(file, "header has no shape");
  std::vector<int64_t> shape;
  std::stringstream dims(m[1].str());
  for (std::string dim; std::getline(dims, dim, ',');) {
    if (dim.find_first_not_of(" \t") == std::string::npos) continue;
    shape.push_back(std::stoll(dim));
  }

  at::ScalarType type;
  if (descr == "<f4") {
    type = at::kFloat;
  } else if (descr == "<f8") {
    type = at::kDouble;
  } else if (descr == "|u1" || descr == "<u1") {
    type = at::kByte;
  } else if (descr == "<i4") {
    type = at::kInt;
  } else if (descr == "<i8") {
    type = at::kLong;
  } else {
    npy_error(file, "unsupported dtype '" + descr + "' (want <f4, <f8, |u1, <i4 or <i8)");
  }
  at::Tensor tensor = at::empty(shape, at::TensorOptions().dtype(type));
  const auto bytes = static_cast<std::streamsize>(tensor.nbytes());
  if (!in.read(static_cast<char*>(tensor.data_ptr()), bytes)) npy_error(file, "truncated data");
  return tensor;
}

double max_relative_error(const at::Tensor& ours, const at::Tensor& ref) {
  at::Tensor a = ours.detach().to(at::kCPU).to(at::kDouble).reshape({-1});
  at::Tensor b = ref.detach().to(at::kCPU).to(at::kDouble).reshape({-1});
  if (a.numel() != b.numel()) throw std::invalid_argument("max_relative_error: element counts differ");
  const double scale = b.abs().max().item<double>();
  const double diff = (a - b).abs().max().item<double>();
  if (scale == 0) return diff == 0 ? 0 : INFINITY;
  return diff / scale;
}

double cosine_similarity(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor x = a.detach().to(at::kCPU).to(at::kDouble).reshape({-1});
  at::Tensor y = b.detach().to(at::kCPU).to(at::kDouble).reshape({-1});
  if (x.numel() != y.numel()) throw std::invalid_argument("cosine_similarity: element counts differ");
  const double norms = x.norm().item<double>() * y.norm().item<double>();
  if (norms == 0) return 0;
  return x.dot(y).item<double>() / norms;
}

CliRun run_cli(const std::string& arguments, const std::filesystem::path& stderr_file) {
  std::string command = std::string(VISAGE_CLI_PATH) + " " + arguments + " 2>" + stderr_file.string();
  CliRun run;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return run;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) run.out.append(buffer, n);
  int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

std::string read_text(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<VideoFrame> read_video_frames(const std::string& path, const VideoReaderOptions& options) {
  VideoReader reader(path, options);
  std::vector<VideoFrame> frames;
  while (auto frame = reader.read()) frames.push_back(std::move(*frame));
  return frames;
}

}  // namespace visage::test
