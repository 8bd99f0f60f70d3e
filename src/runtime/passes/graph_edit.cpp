#include "runtime/passes/graph_edit.hpp"

namespace visage::rt {

std::map<std::string, std::vector<size_t>> consumers_of(const Graph& graph) {
  std::map<std::string, std::vector<size_t>> consumers;
  for (size_t i = 0; i < graph.nodes.size(); ++i)
    for (const auto& input : graph.nodes[i].inputs)
      if (!input.empty()) consumers[input].push_back(i);
  return consumers;
}

std::optional<size_t> single_consumer(const Graph& graph, const std::map<std::string, std::vector<size_t>>& consumers,
                                      const Node& node) {
  if (node.outputs.empty() || is_graph_output(graph, node.outputs[0])) return std::nullopt;
  auto it = consumers.find(node.outputs[0]);
  if (it == consumers.end() || it->second.size() != 1) return std::nullopt;
  return it->second[0];
}

bool is_graph_output(const Graph& graph, const std::string& value) {
  for (const auto& output : graph.outputs)
    if (output.name == value) return true;
  return false;
}

void replace_uses(Graph& graph, const std::string& from, const std::string& to) {
  for (auto& node : graph.nodes)
    for (auto& input : node.inputs)
      if (input == from) input = to;
}

void erase_nodes(Graph& graph, const std::vector<bool>& remove) {
  std::vector<Node> kept;
  kept.reserve(graph.nodes.size());
  for (size_t i = 0; i < graph.nodes.size(); ++i)
    if (!remove[i]) kept.push_back(std::move(graph.nodes[i]));
  graph.nodes = std::move(kept);
}

bool constant_scalar(const Graph& graph, const std::string& value, double& out) {
  auto it = graph.initializers.find(value);
  if (it == graph.initializers.end() || it->second.numel() != 1) return false;
  out = it->second.to(at::kDouble).item<double>();
  return true;
}

}  // namespace visage::rt
