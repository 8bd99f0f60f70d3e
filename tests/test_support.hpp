// Shared helpers for the Visage tests: where the npm models live, reading
// NumPy .npy files into tensors, and the comparisons the goldens use.
#pragma once

#include <ATen/core/Tensor.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "visage/error.hpp"
#include "visage/video.hpp"

namespace visage::test {

// The repository root (VISAGE_SOURCE_DIR, set by tests/CMakeLists.txt).
std::filesystem::path source_dir();

// The npm packages' node_modules directory: $VISAGE_NPM_DIR when set, else
// <source>/third_party/npm/node_modules. nullopt when that directory is absent
// (scripts/install_deps.sh has not run); npm_dir_missing_reason() says why.
std::optional<std::filesystem::path> npm_dir();
std::string npm_dir_missing_reason();

// True when $VISAGE_REQUIRE_NPM is set to a non-empty value other than "0":
// `make test` sets it, so that a missing install fails instead of skipping.
bool npm_required();

// Reads a little-endian, C-order .npy file (float32, float64, uint8, int32 or
// int64) into a CPU tensor of the same type and shape. Throws
// std::runtime_error naming the file on anything else.
at::Tensor read_npy(const std::filesystem::path& file);

// max|ours - ref| / max|ref| over all elements (both converted to float64).
double max_relative_error(const at::Tensor& ours, const at::Tensor& ref);

// Cosine similarity of the two tensors flattened (float64).
double cosine_similarity(const at::Tensor& a, const at::Tensor& b);

// Runs the visage program (VISAGE_CLI_PATH) with `arguments` (a shell
// command line fragment), stderr to `stderr_file`; returns the exit code
// (-1 when it did not exit normally) and stdout.
struct CliRun {
  int exit_code = -1;
  std::string out;
};
CliRun run_cli(const std::string& arguments, const std::filesystem::path& stderr_file);

// A whole file, bytes as they are, as a string ("" when it cannot be opened).
std::string read_text(const std::filesystem::path& file);

// Every frame of a video, in order.
std::vector<VideoFrame> read_video_frames(const std::string& path, const VideoReaderOptions& options = {});

// The visage::Error that `f` throws; a test failure (and an internal error
// returned in its place) when it throws none.
template <typename F>
Error expect_error(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no visage::Error thrown";
  return Error(ErrorKind::internal, "(none)");
}

}  // namespace visage::test

// Declares `const std::filesystem::path var` holding the npm directory, or ends
// the test: SKIPPED with the reason, or FAILED when npm_required().
#define VISAGE_REQUIRE_NPM_DIR(var)                                                            \
  const auto var##_found = ::visage::test::npm_dir();                                          \
  if (!var##_found) {                                                                          \
    if (::visage::test::npm_required()) {                                                      \
      GTEST_FAIL() << ::visage::test::npm_dir_missing_reason() << " (VISAGE_REQUIRE_NPM set)"; \
    }                                                                                          \
    GTEST_SKIP() << ::visage::test::npm_dir_missing_reason();                                  \
  }                                                                                            \
  const std::filesystem::path var = *var##_found

// Declares `const std::filesystem::path var` for a file inside the npm
// directory, skipping (or failing, as above) when the npm directory is absent.
// A missing file inside an installed npm directory always fails: the install
// is broken.
#define VISAGE_REQUIRE_NPM_FILE(var, relative)                                                                   \
  VISAGE_REQUIRE_NPM_DIR(var##_npm_dir);                                                                         \
  const std::filesystem::path var = var##_npm_dir / (relative);                                                  \
  if (!std::filesystem::exists(var)) {                                                                           \
    GTEST_FAIL() << var << " is missing although " << var##_npm_dir << " exists: rerun scripts/install_deps.sh"; \
  }                                                                                                              \
  static_assert(true, "")
