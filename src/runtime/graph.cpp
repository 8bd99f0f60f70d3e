#include "runtime/graph.hpp"

#include <deque>
#include <set>
#include <stdexcept>

#include "visage/error.hpp"

namespace visage::rt {
namespace {

template <typename T>
const T* get_if_typed(const std::map<std::string, AttrValue>& values, const std::string& name, const char* type) {
  auto it = values.find(name);
  if (it == values.end()) return nullptr;
  const T* value = std::get_if<T>(&it->second);
  if (!value) throw std::invalid_argument("attribute '" + name + "' is not " + type);
  return value;
}

}  // namespace

int64_t Attributes::get_int(const std::string& name, int64_t fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  if (const auto* d = std::get_if<double>(&it->second)) return static_cast<int64_t>(*d);
  const auto* v = get_if_typed<int64_t>(values_, name, "an integer");
  return *v;
}

double Attributes::get_float(const std::string& name, double fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  if (const auto* i = std::get_if<int64_t>(&it->second)) return static_cast<double>(*i);
  return *get_if_typed<double>(values_, name, "a float");
}

std::string Attributes::get_string(const std::string& name, const std::string& fallback) const {
  const auto* v = get_if_typed<std::string>(values_, name, "a string");
  return v ? *v : fallback;
}

std::vector<int64_t> Attributes::get_ints(const std::string& name, const std::vector<int64_t>& fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  if (const auto* single = std::get_if<int64_t>(&it->second)) return {*single};
  return *get_if_typed<std::vector<int64_t>>(values_, name, "a list of integers");
}

std::vector<double> Attributes::get_floats(const std::string& name, const std::vector<double>& fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  if (const auto* single = std::get_if<double>(&it->second)) return {*single};
  return *get_if_typed<std::vector<double>>(values_, name, "a list of floats");
}

std::vector<std::string> Attributes::get_strings(const std::string& name) const {
  const auto* v = get_if_typed<std::vector<std::string>>(values_, name, "a list of strings");
  return v ? *v : std::vector<std::string>{};
}

std::optional<at::Tensor> Attributes::get_tensor(const std::string& name) const {
  const auto* v = get_if_typed<at::Tensor>(values_, name, "a tensor");
  if (!v) return std::nullopt;
  return *v;
}

void topological_sort(Graph& graph) {
  std::set<std::string> available;
  for (const auto& input : graph.inputs) available.insert(input.name);
  for (const auto& [name, value] : graph.initializers) available.insert(name);

  std::map<std::string, size_t> producer;
  for (size_t i = 0; i < graph.nodes.size(); ++i)
    for (const auto& output : graph.nodes[i].outputs)
      if (!output.empty()) producer[output] = i;

  std::vector<int> missing(graph.nodes.size(), 0);
  std::map<std::string, std::vector<size_t>> waiting;
  std::deque<size_t> ready;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    std::set<std::string> pending;
    for (const auto& input : graph.nodes[i].inputs) {
      if (input.empty() || available.count(input)) continue;
      if (!producer.count(input))
        throw Error(ErrorKind::model, graph.source + ": node '" + graph.nodes[i].name + "' (" + graph.nodes[i].op +
                                          ") reads '" + input + "', which no node, input or initializer provides");
      pending.insert(input);
    }
    missing[i] = static_cast<int>(pending.size());
    for (const auto& value : pending) waiting[value].push_back(i);
    if (missing[i] == 0) ready.push_back(i);
  }

  std::vector<Node> sorted;
  sorted.reserve(graph.nodes.size());
  while (!ready.empty()) {
    size_t i = ready.front();
    ready.pop_front();
    sorted.push_back(graph.nodes[i]);
    for (const auto& output : graph.nodes[i].outputs) {
      auto it = waiting.find(output);
      if (it == waiting.end()) continue;
      for (size_t consumer : it->second)
        if (--missing[consumer] == 0) ready.push_back(consumer);
      waiting.erase(it);
    }
  }
  if (sorted.size() != graph.nodes.size()) throw Error(ErrorKind::model, graph.source + ": the graph has a cycle");
  graph.nodes = std::move(sorted);
}

void remove_dead_nodes(Graph& graph) {
  std::set<std::string> live;
  for (const auto& output : graph.outputs) live.insert(output.name);
  std::vector<bool> keep(graph.nodes.size(), false);
  for (size_t i = graph.nodes.size(); i-- > 0;) {
    const Node& node = graph.nodes[i];
    bool needed = false;
    for (const auto& output : node.outputs) needed = needed || (!output.empty() && live.count(output));
    if (!needed) continue;
    keep[i] = true;
    for (const auto& input : node.inputs)
      if (!input.empty()) live.insert(input);
  }
  std::vector<Node> kept;
  for (size_t i = 0; i < graph.nodes.size(); ++i)
    if (keep[i]) kept.push_back(std::move(graph.nodes[i]));
  graph.nodes = std::move(kept);
  for (auto it = graph.initializers.begin(); it != graph.initializers.end();)
    it = live.count(it->first) ? std::next(it) : graph.initializers.erase(it);
}

std::map<std::string, int> use_counts(const Graph& graph) {
  std::map<std::string, int> counts;
  for (const auto& node : graph.nodes)
    for (const auto& input : node.inputs)
      if (!input.empty()) ++counts[input];
  for (const auto& output : graph.outputs) ++counts[output.name];
  return counts;
}

}  // namespace visage::rt
