// Activations that converters spelled out in elementary operators, rewritten
// as the one operator they compute so that fuse_activations can fold them
// into the convolution before them:
//   Max(Min(x, hi), lo) and Min(Max(x, lo), hi), scalar constants -> Clip(x, lo, hi)
//     (Keras ReLU6 as TF.js exports it: "clip_by_value"), and
//   Add(Relu(x), Mul(Sub(x, Abs(x)), a)), constant a -> PRelu(x, 2a)
//     (Keras PReLU as TF.js exports it: relu(x) + a * (x - |x|)).
// Both rewrites give bit-identical results: for x < 0, a * (x - |x|) is
// a * 2x, and doubling is exact in floating point.
#include <limits>

#include "runtime/passes/graph_edit.hpp"
#include "runtime/passes/passes.hpp"

namespace visage::rt {
namespace {

using Consumers = std::map<std::string, std::vector<size_t>>;

// The node that produces `value`, when it has exactly one reader and is not a graph output.
std::optional<size_t> sole_producer(const Graph& graph, const Consumers& consumers,
                                    const std::map<std::string, size_t>& producer, const std::string& value) {
  auto it = producer.find(value);
  if (it == producer.end() || is_graph_output(graph, value)) return std::nullopt;
  auto readers = consumers.find(value);
  if (readers == consumers.end() || readers->second.size() != 1) return std::nullopt;
  return it->second;
}

// Index of the operand of a binary node that is a constant scalar, with its value.
std::optional<size_t> scalar_operand(const Graph& graph, const Node& node, double& value) {
  if (node.inputs.size() != 2) return std::nullopt;
  for (size_t i = 0; i < 2; ++i)
    if (constant_scalar(graph, node.inputs[i], value)) return i;
  return std::nullopt;
}

std::string new_initializer(Graph& graph, const std::string& base, at::Tensor value) {
  std::string name = base;
  for (int k = 0; graph.initializers.count(name); ++k) name = base + "_" + std::to_string(k);
  graph.initializers[name] = std::move(value);
  return name;
}

// Max(Min(x, hi), lo) or Min(Max(x, lo), hi) -> Clip(x, lo, hi), at the outer node.
bool rewrite_clip(Graph& graph, const Consumers& consumers, const std::map<std::string, size_t>& producer,
                  size_t outer_index, std::vector<bool>& remove) {
  Node& outer = graph.nodes[outer_index];
  if ((outer.op != "Max" && outer.op != "Min") || outer.outputs.size() != 1) return false;
  double outer_bound = 0;
  auto outer_constant = scalar_operand(graph, outer, outer_bound);
  if (!outer_constant) return false;
  const std::string& inner_value = outer.inputs[1 - *outer_constant];
  auto inner_index = sole_producer(graph, consumers, producer, inner_value);
  if (!inner_index || remove[*inner_index]) return false;
  const Node& inner = graph.nodes[*inner_index];
  const std::string expected_inner = outer.op == "Max" ? "Min" : "Max";
  double inner_bound = 0;
  auto inner_constant = inner.op == expected_inner ? scalar_operand(graph, inner, inner_bound) : std::nullopt;
  if (!inner_constant || inner.outputs.size() != 1) return false;
  const double lo = outer.op == "Max" ? outer_bound : inner_bound;
  const double hi = outer.op == "Max" ? inner_bound : outer_bound;
  // Clip(x, lo, hi) = min(max(x, lo), hi) equals both orders only when lo <= hi.
  if (!(lo <= hi)) return false;
  const at::Tensor& like = graph.initializers.at(outer.inputs[*outer_constant]);
  if (!like.is_floating_point()) return false;
  const std::string x = inner.inputs[1 - *inner_constant];
  Node clip{"Clip",
            outer.name,
            {x, new_initializer(graph, outer.name + "/clip_min", at::scalar_tensor(lo, like.options())),
             new_initializer(graph, outer.name + "/clip_max", at::scalar_tensor(hi, like.options()))},
            outer.outputs,
            {}};
  graph.nodes[outer_index] = std::move(clip);
  remove[*inner_index] = true;
  return true;
}

// Add(Relu(x), Mul(Sub(x, Abs(x)), a)) -> PRelu(x, 2a), at the Add.
bool rewrite_prelu(Graph& graph, const Consumers& consumers, const std::map<std::string, size_t>& producer,
                   size_t add_index, std::vector<bool>& remove) {
  const Node& add = graph.nodes[add_index];
  if (add.op != "Add" || add.inputs.size() != 2 || add.outputs.size() != 1) return false;
  for (size_t relu_side = 0; relu_side < 2; ++relu_side) {
    auto relu_index = sole_producer(graph, consumers, producer, add.inputs[relu_side]);
    auto mul_index = sole_producer(graph, consumers, producer, add.inputs[1 - relu_side]);
    if (!relu_index || !mul_index || remove[*relu_index] || remove[*mul_index]) continue;
    const Node& relu = graph.nodes[*relu_index];
    const Node& mul = graph.nodes[*mul_index];
    if (relu.op != "Relu" || relu.inputs.size() != 1 || mul.op != "Mul" || mul.inputs.size() != 2) continue;
    const std::string& x = relu.inputs[0];
    for (size_t sub_side = 0; sub_side < 2; ++sub_side) {
      const std::string& alpha = mul.inputs[1 - sub_side];
      auto alpha_value = graph.initializers.find(alpha);
      if (alpha_value == graph.initializers.end() || !alpha_value->second.is_floating_point()) continue;
      // At most one axis longer than 1 (a per-channel slope), so that it
      // cannot enlarge x when broadcast.
      int64_t long_axes = 0;
      for (int64_t size : alpha_value->second.sizes()) long_axes += size > 1;
      if (long_axes > 1) continue;
      auto sub_index = sole_producer(graph, consumers, producer, mul.inputs[sub_side]);
      if (!sub_index || remove[*sub_index]) continue;
      const Node& sub = graph.nodes[*sub_index];
      if (sub.op != "Sub" || sub.inputs.size() != 2 || sub.inputs[0] != x) continue;
      auto abs_index = sole_producer(graph, consumers, producer, sub.inputs[1]);
      if (!abs_index || remove[*abs_index]) continue;
      const Node& abs = graph.nodes[*abs_index];
      if (abs.op != "Abs" || abs.inputs.size() != 1 || abs.inputs[0] != x) continue;
      // The slope must broadcast against x without enlarging it, as in the
      // original Mul; PRelu broadcasts it the same way (unidirectionally).
      std::string slope = new_initializer(graph, add.name + "/prelu_slope", alpha_value->second * 2);
      Node prelu{"PRelu", add.name, {x, slope}, add.outputs, {}};
      const size_t relu_at = *relu_index, mul_at = *mul_index, sub_at = *sub_index, abs_at = *abs_index;
      graph.nodes[add_index] = std::move(prelu);
      remove[relu_at] = remove[mul_at] = remove[sub_at] = remove[abs_at] = true;
      return true;
    }
  }
  return false;
}

}  // namespace

void recognise_activations(Graph& graph) {
  auto consumers = consumers_of(graph);
  std::map<std::string, size_t> producer;
  for (size_t i = 0; i < graph.nodes.size(); ++i)
    for (const auto& output : graph.nodes[i].outputs)
      if (!output.empty()) producer[output] = i;
  std::vector<bool> remove(graph.nodes.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (remove[i]) continue;
    if (!rewrite_clip(graph, consumers, producer, i, remove)) rewrite_prelu(graph, consumers, producer, i, remove);
  }
  erase_nodes(graph, remove);
}

}  // namespace visage::rt
