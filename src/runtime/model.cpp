// Model building (load, optimise, compile to steps) and the Session executor.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <c10/util/Exception.h>

#ifdef VISAGE_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
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
      // Scalars the kernels read on the host: on the device each read would
      // copy back mid-run (and break CUDA-graph capture).
      {"Clip", {1, 2}},
      {"Dropout", {1, 2}},
      {"Trilu", {1}},
      {"tf.Slice", {1, 2}},
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

namespace {

// RuntimeOptions::input_shapes: the declared shapes replaced, and Resize
// nodes' constant sizes scaled by the inputs' common factor.
void reshape_inputs(rt::Graph& graph, const std::map<std::string, std::vector<int64_t>>& shapes) {
  double factor = 0;  // the common factor of every changed dimension; -1 when there is none
  for (auto& input : graph.inputs) {
    auto it = shapes.find(input.name);
    if (it == shapes.end()) continue;
    const std::vector<int64_t>& shape = it->second;
    if (!input.shape.empty() && shape.size() != input.shape.size())
      throw Error(ErrorKind::bad_input, graph.source + ": input '" + input.name + "' has rank " +
                                            std::to_string(input.shape.size()) + ", the shape given for it has " +
                                            std::to_string(shape.size()) + " dimensions");
    for (size_t d = 0; d < input.shape.size(); ++d) {
      if (input.shape[d] == shape[d]) continue;
      double f = input.shape[d] > 0 && shape[d] > 0 ? static_cast<double>(shape[d]) / input.shape[d] : -1;
      factor = factor == 0 || factor == f ? f : -1;
    }
    input.shape = shape;
    input.has_shape = true;
  }
  for (const auto& [name, shape] : shapes)
    if (std::none_of(graph.inputs.begin(), graph.inputs.end(), [&](const auto& in) { return in.name == name; }))
      throw Error(ErrorKind::bad_input, graph.source + ": no input named '" + name + "' to give a shape to");
  if (factor <= 0 || factor == 1) return;
  for (auto& node : graph.nodes) {
    if (node.op != "Resize" || node.inputs.size() < 4 || !graph.is_initializer(node.inputs[3])) continue;
    at::Tensor sizes = graph.initializers.at(node.inputs[3]).to(at::kLong).clone();
    // A 2-entry sizes input is [height, width]; a full one keeps batch and channels.
    std::vector<int64_t> spatial{0, 1};
    if (sizes.numel() == 4)
      spatial =
          node.attrs.get_string("layout", "NCHW") == "NHWC" ? std::vector<int64_t>{1, 2} : std::vector<int64_t>{2, 3};
    else if (sizes.numel() != 2)
      continue;
    for (int64_t d : spatial) sizes[d] = static_cast<int64_t>(std::llround(sizes[d].item<int64_t>() * factor));
    std::string name = node.inputs[3] + "/scaled_for_" + node.name;
    graph.initializers[name] = sizes;
    node.inputs[3] = name;
  }
}

}  // namespace

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

  reshape_inputs(graph, options.input_shapes);
  if (!options.outputs.empty()) {
    std::vector<rt::ValueInfo> kept;
    for (const auto& name : options.outputs) {
      auto it = std::find_if(graph.outputs.begin(), graph.outputs.end(), [&](const auto& o) { return o.name == name; });
      if (it == graph.outputs.end())
        throw Error(ErrorKind::bad_input, path.string() + ": no output named '" + name + "'");
      kept.push_back(*it);
    }
    graph.outputs = std::move(kept);
  }

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
    // VISAGE_FP16_FP32_TAIL=N (a debugging knob) moves the start of the tail
    // N convolutions / matrix products earlier; VISAGE_FP16_FP32_HEAD=N runs
    // the first N of them (and the steps before) in float32, their results
    // stored as half again.
    auto env_count = [](const char* name) {
      const char* value = std::getenv(name);
      return value ? std::max(0, std::atoi(value)) : 0;
    };
    const int extra_tail = env_count("VISAGE_FP16_FP32_TAIL");
    const int head_count = env_count("VISAGE_FP16_FP32_HEAD");
    std::vector<size_t> compute;
    for (size_t s = 0; s < impl->steps.size(); ++s) {
      const std::string& op = impl->steps[s].op;
      if (op == "Conv" || op == "ConvTranspose" || op == "MatMul" || op == "Gemm" || op == "tf.BatchMatMul")
        compute.push_back(s);
    }
    size_t tail = compute.empty() ? 0 : compute.back() + 1;
    if (extra_tail > 0 && !compute.empty())
      tail = compute[compute.size() - std::min(compute.size(), static_cast<size_t>(extra_tail))];
    for (size_t s = tail; s < impl->steps.size(); ++s) impl->steps[s].widen = true;
    if (head_count > 0 && !compute.empty()) {
      size_t head = compute[std::min(compute.size(), static_cast<size_t>(head_count)) - 1] + 1;
      for (size_t s = 0; s < std::min(head, tail); ++s) impl->steps[s].widen = impl->steps[s].narrow = true;
    }
  }
  for (const auto& output : graph.outputs) {
    if (!slot_of.count(output.name))
      throw Error(ErrorKind::model, path.string() + ": graph output '" + output.name + "' is never produced");
    impl->output_slots.push_back(slot_of.at(output.name));
  }
  impl->slot_count = static_cast<int>(slot_of.size());

  // Shape-only steps. Shape and Size read only their input's shape; a step
  // whose every input is a constant or such a value computes the same thing
  // on every run with the same input shapes (TF.js graphs rebuild index
  // grids and reshape targets from Shape on every run: ~40% of
  // facemesh-attention's steps). Sessions run them once per input shape, so
  // that a CUDA graph never copies between host and device mid-run and eager
  // runs skip the small kernels.
  impl->memoize = options.optimize;
  impl->static_slot.assign(static_cast<size_t>(impl->slot_count), 0);
  impl->memo_slot.assign(static_cast<size_t>(impl->slot_count), 0);
  for (const auto& [slot_index, value] : impl->constants) impl->static_slot[static_cast<size_t>(slot_index)] = 1;
  for (auto& step : impl->steps) {
    step.shape_key = (step.op == "Shape" || step.op == "Size") && step.outputs.size() == 1;
    bool all_static = true;
    for (int in : step.inputs)
      if (in >= 0 && !impl->static_slot[static_cast<size_t>(in)]) all_static = false;
    step.memoized = impl->memoize && !step.shape_key && all_static;
    if (step.shape_key || step.memoized)
      for (int out : step.outputs)
        if (out >= 0) impl->static_slot[static_cast<size_t>(out)] = 1;
  }
  // A memoized value is kept only where a step that still runs (or the
  // caller) reads it.
  std::set<int> constant_slots;
  for (const auto& [slot_index, value] : impl->constants) constant_slots.insert(slot_index);
  std::vector<char> memo_output(static_cast<size_t>(impl->slot_count), 0);
  for (const auto& step : impl->steps)
    if (step.memoized)
      for (int out : step.outputs)
        if (out >= 0) memo_output[static_cast<size_t>(out)] = 1;
  for (const auto& step : impl->steps)
    if (!step.memoized)
      for (int in : step.inputs)
        if (in >= 0 && memo_output[static_cast<size_t>(in)]) impl->memo_slot[static_cast<size_t>(in)] = 1;
  for (int out : impl->output_slots)
    if (memo_output[static_cast<size_t>(out)]) impl->memo_slot[static_cast<size_t>(out)] = 1;

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

  // Memoized steps (Model::Impl::Step::memoized): their outputs for the input
  // shapes of memo_shapes, and each shape key's value then. A run whose
  // shape keys differ (shapes that depend on data) starts over without the
  // memo and turns it off for this session.
  std::vector<at::Tensor> memo;
  std::vector<at::Tensor> memo_keys;
  std::vector<std::vector<int64_t>> memo_shapes;
  bool memo_ready = false;
  bool memo_off = false;
  // Where remembered values are handed to the steps that read them: a
  // kernel that would copy a host value to the device (or read a device
  // value on the host) mid-run cannot be captured in a CUDA graph, so after
  // such a failure the values it reads are staged on the other side once,
  // when they are remembered (constants too, through constant_override).
  std::vector<char> stage_on_device;
  std::vector<char> stage_on_host;
  std::map<int, at::Tensor> constant_override;
  bool capturing = false;
  int failed_step = -1;  // the step whose kernel threw in the last run_steps

  // VISAGE_PROFILE_STEPS=1: wall time of every step, the device synchronised
  // around each (a debugging aid; printed to stderr when the session ends).
  bool profile = false;
  static constexpr int kProfileWarmupRuns = 3;
  std::vector<double> profile_ms;
  int profile_seen = 0;
  int profile_runs = 0;
  const Model::Impl* profiled = nullptr;

