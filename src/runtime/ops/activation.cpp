// Activation functions and Softmax-like operators.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "runtime/ops/families.hpp"

namespace visage::rt {
namespace {

template <typename F>
Kernel unary(F f) {
  return [f](std::span<const at::Tensor> in, std::span<at::Tensor> out) { out[0] = f(in[0]); };
}

// Move a slope/bound operand to the data's device (parameters may stay on the host).
at::Tensor on_device_of(const at::Tensor& value, const at::Tensor& like) {
  at::Tensor v = value.device() == like.device() ? value : value.to(like.device());
  return v.scalar_type() == like.scalar_type() ? v : v.to(like.scalar_type());
}

Kernel make_relu(const Node&, const BuildContext&) {
  return unary([](const at::Tensor& x) { return at::relu(x); });
}
Kernel make_sigmoid(const Node&, const BuildContext&) {
  return unary([](const at::Tensor& x) { return at::sigmoid(x); });
}
Kernel make_tanh(const Node&, const BuildContext&) {
  return unary([](const at::Tensor& x) { return at::tanh(x); });
}
Kernel make_softsign(const Node&, const BuildContext&) {
  return unary([](const at::Tensor& x) { return x / (x.abs() + 1); });
}
Kernel make_softplus(const Node&, const BuildContext&) {
  // log(1 + exp(x)) without overflow for large x.
  return unary([](const at::Tensor& x) { return at::clamp_min(x, 0) + at::log1p(at::exp(-x.abs())); });
}
Kernel make_hard_swish(const Node&, const BuildContext&) {
  return unary([](const at::Tensor& x) { return at::hardswish(x); });
}
Kernel make_mish(const Node&, const BuildContext&) {
  return unary([](const at::Tensor& x) { return at::mish(x); });
}

Kernel make_leaky_relu(const Node& node, const BuildContext&) {
  double alpha = node.attrs.get_float("alpha", 0.01);
  return unary([alpha](const at::Tensor& x) { return at::leaky_relu(x, alpha); });
}

Kernel make_elu(const Node& node, const BuildContext&) {
  double alpha = node.attrs.get_float("alpha", 1.0);
  return unary([alpha](const at::Tensor& x) { return at::elu(x, alpha); });
}

Kernel make_selu(const Node& node, const BuildContext&) {
  double alpha = node.attrs.get_float("alpha", 1.67326319217681884765625);
  double gamma = node.attrs.get_float("gamma", 1.05070102214813232421875);
  return unary([alpha, gamma](const at::Tensor& x) { return at::elu(x, alpha, gamma, 1.0); });
}

Kernel make_celu(const Node& node, const BuildContext&) {
  double alpha = node.attrs.get_float("alpha", 1.0);
  return unary([alpha](const at::Tensor& x) { return at::celu(x, alpha); });
}

Kernel make_thresholded_relu(const Node& node, const BuildContext&) {
  double alpha = node.attrs.get_float("alpha", 1.0);
  return unary([alpha](const at::Tensor& x) { return at::where(x > alpha, x, at::zeros_like(x)); });
}

Kernel make_hard_sigmoid(const Node& node, const BuildContext&) {
  double alpha = node.attrs.get_float("alpha", 0.2);
  double beta = node.attrs.get_float("beta", 0.5);
  return unary([alpha, beta](const at::Tensor& x) { return at::clamp(x * alpha + beta, 0.0, 1.0); });
}

Kernel make_gelu(const Node& node, const BuildContext&) {
  std::string approximate = node.attrs.get_string("approximate", "none");
  require(approximate == "none" || approximate == "tanh", "Gelu approximate must be none or tanh");
  return unary([approximate](const at::Tensor& x) { return at::gelu(x, approximate); });
}

Kernel make_prelu(const Node&, const BuildContext&) {
  return [](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const at::Tensor& x = in[0];
    at::Tensor slope = on_device_of(in[1], x);
    out[0] = at::where(x < 0, x * slope, x);
  };
}

Kernel make_clip(const Node&, const BuildContext&) {
  return [](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const at::Tensor& x = in[0];
    // Bounds are scalars; an omitted (or empty) bound leaves that side open.
    auto bound = [&](size_t i) -> std::optional<at::Scalar> {
      if (i >= in.size() || !in[i].defined() || in[i].numel() == 0) return std::nullopt;
      require(in[i].numel() == 1, "Clip bounds must be scalars");
      return in[i].item();
    };
    std::optional<at::Scalar> lo = bound(1), hi = bound(2);
    if (!lo && !hi) {
      out[0] = x;
      return;
    }
    // ONNX clamps to min first, then max: min > max gives max everywhere.
    at::Tensor y = lo ? at::clamp_min(x, *lo) : x;
    out[0] = hi ? at::clamp_max(y, *hi) : y;
  };
}

enum class SoftmaxKind { softmax, log_softmax, hardmax };

// Softmax over a short last axis of a contiguous float32 CPU tensor (class
// scores of detection heads: 4420 rows of 2 in fr_detect). ATen's vectorised
// kernel is built for long rows and took 280 us on that tensor; this 36 us.
// The arithmetic is ATen's: exp(x - max), times 1 / sum.
bool softmax_short_rows(const at::Tensor& x, int64_t axis, at::Tensor& out) {
  constexpr int64_t kShortRow = 16;
  if (!x.device().is_cpu() || x.scalar_type() != at::kFloat || x.dim() == 0 || axis != x.dim() - 1 ||
      x.size(axis) == 0 || x.size(axis) > kShortRow || !x.is_contiguous())
    return false;
  at::Tensor y = at::empty_like(x, at::MemoryFormat::Contiguous);
  const int64_t width = x.size(axis);
  const int64_t rows = x.numel() / width;
  const float* src = x.data_ptr<float>();
  float* dst = y.data_ptr<float>();
  // Shifted by each row's maximum, then one vectorised exp over the whole
  // tensor, then each row scaled by 1 / its sum.
  for (int64_t r = 0; r < rows; ++r) {
    const float* in_row = src + r * width;
    float* out_row = dst + r * width;
    float max = in_row[0];
    for (int64_t j = 1; j < width; ++j) max = std::max(max, in_row[j]);
    for (int64_t j = 0; j < width; ++j) out_row[j] = in_row[j] - max;
  }
  y.exp_();
  for (int64_t r = 0; r < rows; ++r) {
    float* out_row = dst + r * width;
    float sum = 0.0f;
    for (int64_t j = 0; j < width; ++j) sum += out_row[j];
    const float scale = 1.0f / sum;
    for (int64_t j = 0; j < width; ++j) out_row[j] *= scale;
  }
  out = y;
  return true;
}

template <SoftmaxKind kind>
Kernel make_softmax(const Node& node, const BuildContext&) {
  const int64_t axis_attr = node.attrs.get_int("axis", -1);
  return [axis_attr](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const at::Tensor& x = in[0];
    const int64_t axis = normalize_axis(axis_attr, x.dim());
    if constexpr (kind == SoftmaxKind::softmax) {
      if (!softmax_short_rows(x, axis, out[0])) out[0] = at::softmax(x, axis);
    } else if constexpr (kind == SoftmaxKind::log_softmax) {
      out[0] = at::log_softmax(x, axis);
    } else {
      if (x.numel() == 0) {
        out[0] = at::zeros_like(x);
        return;
      }
      // One-hot of the first maximum along the axis.
      at::Tensor first = at::argmax(x, axis, true);
      out[0] = at::zeros_like(x).scatter_(axis, first, 1.0);
    }
  };
}

}  // namespace

void register_activation_ops(OpTable& table) {
  table.add("Relu", make_relu);
  table.add("LeakyRelu", make_leaky_relu);
  table.add("PRelu", make_prelu);
  table.add("Sigmoid", make_sigmoid);
  table.add("Tanh", make_tanh);
  table.add("Elu", make_elu);
  table.add("Selu", make_selu);
  table.add("Celu", make_celu);
  table.add("Clip", make_clip);
  table.add("HardSigmoid", make_hard_sigmoid);
  table.add("HardSwish", make_hard_swish);
  table.add("Softmax", make_softmax<SoftmaxKind::softmax>);
  table.add("LogSoftmax", make_softmax<SoftmaxKind::log_softmax>);
  table.add("Hardmax", make_softmax<SoftmaxKind::hardmax>);
  table.add("Softplus", make_softplus);
  table.add("Softsign", make_softsign);
  table.add("Gelu", make_gelu);
  table.add("Mish", make_mish);
  table.add("ThresholdedRelu", make_thresholded_relu);
}

}  // namespace visage::rt
