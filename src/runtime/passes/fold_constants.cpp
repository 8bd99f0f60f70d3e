#include <ATen/ATen.h>

#include <set>

#include "runtime/kernel.hpp"
#include "runtime/passes/graph_edit.hpp"
#include "runtime/passes/passes.hpp"

namespace visage::rt {
namespace {

// Results larger than this stay computed at run time: folding them would
// trade a cheap op (Expand, Tile, ConstantOfShape) for a large resident tensor.
constexpr int64_t kMaxFoldedElements = 1 << 22;

bool fold_static_shape(Graph& graph, const Node& node) {
  if (node.op != "Shape" || node.inputs.size() != 1) return false;
  for (const auto& input : graph.inputs) {
    if (input.name != node.inputs[0]) continue;
    if (!input.has_shape) return false;
    for (int64_t d : input.shape)
      if (d < 0) return false;
    auto rank = static_cast<int64_t>(input.shape.size());
    int64_t start = node.attrs.get_int("start", 0);
    int64_t end = node.attrs.get_int("end", rank);
    if (start < 0) start += rank;
    if (end < 0) end += rank;
    start = std::clamp<int64_t>(start, 0, rank);
    end = std::clamp<int64_t>(end, start, rank);
    std::vector<int64_t> dims(input.shape.begin() + start, input.shape.begin() + end);
    graph.initializers[node.outputs[0]] = at::tensor(dims, at::kLong);
    return true;
  }
  return false;
}

}  // namespace

void fold_constants(Graph& graph) {
  const OpTable& table = op_table();
  std::vector<bool> remove(graph.nodes.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& node = graph.nodes[i];
    if (node.outputs.empty()) continue;
    bool outputs_are_graph_outputs = false;
    for (const auto& output : node.outputs) outputs_are_graph_outputs |= is_graph_output(graph, output);
    if (outputs_are_graph_outputs) continue;
    if (fold_static_shape(graph, node)) {
      remove[i] = true;
      continue;
    }
    bool all_constant = true;
    for (const auto& input : node.inputs) all_constant = all_constant && (input.empty() || graph.is_initializer(input));
    if (!all_constant) continue;
    KernelFactory factory = table.find(node.op);
    if (!factory) continue;  // the executor reports the unknown operator with context

    std::vector<at::Tensor> inputs;
    for (const auto& input : node.inputs) inputs.push_back(input.empty() ? at::Tensor() : graph.initializers.at(input));
    std::vector<at::Tensor> outputs(node.outputs.size());
    try {
      BuildContext context{graph, at::kCPU, false};
      Kernel kernel = factory(node, context);
      kernel(inputs, outputs);
    } catch (const std::exception&) {
      // Leave the node for run time, where a failure is reported with the
      // node's name; folding is only an optimisation.
      continue;
    }
    bool small_enough = true;
    for (const auto& output : outputs)
      small_enough = small_enough && (!output.defined() || output.numel() <= kMaxFoldedElements);
    if (!small_enough) continue;
    for (size_t o = 0; o < node.outputs.size(); ++o)
      if (!node.outputs[o].empty() && outputs[o].defined())
        // Own the memory: a view would keep a larger input alive.
        graph.initializers[node.outputs[o]] = outputs[o].contiguous().clone();
    remove[i] = true;
  }
  erase_nodes(graph, remove);
}

}  // namespace visage::rt
