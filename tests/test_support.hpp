// Shared helpers for the Visage tests: where the npm models live, reading
// NumPy .npy files into tensors, and the comparisons the goldens use.
#pragma once

#include <ATen/core/Tensor.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <initializer_list>
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

// Debian's grace_hopper.jpg (python-matplotlib-data, which
// scripts/install_deps.sh installs).
inline const std::filesystem::path kGraceHopper = "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg";

// scikit-image's sample photos, relative to the npm directory:
// scripts/install_deps.sh unpacks python3-skimage into third_party/debian,
// beside third_party/npm.
inline const std::filesystem::path kSkimageInNpm = "../../debian/skimage";

// Where the registry's photos are for the npm directory `npm`. Paths only:
// each test checks the ones it reads (all_exist), so that a photo one test
// does not read never skips it.
struct RegistryPhotos {
  explicit RegistryPhotos(const std::filesystem::path& npm);
  std::filesystem::path astronaut;  // scikit-image: a frontal portrait
  std::filesystem::path chelsea;    // scikit-image: a cat
  std::filesystem::path grace_hopper = kGraceHopper;
  // face-api's demo/sample<index>.jpg.
  std::filesystem::path demo(int index) const;

 private:
  std::filesystem::path demo_dir_;
};

// The registry photos of npm_dir(); nullopt when that directory is absent.
std::optional<RegistryPhotos> registry_photos();

// Whether every one of `files` exists.
bool all_exist(std::initializer_list<std::filesystem::path> files);

// The best of `runs` wall-clock times of fn(), in milliseconds, for the
// timing tests' printouts (tests never assert a time).
template <typename F>
double best_time_ms(F&& fn, int runs = 5) {
  double best = 1e9;
  for (int i = 0; i < runs; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

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

// Ends the test (or a fixture's SetUp) whose registry photos or models are
// missing: FAILED when npm_required(), else SKIPPED.
#define VISAGE_SKIP_OR_FAIL_WITHOUT_PHOTOS()                                                                      \
  do {                                                                                                            \
    if (::visage::test::npm_required()) GTEST_FAIL() << "test photos or models missing (VISAGE_REQUIRE_NPM set)"; \
    GTEST_SKIP() << "test photos or models missing: run scripts/install_deps.sh";                                 \
  } while (false)

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
