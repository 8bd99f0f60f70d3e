// Shape and indexing operators: views (Reshape, Squeeze, Transpose, ...),
// joins and splits, Slice, Gather/Scatter, Pad, Tile, and the operators that
// make or inspect shapes (Shape, Size, ConstantOfShape, Range).
//
// Shape values live on the CPU as int64 tensors; ATen keeps an operator on
// CPU inputs on the CPU, so shape arithmetic never touches the GPU.
#include <ATen/ATen.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "runtime/ops/families.hpp"
#include "runtime/ops/operands.hpp"
#include "visage/error.hpp"

namespace visage::rt {
namespace {

int64_t product(at::IntArrayRef sizes, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end; ++i) p *= sizes[i];
  return p;
}

// Integer indices as int64 on `device`, with negative entries counted from
// the end of a dimension of `dim_size`.
at::Tensor wrap_indices(const at::Tensor& indices, int64_t dim_size, at::Device device) {
  at::Tensor idx = on_device(indices, device);
  if (idx.scalar_type() != at::kLong) idx = idx.to(at::kLong);
  return at::where(idx < 0, idx + dim_size, idx);
}

// The axes of an operator that takes them as an input (opset 13+) or, in
// older graphs, as an attribute.
std::vector<int64_t> axes_from(std::span<const at::Tensor> in, size_t index, const std::vector<int64_t>& attr_axes) {
  return has_input(in, index) ? to_int_vector(in[index]) : attr_axes;
}

Kernel make_reshape(const Node& node, const BuildContext&) {
  bool allowzero = node.attrs.get_int("allowzero", 0) != 0;
  std::vector<int64_t> attr_shape = node.attrs.get_ints("shape");
  return [allowzero, attr_shape](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const at::Tensor& x = in[0];
    std::vector<int64_t> shape = has_input(in, 1) ? to_int_vector(in[1]) : attr_shape;
    int64_t inferred = -1;
    int64_t known = 1;
    for (size_t i = 0; i < shape.size(); ++i) {
      if (shape[i] == 0 && !allowzero) {
        require(static_cast<int64_t>(i) < x.dim(), "Reshape: 0 copies a dimension the input does not have");
        shape[i] = x.size(static_cast<int64_t>(i));
      }
      if (shape[i] == -1) {
        require(inferred < 0, "Reshape: more than one -1 in the shape");
        inferred = static_cast<int64_t>(i);
      } else {
        require(shape[i] >= 0, "Reshape: negative dimension " + std::to_string(shape[i]));
        known *= shape[i];
      }
    }
    if (inferred >= 0) {
      require(known != 0 && x.numel() % known == 0, "Reshape: cannot infer the -1 dimension");
      shape[static_cast<size_t>(inferred)] = x.numel() / known;
    }
    out[0] = x.reshape(shape);
  };
}

Kernel make_flatten(const Node& node, const BuildContext&) {
  int64_t axis = node.attrs.get_int("axis", 1);
  return [axis](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const at::Tensor& x = in[0];
    int64_t rank = x.dim();
    int64_t a = axis < 0 ? axis + rank : axis;
    require(a >= 0 && a <= rank, "Flatten: axis out of range");
    int64_t outer = product(x.sizes(), 0, static_cast<size_t>(a));
    int64_t inner = product(x.sizes(), static_cast<size_t>(a), static_cast<size_t>(rank));
    out[0] = x.reshape({outer, inner});
  };
}

Kernel make_squeeze(const Node& node, const BuildContext&) {
  return [attr_axes = node.attrs.get_ints("axes")](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    at::Tensor x = in[0];
    std::vector<int64_t> axes = axes_from(in, 1, attr_axes);
    if (axes.empty()) {
      out[0] = x.squeeze();
      return;
    }
    for (auto& a : axes) a = normalize_axis(a, x.dim());
    std::sort(axes.rbegin(), axes.rend());
    for (int64_t a : axes) {
      require(x.size(a) == 1, "Squeeze: dimension " + std::to_string(a) + " is not 1");
      x = x.squeeze(a);
    }
    out[0] = x;
  };
}

Kernel make_unsqueeze(const Node& node, const BuildContext&) {
  return [attr_axes = node.attrs.get_ints("axes")](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    at::Tensor x = in[0];
    std::vector<int64_t> axes = axes_from(in, 1, attr_axes);
    int64_t rank = x.dim() + static_cast<int64_t>(axes.size());
    for (auto& a : axes) a = normalize_axis(a, rank);
    std::sort(axes.begin(), axes.end());
    require(std::adjacent_find(axes.begin(), axes.end()) == axes.end(), "Unsqueeze: repeated axis");
    for (int64_t a : axes) x = x.unsqueeze(a);
    out[0] = x;
  };
}

Kernel make_transpose(const Node& node, const BuildContext&) {
  std::vector<int64_t> perm = node.attrs.get_ints("perm");
  return [perm](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const at::Tensor& x = in[0];
    std::vector<int64_t> p = perm;
    if (p.empty()) {
      p.resize(static_cast<size_t>(x.dim()));
      std::iota(p.rbegin(), p.rend(), 0);
    }
    out[0] = x.permute(p);
  };
}

// Writes, for each of `rows` rows, `counts[i]` elements of every part i one
// after the other into `out`. Element-typed copies: a memcpy call per row and
// part costs more than the copy itself at the short rows of these models.
template <typename Element>
void interleave_rows(const std::vector<at::Tensor>& parts, const std::vector<int64_t>& counts, int64_t rows,
                     void* out) {
  int64_t row_length = 0;
  for (int64_t count : counts) row_length += count;
  auto* dst = static_cast<Element*>(out);
  int64_t offset = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const int64_t count = counts[i];
    const auto* src = static_cast<const Element*>(parts[i].data_ptr());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < count; ++c) dst[r * row_length + offset + c] = src[r * count + c];
    offset += count;
  }
}

