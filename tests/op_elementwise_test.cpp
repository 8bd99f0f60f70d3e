// Elementwise operators against per-element computations in double with the
// C++ standard library (fixed seeds, random tensors).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>

#include "op_test_util.hpp"

namespace visage::test {
namespace {

// The broadcast result of fn applied per element, computed in double with a
// plain loop over the output's elements.
at::Tensor broadcast_reference(const at::Tensor& a, const at::Tensor& b,
                               const std::function<double(double, double)>& fn, at::ScalarType dtype) {
  std::vector<int64_t> shape = at::infer_size(a.sizes(), b.sizes());
  at::Tensor ea = a.to(at::kDouble).expand(shape).contiguous();
  at::Tensor eb = b.to(at::kDouble).expand(shape).contiguous();
  at::Tensor result = at::empty(shape, at::kDouble);
  const double* pa = ea.data_ptr<double>();
  const double* pb = eb.data_ptr<double>();
  double* pr = result.data_ptr<double>();
  for (int64_t i = 0; i < result.numel(); ++i) pr[i] = fn(pa[i], pb[i]);
  return result.to(dtype);
}

at::Tensor unary_reference(const at::Tensor& x, const std::function<double(double)>& fn) {
  at::Tensor xd = x.to(at::kDouble).contiguous();
  at::Tensor result = at::empty_like(xd);
  for (int64_t i = 0; i < xd.numel(); ++i) result.data_ptr<double>()[i] = fn(xd.data_ptr<double>()[i]);
  return result.to(x.scalar_type());
}

class ElementwiseTest : public ::testing::Test {
 protected:
  void SetUp() override { at::manual_seed(1234); }
};

TEST_F(ElementwiseTest, ArithmeticBroadcastsLikeNumpy) {
  at::Tensor a = at::randn({2, 3, 4});
  at::Tensor b = at::randn({3, 1}).abs() + 0.5;
  EXPECT_TRUE(close(run1("Add", {a, b}), broadcast_reference(a, b, std::plus<>(), at::kFloat)));
  EXPECT_TRUE(close(run1("Sub", {a, b}), broadcast_reference(a, b, std::minus<>(), at::kFloat)));
  EXPECT_TRUE(close(run1("Mul", {a, b}), broadcast_reference(a, b, std::multiplies<>(), at::kFloat)));
  EXPECT_TRUE(close(run1("Div", {a, b}), broadcast_reference(a, b, std::divides<>(), at::kFloat)));
  at::Tensor base = a.abs() + 0.1;
  EXPECT_TRUE(close(run1("Pow", {base, b}),
                    broadcast_reference(
                        base, b, [](double x, double y) { return std::pow(x, y); }, at::kFloat),
                    1e-5));
}

TEST_F(ElementwiseTest, IntegerDivisionTruncatesAndModFollowsDivisorSign) {
  at::Tensor a = at::tensor({-7, 7, -7, 7, 6}, at::kInt);
  at::Tensor b = at::tensor({2, 2, -2, -2, 3}, at::kInt);
  EXPECT_TRUE(same(run1("Div", {a, b}), at::tensor({-3, 3, 3, -3, 2}, at::kInt)));
  EXPECT_TRUE(same(run1("Mod", {a, b}), at::tensor({1, 1, -1, -1, 0}, at::kInt)));
  EXPECT_TRUE(same(run1("Mod", {a, b}, attrs({{"fmod", int64_t{1}}})), at::tensor({-1, 1, -1, 1, 0}, at::kInt)));
  at::Tensor fa = at::randn({50}) * 10;
  at::Tensor fb = at::randn({50}) * 3;
  EXPECT_TRUE(close(run1("Mod", {fa, fb}, attrs({{"fmod", int64_t{1}}})),
                    broadcast_reference(
                        fa, fb, [](double x, double y) { return std::fmod(x, y); }, at::kFloat),
                    1e-5, 1e-5));
}

TEST_F(ElementwiseTest, PowKeepsTheBaseType) {
  at::Tensor base = at::tensor({1, 2, 3, 4}, at::kInt);
  at::Tensor exponent = floats({2.0f, 0.5f, 2.0f, 1.5f});
  at::Tensor result = run1("Pow", {base, exponent});
  EXPECT_TRUE(same(result, at::tensor({1, 1, 9, 8}, at::kInt)));
}

TEST_F(ElementwiseTest, VariadicMaxMinSumMean) {
  at::Tensor a = at::randn({4, 1});
  at::Tensor b = at::randn({1, 5});
  at::Tensor c = at::randn({5});
  auto fold = [&](const std::function<double(double, double)>& fn) {
    return broadcast_reference(broadcast_reference(a, b, fn, at::kDouble), c, fn, at::kFloat);
  };
  EXPECT_TRUE(close(run1("Max", {a, b, c}), fold([](double x, double y) { return std::max(x, y); })));
  EXPECT_TRUE(close(run1("Min", {a, b, c}), fold([](double x, double y) { return std::min(x, y); })));
  EXPECT_TRUE(close(run1("Sum", {a, b, c}), fold(std::plus<>())));
  EXPECT_TRUE(close(run1("Mean", {a, b, c}), fold(std::plus<>()) / 3));
  EXPECT_TRUE(same(run1("Max", {a}), a));
}

TEST_F(ElementwiseTest, UnaryMathMatchesTheStandardLibrary) {
  at::Tensor x = at::rand({64}) * 1.8 - 0.9;  // inside (-1, 1) for the inverse functions
  at::Tensor positive = x.abs() + 0.05;
  at::Tensor at_least_one = positive + 1;
  struct Case {
    const char* op;
    at::Tensor input;
    double (*fn)(double);
  };
  const Case cases[] = {
      {"Exp", x, [](double v) { return std::exp(v); }},
      {"Log", positive, [](double v) { return std::log(v); }},
      {"Sqrt", positive, [](double v) { return std::sqrt(v); }},
      {"Reciprocal", positive, [](double v) { return 1 / v; }},
      {"Erf", x, [](double v) { return std::erf(v); }},
      {"Sin", x, [](double v) { return std::sin(v); }},
      {"Cos", x, [](double v) { return std::cos(v); }},
      {"Tan", x, [](double v) { return std::tan(v); }},
      {"Asin", x, [](double v) { return std::asin(v); }},
      {"Acos", x, [](double v) { return std::acos(v); }},
      {"Atan", x, [](double v) { return std::atan(v); }},
      {"Sinh", x, [](double v) { return std::sinh(v); }},
      {"Cosh", x, [](double v) { return std::cosh(v); }},
      {"Asinh", x, [](double v) { return std::asinh(v); }},
      {"Acosh", at_least_one, [](double v) { return std::acosh(v); }},
      {"Atanh", x, [](double v) { return std::atanh(v); }},
      {"Neg", x, [](double v) { return -v; }},
      {"Abs", x, [](double v) { return std::fabs(v); }},
      {"Floor", x * 5, [](double v) { return std::floor(v); }},
      {"Ceil", x * 5, [](double v) { return std::ceil(v); }},
      {"Sign", x, [](double v) { return static_cast<double>((v > 0) - (v < 0)); }},
  };
  for (const auto& c : cases) EXPECT_TRUE(close(run1(c.op, {c.input}), unary_reference(c.input, c.fn), 1e-5)) << c.op;
}

TEST_F(ElementwiseTest, RoundHalvesToEven) {
  at::Tensor x = floats({0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 2.4f, 2.6f});
  EXPECT_TRUE(same(run1("Round", {x}), unary_reference(x, [](double v) { return std::nearbyint(v); })));
}

TEST_F(ElementwiseTest, ComparisonsAndLogic) {
  at::Tensor a = at::randint(0, 4, {3, 4});
  at::Tensor b = at::randint(0, 4, {4});
  auto cmp = [&](const char* op, const std::function<double(double, double)>& fn) {
    EXPECT_TRUE(same(run1(op, {a, b}), broadcast_reference(a, b, fn, at::kBool))) << op;
  };
  cmp("Equal", [](double x, double y) { return x == y; });
  cmp("Less", [](double x, double y) { return x < y; });
  cmp("LessOrEqual", [](double x, double y) { return x <= y; });
  cmp("Greater", [](double x, double y) { return x > y; });
  cmp("GreaterOrEqual", [](double x, double y) { return x >= y; });
  at::Tensor p = at::rand({3, 4}) > 0.5;
  at::Tensor q = at::rand({4}) > 0.5;
  EXPECT_TRUE(same(run1("And", {p, q}), broadcast_reference(
                                            p, q, [](double x, double y) { return x && y; }, at::kBool)));
  EXPECT_TRUE(same(run1("Or", {p, q}), broadcast_reference(
                                           p, q, [](double x, double y) { return x || y; }, at::kBool)));
  EXPECT_TRUE(same(run1("Xor", {p, q}), broadcast_reference(
                                            p, q, [](double x, double y) { return x != y; }, at::kBool)));
  EXPECT_TRUE(same(run1("Not", {p}), unary_reference(p, [](double x) { return x == 0 ? 1.0 : 0.0; })));
}

TEST_F(ElementwiseTest, WhereBroadcastsAllThree) {
  at::Tensor condition = at::rand({2, 1, 4}) > 0.5;
  at::Tensor x = at::randn({3, 1});
  at::Tensor y = at::randn({4});
  at::Tensor result = run1("Where", {condition, x, y});
  ASSERT_EQ(result.sizes(), at::IntArrayRef({2, 3, 4}));
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t k = 0; k < 4; ++k) {
        float expected = condition[i][0][k].item<bool>() ? x[j][0].item<float>() : y[k].item<float>();
        EXPECT_EQ(result[i][j][k].item<float>(), expected);
      }
}

TEST_F(ElementwiseTest, IsInfHonoursItsDirectionFlagsAndIsNaN) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  at::Tensor x = floats({inf, -inf, 1.0f, nan});
  auto flags = [](std::vector<bool> v) {
    at::Tensor t = at::empty({static_cast<int64_t>(v.size())}, at::kBool);
    for (size_t i = 0; i < v.size(); ++i) t[static_cast<int64_t>(i)] = static_cast<bool>(v[i]);
    return t;
  };
  EXPECT_TRUE(same(run1("IsInf", {x}), flags({true, true, false, false})));
  EXPECT_TRUE(same(run1("IsInf", {x}, attrs({{"detect_negative", int64_t{0}}})), flags({true, false, false, false})));
  EXPECT_TRUE(same(run1("IsInf", {x}, attrs({{"detect_positive", int64_t{0}}})), flags({false, true, false, false})));
  EXPECT_TRUE(same(run1("IsNaN", {x}), flags({false, false, false, true})));
}

