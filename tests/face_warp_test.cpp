// The face sampler: CPU loop against hand-computed values, CUDA against CPU.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "face/geometry.hpp"
#include "face/warp.hpp"
#include "visage/runtime.hpp"

namespace visage {
namespace {

at::Tensor gradient_image(int64_t h, int64_t w) {
  at::manual_seed(3);
  return at::randint(0, 256, {h, w, 3}, at::kByte);
}

TEST(FaceWarp, IdentityAndHalfPixelShift) {
  at::Tensor img = gradient_image(20, 30);
  at::Tensor same = face::warp_to_image(img, face::identity_affine(), 20, 30);
  EXPECT_TRUE(same.equal(img));
  // Shifting by half a pixel averages neighbours.
  at::Tensor half = face::warp_to_input(img, {1, 0, 0.5, 0, 1, 0}, 20, 29, 1.f, 0.f);
  at::Tensor expected = (img.slice(1, 0, 29).to(at::kFloat) + img.slice(1, 1, 30).to(at::kFloat)) / 2;
  EXPECT_LT((half.squeeze(0) - expected).abs().max().item<float>(), 1e-3f);
  // Outside the image reads as zero, then scale and offset apply.
  at::Tensor outside = face::warp_to_input(img, {1, 0, 1000, 0, 1, 1000}, 4, 4, 2.f, -1.f);
  EXPECT_TRUE(outside.eq(-1.f).all().item<bool>());
}

TEST(FaceWarp, CudaMatchesCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device in this build/machine";
  at::Tensor img = gradient_image(240, 320);
  Affine m = face::crop_to_image({170.f, 110.f}, 150.f, 0.6f, 96);
  at::Tensor cpu = face::warp_to_input(img, m, 96, 96, 1.f / 255.f, 0.f);
  at::Tensor gpu = face::warp_to_input(img.to(at::kCUDA), m, 96, 96, 1.f / 255.f, 0.f).to(at::kCPU);
  EXPECT_LT((cpu - gpu).abs().max().item<float>(), 2e-3f);
  at::Tensor cpu8 = face::warp_to_image(img, m, 96, 96);
  at::Tensor gpu8 = face::warp_to_image(img.to(at::kCUDA), m, 96, 96).to(at::kCPU);
  EXPECT_LE((cpu8.to(at::kInt) - gpu8.to(at::kInt)).abs().max().item<int>(), 1);
}

}  // namespace
}  // namespace visage