void interleave(const std::vector<at::Tensor>& parts, const std::vector<int64_t>& counts, int64_t rows,
                const at::Tensor& out) {
  switch (out.element_size()) {
    case 4: interleave_rows<uint32_t>(parts, counts, rows, out.data_ptr()); break;
    case 2: interleave_rows<uint16_t>(parts, counts, rows, out.data_ptr()); break;
    case 8: interleave_rows<uint64_t>(parts, counts, rows, out.data_ptr()); break;
    default: interleave_rows<uint8_t>(parts, counts, rows, out.data_ptr()); break;
  }
}

// Whether `out` (this node's previous output) can take a result of `sizes`.
bool reusable_for(const at::Tensor& out, const std::vector<at::Tensor>& parts, at::IntArrayRef sizes,
                  at::MemoryFormat format) {
  if (!out.defined() || out.scalar_type() != parts[0].scalar_type() || !out.device().is_cpu() || out.sizes() != sizes ||
      !out.is_contiguous(format))
    return false;
  for (const auto& t : parts)
    if (t.is_alias_of(out)) return false;
  return true;
}

// Contiguous CPU tensors up to a million elements joined along any axis
// (anchor and box tables of detection heads, shape vectors): ATen's cat
// copies each part through a strided iterator. False when it does not apply.
bool concat_contiguous(const std::vector<at::Tensor>& parts, int64_t axis, at::Tensor& out) {
  constexpr int64_t kLargest = 1 << 20;
  const at::Tensor& first = parts[0];
  if (first.dim() == 0) return false;
  std::vector<int64_t> sizes = first.sizes().vec();
  sizes[static_cast<size_t>(axis)] = 0;
  std::vector<int64_t> counts;
  int64_t rows = 1;
  for (int64_t d = 0; d < axis; ++d) rows *= first.size(d);
  for (const auto& t : parts) {
    if (!t.device().is_cpu() || t.scalar_type() != first.scalar_type() || t.dim() != first.dim() || !t.is_contiguous())
      return false;
    for (int64_t d = 0; d < t.dim(); ++d)
      if (d != axis && t.size(d) != first.size(d)) return false;
    sizes[static_cast<size_t>(axis)] += t.size(axis);
    counts.push_back(rows == 0 ? 0 : t.numel() / std::max<int64_t>(rows, 1));
  }
  int64_t total = 1;
  for (int64_t size : sizes) total *= size;
  if (total > kLargest) return false;
  at::Tensor result =
      reusable_for(out, parts, sizes, at::MemoryFormat::Contiguous) ? out : at::empty(sizes, first.options());
  if (total > 0) interleave(parts, counts, rows, result);
  out = result;
  return true;
}

