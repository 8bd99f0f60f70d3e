// Small helper for loaders that expand one source-format node into several IR
// nodes: unique names, int64/float constants, and node emission.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "runtime/graph.hpp"

namespace visage::rt {

class GraphBuilder {
 public:
  explicit GraphBuilder(Graph& graph) : graph_(graph) {}

  Graph& graph() { return graph_; }

  // Marks names taken by the source model (node and value names), so that
  // generated names never collide with them.
  void reserve(const std::string& name) { taken_.insert(name); }

  // A value or node name not used yet, derived from `hint`.
  std::string fresh(const std::string& hint);

  // Appends a node (its name made unique) and returns it.
  Node& add(const std::string& op, const std::string& name, std::vector<std::string> inputs,
            std::vector<std::string> outputs, Attributes attrs = {});

  // Convenience: a single-output node whose output is a fresh value named
  // after `hint`; returns that value's name.
  std::string add1(const std::string& op, const std::string& hint, std::vector<std::string> inputs,
                   Attributes attrs = {});

  // Stores `value` as an initializer under a fresh name derived from `hint`.
  std::string constant(const std::string& hint, const at::Tensor& value);
  // A 1-D int64 initializer.
  std::string ints(const std::string& hint, const std::vector<int64_t>& values);
  // A 0-D float32 initializer.
  std::string scalar(const std::string& hint, double value);

  // The initializer named `value`, or nullptr.
  const at::Tensor* find_constant(const std::string& value) const;

 private:
  Graph& graph_;
  std::set<std::string> taken_;
};

// The ONNX TensorProto.DataType code of a scalar type (for Cast's "to").
int64_t onnx_type_code(at::ScalarType type);

}  // namespace visage::rt
