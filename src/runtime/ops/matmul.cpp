// MatMul (numpy broadcasting) and Gemm on ATen's BLAS-backed ops.
#include <ATen/ATen.h>

#include "runtime/ops/activation_fusion.hpp"
#include "runtime/ops/families.hpp"

namespace visage::rt {
namespace {

Kernel make_matmul(const Node& node, const BuildContext&) {
  FusedActivation activation = parse_fused_activation(node);
  return [activation](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    at::Tensor y = at::matmul(in[0], in[1]);
    apply_fused_activation(activation, y, activation.has_slope_input() ? in.back() : at::Tensor());
    out[0] = y;
  };
}

Kernel make_gemm(const Node& node, const BuildContext&) {
  FusedActivation activation = parse_fused_activation(node);
  const double alpha = node.attrs.get_float("alpha", 1.0);
  const double beta = node.attrs.get_float("beta", 1.0);
  const bool trans_a = node.attrs.get_int("transA", 0) != 0;
  const bool trans_b = node.attrs.get_int("transB", 0) != 0;
  const size_t c_needed = activation.has_slope_input() ? 4 : 3;
  return [=](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    require(in[0].dim() == 2 && in[1].dim() == 2, "Gemm needs 2-D A and B");
    at::Tensor a = trans_a ? in[0].t() : in[0];
    at::Tensor b = trans_b ? in[1].t() : in[1];
    at::Tensor c = in.size() >= c_needed ? in[2] : at::Tensor();
    at::Tensor y;
    if (a.size(0) == 1 && a.device().is_cpu() && a.scalar_type() == at::kFloat && b.scalar_type() == at::kFloat) {
      // One row (a classifier head after global pooling): a matrix-vector
      // product, about three times faster on the CPU than addmm at M = 1.
      y = at::mv(b.t(), a[0]).unsqueeze(0);
      if (alpha != 1.0) y.mul_(alpha);
      if (c.defined() && beta != 0.0) y.add_(c.to(y.scalar_type()), beta);
    } else if (c.defined() && beta != 0.0) {
      // addmm broadcasts C to [M, N] itself.
      y = at::addmm(c, a, b, beta, alpha);
    } else {
      y = at::mm(a, b);
      if (alpha != 1.0) y.mul_(alpha);
    }
    apply_fused_activation(activation, y, activation.has_slope_input() ? in.back() : at::Tensor());
    out[0] = y;
  };
}

}  // namespace

void register_matmul_ops(OpTable& table) {
  table.add("MatMul", make_matmul);
  table.add("Gemm", make_gemm);
}

}  // namespace visage::rt