// 4-D CPU tensors joined along the channel axis with at least one part in
// channels-last memory (channel padding and branch joins between
// convolutions): ATen's cat copies each part into a strided slice and, when
// the parts' layouts differ, returns channels-first memory that the next
// convolution must convert back. Here the result is channels-last and each
// pixel's channels are copied as one block per part. False when it does not apply.
bool concat_channels_last(const std::vector<at::Tensor>& parts, int64_t axis, at::Tensor& out) {
  const at::Tensor& first = parts[0];
  if (axis != 1 || first.dim() != 4) return false;
  bool any_channels_last = false;
  int64_t channels = 0;
  for (const auto& t : parts) {
    if (!t.device().is_cpu() || t.dim() != 4 || t.scalar_type() != first.scalar_type() || t.size(0) != first.size(0) ||
        t.size(2) != first.size(2) || t.size(3) != first.size(3))
      return false;
    any_channels_last = any_channels_last || (t.is_contiguous(at::MemoryFormat::ChannelsLast) && !t.is_contiguous());
    channels += t.size(1);
  }
  if (!any_channels_last) return false;
  const std::vector<int64_t> sizes{first.size(0), channels, first.size(2), first.size(3)};
  at::Tensor result = reusable_for(out, parts, sizes, at::MemoryFormat::ChannelsLast)
                          ? out
                          : at::empty(sizes, first.options().memory_format(at::MemoryFormat::ChannelsLast));
  std::vector<at::Tensor> dense;
  std::vector<int64_t> counts;
  for (const auto& t : parts) {
    dense.push_back(t.contiguous(at::MemoryFormat::ChannelsLast));
    counts.push_back(t.size(1));
  }
  interleave(dense, counts, sizes[0] * sizes[2] * sizes[3], result);
  out = result;
  return true;
}

Kernel make_concat(const Node& node, const BuildContext&) {
  int64_t axis = node.attrs.get_int("axis", 0);
  return [axis](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    std::vector<at::Tensor> parts;
    for (const auto& t : in)
      if (t.defined()) parts.push_back(t);
    require(!parts.empty(), "Concat: no inputs");
    align_operands(parts);
    int64_t a = normalize_axis(axis, parts[0].dim());
    if (parts.size() == 1) {
      out[0] = parts[0];
      return;
    }
    if (concat_channels_last(parts, a, out[0]) || concat_contiguous(parts, a, out[0])) return;
    out[0] = at::cat(parts, a);
  };
}

Kernel make_split(const Node& node, const BuildContext&) {
  int64_t axis = node.attrs.get_int("axis", 0);
  std::vector<int64_t> attr_split = node.attrs.get_ints("split");
  int64_t num_outputs = node.attrs.get_int("num_outputs", 0);
  return [axis, attr_split, num_outputs](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const at::Tensor& x = in[0];
    int64_t a = normalize_axis(axis, x.dim());
    int64_t dim = x.size(a);
    std::vector<int64_t> sizes = has_input(in, 1) ? to_int_vector(in[1]) : attr_split;
    if (sizes.empty()) {
      int64_t parts = num_outputs > 0 ? num_outputs : static_cast<int64_t>(out.size());
      require(parts > 0, "Split: no outputs");
      // Equal parts; with num_outputs the last one may be smaller (opset 18).
      int64_t chunk = (dim + parts - 1) / parts;
      for (int64_t i = 0; i < parts; ++i) sizes.push_back(std::max<int64_t>(0, std::min(chunk, dim - i * chunk)));
    }
    require(sizes.size() == out.size(),
            "Split: " + std::to_string(sizes.size()) + " parts for " + std::to_string(out.size()) + " outputs");
    require(std::accumulate(sizes.begin(), sizes.end(), int64_t{0}) == dim, "Split: parts do not add up to the axis");
    std::vector<at::Tensor> pieces = x.split_with_sizes(sizes, a);
    for (size_t i = 0; i < out.size(); ++i) out[i] = pieces[i];
  };
}

