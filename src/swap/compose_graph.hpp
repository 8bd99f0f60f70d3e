// The compositing of a face as one CUDA graph: on a device the swap's time is
// the host's issuing of its ~800 ATen calls (each stage's issue time matches
// its time with the device waited for), not the kernels. A graph captured
// once replays them with one launch.
//
// What a captured run bakes in (shapes, launch arguments: the sizes and the
// face size the blurs are made for, the options, the source's tensors) is
// the key; what changes from face to face (the target's pixels, the
// rasters' upload with the mesh's triangles, polygons and the few numbers
// read from memory) travels through the graph's input buffers.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace visage::swap {

class ComposeGraphs {
 public:
  using Compose = std::function<std::vector<at::Tensor>(const std::vector<at::Tensor>& inputs)>;

  ComposeGraphs();
  ~ComposeGraphs();
  ComposeGraphs(ComposeGraphs&&) noexcept;
  ComposeGraphs& operator=(ComposeGraphs&&) noexcept;

  // `compose`'s outputs for `inputs` (on the device, or pinned host tensors
  // that go up to it), from a graph of `key`: replayed when there is one;
  // captured the second time a key comes (a key seen once may be a still
  // photo's only face: its capture would cost more than it saves), when the
  // first run is still eager. Returns nothing where the caller runs
  // `compose` eagerly itself: no CUDA build, not yet, or a capture that
  // failed (that key then stays eager). `keep` stays alive with the graph
  // (what its launches read besides the inputs: the source's texture).
  // The outputs are the graph's own buffers: valid until the next run.
  std::optional<std::vector<at::Tensor>> run(const std::string& key, const std::vector<at::Tensor>& inputs,
                                             const Compose& compose, std::shared_ptr<const void> keep);

  // Graphs captured, replays and failed captures so far, by all swappers of
  // the process (tests, benchmarks).
  struct Counts {
    int64_t captured = 0, replayed = 0, failed = 0;
  };
  static Counts totals();

 private:
  struct Entry;
  std::list<Entry> entries_;  // most recently used first
  // The stream captures run on (cudaStream_t), this swapper's own: a pool
  // stream may be another thread's current stream (a video's workers each
  // take one), whose work would then land in the capture.
  void* stream_ = nullptr;
};

}  // namespace visage::swap
