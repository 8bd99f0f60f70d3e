// Reductions, ArgMax/ArgMin and CumSum against loops in double.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "op_test_util.hpp"

namespace visage::test {
namespace {

class ReduceOpTest : public ::testing::Test {
 protected:
  void SetUp() override { at::manual_seed(2024); }
};

// Reduces a [2, 3, 4] tensor over axes {0, 2} with a fold in double.
at::Tensor reduce_0_2(const at::Tensor& x, double init, const std::function<double(double, double)>& fold,
                      const std::function<double(double)>& finish) {
  at::Tensor xd = x.to(at::kDouble);
  at::Tensor result = at::empty({1, 3, 1}, at::kDouble);
  for (int64_t j = 0; j < 3; ++j) {
    double acc = init;
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t k = 0; k < 4; ++k) acc = fold(acc, xd[i][j][k].item<double>());
    result[0][j][0] = finish(acc);
  }
  return result;
}

TEST_F(ReduceOpTest, EveryReductionOverTwoAxes) {
  at::Tensor x = at::rand({2, 3, 4}) + 0.5;
  at::Tensor axes = ints({0, -1});
  auto id = [](double v) { return v; };
  struct Case {
    const char* op;
    double init;
    std::function<double(double, double)> fold;
    std::function<double(double)> finish;
  };
  const double inf = std::numeric_limits<double>::infinity();
  const Case cases[] = {
      {"ReduceSum", 0, std::plus<>(), id},
      {"ReduceMean", 0, std::plus<>(), [](double v) { return v / 8; }},
      {"ReduceMax", -inf, [](double a, double v) { return std::max(a, v); }, id},
      {"ReduceMin", inf, [](double a, double v) { return std::min(a, v); }, id},
      {"ReduceProd", 1, std::multiplies<>(), id},
      {"ReduceL1", 0, [](double a, double v) { return a + std::fabs(v); }, id},
      {"ReduceL2", 0, [](double a, double v) { return a + v * v; }, [](double v) { return std::sqrt(v); }},
      {"ReduceLogSum", 0, std::plus<>(), [](double v) { return std::log(v); }},
      {"ReduceLogSumExp", 0, [](double a, double v) { return a + std::exp(v); }, [](double v) { return std::log(v); }},
      {"ReduceSumSquare", 0, [](double a, double v) { return a + v * v; }, id},
  };
  for (const auto& c : cases) {
    at::Tensor expected = reduce_0_2(x, c.init, c.fold, c.finish);
    EXPECT_TRUE(close(run1(c.op, {x, axes}), expected, 1e-5)) << c.op;
    EXPECT_TRUE(close(run1(c.op, {x, axes}, attrs({{"keepdims", int64_t{0}}})), expected.reshape({3}), 1e-5)) << c.op;
    // Older graphs carry the axes as an attribute.
    EXPECT_TRUE(close(run1(c.op, {x}, attrs({{"axes", std::vector<int64_t>{0, 2}}})), expected, 1e-5)) << c.op;
  }
}

TEST_F(ReduceOpTest, EmptyAxesReduceAllOrNothing) {
  at::Tensor x = at::randn({3, 4});
  at::Tensor all = run1("ReduceSum", {x, ints({})});
  EXPECT_EQ(all.sizes(), at::IntArrayRef({1, 1}));
  EXPECT_NEAR(all.item<float>(), x.to(at::kDouble).sum().item<double>(), 1e-5);
  EXPECT_TRUE(run1("ReduceSum", {x, ints({})}, attrs({{"noop_with_empty_axes", int64_t{1}}})).is_same(x));
  EXPECT_EQ(run1("ReduceMax", {x}, attrs({{"keepdims", int64_t{0}}})).dim(), 0);
}

TEST_F(ReduceOpTest, IntegerSumsKeepTheirType) {
  at::Tensor x = make({1, 2, 3, 4, 5, 6}, {2, 3}, at::kInt);
  EXPECT_TRUE(
      same(run1("ReduceSum", {x, ints({1})}, attrs({{"keepdims", int64_t{0}}})), at::tensor({6, 15}, at::kInt)));
  EXPECT_TRUE(same(run1("ReduceProd", {x, ints({0})}), make({4, 10, 18}, {1, 3}, at::kInt)));
}

TEST_F(ReduceOpTest, ArgMaxArgMinWithTies) {
  at::Tensor x = make({1.0, 3.0, 3.0, 0.0, 2.0, 2.0, -1.0, -1.0}, {2, 4}, at::kFloat);
  EXPECT_TRUE(same(run1("ArgMax", {x}, attrs({{"axis", int64_t{1}}})), make({1, 0}, {2, 1}, at::kLong)));
  EXPECT_TRUE(same(run1("ArgMax", {x}, attrs({{"axis", int64_t{1}}, {"select_last_index", int64_t{1}}})),
                   make({2, 1}, {2, 1}, at::kLong)));
  EXPECT_TRUE(same(run1("ArgMin", {x}, attrs({{"axis", int64_t{-1}}, {"keepdims", int64_t{0}}})),
                   at::tensor({3, 2}, at::kLong)));
  EXPECT_TRUE(same(
      run1("ArgMin", {x}, attrs({{"axis", int64_t{1}}, {"keepdims", int64_t{0}}, {"select_last_index", int64_t{1}}})),
      at::tensor({3, 3}, at::kLong)));
}

TEST_F(ReduceOpTest, CumSumExclusiveAndReverse) {
  at::Tensor x = at::randn({3, 5});
  for (int64_t exclusive : {0, 1})
    for (int64_t reverse : {0, 1}) {
      at::Tensor y =
          run1("CumSum", {x, at::scalar_tensor(1, at::kLong)}, attrs({{"exclusive", exclusive}, {"reverse", reverse}}));
      at::Tensor expected = at::zeros({3, 5}, at::kDouble);
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t j = 0; j < 5; ++j) {
          double acc = 0;
          for (int64_t k = 0; k < 5; ++k) {
            bool before = reverse ? k > j : k < j;
            if (before || (!exclusive && k == j)) acc += x[i][k].item<double>();
          }
          expected[i][j] = acc;
        }
      EXPECT_TRUE(close(y, expected, 1e-5, 1e-5)) << "exclusive=" << exclusive << " reverse=" << reverse;
    }
  at::Tensor ints_in = at::tensor({1, 2, 3}, at::kInt);
  EXPECT_TRUE(same(run1("CumSum", {ints_in, ints({0})}), at::tensor({1, 3, 6}, at::kInt)));
}

TEST_F(ReduceOpTest, CudaHalfMatchesCpu) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device in this build or machine";
  at::Tensor x = at::rand({4, 6, 5}) * 30;  // squares beyond half's range would overflow without float accumulation
  OpOptions cuda;
  cuda.device = at::Device(at::kCUDA, 0);
  for (const char* op : {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp"}) {
    at::Tensor gpu = run_op(op, {x.cuda().to(at::kHalf), ints({1, 2})}, cuda).at(0);
    EXPECT_EQ(gpu.scalar_type(), at::kHalf) << op;
    EXPECT_TRUE(close(gpu, run1(op, {x, ints({1, 2})}), 1e-2, 1e-2)) << op;
  }
  at::Tensor arg = run_op("ArgMax", {x.cuda()}, cuda).at(0);
  EXPECT_TRUE(same(arg, run1("ArgMax", {x})));
}

}  // namespace
}  // namespace visage::test