#ifdef VISAGE_WITH_CUDA
  std::unique_ptr<at::cuda::CUDAGraph> graph;
  std::vector<at::Tensor> graph_inputs;
  std::vector<at::Tensor> graph_outputs;
  std::vector<std::vector<int64_t>> graph_shapes;
  bool graphs_unsupported = false;  // capture failed for good: run eagerly from then on
  // The stream captures run on, this session's own: a pool stream may be
  // another thread's current stream (a video's swap workers each take one),
  // whose work would then land in the capture.
  cudaStream_t capture_stream = nullptr;
  std::optional<std::vector<at::Tensor>> run_cuda_graph(const Model::Impl& impl, const std::vector<at::Tensor>& inputs);
  bool restage(const Model::Impl& impl, int step);
#endif

  ~State();
  at::Tensor stage_input(const Model::Impl& impl, const at::Tensor& input);
  at::Tensor staged(const Model::Impl& impl, int slot, const at::Tensor& value) const;
  std::vector<at::Tensor> run_steps(const Model::Impl& impl, const std::vector<at::Tensor>& inputs);
};

namespace {

bool env_flag(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' && std::string(value) != "0";
}

thread_local const StepObserver* current_observer = nullptr;
std::atomic<int> graph_fallbacks{0};

// Shape keys are small CPU int64 tensors.
bool same_value(const at::Tensor& a, const at::Tensor& b) {
  return a.defined() && b.defined() && a.scalar_type() == b.scalar_type() && a.device() == b.device() &&
         a.sizes() == b.sizes() && at::equal(a, b);
}

}  // namespace

