// Every command answers --help with its usage on stdout and exit code 0 (the
// top-level usage promises it), without loading a model or reading a file.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <string>

#include "test_support.hpp"

namespace {

TEST(CliHelp, EveryCommandPrintsItsUsage) {
  const std::filesystem::path stderr_file =
      std::filesystem::temp_directory_path() / ("visage-cli-help-" + std::to_string(::getpid()) + ".txt");
  const char* commands[] = {"swap",
                            "stream",
                            "analyse",
                            "enhance",
                            "inspect",
                            "bench runtime",
                            "bench analyse",
                            "bench landmarks",
                            "bench enhance",
                            "bench swap",
                            "bench swap-quality",
                            "bench swap-cases",
                            "bench video",
                            "bench mesh-canonical"};
  for (const std::string command : commands) {
    auto run = visage::test::run_cli(command + " --help", stderr_file);
    EXPECT_EQ(run.exit_code, 0) << command << ": " << visage::test::read_text(stderr_file);
    EXPECT_EQ(run.out.rfind("usage: visage " + command, 0), 0u) << command << " printed: " << run.out.substr(0, 200);
  }
  std::filesystem::remove(stderr_file);
}

}  // namespace