// One axis of Slice, with ONNX's clamping; a negative step reverses (a copy,
// since ATen views cannot have negative strides).
at::Tensor slice_axis(const at::Tensor& x, int64_t axis, int64_t start, int64_t end, int64_t step) {
  require(step != 0, "Slice: step 0");
  int64_t dim = x.size(axis);
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
    return x.slice(axis, start, std::max(start, end), step);
  }
  start = std::clamp<int64_t>(start, -1, dim - 1);
  end = std::clamp<int64_t>(end, -1, dim - 1);
  if (start <= end) return x.slice(axis, 0, 0);
  int64_t stride = -step;
  int64_t count = (start - end + stride - 1) / stride;
  int64_t first = start - (count - 1) * stride;
  return x.slice(axis, first, start + 1, stride).flip({axis});
}

Kernel make_slice(const Node& node, const BuildContext&) {
  std::vector<int64_t> attr_starts = node.attrs.get_ints("starts");
  std::vector<int64_t> attr_ends = node.attrs.get_ints("ends");
  std::vector<int64_t> attr_axes = node.attrs.get_ints("axes");
  return [attr_starts, attr_ends, attr_axes](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    at::Tensor x = in[0];
    std::vector<int64_t> starts = has_input(in, 1) ? to_int_vector(in[1]) : attr_starts;
    std::vector<int64_t> ends = has_input(in, 2) ? to_int_vector(in[2]) : attr_ends;
    std::vector<int64_t> axes = has_input(in, 3) ? to_int_vector(in[3]) : attr_axes;
    std::vector<int64_t> steps = optional_ints(in, 4);
    require(starts.size() == ends.size(), "Slice: starts and ends differ in length");
    if (axes.empty()) {
      axes.resize(starts.size());
      std::iota(axes.begin(), axes.end(), 0);
    }
    if (steps.empty()) steps.assign(starts.size(), 1);
    require(axes.size() == starts.size() && steps.size() == starts.size(), "Slice: axes/steps length mismatch");
    for (size_t i = 0; i < starts.size(); ++i)
      x = slice_axis(x, normalize_axis(axes[i], x.dim()), starts[i], ends[i], steps[i]);
    out[0] = x;
  };
}

Kernel make_gather(const Node& node, const BuildContext&) {
  int64_t axis = node.attrs.get_int("axis", 0);
  return [axis](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const at::Tensor& data = in[0];
    int64_t a = normalize_axis(axis, data.dim());
    // One index on the host (shape arithmetic: Shape -> Gather -> Unsqueeze):
    // a view of the data, without the five tensor operations of the general
    // path. Out-of-range indices fall through to its error.
    if (in[1].numel() == 1 && in[1].dim() <= 1 && in[1].device().is_cpu() && !in[1].is_floating_point()) {
      int64_t i = in[1].item<int64_t>();
      if (i < 0) i += data.size(a);
      if (i >= 0 && i < data.size(a)) {
        out[0] = in[1].dim() == 0 ? data.select(a, i) : data.narrow(a, i, 1);
        return;
      }
    }
    at::Tensor idx = wrap_indices(in[1], data.size(a), data.device());
    std::vector<int64_t> shape(data.sizes().begin(), data.sizes().begin() + a);
    shape.insert(shape.end(), idx.sizes().begin(), idx.sizes().end());
    shape.insert(shape.end(), data.sizes().begin() + a + 1, data.sizes().end());
    out[0] = data.index_select(a, idx.reshape(-1)).reshape(shape);
  };
}

Kernel make_gather_elements(const Node& node, const BuildContext&) {
  int64_t axis = node.attrs.get_int("axis", 0);
  return [axis](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const at::Tensor& data = in[0];
    int64_t a = normalize_axis(axis, data.dim());
    out[0] = at::gather(data, a, wrap_indices(in[1], data.size(a), data.device()));
  };
}

