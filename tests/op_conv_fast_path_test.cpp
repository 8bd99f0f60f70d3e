// The CPU Conv fast path (prepacked oneDNN primitives with fused bias,
// residual Add and activation) against plain ATen arithmetic, and the
// residual-Add fusion pass against the unfused graph.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "op_test_util.hpp"
#include "runtime/model_impl.hpp"
#include "runtime/ops/onednn_conv.hpp"
#include "runtime/passes/passes.hpp"
#include "visage/runtime.hpp"

using visage::rt::Graph;
using visage::rt::Node;

namespace {

struct ConvCase {
  int64_t channels_in, channels_out, size, kernel, stride, dilation, groups;
  std::vector<int64_t> pads;  // top, left, bottom, right
  std::string activation;     // "" for none
  bool bias, residual, nhwc;
};

std::string describe(const ConvCase& c) {
  std::ostringstream text;
  text << "in " << c.channels_in << " out " << c.channels_out << " size " << c.size << " k" << c.kernel << " s"
       << c.stride << " d" << c.dilation << " g" << c.groups << " pads";
  for (int64_t p : c.pads) text << " " << p;
  text << " act '" << c.activation << "'" << (c.bias ? " bias" : "") << (c.residual ? " residual" : "")
       << (c.nhwc ? " NHWC" : " NCHW");
  return text.str();
}

at::Tensor reference_activation(const std::string& name, const at::Tensor& y, const at::Tensor& slope_nchw) {
  if (name.empty()) return y;
  if (name == "Relu") return at::relu(y);
  if (name == "LeakyRelu") return at::leaky_relu(y, 0.1);
  if (name == "Clip") return at::clamp(y, -0.5, 0.75);
  if (name == "Sigmoid") return at::sigmoid(y);
  if (name == "Tanh") return at::tanh(y);
  if (name == "Elu") return at::elu(y, 0.7);
  if (name == "HardSigmoid") return at::clamp(y * 0.3 + 0.4, 0, 1);
  if (name == "HardSwish") return at::hardswish(y);
  if (name == "PRelu") return at::where(y >= 0, y, y * slope_nchw);
  throw std::invalid_argument("no reference for " + name);
}

void set_activation(visage::rt::Attributes& a, const std::string& name) {
  if (name.empty()) return;
  a.set("activation", name);
  if (name == "LeakyRelu") a.set("activation_alpha", 0.1);
  if (name == "Clip") {
    a.set("activation_min", -0.5);
    a.set("activation_max", 0.75);
  }
  if (name == "Elu") a.set("activation_alpha", 0.7);
  if (name == "HardSigmoid") {
    a.set("activation_alpha", 0.3);
    a.set("activation_beta", 0.4);
  }
}

// Runs one Conv node whose weight, bias and slope are initializers (as the
// executor builds it for a loaded model) twice, the second time offering the
// first output as the buffer to write into; checks both against ATen.
void check_case(const ConvCase& c) {
  SCOPED_TRACE(describe(c));
  at::Tensor x = at::randn({1, c.channels_in, c.size, c.size});
  at::Tensor w = at::randn({c.channels_out, c.channels_in / c.groups, c.kernel, c.kernel})
                     .contiguous(at::MemoryFormat::ChannelsLast);
  at::Tensor b = at::randn({c.channels_out});
  at::Tensor slope_nchw = at::rand({c.channels_out, 1, 1}) * 0.5;

  at::Tensor padded = at::constant_pad_nd(x, {c.pads[1], c.pads[3], c.pads[0], c.pads[2]}, 0);
  at::Tensor expected = at::convolution(padded, w, c.bias ? b : at::Tensor(), {c.stride, c.stride}, {0, 0},
                                        {c.dilation, c.dilation}, false, {0, 0}, c.groups);
  at::Tensor r = at::randn(expected.sizes());
  if (c.residual) expected = expected + r;
  expected = reference_activation(c.activation, expected, slope_nchw);

  Graph graph;
  graph.source = "op_test";
  graph.initializers["w"] = w;
  if (c.bias) graph.initializers["b"] = b;
  Node node{"Conv", "conv", {"x", "w", c.bias ? "b" : ""}, {"y"}, {}};
  node.attrs.set("pads", c.pads);
  node.attrs.set("strides", std::vector<int64_t>{c.stride, c.stride});
  node.attrs.set("dilations", std::vector<int64_t>{c.dilation, c.dilation});
  node.attrs.set("group", c.groups);
  set_activation(node.attrs, c.activation);
  std::vector<at::Tensor> inputs{c.nhwc ? x.permute({0, 2, 3, 1}).contiguous() : x, w, c.bias ? b : at::Tensor()};
  if (c.residual) {
    node.attrs.set("residual", int64_t{1});
    node.inputs.push_back("r");
    inputs.push_back(c.nhwc ? r.permute({0, 2, 3, 1}).contiguous() : r);
  }
  if (c.activation == "PRelu") {
    at::Tensor slope = c.nhwc ? slope_nchw.reshape({c.channels_out}) : slope_nchw;
    graph.initializers["slope"] = slope;
    node.inputs.push_back("slope");
    inputs.push_back(slope);
  }
  if (c.nhwc) node.attrs.set("layout", std::string("NHWC"));

  visage::rt::BuildContext context{graph, at::kCPU, false};
  visage::rt::Kernel kernel = visage::rt::op_table().find("Conv")(node, context);
  std::vector<at::Tensor> out(1);
  kernel(inputs, out);
  at::Tensor first = c.nhwc ? out[0].permute({0, 3, 1, 2}) : out[0];
  EXPECT_TRUE(visage::test::close(first, expected, 1e-5, 1e-5));

  // Second run: a different input, written into the first run's buffer.
  const void* buffer = out[0].data_ptr();
  inputs[0] = inputs[0] * -1.5;
  padded = padded * -1.5;
  at::Tensor expected2 = at::convolution(padded, w, c.bias ? b : at::Tensor(), {c.stride, c.stride}, {0, 0},
                                         {c.dilation, c.dilation}, false, {0, 0}, c.groups);
  if (c.residual) expected2 = expected2 + r;
  expected2 = reference_activation(c.activation, expected2, slope_nchw);
  kernel(inputs, out);
  EXPECT_TRUE(visage::test::close(c.nhwc ? out[0].permute({0, 3, 1, 2}) : out[0], expected2, 1e-5, 1e-5));
  if (visage::rt::onednn_conv_available()) {
    EXPECT_EQ(out[0].data_ptr(), buffer) << "the previous output buffer should be reused";
  }
}

}  // namespace

