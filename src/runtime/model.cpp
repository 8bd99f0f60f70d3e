// Model building (load, optimise, compile to steps) and the Session executor.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <c10/util/Exception.h>

#ifdef VISAGE_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "runtime/kernel.hpp"
#include "runtime/loaders/loaders.hpp"
#include "runtime/model_impl.hpp"
#include "runtime/passes/passes.hpp"
#include "visage/runtime.hpp"

namespace visage {
namespace {

using rt::Graph;
using rt::Node;

std::string describe(const Node& node) { return "node '" + node.name + "' (" + node.op + ")"; }

// Inputs of these operators are parameters (shapes, axes, scales, counts)
// that kernels read on the host; constants feeding them stay on the CPU in
// their own dtype rather than moving to the device or to fp16.
bool is_host_parameter(const std::string& op, size_t input) {
  static const std::map<std::string, std::set<size_t>> table = {
      {"Reshape", {1}},
      {"Expand", {1}},
      {"Tile", {1}},
      {"Unsqueeze", {1}},
      {"Squeeze", {1}},
      {"Slice", {1, 2, 3, 4}},
      {"Pad", {1, 2, 3}},
      {"Resize", {1, 2, 3}},
      {"Upsample", {1}},
      {"Split", {1}},
      {"ConstantOfShape", {0}},
      {"Range", {0, 1, 2}},
      {"ReduceMean", {1}},
      {"ReduceSum", {1}},
      {"ReduceMax", {1}},
      {"ReduceMin", {1}},
      {"ReduceProd", {1}},
      {"ReduceL1", {1}},
      {"ReduceL2", {1}},
      {"ReduceLogSumExp", {1}},
      {"ReduceSumSquare", {1}},
      {"ReduceLogSum", {1}},
      {"TopK", {1}},
      {"OneHot", {1}},
      {"CumSum", {1}},
      {"tf.StridedSlice", {1, 2, 3}},
      {"NonMaxSuppression", {2, 3, 4}},
  };
  auto it = table.find(op);
  return it != table.end() && it->second.count(input) != 0;
}

at::Device torch_device(const RuntimeOptions& options) {
  if (options.device == Device::cpu) return at::Device(at::kCPU);
#ifdef VISAGE_WITH_CUDA
  if (!at::cuda::is_available()) throw Error(ErrorKind::resource, "CUDA was requested but no CUDA device is visible");
  if (options.device_index < 0 || options.device_index >= at::cuda::device_count())
    throw Error(ErrorKind::resource, "CUDA device " + std::to_string(options.device_index) + " does not exist");
  // fp32 means IEEE float32: ATen would otherwise let cuDNN and cuBLAS round
  // matrix inputs to TF32 (10-bit mantissa), about 1e-3 relative error.
  // A process-wide switch of ATen's; fp16 models do not depend on it.
  if (options.precision == Precision::fp32) {
    at::globalContext().setAllowTF32CuDNN(false);
    at::globalContext().setAllowTF32CuBLAS(false);
  }
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(options.device_index));
#else
  throw Error(ErrorKind::unsupported, "this build of Visage has no CUDA backend (configure with -DVISAGE_CUDA=ON)");
#endif
}

std::string short_reason(const std::exception& e) {
  // c10 errors carry a multi-line backtrace; the first line is the reason.
  std::string what = e.what();
  auto newline = what.find('\n');
  return newline == std::string::npos ? what : what.substr(0, newline);
}

}  // namespace

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

const std::vector<TensorInfo>& Model::inputs() const { return impl_->inputs; }
const std::vector<TensorInfo>& Model::outputs() const { return impl_->outputs; }
const RuntimeOptions& Model::options() const { return impl_->options; }
const std::filesystem::path& Model::path() const { return impl_->path; }
size_t Model::node_count() const { return impl_->steps.size(); }
std::vector<std::string> Model::node_ops() const {
  std::vector<std::string> ops;
  for (const auto& step : impl_->steps) ops.push_back(step.op);
  return ops;
}

