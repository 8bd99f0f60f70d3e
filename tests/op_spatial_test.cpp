// Spatial kernels beyond what ONNX's own cases cover: the NHWC "layout"
// extension (must equal the NCHW kernel on permuted data), the fused
// "activation" attribute, and Resize's general path against ATen's fast path.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "op_test_util.hpp"

using visage::test::attrs;
using visage::test::run1;
using visage::test::run_op;

namespace {

at::Tensor to_nhwc(const at::Tensor& x) { return x.permute({0, 2, 3, 1}).contiguous(); }
at::Tensor to_nchw(const at::Tensor& x) { return x.permute({0, 3, 1, 2}); }

void expect_close(const at::Tensor& a, const at::Tensor& b, double tol = 1e-5) {
  ASSERT_EQ(a.sizes(), b.sizes());
  EXPECT_TRUE(at::allclose(a, b, tol, tol)) << "max diff " << (a - b).abs().max().item<double>();
}

}  // namespace

TEST(SpatialOps, ConvNhwcMatchesNchwWithSameUpperPads) {
  at::manual_seed(1);
  at::Tensor x = at::randn({2, 3, 9, 8}), w = at::randn({4, 3, 3, 3}), b = at::randn({4});
  auto a = attrs({{"auto_pad", std::string("SAME_UPPER")}, {"strides", std::vector<int64_t>{2, 2}}});
  at::Tensor nchw = run1("Conv", {x, w, b}, a);
  EXPECT_EQ(nchw.sizes(), (std::vector<int64_t>{2, 4, 5, 4}));
  a.set("layout", std::string("NHWC"));
  at::Tensor nhwc = run1("Conv", {to_nhwc(x), w, b}, a);
  expect_close(to_nchw(nhwc), nchw);
}

TEST(SpatialOps, ConvAsymmetricPadsEqualExplicitPadding) {
  at::manual_seed(2);
  at::Tensor x = at::randn({1, 2, 6, 7}), w = at::randn({3, 2, 3, 3});
  at::Tensor got = run1("Conv", {x, w}, attrs({{"pads", std::vector<int64_t>{0, 1, 2, 0}}}));
  at::Tensor expected = at::conv2d(at::constant_pad_nd(x, {1, 0, 0, 2}), w);
  expect_close(got, expected);
}

TEST(SpatialOps, FusedActivationsOnConvAndGemm) {
  at::manual_seed(3);
  at::Tensor x = at::randn({1, 2, 5, 5}), w = at::randn({3, 2, 3, 3}), b = at::randn({3});
  at::Tensor plain = at::conv2d(x, w, b);
  expect_close(run1("Conv", {x, w, b}, attrs({{"activation", std::string("Relu")}})), at::relu(plain));
  expect_close(run1("Conv", {x, w, b},
                    attrs({{"activation", std::string("Clip")}, {"activation_min", 0.0}, {"activation_max", 0.5}})),
               at::clamp(plain, 0.0, 0.5));
  // PRelu: the slope is the last input, with and without a bias.
  at::Tensor slope = at::rand({3, 1, 1});
  expect_close(run1("Conv", {x, w, b, slope}, attrs({{"activation", std::string("PRelu")}})),
               at::where(plain >= 0, plain, plain * slope));
  at::Tensor no_bias = at::conv2d(x, w);
  expect_close(run1("Conv", {x, w, at::Tensor(), slope}, attrs({{"activation", std::string("PRelu")}})),
               at::where(no_bias >= 0, no_bias, no_bias * slope));

  at::Tensor a = at::randn({4, 6}), bm = at::randn({5, 6}), c = at::randn({5});
  at::Tensor gemm = at::addmm(c, a, bm.t());
  expect_close(
      run1("Gemm", {a, bm, c},
           attrs({{"transB", int64_t{1}}, {"activation", std::string("LeakyRelu")}, {"activation_alpha", 0.2}})),
      at::leaky_relu(gemm, 0.2));
  expect_close(run1("MatMul", {a, bm.t()}, attrs({{"activation", std::string("Sigmoid")}})),
               at::sigmoid(at::matmul(a, bm.t())));
}

TEST(SpatialOps, PoolsNhwcMatchNchw) {
  at::manual_seed(4);
  at::Tensor x = at::randn({1, 3, 7, 6});
  for (const char* op : {"MaxPool", "AveragePool"}) {
    auto a = attrs({{"kernel_shape", std::vector<int64_t>{3, 3}},
                    {"strides", std::vector<int64_t>{2, 2}},
                    {"pads", std::vector<int64_t>{1, 0, 0, 1}}});
    at::Tensor nchw = run1(op, {x}, a);
    a.set("layout", std::string("NHWC"));
    expect_close(to_nchw(run1(op, {to_nhwc(x)}, a)), nchw);
  }
  at::Tensor g = run1("GlobalAveragePool", {to_nhwc(x)}, attrs({{"layout", std::string("NHWC")}}));
  expect_close(to_nchw(g), x.mean({2, 3}, true));
}

