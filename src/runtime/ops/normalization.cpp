// BatchNormalization, InstanceNormalization, LayerNormalization, LRN.
#include <ATen/ATen.h>

#include "runtime/ops/families.hpp"
#include "runtime/ops/spatial.hpp"

namespace visage::rt {
namespace {

// Shape that broadcasts a per-channel vector over an NC... tensor of rank `rank`.
std::vector<int64_t> channel_shape(int64_t channels, int64_t rank) {
  std::vector<int64_t> shape(static_cast<size_t>(rank), 1);
  shape[1] = channels;
  return shape;
}

Kernel make_batch_norm(const Node& node, const BuildContext& context) {
  const double epsilon = node.attrs.get_float("epsilon", 1e-5);
  const double momentum = node.attrs.get_float("momentum", 0.9);
  const bool training = node.attrs.get_int("training_mode", 0) != 0;
  const bool nhwc = is_nhwc(node);
  require(node.inputs.size() == 5, "BatchNormalization needs 5 inputs");
  if (training && nhwc) throw_unsupported(node, context, "training-mode BatchNormalization with NHWC layout");
  return [=](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    at::Tensor x = nhwc ? channels_first_view(in[0]) : in[0];
    const at::Tensor &scale = in[1], &bias = in[2], &mean = in[3], &var = in[4];
    if (!training) {
      at::Tensor y = at::batch_norm(x, scale, bias, mean, var, false, 0.0, epsilon, true);
      out[0] = nhwc ? channels_last_view(y) : y;
      return;
    }
    // Training mode normalises with the batch statistics and reports the
    // updated running statistics (ONNX opset 14+).
    std::vector<int64_t> dims{0};
    for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
    at::Tensor batch_mean = x.mean(dims);
    at::Tensor batch_var = (x - batch_mean.view(channel_shape(x.size(1), x.dim()))).square().mean(dims);
    auto shape = channel_shape(x.size(1), x.dim());
    out[0] = (x - batch_mean.view(shape)) * at::rsqrt(batch_var.view(shape) + epsilon) * scale.view(shape) +
             bias.view(shape);
    if (out.size() > 1) out[1] = mean * momentum + batch_mean * (1.0 - momentum);
    if (out.size() > 2) out[2] = var * momentum + batch_var * (1.0 - momentum);
  };
}

Kernel make_instance_norm(const Node& node, const BuildContext&) {
  const double epsilon = node.attrs.get_float("epsilon", 1e-5);
  return [=](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const at::Tensor& x = in[0];
    require(x.dim() >= 3, "InstanceNormalization needs an input of rank 3 or more");
    // Instance norm is group norm with one channel per group.
    out[0] = at::group_norm(x, x.size(1), in[1], in[2], epsilon, true);
  };
}

Kernel make_layer_norm(const Node& node, const BuildContext&) {
  const int64_t axis_attr = node.attrs.get_int("axis", -1);
  const double epsilon = node.attrs.get_float("epsilon", 1e-5);
  const bool stash_float = node.attrs.get_int("stash_type", 1) == 1;
  const bool want_stats =
      (node.outputs.size() > 1 && !node.outputs[1].empty()) || (node.outputs.size() > 2 && !node.outputs[2].empty());
  return [=](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const at::Tensor& x = in[0];
    const at::Tensor& scale = in[1];
    const at::Tensor bias = in.size() > 2 ? in[2] : at::Tensor();
    const int64_t axis = normalize_axis(axis_attr, x.dim());
    std::vector<int64_t> normalized(x.sizes().begin() + axis, x.sizes().end());
    const bool exact_params =
        scale.sizes().vec() == normalized && (!bias.defined() || bias.sizes().vec() == normalized);
    if (!want_stats && exact_params) {
      out[0] = at::layer_norm(x, normalized, scale, bias, epsilon, true);
      return;
    }
    std::vector<int64_t> dims;
    for (int64_t d = axis; d < x.dim(); ++d) dims.push_back(d);
    at::Tensor xs = stash_float && x.scalar_type() == at::kHalf ? x.to(at::kFloat) : x;
    at::Tensor mean = xs.mean(dims, true);
    at::Tensor centered = xs - mean;
    at::Tensor inv_std = at::rsqrt(centered.square().mean(dims, true) + epsilon);
    at::Tensor y = (centered * inv_std).to(x.scalar_type()) * scale;
    if (bias.defined()) y = y + bias;
    out[0] = y;
    if (out.size() > 1) out[1] = mean;
    if (out.size() > 2) out[2] = inv_std;
  };
}

Kernel make_lrn(const Node& node, const BuildContext&) {
  const double alpha = node.attrs.get_float("alpha", 1e-4);
  const double beta = node.attrs.get_float("beta", 0.75);
  const double bias = node.attrs.get_float("bias", 1.0);
  const int64_t size = node.attrs.get_int("size", 0);
  require(size >= 1, "LRN needs a positive size");
  return [=](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const at::Tensor& x = in[0];
    require(x.dim() >= 3, "LRN needs an input of rank 3 or more");
    // Sum of squares over the channel window [c - floor((size-1)/2), c + ceil((size-1)/2)]
    // as an average pool over a [N, 1, C, rest] view.
    at::Tensor sq = x.square().reshape({x.size(0), 1, x.size(1), -1});
    sq = at::constant_pad_nd(sq, {0, 0, (size - 1) / 2, size - 1 - (size - 1) / 2}, 0);
    at::Tensor mean = at::avg_pool2d(sq, {size, 1}, {1, 1}).reshape(x.sizes());
    out[0] = x / (mean * alpha + bias).pow(beta);
  };
}

}  // namespace

void register_normalization_ops(OpTable& table) {
  table.add("BatchNormalization", make_batch_norm);
  table.add("InstanceNormalization", make_instance_norm);
  table.add("LayerNormalization", make_layer_norm);
  table.add("LRN", make_lrn);
}

}  // namespace visage::rt