std::shared_ptr<const Model> Model::load(const std::filesystem::path& path, const RuntimeOptions& options) {
  if (options.precision == Precision::fp16 && options.device != Device::cuda)
    throw Error(ErrorKind::unsupported, "fp16 precision is only available on CUDA");
  at::Device device = torch_device(options);
  Graph graph = rt::load_any(path);
  return std::shared_ptr<const Model>(new Model(Impl::build(std::move(graph), path, options, device)));
}

std::unique_ptr<Model::Impl> Model::Impl::build(rt::Graph graph, const std::filesystem::path& path,
                                                const RuntimeOptions& options, at::Device device) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->path = path;
  impl->device = device;
  impl->fp16 = options.precision == Precision::fp16;

  rt::topological_sort(graph);
  rt::remove_dead_nodes(graph);
  if (options.optimize) {
    rt::remove_identities(graph);
    rt::fold_constants(graph);
    rt::fold_batch_norm(graph);
    rt::recognise_activations(graph);
    rt::fuse_residual_add(graph);
    rt::fuse_activations(graph);
    rt::remove_dead_nodes(graph);
  }

  for (const auto& input : graph.inputs) impl->inputs.push_back({input.name, input.dtype, input.shape});
  for (const auto& output : graph.outputs) impl->outputs.push_back({output.name, output.dtype, output.shape});

  // Give every value a slot.
  std::map<std::string, int> slot_of;
  auto slot = [&](const std::string& name) {
    auto [it, inserted] = slot_of.emplace(name, static_cast<int>(slot_of.size()));
    return it->second;
  };
  for (const auto& input : graph.inputs) impl->input_slots.push_back(slot(input.name));

  // Constants: on the device unless a host-parameter input reads them.
  std::set<std::string> host_constants;
  std::set<std::string> conv_weights;
  for (const auto& node : graph.nodes)
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      if (graph.is_initializer(node.inputs[i]) && is_host_parameter(node.op, i)) host_constants.insert(node.inputs[i]);
      if (node.op == "Conv" && i == 1) conv_weights.insert(node.inputs[i]);
    }
  for (auto& [name, value] : graph.initializers) {
    at::Tensor placed = value;
    bool on_host = host_constants.count(name) || (!value.is_floating_point() && value.numel() <= 64);
    if (!on_host) {
      placed = value.to(device);
      if (impl->fp16 && placed.scalar_type() == at::kFloat) placed = placed.to(at::kHalf);
    }
    // Layout resolution: 2-D convolution weights in channels-last order make
    // ATen run every convolution, and the elementwise ops between them, in
    // NHWC, the fast path of oneDNN and of cuDNN's tensor cores. TF.js
    // graphs are NHWC already; ONNX graphs switch once, at their first Conv.
    if (options.optimize && conv_weights.count(name) && placed.dim() == 4 && placed.is_floating_point())
      placed = placed.contiguous(at::MemoryFormat::ChannelsLast);
    impl->constants.emplace_back(slot(name), placed);
  }

  // Build kernels. The build context sees the initializers already converted
  // the way the device will hold them, so kernels can pre-process weights.
  Graph device_graph_view;
  device_graph_view.source = graph.source;
  for (const auto& [slot_index, value] : impl->constants) {
    for (const auto& [name, index] : slot_of)
      if (index == slot_index) device_graph_view.initializers[name] = value;
  }
  rt::BuildContext context{device_graph_view, device, impl->fp16};
  const rt::OpTable& table = rt::op_table();
  for (const auto& node : graph.nodes) {
    rt::KernelFactory factory = table.find(node.op);
    if (!factory)
      throw Error(ErrorKind::unsupported, path.string() + ": " + describe(node) + ": operator '" + node.op +
                                              "' is not supported by the Visage runtime");
    Step step;
    step.op = node.op;
    step.name = node.name;
    try {
      step.kernel = factory(node, context);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Error(ErrorKind::model, path.string() + ": " + describe(node) + ": " + short_reason(e));
    }
    for (const auto& input : node.inputs) step.inputs.push_back(input.empty() ? -1 : slot(input));
    for (const auto& output : node.outputs) step.outputs.push_back(output.empty() ? -1 : slot(output));
    impl->steps.push_back(std::move(step));
  }
  if (impl->fp16) {
    // The steps after the last convolution or matrix product (the tail: L2
    // normalisation of an embedding, score decoding) are cheap but prone to
    // overflow in half precision: a sum of squares passes 65504 long before
    // the embedding does. They run in float32, like autocast's fp32 list.
    size_t tail = 0;
    for (size_t s = 0; s < impl->steps.size(); ++s) {
      const std::string& op = impl->steps[s].op;
      if (op == "Conv" || op == "ConvTranspose" || op == "MatMul" || op == "Gemm" || op == "tf.BatchMatMul")
        tail = s + 1;
    }
    for (size_t s = tail; s < impl->steps.size(); ++s) impl->steps[s].widen = true;
  }
  for (const auto& output : graph.outputs) {
    if (!slot_of.count(output.name))
      throw Error(ErrorKind::model, path.string() + ": graph output '" + output.name + "' is never produced");
    impl->output_slots.push_back(slot_of.at(output.name));
  }
  impl->slot_count = static_cast<int>(slot_of.size());

  // Release each intermediate after its last reader, so peak memory stays
  // near the largest live set rather than the sum of all values.
  std::set<int> pinned(impl->output_slots.begin(), impl->output_slots.end());
  pinned.insert(impl->input_slots.begin(), impl->input_slots.end());
  for (const auto& [slot_index, value] : impl->constants) pinned.insert(slot_index);
  std::map<int, size_t> last_use;
  for (size_t s = 0; s < impl->steps.size(); ++s) {
    for (int in : impl->steps[s].inputs)
      if (in >= 0) last_use[in] = s;
    for (int out : impl->steps[s].outputs)
      if (out >= 0 && !last_use.count(out)) last_use[out] = s;
  }
  for (const auto& [value_slot, step_index] : last_use)
    if (!pinned.count(value_slot)) impl->steps[step_index].release.push_back(value_slot);
  return impl;
}

