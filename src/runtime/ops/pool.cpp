// MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool on ATen's pooling ops.
//
// ATen pools take symmetric padding of at most half the kernel; other ONNX
// pads become an explicit pad (-inf for max, zeros plus a count mask for
// average). Integer tensors (ATen's CPU max pool is floating-point only) pool
// in floating point, which is exact for them, and convert back.
#include <ATen/ATen.h>

#include <algorithm>
#include <limits>

#include "runtime/ops/families.hpp"
#include "runtime/ops/spatial.hpp"

namespace visage::rt {
namespace {

struct PoolParams {
  Window window;
  bool nhwc = false;
  bool ceil_mode = false;
  bool count_include_pad = false;
  int64_t storage_order = 0;
  bool want_indices = false;
};

PoolParams parse_pool(const Node& node) {
  PoolParams p;
  p.window = Window::parse(node);
  require(!p.window.kernel.empty(), "kernel_shape is required");
  p.nhwc = is_nhwc(node);
  p.ceil_mode = node.attrs.get_int("ceil_mode", 0) != 0;
  p.count_include_pad = node.attrs.get_int("count_include_pad", 0) != 0;
  p.storage_order = node.attrs.get_int("storage_order", 0);
  p.want_indices = node.outputs.size() > 1 && !node.outputs[1].empty();
  return p;
}

// Pads fit ATen's own padding: symmetric and at most half the kernel.
bool aten_can_pad(const std::vector<int64_t>& pads, const std::vector<int64_t>& kernel) {
  const size_t n = kernel.size();
  for (size_t i = 0; i < n; ++i)
    if (pads[i] != pads[i + n] || pads[i] < 0 || pads[i] > kernel[i] / 2) return false;
  return true;
}

at::Tensor max_pool(const at::Tensor& x, const std::vector<int64_t>& k, const std::vector<int64_t>& s,
                    const std::vector<int64_t>& pad, const std::vector<int64_t>& d, bool ceil) {
  switch (k.size()) {
    case 1: return at::max_pool1d(x, k, s, pad, d, ceil);
    case 2: return at::max_pool2d(x, k, s, pad, d, ceil);
    case 3: return at::max_pool3d(x, k, s, pad, d, ceil);
    default: throw std::invalid_argument("MaxPool supports 1-D, 2-D and 3-D inputs");
  }
}

std::tuple<at::Tensor, at::Tensor> max_pool_with_indices(const at::Tensor& x, std::vector<int64_t> k,
                                                         std::vector<int64_t> s, std::vector<int64_t> pad,
                                                         std::vector<int64_t> d, bool ceil) {
  if (k.size() == 1) {
    // 1-D as 2-D over a trailing unit dimension.
    const std::vector<int64_t> k2{k[0], 1}, s2{s[0], 1}, pad2{pad[0], 0}, d2{d[0], 1};
    auto [y, i] = at::max_pool2d_with_indices(x.unsqueeze(-1), k2, s2, pad2, d2, ceil);
    return {y.squeeze(-1), i.squeeze(-1)};
  }
  if (k.size() == 2) return at::max_pool2d_with_indices(x, k, s, pad, d, ceil);
  if (k.size() == 3) return at::max_pool3d_with_indices(x, k, s, pad, d, ceil);
  throw std::invalid_argument("MaxPool supports 1-D, 2-D and 3-D inputs");
}

at::Tensor avg_pool(const at::Tensor& x, const std::vector<int64_t>& k, const std::vector<int64_t>& s,
                    const std::vector<int64_t>& pad, bool ceil, bool count_include_pad) {
  switch (k.size()) {
    case 1: return at::avg_pool1d(x, k, s, pad, ceil, count_include_pad);
    case 2: return at::avg_pool2d(x, k, s, pad, ceil, count_include_pad);
    case 3: return at::avg_pool3d(x, k, s, pad, ceil, count_include_pad);
    default: throw std::invalid_argument("AveragePool supports 1-D, 2-D and 3-D inputs");
  }
}

// ATen's per-plane indices (into the possibly explicitly padded input) ->
// ONNX's indices into the whole unpadded input tensor.
at::Tensor onnx_indices(const at::Tensor& plane_index, const at::Tensor& x, const std::vector<int64_t>& padded_sizes,
                        const std::vector<int64_t>& pad_begin, int64_t storage_order) {
  const size_t n = padded_sizes.size();
  std::vector<at::Tensor> coords(n);
  at::Tensor rest = plane_index;
  for (size_t i = n; i-- > 0;) {
    coords[i] = at::remainder(rest, padded_sizes[i]) - pad_begin[i];
    rest = at::div(rest, padded_sizes[i], "floor");
  }
  at::Tensor flat = at::zeros_like(plane_index);
  if (storage_order == 0) {
    for (size_t i = 0; i < n; ++i) flat = flat * x.size(static_cast<int64_t>(i) + 2) + coords[i];
  } else {
    for (size_t i = n; i-- > 0;) flat = flat * x.size(static_cast<int64_t>(i) + 2) + coords[i];
  }
  int64_t plane = 1;
  for (size_t i = 0; i < n; ++i) plane *= x.size(static_cast<int64_t>(i) + 2);
  at::Tensor planes = at::arange(x.size(0) * x.size(1), plane_index.options()).view({x.size(0), x.size(1)});
  std::vector<int64_t> shape{x.size(0), x.size(1)};
  shape.resize(n + 2, 1);
  return flat + planes.view(shape) * plane;
}

// 2-D max pooling of a channels-last float32 CPU tensor straight over its
// memory, every channel of a pixel at once: ATen's kernel also computes and
// stores argmax indices, which costs more than the maxima between the face
// models' convolutions. Pads count as -inf (skipped). A NaN input is not
// propagated (the maximum of the other values is kept). False when it does
// not apply.
bool max_pool_channels_last(const at::Tensor& x, const std::vector<int64_t>& k, const std::vector<int64_t>& s,
                            const std::vector<int64_t>& pads, const std::vector<int64_t>& d, bool ceil_mode,
                            at::Tensor& out) {
  if (x.dim() != 4 || !x.device().is_cpu() || x.scalar_type() != at::kFloat || ceil_mode || d[0] != 1 || d[1] != 1 ||
      !x.is_contiguous(at::MemoryFormat::ChannelsLast))
    return false;
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t oh = (h + pads[0] + pads[2] - k[0]) / s[0] + 1;
  const int64_t ow = (w + pads[1] + pads[3] - k[1]) / s[1] + 1;
  if (oh <= 0 || ow <= 0 || pads[0] >= k[0] || pads[1] >= k[1] || pads[2] >= k[0] || pads[3] >= k[1]) return false;
  const std::vector<int64_t> sizes{n, c, oh, ow};
  at::Tensor y = out.defined() && out.scalar_type() == at::kFloat && out.device().is_cpu() &&
                         out.sizes() == at::IntArrayRef(sizes) && out.is_contiguous(at::MemoryFormat::ChannelsLast) &&
                         !out.is_alias_of(x)
                     ? out
                     : at::empty(sizes, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  const float* src = x.data_ptr<float>();
  float* dst = y.data_ptr<float>();
  for (int64_t b = 0; b < n; ++b)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        float* __restrict m = dst + ((b * oh + i) * ow + j) * c;
        for (int64_t ch = 0; ch < c; ++ch) m[ch] = -std::numeric_limits<float>::infinity();
        for (int64_t ki = 0; ki < k[0]; ++ki) {
          const int64_t row = i * s[0] - pads[0] + ki;
          if (row < 0 || row >= h) continue;
          for (int64_t kj = 0; kj < k[1]; ++kj) {
            const int64_t col = j * s[1] - pads[1] + kj;
            if (col < 0 || col >= w) continue;
            const float* __restrict v = src + ((b * h + row) * w + col) * c;
            for (int64_t ch = 0; ch < c; ++ch) m[ch] = std::max(m[ch], v[ch]);
          }
        }
      }
  out = y;
  return true;
}

Kernel make_max_pool(const Node& node, const BuildContext& context) {
  PoolParams p = parse_pool(node);
  if (p.want_indices && p.nhwc) throw_unsupported(node, context, "MaxPool indices with NHWC layout are not supported");
  return [p](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    at::Tensor x = p.nhwc ? channels_first_view(in[0]) : in[0];
    const auto& k = p.window.kernel;
    const size_t n = k.size();
    require(x.dim() == static_cast<int64_t>(n) + 2, "MaxPool input rank does not match kernel_shape");
    const at::ScalarType dtype = x.scalar_type();
    if (!at::isFloatingType(dtype)) x = x.to(dtype == at::kLong || dtype == at::kInt ? at::kDouble : at::kFloat);
    auto s = p.window.stride_vector(n);
    auto d = p.window.dilation_vector(n);
    auto pads = p.window.resolve_pads(spatial_sizes(x), k);
    if (!p.want_indices && n == 2 && dtype == at::kFloat) {
      at::Tensor previous = p.nhwc && out[0].defined() && out[0].dim() == 4 ? channels_first_view(out[0]) : out[0];
      if (max_pool_channels_last(x, k, s, pads, d, p.ceil_mode, previous)) {
        out[0] = p.nhwc ? channels_last_view(previous) : previous;
        return;
      }
    }
    std::vector<int64_t> aten_pad(n, 0);
    at::Tensor padded = x;
    if (aten_can_pad(pads, k)) {
      aten_pad.assign(pads.begin(), pads.begin() + static_cast<int64_t>(n));
    } else {
      padded = at::constant_pad_nd(x, SplitPads::constant_pad_order(pads, n), -std::numeric_limits<double>::infinity());
    }
    at::Tensor y;
    if (p.want_indices) {
      auto [values, plane_index] = max_pool_with_indices(padded, k, s, aten_pad, d, p.ceil_mode);
      std::vector<int64_t> begin(n, 0);
      if (padded.is_same(x) == false)
        for (size_t i = 0; i < n; ++i) begin[i] = pads[i];
      out[1] = onnx_indices(plane_index, x, spatial_sizes(padded), begin, p.storage_order);
      y = values;
    } else {
      y = max_pool(padded, k, s, aten_pad, d, p.ceil_mode);
    }
    if (y.scalar_type() != dtype) y = y.to(dtype);
    out[0] = p.nhwc ? channels_last_view(y) : y;
  };
}

// Average pooling whose windows tile the input without padding or overlap
// (stride = kernel, as in squeeze-excite blocks that pool a whole 128x128
// feature map): a mean over a reshaped view. ATen's channels-last CUDA
// kernel gives each output one thread that walks the whole window
// serially, ~1 ms for a 128x128 window; a reduction spreads it over the
// device. `x` is NCHW (possibly a channels-last view). Undefined when it
// does not apply.
at::Tensor tiled_average_pool(const at::Tensor& x, const std::vector<int64_t>& k, const std::vector<int64_t>& s,
                              const std::vector<int64_t>& pads, bool ceil_mode) {
  if (x.dim() != 4 || k.size() != 2 || !x.is_floating_point()) return {};
  for (size_t i = 0; i < 2; ++i)
    if (s[i] != k[i] || pads[i] != 0 || pads[i + 2] != 0 || k[i] <= 0) return {};
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t oh = h / k[0], ow = w / k[1];
  if (oh == 0 || ow == 0 || (ceil_mode && (h % k[0] != 0 || w % k[1] != 0))) return {};
  // Small windows are cheap for ATen's kernel; the reduction pays off for big ones.
  if (k[0] * k[1] < 64) return {};
  at::Tensor cropped = x.narrow(2, 0, oh * k[0]).narrow(3, 0, ow * k[1]);
  if (x.is_contiguous(at::MemoryFormat::ChannelsLast) && !x.is_contiguous()) {
    at::Tensor nhwc = cropped.permute({0, 2, 3, 1});  // [n, h, w, c]
    at::Tensor y = nhwc.reshape({n, oh, k[0], ow, k[1], c}).mean({2, 4});
    return y.permute({0, 3, 1, 2});
  }
  return cropped.reshape({n, c, oh, k[0], ow, k[1]}).mean({3, 5});
}

Kernel make_average_pool(const Node& node, const BuildContext& context) {
  PoolParams p = parse_pool(node);
  if (!p.window.dilations.empty())
    for (int64_t d : p.window.dilations)
      if (d != 1) throw_unsupported(node, context, "AveragePool with dilations is not supported");
  return [p](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    at::Tensor x = p.nhwc ? channels_first_view(in[0]) : in[0];
    const auto& k = p.window.kernel;
    const size_t n = k.size();
    require(x.dim() == static_cast<int64_t>(n) + 2, "AveragePool input rank does not match kernel_shape");
    auto s = p.window.stride_vector(n);
    auto pads = p.window.resolve_pads(spatial_sizes(x), k);
    at::Tensor y = tiled_average_pool(x, k, s, pads, p.ceil_mode);
    if (y.defined()) {
      out[0] = p.nhwc ? channels_last_view(y) : y;
      return;
    }
    if (aten_can_pad(pads, k)) {
      std::vector<int64_t> pad(pads.begin(), pads.begin() + static_cast<int64_t>(n));
      y = avg_pool(x, k, s, pad, p.ceil_mode, p.count_include_pad);
    } else {
      std::vector<int64_t> zero(n, 0);
      auto order = SplitPads::constant_pad_order(pads, n);
      y = avg_pool(at::constant_pad_nd(x, order, 0), k, s, zero, p.ceil_mode, true);
      if (!p.count_include_pad) {
        // Divide by the count of real (unpadded) elements in each window.
        std::vector<int64_t> unit(x.sizes().begin(), x.sizes().end());
        unit[0] = unit[1] = 1;
        at::Tensor mask = at::constant_pad_nd(at::ones(unit, x.options()), order, 0);
        y = y / avg_pool(mask, k, s, zero, p.ceil_mode, true);
      }
    }
    out[0] = p.nhwc ? channels_last_view(y) : y;
  };
}

Kernel make_global_pool(const Node& node, bool max) {
  const bool nhwc = is_nhwc(node);
  return [nhwc, max](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const at::Tensor& x = in[0];
    require(x.dim() >= 3, "global pooling needs an input of rank 3 or more");
    std::vector<int64_t> dims;
    for (int64_t d = nhwc ? 1 : 2; d < (nhwc ? x.dim() - 1 : x.dim()); ++d) dims.push_back(d);
    out[0] = max ? at::amax(x, dims, true) : at::mean(x, dims, true);
  };
}

Kernel make_global_average_pool(const Node& node, const BuildContext&) { return make_global_pool(node, false); }
Kernel make_global_max_pool(const Node& node, const BuildContext&) { return make_global_pool(node, true); }

}  // namespace

void register_pool_ops(OpTable& table) {
  table.add("MaxPool", make_max_pool);
  table.add("AveragePool", make_average_pool);
  table.add("GlobalAveragePool", make_global_average_pool);
  table.add("GlobalMaxPool", make_global_max_pool);
}

}  // namespace visage::rt
