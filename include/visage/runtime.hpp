// visage/runtime.hpp: load a neural network once, run it from many threads.
//
// A Model is the immutable, optimised form of a network file (ONNX, TF.js
// graph-model or TF.js layers-model). It is safe to share between threads.
// A Session holds the per-run state (value buffers reused across runs, CUDA
// graph captures) and belongs to one thread at a time. Create one Session per
// worker; sessions are cheap next to the model.
//
//   auto model = visage::Model::load("blazeface.json", {});
//   visage::Session session(model);
//   auto outputs = session.run({input});
//
// Errors: every function here throws visage::Error; messages name the model
// file and, for run-time failures, the node that failed.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "visage/error.hpp"

namespace visage {

enum class Device { cpu, cuda };
enum class Precision { fp32, fp16 };

// How a model is prepared. Defaults give the fast, exact CPU path.
struct RuntimeOptions {
  Device device = Device::cpu;
  int device_index = 0;
  // fp16 stores weights and activations in half precision; CUDA only.
  Precision precision = Precision::fp32;
  // Load-time graph passes (constant folding, batch-norm folding, activation
  // fusion, layout resolution). Off runs the graph op by op as written: the
  // baseline the benchmarks compare against.
  bool optimize = true;
  // Capture each run in a CUDA graph and replay it when the input shapes
  // repeat. Ignored on CPU.
  bool cuda_graphs = false;
  // Shapes that replace what the model declares for these inputs (by name),
  // before the passes see them: a fully convolutional network exported for
  // one size runs at another. Where every changed dimension of the inputs
  // changes by the same factor, the constant target sizes of Resize nodes
  // (which exporters freeze at the declared size) scale by it too.
  std::map<std::string, std::vector<int64_t>> input_shapes;
  // Only these outputs (by name, in this order) are computed and returned;
  // what only the others need is not run. Empty: all the model declares.
  std::vector<std::string> outputs;
};

// What a graph input or output looks like. A dimension of -1 is dynamic.
struct TensorInfo {
  std::string name;
  at::ScalarType dtype = at::ScalarType::Float;
  std::vector<int64_t> shape;
};

class Model {
 public:
  // Loads and optimises a network. The format follows the file: `*.onnx`, or a
  // TF.js `model.json` (graph-model or layers-model) with its weight shards
  // beside it. Throws Error{model} for a missing, truncated or corrupt file,
  // Error{unsupported} for operators the runtime lacks.
  static std::shared_ptr<const Model> load(const std::filesystem::path& path, const RuntimeOptions& options = {});

  virtual ~Model();

  const std::vector<TensorInfo>& inputs() const;
  const std::vector<TensorInfo>& outputs() const;
  const RuntimeOptions& options() const;
  const std::filesystem::path& path() const;
  // Count of executable nodes after the load-time passes.
  size_t node_count() const;
  // Operator type of each executable node, in execution order (for tests and
  // for `visage bench runtime --verbose`).
  std::vector<std::string> node_ops() const;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class Session {
 public:
  explicit Session(std::shared_ptr<const Model> model);
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;

  // Runs the model. Inputs are given in the order of Model::inputs(), on any
  // device; they are moved to the model's device and precision as needed.
  // Outputs come back on the model's device as float32 (integer outputs keep
  // their type). Throws Error{bad_input} for a wrong input count, dtype, rank
  // or static dimension.
  std::vector<at::Tensor> run(const std::vector<at::Tensor>& inputs);

  const Model& model() const { return *model_; }

 private:
  struct State;
  std::shared_ptr<const Model> model_;
  std::unique_ptr<State> state_;
};

// Sets the number of CPU threads ATen uses for intra-op parallelism. A
// process-wide setting of ATen's; programs call it once at start.
void set_cpu_threads(int threads);

// True when this build has CUDA and a device is visible.
bool cuda_available();

// Waits for all queued work on the current CUDA device (no-op without CUDA).
// Benchmarks call it before reading a clock.
void cuda_synchronize();

// While it lives, the calling thread queues its CUDA work on a stream of its
// own (from ATen's pool) instead of the shared default stream, so that
// workers on one GPU overlap rather than wait behind each other. Tensors a
// thread makes under a scope should stay with that thread (or be synchronised
// before another thread uses them). A no-op without CUDA.
class CudaStreamScope {
 public:
  CudaStreamScope();
  ~CudaStreamScope();
  CudaStreamScope(const CudaStreamScope&) = delete;
  CudaStreamScope& operator=(const CudaStreamScope&) = delete;

 private:
  struct Guard;
  std::unique_ptr<Guard> guard_;
};

// Where the bundled model packages live: $VISAGE_NPM_DIR when set, else the
// first of <dir of the running program>/../third_party/npm/node_modules and
// ./third_party/npm/node_modules that exists. Empty when none does.
std::filesystem::path model_package_dir();

}  // namespace visage