// ---------------------------------------------------------------------------
// Session

struct Session::State {
  std::vector<at::Tensor> slots;
  // CPU: each node's output from the previous run, offered back to its kernel
  // as the buffer to write into (see kernel.hpp). Kept only while the sum of
  // the intermediates stays under a budget.
  std::vector<at::Tensor> previous;
  bool reuse_buffers = true;
#ifdef VISAGE_WITH_CUDA
  std::unique_ptr<at::cuda::CUDAGraph> graph;
  std::vector<at::Tensor> graph_inputs;
  std::vector<at::Tensor> graph_outputs;
  std::vector<std::vector<int64_t>> graph_shapes;
  bool graphs_unsupported = false;  // capture failed once: run eagerly from then on
  std::optional<std::vector<at::Tensor>> run_cuda_graph(const Model::Impl& impl, const std::vector<at::Tensor>& inputs);
#endif

  at::Tensor stage_input(const Model::Impl& impl, const at::Tensor& input);
  std::vector<at::Tensor> run_steps(const Model::Impl& impl, const std::vector<at::Tensor>& inputs);
};

Session::Session(std::shared_ptr<const Model> model) : model_(std::move(model)), state_(std::make_unique<State>()) {
  if (!model_) throw Error(ErrorKind::bad_input, "Session needs a model");
  state_->slots.resize(static_cast<size_t>(model_->impl().slot_count));
  state_->previous.resize(state_->slots.size());
  state_->reuse_buffers = model_->impl().device.is_cpu();
}
Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

