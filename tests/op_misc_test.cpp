// Cast, Constant, Dropout, TopK, NonMaxSuppression and Einsum.
#include <gtest/gtest.h>

#include "op_test_util.hpp"
#include "visage/error.hpp"

namespace visage::test {
namespace {

TEST(MiscOpTest, CastTruncatesTowardZeroAndMapsOnnxCodes) {
  at::Tensor x = floats({-2.7f, -0.5f, 0.0f, 1.5f, 3.9f});
  EXPECT_TRUE(same(run1("Cast", {x}, attrs({{"to", int64_t{6}}})), at::tensor({-2, 0, 0, 1, 3}, at::kInt)));
  EXPECT_TRUE(same(run1("Cast", {x}, attrs({{"to", int64_t{9}}})), make({1, 1, 0, 1, 1}, {5}, at::kBool)));
  EXPECT_EQ(run1("Cast", {x}, attrs({{"to", int64_t{10}}})).scalar_type(), at::kHalf);
  EXPECT_EQ(run1("Cast", {x}, attrs({{"to", int64_t{11}}})).scalar_type(), at::kDouble);
  EXPECT_EQ(run1("Cast", {x}, attrs({{"to", int64_t{2}}})).scalar_type(), at::kByte);
  EXPECT_TRUE(same(run1("CastLike", {x, at::zeros({1}, at::kLong)}), at::tensor({-2, 0, 0, 1, 3}, at::kLong)));
  try {
    run1("Cast", {x}, attrs({{"to", int64_t{8}}}));  // string
    FAIL() << "expected an unsupported error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::unsupported);
  }
}

TEST(MiscOpTest, ConstantForms) {
  EXPECT_TRUE(same(run1("Constant", {}, attrs({{"value_ints", std::vector<int64_t>{1, 2}}})), ints({1, 2})));
  EXPECT_TRUE(same(run1("Constant", {}, attrs({{"value_float", 2.5}})), at::scalar_tensor(2.5f)));
  EXPECT_TRUE(same(run1("Constant", {}, attrs({{"value_int", int64_t{4}}})), at::scalar_tensor(4, at::kLong)));
  EXPECT_TRUE(
      same(run1("Constant", {}, attrs({{"value_floats", std::vector<double>{0.5, 1.5}}})), floats({0.5f, 1.5f})));
  at::Tensor value = at::randn({2, 2});
  EXPECT_TRUE(same(run1("Constant", {}, attrs({{"value", value}})), value));
}

TEST(MiscOpTest, DropoutIsIdentityAtInference) {
  at::Tensor x = at::randn({3, 4});
  OpOptions options;
  options.outputs = 2;
  auto outputs = run_op("Dropout", {x, at::scalar_tensor(0.3f)}, options);
  EXPECT_TRUE(outputs[0].is_same(x));
  EXPECT_TRUE(same(outputs[1], at::ones({3, 4}, at::kBool)));
  EXPECT_THROW(run_op("Dropout", {x, at::scalar_tensor(0.3f), at::scalar_tensor(true)}, options), Error);
}

TEST(MiscOpTest, TopKKeepsLowerIndexFirstOnTies) {
  at::Tensor x = make({3.0, 1.0, 3.0, 2.0, 1.0}, {1, 5}, at::kFloat);
  OpOptions options;
  options.outputs = 2;
  auto largest = run_op("TopK", {x, ints({3})}, options);
  EXPECT_TRUE(same(largest[0], make({3.0, 3.0, 2.0}, {1, 3}, at::kFloat)));
  EXPECT_TRUE(same(largest[1], make({0, 2, 3}, {1, 3}, at::kLong)));
  options.attributes = attrs({{"largest", int64_t{0}}, {"axis", int64_t{1}}});
  auto smallest = run_op("TopK", {x, ints({2})}, options);
  EXPECT_TRUE(same(smallest[0], make({1.0, 1.0}, {1, 2}, at::kFloat)));
  EXPECT_TRUE(same(smallest[1], make({1, 4}, {1, 2}, at::kLong)));

  // Random data: the values are the k largest, in order, and the indices point at them.
  at::manual_seed(5);
  at::Tensor r = at::randn({4, 50});
  OpOptions two;
  two.outputs = 2;
  auto result = run_op("TopK", {r, ints({7})}, two);
  for (int64_t row = 0; row < 4; ++row) {
    std::vector<float> values(r[row].data_ptr<float>(), r[row].data_ptr<float>() + 50);
    std::sort(values.rbegin(), values.rend());
    for (int64_t k = 0; k < 7; ++k) {
      EXPECT_EQ(result[0][row][k].item<float>(), values[static_cast<size_t>(k)]);
      EXPECT_EQ(r[row][result[1][row][k].item<int64_t>()].item<float>(), values[static_cast<size_t>(k)]);
    }
  }
}

TEST(MiscOpTest, NonMaxSuppressionSelectsPerClass) {
  // Two heavily overlapping boxes and one apart, [y1, x1, y2, x2] with one flipped.
  at::Tensor boxes = make({0.0, 0.0, 1.0, 1.0, 1.0, 1.1, 0.0, 0.1, 0.0, 10.0, 1.0, 11.0}, {1, 3, 4}, at::kFloat);
  at::Tensor scores = make({0.9, 0.95, 0.3, 0.1, 0.2, 0.8}, {1, 2, 3}, at::kFloat);
  at::Tensor selected = run1("NonMaxSuppression", {boxes, scores, ints({2}), floats({0.5f}), floats({0.15f})});
  EXPECT_TRUE(same(selected, make({0, 0, 1, 0, 0, 2, 0, 1, 2, 0, 1, 1}, {4, 3}, at::kLong)));
  at::Tensor none = run1("NonMaxSuppression", {boxes, scores});
  EXPECT_EQ(none.sizes(), at::IntArrayRef({0, 3}));
  // Center-point boxes: [x_center, y_center, width, height].
  at::Tensor centers = make({0.5, 0.5, 1.0, 1.0, 0.5, 0.6, 1.0, 1.0}, {1, 2, 4}, at::kFloat);
  at::Tensor one_class = make({0.5, 0.6}, {1, 1, 2}, at::kFloat);
  at::Tensor picked = run_op("NonMaxSuppression", {centers, one_class, ints({5}), floats({0.5f})},
                             OpOptions{attrs({{"center_point_box", int64_t{1}}})})
                          .at(0);
  EXPECT_TRUE(same(picked, make({0, 0, 1}, {1, 3}, at::kLong)));
}

TEST(MiscOpTest, EinsumMatchesLoops) {
  at::manual_seed(9);
  at::Tensor a = at::randn({2, 3, 4});
  at::Tensor b = at::randn({2, 4, 5});
  at::Tensor y = run1("Einsum", {a, b}, attrs({{"equation", std::string("bij,bjk->bik")}}));
  at::Tensor expected = at::zeros({2, 3, 5}, at::kDouble);
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t k = 0; k < 5; ++k)
        for (int64_t j = 0; j < 4; ++j) expected[n][i][k] += a[n][i][j].item<double>() * b[n][j][k].item<double>();
  EXPECT_TRUE(close(y, expected, 1e-5, 1e-5));
}

TEST(MiscOpTest, CudaCastKeepsFp16ModelsInHalf) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device in this build or machine";
  OpOptions options;
  options.device = at::Device(at::kCUDA, 0);
  options.fp16 = true;
  options.attributes = attrs({{"to", int64_t{1}}});
  at::Tensor device_value = at::randn({4}).cuda().to(at::kHalf);
  EXPECT_EQ(run_op("Cast", {device_value.to(at::kInt)}, options).at(0).scalar_type(), at::kHalf);
  EXPECT_EQ(run_op("Cast", {ints({1, 2})}, options).at(0).scalar_type(), at::kFloat);  // host shape values stay float
  options.attributes = attrs({{"value_floats", std::vector<double>{1.0, 2.0}}});
  at::Tensor constant = run_op("Constant", {}, options).at(0);
  EXPECT_TRUE(constant.is_cuda());
  EXPECT_EQ(constant.scalar_type(), at::kHalf);
  options.attributes = {};
  options.outputs = 2;
  auto top = run_op("TopK", {device_value, ints({2})}, options);
  EXPECT_TRUE(top[0].is_cuda());
  EXPECT_TRUE(
      close(top[0], std::get<0>(at::sort(device_value.to(at::kFloat).cpu(), -1, true)).narrow(0, 0, 2), 1e-3, 1e-3));
}

}  // namespace
}  // namespace visage::test
