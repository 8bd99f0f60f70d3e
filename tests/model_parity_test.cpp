// Model goldens: every real model the runtime must run, fed a real photo, and
// compared with what the reference runtime (@tensorflow/tfjs for TF.js models,
// onnxruntime-node for ONNX) produced for the same input. The goldens are made
// by scripts/make_goldens.mjs; each tests/goldens/<id>/meta.json names the
// model, the input layout and normalisation, and how to compare each output.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_support.hpp"
#include "visage/runtime.hpp"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Where and how a golden is run. CUDA cases report SKIPPED without a GPU;
// scripts/gpu_check.sh runs them on one.
enum class Config { cpu_optimized, cpu_as_written, cuda_fp32, cuda_fp16, cuda_fp16_graphs };

struct ParityCase {
  std::string id;
  Config config;
  bool optimize() const { return config != Config::cpu_as_written; }
  bool cuda() const { return config >= Config::cuda_fp32; }
  bool fp16() const { return config == Config::cuda_fp16 || config == Config::cuda_fp16_graphs; }
};

const char* config_name(Config config) {
  switch (config) {
    case Config::cpu_optimized: return "optimized";
    case Config::cpu_as_written: return "as_written";
    case Config::cuda_fp32: return "CudaFp32";
    case Config::cuda_fp16: return "CudaFp16";
    case Config::cuda_fp16_graphs: return "CudaFp16Graphs";
  }
  return "";
}

fs::path goldens_dir() { return visage::test::source_dir() / "tests" / "goldens"; }

std::vector<ParityCase> parity_cases() {
  std::vector<std::string> ids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(goldens_dir(), ec))
    if (entry.is_directory() && fs::exists(entry.path() / "meta.json")) ids.push_back(entry.path().filename());
  std::sort(ids.begin(), ids.end());
  std::vector<ParityCase> cases;
  for (const auto& id : ids)
    for (Config config : {Config::cpu_optimized, Config::cpu_as_written, Config::cuda_fp32, Config::cuda_fp16,
                          Config::cuda_fp16_graphs})
      cases.push_back({id, config});
  return cases;
}

std::string case_name(const testing::TestParamInfo<ParityCase>& info) {
  std::string name = info.param.id + "_" + config_name(info.param.config);
  std::replace_if(
      name.begin(), name.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '_');
  return name;
}

// Tensor names differ only in spelling between runtimes: TF.js drops the ":0"
// of a node's first output, our loader may or may not.
std::string canonical_name(std::string name) {
  if (name.size() > 2 && name.compare(name.size() - 2, 2, ":0") == 0) name.resize(name.size() - 2);
  return name;
}

// The float input the reference saw: the photo's pixels * scale + offset in
// float32, laid out as the model expects.
at::Tensor model_input(const json& meta, const fs::path& dir) {
  const json& input = meta.at("input");
  at::Tensor pixels = visage::test::read_npy(dir / input.at("file").get<std::string>());  // [H, W, C] uint8
  const float scale = input.at("normalize").at("scale").get<float>();
  const float offset = input.at("normalize").at("offset").get<float>();
  at::Tensor x = pixels.to(at::kFloat).mul(scale).add(offset);
  if (input.at("layout") == "NCHW") x = x.permute({2, 0, 1});
  return x.unsqueeze(0).contiguous();
}

class ModelParity : public testing::TestWithParam<ParityCase> {};

