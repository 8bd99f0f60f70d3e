#include "runtime/passes/graph_edit.hpp"
#include "runtime/passes/passes.hpp"

namespace visage::rt {

void remove_identities(Graph& graph) {
  std::vector<bool> remove(graph.nodes.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& node = graph.nodes[i];
    bool passthrough =
        node.op == "Identity" || (node.op == "Dropout" && (node.outputs.size() < 2 || node.outputs[1].empty()));
    if (!passthrough || node.inputs.empty() || node.outputs.empty()) continue;
    const std::string& from = node.outputs[0];
    const std::string& to = node.inputs[0];
    // A graph output keeps its name, so its producer stays; so does a graph
    // input passed straight through to an output.
    if (is_graph_output(graph, from)) continue;
    replace_uses(graph, from, to);
    remove[i] = true;
  }
  erase_nodes(graph, remove);
}

}  // namespace visage::rt
