// What a built Model holds: the compiled plan the Session executes.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/graph.hpp"
#include "runtime/kernel.hpp"
#include "visage/runtime.hpp"

namespace visage {

struct Model::Impl {
  struct Step {
    std::string op;
    std::string name;
    rt::Kernel kernel;
    std::vector<int> inputs;   // slot per input, -1 for an omitted optional input
    std::vector<int> outputs;  // slot per output, -1 for an unused output
    std::vector<int> release;  // slots whose last reader is this step
    // fp16 models: run this step in float32 (half inputs widened first).
    bool widen = false;
  };

  RuntimeOptions options;
  std::filesystem::path path;
  at::Device device = at::kCPU;
  bool fp16 = false;
  std::vector<TensorInfo> inputs;
  std::vector<TensorInfo> outputs;
  std::vector<Step> steps;
  std::vector<std::pair<int, at::Tensor>> constants;  // slot and value, already on their device
  std::vector<int> input_slots;
  std::vector<int> output_slots;
  int slot_count = 0;

  // Wraps a built plan as a Model (tests build graphs in memory this way).
  static std::shared_ptr<const Model> wrap(std::unique_ptr<Impl> impl) {
    return std::shared_ptr<const Model>(new Model(std::move(impl)));
  }

  static std::unique_ptr<Impl> build(rt::Graph graph, const std::filesystem::path& path, const RuntimeOptions& options,
                                     at::Device device);
};

}  // namespace visage