// The row of each index tuple in a [prod(dims), ...] view of data: the last
// dimension of `indices` holds coordinates into data's dims [first, first+k).
at::Tensor linear_index(const at::Tensor& indices, at::IntArrayRef data_sizes, size_t first, at::Device device) {
  int64_t k = indices.size(-1);
  std::vector<int64_t> dims(data_sizes.begin() + first, data_sizes.begin() + first + k);
  std::vector<int64_t> strides(static_cast<size_t>(k), 1);
  for (int64_t j = k - 2; j >= 0; --j) strides[j] = strides[j + 1] * dims[j + 1];
  at::Tensor idx = on_device(indices, device).to(at::kLong);
  at::Tensor dims_t = on_device(at::tensor(dims, at::kLong), device);
  at::Tensor strides_t = on_device(at::tensor(strides, at::kLong), device);
  idx = at::where(idx < 0, idx + dims_t, idx);
  return (idx * strides_t).sum(-1);
}

Kernel make_gather_nd(const Node& node, const BuildContext&) {
  int64_t batch_dims = node.attrs.get_int("batch_dims", 0);
  return [batch_dims](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const at::Tensor& data = in[0];
    const at::Tensor& indices = in[1];
    require(indices.dim() >= 1, "GatherND: indices need at least one dimension");
    int64_t k = indices.size(-1);
    auto b = static_cast<size_t>(batch_dims);
    require(batch_dims + k <= data.dim(), "GatherND: index tuples longer than the data's rank");
    at::IntArrayRef ds = data.sizes();
    int64_t batch = product(ds, 0, b);
    int64_t block = product(ds, b, b + static_cast<size_t>(k));
    at::Tensor flat = linear_index(indices, ds, b, data.device()).reshape({batch, -1});
    flat = flat + at::arange(batch, flat.options()).unsqueeze(1) * block;
    std::vector<int64_t> rows_shape{batch * block};
    rows_shape.insert(rows_shape.end(), ds.begin() + static_cast<int64_t>(b) + k, ds.end());
    std::vector<int64_t> shape(indices.sizes().begin(), indices.sizes().end() - 1);
    shape.insert(shape.end(), ds.begin() + static_cast<int64_t>(b) + k, ds.end());
    out[0] = data.reshape(rows_shape).index_select(0, flat.reshape(-1)).reshape(shape);
  };
}

// ATen's name for an ONNX scatter reduction; empty for "none".
std::string aten_scatter_reduction(const Node& node, const std::string& op) {
  const std::string reduction = node.attrs.get_string("reduction", "none");
  if (reduction == "none") return "";
  if (reduction == "add") return "sum";
  if (reduction == "mul") return "prod";
  if (reduction == "max") return "amax";
  if (reduction == "min") return "amin";
  throw Error(ErrorKind::unsupported, op + " reduction '" + reduction + "'");
}

Kernel make_scatter_elements(const Node& node, const BuildContext&) {
  int64_t axis = node.attrs.get_int("axis", 0);
  std::string aten_reduce = aten_scatter_reduction(node, "ScatterElements");
  return [axis, aten_reduce](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    std::vector<at::Tensor> values{in[0], in[2]};
    align_operands(values);
    const at::Tensor& data = values[0];
    at::Tensor updates = values[1].to(data.scalar_type());
    int64_t a = normalize_axis(axis, data.dim());
    at::Tensor idx = wrap_indices(in[1], data.size(a), data.device());
    if (aten_reduce.empty())
      out[0] = at::scatter(data, a, idx, updates);
    else
      out[0] = at::scatter_reduce(data, a, idx, updates, aten_reduce, /*include_self=*/true);
  };
}

