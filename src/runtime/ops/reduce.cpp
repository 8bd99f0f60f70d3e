// Reductions (ReduceSum, ReduceMean, ...), ArgMax/ArgMin and CumSum.
//
// Axes arrive as an input (opset 18 style; loaders turn older attribute axes
// into one) but an "axes" attribute is still honoured for graphs that were
// not rewritten.
#include <ATen/ATen.h>

#include <algorithm>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "runtime/ops/families.hpp"
#include "runtime/ops/operands.hpp"

namespace visage::rt {
namespace {

enum class Reduction { sum, mean, max, min, prod, l1, l2, log_sum, log_sum_exp, sum_square };

// Reductions whose intermediate values can leave half's range (squares,
// products) or that ATen's CPU kernels lack for half run in float.
bool needs_float(Reduction kind, const at::Tensor& x) {
  if (is_cpu_low_precision(x)) return true;
  bool half = x.scalar_type() == at::kHalf || x.scalar_type() == at::kBFloat16;
  return half && (kind == Reduction::l2 || kind == Reduction::sum_square || kind == Reduction::prod);
}

at::Tensor reduce(Reduction kind, const at::Tensor& x, const std::vector<int64_t>& axes, bool keepdims) {
  switch (kind) {
    case Reduction::sum: return at::sum(x, axes, keepdims, x.scalar_type());
    case Reduction::mean: return at::mean(x, axes, keepdims);
    case Reduction::max: return at::amax(x, axes, keepdims);
    case Reduction::min: return at::amin(x, axes, keepdims);
    case Reduction::prod: {
      at::Tensor y = x;
      for (auto it = axes.rbegin(); it != axes.rend(); ++it) y = at::prod(y, *it, keepdims, x.scalar_type());
      return y;
    }
    case Reduction::l1: return at::sum(at::abs(x), axes, keepdims, x.scalar_type());
    case Reduction::l2: return at::sqrt(at::sum(x * x, axes, keepdims, x.scalar_type()));
    case Reduction::log_sum: return at::log(at::sum(x, axes, keepdims, x.scalar_type()));
    case Reduction::log_sum_exp: return at::logsumexp(x, axes, keepdims);
    case Reduction::sum_square: return at::sum(x * x, axes, keepdims, x.scalar_type());
  }
  throw std::invalid_argument("unknown reduction");
}

// Integer inputs of reductions that ATen defines only for floats (mean,
// norms, logs) compute in double and convert back, truncating like ONNX's
// reference.
bool float_only(Reduction kind) {
  return kind == Reduction::mean || kind == Reduction::l2 || kind == Reduction::log_sum ||
         kind == Reduction::log_sum_exp;
}

Kernel make_reduce(const Node& node, Reduction kind) {
  bool keepdims = node.attrs.get_int("keepdims", 1) != 0;
  bool noop_with_empty_axes = node.attrs.get_int("noop_with_empty_axes", 0) != 0;
  std::vector<int64_t> attr_axes = node.attrs.get_ints("axes");
  return [kind, keepdims, noop_with_empty_axes, attr_axes](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const at::Tensor& x = in[0];
    std::vector<int64_t> axes = has_input(in, 1) ? to_int_vector(in[1]) : attr_axes;
    if (axes.empty() && noop_with_empty_axes) {
      out[0] = x;
      return;
    }
    // A scalar reduces as a one-element vector.
    at::Tensor work = x.dim() == 0 ? x.reshape({1}) : x;
    bool keep = x.dim() == 0 ? false : keepdims;
    if (axes.empty()) {
      axes.resize(static_cast<size_t>(work.dim()));
      std::iota(axes.begin(), axes.end(), 0);
    }
    for (auto& a : axes) a = normalize_axis(a, work.dim());
    std::sort(axes.begin(), axes.end());
    axes.erase(std::unique(axes.begin(), axes.end()), axes.end());
    if (needs_float(kind, work))
      work = work.to(at::kFloat);
    else if (float_only(kind) && !work.is_floating_point())
      work = work.to(at::kDouble);
    at::Tensor y = reduce(kind, work, axes, keep);
    if (x.dim() == 0) y = y.reshape({});
    out[0] = y.scalar_type() == x.scalar_type() ? y : y.to(x.scalar_type());
  };
}

template <Reduction kind>
Kernel make_reduce_of(const Node& node, const BuildContext&) {
  return make_reduce(node, kind);
}

Kernel make_arg(const Node& node, bool max) {
  int64_t axis = node.attrs.get_int("axis", 0);
  bool keepdims = node.attrs.get_int("keepdims", 1) != 0;
  bool select_last_index = node.attrs.get_int("select_last_index", 0) != 0;
  return [max, axis, keepdims, select_last_index](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    at::Tensor x = is_cpu_low_precision(in[0]) ? in[0].to(at::kFloat) : in[0];
    int64_t a = normalize_axis(axis, x.dim());
    // ATen returns the first extreme; the last one is the first of the
    // reversed axis.
    at::Tensor source = select_last_index ? x.flip({a}) : x;
    at::Tensor index = max ? at::argmax(source, a, keepdims) : at::argmin(source, a, keepdims);
    if (select_last_index) index = (x.size(a) - 1) - index;
    out[0] = index;
  };
}

Kernel make_argmax(const Node& node, const BuildContext&) { return make_arg(node, true); }
Kernel make_argmin(const Node& node, const BuildContext&) { return make_arg(node, false); }

Kernel make_cumsum(const Node& node, const BuildContext&) {
  bool exclusive = node.attrs.get_int("exclusive", 0) != 0;
  bool reverse = node.attrs.get_int("reverse", 0) != 0;
  return [exclusive, reverse](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const at::Tensor& x = in[0];
    std::vector<int64_t> axis_values = to_int_vector(in[1]);
    require(axis_values.size() == 1, "CumSum: axis must be a single value");
    int64_t a = normalize_axis(axis_values[0], x.dim());
    at::Tensor work = is_cpu_low_precision(x) ? x.to(at::kFloat) : x;
    if (reverse) work = work.flip({a});
    at::Tensor sums = at::cumsum(work, a, work.scalar_type());
    int64_t n = x.size(a);
    if (exclusive && n > 0)  // shift by one: element i sums elements before i
      sums = at::cat({at::zeros_like(sums.narrow(a, 0, 1)), sums.narrow(a, 0, n - 1)}, a);
    if (reverse) sums = sums.flip({a});
    out[0] = sums.scalar_type() == x.scalar_type() ? sums : sums.to(x.scalar_type());
  };
}

}  // namespace

void register_reduce_ops(OpTable& table) {
  table.add("ReduceSum", make_reduce_of<Reduction::sum>);
  table.add("ReduceMean", make_reduce_of<Reduction::mean>);
  table.add("ReduceMax", make_reduce_of<Reduction::max>);
  table.add("ReduceMin", make_reduce_of<Reduction::min>);
  table.add("ReduceProd", make_reduce_of<Reduction::prod>);
  table.add("ReduceL1", make_reduce_of<Reduction::l1>);
  table.add("ReduceL2", make_reduce_of<Reduction::l2>);
  table.add("ReduceLogSum", make_reduce_of<Reduction::log_sum>);
  table.add("ReduceLogSumExp", make_reduce_of<Reduction::log_sum_exp>);
  table.add("ReduceSumSquare", make_reduce_of<Reduction::sum_square>);
  table.add("ArgMax", make_argmax);
  table.add("ArgMin", make_argmin);
  table.add("CumSum", make_cumsum);
}

}  // namespace visage::rt