namespace {

constexpr int64_t kReuseBudgetBytes = 256ll << 20;

void check_inputs(const Model& model, const std::vector<at::Tensor>& inputs) {
  const auto& infos = model.inputs();
  const std::string file = model.path().string();
  if (inputs.size() != infos.size())
    throw Error(ErrorKind::bad_input, file + ": expected " + std::to_string(infos.size()) + " input(s), got " +
                                          std::to_string(inputs.size()));
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto& info = infos[i];
    const at::Tensor& t = inputs[i];
    std::string where = file + ": input '" + info.name + "'";
    if (!t.defined()) throw Error(ErrorKind::bad_input, where + " is missing");
    if (t.is_floating_point() != at::isFloatingType(info.dtype))
      throw Error(ErrorKind::bad_input, where + " expects " + std::string(c10::toString(info.dtype)) + ", got " +
                                            std::string(c10::toString(t.scalar_type())));
    if (info.shape.empty()) continue;  // scalar or unknown rank
    if (t.dim() != static_cast<int64_t>(info.shape.size()))
      throw Error(ErrorKind::bad_input,
                  where + " expects rank " + std::to_string(info.shape.size()) + ", got " + std::to_string(t.dim()));
    for (size_t d = 0; d < info.shape.size(); ++d)
      if (info.shape[d] >= 0 && t.size(static_cast<int64_t>(d)) != info.shape[d]) {
        std::ostringstream message;
        message << where << " expects shape [";
        for (size_t k = 0; k < info.shape.size(); ++k)
          message << (k ? "," : "") << (info.shape[k] < 0 ? std::string("?") : std::to_string(info.shape[k]));
        message << "], got " << t.sizes();
        throw Error(ErrorKind::bad_input, message.str());
      }
  }
}

}  // namespace

std::vector<at::Tensor> Session::run(const std::vector<at::Tensor>& inputs) {
  const Model::Impl& impl = model_->impl();
  check_inputs(*model_, inputs);
  c10::InferenceMode inference_mode;
#ifdef VISAGE_WITH_CUDA
  std::optional<c10::cuda::CUDAGuard> guard;
  if (impl.device.is_cuda()) guard.emplace(impl.device.index());
  if (impl.device.is_cuda() && impl.options.cuda_graphs && !state_->graphs_unsupported)
    if (auto outputs = state_->run_cuda_graph(impl, inputs)) return *outputs;
#endif
  std::vector<at::Tensor> staged;
  for (const auto& input : inputs) staged.push_back(state_->stage_input(impl, input));
  std::vector<at::Tensor> outputs = state_->run_steps(impl, staged);
  for (auto& output : outputs)
    if (output.scalar_type() == at::kHalf) output = output.to(at::kFloat);
  return outputs;
}

at::Tensor Session::State::stage_input(const Model::Impl& impl, const at::Tensor& input) {
  at::Tensor value = input.to(impl.device);
  if (impl.fp16 && value.scalar_type() == at::kFloat) value = value.to(at::kHalf);
  return value;
}

std::vector<at::Tensor> Session::State::run_steps(const Model::Impl& impl, const std::vector<at::Tensor>& inputs) {
  for (const auto& [slot_index, value] : impl.constants) slots[static_cast<size_t>(slot_index)] = value;
  for (size_t i = 0; i < inputs.size(); ++i) slots[static_cast<size_t>(impl.input_slots[i])] = inputs[i];

  std::vector<at::Tensor> in_values;
  std::vector<at::Tensor> out_values;
  for (const auto& step : impl.steps) {
    in_values.clear();
    for (int s : step.inputs) in_values.push_back(s >= 0 ? slots[static_cast<size_t>(s)] : at::Tensor());
    if (step.widen)
      for (auto& value : in_values)
        if (value.defined() && value.scalar_type() == at::kHalf) value = value.to(at::kFloat);
    out_values.assign(step.outputs.size(), at::Tensor());
    if (reuse_buffers)
      for (size_t o = 0; o < step.outputs.size(); ++o)
        if (step.outputs[o] >= 0) out_values[o] = std::move(previous[static_cast<size_t>(step.outputs[o])]);
    try {
      step.kernel(in_values, out_values);
    } catch (const Error& e) {
      throw Error(e.kind(), impl.path.string() + ": node '" + step.name + "' (" + step.op + "): " + e.what());
    } catch (const std::exception& e) {
      std::string reason = short_reason(e);
      ErrorKind kind = reason.find("out of memory") != std::string::npos ? ErrorKind::resource : ErrorKind::bad_input;
      throw Error(kind, impl.path.string() + ": node '" + step.name + "' (" + step.op + ") failed: " + reason);
    }
    for (size_t o = 0; o < step.outputs.size(); ++o)
      if (step.outputs[o] >= 0) slots[static_cast<size_t>(step.outputs[o])] = std::move(out_values[o]);
    for (int s : step.release) {
      if (reuse_buffers) previous[static_cast<size_t>(s)] = slots[static_cast<size_t>(s)];
      slots[static_cast<size_t>(s)].reset();
    }
  }

  std::vector<at::Tensor> outputs;
  for (int s : impl.output_slots) outputs.push_back(slots[static_cast<size_t>(s)]);
  for (auto& value : slots) value.reset();

  if (reuse_buffers) {
    // Never hand a caller's tensor back to a kernel as scratch: drop kept
    // buffers that share storage with an output. Stop keeping buffers when
    // they would hold more memory than the budget.
    int64_t kept_bytes = 0;
    for (auto& kept : previous) {
      if (!kept.defined()) continue;
      bool aliases_output = false;
      for (const auto& output : outputs) aliases_output = aliases_output || kept.is_alias_of(output);
      if (aliases_output)
        kept.reset();
      else
        kept_bytes += static_cast<int64_t>(kept.nbytes());
    }
    if (kept_bytes > kReuseBudgetBytes) {
      reuse_buffers = false;
      for (auto& kept : previous) kept.reset();
    }
  }
  return outputs;
}