TEST_F(ElementwiseTest, BitOperations) {
  at::Tensor a = at::tensor({16, 4, 1, 255}, at::kByte);
  at::Tensor s = at::tensor({1, 2, 3, 4}, at::kByte);
  EXPECT_TRUE(same(run1("BitShift", {a, s}, attrs({{"direction", std::string("RIGHT")}})),
                   at::tensor({8, 1, 0, 15}, at::kByte)));
  EXPECT_TRUE(same(run1("BitShift", {a, s}, attrs({{"direction", std::string("LEFT")}})),
                   at::tensor({32, 16, 8, 240}, at::kByte)));
  at::Tensor x = at::tensor({12, -3, 7}, at::kInt);
  at::Tensor y = at::tensor({10, 5, -1}, at::kInt);
  EXPECT_TRUE(same(run1("BitwiseAnd", {x, y}), at::tensor({12 & 10, -3 & 5, 7 & -1}, at::kInt)));
  EXPECT_TRUE(same(run1("BitwiseOr", {x, y}), at::tensor({12 | 10, -3 | 5, 7 | -1}, at::kInt)));
  EXPECT_TRUE(same(run1("BitwiseXor", {x, y}), at::tensor({12 ^ 10, -3 ^ 5, 7 ^ -1}, at::kInt)));
  EXPECT_TRUE(same(run1("BitwiseNot", {x}), at::tensor({~12, ~-3, ~7}, at::kInt)));
}