Kernel make_scatter_nd(const Node& node, const BuildContext&) {
  std::string aten_reduce = aten_scatter_reduction(node, "ScatterND");
  return [aten_reduce](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    std::vector<at::Tensor> values{in[0], in[2]};
    align_operands(values);
    const at::Tensor& data = values[0];
    const at::Tensor& indices = in[1];
    require(indices.dim() >= 1, "ScatterND: indices need at least one dimension");
    int64_t k = indices.size(-1);
    require(k <= data.dim(), "ScatterND: index tuples longer than the data's rank");
    at::IntArrayRef ds = data.sizes();
    std::vector<int64_t> rows_shape{product(ds, 0, static_cast<size_t>(k))};
    rows_shape.insert(rows_shape.end(), ds.begin() + k, ds.end());
    at::Tensor flat = linear_index(indices, ds, 0, data.device()).reshape(-1);
    std::vector<int64_t> update_shape{flat.size(0)};
    update_shape.insert(update_shape.end(), ds.begin() + k, ds.end());
    at::Tensor updates = values[1].to(data.scalar_type()).reshape(update_shape);
    at::Tensor result = data.clone(at::MemoryFormat::Contiguous);
    at::Tensor rows = result.view(rows_shape);
    if (aten_reduce.empty())
      rows.index_copy_(0, flat, updates);
    else if (aten_reduce == "sum")
      rows.index_add_(0, flat, updates);
    else
      rows.index_reduce_(0, flat, updates, aten_reduce, /*include_self=*/true);
    out[0] = result;
  };
}

Kernel make_expand(const Node&, const BuildContext&) {
  return [](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const at::Tensor& x = in[0];
    std::vector<int64_t> shape = to_int_vector(in[1]);
    out[0] = x.expand(at::infer_size(x.sizes(), shape));
  };
}

Kernel make_tile(const Node&, const BuildContext&) {
  return [](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    std::vector<int64_t> repeats = to_int_vector(in[1]);
    require(static_cast<int64_t>(repeats.size()) == in[0].dim(), "Tile: repeats must have one entry per dimension");
    out[0] = in[0].repeat(repeats);
  };
}

Kernel make_shape(const Node& node, const BuildContext&) {
  int64_t start = node.attrs.get_int("start", 0);
  bool has_end = node.attrs.has("end");
  int64_t end = node.attrs.get_int("end", 0);
  return [start, has_end, end](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    int64_t rank = in[0].dim();
    auto clamp_axis = [rank](int64_t a) { return std::clamp<int64_t>(a < 0 ? a + rank : a, 0, rank); };
    int64_t s = clamp_axis(start);
    int64_t e = has_end ? clamp_axis(end) : rank;
    std::vector<int64_t> dims(in[0].sizes().begin() + s, in[0].sizes().begin() + std::max(s, e));
    out[0] = at::tensor(dims, at::kLong);
  };
}

Kernel make_size(const Node&, const BuildContext&) {
  return [](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    out[0] = at::scalar_tensor(static_cast<int64_t>(in[0].numel()), at::kLong);
  };
}

// Source index along one axis for reflect, edge and wrap padding; `begin`
// and `end` may be negative (cropping).
at::Tensor pad_source_indices(const std::string& mode, int64_t size, int64_t begin, int64_t end) {
  int64_t count = size + begin + end;
  require(count >= 0, "Pad: negative pads remove more than the dimension");
  require(size > 0 || count == 0, "Pad: cannot " + mode + "-pad an empty dimension");
  std::vector<int64_t> source(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    int64_t j = i - begin;
    if (mode == "edge") {
      j = std::clamp<int64_t>(j, 0, size - 1);
    } else if (mode == "wrap") {
      j = ((j % size) + size) % size;
    } else if (size == 1) {
      j = 0;
    } else {  // reflect: mirror about the first and last element, not repeating them
      int64_t period = 2 * (size - 1);
      j = ((j % period) + period) % period;
      if (j >= size) j = period - j;
    }
    source[static_cast<size_t>(i)] = j;
  }
  return at::tensor(source, at::kLong);
}