TEST_P(ModelParity, MatchesReferenceRuntime) {
  const ParityCase& param = GetParam();
  const fs::path dir = goldens_dir() / param.id;
  json meta;
  {
    std::ifstream in(dir / "meta.json");
    ASSERT_TRUE(in) << "cannot read " << dir / "meta.json";
    meta = json::parse(in);
  }
  VISAGE_REQUIRE_NPM_FILE(model_file, meta.at("model").get<std::string>());

  visage::RuntimeOptions options;
  options.optimize = param.optimize();
  if (param.cuda()) {
    if (!visage::cuda_available()) GTEST_SKIP() << "no CUDA device in this build or machine";
    options.device = visage::Device::cuda;
    options.precision = param.fp16() ? visage::Precision::fp16 : visage::Precision::fp32;
    options.cuda_graphs = param.config == Config::cuda_fp16_graphs;
  }
  std::shared_ptr<const visage::Model> model;
  try {
    model = visage::Model::load(model_file, options);
  } catch (const visage::Error& e) {
    FAIL() << "load failed (" << visage::to_string(e.kind()) << "): " << e.what();
  }
  const at::Tensor input = model_input(meta, dir);
  visage::Session session(model);

  // Two runs through one session: the second reuses the first's buffers and
  // must give the same answer.
  for (int run = 0; run < (param.optimize() ? 2 : 1); ++run) {
    std::vector<at::Tensor> outputs;
    try {
      outputs = session.run({input});
    } catch (const visage::Error& e) {
      FAIL() << "run " << run << " failed (" << visage::to_string(e.kind()) << "): " << e.what();
    }
    ASSERT_EQ(outputs.size(), model->outputs().size());

    const json& expected = meta.at("outputs");
    for (const json& want : expected) {
      const std::string name = want.at("name");
      // Find our output of that name; a single-output model needs no name.
      size_t index = outputs.size();
      for (size_t i = 0; i < model->outputs().size(); ++i)
        if (canonical_name(model->outputs()[i].name) == canonical_name(name)) index = i;
      if (index == outputs.size() && expected.size() == 1 && outputs.size() == 1) index = 0;
      if (index == outputs.size()) {
        std::string ours;
        for (const auto& info : model->outputs()) ours += " '" + info.name + "'";
        ADD_FAILURE() << param.id << ": no output named '" << name << "'; the model has" << ours;
        continue;
      }
      const at::Tensor ref = visage::test::read_npy(dir / want.at("file").get<std::string>());
      const at::Tensor got = outputs[index].to(at::kCPU).to(at::kFloat);
      const auto ref_shape = ref.sizes().vec();
      EXPECT_EQ(got.sizes().vec(), ref_shape) << param.id << " output '" << name << "' shape";
      if (got.numel() != ref.numel()) continue;

      // fp16 on CUDA: the limit of 1e-2 relative error; embeddings
      // keep their cosine test, relaxed to what half precision can hold.
      const std::string kind = want.at("compare");
      const double tolerance = param.fp16() ? (kind == "cosine" ? 0.999 : 1e-2) : want.at("tolerance").get<double>();
      const double rel = visage::test::max_relative_error(got, ref);
      const double cos = visage::test::cosine_similarity(got, ref);
      std::printf("[ parity ] %-26s %-10s run %d  %-24s rel_err %.3g  cosine %.9f  (%s, limit %g)\n", param.id.c_str(),
                  config_name(param.config), run, name.c_str(), rel, cos, kind.c_str(), tolerance);
      if (kind == "cosine") {
        EXPECT_GE(cos, tolerance) << param.id << " output '" << name << "'";
      } else {
        ASSERT_EQ(kind, "relative") << "unknown comparison in " << dir / "meta.json";
        EXPECT_LE(rel, tolerance) << param.id << " output '" << name << "'";
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Goldens, ModelParity, testing::ValuesIn(parity_cases()), case_name);

// The goldens are committed; an empty list would make the suite above pass
// vacuously.
TEST(ModelParityGoldens, ArePresentAndComplete) {
  const auto cases = parity_cases();
  EXPECT_GE(cases.size(), 5u * 16u) << "expected 16 goldens in " << goldens_dir();
  for (size_t i = 0; i < cases.size(); i += 5) {
    const fs::path dir = goldens_dir() / cases[i].id;
    std::ifstream in(dir / "meta.json");
    const json meta = json::parse(in);
    EXPECT_TRUE(fs::exists(dir / meta.at("input").at("file").get<std::string>())) << dir;
    EXPECT_FALSE(meta.at("outputs").empty()) << dir;
    for (const json& out : meta.at("outputs"))
      EXPECT_TRUE(fs::exists(dir / out.at("file").get<std::string>())) << dir << " " << out.at("file");
  }
}

}  // namespace
