// Operator kernels: how a Node becomes something the executor can run.
//
// A factory is called once per node when a Model is built. It parses the
// node's attributes, may pre-process constant inputs (e.g. reorder conv
// weights), and returns a Kernel: a closure that is immutable after build and
// so may be called from many sessions at once.
//
// At run time a kernel receives its inputs (undefined tensors for omitted
// optional inputs) and writes each output slot. An output slot may already
// hold the tensor this node produced in the session's previous run: a kernel
// may write into it (at::*_out variants) when shape and dtype still match, or
// simply assign a new tensor.
//
// Families register their operators in one explicit table (registry.cpp);
// there is no static self-registration.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "runtime/graph.hpp"

namespace visage::rt {

using Kernel = std::function<void(std::span<const at::Tensor> inputs, std::span<at::Tensor> outputs)>;

struct BuildContext {
  const Graph& graph;
  at::Device device = at::kCPU;
  bool fp16 = false;  // float tensors on this model's device are half precision

  // The value of a constant input (an initializer), or nullptr when the input
  // is computed at run time or omitted.
  const at::Tensor* constant(const Node& node, size_t input_index) const;
};

using KernelFactory = Kernel (*)(const Node& node, const BuildContext& context);

class OpTable {
 public:
  void add(const std::string& op, KernelFactory factory);
  // nullptr when the operator is unknown.
  KernelFactory find(const std::string& op) const;
  std::vector<std::string> ops() const;

 private:
  std::map<std::string, KernelFactory> factories_;
};

// The table of every operator the runtime supports (registry.cpp).
const OpTable& op_table();

// Helpers shared by kernels.

// The values of a 0-D or 1-D integer tensor (any device).
std::vector<int64_t> to_int_vector(const at::Tensor& tensor);
// Negative axes count from the end; throws std::invalid_argument when out of range.
int64_t normalize_axis(int64_t axis, int64_t rank);
// Throws std::invalid_argument with `message` when `condition` is false.
void require(bool condition, const std::string& message);

}  // namespace visage::rt