Kernel make_pad(const Node& node, const BuildContext&) {
  std::string mode = node.attrs.get_string("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge" && mode != "wrap")
    throw Error(ErrorKind::unsupported, "Pad mode '" + mode + "'");
  std::vector<int64_t> attr_pads = node.attrs.get_ints("pads");
  double attr_value = node.attrs.get_float("value", 0.0);
  return [mode, attr_pads, attr_value](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const at::Tensor& x = in[0];
    int64_t rank = x.dim();
    std::vector<int64_t> pads = has_input(in, 1) ? to_int_vector(in[1]) : attr_pads;
    std::vector<int64_t> axes = optional_ints(in, 3);
    if (axes.empty()) {
      axes.resize(static_cast<size_t>(rank));
      std::iota(axes.begin(), axes.end(), 0);
    }
    require(pads.size() == 2 * axes.size(),
            "Pad: expected " + std::to_string(2 * axes.size()) + " pads, got " + std::to_string(pads.size()));
    std::vector<int64_t> begin(static_cast<size_t>(rank), 0);
    std::vector<int64_t> end(static_cast<size_t>(rank), 0);
    for (size_t i = 0; i < axes.size(); ++i) {
      auto a = static_cast<size_t>(normalize_axis(axes[i], rank));
      begin[a] = pads[i];
      end[a] = pads[i + axes.size()];
    }
    if (mode == "constant") {
      double value = has_input(in, 2) ? scalar_value(in[2]) : attr_value;
      std::vector<int64_t> torch_pads;  // last dimension first, as ATen wants
      for (int64_t d = rank - 1; d >= 0; --d) {
        torch_pads.push_back(begin[static_cast<size_t>(d)]);
        torch_pads.push_back(end[static_cast<size_t>(d)]);
      }
      out[0] = at::constant_pad_nd(x, torch_pads, value);
      return;
    }
    at::Tensor y = x;
    for (int64_t d = 0; d < rank; ++d) {
      auto du = static_cast<size_t>(d);
      if (begin[du] == 0 && end[du] == 0) continue;
      at::Tensor source = on_device(pad_source_indices(mode, y.size(d), begin[du], end[du]), y.device());
      y = y.index_select(d, source);
    }
    out[0] = y;
  };
}

Kernel make_identity(const Node&, const BuildContext&) {
  return [](std::span<const at::Tensor> in, std::span<at::Tensor> out) { out[0] = in[0]; };
}

Kernel make_constant_of_shape(const Node& node, const BuildContext& context) {
  at::Tensor value = node.attrs.get_tensor("value").value_or(at::zeros({1}, at::kFloat));
  require(value.numel() == 1, "ConstantOfShape: value must hold one element");
  value = value.reshape({}).cpu();
  at::Device device = context.device;
  bool fp16 = context.fp16;
  return [value, device, fp16](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    std::vector<int64_t> shape = to_int_vector(in[0]);
    int64_t numel = 1;
    for (int64_t d : shape) {
      require(d >= 0, "ConstantOfShape: negative dimension");
      numel *= d;
    }
    at::ScalarType dtype = value.scalar_type();
    bool on_host = !value.is_floating_point() && numel <= 64;
    at::Device target = on_host ? at::Device(at::kCPU) : device;
    if (fp16 && !target.is_cpu() && dtype == at::kFloat) dtype = at::kHalf;
    out[0] = at::full(shape, value.item(), at::TensorOptions().dtype(dtype).device(target));
  };
}

int64_t range_count_int(int64_t start, int64_t limit, int64_t delta) {
  if (delta > 0) return limit > start ? (limit - start + delta - 1) / delta : 0;
  return start > limit ? (start - limit - delta - 1) / -delta : 0;
}

Kernel make_range(const Node&, const BuildContext& context) {
  at::Device device = context.device;
  bool fp16 = context.fp16;
  return [device, fp16](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    require(in.size() == 3 && in[0].defined() && in[1].defined() && in[2].defined(), "Range: expects three inputs");
    at::ScalarType dtype = in[0].scalar_type();
    at::Tensor values;
    if (at::isFloatingType(dtype)) {
      double start = scalar_value(in[0]);
      double limit = scalar_value(in[1]);
      double delta = scalar_value(in[2]);
      require(delta != 0, "Range: delta is 0");
      auto count = static_cast<int64_t>(std::max(std::ceil((limit - start) / delta), 0.0));
      values = (at::arange(count, at::kDouble) * delta + start).to(dtype);
    } else {
      int64_t start = to_int_vector(in[0]).at(0);
      int64_t limit = to_int_vector(in[1]).at(0);
      int64_t delta = to_int_vector(in[2]).at(0);
      require(delta != 0, "Range: delta is 0");
      values = (at::arange(range_count_int(start, limit, delta), at::kLong) * delta + start).to(dtype);
    }
    out[0] = place_like_constant(values, device, fp16);
  };
}

