// Shared harness for operator tests: builds a one-node graph, asks the
// operator table for the kernel and runs it, as the executor would.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "runtime/graph.hpp"
#include "runtime/kernel.hpp"

namespace visage::test {

inline rt::Attributes attrs(std::initializer_list<std::pair<std::string, rt::AttrValue>> values) {
  rt::Attributes result;
  for (const auto& [name, value] : values) result.set(name, value);
  return result;
}

struct OpOptions {
  rt::Attributes attributes;
  size_t outputs = 1;
  at::Device device = at::kCPU;
  bool fp16 = false;
  // Output slots as the executor offers them: the previous run's tensors.
  std::vector<at::Tensor> previous;
};

// Runs operator `op` on `inputs` (undefined tensors stand for omitted
// optional inputs) and returns its outputs.
inline std::vector<at::Tensor> run_op(const std::string& op, const std::vector<at::Tensor>& inputs,
                                      OpOptions options = {}) {
  rt::Graph graph;
  graph.source = "op_test";
  rt::Node node;
  node.op = op;
  node.name = "test_" + op;
  for (size_t i = 0; i < inputs.size(); ++i) node.inputs.push_back(inputs[i].defined() ? "in" + std::to_string(i) : "");
  for (size_t i = 0; i < options.outputs; ++i) node.outputs.push_back("out" + std::to_string(i));
  node.attrs = options.attributes;
  rt::KernelFactory factory = rt::op_table().find(op);
  if (!factory) throw std::invalid_argument("operator " + op + " is not registered");
  rt::BuildContext context{graph, options.device, options.fp16};
  rt::Kernel kernel = factory(node, context);
  std::vector<at::Tensor> outputs = options.previous;
  outputs.resize(options.outputs);
  kernel(inputs, outputs);
  return outputs;
}

inline at::Tensor run1(const std::string& op, const std::vector<at::Tensor>& inputs, rt::Attributes attributes = {}) {
  OpOptions options;
  options.attributes = std::move(attributes);
  return run_op(op, inputs, options).at(0);
}

inline at::Tensor ints(std::vector<int64_t> values) { return at::tensor(values, at::kLong); }
// A tensor of `shape` from its values in row-major order.
inline at::Tensor make(std::vector<double> values, std::vector<int64_t> shape, at::ScalarType dtype) {
  return at::tensor(values, at::kDouble).reshape(shape).to(dtype);
}
inline at::Tensor floats(std::vector<float> values) { return at::tensor(values, at::kFloat); }

// Exact comparison of dtype, shape and values (NaNs equal).
inline ::testing::AssertionResult same(const at::Tensor& actual, const at::Tensor& expected) {
  if (actual.scalar_type() != expected.scalar_type())
    return ::testing::AssertionFailure() << "dtype " << actual.scalar_type() << " != " << expected.scalar_type();
  if (actual.sizes() != expected.sizes())
    return ::testing::AssertionFailure() << "shape " << actual.sizes() << " != " << expected.sizes();
  at::Tensor a = actual.cpu();
  at::Tensor e = expected.cpu();
  if (a.is_floating_point() ? !at::allclose(a, e, 0, 0, /*equal_nan=*/true) : !at::equal(a, e))
    return ::testing::AssertionFailure() << "values differ:\n" << a << "\nexpected\n" << e;
  return ::testing::AssertionSuccess();
}

// Comparison with a relative tolerance for floating-point results.
inline ::testing::AssertionResult close(const at::Tensor& actual, const at::Tensor& expected, double rtol = 1e-5,
                                        double atol = 1e-6) {
  if (actual.sizes() != expected.sizes())
    return ::testing::AssertionFailure() << "shape " << actual.sizes() << " != " << expected.sizes();
  at::Tensor a = actual.cpu().to(at::kDouble);
  at::Tensor e = expected.cpu().to(at::kDouble);
  if (!at::allclose(a, e, rtol, atol, /*equal_nan=*/true)) {
    double worst = (a - e).abs().nan_to_num(0).max().item<double>();
    return ::testing::AssertionFailure() << "max |difference| " << worst << "\nactual\n" << a << "\nexpected\n" << e;
  }
  return ::testing::AssertionSuccess();
}

}  // namespace visage::test