TEST(OpConvFastPath, MatchesAtenAcrossShapesAndActivations) {
  at::manual_seed(11);
  const std::vector<std::string> activations{"",     "Relu", "LeakyRelu",   "Clip",      "Sigmoid",
                                             "Tanh", "Elu",  "HardSigmoid", "HardSwish", "PRelu"};
  std::vector<ConvCase> cases;
  for (size_t i = 0; i < activations.size(); ++i) {
    const std::string& a = activations[i];
    const bool nhwc = i % 2 == 1;
    cases.push_back({8, 16, 12, 3, 1, 1, 1, {1, 1, 1, 1}, a, true, false, nhwc});  // plain 3x3
    cases.push_back(
        {16, 16, 11, 3, 2, 1, 16, {0, 0, 1, 1}, a, true, true, nhwc});  // depthwise, stride 2, SAME_UPPER-like
    cases.push_back({16, 24, 7, 1, 1, 1, 1, {0, 0, 0, 0}, a, i % 3 == 0, true, !nhwc});  // 1x1 with residual
  }
  cases.push_back({3, 8, 17, 5, 2, 2, 1, {2, 1, 3, 0}, "Relu", true, false, false});   // dilation, asymmetric pads
  cases.push_back({12, 18, 9, 3, 1, 1, 3, {1, 1, 1, 1}, "", false, true, false});      // 3 groups, no bias
  cases.push_back({1, 4, 64, 3, 2, 1, 1, {1, 1, 1, 1}, "PRelu", true, false, false});  // one input channel
  for (const auto& c : cases) check_case(c);
}

