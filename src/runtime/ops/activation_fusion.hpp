// The "activation" attribute that the fusion pass writes on Conv, ConvTranspose,
// Gemm and MatMul (see runtime/graph.hpp): parsed once at build time, applied
// in place to the node's freshly computed output.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "runtime/graph.hpp"
#include "runtime/kernel.hpp"

namespace visage::rt {

struct FusedActivation {
  enum class Kind { none, relu, clip, leaky_relu, sigmoid, tanh, elu, hard_sigmoid, hard_swish, prelu };
  Kind kind = Kind::none;
  double alpha = 0.0;
  double beta = 0.0;
  double min = 0.0;
  double max = 0.0;

  bool has_slope_input() const { return kind == Kind::prelu; }
};

inline FusedActivation parse_fused_activation(const Node& node) {
  FusedActivation f;
  const std::string name = node.attrs.get_string("activation", "");
  using K = FusedActivation::Kind;
  if (name.empty() || name == "None" || name == "Linear") {
    f.kind = K::none;
  } else if (name == "Relu") {
    f.kind = K::relu;
  } else if (name == "Clip" || name == "Relu6") {
    f.kind = K::clip;
    f.min = node.attrs.get_float("activation_min", name == "Relu6" ? 0.0 : -std::numeric_limits<double>::infinity());
    f.max = node.attrs.get_float("activation_max", name == "Relu6" ? 6.0 : std::numeric_limits<double>::infinity());
  } else if (name == "LeakyRelu") {
    f.kind = K::leaky_relu;
    f.alpha = node.attrs.get_float("activation_alpha", 0.01);
  } else if (name == "Sigmoid") {
    f.kind = K::sigmoid;
  } else if (name == "Tanh") {
    f.kind = K::tanh;
  } else if (name == "Elu") {
    f.kind = K::elu;
    f.alpha = node.attrs.get_float("activation_alpha", 1.0);
  } else if (name == "HardSigmoid") {
    f.kind = K::hard_sigmoid;
    f.alpha = node.attrs.get_float("activation_alpha", 0.2);
    f.beta = node.attrs.get_float("activation_beta", 0.5);
  } else if (name == "HardSwish") {
    f.kind = K::hard_swish;
  } else if (name == "PRelu") {
    f.kind = K::prelu;
  } else {
    throw std::invalid_argument("unknown fused activation '" + name + "'");
  }
  return f;
}

// Applies the activation to `y`, which the calling kernel owns (it was just
// computed, so in-place is safe). `slope` is the PRelu slope (last input).
inline void apply_fused_activation(const FusedActivation& f, at::Tensor& y, const at::Tensor& slope = {}) {
  using K = FusedActivation::Kind;
  switch (f.kind) {
    case K::none: return;
    case K::relu: y.relu_(); return;
    case K::clip: y.clamp_(f.min, f.max); return;
    case K::leaky_relu: at::leaky_relu_(y, f.alpha); return;
    case K::sigmoid: y.sigmoid_(); return;
    case K::tanh: y.tanh_(); return;
    case K::elu: at::elu_(y, f.alpha); return;
    case K::hard_sigmoid: y.mul_(f.alpha).add_(f.beta).clamp_(0.0, 1.0); return;
    case K::hard_swish: at::hardswish_(y); return;
    case K::prelu: {
      require(slope.defined(), "fused PRelu needs its slope as the last input");
      at::Tensor s = slope.device() == y.device() ? slope : slope.to(y.device());
      // max(y, 0) + slope * min(y, 0), with one temporary instead of three.
      at::Tensor negative = at::clamp_max(y, 0).mul_(s);
      y.clamp_min_(0).add_(negative);
      return;
    }
  }
}

}  // namespace visage::rt