TEST_F(ElementwiseTest, WritesIntoThePreviousOutputWhenItFits) {
  at::Tensor a = at::randn({8, 8});
  at::Tensor b = at::randn({8});
  OpOptions options;
  options.previous = {at::empty({8, 8})};
  void* buffer = options.previous[0].data_ptr();
  at::Tensor result = run_op("Add", {a, b}, options).at(0);
  EXPECT_EQ(result.data_ptr(), buffer);
  EXPECT_TRUE(close(result, broadcast_reference(a, b, std::plus<>(), at::kFloat)));

  options.previous = {at::empty({4, 8})};  // wrong shape: a new tensor
  buffer = options.previous[0].data_ptr();
  result = run_op("Exp", {a}, options).at(0);
  EXPECT_NE(result.data_ptr(), buffer);
  EXPECT_TRUE(close(result, unary_reference(a, [](double v) { return std::exp(v); })));

  options.previous = {a};  // never write into an input
  at::Tensor a_before = a.clone();
  result = run_op("Mul", {a, b}, options).at(0);
  EXPECT_TRUE(same(a, a_before));
  EXPECT_NE(result.data_ptr(), a.data_ptr());
}

TEST_F(ElementwiseTest, HalfMeetsFloatInHalf) {
  // An fp16 model's data meets float values computed on the host: the
  // result stays half.
  at::Tensor data = at::randn({6}).to(at::kHalf);
  at::Tensor host = at::randn({6});
  at::Tensor result = run1("Add", {data, host});
  EXPECT_EQ(result.scalar_type(), at::kHalf);
  EXPECT_TRUE(close(result, data.to(at::kFloat) + host.to(at::kHalf).to(at::kFloat), 1e-3, 1e-3));
  at::Tensor scalar = at::scalar_tensor(2.0, at::kFloat);
  EXPECT_EQ(run1("Mul", {data, scalar}).scalar_type(), at::kHalf);
  EXPECT_EQ(run1("Exp", {data}).scalar_type(), at::kHalf);
}

