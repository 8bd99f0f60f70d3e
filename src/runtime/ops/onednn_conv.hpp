// 2-D convolution on the CPU straight on oneDNN primitives (float32), for the
// Conv kernel's fast path.
//
// at::convolution re-creates its oneDNN primitive and reorders the weights
// into oneDNN's blocked layout on every call: tens of microseconds per node
// before any arithmetic, which dominates the small face models. Here a plan
// per input shape (a bounded cache, shared by every session of the model)
// holds the primitive and the weights packed for it; the bias, a residual Add
// and the activation run inside the same primitive (post-ops; PRelu right
// after it). Building a plan times the first few implementations oneDNN
// offers for the shape and keeps the fastest.
//
// Threads: a convolution under 4M multiply-adds and 128K outputs runs on one
// thread (the calling thread's OpenMP team is lowered for that call only);
// larger ones use the caller's thread count (visage::set_cpu_threads), never
// more.
//
// Available when Visage was built against oneDNN 2.x (VISAGE_ONEDNN, Debian's
// libdnnl-dev, the library Debian's libtorch runs on) and the oneDNN loaded at
// run time is the version the build saw; otherwise make_onednn_conv returns
// nullptr and the kernel runs at::convolution.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/ops/activation_fusion.hpp"

namespace visage::rt {

struct OnednnConvSpec {
  at::Tensor weight;               // [O, C/groups, kH, kW] float32 on the CPU, any strides; constant
  at::Tensor bias;                 // [O] constant, or undefined
  at::Tensor slope;                // fused PRelu slope (constant), or undefined
  std::vector<int64_t> strides;    // 2 values
  std::vector<int64_t> dilations;  // 2 values
  int64_t groups = 1;
  FusedActivation activation;
  bool nhwc = false;      // the node's layout (how a PRelu slope broadcasts)
  bool residual = false;  // a residual operand is added before the activation
};

class OnednnConv;

// True when this build has the oneDNN path and the oneDNN in this process can run it.
bool onednn_conv_available();

// nullptr when this build or the oneDNN in this process cannot run the
// convolution (the caller then runs at::convolution).
std::shared_ptr<const OnednnConv> make_onednn_conv(const OnednnConvSpec& spec);

// Runs the convolution on `x` (an NCHW-indexed float32 CPU tensor; channels-last
// memory is the fast path) with begin/end pads {top, left, bottom, right}.
// `residual` (NCHW-indexed, or undefined) is added before the activation.
// `out` may hold a buffer to write into (this node's previous output, NCHW-indexed);
// on return it holds the result, NCHW-indexed with channels-last memory.
// Returns false, touching nothing, when this shape has to go to at::convolution.
// The result already includes the residual and the activation when
// `epilogue_done` is set; otherwise the caller applies them.
bool run_onednn_conv(const OnednnConv& conv, const at::Tensor& x, const std::vector<int64_t>& pads,
                     const at::Tensor& residual, at::Tensor& out, bool& epilogue_done);

}  // namespace visage::rt
