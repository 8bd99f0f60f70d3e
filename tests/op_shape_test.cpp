// Shape and indexing operators against index loops written out by hand.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <limits>

#include "op_test_util.hpp"

namespace visage::test {
namespace {

class ShapeOpTest : public ::testing::Test {
 protected:
  void SetUp() override { at::manual_seed(77); }
};

TEST_F(ShapeOpTest, ReshapeCopiesZerosInfersMinusOneAndReturnsAView) {
  at::Tensor x = at::randn({2, 3, 4});
  at::Tensor y = run1("Reshape", {x, ints({0, -1})});
  EXPECT_EQ(y.sizes(), at::IntArrayRef({2, 12}));
  EXPECT_EQ(y.data_ptr(), x.data_ptr());
  EXPECT_TRUE(same(y.reshape({-1}), x.reshape({-1})));
  at::Tensor empty = at::randn({0, 3});
  EXPECT_EQ(run1("Reshape", {empty, ints({3, 0})}, attrs({{"allowzero", int64_t{1}}})).sizes(),
            at::IntArrayRef({3, 0}));
  EXPECT_THROW(run1("Reshape", {x, ints({5, -1})}), std::invalid_argument);
}

TEST_F(ShapeOpTest, ViewOperatorsShareStorage) {
  at::Tensor x = at::randn({2, 1, 3, 1});
  at::Tensor squeezed = run1("Squeeze", {x, ints({1, -1})});
  EXPECT_EQ(squeezed.sizes(), at::IntArrayRef({2, 3}));
  EXPECT_EQ(run1("Squeeze", {x}).sizes(), at::IntArrayRef({2, 3}));
  at::Tensor unsqueezed = run1("Unsqueeze", {squeezed, ints({-1, 0})});
  EXPECT_EQ(unsqueezed.sizes(), at::IntArrayRef({1, 2, 3, 1}));
  at::Tensor transposed = run1("Transpose", {x}, attrs({{"perm", std::vector<int64_t>{2, 0, 3, 1}}}));
  EXPECT_EQ(transposed.sizes(), at::IntArrayRef({3, 2, 1, 1}));
  EXPECT_EQ(transposed[2][1][0][0].item<float>(), x[1][0][2][0].item<float>());
  EXPECT_EQ(run1("Transpose", {x}).sizes(), at::IntArrayRef({1, 3, 1, 2}));
  at::Tensor flat = run1("Flatten", {x}, attrs({{"axis", int64_t{-2}}}));
  EXPECT_EQ(flat.sizes(), at::IntArrayRef({2, 3}));
  for (const at::Tensor* view : {&squeezed, &unsqueezed, &transposed, &flat}) EXPECT_TRUE(view->is_alias_of(x));
  EXPECT_TRUE(run1("Identity", {x}).is_same(x));
}

TEST_F(ShapeOpTest, ConcatJoinsMixedSourcesAndSplitCutsParts) {
  at::Tensor a = at::randn({2, 3});
  at::Tensor b = at::randn({2, 1});
  at::Tensor joined = run1("Concat", {a, b}, attrs({{"axis", int64_t{-1}}}));
  ASSERT_EQ(joined.sizes(), at::IntArrayRef({2, 4}));
  EXPECT_TRUE(same(joined.narrow(1, 0, 3), a));
  EXPECT_TRUE(same(joined.narrow(1, 3, 1), b));

  at::Tensor x = at::arange(7, at::kFloat);
  OpOptions options;
  options.outputs = 3;
  options.attributes = attrs({{"num_outputs", int64_t{3}}});
  auto parts = run_op("Split", {x}, options);
  EXPECT_TRUE(same(parts[0], floats({0, 1, 2})));
  EXPECT_TRUE(same(parts[1], floats({3, 4, 5})));
  EXPECT_TRUE(same(parts[2], floats({6})));
  options.outputs = 2;
  options.attributes = {};
  parts = run_op("Split", {x, ints({2, 5})}, options);
  EXPECT_TRUE(same(parts[1], floats({2, 3, 4, 5, 6})));
}

// Slice checked against the ONNX formula evaluated element by element.
TEST_F(ShapeOpTest, SliceClampsAndSupportsNegativeSteps) {
  at::Tensor x = at::arange(10, at::kFloat);
  struct Case {
    int64_t start, end, step;
    std::vector<float> expected;
  };
  const int64_t big = std::numeric_limits<int64_t>::max();
  const Case cases[] = {
      {1, 4, 1, {1, 2, 3}},
      {-3, big, 1, {7, 8, 9}},
      {0, 10, 3, {0, 3, 6, 9}},
      {-1, -big, -1, {9, 8, 7, 6, 5, 4, 3, 2, 1, 0}},
      {8, 1, -3, {8, 5, 2}},
      {20, -20, -4, {9, 5, 1}},
      {5, 2, 1, {}},
      {-100, 2, 1, {0, 1}},
  };
  for (const auto& c : cases) {
    at::Tensor y = run1("Slice", {x, ints({c.start}), ints({c.end}), ints({0}), ints({c.step})});
    EXPECT_TRUE(same(y, floats(c.expected))) << c.start << ":" << c.end << ":" << c.step;
  }
  at::Tensor m = at::randn({4, 5});
  at::Tensor y = run1("Slice", {m, ints({1, -1}), ints({3, -6}), ints({0, -1}), ints({1, -2})});
  ASSERT_EQ(y.sizes(), at::IntArrayRef({2, 3}));
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j) EXPECT_EQ(y[i][j].item<float>(), m[1 + i][4 - 2 * j].item<float>());
}

TEST_F(ShapeOpTest, GatherFamiliesWithNegativeIndices) {
  at::Tensor data = at::randn({3, 4, 2});
  at::Tensor idx = make({0, -1, 2, 1}, {2, 2}, at::kLong);
  at::Tensor g = run1("Gather", {data, idx}, attrs({{"axis", int64_t{1}}}));
  ASSERT_EQ(g.sizes(), at::IntArrayRef({3, 2, 2, 2}));
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t p = 0; p < 2; ++p)
      for (int64_t q = 0; q < 2; ++q) {
        int64_t j = idx[p][q].item<int64_t>();
        j = j < 0 ? j + 4 : j;
        EXPECT_TRUE(same(g[i][p][q], data[i][j]));
      }
  at::Tensor scalar_index = run1("Gather", {ints({5, 6, 7}), at::scalar_tensor(-1, at::kLong)});
  EXPECT_TRUE(same(scalar_index, at::scalar_tensor(7, at::kLong)));

