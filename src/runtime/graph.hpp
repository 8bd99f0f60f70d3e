// The runtime's graph IR: what every loader produces and every pass rewrites.
//
// Operators use ONNX names and semantics (opset 13+ style: axes, shapes and
// pads as inputs where ONNX has them as inputs). Two extensions carry what
// TF.js graphs need without transposes:
//   - "layout" attribute ("NCHW" default, or "NHWC") on Conv, ConvTranspose,
//     MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, Resize,
//     BatchNormalization, DepthToSpace, SpaceToDepth; weights stay OIHW.
//   - "activation" attribute on Conv / Gemm / MatMul written by the fusion
//     pass: "Relu", "Clip" (activation_min/activation_max), "LeakyRelu"
//     (activation_alpha), "Sigmoid", "Tanh", "Elu" (activation_alpha),
//     "HardSigmoid", "HardSwish", "PRelu" (slope is the last input).
//   - "residual" attribute (int, 1) on Conv, written by the fusion pass: input
//     3 is added to the output before the activation (input 2, the bias, may
//     be omitted ""); inputs are X, W, B, residual[, PRelu slope].
// Operators with no ONNX counterpart use a "tf." prefix (e.g. tf.StridedSlice).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace visage::rt {

using AttrValue = std::variant<int64_t, double, std::string, std::vector<int64_t>, std::vector<double>,
                               std::vector<std::string>, at::Tensor>;

// Node attributes with typed, defaulted getters. Getters throw
// std::invalid_argument for a present attribute of the wrong type; the
// executor turns that into a model error naming the node.
class Attributes {
 public:
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  void set(const std::string& name, AttrValue value) { values_[name] = std::move(value); }
  void erase(const std::string& name) { values_.erase(name); }

  int64_t get_int(const std::string& name, int64_t fallback) const;
  double get_float(const std::string& name, double fallback) const;
  std::string get_string(const std::string& name, const std::string& fallback) const;
  std::vector<int64_t> get_ints(const std::string& name, const std::vector<int64_t>& fallback = {}) const;
  std::vector<double> get_floats(const std::string& name, const std::vector<double>& fallback = {}) const;
  std::vector<std::string> get_strings(const std::string& name) const;
  std::optional<at::Tensor> get_tensor(const std::string& name) const;

  const std::map<std::string, AttrValue>& all() const { return values_; }

 private:
  std::map<std::string, AttrValue> values_;
};

struct Node {
  std::string op;                    // canonical operator name, e.g. "Conv", "tf.StridedSlice"
  std::string name;                  // unique within the graph; used in error messages
  std::vector<std::string> inputs;   // value names; "" marks an omitted optional input
  std::vector<std::string> outputs;  // value names; "" marks an unused optional output
  Attributes attrs;
};

struct ValueInfo {
  std::string name;
  at::ScalarType dtype = at::ScalarType::Float;
  std::vector<int64_t> shape;  // -1 for a dynamic dimension; empty with has_shape=false when unknown
  bool has_shape = true;
};

struct Graph {
  std::string source;  // the file it came from, for error messages
  std::string format;  // "onnx", "tfjs-graph", "tfjs-layers"
  std::vector<ValueInfo> inputs;
  std::vector<ValueInfo> outputs;
  // Constant values (weights, folded constants), always on the CPU here; the
  // executor moves them to the model's device.
  std::map<std::string, at::Tensor> initializers;
  std::vector<Node> nodes;

  bool is_initializer(const std::string& value) const { return initializers.count(value) != 0; }
};

// Orders nodes so that each comes after the producers of its inputs. Throws
// visage::Error{model} on a cycle or on an input that nothing produces.
void topological_sort(Graph& graph);

// Removes nodes whose outputs reach no graph output, and initializers nothing reads.
void remove_dead_nodes(Graph& graph);

// Count of consumers of each value (graph outputs count as a consumer).
std::map<std::string, int> use_counts(const Graph& graph);

}  // namespace visage::rt
