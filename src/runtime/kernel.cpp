#include "runtime/kernel.hpp"

#include <ATen/ops/_to_copy.h>

#include <stdexcept>

namespace visage::rt {

const at::Tensor* BuildContext::constant(const Node& node, size_t input_index) const {
  if (input_index >= node.inputs.size() || node.inputs[input_index].empty()) return nullptr;
  auto it = graph.initializers.find(node.inputs[input_index]);
  return it == graph.initializers.end() ? nullptr : &it->second;
}

void OpTable::add(const std::string& op, KernelFactory factory) { factories_[op] = factory; }

KernelFactory OpTable::find(const std::string& op) const {
  auto it = factories_.find(op);
  return it == factories_.end() ? nullptr : it->second;
}

std::vector<std::string> OpTable::ops() const {
  std::vector<std::string> names;
  for (const auto& [name, factory] : factories_) names.push_back(name);
  return names;
}

std::vector<int64_t> to_int_vector(const at::Tensor& tensor) {
  require(tensor.defined(), "expected an integer tensor, got none");
  require(tensor.dim() <= 1, "expected a 0-D or 1-D tensor of integers");
  at::Tensor host = tensor.device().is_cpu() ? tensor : tensor.cpu();
  host = host.to(at::kLong).contiguous();
  const int64_t* data = host.data_ptr<int64_t>();
  return std::vector<int64_t>(data, data + host.numel());
}

int64_t normalize_axis(int64_t axis, int64_t rank) {
  int64_t normalized = axis < 0 ? axis + rank : axis;
  require(normalized >= 0 && normalized < std::max<int64_t>(rank, 1),
          "axis " + std::to_string(axis) + " out of range for rank " + std::to_string(rank));
  return normalized;
}

void require(bool condition, const std::string& message) {
  if (!condition) throw std::invalid_argument(message);
}

}  // namespace visage::rt