  at::Tensor m = at::randn({3, 3});
  at::Tensor e_idx = make({1, -1, 0, 0, 0, 2}, {2, 3}, at::kLong);
  at::Tensor ge = run1("GatherElements", {m, e_idx}, attrs({{"axis", int64_t{0}}}));
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j) {
      int64_t r = e_idx[i][j].item<int64_t>();
      EXPECT_EQ(ge[i][j].item<float>(), m[r < 0 ? r + 3 : r][j].item<float>());
    }

  // GatherND with one batch dimension: out[b, q] = data[b, idx[b, q, 0], idx[b, q, 1]].
  at::Tensor nd_data = at::randn({2, 3, 4, 5});
  at::Tensor nd_idx = make({0, 1, 2, -1, 1, 0, -3, 3}, {2, 2, 2}, at::kLong);
  at::Tensor gnd = run1("GatherND", {nd_data, nd_idx}, attrs({{"batch_dims", int64_t{1}}}));
  ASSERT_EQ(gnd.sizes(), at::IntArrayRef({2, 2, 5}));
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t q = 0; q < 2; ++q) {
      int64_t r = nd_idx[b][q][0].item<int64_t>();
      int64_t c = nd_idx[b][q][1].item<int64_t>();
      EXPECT_TRUE(same(gnd[b][q], nd_data[b][r < 0 ? r + 3 : r][c < 0 ? c + 4 : c]));
    }
}

TEST_F(ShapeOpTest, ScatterElementsAndScatterND) {
  at::Tensor data = at::zeros({3, 3});
  at::Tensor idx = make({1, 0, 2, 1, 2, -3}, {2, 3}, at::kLong);
  at::Tensor upd = make({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {2, 3}, at::kFloat);
  at::Tensor added = run1("ScatterElements", {data, idx, upd}, attrs({{"reduction", std::string("add")}}));
  at::Tensor expected = at::zeros({3, 3});
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j) {
      int64_t r = idx[i][j].item<int64_t>();
      expected[r < 0 ? r + 3 : r][j] += upd[i][j];
    }
  EXPECT_TRUE(same(added, expected));
  EXPECT_TRUE(same(data, at::zeros({3, 3})));  // the input is untouched

  at::Tensor nd = at::arange(12, at::kFloat).reshape({3, 4});
  at::Tensor rows = make({2, 0}, {2, 1}, at::kLong);
  at::Tensor new_rows = at::full({2, 4}, -1.0f);
  at::Tensor scattered = run1("ScatterND", {nd, rows, new_rows});
  at::Tensor expected_nd = nd.clone();
  expected_nd[2].fill_(-1);
  expected_nd[0].fill_(-1);
  EXPECT_TRUE(same(scattered, expected_nd));
  at::Tensor cells = make({1, 1, 1, 1}, {2, 2}, at::kLong);
  at::Tensor acc = run1("ScatterND", {nd, cells, floats({10, 20})}, attrs({{"reduction", std::string("add")}}));
  EXPECT_EQ(acc[1][1].item<float>(), 35.0f);
}

