// Helpers shared by the spatial operators (Conv, ConvTranspose, pools,
// Resize, DepthToSpace): the NHWC "layout" extension, the window attributes
// (kernel, strides, dilations, pads, auto_pad) and build-time errors.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/graph.hpp"
#include "runtime/kernel.hpp"
#include "visage/error.hpp"

namespace visage::rt {

// A build-time Error{unsupported} naming the model file and the node.
[[noreturn]] inline void throw_unsupported(const Node& node, const BuildContext& context, const std::string& what) {
  throw Error(ErrorKind::unsupported, context.graph.source + ": node '" + node.name + "' (" + node.op + "): " + what);
}

inline bool is_nhwc(const Node& node) {
  std::string layout = node.attrs.get_string("layout", "NCHW");
  require(layout == "NCHW" || layout == "NHWC", "layout must be NCHW or NHWC, got " + layout);
  return layout == "NHWC";
}

// Channels-last tensor -> channels-first view (no copy); and back.
inline at::Tensor channels_first_view(const at::Tensor& x) {
  std::vector<int64_t> order{0, x.dim() - 1};
  for (int64_t d = 1; d < x.dim() - 1; ++d) order.push_back(d);
  return x.permute(order);
}
inline at::Tensor channels_last_view(const at::Tensor& x) {
  std::vector<int64_t> order{0};
  for (int64_t d = 2; d < x.dim(); ++d) order.push_back(d);
  order.push_back(1);
  return x.permute(order);
}

// Kernel window attributes of Conv / ConvTranspose / pools.
struct Window {
  std::string auto_pad = "NOTSET";
  std::vector<int64_t> kernel;     // may be empty for Conv (taken from the weight)
  std::vector<int64_t> strides;    // empty: all 1
  std::vector<int64_t> dilations;  // empty: all 1
  std::vector<int64_t> pads;       // begin..., end...; empty: all 0

  static Window parse(const Node& node) {
    Window w;
    w.auto_pad = node.attrs.get_string("auto_pad", "NOTSET");
    require(w.auto_pad == "NOTSET" || w.auto_pad == "SAME_UPPER" || w.auto_pad == "SAME_LOWER" || w.auto_pad == "VALID",
            "unknown auto_pad '" + w.auto_pad + "'");
    w.kernel = node.attrs.get_ints("kernel_shape");
    w.strides = node.attrs.get_ints("strides");
    w.dilations = node.attrs.get_ints("dilations");
    w.pads = node.attrs.get_ints("pads");
    return w;
  }

  std::vector<int64_t> stride_vector(size_t n) const { return filled(strides, n, "strides"); }
  std::vector<int64_t> dilation_vector(size_t n) const { return filled(dilations, n, "dilations"); }

  // Begin and end pads per spatial dimension for an input of the given
  // spatial sizes (auto_pad SAME_* depends on them). Layout: begin..., end...
  std::vector<int64_t> resolve_pads(at::IntArrayRef in, at::IntArrayRef kernel_sizes) const {
    const size_t n = in.size();
    std::vector<int64_t> result(2 * n, 0);
    if (auto_pad == "VALID") return result;
    if (auto_pad == "NOTSET") {
      if (pads.empty()) return result;
      require(pads.size() == 2 * n, "pads must have " + std::to_string(2 * n) + " values");
      return pads;
    }
    auto s = stride_vector(n);
    auto d = dilation_vector(n);
    for (size_t i = 0; i < n; ++i) {
      int64_t out = (in[i] + s[i] - 1) / s[i];
      int64_t total = std::max<int64_t>(0, (out - 1) * s[i] + (kernel_sizes[i] - 1) * d[i] + 1 - in[i]);
      int64_t small = total / 2;
      result[i] = auto_pad == "SAME_UPPER" ? small : total - small;
      result[i + n] = total - result[i];
    }
    return result;
  }

 private:
  static std::vector<int64_t> filled(const std::vector<int64_t>& values, size_t n, const char* what) {
    if (values.empty()) return std::vector<int64_t>(n, 1);
    require(values.size() == n, std::string(what) + " must have " + std::to_string(n) + " values");
    return values;
  }
};

// Splits begin/end pads into the symmetric part ATen ops take and the rest,
// which goes to an explicit constant_pad_nd (argument order: last dim first).
struct SplitPads {
  std::vector<int64_t> symmetric;
  std::vector<int64_t> explicit_pad;  // empty when none is needed

  static SplitPads of(const std::vector<int64_t>& pads, size_t n) {
    SplitPads split;
    split.symmetric.resize(n);
    bool needed = false;
    std::vector<int64_t> extra(2 * n, 0);
    for (size_t i = 0; i < n; ++i) {
      int64_t s = std::max<int64_t>(0, std::min(pads[i], pads[i + n]));
      split.symmetric[i] = s;
      extra[i] = pads[i] - s;
      extra[i + n] = pads[i + n] - s;
      needed = needed || extra[i] != 0 || extra[i + n] != 0;
    }
    if (needed) split.explicit_pad = constant_pad_order(extra, n);
    return split;
  }

  static std::vector<int64_t> constant_pad_order(const std::vector<int64_t>& pads, size_t n) {
    std::vector<int64_t> order;
    for (size_t i = n; i-- > 0;) {
      order.push_back(pads[i]);
      order.push_back(pads[i + n]);
    }
    return order;
  }
};

inline std::vector<int64_t> spatial_sizes(const at::Tensor& x) {
  return std::vector<int64_t>(x.sizes().begin() + 2, x.sizes().end());
}

}  // namespace visage::rt
