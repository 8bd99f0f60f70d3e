// Conv and ConvTranspose on at::convolution (oneDNN on CPU, cuDNN on CUDA).
//
// ATen takes symmetric padding only; asymmetric ONNX pads (explicit or from
// auto_pad SAME_*, resolved at run time from the input size) add an explicit
// zero pad for the difference. NHWC tensors go through a channels-first view.
//
// On the CPU in float32, a 2-D Conv whose weights are constant runs on a
// prepacked oneDNN primitive (onednn_conv.hpp) with its bias, residual Add
// and activation fused, where this build has oneDNN; everything else, and any
// shape oneDNN declines, runs at::convolution.
#include <ATen/ATen.h>

#include "runtime/ops/activation_fusion.hpp"
#include "runtime/ops/families.hpp"
#include "runtime/ops/onednn_conv.hpp"
#include "runtime/ops/spatial.hpp"

namespace visage::rt {
namespace {

struct ConvParams {
  Window window;
  int64_t group = 1;
  bool nhwc = false;
  FusedActivation activation;
  std::vector<int64_t> output_padding;
  std::vector<int64_t> output_shape;
  // Conv only: a residual operand (input 3) added before the activation,
  // written by the fuse_residual_add pass.
  bool residual = false;

  // Index of the bias input, or -1; the fused PRelu slope is the last input.
  int bias_index(size_t input_count) const {
    if (residual) return 2;
    size_t needed = activation.has_slope_input() ? 4 : 3;
    return input_count >= needed ? 2 : -1;
  }
};

ConvParams parse_conv(const Node& node) {
  ConvParams p;
  p.window = Window::parse(node);
  p.group = node.attrs.get_int("group", 1);
  require(p.group >= 1, "group must be positive");
  p.nhwc = is_nhwc(node);
  p.activation = parse_fused_activation(node);
  p.output_padding = node.attrs.get_ints("output_padding");
  p.output_shape = node.attrs.get_ints("output_shape");
  p.residual = node.attrs.get_int("residual", 0) != 0;
  return p;
}

at::Tensor optional_input(std::span<const at::Tensor> in, int index) {
  return index >= 0 && static_cast<size_t>(index) < in.size() ? in[static_cast<size_t>(index)] : at::Tensor();
}

// The residual Add and the activation, in the node's own layout (a PRelu
// slope or a broadcast residual is shaped for it), on `y` which the kernel owns.
void apply_epilogue(const ConvParams& p, std::span<const at::Tensor> in, at::Tensor& y) {
  if (p.residual) {
    const at::Tensor& r = in[3];
    if (r.sizes() == y.sizes())
      y.add_(r.device() == y.device() ? r : r.to(y.device()));
    else
      y = at::add(y, r.device() == y.device() ? r : r.to(y.device()));  // broadcast to a larger shape
  }
  apply_fused_activation(p.activation, y, p.activation.has_slope_input() ? in.back() : at::Tensor());
}

// The prepacked oneDNN convolution for this node, when its weights (and bias)
// are constants of a float32 CPU model; nullptr otherwise.
std::shared_ptr<const OnednnConv> fast_conv_for(const Node& node, const BuildContext& context, const ConvParams& p) {
  if (!context.device.is_cpu() || context.fp16) return nullptr;
  const at::Tensor* weight = context.constant(node, 1);
  if (!weight || weight->dim() != 4) return nullptr;
  OnednnConvSpec spec;
  spec.weight = *weight;
  if (p.bias_index(node.inputs.size()) == 2 && !node.inputs[2].empty()) {
    const at::Tensor* bias = context.constant(node, 2);
    if (!bias) return nullptr;
    spec.bias = bias->reshape({-1});
  }
  if (p.activation.has_slope_input()) {
    const at::Tensor* slope = context.constant(node, node.inputs.size() - 1);
    if (slope) spec.slope = *slope;
  }
  spec.strides = p.window.stride_vector(2);
  spec.dilations = p.window.dilation_vector(2);
  spec.groups = p.group;
  spec.activation = p.activation;
  spec.nhwc = p.nhwc;
  spec.residual = p.residual;
  return make_onednn_conv(spec);
}

Kernel make_conv(const Node& node, const BuildContext& context) {
  ConvParams p = parse_conv(node);
  require(node.inputs.size() >= 2, "Conv needs an input and a weight");
  require(!p.residual || node.inputs.size() >= 4, "a Conv with a residual needs it as input 3");
  std::shared_ptr<const OnednnConv> fast = fast_conv_for(node, context, p);
  return [p, fast](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    at::Tensor x = p.nhwc ? channels_first_view(in[0]) : in[0];
    const at::Tensor& w = in[1];
    const int64_t n = w.dim() - 2;
    require(n >= 1, "Conv weight must have rank 3 or more");
    require(x.dim() == n + 2,
            "Conv input has rank " + std::to_string(x.dim()) + ", the weight expects " + std::to_string(n + 2));
    std::vector<int64_t> kernel(w.sizes().begin() + 2, w.sizes().end());
    auto pads = p.window.resolve_pads(spatial_sizes(x), kernel);
    if (fast) {
      at::Tensor residual;
      if (p.residual && in[3].dim() == 4) residual = p.nhwc ? channels_first_view(in[3]) : in[3];
      at::Tensor y = out[0].defined() && out[0].dim() == 4 && p.nhwc ? channels_first_view(out[0]) : out[0];
      bool epilogue_done = false;
      if (run_onednn_conv(*fast, x, pads, residual, y, epilogue_done)) {
        if (p.nhwc) y = channels_last_view(y);
        if (!epilogue_done) apply_epilogue(p, in, y);
        out[0] = y;
        return;
      }
    }
    SplitPads split = SplitPads::of(pads, static_cast<size_t>(n));
    if (!split.explicit_pad.empty()) x = at::constant_pad_nd(x, split.explicit_pad, 0);
    at::Tensor bias = optional_input(in, p.bias_index(in.size()));
    at::Tensor y = at::convolution(x, w, bias, p.window.stride_vector(static_cast<size_t>(n)), split.symmetric,
                                   p.window.dilation_vector(static_cast<size_t>(n)), false,
                                   std::vector<int64_t>(static_cast<size_t>(n), 0), p.group);
    if (p.nhwc) y = channels_last_view(y);
    apply_epilogue(p, in, y);
    out[0] = y;
  };
}

Kernel make_conv_transpose(const Node& node, const BuildContext& context) {
  ConvParams p = parse_conv(node);
  require(node.inputs.size() >= 2, "ConvTranspose needs an input and a weight");
  return [p](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    at::Tensor x = p.nhwc ? channels_first_view(in[0]) : in[0];
    const at::Tensor& w = in[1];
    const int64_t n = w.dim() - 2;
    const auto un = static_cast<size_t>(n);
    require(n >= 1, "ConvTranspose weight must have rank 3 or more");
    require(x.dim() == n + 2, "ConvTranspose input has rank " + std::to_string(x.dim()) + ", the weight expects " +
                                  std::to_string(n + 2));
    auto stride = p.window.stride_vector(un);
    auto dilation = p.window.dilation_vector(un);
    std::vector<int64_t> opad = p.output_padding.empty() ? std::vector<int64_t>(un, 0) : p.output_padding;
    require(opad.size() == un, "output_padding must have " + std::to_string(n) + " values");

    std::vector<int64_t> pads(2 * un, 0);
    std::vector<int64_t> target = p.output_shape;
    if (target.size() == un + 2) target.erase(target.begin(), target.begin() + 2);
    const bool same = p.window.auto_pad == "SAME_UPPER" || p.window.auto_pad == "SAME_LOWER";
    if (!target.empty() || same) {
      if (target.empty())
        for (size_t i = 0; i < un; ++i) target.push_back(x.size(static_cast<int64_t>(i) + 2) * stride[i]);
      require(target.size() == un, "output_shape must have " + std::to_string(n) + " values");
      for (size_t i = 0; i < un; ++i) {
        int64_t full = stride[i] * (x.size(static_cast<int64_t>(i) + 2) - 1) + opad[i] +
                       (w.size(static_cast<int64_t>(i) + 2) - 1) * dilation[i] + 1;
        int64_t total = full - target[i];
        // Floor division: a negative total (output_shape above the full size) extends the end.
        int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2);
        pads[i] = p.window.auto_pad == "SAME_UPPER" ? half : total - half;
        pads[i + un] = total - pads[i];
      }
    } else if (p.window.auto_pad == "NOTSET" && !p.window.pads.empty()) {
      require(p.window.pads.size() == 2 * un, "pads must have " + std::to_string(2 * n) + " values");
      pads = p.window.pads;
    }

    at::Tensor bias = optional_input(in, p.bias_index(in.size()));
    bool simple = true;
    for (size_t i = 0; i < un; ++i)
      simple = simple && pads[i] == pads[i + un] && pads[i] >= 0 && opad[i] < std::max(stride[i], dilation[i]);
    at::Tensor y;
    if (simple) {
      std::vector<int64_t> padding(pads.begin(), pads.begin() + n);
      y = at::convolution(x, w, bias, stride, padding, dilation, true, opad, p.group);
    } else {
      // Full transposed convolution, then crop (negative pad) or extend each
      // side to what the ONNX pads and output_padding ask for.
      y = at::convolution(x, w, at::Tensor(), stride, std::vector<int64_t>(un, 0), dilation, true,
                          std::vector<int64_t>(un, 0), p.group);
      std::vector<int64_t> adjust(2 * un);
      for (size_t i = 0; i < un; ++i) {
        adjust[i] = -pads[i];
        adjust[i + un] = opad[i] - pads[i + un];
      }
      y = at::constant_pad_nd(y, SplitPads::constant_pad_order(adjust, un), 0);
      if (bias.defined()) {
        std::vector<int64_t> shape(static_cast<size_t>(y.dim()), 1);
        shape[1] = bias.numel();
        y = y + bias.view(shape);
      }
    }
    // The activation runs in the node's own layout: a PRelu slope is shaped
    // to broadcast against NHWC output in a TF.js graph.
    if (p.nhwc) y = channels_last_view(y);
    apply_fused_activation(p.activation, y, p.activation.has_slope_input() ? in.back() : at::Tensor());
    out[0] = y;
  };
}

}  // namespace

void register_conv_ops(OpTable& table) {
  table.add("Conv", make_conv);
  table.add("ConvTranspose", make_conv_transpose);
}

}  // namespace visage::rt