// Pad's modes against a per-element source index written from the spec.
TEST_F(ShapeOpTest, PadModes) {
  at::Tensor x = at::arange(1, 7, at::kFloat).reshape({2, 3});
  auto check = [&](const std::string& mode, std::vector<int64_t> pads,
                   const std::function<int64_t(int64_t, int64_t)>& src) {
    at::Tensor y = run1("Pad", {x, ints(pads), at::scalar_tensor(9.0f)}, attrs({{"mode", mode}}));
    int64_t rows = 2 + pads[0] + pads[2];
    int64_t cols = 3 + pads[1] + pads[3];
    ASSERT_EQ(y.sizes(), at::IntArrayRef({rows, cols})) << mode;
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        int64_t r = src(i - pads[0], 2);
        int64_t c = src(j - pads[1], 3);
        float expected = (r < 0 || c < 0) ? 9.0f : x[r][c].item<float>();
        EXPECT_EQ(y[i][j].item<float>(), expected) << mode << " at " << i << "," << j;
      }
  };
  check("constant", {1, 2, 0, 1}, [](int64_t i, int64_t n) { return i >= 0 && i < n ? i : -1; });
  check("edge", {1, 2, 2, 1}, [](int64_t i, int64_t n) { return std::clamp<int64_t>(i, 0, n - 1); });
  check("reflect", {1, 2, 1, 2}, [](int64_t i, int64_t n) {
    while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
    return i;
  });
  check("wrap", {1, 3, 2, 1}, [](int64_t i, int64_t n) { return ((i % n) + n) % n; });
  check("constant", {0, -1, 0, 1}, [](int64_t i, int64_t n) { return i >= 0 && i < n ? i : -1; });
  // Opset 18 axes input: pad only the last axis.
  at::Tensor y = run1("Pad", {x, ints({1, 1}), at::Tensor(), ints({-1})});
  EXPECT_EQ(y.sizes(), at::IntArrayRef({2, 5}));
}

TEST_F(ShapeOpTest, ShapeSizeAndShapeMakers) {
  at::Tensor x = at::randn({2, 3, 4, 5});
  at::Tensor shape = run1("Shape", {x});
  EXPECT_TRUE(same(shape, ints({2, 3, 4, 5})));
  EXPECT_TRUE(shape.device().is_cpu());
  EXPECT_TRUE(same(run1("Shape", {x}, attrs({{"start", int64_t{1}}, {"end", int64_t{-1}}})), ints({3, 4})));
  EXPECT_TRUE(same(run1("Shape", {x}, attrs({{"start", int64_t{-10}}, {"end", int64_t{10}}})), ints({2, 3, 4, 5})));
  EXPECT_TRUE(same(run1("Size", {x}), at::scalar_tensor(120, at::kLong)));

  at::Tensor filled = run1("ConstantOfShape", {ints({2, 2})}, attrs({{"value", at::full({1}, 7, at::kInt)}}));
  EXPECT_TRUE(same(filled, at::full({2, 2}, 7, at::kInt)));
  EXPECT_TRUE(same(run1("ConstantOfShape", {ints({3})}), at::zeros({3})));

  EXPECT_TRUE(same(
      run1("Range", {at::scalar_tensor(10, at::kInt), at::scalar_tensor(4, at::kInt), at::scalar_tensor(-3, at::kInt)}),
      at::tensor({10, 7}, at::kInt)));
  EXPECT_TRUE(close(run1("Range", {at::scalar_tensor(1.0f), at::scalar_tensor(2.0f), at::scalar_tensor(0.25f)}),
                    floats({1.0f, 1.25f, 1.5f, 1.75f})));
  EXPECT_EQ(
      run1("Range", {at::scalar_tensor(5, at::kLong), at::scalar_tensor(1, at::kLong), at::scalar_tensor(1, at::kLong)})
          .numel(),
      0);

  at::Tensor small = at::randn({3, 1});
  at::Tensor expanded = run1("Expand", {small, ints({2, 1, 4})});
  ASSERT_EQ(expanded.sizes(), at::IntArrayRef({2, 3, 4}));
  EXPECT_TRUE(same(expanded[1].select(1, 3), small.select(1, 0)));
  at::Tensor tiled = run1("Tile", {small, ints({2, 3})});
  ASSERT_EQ(tiled.sizes(), at::IntArrayRef({6, 3}));
  for (int64_t i = 0; i < 6; ++i)
    for (int64_t j = 0; j < 3; ++j) EXPECT_EQ(tiled[i][j].item<float>(), small[i % 3][0].item<float>());
}

