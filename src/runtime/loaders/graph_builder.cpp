#include "runtime/loaders/graph_builder.hpp"

#include <ATen/ATen.h>

#include <stdexcept>

namespace visage::rt {

std::string GraphBuilder::fresh(const std::string& hint) {
  std::string name = hint;
  for (int k = 1; taken_.count(name) || graph_.initializers.count(name); ++k) name = hint + "_" + std::to_string(k);
  taken_.insert(name);
  return name;
}

Node& GraphBuilder::add(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                        std::vector<std::string> outputs, Attributes attrs) {
  Node node;
  node.op = op;
  node.name = fresh(name);
  node.inputs = std::move(inputs);
  node.outputs = std::move(outputs);
  node.attrs = std::move(attrs);
  for (const auto& output : node.outputs) taken_.insert(output);
  graph_.nodes.push_back(std::move(node));
  return graph_.nodes.back();
}

std::string GraphBuilder::add1(const std::string& op, const std::string& hint, std::vector<std::string> inputs,
                               Attributes attrs) {
  std::string output = fresh(hint);
  add(op, output, std::move(inputs), {output}, std::move(attrs));
  return output;
}

std::string GraphBuilder::constant(const std::string& hint, const at::Tensor& value) {
  std::string name = fresh(hint);
  graph_.initializers[name] = value;
  return name;
}

std::string GraphBuilder::ints(const std::string& hint, const std::vector<int64_t>& values) {
  return constant(hint, at::tensor(values, at::kLong).reshape({static_cast<int64_t>(values.size())}));
}

std::string GraphBuilder::scalar(const std::string& hint, double value) {
  return constant(hint, at::scalar_tensor(value, at::kFloat));
}

const at::Tensor* GraphBuilder::find_constant(const std::string& value) const {
  auto it = graph_.initializers.find(value);
  return it == graph_.initializers.end() ? nullptr : &it->second;
}

int64_t onnx_type_code(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return 1;
    case at::kByte: return 2;
    case at::kChar: return 3;
    case at::kShort: return 5;
    case at::kInt: return 6;
    case at::kLong: return 7;
    case at::kBool: return 9;
    case at::kHalf: return 10;
    case at::kDouble: return 11;
    default: throw std::invalid_argument(std::string("no ONNX type for ") + c10::toString(type));
  }
}

}  // namespace visage::rt
