// Helpers the operator families share for lining up operands: devices,
// the half/float mix that fp16 models produce, output buffer reuse, and where
// a kernel-made constant should live.
#pragma once

#include <ATen/ATen.h>

#include <initializer_list>
#include <optional>
#include <span>
#include <vector>

#include "runtime/kernel.hpp"

namespace visage::rt {

// Moves `value` to `device` unless it is already there.
inline at::Tensor on_device(const at::Tensor& value, at::Device device) {
  return value.device() == device ? value : value.to(device);
}

// The device a set of data operands should be computed on: the first non-CPU
// one (shape values on the CPU join data on the GPU, never the reverse).
inline at::Device common_device(std::initializer_list<const at::Tensor*> operands) {
  for (const at::Tensor* t : operands)
    if (t->defined() && !t->device().is_cpu()) return t->device();
  return at::Device(at::kCPU);
}

// Brings the data operands of an elementwise operator to one device and, for
// a half/float mix, to half precision: an fp16 model stays fp16 even where a
// float value computed on the host (e.g. from a Shape) joins device data.
// A CPU 0-dim operand may stay where it is when `keep_cpu_scalars` is set:
// ATen's elementwise kernels take it as a scalar without a host-to-device copy.
inline void align_operands(std::vector<at::Tensor>& operands, bool keep_cpu_scalars = false) {
  at::Device device(at::kCPU);
  for (const auto& t : operands)
    if (t.defined() && !t.device().is_cpu()) device = t.device();
  // The precision comes from a "major" operand: one already on the compute
  // device and not 0-dim. Host values and scalars follow it.
  auto is_half_or_float = [](const at::Tensor& t) {
    return t.defined() && (t.scalar_type() == at::kHalf || t.scalar_type() == at::kFloat);
  };
  std::optional<at::ScalarType> precision;
  bool any_half = false;
  for (const auto& t : operands) {
    if (!is_half_or_float(t)) continue;
    any_half = any_half || t.scalar_type() == at::kHalf;
    if (!precision && t.device() == device && t.dim() > 0) precision = t.scalar_type();
  }
  if (!precision && any_half) precision = at::kHalf;
  for (auto& t : operands) {
    if (!t.defined()) continue;
    bool scalar_kept = keep_cpu_scalars && t.dim() == 0 && t.device().is_cpu() && !device.is_cpu();
    if (t.device() != device && !scalar_kept) t = t.to(device);
    if (precision && is_half_or_float(t) && t.scalar_type() != *precision && !scalar_kept) t = t.to(*precision);
  }
}

// True when `out` (an output slot's tensor from the previous run) can take
// this run's result: same shape, dtype and device, dense, and not sharing
// memory with any input.
inline bool can_reuse(const at::Tensor& out, at::IntArrayRef sizes, at::ScalarType dtype, at::Device device,
                      std::initializer_list<const at::Tensor*> inputs) {
  if (!out.defined() || out.scalar_type() != dtype || out.device() != device || out.sizes() != sizes ||
      !out.is_contiguous())
    return false;
  for (const at::Tensor* input : inputs)
    if (input->defined() && input->is_alias_of(out)) return false;
  return true;
}

// ATen 1.13 lacks many CPU kernels for half and bfloat16; such values are
// computed in float on the CPU and converted back.
inline bool is_cpu_low_precision(const at::Tensor& t) {
  return t.device().is_cpu() && (t.scalar_type() == at::kHalf || t.scalar_type() == at::kBFloat16);
}

// Where a value a kernel makes without data inputs (Constant,
// ConstantOfShape, Range) should live, following the executor's rule for
// initializers: floating-point values and large integer tensors go to the
// model's device (floats as half in fp16 models); small integer tensors are
// shape-like and stay on the CPU.
inline at::Tensor place_like_constant(at::Tensor value, const at::Device& device, bool fp16) {
  if (!value.is_floating_point() && value.numel() <= 64) return value;
  value = on_device(value, device);
  if (fp16 && !device.is_cpu() && value.scalar_type() == at::kFloat) value = value.to(at::kHalf);
  return value;
}

// The ints of an optional 0-D/1-D input, or `fallback` when it is omitted.
inline std::vector<int64_t> optional_ints(std::span<const at::Tensor> inputs, size_t index,
                                          const std::vector<int64_t>& fallback = {}) {
  if (index >= inputs.size() || !inputs[index].defined()) return fallback;
  return to_int_vector(inputs[index]);
}

inline bool has_input(std::span<const at::Tensor> inputs, size_t index) {
  return index < inputs.size() && inputs[index].defined();
}

// A scalar read from a one-element input of any device and dtype.
inline double scalar_value(const at::Tensor& t) {
  require(t.numel() == 1, "expected a single value, got " + std::to_string(t.numel()));
  return t.reshape({}).item<double>();
}

}  // namespace visage::rt
