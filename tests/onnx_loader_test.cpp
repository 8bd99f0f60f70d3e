// The ONNX loader on broken files, unknown operators, older opsets, and the
// executor's input checks on a loaded model.
//
// Small models are written here with a minimal protobuf encoder (the wire
// format is simple and stable), so each test states exactly what the file holds.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "visage/runtime.hpp"

namespace fs = std::filesystem;

namespace {

// --- protobuf wire format ---------------------------------------------------
std::string varint(uint64_t v) {
  std::string out;
  do {
    uint8_t byte = v & 0x7f;
    v >>= 7;
    if (v) byte |= 0x80;
    out.push_back(static_cast<char>(byte));
  } while (v);
  return out;
}
std::string tag(int field, int wire) { return varint(static_cast<uint64_t>(field) << 3 | static_cast<uint64_t>(wire)); }
std::string int_field(int field, int64_t v) { return tag(field, 0) + varint(static_cast<uint64_t>(v)); }
std::string bytes_field(int field, const std::string& bytes) { return tag(field, 2) + varint(bytes.size()) + bytes; }
std::string float_field(int field, float v) {
  std::string out = tag(field, 5);
  char raw[4];
  std::memcpy(raw, &v, 4);
  return out + std::string(raw, 4);
}

// --- ONNX messages (field numbers from onnx.proto) --------------------------
std::string attr_int(const std::string& name, int64_t v) {
  return bytes_field(5, bytes_field(1, name) + int_field(20, 2) + int_field(3, v));
}
[[maybe_unused]] std::string attr_ints(const std::string& name, const std::vector<int64_t>& values) {
  std::string body = bytes_field(1, name) + int_field(20, 7);
  for (int64_t v : values) body += int_field(8, v);
  return bytes_field(5, body);
}
std::string attr_float(const std::string& name, float v) {
  return bytes_field(5, bytes_field(1, name) + int_field(20, 1) + float_field(2, v));
}

std::string node(const std::string& op, const std::vector<std::string>& inputs, const std::vector<std::string>& outputs,
                 const std::string& name = "", const std::string& attrs = "", const std::string& domain = "") {
  std::string body;
  for (const auto& i : inputs) body += bytes_field(1, i);
  for (const auto& o : outputs) body += bytes_field(2, o);
  if (!name.empty()) body += bytes_field(3, name);
  body += bytes_field(4, op) + attrs;
  if (!domain.empty()) body += bytes_field(7, domain);
  return bytes_field(1, body);  // GraphProto.node
}

// A float tensor value: GraphProto.input (11) or output (12).
std::string value(int field, const std::string& name, const std::vector<int64_t>& shape) {
  std::string dims;
  for (int64_t d : shape) dims += bytes_field(1, d < 0 ? bytes_field(2, "batch") : int_field(1, d));
  std::string tensor_type = int_field(1, 1) + bytes_field(2, dims);
  return bytes_field(field, bytes_field(1, name) + bytes_field(2, bytes_field(1, tensor_type)));
}

std::string model(const std::string& graph_body, int64_t opset) {
  std::string opset_import = bytes_field(1, "") + int_field(2, opset);
  return int_field(1, 7) + bytes_field(8, opset_import) + bytes_field(7, bytes_field(2, "g") + graph_body);
}

class OnnxLoader : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("visage_onnx_loader_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& name, const std::string& bytes) {
    fs::path path = dir_ / name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  fs::path dir_;
};

// Loads `path` expecting a visage::Error of `kind` whose message holds every `needle`.
void expect_load_error(const fs::path& path, visage::ErrorKind kind, const std::vector<std::string>& needles) {
  try {
    visage::Model::load(path);
    ADD_FAILURE() << "loading " << path << " succeeded";
  } catch (const visage::Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    for (const auto& needle : needles) EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

std::string relu_model() {
  return model(node("Relu", {"x"}, {"y"}, "act") + value(11, "x", {-1, 3}) + value(12, "y", {-1, 3}), 13);
}

}  // namespace

TEST_F(OnnxLoader, MissingFileIsAModelError) {
  fs::path path = dir_ / "absent.onnx";
  expect_load_error(path, visage::ErrorKind::model, {path.string()});
}

TEST_F(OnnxLoader, EmptyFileIsAModelError) {
  fs::path path = write("empty.onnx", "");
  expect_load_error(path, visage::ErrorKind::model, {path.string(), "not a valid ONNX model"});
}

TEST_F(OnnxLoader, GarbageIsAModelError) {
  std::string garbage;
  for (int i = 0; i < 4096; ++i) garbage.push_back(static_cast<char>((i * 7919 + 13) % 251));
  fs::path path = write("garbage.onnx", garbage);
  expect_load_error(path, visage::ErrorKind::model, {path.string(), "not a valid ONNX model"});
}

TEST_F(OnnxLoader, TruncatedFileIsAModelError) {
  std::string bytes = relu_model();
  fs::path path = write("truncated.onnx", bytes.substr(0, bytes.size() - 7));
  expect_load_error(path, visage::ErrorKind::model, {path.string()});
}

TEST_F(OnnxLoader, TruncatedRealModelIsAModelError) {
  fs::path source = "/usr/include/onnx/backend/test/data/node/test_conv_with_strides_padding/model.onnx";
  if (!fs::exists(source)) GTEST_SKIP() << "ONNX node test data not installed (libonnx-testdata)";
  std::ifstream in(source, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 40u);
  fs::path path = write("conv_truncated.onnx", bytes.substr(0, bytes.size() / 2));
  expect_load_error(path, visage::ErrorKind::model, {path.string()});
}

TEST_F(OnnxLoader, UnknownOperatorIsUnsupportedNamingNodeAndOperator) {
  fs::path path = write(
      "unknown.onnx",
      model(node("FrobnicateV2", {"x"}, {"y"}, "mystery_node") + value(11, "x", {2, 3}) + value(12, "y", {2, 3}), 13));
  expect_load_error(path, visage::ErrorKind::unsupported, {path.string(), "mystery_node", "FrobnicateV2"});
}

TEST_F(OnnxLoader, UnnamedNodeGetsAGeneratedName) {
  fs::path path = write("unnamed.onnx", model(node("Relu", {"x"}, {"h"}) + node("FrobnicateV2", {"h"}, {"y"}) +
                                                  value(11, "x", {2}) + value(12, "y", {2}),
                                              13));
  expect_load_error(path, visage::ErrorKind::unsupported, {"FrobnicateV2_1"});
}

TEST_F(OnnxLoader, OtherDomainIsUnsupportedNamingNodeAndDomain) {
  fs::path path = write("domain.onnx", model(node("Relu", {"x"}, {"y"}, "custom_relu", "", "com.example") +
                                                 value(11, "x", {2}) + value(12, "y", {2}),
                                             13));
  expect_load_error(path, visage::ErrorKind::unsupported, {path.string(), "custom_relu", "com.example"});
}

TEST_F(OnnxLoader, ReportsInputsWithDynamicDimensions) {
  auto m = visage::Model::load(write("relu.onnx", relu_model()));
  ASSERT_EQ(m->inputs().size(), 1u);
  EXPECT_EQ(m->inputs()[0].name, "x");
  EXPECT_EQ(m->inputs()[0].shape, (std::vector<int64_t>{-1, 3}));
  visage::Session session(m);
  at::Tensor x = at::randn({5, 3});
  auto y = session.run({x});
  ASSERT_EQ(y.size(), 1u);
  EXPECT_TRUE(at::equal(y[0], at::relu(x)));
}

TEST_F(OnnxLoader, WrongInputCountRankOrDimIsBadInput) {
  auto m = visage::Model::load(write("relu.onnx", relu_model()));
  visage::Session session(m);
  auto expect_bad_input = [&](const std::vector<at::Tensor>& inputs, const std::string& needle) {
    try {
      session.run(inputs);
      ADD_FAILURE() << "run succeeded";
    } catch (const visage::Error& e) {
      EXPECT_EQ(e.kind(), visage::ErrorKind::bad_input) << e.what();
      EXPECT_NE(std::string(e.what()).find("relu.onnx"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_bad_input({}, "input");
  expect_bad_input({at::zeros({2, 3}), at::zeros({2, 3})}, "input");
  expect_bad_input({at::zeros({2, 3, 1})}, "rank");
  expect_bad_input({at::zeros({2, 4})}, "shape");
}

TEST_F(OnnxLoader, ConformanceModelRejectsWrongShapes) {
  fs::path source = "/usr/include/onnx/backend/test/data/node/test_conv_with_strides_padding/model.onnx";
  if (!fs::exists(source)) GTEST_SKIP() << "ONNX node test data not installed (libonnx-testdata)";
  auto m = visage::Model::load(source);
  ASSERT_EQ(m->inputs().size(), 2u);  // x [1,1,7,5] and W [1,1,3,3]
  visage::Session session(m);
  at::Tensor x = at::randn({1, 1, 7, 5}), w = at::randn({1, 1, 3, 3});
  EXPECT_NO_THROW(session.run({x, w}));
  for (const auto& inputs :
       std::vector<std::vector<at::Tensor>>{{x}, {x, w, w}, {x.squeeze(0), w}, {at::randn({1, 1, 8, 5}), w}}) {
    try {
      session.run(inputs);
      ADD_FAILURE() << "run with bad inputs succeeded";
    } catch (const visage::Error& e) {
      EXPECT_EQ(e.kind(), visage::ErrorKind::bad_input) << e.what();
      EXPECT_NE(std::string(e.what()).find(source.string()), std::string::npos) << e.what();
    }
  }
}

TEST_F(OnnxLoader, ExternalDataIsUnsupported) {
  // An initializer whose data lives in another file (data_location = EXTERNAL).
  std::string tensor = int_field(1, 2) + int_field(2, 1) + bytes_field(8, "w") + int_field(14, 1) +
                       bytes_field(13, bytes_field(1, "location") + bytes_field(2, "weights.bin"));
  fs::path path = write("external.onnx", model(bytes_field(5, tensor) + node("Add", {"x", "w"}, {"y"}, "add") +
                                                   value(11, "x", {2}) + value(12, "y", {2}),
                                               13));
  expect_load_error(path, visage::ErrorKind::unsupported, {path.string(), "external"});
}

TEST_F(OnnxLoader, Opset9SoftmaxFlattensToTwoDimensions) {
  // Opsets < 13 normalise over all dimensions from `axis` on.
  fs::path path = write("softmax9.onnx", model(node("Softmax", {"x"}, {"y"}, "sm", attr_int("axis", 1)) +
                                                   value(11, "x", {2, 3, 4}) + value(12, "y", {2, 3, 4}),
                                               9));
  auto m = visage::Model::load(path, {.optimize = false});
  visage::Session session(m);
  at::Tensor x = at::randn({2, 3, 4});
  at::Tensor expected = at::softmax(x.reshape({2, 12}), 1).reshape({2, 3, 4});
  EXPECT_TRUE(at::allclose(session.run({x})[0], expected, 1e-5, 1e-6));
}

TEST_F(OnnxLoader, Opset9ClipAndLeakyAttributesBecomeInputs) {
  fs::path path = write("clip9.onnx",
                        model(node("Clip", {"x"}, {"y"}, "clip", attr_float("min", -0.5f) + attr_float("max", 0.25f)) +
                                  value(11, "x", {10}) + value(12, "y", {10}),
                              9));
  visage::Session session(visage::Model::load(path));
  at::Tensor x = at::linspace(-2, 2, 10);
  EXPECT_TRUE(at::allclose(session.run({x})[0], at::clamp(x, -0.5, 0.25)));
}

TEST_F(OnnxLoader, Opset9UpsampleBecomesResize) {
  std::string scales = int_field(1, 4) + int_field(2, 1) + bytes_field(8, "scales") + float_field(4, 1) +
                       float_field(4, 1) + float_field(4, 2) + float_field(4, 3);
  fs::path path =
      write("upsample9.onnx",
            model(bytes_field(5, scales) +
                      node("Upsample", {"x", "scales"}, {"y"}, "up",
                           bytes_field(5, bytes_field(1, "mode") + int_field(20, 3) + bytes_field(4, "nearest"))) +
                      value(11, "x", {1, 1, 2, 2}) + value(12, "y", {1, 1, 4, 6}),
                  9));
  auto m = visage::Model::load(path);
  EXPECT_EQ(m->node_ops(), std::vector<std::string>{"Resize"});
  visage::Session session(m);
  at::Tensor x = at::arange(4, at::kFloat).view({1, 1, 2, 2});
  at::Tensor expected = x.repeat_interleave(2, 2).repeat_interleave(3, 3);
  EXPECT_TRUE(at::equal(session.run({x})[0], expected));
}
