// RuntimeOptions::input_shapes and RuntimeOptions::outputs: a network exported
// for one input size runs at another (the Resize targets its exporter froze
// follow the input), and only the outputs asked for are computed.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <string>

#include "runtime/model_impl.hpp"
#include "test_support.hpp"
#include "visage/runtime.hpp"

using visage::rt::Graph;
using visage::rt::Node;

namespace {

std::shared_ptr<const visage::Model> build(const Graph& graph, const visage::RuntimeOptions& options) {
  return visage::Model::Impl::wrap(visage::Model::Impl::build(graph, "memory", options, at::kCPU));
}

// NHWC x [1, 4, 4, 1] -> nearest Resize to the constant size [8, 8] -> y;
// also z = x * 2, a second output that needs nothing of y's.
Graph upsample_graph() {
  Graph g;
  g.source = "memory:upsample";
  g.format = "tfjs-graph";
  g.inputs.push_back({"x", at::kFloat, {1, 4, 4, 1}});
  g.outputs.push_back({"y", at::kFloat, {}, false});
  g.outputs.push_back({"z", at::kFloat, {}, false});
  g.initializers["size"] = at::tensor(std::vector<int64_t>{8, 8});
  g.initializers["two"] = at::scalar_tensor(2.f);
  Node resize{"Resize", "resize", {"x", "", "", "size"}, {"y"}, {}};
  resize.attrs.set("mode", std::string("nearest"));
  resize.attrs.set("coordinate_transformation_mode", std::string("asymmetric"));
  resize.attrs.set("nearest_mode", std::string("floor"));
  resize.attrs.set("layout", std::string("NHWC"));
  g.nodes = {resize, Node{"Mul", "double", {"x", "two"}, {"z"}, {}}};
  return g;
}

at::Tensor ramp(int64_t side) { return at::arange(side * side, at::kFloat).reshape({1, side, side, 1}); }

}  // namespace

TEST(RuntimeReshape, ResizeTargetsFollowTheInputSize) {
  c10::InferenceMode guard;
  visage::RuntimeOptions options;
  // As declared: 4x4 -> 8x8.
  auto declared = build(upsample_graph(), options);
  visage::Session plain(declared);
  EXPECT_EQ(plain.run({ramp(4)})[0].sizes(), (std::vector<int64_t>{1, 8, 8, 1}));
  EXPECT_THROW(plain.run({ramp(6)}), visage::Error);  // the declared shape is enforced

  // Half the size: the frozen [8, 8] becomes [4, 4], a x2 upsampling as before.
  options.input_shapes["x"] = {1, 2, 2, 1};
  auto half = build(upsample_graph(), options);
  EXPECT_EQ(half->inputs()[0].shape, (std::vector<int64_t>{1, 2, 2, 1}));
  visage::Session session(half);
  at::Tensor x = ramp(2);
  at::Tensor y = session.run({x})[0];
  ASSERT_EQ(y.sizes(), (std::vector<int64_t>{1, 4, 4, 1}));
  at::Tensor expected = x.repeat_interleave(2, 1).repeat_interleave(2, 2);
  EXPECT_TRUE(at::equal(y, expected)) << y;

  // 1.5x: [8, 8] becomes [12, 12].
  options.input_shapes["x"] = {1, 6, 6, 1};
  visage::Session larger(build(upsample_graph(), options));
  EXPECT_EQ(larger.run({ramp(6)})[0].sizes(), (std::vector<int64_t>{1, 12, 12, 1}));
}

TEST(RuntimeReshape, BadShapesAndNamesAreRefused) {
  visage::RuntimeOptions options;
  options.input_shapes["x"] = {1, 2, 2};  // rank 3 for a rank-4 input
  EXPECT_EQ(visage::test::expect_error([&] { build(upsample_graph(), options); }).kind(), visage::ErrorKind::bad_input);
  options.input_shapes = {{"nope", {1, 2, 2, 1}}};
  visage::Error e = visage::test::expect_error([&] { build(upsample_graph(), options); });
  EXPECT_NE(std::string(e.what()).find("nope"), std::string::npos) << e.what();
  options.input_shapes.clear();
  options.outputs = {"w"};
  e = visage::test::expect_error([&] { build(upsample_graph(), options); });
  EXPECT_NE(std::string(e.what()).find("'w'"), std::string::npos) << e.what();
}

TEST(RuntimeReshape, OnlyTheOutputsAskedForAreComputed) {
  c10::InferenceMode guard;
  visage::RuntimeOptions options;
  options.outputs = {"z"};
  auto model = build(upsample_graph(), options);
  ASSERT_EQ(model->outputs().size(), 1u);
  EXPECT_EQ(model->outputs()[0].name, "z");
  EXPECT_EQ(model->node_ops(), (std::vector<std::string>{"Mul"}));  // the Resize is not run
  visage::Session session(model);
  auto out = session.run({ramp(4)});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(at::equal(out[0], ramp(4) * 2));
}