#ifdef VISAGE_WITH_CUDA
std::optional<std::vector<at::Tensor>> Session::State::run_cuda_graph(const Model::Impl& impl,
                                                                      const std::vector<at::Tensor>& inputs) {
  std::vector<std::vector<int64_t>> shapes;
  for (const auto& input : inputs) shapes.push_back(input.sizes().vec());
  if (!graph || shapes != graph_shapes) {
    // Warm up on a side stream (cuDNN picks algorithms, allocations settle),
    // then capture one run with static input buffers.
    graph.reset();
    graph_inputs.clear();
    for (const auto& input : inputs) graph_inputs.push_back(stage_input(impl, input).clone());
    auto stream = c10::cuda::getStreamFromPool(false, impl.device.index());
    c10::cuda::CUDAStreamGuard stream_guard(stream);
    for (int i = 0; i < 2; ++i) run_steps(impl, graph_inputs);
    stream.synchronize();
    auto captured = std::make_unique<at::cuda::CUDAGraph>();
    captured->capture_begin();
    try {
      graph_outputs = run_steps(impl, graph_inputs);
    } catch (const std::exception&) {
      // Some graphs cannot be captured: a kernel copies between host and
      // device mid-run (shape arithmetic read back, CPU-side parameters).
      // Close the capture, wait for the device, forget everything made for
      // it, and let the caller run this session eagerly from now on.
      try {
        captured->capture_end();
      } catch (const std::exception&) {
      }
      (void)cudaGetLastError();
      captured.reset();
      graph_outputs.clear();
      graph_inputs.clear();
      for (auto& value : slots) value.reset();
      at::cuda::device_synchronize();
      graphs_unsupported = true;
      return std::nullopt;
    }
    captured->capture_end();
    graph = std::move(captured);
    graph_shapes = shapes;
  }
  for (size_t i = 0; i < inputs.size(); ++i) graph_inputs[i].copy_(inputs[i]);
  graph->replay();
  std::vector<at::Tensor> outputs;
  for (const auto& output : graph_outputs)
    outputs.push_back(output.scalar_type() == at::kHalf ? output.to(at::kFloat) : output.clone());
  return outputs;
}
#endif

void set_cpu_threads(int threads) {
  if (threads > 0) at::set_num_threads(threads);
}

void cuda_synchronize() {
#ifdef VISAGE_WITH_CUDA
  if (at::cuda::is_available()) at::cuda::device_synchronize();
#endif
}

#ifdef VISAGE_WITH_CUDA
struct CudaStreamScope::Guard {
  explicit Guard(c10::cuda::CUDAStream stream) : guard(stream) {}
  c10::cuda::CUDAStreamGuard guard;
};
CudaStreamScope::CudaStreamScope() {
  if (at::cuda::is_available()) guard_ = std::make_unique<Guard>(c10::cuda::getStreamFromPool());
}
#else
struct CudaStreamScope::Guard {};
CudaStreamScope::CudaStreamScope() = default;
#endif
CudaStreamScope::~CudaStreamScope() = default;

bool cuda_available() {
#ifdef VISAGE_WITH_CUDA
  return at::cuda::is_available();
#else
  return false;
#endif
}

}  // namespace visage