TEST_F(ElementwiseTest, CudaMatchesCpu) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device in this build or machine";
  at::Tensor a = at::randn({3, 5});
  at::Tensor b = at::randn({5}).abs() + 0.5;
  at::Tensor cond = at::rand({3, 5}) > 0.5;
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Less", "Equal"}) {
    at::Tensor x = std::string(op) == "Pow" ? a.abs() : a;
    at::Tensor cpu = run1(op, {x, b});
    OpOptions options;
    options.device = at::Device(at::kCUDA, 0);
    // b stays on the host like a shape-derived value would.
    at::Tensor gpu = run_op(op, {x.cuda().to(at::kHalf), b}, options).at(0);
    EXPECT_EQ(gpu.device().type(), at::kCUDA) << op;
    EXPECT_TRUE(close(gpu, cpu, 1e-2, 1e-2)) << op;
  }
  at::Tensor cpu_where = run1("Where", {cond, a, b});
  at::Tensor gpu_where = run1("Where", {cond, a.cuda(), b});
  EXPECT_TRUE(close(gpu_where, cpu_where));
  for (const char* op : {"Exp", "Erf", "Sqrt", "Round", "Abs"}) {
    at::Tensor x = a.abs();
    EXPECT_TRUE(close(run1(op, {x.cuda().to(at::kHalf)}), run1(op, {x}), 1e-2, 1e-2)) << op;
  }
}

}  // namespace
}  // namespace visage::test
