// Small helpers the passes share for rewriting a Graph in place.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "runtime/graph.hpp"

namespace visage::rt {

// Who reads each value: node indices (a node reading a value twice appears twice).
std::map<std::string, std::vector<size_t>> consumers_of(const Graph& graph);

// The index of the only node reading `node`'s first output, when it has
// exactly one reader and is not a graph output.
std::optional<size_t> single_consumer(const Graph& graph, const std::map<std::string, std::vector<size_t>>& consumers,
                                      const Node& node);

// True when `value` is one of the graph's outputs.
bool is_graph_output(const Graph& graph, const std::string& value);

// Makes every reader of `from` read `to` instead (graph outputs are left alone).
void replace_uses(Graph& graph, const std::string& from, const std::string& to);

// Removes the nodes whose indices are marked.
void erase_nodes(Graph& graph, const std::vector<bool>& remove);

// The value of a constant scalar-like input (numel 1), if the input is an initializer.
bool constant_scalar(const Graph& graph, const std::string& value, double& out);

}  // namespace visage::rt
