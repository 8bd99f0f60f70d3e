#include "swap/compose_graph.hpp"

#include <ATen/ATen.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <utility>

#include "swap/compose_internal.hpp"

#ifdef VISAGE_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace visage::swap {

namespace {

// Graphs kept per swapper: one per face size and shape in use (a video's
// faces, a few sources), the least recently used dropped past this.
constexpr size_t kGraphs = 16;
// Keys remembered without a graph (seen once, or failed).
constexpr size_t kEntries = 64;

std::atomic<int64_t> captured_total{0}, replayed_total{0}, failed_total{0};

}  // namespace

struct ComposeGraphs::Entry {
  std::string key;
  int seen = 0;
  bool failed = false;
#ifdef VISAGE_WITH_CUDA
  std::unique_ptr<at::cuda::CUDAGraph> graph;
#endif
  std::vector<at::Tensor> inputs, outputs;
  std::vector<at::Tensor> constants;
  std::shared_ptr<const void> keep;
  bool has_graph() const {
#ifdef VISAGE_WITH_CUDA
    return graph != nullptr;
#else
    return false;
#endif
  }
};

ComposeGraphs::ComposeGraphs() = default;
ComposeGraphs::~ComposeGraphs() {
  entries_.clear();  // the graphs before their stream
#ifdef VISAGE_WITH_CUDA
  if (stream_) (void)cudaStreamDestroy(static_cast<cudaStream_t>(stream_));
#endif
}
ComposeGraphs::ComposeGraphs(ComposeGraphs&& other) noexcept
    : entries_(std::move(other.entries_)), stream_(std::exchange(other.stream_, nullptr)) {}
ComposeGraphs& ComposeGraphs::operator=(ComposeGraphs&& other) noexcept {
  if (this != &other) {
    ComposeGraphs gone(std::move(*this));
    entries_ = std::move(other.entries_);
    stream_ = std::exchange(other.stream_, nullptr);
  }
  return *this;
}

ComposeGraphs::Counts ComposeGraphs::totals() {
  return {captured_total.load(), replayed_total.load(), failed_total.load()};
}

std::optional<std::vector<at::Tensor>> ComposeGraphs::run(const std::string& key, const std::vector<at::Tensor>& inputs,
                                                          const Compose& compose, std::shared_ptr<const void> keep) {
#ifndef VISAGE_WITH_CUDA
  (void)key, (void)inputs, (void)compose, (void)keep;
  return std::nullopt;
#else
  // Read once: run() comes for every face.
  static const bool debug = std::getenv("VISAGE_DEBUG_CAPTURE") != nullptr;
  if (debug) std::fprintf(stderr, "visage: compose graph key %s\n", key.c_str());
  if (inputs.empty() || !at::cuda::is_available()) return std::nullopt;
  at::Device device = at::kCPU;
  for (const at::Tensor& t : inputs)
    if (t.is_cuda()) device = t.device();
  if (!device.is_cuda()) return std::nullopt;
  auto it = entries_.begin();
  while (it != entries_.end() && it->key != key) ++it;
  if (it == entries_.end()) {
    entries_.push_front(Entry{});
    entries_.front().key = key;
  } else {
    entries_.splice(entries_.begin(), entries_, it);
  }
  Entry& e = entries_.front();
  auto stage_inputs = [&] {
    for (size_t i = 0; i < inputs.size(); ++i) e.inputs[i].copy_(inputs[i], /*non_blocking=*/true);
  };
  if (e.has_graph()) {
    stage_inputs();
    e.graph->replay();
    ++replayed_total;
    return e.outputs;
  }
  if (e.failed || ++e.seen < 2) return std::nullopt;

  // Capture: on a side stream, after the work queued so far on this one
  // (the inputs' producers) is done, with static input buffers; one eager
  // run there first (handles and workspaces of that stream, cuDNN's
  // choices). Only these two streams are waited for, never the device: a
  // video's other workers go on meanwhile, and may be capturing themselves.
  const c10::cuda::CUDAStream caller = c10::cuda::getCurrentCUDAStream(device.index());
  auto graph = std::make_unique<at::cuda::CUDAGraph>();
  try {
    e.inputs.clear();
    for (const at::Tensor& t : inputs) e.inputs.push_back(at::empty(t.sizes(), t.options().device(device)));
    stage_inputs();
    caller.synchronize();
    if (!stream_) {
      c10::cuda::CUDAGuard on_device(device.index());
      cudaStream_t created = nullptr;
      C10_CUDA_CHECK(cudaStreamCreateWithFlags(&created, cudaStreamNonBlocking));
      stream_ = created;
    }
    auto stream = c10::cuda::getStreamFromExternal(static_cast<cudaStream_t>(stream_), device.index());
    c10::cuda::CUDAStreamGuard on_stream(stream);
    compose(e.inputs);
    stream.synchronize();
    detail::ConstantsKept constants;
    // Thread-local: other threads' calls are not held to the capture's rules.
    graph->capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
    try {
      e.outputs = compose(e.inputs);
    } catch (...) {
      try {
        graph->capture_end();
      } catch (const std::exception&) {
      }
      throw;
    }
    graph->capture_end();
    e.constants = std::move(constants.tensors);
  } catch (const std::exception& error) {
    (void)cudaGetLastError();
    if (debug) std::fprintf(stderr, "visage: compose graph capture failed (%s): %s\n", key.c_str(), error.what());
    e.failed = true;
    e.inputs.clear(), e.outputs.clear(), e.constants.clear();
    ++failed_total;
    return std::nullopt;
  }
  e.graph = std::move(graph);
  e.keep = std::move(keep);
  ++captured_total;
  if (debug) std::fprintf(stderr, "visage: compose graph captured (%s)\n", key.c_str());
  // The inputs are staged already; this run's results come from a replay.
  e.graph->replay();
  ++replayed_total;
  std::vector<at::Tensor> outputs = e.outputs;
  // Bounded: graphs hold device memory.
  size_t graphs = 0;
  for (auto g = entries_.begin(); g != entries_.end();) {
    if (g->has_graph() && ++graphs > kGraphs) {
      g = entries_.erase(g);
      continue;
    }
    ++g;
  }
  while (entries_.size() > kEntries) entries_.pop_back();
  return outputs;
#endif
}

}  // namespace visage::swap
