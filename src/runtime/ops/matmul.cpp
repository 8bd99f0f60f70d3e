// MatMul (numpy broadcasting) and Gemm on ATen's BLAS-backed ops, with a CPU
// path for one row times a constant matrix (classifier and regression heads).
#include <ATen/ATen.h>

#include <algorithm>

#include "runtime/ops/activation_fusion.hpp"
#include "runtime/ops/families.hpp"

namespace visage::rt {
namespace {

// y = a . b for one row `a` of length k and a k x n row-major matrix `b`, as
// n-wide multiply-adds per k (vectorised; each output sums in k order).
// Debian's OpenBLAS hands even a 512 x 136 product to its thread pool and the
// caller then waits in sched_yield: about 30 us, against 3 here.
__attribute__((target_clones("avx512f", "avx2", "default"))) void row_times_matrix(const float* __restrict a,
                                                                                   const float* __restrict b,
                                                                                   float* __restrict y, int64_t k,
                                                                                   int64_t n) {
  std::fill(y, y + n, 0.0f);
  for (int64_t i = 0; i < k; ++i) {
    const float scale = a[i];
    const float* __restrict row = b + i * n;
    for (int64_t j = 0; j < n; ++j) y[j] += scale * row[j];
  }
}

// The constant right-hand matrix as k x n row-major float32 on the CPU, or an
// undefined tensor when the input is not such a constant.
at::Tensor constant_rows(const Node& node, const BuildContext& context, bool transposed) {
  const at::Tensor* b = context.constant(node, 1);
  if (!b || b->dim() != 2 || b->scalar_type() != at::kFloat || !b->device().is_cpu()) return {};
  return (transposed ? b->t() : *b).contiguous();
}

// One row (all leading dimensions 1) of float32 on the CPU against `rows`.
bool is_one_row(const at::Tensor& a, const at::Tensor& rows) {
  return rows.defined() && a.dim() >= 1 && a.device().is_cpu() && a.scalar_type() == at::kFloat &&
         a.size(-1) == rows.size(0) && a.numel() == rows.size(0);
}

at::Tensor one_row_product(const at::Tensor& a, const at::Tensor& rows) {
  std::vector<int64_t> shape(a.sizes().begin(), a.sizes().end());
  shape.back() = rows.size(1);
  at::Tensor y = at::empty(shape, a.options());
  const at::Tensor dense = a.contiguous();
  row_times_matrix(dense.data_ptr<float>(), rows.data_ptr<float>(), y.data_ptr<float>(), rows.size(0), rows.size(1));
  return y;
}

Kernel make_matmul(const Node& node, const BuildContext& context) {
  FusedActivation activation = parse_fused_activation(node);
  at::Tensor rows = constant_rows(node, context, false);
  return [activation, rows](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    at::Tensor y = is_one_row(in[0], rows) ? one_row_product(in[0], rows) : at::matmul(in[0], in[1]);
    apply_fused_activation(activation, y, activation.has_slope_input() ? in.back() : at::Tensor());
    out[0] = y;
  };
}

Kernel make_gemm(const Node& node, const BuildContext& context) {
  FusedActivation activation = parse_fused_activation(node);
  const double alpha = node.attrs.get_float("alpha", 1.0);
  const double beta = node.attrs.get_float("beta", 1.0);
  const bool trans_a = node.attrs.get_int("transA", 0) != 0;
  const bool trans_b = node.attrs.get_int("transB", 0) != 0;
  const size_t c_needed = activation.has_slope_input() ? 4 : 3;
  at::Tensor rows = constant_rows(node, context, trans_b);
  return [=](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    require(in[0].dim() == 2 && in[1].dim() == 2, "Gemm needs 2-D A and B");
    at::Tensor a = trans_a ? in[0].t() : in[0];
    at::Tensor b = trans_b ? in[1].t() : in[1];
    at::Tensor c = in.size() >= c_needed ? in[2] : at::Tensor();
    at::Tensor y;
    if (is_one_row(a, rows)) {
      y = one_row_product(a, rows);
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