TEST(SpatialOps, BatchNormNhwcMatchesNchw) {
  at::manual_seed(5);
  at::Tensor x = at::randn({2, 4, 3, 3}), s = at::rand({4}), b = at::randn({4}), m = at::randn({4}),
             v = at::rand({4}) + 0.5;
  at::Tensor nchw = run1("BatchNormalization", {x, s, b, m, v});
  at::Tensor nhwc = run1("BatchNormalization", {to_nhwc(x), s, b, m, v}, attrs({{"layout", std::string("NHWC")}}));
  expect_close(to_nchw(nhwc), nchw);
}

TEST(SpatialOps, ResizeNhwcTakesSpatialOrFullSizes) {
  at::manual_seed(6);
  at::Tensor x = at::randn({1, 3, 4, 5});
  auto a = attrs({{"mode", std::string("linear")}});
  at::Tensor nchw = run1("Resize", {x, at::Tensor(), at::Tensor(), at::tensor({1, 3, 8, 10}, at::kLong)}, a);
  a.set("layout", std::string("NHWC"));
  at::Tensor full = run1("Resize", {to_nhwc(x), at::Tensor(), at::Tensor(), at::tensor({1, 8, 10, 3}, at::kLong)}, a);
  at::Tensor spatial = run1("Resize", {to_nhwc(x), at::Tensor(), at::Tensor(), at::tensor({8, 10}, at::kLong)}, a);
  expect_close(to_nchw(full), nchw);
  expect_close(to_nchw(spatial), nchw);
}

TEST(SpatialOps, ResizeGeneralPathMatchesAtenFastPath) {
  // A 5-D input takes the separable index path; the same data in 4-D takes ATen's kernels.
  at::manual_seed(7);
  at::Tensor x = at::randn({1, 2, 5, 7});
  for (const char* mode : {"nearest", "linear", "cubic"}) {
    for (const char* transform : {"half_pixel", "align_corners", "asymmetric"}) {
      auto a = attrs({{"mode", std::string(mode)},
                      {"coordinate_transformation_mode", std::string(transform)},
                      {"nearest_mode", std::string("floor")}});
      for (auto [sh, sw] : {std::pair{2.0f, 2.0f}, std::pair{0.6f, 1.5f}}) {
        at::Tensor scales4 = at::tensor({1.0f, 1.0f, sh, sw});
        at::Tensor scales5 = at::tensor({1.0f, 1.0f, 1.0f, sh, sw});
        at::Tensor fast = run1("Resize", {x, at::Tensor(), scales4}, a);
        at::Tensor general = run1("Resize", {x.unsqueeze(0), at::Tensor(), scales5}, a);
        SCOPED_TRACE(std::string(mode) + " " + transform + " " + std::to_string(sh) + "x" + std::to_string(sw));
        expect_close(general.squeeze(0), fast, 1e-4);
      }
    }
  }
}

TEST(SpatialOps, DepthToSpaceAndSpaceToDepthRoundTripInBothLayouts) {
  at::Tensor x = at::arange(2 * 8 * 3 * 2, at::kFloat).view({2, 8, 3, 2});
  for (const char* mode : {"DCR", "CRD"}) {
    auto a = attrs({{"blocksize", int64_t{2}}, {"mode", std::string(mode)}});
    at::Tensor nchw = run1("DepthToSpace", {x}, a);
    EXPECT_EQ(nchw.sizes(), (std::vector<int64_t>{2, 2, 6, 4}));
    a.set("layout", std::string("NHWC"));
    expect_close(to_nchw(run1("DepthToSpace", {to_nhwc(x)}, a)), nchw);
  }
  auto a = attrs({{"blocksize", int64_t{2}}});
  at::Tensor packed = run1("SpaceToDepth", {run1("DepthToSpace", {x}, a)}, a);
  EXPECT_TRUE(at::equal(packed, x));
  a.set("layout", std::string("NHWC"));
  at::Tensor packed_nhwc = run1("SpaceToDepth", {run1("DepthToSpace", {to_nhwc(x)}, a)}, a);
  EXPECT_TRUE(at::equal(to_nchw(packed_nhwc), x));
}