Kernel make_trilu(const Node& node, const BuildContext&) {
  bool upper = node.attrs.get_int("upper", 1) != 0;
  return [upper](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    int64_t k = has_input(in, 1) ? to_int_vector(in[1]).at(0) : 0;
    at::Tensor x = is_cpu_low_precision(in[0]) ? in[0].to(at::kFloat) : in[0];
    at::Tensor y = upper ? at::triu(x, k) : at::tril(x, k);
    out[0] = y.scalar_type() == in[0].scalar_type() ? y : y.to(in[0].scalar_type());
  };
}

Kernel make_compress(const Node& node, const BuildContext&) {
  bool has_axis = node.attrs.has("axis");
  int64_t axis = node.attrs.get_int("axis", 0);
  return [has_axis, axis](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    at::Tensor x = has_axis ? in[0] : in[0].reshape(-1);
    int64_t a = has_axis ? normalize_axis(axis, x.dim()) : 0;
    at::Tensor selected = at::nonzero(in[1].reshape(-1).to(at::kBool)).reshape(-1);
    out[0] = x.index_select(a, on_device(selected, x.device()));
  };
}

Kernel make_nonzero(const Node&, const BuildContext&) {
  return
      [](std::span<const at::Tensor> in, std::span<at::Tensor> out) { out[0] = at::nonzero(in[0]).t().contiguous(); };
}

Kernel make_onehot(const Node& node, const BuildContext&) {
  int64_t axis = node.attrs.get_int("axis", -1);
  return [axis](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const at::Tensor& values = in[2];
    require(values.numel() == 2, "OneHot: values must hold [off, on]");
    auto depth = static_cast<int64_t>(scalar_value(in[1]));
    require(depth > 0, "OneHot: depth must be positive");
    at::Tensor idx = on_device(in[0], values.device()).to(at::kLong);
    idx = at::where(idx < 0, idx + depth, idx);
    int64_t rank = idx.dim() + 1;
    int64_t a = normalize_axis(axis, rank);
    std::vector<int64_t> class_shape(static_cast<size_t>(rank), 1);
    class_shape[static_cast<size_t>(a)] = depth;
    at::Tensor classes = at::arange(depth, idx.options()).reshape(class_shape);
    at::Tensor hot = idx.unsqueeze(a) == classes;
    at::Tensor flat_values = values.reshape(-1);
    out[0] = at::where(hot, flat_values[1], flat_values[0]);
  };
}

}  // namespace

void register_shape_ops(OpTable& table) {
  table.add("Reshape", make_reshape);
  table.add("Flatten", make_flatten);
  table.add("Squeeze", make_squeeze);
  table.add("Unsqueeze", make_unsqueeze);
  table.add("Transpose", make_transpose);
  table.add("Concat", make_concat);
  table.add("Split", make_split);
  table.add("Slice", make_slice);
  table.add("Gather", make_gather);
  table.add("GatherElements", make_gather_elements);
  table.add("GatherND", make_gather_nd);
  table.add("ScatterElements", make_scatter_elements);
  table.add("Scatter", make_scatter_elements);  // the deprecated name (opset 9-10) of ScatterElements
  table.add("ScatterND", make_scatter_nd);
  table.add("Expand", make_expand);
  table.add("Tile", make_tile);
  table.add("Shape", make_shape);
  table.add("Size", make_size);
  table.add("Pad", make_pad);
  table.add("Identity", make_identity);
  table.add("ConstantOfShape", make_constant_of_shape);
  table.add("Range", make_range);
  table.add("Trilu", make_trilu);
  table.add("Compress", make_compress);
  table.add("NonZero", make_nonzero);
  table.add("OneHot", make_onehot);
}

}  // namespace visage::rt