TEST(OpConvFastPath, BroadcastResidualFallsBackToAtenAdd) {
  at::manual_seed(12);
  Graph graph;
  graph.source = "op_test";
  at::Tensor w = at::randn({6, 4, 3, 3});
  graph.initializers["w"] = w;
  Node node{"Conv", "conv", {"x", "w", "", "r"}, {"y"}, {}};
  node.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  node.attrs.set("residual", int64_t{1});
  node.attrs.set("activation", std::string("Relu"));
  visage::rt::BuildContext context{graph, at::kCPU, false};
  visage::rt::Kernel kernel = visage::rt::op_table().find("Conv")(node, context);
  at::Tensor x = at::randn({1, 4, 8, 8});
  at::Tensor r = at::randn({1, 6, 1, 8});  // broadcasts over rows
  std::vector<at::Tensor> inputs{x, w, at::Tensor(), r};
  std::vector<at::Tensor> out(1);
  kernel(inputs, out);
  at::Tensor expected = at::relu(at::convolution(x, w, {}, {1, 1}, {1, 1}, {1, 1}, false, {0, 0}, 1) + r);
  EXPECT_TRUE(visage::test::close(out[0], expected, 1e-5, 1e-5));
}

TEST(OpConvFastPath, IsAvailableInBuildsWithOnednn) {
  if (!visage::rt::onednn_conv_available())
    GTEST_SKIP() << "this build has no direct oneDNN path (VISAGE_ONEDNN off or oneDNN 2.x with OpenMP not found)";
  visage::rt::OnednnConvSpec spec;
  spec.weight = at::randn({8, 4, 3, 3});
  spec.strides = {1, 1};
  spec.dilations = {1, 1};
  auto conv = visage::rt::make_onednn_conv(spec);
  ASSERT_NE(conv, nullptr);
  at::Tensor x = at::randn({1, 4, 10, 10});
  at::Tensor out;
  bool epilogue_done = false;
  ASSERT_TRUE(visage::rt::run_onednn_conv(*conv, x, {1, 1, 1, 1}, {}, out, epilogue_done));
  EXPECT_TRUE(epilogue_done);
  EXPECT_TRUE(out.is_contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_TRUE(visage::test::close(out, at::conv2d(x, spec.weight, {}, 1, 1), 1e-5, 1e-5));
}

namespace {

// x -> Conv -> Add(shortcut) -> Relu -> Conv(depthwise) -> Add(conv output) -> y,
// with the shortcut itself a Conv output: residual blocks as in BlazeFace.
Graph residual_graph() {
  Graph g;
  g.source = "memory:residual";
  g.inputs.push_back({"x", at::kFloat, {1, 8, 10, 10}});
  g.outputs.push_back({"y", at::kFloat, {}, false});
  g.initializers["w1"] = at::randn({8, 8, 3, 3});
  g.initializers["b1"] = at::randn({8});
  g.initializers["w2"] = at::randn({8, 1, 3, 3});
  g.initializers["w3"] = at::randn({8, 8, 1, 1});
  Node c1{"Conv", "c1", {"x", "w1", "b1"}, {"c1"}, {}};
  c1.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  Node c2{"Conv", "c2", {"a1", "w2"}, {"c2"}, {}};
  c2.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  c2.attrs.set("group", int64_t{8});
  Node c3{"Conv", "c3", {"a1", "w3"}, {"c3"}, {}};
  g.nodes = {c1, Node{"Add", "add1", {"x", "c1"}, {"s1"}, {}}, Node{"Relu", "relu1", {"s1"}, {"a1"}, {}}, c2,
             c3, Node{"Add", "add2", {"c2", "c3"}, {"y"}, {}}};
  return g;
}

at::Tensor run_graph(const Graph& graph, bool optimize, const at::Tensor& x, size_t& nodes) {
  visage::RuntimeOptions options;
  options.optimize = optimize;
  auto model = visage::Model::Impl::wrap(visage::Model::Impl::build(graph, "memory", options, at::kCPU));
  nodes = model->node_count();
  visage::Session session(model);
  return session.run({x})[0];
}

}  // namespace

TEST(PassesResidualAdd, ConvAddReluBecomesOneConv) {
  at::manual_seed(13);
  Graph g = residual_graph();
  at::Tensor x = at::randn({1, 8, 10, 10});
  size_t eager_nodes = 0, optimized_nodes = 0;
  at::Tensor eager = run_graph(g, false, x, eager_nodes);
  at::Tensor optimized = run_graph(g, true, x, optimized_nodes);
  EXPECT_EQ(eager_nodes, 6u);
  EXPECT_EQ(optimized_nodes, 3u) << "each Add (and the Relu after the first) should fold into a Conv";
  EXPECT_GT(eager.abs().max().item<float>(), 0.1f);
  EXPECT_TRUE(visage::test::close(optimized, eager, 1e-5, 1e-5));
}

TEST(PassesResidualAdd, KeepsAddsItCannotFuse) {
  Graph g = residual_graph();
  // The first Conv's output is also a graph output: the Add must stay.
  g.outputs.push_back({"c1", at::kFloat, {}, false});
  visage::rt::fuse_residual_add(g);
  size_t adds = 0, residual_convs = 0;
  for (const auto& node : g.nodes) {
    adds += node.op == "Add";
    residual_convs += node.op == "Conv" && node.attrs.has("residual");
  }
  EXPECT_EQ(adds, 1u);
  EXPECT_EQ(residual_convs, 1u);
  // The fused Conv sits where the Add was, after both addends exist.
  EXPECT_EQ(g.nodes.back().op, "Conv");
  EXPECT_EQ(g.nodes.back().inputs.size(), 4u);
  EXPECT_EQ(g.nodes.back().inputs[2], "");
}

TEST(OpCpuFastPath, ChannelsLastMaxPoolMatchesAten) {
  at::manual_seed(14);
  struct PoolCase {
    int64_t channels, size, kernel, stride;
    std::vector<int64_t> pads;  // top, left, bottom, right
    bool nhwc;
  };
  const std::vector<PoolCase> cases{
      {24, 64, 2, 2, {0, 0, 0, 0}, false}, {5, 13, 3, 2, {1, 1, 1, 1}, true}, {7, 9, 3, 1, {0, 1, 2, 0}, false}};
  for (const auto& c : cases) {
    SCOPED_TRACE("channels " + std::to_string(c.channels) + " size " + std::to_string(c.size) + " k" +
                 std::to_string(c.kernel) + " s" + std::to_string(c.stride) + (c.nhwc ? " NHWC" : " NCHW"));
    at::Tensor x = at::randn({2, c.channels, c.size, c.size}).contiguous(at::MemoryFormat::ChannelsLast);
    at::Tensor padded =
        at::constant_pad_nd(x, {c.pads[1], c.pads[3], c.pads[0], c.pads[2]}, -std::numeric_limits<double>::infinity());
    at::Tensor expected = at::max_pool2d(padded, {c.kernel, c.kernel}, {c.stride, c.stride});
    visage::test::OpOptions options;
    options.attributes = visage::test::attrs({{"kernel_shape", std::vector<int64_t>{c.kernel, c.kernel}},
                                              {"strides", std::vector<int64_t>{c.stride, c.stride}},
                                              {"pads", c.pads}});
    if (c.nhwc) options.attributes.set("layout", std::string("NHWC"));
    at::Tensor input = c.nhwc ? x.permute({0, 2, 3, 1}) : x;  // NHWC: a contiguous NHWC tensor
    at::Tensor got = visage::test::run_op("MaxPool", {input}, options).at(0);
    EXPECT_TRUE(visage::test::same(c.nhwc ? got.permute({0, 3, 1, 2}) : got, expected));
    // Second run into the first run's buffer.
    options.previous = {got};
    at::Tensor again = visage::test::run_op("MaxPool", {input * 2}, options).at(0);
    EXPECT_TRUE(visage::test::same(c.nhwc ? again.permute({0, 3, 1, 2}) : again,
                                   at::max_pool2d(padded * 2, {c.kernel, c.kernel}, {c.stride, c.stride})));
  }
}

TEST(OpCpuFastPath, ChannelsLastConcatMatchesAtenCat) {
  at::manual_seed(15);
  at::Tensor a = at::randn({2, 24, 9, 7}).contiguous(at::MemoryFormat::ChannelsLast);
  at::Tensor b = at::zeros({2, 4, 9, 7});  // channels-first, like a constant channel padding
  at::Tensor c = at::randn({2, 3, 9, 7}).contiguous(at::MemoryFormat::ChannelsLast);
  at::Tensor got = visage::test::run1("Concat", {a, b, c}, visage::test::attrs({{"axis", int64_t{1}}}));
  EXPECT_TRUE(got.is_contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_TRUE(visage::test::same(got, at::cat({a, b, c}, 1)));
  at::Tensor ints = at::randint(0, 100, {1, 5, 4, 4}, at::kLong).contiguous(at::MemoryFormat::ChannelsLast);
  at::Tensor more = at::randint(0, 100, {1, 2, 4, 4}, at::kLong);
  EXPECT_TRUE(
      visage::test::same(visage::test::run1("Concat", {ints, more}, visage::test::attrs({{"axis", int64_t{-3}}})),
                         at::cat({ints, more}, 1)));
}

TEST(PassesRecogniseActivations, ClipByValueAndSpelledOutPreluFoldIntoConvs) {
  at::manual_seed(16);
  // NHWC as TF.js exports it: Conv -> Minimum(6) -> Maximum(0) -> Conv ->
  // relu(x) + a * (x - |x|) -> y.
  Graph g;
  g.source = "memory:activations";
  g.inputs.push_back({"x", at::kFloat, {1, 9, 9, 4}});
  g.outputs.push_back({"y", at::kFloat, {}, false});
  g.initializers["w1"] = at::randn({8, 4, 3, 3});
  g.initializers["w2"] = at::randn({8, 8, 1, 1});
  g.initializers["six"] = at::scalar_tensor(6.0f);
  g.initializers["zero"] = at::scalar_tensor(0.0f);
  g.initializers["alpha"] = at::rand({8}) * 0.3;
  Node c1{"Conv", "c1", {"x", "w1"}, {"c1"}, {}};
  c1.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  c1.attrs.set("layout", std::string("NHWC"));
  Node c2{"Conv", "c2", {"r6", "w2"}, {"c2"}, {}};
  c2.attrs.set("layout", std::string("NHWC"));
  g.nodes = {c1,
             Node{"Min", "min", {"c1", "six"}, {"m"}, {}},
             Node{"Max", "max", {"m", "zero"}, {"r6"}, {}},
             c2,
             Node{"Relu", "relu", {"c2"}, {"pos"}, {}},
             Node{"Abs", "abs", {"c2"}, {"abs"}, {}},
             Node{"Sub", "sub", {"c2", "abs"}, {"diff"}, {}},
             Node{"Mul", "mul", {"diff", "alpha"}, {"neg"}, {}},
             Node{"Add", "add", {"pos", "neg"}, {"y"}, {}}};
  at::Tensor x = at::randn({1, 9, 9, 4});
  size_t eager_nodes = 0, optimized_nodes = 0;
  at::Tensor eager = run_graph(g, false, x, eager_nodes);
  at::Tensor optimized = run_graph(g, true, x, optimized_nodes);
  EXPECT_EQ(eager_nodes, 9u);
  EXPECT_EQ(optimized_nodes, 2u) << "ReLU6 and the PReLU should fold into the two convolutions";
  EXPECT_GT((eager < 0).sum().item<int64_t>(), 0) << "the test needs negative outputs to exercise the slope";
  EXPECT_TRUE(visage::test::close(optimized, eager, 1e-5, 1e-5));
}

TEST(PassesRecogniseActivations, LeavesLookalikesAlone) {
  // Max(Min(x, 0), 6) is constant 6, not a Clip; a Min whose output is also
  // read elsewhere must stay.
  Graph g;
  g.source = "memory:lookalikes";
  g.inputs.push_back({"x", at::kFloat, {2, 3}});
  g.outputs.push_back({"y", at::kFloat, {}, false});
  g.outputs.push_back({"z", at::kFloat, {}, false});
  g.initializers["six"] = at::scalar_tensor(6.0f);
  g.initializers["zero"] = at::scalar_tensor(0.0f);
  g.nodes = {Node{"Min", "min", {"x", "zero"}, {"m"}, {}}, Node{"Max", "max", {"m", "six"}, {"y"}, {}},
             Node{"Min", "min2", {"x", "six"}, {"n"}, {}}, Node{"Max", "max2", {"n", "zero"}, {"p"}, {}},
             Node{"Add", "add", {"p", "n"}, {"z"}, {}}};
  visage::rt::recognise_activations(g);
  size_t clips = 0;
  for (const auto& node : g.nodes) clips += node.op == "Clip";
  EXPECT_EQ(clips, 0u);
  EXPECT_EQ(g.nodes.size(), 5u);
}

TEST(OpCpuFastPath, OneRowTimesConstantMatrixMatchesAten) {
  at::manual_seed(17);
  at::Tensor w = at::randn({136, 512});  // Gemm B with transB = 1: [N, K]
  at::Tensor c = at::randn({136});
  at::Tensor a = at::randn({1, 512});
  Graph graph;
  graph.source = "op_test";
  graph.initializers["w"] = w;
  graph.initializers["c"] = c;
  Node gemm{"Gemm", "gemm", {"a", "w", "c"}, {"y"}, {}};
  gemm.attrs.set("transB", int64_t{1});
  gemm.attrs.set("alpha", 0.5);
  gemm.attrs.set("beta", 2.0);
  visage::rt::BuildContext context{graph, at::kCPU, false};
  std::vector<at::Tensor> inputs{a, w, c};
  std::vector<at::Tensor> out(1);
  visage::rt::op_table().find("Gemm")(gemm, context)(inputs, out);
  EXPECT_TRUE(visage::test::close(out[0], at::addmm(c, a, w.t(), 2.0, 0.5), 1e-5, 1e-5));

  // MatMul of a 1-D row and of a [1, 1, K] row against a constant [K, N].
  at::Tensor b = at::randn({64, 10});
  graph.initializers["b"] = b;
  Node matmul{"MatMul", "matmul", {"a", "b"}, {"y"}, {}};
  auto kernel = visage::rt::op_table().find("MatMul")(matmul, context);
  for (const at::Tensor& row : {at::randn({64}), at::randn({1, 1, 64})}) {
    std::vector<at::Tensor> ins{row, b};
    kernel(ins, out);
    EXPECT_TRUE(visage::test::close(out[0], at::matmul(row, b), 1e-5, 1e-5));
  }
}

TEST(OpCpuFastPath, SoftmaxOverShortRowsMatchesAten) {
  at::manual_seed(18);
  for (const auto& shape : std::vector<std::vector<int64_t>>{{4420, 2}, {3, 5, 7}, {2, 16}, {1, 1}}) {
    at::Tensor x = at::randn(shape) * 10;
    at::Tensor got = visage::test::run1("Softmax", {x}, visage::test::attrs({{"axis", int64_t{-1}}}));
    EXPECT_TRUE(visage::test::close(got, at::softmax(x, -1), 1e-6, 1e-7)) << x.sizes();
  }
}

TEST(OpCpuFastPath, ContiguousConcatMatchesAtenCatOnEveryAxis) {
  at::manual_seed(19);
  for (int64_t axis = 0; axis < 3; ++axis) {
    std::vector<int64_t> a_shape{2, 3, 4}, b_shape{2, 3, 4};
    b_shape[static_cast<size_t>(axis)] = 5;
    at::Tensor a = at::randn(a_shape), b = at::randn(b_shape);
    at::Tensor got = visage::test::run1("Concat", {a, b}, visage::test::attrs({{"axis", axis}}));
    EXPECT_TRUE(visage::test::same(got, at::cat({a, b}, axis))) << "axis " << axis;
  }
  // Shape vectors, as in Shape -> Gather -> Unsqueeze -> Concat -> Reshape.
  at::Tensor got =
      visage::test::run1("Concat", {visage::test::ints({1}), visage::test::ints({-1}), visage::test::ints({4, 2})},
                         visage::test::attrs({{"axis", int64_t{0}}}));
  EXPECT_TRUE(visage::test::same(got, visage::test::ints({1, -1, 4, 2})));
}