void set_step_observer(const StepObserver* observer) { current_observer = observer; }
int cuda_graph_fallbacks() { return graph_fallbacks.load(); }

Session::State::~State() {
#ifdef VISAGE_WITH_CUDA
  graph.reset();  // before its stream
  if (capture_stream) (void)cudaStreamDestroy(capture_stream);
#endif
  if (!profile || profile_runs == 0 || profiled == nullptr) return;
  // Per operator and the slowest steps, per run.
  const auto& steps = profiled->steps;
  std::map<std::string, std::pair<double, int>> per_op;
  double total = 0;
  std::vector<size_t> order;
  for (size_t s = 0; s < steps.size() && s < profile_ms.size(); ++s) {
    auto& [ms, count] = per_op[steps[s].op];
    ms += profile_ms[s] / profile_runs;
    ++count;
    total += profile_ms[s] / profile_runs;
    order.push_back(s);
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return profile_ms[a] > profile_ms[b]; });
  std::fprintf(stderr, "visage profile: %s, %d run(s), %.3f ms per run in steps\n", profiled->path.string().c_str(),
               profile_runs, total);
  std::vector<std::pair<std::string, std::pair<double, int>>> ops(per_op.begin(), per_op.end());
  std::sort(ops.begin(), ops.end(), [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
  for (const auto& [op, entry] : ops)
    std::fprintf(stderr, "  op %-24s %8.3f ms  %4d steps\n", op.c_str(), entry.first, entry.second);
  for (size_t i = 0; i < order.size() && i < 25; ++i) {
    const auto& step = steps[order[i]];
    std::fprintf(stderr, "  step %4zu %-20s %8.3f ms  %s%s\n", order[i], step.op.c_str(),
                 profile_ms[order[i]] / profile_runs, step.name.c_str(), step.memoized ? " (memoized)" : "");
  }
}

Session::Session(std::shared_ptr<const Model> model) : model_(std::move(model)), state_(std::make_unique<State>()) {
  if (!model_) throw Error(ErrorKind::bad_input, "Session needs a model");
  state_->slots.resize(static_cast<size_t>(model_->impl().slot_count));
  state_->previous.resize(state_->slots.size());
  state_->reuse_buffers = model_->impl().device.is_cpu();
  state_->stage_on_device.assign(state_->slots.size(), 0);
  state_->stage_on_host.assign(state_->slots.size(), 0);
  state_->profile = env_flag("VISAGE_PROFILE_STEPS");
  state_->profiled = &model_->impl();
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

at::Tensor Session::State::staged(const Model::Impl& impl, int slot, const at::Tensor& value) const {
  if (!value.defined()) return value;
  if (stage_on_device[static_cast<size_t>(slot)] && value.device() != impl.device) return value.to(impl.device);
  if (stage_on_host[static_cast<size_t>(slot)] && !value.device().is_cpu()) return value.cpu();
  return value;
}

std::vector<at::Tensor> Session::State::run_steps(const Model::Impl& impl, const std::vector<at::Tensor>& inputs) {
  std::vector<std::vector<int64_t>> shapes;
  for (const auto& input : inputs) shapes.push_back(input.sizes().vec());
  const bool memoize = impl.memoize && !memo_off;
  const bool use_memo = memoize && memo_ready && shapes == memo_shapes;
  const bool record_memo = memoize && !use_memo;
  if (record_memo) {
    memo_ready = false;
    memo.assign(slots.size(), at::Tensor());
    memo_keys.assign(impl.steps.size(), at::Tensor());
  }
  for (const auto& [slot_index, value] : impl.constants) slots[static_cast<size_t>(slot_index)] = value;
  for (const auto& [slot_index, value] : constant_override) slots[static_cast<size_t>(slot_index)] = value;
  for (size_t i = 0; i < inputs.size(); ++i) slots[static_cast<size_t>(impl.input_slots[i])] = inputs[i];
  if (profile && profile_ms.size() != impl.steps.size()) profile_ms.assign(impl.steps.size(), 0.0);
  // The first runs pick cuDNN algorithms and fill caches: not profiled.
  const bool timed = profile && ++profile_seen > kProfileWarmupRuns;
  failed_step = -1;

  std::vector<at::Tensor> in_values;
  std::vector<at::Tensor> out_values;
  for (size_t s = 0; s < impl.steps.size(); ++s) {
    const auto& step = impl.steps[s];
    const bool skip = use_memo && step.memoized;
    if (skip) {
      for (int o : step.outputs)
        if (o >= 0 && impl.memo_slot[static_cast<size_t>(o)])
          slots[static_cast<size_t>(o)] = memo[static_cast<size_t>(o)];
    } else {
      in_values.clear();
      for (int in : step.inputs) in_values.push_back(in >= 0 ? slots[static_cast<size_t>(in)] : at::Tensor());
      if (step.widen)
        for (auto& value : in_values)
          if (value.defined() && value.scalar_type() == at::kHalf) value = value.to(at::kFloat);
      out_values.assign(step.outputs.size(), at::Tensor());
      if (reuse_buffers && !step.memoized)
        for (size_t o = 0; o < step.outputs.size(); ++o)
          if (step.outputs[o] >= 0) out_values[o] = std::move(previous[static_cast<size_t>(step.outputs[o])]);
      std::chrono::steady_clock::time_point started;
      if (timed) {
        cuda_synchronize();
        started = std::chrono::steady_clock::now();
      }
      try {
        step.kernel(in_values, out_values);
      } catch (const Error& e) {
        failed_step = static_cast<int>(s);
        throw Error(e.kind(), impl.path.string() + ": node '" + step.name + "' (" + step.op + "): " + e.what());
      } catch (const std::exception& e) {
        failed_step = static_cast<int>(s);
        std::string reason = short_reason(e);
        ErrorKind kind = reason.find("out of memory") != std::string::npos ? ErrorKind::resource : ErrorKind::bad_input;
        throw Error(kind, impl.path.string() + ": node '" + step.name + "' (" + step.op + ") failed: " + reason);
      }
      if (timed) {
        cuda_synchronize();
        profile_ms[s] += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
      }
      if (step.narrow)
        for (auto& value : out_values)
          if (value.defined() && value.scalar_type() == at::kFloat && !value.device().is_cpu())
            value = value.to(at::kHalf);
      if (current_observer) (*current_observer)(step, out_values);
      if (step.shape_key && memoize) {
        if (record_memo) {
          memo_keys[s] = out_values[0].clone();
        } else if (!same_value(out_values[0], memo_keys[s])) {
          // A shape that depends on the data: remembered values may be stale.
          failed_step = static_cast<int>(s);
          if (capturing) throw std::runtime_error("node '" + step.name + "': a shape changed between runs");
          memo_off = true;
          memo.clear();
          memo_keys.clear();
          for (auto& value : slots) value.reset();
          return run_steps(impl, inputs);
        }
      }
      for (size_t o = 0; o < step.outputs.size(); ++o) {
        const int slot = step.outputs[o];
        if (slot < 0) continue;
        if (record_memo && step.memoized && impl.memo_slot[static_cast<size_t>(slot)])
          out_values[o] = memo[static_cast<size_t>(slot)] = staged(impl, slot, out_values[o]);
        slots[static_cast<size_t>(slot)] = std::move(out_values[o]);
      }
    }
    for (int r : step.release) {
      if (reuse_buffers && !impl.static_slot[static_cast<size_t>(r)])
        previous[static_cast<size_t>(r)] = slots[static_cast<size_t>(r)];
      slots[static_cast<size_t>(r)].reset();
    }
  }
  if (record_memo) {
    memo_shapes = shapes;
    memo_ready = true;
  }
  if (timed) ++profile_runs;

  std::vector<at::Tensor> outputs;
  for (int s : impl.output_slots) {
    // A remembered value goes to the caller as a copy: the caller may change it.
    const at::Tensor& value = slots[static_cast<size_t>(s)];
    outputs.push_back(memoize && impl.memo_slot[static_cast<size_t>(s)] && value.defined() ? value.clone() : value);
  }
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
bool Session::State::restage(const Model::Impl& impl, int step) {
  if (step < 0 || step >= static_cast<int>(impl.steps.size())) return false;
  const auto& failed = impl.steps[static_cast<size_t>(step)];
  auto value_of = [&](int slot) -> at::Tensor {
    auto it = constant_override.find(slot);
    if (it != constant_override.end()) return it->second;
    for (const auto& [slot_index, value] : impl.constants)
      if (slot_index == slot) return value;
    return memo.empty() ? at::Tensor() : memo[static_cast<size_t>(slot)];
  };
  // Moves the static input `slot` to the device (pass 0) or the host
  // (pass 1); false when it is there already or cannot move.
  auto move = [&](int slot, int pass) {
    if (slot < 0 || !impl.static_slot[static_cast<size_t>(slot)]) return false;
    at::Tensor value = value_of(slot);
    if (!value.defined()) return false;
    const bool constant = !impl.memo_slot[static_cast<size_t>(slot)];
    if (pass == 0 && value.device().is_cpu() && !stage_on_device[static_cast<size_t>(slot)]) {
      stage_on_device[static_cast<size_t>(slot)] = 1;
      if (constant) constant_override[slot] = value.to(impl.device);
      return true;
    }
    if (pass == 1 && !value.device().is_cpu() && value.numel() <= 64 && !stage_on_host[static_cast<size_t>(slot)]) {
      stage_on_host[static_cast<size_t>(slot)] = 1;
      stage_on_device[static_cast<size_t>(slot)] = 0;
      if (constant) constant_override[slot] = value.cpu();
      return true;
    }
    return false;
  };
  // First: host values the step would copy to the device. Then: small
  // device values it would read back. What helped this step is done for
  // the same inputs of every step of its operator too, so that a model with
  // many such steps needs few attempts.
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<size_t> moved;
    for (size_t i = 0; i < failed.inputs.size(); ++i)
      if (move(failed.inputs[i], pass)) moved.push_back(i);
    if (moved.empty()) continue;
    for (const auto& other : impl.steps)
      if (other.op == failed.op)
        for (size_t i : moved)
          if (i < other.inputs.size()) move(other.inputs[i], pass);
    return true;
  }
  return false;
}

std::optional<std::vector<at::Tensor>> Session::State::run_cuda_graph(const Model::Impl& impl,
                                                                      const std::vector<at::Tensor>& inputs) {
  std::vector<std::vector<int64_t>> shapes;
  for (const auto& input : inputs) shapes.push_back(input.sizes().vec());
  if (!graph || shapes != graph_shapes) {
    graph.reset();
    const bool debug = env_flag("VISAGE_DEBUG_CAPTURE");
    // A failed capture names the step that copied between host and device;
    // the values it reads are staged on the other side and capture is tried
    // again, a bounded number of times.
    constexpr int kAttempts = 24;
    for (int attempt = 1;; ++attempt) {
      // Warm up on a side stream (cuDNN picks algorithms, allocations settle,
      // shape-only steps are remembered), then capture one run with static
      // input buffers.
      graph_inputs.clear();
      for (const auto& input : inputs) graph_inputs.push_back(stage_input(impl, input).clone());
      if (!capture_stream) {
        c10::cuda::CUDAGuard on_device(impl.device.index());
        C10_CUDA_CHECK(cudaStreamCreateWithFlags(&capture_stream, cudaStreamNonBlocking));
      }
      auto stream = c10::cuda::getStreamFromExternal(capture_stream, impl.device.index());
      c10::cuda::CUDAStreamGuard stream_guard(stream);
      for (int i = 0; i < 2; ++i) run_steps(impl, graph_inputs);
      stream.synchronize();
      auto captured = std::make_unique<at::cuda::CUDAGraph>();
      // Thread-local: other threads (a video's swap workers) go on meanwhile
      // without their calls being held to the capture's rules.
      captured->capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
      capturing = true;
      try {
        graph_outputs = run_steps(impl, graph_inputs);
        capturing = false;
        captured->capture_end();
        graph = std::move(captured);
        graph_shapes = shapes;
        if (debug) std::fprintf(stderr, "visage: captured %s (attempt %d)\n", impl.path.string().c_str(), attempt);
        break;
      } catch (const std::exception& e) {
        capturing = false;
        // Close the capture, wait for the device and forget everything made
        // for it.
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
        const int step = failed_step;
        const bool retry = attempt < kAttempts && restage(impl, step);
        if (debug)
          std::fprintf(stderr, "visage: CUDA graph capture of %s failed (attempt %d) at step %d: %s%s\n",
                       impl.path.string().c_str(), attempt, step, short_reason(e).c_str(),
                       retry ? "; staging its inputs and trying again" : "; running eagerly from now on");
        if (!retry) {
          ++graph_fallbacks;
          graphs_unsupported = true;
          return std::nullopt;
        }
        memo_ready = false;  // remember the values again, staged
      }
    }
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
