// `visage swap` as a user runs it: a batch with a good photo, a cat, a
// truncated and an unsupported file; JSON summary; exit codes; outputs never
// over inputs and never partial.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "test_support.hpp"
#include "visage/image.hpp"

namespace {

namespace fs = std::filesystem;

using visage::test::read_text;

class CliSwap : public ::testing::Test {
 protected:
  void SetUp() override {
    auto npm = visage::test::npm_dir();
    source = npm ? *npm / "../../debian/skimage/astronaut.png" : fs::path();
    cat = npm ? *npm / "../../debian/skimage/chelsea.png" : fs::path();
    if (!npm || !fs::exists(source) || !fs::exists(cat) || !fs::exists(hopper)) {
      if (visage::test::npm_required()) GTEST_FAIL() << "test photos missing (VISAGE_REQUIRE_NPM set)";
      GTEST_SKIP() << "test photos missing: run scripts/install_deps.sh";
    }
    dir = fs::temp_directory_path() / ("visage-cli-swap-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir / "in");
  }
  void TearDown() override {
    if (!dir.empty()) fs::remove_all(dir);
  }
  fs::path source, cat, dir;
  const fs::path hopper = "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg";
};

TEST_F(CliSwap, BatchSwapsGoodFilesAndReportsTheOthers) {
  fs::copy_file(hopper, dir / "in/a_portrait.jpg");
  fs::copy_file(cat, dir / "in/b_cat.png");
  {
    std::string bytes = read_text(hopper);
    std::ofstream(dir / "in/c_truncated.jpg", std::ios::binary) << bytes.substr(0, bytes.size() / 3);
    std::ofstream(dir / "in/d_text.webp") << "not a WebP";
  }
  auto run = visage::test::run_cli(
      "swap -s " + source.string() + " -t " + (dir / "in").string() + " -o " + (dir / "out").string() + " --json",
      dir / "stderr.txt");
  EXPECT_EQ(run.exit_code, 1) << read_text(dir / "stderr.txt");
  auto results = nlohmann::json::parse(run.out);
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(results[0]["faces_swapped"], 1);
  EXPECT_EQ(results[1]["error"]["kind"], "bad_input");
  EXPECT_NE(results[1]["error"]["message"].get<std::string>().find("no face"), std::string::npos);
  EXPECT_EQ(results[2]["error"]["kind"], "bad_input");
  EXPECT_EQ(results[3]["error"]["kind"], "unsupported");
  // Only the good file has an output, of the input's size; no temporary files are left behind.
  std::vector<std::string> written;
  for (const auto& e : fs::directory_iterator(dir / "out")) written.push_back(e.path().filename().string());
  ASSERT_EQ(written.size(), 1u);
  EXPECT_EQ(written[0], "a_portrait.jpg");
  visage::Image out = visage::read_image(dir / "out/a_portrait.jpg");
  visage::Image in = visage::read_image(hopper);
  EXPECT_EQ(out.rgb.sizes(), in.rgb.sizes());
  EXPECT_FALSE(out.rgb.equal(in.rgb));
  EXPECT_NE(read_text(dir / "stderr.txt").find("3 of 4 target(s) failed"), std::string::npos);
}

TEST_F(CliSwap, SingleTargetToAFileInAnotherFormat) {
  auto run = visage::test::run_cli("swap -s " + source.string() + " -t " + hopper.string() + " -o " +
                                       (dir / "result.webp").string() + " --output-image-quality 80",
                                   dir / "stderr.txt");
  EXPECT_EQ(run.exit_code, 0) << read_text(dir / "stderr.txt");
  visage::Image out = visage::read_image(dir / "result.webp");
  EXPECT_EQ(out.format, visage::ImageFormat::webp);
}

TEST_F(CliSwap, NeverWritesOverAnInput) {
  fs::copy_file(hopper, dir / "in/portrait.jpg");
  auto before = fs::file_size(dir / "in/portrait.jpg");
  auto run = visage::test::run_cli("swap -s " + source.string() + " -t " + (dir / "in/portrait.jpg").string() + " -o " +
                                       (dir / "in/portrait.jpg").string(),
                                   dir / "stderr.txt");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(read_text(dir / "stderr.txt").find("refusing to overwrite an input"), std::string::npos);
  EXPECT_EQ(fs::file_size(dir / "in/portrait.jpg"), before);
}

TEST_F(CliSwap, BadOptionsAndMissingSourceFace) {
  const std::string base = "swap -s " + source.string() + " -t " + hopper.string() + " -o " + (dir / "o.jpg").string();
  EXPECT_EQ(visage::test::run_cli(base + " --blend smudge", dir / "e.txt").exit_code, 2);
  EXPECT_EQ(visage::test::run_cli(base + " --face-mask-types box,halo", dir / "e.txt").exit_code, 2);
  EXPECT_EQ(visage::test::run_cli(base + " --face-swapper-weight 3", dir / "e.txt").exit_code, 2);
  EXPECT_EQ(visage::test::run_cli(base + " --output-image-quality 0", dir / "e.txt").exit_code, 2);
  EXPECT_EQ(visage::test::run_cli("swap -t " + hopper.string() + " -o x.jpg", dir / "e.txt").exit_code, 2);
  auto run = visage::test::run_cli(
      "swap -s " + cat.string() + " -t " + hopper.string() + " -o " + (dir / "o.jpg").string(), dir / "e.txt");
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(read_text(dir / "e.txt").find("no face"), std::string::npos) << read_text(dir / "e.txt");
  EXPECT_FALSE(fs::exists(dir / "o.jpg"));
}

}  // namespace
