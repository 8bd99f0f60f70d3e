// detail::constant: small constants go up to a device once per distinct
// content (what a captured compositing graph reads must stay valid).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "swap/compose_internal.hpp"
#include "visage/runtime.hpp"

namespace {

using namespace visage;

TEST(SwapConstants, OnTheCpuTheHostTensorItself) {
  const at::Tensor host = at::arange(6, at::kFloat);
  const at::Tensor same = swap::detail::constant(host, at::kCPU);
  EXPECT_TRUE(same.is_same(host));
}

TEST(SwapConstants, EqualBytesShareOneDeviceTensorAndOthersDoNot) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device (or a CPU-only build)";
  const at::Device cuda(at::kCUDA, 0);
  const at::Tensor a = swap::detail::constant(at::arange(9, at::kFloat).view({3, 3}), cuda);
  const at::Tensor b = swap::detail::constant(at::arange(9, at::kFloat).view({3, 3}), cuda);
  const at::Tensor other_values = swap::detail::constant(at::arange(9, at::kFloat).view({3, 3}) + 1, cuda);
  const at::Tensor other_shape = swap::detail::constant(at::arange(9, at::kFloat), cuda);
  ASSERT_TRUE(a.is_cuda());
  EXPECT_EQ(a.data_ptr(), b.data_ptr()) << "the same content is uploaded once";
  EXPECT_NE(a.data_ptr(), other_values.data_ptr());
  EXPECT_NE(a.data_ptr(), other_shape.data_ptr());
  EXPECT_TRUE(at::equal(a.cpu(), at::arange(9, at::kFloat).view({3, 3})));
  EXPECT_TRUE(at::equal(other_values.cpu(), at::arange(9, at::kFloat).view({3, 3}) + 1));
  // A graph's capture keeps what it was given alive (ConstantsKept).
  swap::detail::ConstantsKept kept;
  const at::Tensor c = swap::detail::constant(at::arange(9, at::kFloat).view({3, 3}), cuda);
  EXPECT_EQ(c.data_ptr(), a.data_ptr());
  EXPECT_FALSE(kept.tensors.empty());
}

}  // namespace
