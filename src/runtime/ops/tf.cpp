// TensorFlow operators with no ONNX counterpart ("tf." prefix), produced by
// the TF.js graph-model loader.
#include <ATen/ATen.h>

#include <limits>

#include "runtime/ops/families.hpp"

namespace visage::rt {
namespace {

// Brings two elementwise operands to one device and dtype: a CPU operand
// follows the other's device; half/float mixes compute in the dtype of the
// operand that is not a CPU scalar constant. With `keep_cpu_scalars`, a CPU
// 0-dim operand stays on the host: ATen's elementwise kernels take it as a
// scalar argument, without a host-to-device copy (which a CUDA graph cannot
// capture).
std::pair<at::Tensor, at::Tensor> align_operands(at::Tensor a, at::Tensor b, bool keep_cpu_scalars = false) {
  if (a.device() != b.device()) {
    auto kept = [&](const at::Tensor& t) { return keep_cpu_scalars && t.device().is_cpu() && t.dim() == 0; };
    if (a.device().is_cpu()) {
      if (!kept(a)) a = a.to(b.device());
    } else if (!kept(b)) {
      b = b.to(a.device());
    }
  }
  if (a.scalar_type() != b.scalar_type()) {
    bool a_minor = a.dim() == 0;
    bool b_minor = b.dim() == 0;
    at::ScalarType type = a_minor && !b_minor   ? b.scalar_type()
                          : b_minor && !a_minor ? a.scalar_type()
                                                : at::promote_types(a.scalar_type(), b.scalar_type());
    a = a.to(type);
    b = b.to(type);
  }
  return {a, b};
}

// tf.StridedSlice(input, begin, end, strides) with TF's five masks.
Kernel strided_slice(const Node& node, const BuildContext&) {
  const int64_t begin_mask = node.attrs.get_int("begin_mask", 0);
  const int64_t end_mask = node.attrs.get_int("end_mask", 0);
  const int64_t ellipsis_mask = node.attrs.get_int("ellipsis_mask", 0);
  const int64_t new_axis_mask = node.attrs.get_int("new_axis_mask", 0);
  const int64_t shrink_mask = node.attrs.get_int("shrink_axis_mask", 0);
  require((ellipsis_mask & (ellipsis_mask - 1)) == 0, "StridedSlice allows at most one ellipsis");
  return [=](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const at::Tensor& x = in[0];
    std::vector<int64_t> begin = to_int_vector(in[1]);
    std::vector<int64_t> end = to_int_vector(in[2]);
    std::vector<int64_t> strides =
        in.size() > 3 && in[3].defined() ? to_int_vector(in[3]) : std::vector<int64_t>(begin.size(), 1);
    require(begin.size() == end.size() && begin.size() == strides.size(),
            "StridedSlice begin, end and strides differ in length");
    const int64_t sparse = static_cast<int64_t>(begin.size());
    const int64_t rank = x.dim();

    // Sparse spec -> one entry per input dimension (TF's BuildDenseSpec),
    // plus the output shape recipe: input dims kept, new axes inserted.
    struct DimSpec {
      int64_t begin = 0, end = 0, stride = 1;
      bool begin_masked = true, end_masked = true, shrink = false;
    };
    std::vector<DimSpec> dense(static_cast<size_t>(rank));
    std::vector<int64_t> recipe;  // input dim index, or -1 for a new axis
    int64_t full = 0;
    auto entry = [&](int64_t i) {
      require(full < rank, "StridedSlice indexes more dimensions than the input's " + std::to_string(rank));
      DimSpec& d = dense[static_cast<size_t>(full)];
      d.begin = begin[static_cast<size_t>(i)];
      d.end = end[static_cast<size_t>(i)];
      d.stride = strides[static_cast<size_t>(i)];
      d.begin_masked = (begin_mask >> i) & 1;
      d.end_masked = (end_mask >> i) & 1;
      d.shrink = (shrink_mask >> i) & 1;
      if (!d.shrink) recipe.push_back(full);
      ++full;
    };
    for (int64_t i = 0; i < sparse; ++i) {
      if ((ellipsis_mask >> i) & 1) {
        // The ellipsis covers every dimension the remaining entries do not name.
        int64_t remaining = 0;
        for (int64_t j = i + 1; j < sparse; ++j)
          if (!((new_axis_mask >> j) & 1) && !((ellipsis_mask >> j) & 1)) ++remaining;
        int64_t stop = rank - remaining;
        for (; full < stop; ++full) recipe.push_back(full);
      } else if ((new_axis_mask >> i) & 1) {
        recipe.push_back(-1);
      } else {
        entry(i);
      }
    }
    // Dimensions past the spec are taken whole (implicit trailing ellipsis).
    for (; full < rank; ++full) recipe.push_back(full);

    at::Tensor y = x;
    for (int64_t d = 0; d < rank; ++d) {
      const DimSpec& s = dense[static_cast<size_t>(d)];
      const int64_t size = x.size(d);
      require(s.stride != 0, "StridedSlice stride must not be 0");
      if (s.shrink) {
        int64_t index = s.begin < 0 ? s.begin + size : s.begin;
        require(index >= 0 && index < size, "StridedSlice index " + std::to_string(s.begin) +
                                                " out of range for dimension of size " + std::to_string(size));
        y = y.narrow(d, index, 1);
        continue;
      }
      int64_t b = 0, e = 0, length = 0;
      if (s.stride > 0) {
        b = s.begin_masked ? 0 : std::clamp(s.begin < 0 ? s.begin + size : s.begin, int64_t{0}, size);
        e = s.end_masked ? size : std::clamp(s.end < 0 ? s.end + size : s.end, int64_t{0}, size);
        length = e > b ? (e - b + s.stride - 1) / s.stride : 0;
        if (length == size && s.stride == 1) continue;
        y = y.slice(d, b, b + std::max<int64_t>(length - 1, 0) * s.stride + (length > 0 ? 1 : 0), s.stride);
      } else {
        b = s.begin_masked ? size - 1 : std::clamp(s.begin < 0 ? s.begin + size : s.begin, int64_t{-1}, size - 1);
        e = s.end_masked ? -1 : std::clamp(s.end < 0 ? s.end + size : s.end, int64_t{-1}, size - 1);
        length = b > e ? (b - e + (-s.stride) - 1) / (-s.stride) : 0;
        // Walk backwards: flip, then step forwards from the mirrored start.
        int64_t start = size - 1 - b;
        y = y.flip({d}).slice(d, start, start + std::max<int64_t>(length - 1, 0) * (-s.stride) + (length > 0 ? 1 : 0),
                              -s.stride);
      }
    }
    std::vector<int64_t> shape;
    for (int64_t r : recipe) shape.push_back(r < 0 ? 1 : y.size(r));
    out[0] = y.reshape(shape);
  };
}

// tf.Slice(input, begin, size): size -1 takes the rest of the dimension.
Kernel slice(const Node&, const BuildContext&) {
  return [](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    std::vector<int64_t> begin = to_int_vector(in[1]);
    std::vector<int64_t> size = to_int_vector(in[2]);
    const at::Tensor& x = in[0];
    require(static_cast<int64_t>(begin.size()) == x.dim() && begin.size() == size.size(),
            "Slice begin and size must have one entry per input dimension");
    at::Tensor y = x;
    for (int64_t d = 0; d < x.dim(); ++d) {
      int64_t b = begin[static_cast<size_t>(d)];
      int64_t n = size[static_cast<size_t>(d)] < 0 ? x.size(d) - b : size[static_cast<size_t>(d)];
      require(b >= 0 && n >= 0 && b + n <= x.size(d), "Slice range out of bounds");
      y = y.narrow(d, b, n);
    }
    out[0] = y;
  };
}

// tf.BatchMatMul(x, y) with adj_x / adj_y transposing the last two axes.
// Integer operands are multiplied exactly in float64 where ATen lacks an
// integer matmul (CUDA).
Kernel batch_matmul(const Node& node, const BuildContext&) {
  const bool adj_x = node.attrs.get_int("adj_x", 0) != 0;
  const bool adj_y = node.attrs.get_int("adj_y", 0) != 0;
  return [=](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    auto [a, b] = align_operands(in[0], in[1]);
    if (adj_x) a = a.transpose(-1, -2);
    if (adj_y) b = b.transpose(-1, -2);
    if (!at::isFloatingType(a.scalar_type()) && !a.device().is_cpu()) {
      out[0] = at::matmul(a.to(at::kDouble), b.to(at::kDouble)).round().to(a.scalar_type());
      return;
    }
    out[0] = at::matmul(a, b);
  };
}

Kernel atan2(const Node&, const BuildContext&) {
  return [](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    auto [y, x] = align_operands(in[0], in[1], /*keep_cpu_scalars=*/true);
    out[0] = at::atan2(y, x);
  };
}

// Python-style modulo: the result takes the divisor's sign.
Kernel floor_mod(const Node&, const BuildContext&) {
  return [](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    auto [a, b] = align_operands(in[0], in[1], /*keep_cpu_scalars=*/true);
    out[0] = at::remainder(a, b);
  };
}

Kernel floor_div(const Node&, const BuildContext&) {
  return [](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    auto [a, b] = align_operands(in[0], in[1], /*keep_cpu_scalars=*/true);
    out[0] = at::div(a, b, "floor");
  };
}

// x / y, and 0 where y is 0.
Kernel div_no_nan(const Node&, const BuildContext&) {
  return [](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    auto [a, b] = align_operands(in[0], in[1]);
    at::Tensor zero = at::zeros({}, a.options());
    out[0] = at::where(b == 0, zero, a / b);
  };
}

}  // namespace

void register_tf_ops(OpTable& table) {
  table.add("tf.StridedSlice", strided_slice);
  table.add("tf.Slice", slice);
  table.add("tf.BatchMatMul", batch_matmul);
  table.add("tf.Atan2", atan2);
  table.add("tf.FloorMod", floor_mod);
  table.add("tf.FloorDiv", floor_div);
  table.add("tf.DivNoNan", div_no_nan);
}

}  // namespace visage::rt
