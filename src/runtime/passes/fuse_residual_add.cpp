// Residual connections (Conv -> Add(·, shortcut) [-> activation]) as one Conv
// node: the addition then happens while the convolution's output is still in
// cache (a oneDNN binary post-op on the CPU), and one node fewer runs.
#include <algorithm>

#include "runtime/passes/graph_edit.hpp"
#include "runtime/passes/passes.hpp"

namespace visage::rt {

void fuse_residual_add(Graph& graph) {
  auto consumers = consumers_of(graph);
  std::vector<bool> remove(graph.nodes.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& conv = graph.nodes[i];
    if (conv.op != "Conv" || remove[i] || conv.outputs.size() != 1 || conv.attrs.has("activation") ||
        conv.attrs.has("residual"))
      continue;
    auto next = single_consumer(graph, consumers, conv);
    if (!next || remove[*next]) continue;
    const Node& add = graph.nodes[*next];
    if (add.op != "Add" || add.inputs.size() != 2 || add.outputs.size() != 1 || add.inputs[0] == add.inputs[1])
      continue;
    const std::string& shortcut = add.inputs[0] == conv.outputs[0] ? add.inputs[1] : add.inputs[0];
    // A constant addend is a bias: fold_batch_norm folds the per-channel ones.
    if (shortcut.empty() || graph.is_initializer(shortcut)) continue;

    // The fused node takes the Add's place in the order: the shortcut exists
    // there, and so do the Conv's own inputs. Inputs: X, W, B ("" if none), shortcut.
    Node fused = conv;
    fused.inputs.resize(std::max<size_t>(fused.inputs.size(), 3));
    fused.inputs.push_back(shortcut);
    fused.outputs = add.outputs;
    fused.attrs.set("residual", int64_t{1});
    graph.nodes[*next] = std::move(fused);
    remove[i] = true;
  }
  erase_nodes(graph, remove);
}

}  // namespace visage::rt
