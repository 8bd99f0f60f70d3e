// What a built Model holds: the compiled plan the Session executes.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <span>
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
    // fp16 models: store this (widened) step's float results as half.
    bool narrow = false;
    // Shape or Size: its output depends only on its input's shape. Sessions
    // compare it with the value remembered from earlier runs.
    bool shape_key = false;
    // Every input is a constant or comes from shape keys and other shape-only
    // steps (shape arithmetic, index grids): for one set of input shapes its
    // outputs never change, so sessions compute them once and remember them.
    bool memoized = false;
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
  // Shape-only steps are remembered per input shape (see Step::memoized);
  // on when the model is optimised.
  bool memoize = false;
  std::vector<char> static_slot;  // per slot: a constant or a memoized step's output
  std::vector<char> memo_slot;    // per slot: a memoized step's output that other steps read

  // Wraps a built plan as a Model (tests build graphs in memory this way).
  static std::shared_ptr<const Model> wrap(std::unique_ptr<Impl> impl) {
    return std::shared_ptr<const Model>(new Model(std::move(impl)));
  }

  static std::unique_ptr<Impl> build(rt::Graph graph, const std::filesystem::path& path, const RuntimeOptions& options,
                                     at::Device device);
};

// Debugging: while set on a thread, Session::run on that thread calls it
// after every step it executes with the step and its outputs (tests compare
// the layers of an fp16 model with its fp32 twin this way).
using StepObserver = std::function<void(const Model::Impl::Step& step, std::span<const at::Tensor> outputs)>;
void set_step_observer(const StepObserver* observer);

// How many sessions in this process gave up capturing a CUDA graph and ran
// eagerly instead (tests check that a model captures).
int cuda_graph_fallbacks();

}  // namespace visage