TEST_F(ShapeOpTest, TriluNonZeroOneHotCompress) {
  at::Tensor m = at::randn({2, 3, 4});
  at::Tensor upper = run1("Trilu", {m, at::scalar_tensor(1, at::kLong)});
  at::Tensor lower = run1("Trilu", {m, at::scalar_tensor(-1, at::kLong)}, attrs({{"upper", int64_t{0}}}));
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 4; ++j) {
        EXPECT_EQ(upper[b][i][j].item<float>(), j - i >= 1 ? m[b][i][j].item<float>() : 0.0f);
        EXPECT_EQ(lower[b][i][j].item<float>(), j - i <= -1 ? m[b][i][j].item<float>() : 0.0f);
      }

  at::Tensor x = make({0, 2, 3, 0}, {2, 2}, at::kInt);
  EXPECT_TRUE(same(run1("NonZero", {x}), make({0, 1, 1, 0}, {2, 2}, at::kLong)));

  at::Tensor hot = run1("OneHot", {ints({1, -1, 5}), at::scalar_tensor(3, at::kLong), floats({0.5f, 2.0f})},
                        attrs({{"axis", int64_t{0}}}));
  EXPECT_TRUE(same(hot, make({0.5, 0.5, 0.5, 2.0, 0.5, 0.5, 0.5, 2.0, 0.5}, {3, 3}, at::kFloat)));

  at::Tensor c = make({1, 2, 3, 4, 5, 6}, {3, 2}, at::kInt);
  at::Tensor keep = make({0, 1, 1}, {3}, at::kBool);
  EXPECT_TRUE(same(run1("Compress", {c, keep}, attrs({{"axis", int64_t{0}}})), make({3, 4, 5, 6}, {2, 2}, at::kInt)));
  EXPECT_TRUE(same(run1("Compress", {c, keep}), at::tensor({2, 3}, at::kInt)));
}

TEST_F(ShapeOpTest, CudaMatchesCpu) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device in this build or machine";
  OpOptions cuda;
  cuda.device = at::Device(at::kCUDA, 0);
  at::Tensor x = at::randn({2, 6, 5});
  at::Tensor gx = x.cuda().to(at::kHalf);
  auto check = [&](const std::string& op, std::vector<at::Tensor> params, rt::Attributes a = {}) {
    std::vector<at::Tensor> cpu_in{x};
    std::vector<at::Tensor> gpu_in{gx};
    cpu_in.insert(cpu_in.end(), params.begin(), params.end());
    gpu_in.insert(gpu_in.end(), params.begin(), params.end());  // parameters stay on the host
    cuda.attributes = a;
    at::Tensor gpu = run_op(op, gpu_in, cuda).at(0);
    EXPECT_EQ(gpu.device().type(), at::kCUDA) << op;
    EXPECT_TRUE(close(gpu, run1(op, cpu_in, a), 1e-2, 1e-2)) << op;
  };
  check("Reshape", {ints({0, -1})});
  check("Slice", {ints({4}), ints({0}), ints({1}), ints({-2})});
  check("Gather", {ints({1, -1})}, attrs({{"axis", int64_t{1}}}));
  check("Pad", {ints({0, 1, 2, 0, 1, 2}), at::scalar_tensor(1.5f)});
  check("Pad", {ints({0, 1, 2, 0, 1, 2})}, attrs({{"mode", std::string("reflect")}}));
  check("Expand", {ints({3, 1, 1, 1})});
  check("Tile", {ints({1, 2, 1})});
  check("Trilu", {});
  at::Tensor shape = run_op("Shape", {gx}, cuda).at(0);
  EXPECT_TRUE(shape.device().is_cpu());
}

}  // namespace
}  // namespace visage::test
