// Load-time passes must not change what a model computes.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "runtime/model_impl.hpp"
#include "runtime/passes/passes.hpp"
#include "visage/runtime.hpp"

using visage::rt::Graph;
using visage::rt::Node;

namespace {

// x -> Conv(3x3, bias) -> BatchNormalization -> Mul(per-channel) -> Relu -> y
Graph conv_bn_relu_graph(int64_t channels_in, int64_t channels_out) {
  Graph g;
  g.source = "memory:conv_bn_relu";
  g.inputs.push_back({"x", at::kFloat, {1, channels_in, 9, 9}});
  g.outputs.push_back({"y", at::kFloat, {}, false});
  g.initializers["w"] = at::randn({channels_out, channels_in, 3, 3});
  g.initializers["b"] = at::randn({channels_out});
  g.initializers["scale"] = at::rand({channels_out}) + 0.5;
  g.initializers["shift"] = at::randn({channels_out});
  g.initializers["mean"] = at::randn({channels_out});
  g.initializers["var"] = at::rand({channels_out}) + 0.1;
  g.initializers["mul"] = at::randn({channels_out, 1, 1});
  Node conv{"Conv", "conv", {"x", "w", "b"}, {"c"}, {}};
  conv.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  Node bn{"BatchNormalization", "bn", {"c", "scale", "shift", "mean", "var"}, {"n"}, {}};
  bn.attrs.set("epsilon", 1e-3);
  g.nodes = {conv, bn, Node{"Mul", "mul", {"n", "mul"}, {"m"}, {}}, Node{"Relu", "relu", {"m"}, {"y"}, {}}};
  return g;
}

at::Tensor run(const Graph& graph, bool optimize, const at::Tensor& x, size_t* nodes = nullptr) {
  visage::RuntimeOptions options;
  options.optimize = optimize;
  auto model = visage::Model::Impl::wrap(visage::Model::Impl::build(graph, "memory", options, at::kCPU));
  if (nodes) *nodes = model->node_count();
  visage::Session session(model);
  return session.run({x})[0];
}

}  // namespace

TEST(Passes, BatchNormMulAndReluFoldIntoConv) {
  at::manual_seed(7);
  Graph g = conv_bn_relu_graph(4, 6);
  at::Tensor x = at::randn({1, 4, 9, 9});
  size_t eager_nodes = 0, optimized_nodes = 0;
  at::Tensor eager = run(g, false, x, &eager_nodes);
  at::Tensor optimized = run(g, true, x, &optimized_nodes);
  EXPECT_EQ(eager_nodes, 4u);
  EXPECT_EQ(optimized_nodes, 1u) << "Conv, BatchNormalization, Mul and Relu should become one fused Conv";
  ASSERT_EQ(eager.sizes(), optimized.sizes());
  EXPECT_GT(eager.abs().max().item<float>(), 0.1f);
  EXPECT_LE((eager - optimized).abs().max().item<float>(), 1e-4f * eager.abs().max().item<float>());
}

TEST(Passes, ConstantSubgraphsFold) {
  Graph g;
  g.source = "memory:constants";
  g.inputs.push_back({"x", at::kFloat, {2, 3}});
  g.outputs.push_back({"y", at::kFloat, {}, false});
  g.initializers["a"] = at::full({3}, 2.0);
  g.initializers["b"] = at::full({3}, 5.0);
  g.nodes = {Node{"Mul", "ab", {"a", "b"}, {"ab"}, {}}, Node{"Add", "out", {"x", "ab"}, {"y"}, {}}};
  at::Tensor x = at::randn({2, 3});
  size_t nodes = 0;
  at::Tensor y = run(g, true, x, &nodes);
  EXPECT_EQ(nodes, 1u);
  EXPECT_TRUE(at::allclose(y, x + 10.0));
}

TEST(Passes, SharedWeightsAreNotFoldedTwice) {
  // Two convolutions share one weight; only one is followed by a Mul. The
  // other must keep computing with the original weights.
  Graph g;
  g.source = "memory:shared";
  g.inputs.push_back({"x", at::kFloat, {1, 2, 5, 5}});
  g.outputs.push_back({"y1", at::kFloat, {}, false});
  g.outputs.push_back({"y2", at::kFloat, {}, false});
  g.initializers["w"] = at::randn({3, 2, 1, 1});
  g.initializers["k"] = at::full({3, 1, 1}, 3.0);
  g.nodes = {Node{"Conv", "c1", {"x", "w"}, {"a"}, {}}, Node{"Mul", "scale", {"a", "k"}, {"y1"}, {}},
             Node{"Conv", "c2", {"x", "w"}, {"y2"}, {}}};
  at::Tensor x = at::randn({1, 2, 5, 5});
  visage::RuntimeOptions options;
  auto model = visage::Model::Impl::wrap(visage::Model::Impl::build(g, "memory", options, at::kCPU));
  visage::Session session(model);
  auto outputs = session.run({x});
  EXPECT_EQ(model->node_count(), 2u);
  EXPECT_TRUE(at::allclose(outputs[0], outputs[1] * 3.0, 1e-4, 1e-5));
}
