// `visage analyse` as a user runs it: a batch with good, corrupt and missing
// files, JSON output, debug images, exit codes.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>

#include "test_support.hpp"

namespace {

namespace fs = std::filesystem;

visage::test::CliRun run_cli(const std::string& arguments, const fs::path& dir) {
  return visage::test::run_cli(arguments, dir / "stderr.txt");
}

TEST(CliAnalyse, BatchReportsFailuresAndKeepsGoing) {
  VISAGE_REQUIRE_NPM_FILE(photo, "@vladmandic/face-api/demo/sample1.jpg");
  fs::path dir = fs::temp_directory_path() / ("visage-cli-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "in");
  fs::copy_file(photo, dir / "in/a_group.jpg");
  {
    std::string bytes = visage::test::read_text(photo);
    std::ofstream(dir / "in/b_truncated.jpg", std::ios::binary) << bytes.substr(0, bytes.size() / 3);
    std::ofstream(dir / "in/c_not_an_image.png") << "this is text, not a PNG";
  }
  auto run = run_cli("analyse " + (dir / "in").string() + " " + (dir / "missing.jpg").string() +
                         " --json --no-attributes --debug-out " + (dir / "debug").string(),
                     dir);
  EXPECT_EQ(run.exit_code, 1);  // some files failed
  auto results = nlohmann::json::parse(run.out);
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(results[0]["faces"].size(), 3u);
  EXPECT_EQ(results[0]["faces"][0]["mesh"].size(), 478u);
  EXPECT_EQ(results[0]["faces"][0]["landmarks_68"].size(), 68u);
  EXPECT_EQ(results[1]["error"]["kind"], "bad_input");
  EXPECT_EQ(results[2]["error"]["kind"], "unsupported");
  EXPECT_EQ(results[3]["error"]["kind"], "io");
  EXPECT_TRUE(fs::exists(dir / "debug/a_group.debug.png"));
  EXPECT_FALSE(fs::exists(dir / "debug/b_truncated.debug.png"));
  std::string err = visage::test::read_text(dir / "stderr.txt");
  EXPECT_NE(err.find("3 of 4 image(s) failed"), std::string::npos) << err;
  // Inputs are untouched.
  EXPECT_EQ(fs::file_size(dir / "in/a_group.jpg"), fs::file_size(photo));
  fs::remove_all(dir);
}

TEST(CliAnalyse, BadOptionsExitWithUsageError) {
  fs::path dir = fs::temp_directory_path();
  EXPECT_EQ(run_cli("analyse x.jpg --order sideways", dir).exit_code, 2);
  EXPECT_EQ(run_cli("analyse x.jpg --no-such-option", dir).exit_code, 2);
  EXPECT_EQ(run_cli("analyse x.jpg --detector-angles 0,45", dir).exit_code, 2);
  EXPECT_EQ(run_cli("analyse --selector-mode reference x.jpg", dir).exit_code, 2);
}

}  // namespace
