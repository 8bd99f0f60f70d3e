#include <limits>

#include "runtime/passes/graph_edit.hpp"
#include "runtime/passes/passes.hpp"

namespace visage::rt {
namespace {

bool is_producer(const Node& node) {
  return (node.op == "Conv" || node.op == "Gemm" || node.op == "MatMul") && !node.attrs.has("activation");
}

// Describes `act` as a fused activation on `target`; false when it cannot be fused.
bool absorb(const Graph& graph, const Node& act, Node& target) {
  Attributes& attrs = target.attrs;
  if (act.op == "Relu" || act.op == "Sigmoid" || act.op == "Tanh" || act.op == "HardSwish") {
    attrs.set("activation", act.op);
    return true;
  }
  if (act.op == "LeakyRelu") {
    attrs.set("activation", std::string("LeakyRelu"));
    attrs.set("activation_alpha", act.attrs.get_float("alpha", 0.01));
    return true;
  }
  if (act.op == "Elu") {
    attrs.set("activation", std::string("Elu"));
    attrs.set("activation_alpha", act.attrs.get_float("alpha", 1.0));
    return true;
  }
  if (act.op == "HardSigmoid") {
    attrs.set("activation", std::string("HardSigmoid"));
    attrs.set("activation_alpha", act.attrs.get_float("alpha", 0.2));
    attrs.set("activation_beta", act.attrs.get_float("beta", 0.5));
    return true;
  }
  if (act.op == "Clip") {
    double low = -std::numeric_limits<double>::infinity();
    double high = std::numeric_limits<double>::infinity();
    if (act.inputs.size() > 1 && !act.inputs[1].empty() && !constant_scalar(graph, act.inputs[1], low)) return false;
    if (act.inputs.size() > 2 && !act.inputs[2].empty() && !constant_scalar(graph, act.inputs[2], high)) return false;
    attrs.set("activation", std::string("Clip"));
    attrs.set("activation_min", low);
    attrs.set("activation_max", high);
    return true;
  }
  if (act.op == "PRelu" && act.inputs.size() == 2 && graph.is_initializer(act.inputs[1])) {
    attrs.set("activation", std::string("PRelu"));
    // The slope is the last input; pad the optional bias slot so it is never
    // mistaken for a bias (Conv: X, W, B, slope; Gemm: A, B, C, slope).
    if (target.op != "MatMul") target.inputs.resize(std::max<size_t>(target.inputs.size(), 3));
    target.inputs.push_back(act.inputs[1]);
    return true;
  }
  return false;
}

}  // namespace

void fuse_activations(Graph& graph) {
  auto consumers = consumers_of(graph);
  std::vector<bool> remove(graph.nodes.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& node = graph.nodes[i];
    if (!is_producer(node) || node.outputs.size() != 1) continue;
    auto next = single_consumer(graph, consumers, node);
    if (!next) continue;
    size_t next_index = *next;
    const Node& act = graph.nodes[next_index];
    if (remove[next_index] || act.inputs.empty() || act.inputs[0] != node.outputs[0]) continue;
    if (!absorb(graph, act, node)) continue;
    node.outputs[0] = act.outputs[0];
    remove[next_index] = true;
  }
  erase_nodes(graph, remove);
}

}  // namespace visage::rt
