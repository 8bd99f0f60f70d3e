#include <ATen/ATen.h>

#include <optional>

#include "runtime/passes/graph_edit.hpp"
#include "runtime/passes/passes.hpp"

namespace visage::rt {
namespace {

// A constant that broadcasts along the channel axis only, as a 1-D tensor of
// `channels` values (NCHW: [C,1,1] or [1,C,1,1]; NHWC: [C] or [1,1,1,C]; any
// layout: a single value).
std::optional<at::Tensor> per_channel(const at::Tensor& value, bool nhwc, int64_t channels, int64_t output_rank) {
  if (value.numel() == 1) return value.reshape({1}).expand({channels}).to(at::kFloat).clone();
  if (value.numel() != channels || value.dim() > output_rank) return std::nullopt;
  // Align the constant's shape to the output's trailing dimensions.
  int64_t channel_axis = nhwc ? output_rank - 1 : 1;
  int64_t offset = output_rank - value.dim();
  for (int64_t d = 0; d < value.dim(); ++d)
    if (value.size(d) != 1 && d + offset != channel_axis) return std::nullopt;
  if (channel_axis < offset) return std::nullopt;
  return value.reshape({channels}).to(at::kFloat);
}

struct ConvWeights {
  at::Tensor weight;  // OIHW
  at::Tensor bias;    // [O]
};

std::optional<ConvWeights> conv_weights(const Graph& graph, const Node& conv) {
  if (conv.op != "Conv" || conv.inputs.size() < 2 || conv.attrs.has("activation")) return std::nullopt;
  auto w = graph.initializers.find(conv.inputs[1]);
  if (w == graph.initializers.end() || w->second.scalar_type() != at::kFloat) return std::nullopt;
  ConvWeights cw{w->second.to(at::kFloat), at::zeros({w->second.size(0)}, at::kFloat)};
  if (conv.inputs.size() > 2 && !conv.inputs[2].empty()) {
    auto b = graph.initializers.find(conv.inputs[2]);
    if (b == graph.initializers.end()) return std::nullopt;
    cw.bias = b->second.to(at::kFloat).reshape({-1});
  }
  return cw;
}

void store_conv_weights(Graph& graph, Node& conv, const ConvWeights& cw) {
  // New names: the original weights may be shared with another node.
  std::string weight_name = conv.name + "/folded_weight";
  std::string bias_name = conv.name + "/folded_bias";
  graph.initializers[weight_name] = cw.weight.contiguous();
  graph.initializers[bias_name] = cw.bias.contiguous();
  conv.inputs.resize(std::max<size_t>(conv.inputs.size(), 3));
  conv.inputs[1] = weight_name;
  conv.inputs[2] = bias_name;
}

// Shape-broadcasting helper: scale[o] multiplies every weight of output channel o.
at::Tensor scale_out_channels(const at::Tensor& weight, const at::Tensor& scale) {
  std::vector<int64_t> shape(static_cast<size_t>(weight.dim()), 1);
  shape[0] = scale.numel();
  return weight * scale.reshape(shape);
}

}  // namespace

void fold_batch_norm(Graph& graph) {
  bool changed = true;
  while (changed) {
    changed = false;
    auto consumers = consumers_of(graph);
    std::vector<bool> remove(graph.nodes.size(), false);
    for (size_t i = 0; i < graph.nodes.size(); ++i) {
      if (remove[i]) continue;
      Node& conv = graph.nodes[i];
      auto cw = conv_weights(graph, conv);
      if (!cw) continue;
      auto next_index = single_consumer(graph, consumers, conv);
      if (!next_index || remove[*next_index]) continue;
      Node& next = graph.nodes[*next_index];
      const int64_t channels = cw->weight.size(0);
      const bool nhwc = conv.attrs.get_string("layout", "NCHW") == "NHWC";
      const int64_t rank = cw->weight.dim();

      if (next.op == "BatchNormalization" && next.inputs.size() == 5 && next.inputs[0] == conv.outputs[0] &&
          (next.outputs.size() == 1 || next.outputs[1].empty())) {
        at::Tensor params[4];
        bool constant = true;
        for (int p = 0; p < 4; ++p) {
          auto it = graph.initializers.find(next.inputs[static_cast<size_t>(p) + 1]);
          constant = constant && it != graph.initializers.end() && it->second.numel() == channels;
          if (constant) params[p] = it->second.to(at::kFloat).reshape({channels});
        }
        if (!constant) continue;
        double epsilon = next.attrs.get_float("epsilon", 1e-5);
        at::Tensor factor = params[0] / at::sqrt(params[3] + epsilon);
        cw->weight = scale_out_channels(cw->weight, factor);
        cw->bias = (cw->bias - params[2]) * factor + params[1];
      } else if ((next.op == "Mul" || next.op == "Add" || next.op == "Sub") && next.inputs.size() == 2) {
        // Conv output times/plus a per-channel constant (common after TF's
        // converter splits batch norm into Mul and Add).
        size_t other = next.inputs[0] == conv.outputs[0] ? 1 : 0;
        if (next.inputs[1 - other] != conv.outputs[0] || (next.op == "Sub" && other != 1)) continue;
        auto it = graph.initializers.find(next.inputs[other]);
        if (it == graph.initializers.end() || !it->second.is_floating_point()) continue;
        auto values = per_channel(it->second, nhwc, channels, rank);
        if (!values) continue;
        if (next.op == "Mul") {
          cw->weight = scale_out_channels(cw->weight, *values);
          cw->bias = cw->bias * *values;
        } else if (next.op == "Add") {
          cw->bias = cw->bias + *values;
        } else {
          cw->bias = cw->bias - *values;
        }
      } else {
        continue;
      }
      store_conv_weights(graph, conv, *cw);
      conv.outputs[0] = next.outputs[0];
      remove[*next_index] = true;
      changed = true;
    }
    erase_nodes(graph, remove);
  }
}

}  // namespace visage::rt
