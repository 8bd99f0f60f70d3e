// Elementwise operators: arithmetic, math functions, comparisons, logic,
// bit operations and Where, with numpy-style broadcasting.
#include <ATen/ATen.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "runtime/ops/families.hpp"
#include "runtime/ops/operands.hpp"

namespace visage::rt {
namespace {

using BinaryFn = std::function<at::Tensor(const at::Tensor&, const at::Tensor&)>;
using BinaryOutFn = std::function<void(at::Tensor&, const at::Tensor&, const at::Tensor&)>;
using UnaryFn = std::function<at::Tensor(const at::Tensor&)>;
using UnaryOutFn = std::function<void(at::Tensor&, const at::Tensor&)>;

// Runs a broadcasting binary operator on aligned operands. When `compute_out`
// is given and the previous run's output buffer fits, the result is written
// into it instead of a new tensor.
at::Tensor apply_binary(const at::Tensor& a_in, const at::Tensor& b_in, const BinaryFn& compute,
                        const BinaryOutFn& compute_out, at::Tensor* out_hint, bool result_is_bool = false) {
  std::vector<at::Tensor> operands{a_in, b_in};
  align_operands(operands, /*keep_cpu_scalars=*/true);
  at::Tensor a = operands[0];
  at::Tensor b = operands[1];
  if (is_cpu_low_precision(a) || is_cpu_low_precision(b)) {
    at::ScalarType original = at::result_type(a, b);
    at::Tensor result = compute(a.to(at::kFloat), b.to(at::kFloat));
    return result.is_floating_point() ? result.to(original) : result;
  }
  if (compute_out && out_hint && out_hint->defined()) {
    at::ScalarType dtype = result_is_bool ? at::kBool : at::result_type(a, b);
    at::Device device = common_device({&a, &b});
    std::vector<int64_t> sizes = at::infer_size(a.sizes(), b.sizes());
    if (can_reuse(*out_hint, sizes, dtype, device, {&a, &b})) {
      compute_out(*out_hint, a, b);
      return *out_hint;
    }
  }
  return compute(a, b);
}

Kernel binary_kernel(BinaryFn compute, BinaryOutFn compute_out = nullptr, bool result_is_bool = false) {
  return [compute, compute_out, result_is_bool](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    require(in.size() == 2 && in[0].defined() && in[1].defined(), "expects two inputs");
    out[0] = apply_binary(in[0], in[1], compute, compute_out, &out[0], result_is_bool);
  };
}

// Max, Min, Sum: a left fold over any number of inputs.
Kernel variadic_kernel(BinaryFn combine, BinaryOutFn combine_out, bool mean) {
  return [combine, combine_out, mean](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    require(!in.empty() && in[0].defined(), "expects at least one input");
    at::Tensor result = in[0];
    for (size_t i = 1; i < in.size(); ++i) {
      require(in[i].defined(), "input " + std::to_string(i) + " is missing");
      bool last = i + 1 == in.size() && !mean;
      result = apply_binary(result, in[i], combine, combine_out, last ? &out[0] : nullptr);
    }
    if (mean && in.size() > 1) result = result / static_cast<double>(in.size());
    out[0] = result;
  };
}

at::Tensor apply_unary(const at::Tensor& x, const UnaryFn& compute, const UnaryOutFn& compute_out,
                       at::Tensor* out_hint) {
  if (is_cpu_low_precision(x)) {
    at::Tensor result = compute(x.to(at::kFloat));
    return result.is_floating_point() ? result.to(x.scalar_type()) : result;
  }
  if (compute_out && out_hint && can_reuse(*out_hint, x.sizes(), x.scalar_type(), x.device(), {&x})) {
    compute_out(*out_hint, x);
    return *out_hint;
  }
  return compute(x);
}

Kernel unary_kernel(UnaryFn compute, UnaryOutFn compute_out = nullptr) {
  return [compute, compute_out](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    require(!in.empty() && in[0].defined(), "expects one input");
    out[0] = apply_unary(in[0], compute, compute_out, &out[0]);
  };
}

// Math functions that ATen only defines for floating-point inputs keep an
// integer input's dtype, as ONNX expects (only float types are legal there,
// but TF.js graphs are less strict).
UnaryFn float_math(at::Tensor (*fn)(const at::Tensor&)) {
  return [fn](const at::Tensor& x) {
    if (x.is_floating_point()) return fn(x);
    return fn(x.to(at::kFloat)).to(x.scalar_type());
  };
}

#define VISAGE_UNARY(name, fn)                                                                                \
  table.add(name, [](const Node&, const BuildContext&) -> Kernel {                                            \
    return unary_kernel(float_math(&at::fn), [](at::Tensor& o, const at::Tensor& x) { at::fn##_out(o, x); }); \
  })

Kernel make_add(const Node&, const BuildContext&) {
  return binary_kernel([](const at::Tensor& a, const at::Tensor& b) { return at::add(a, b); },
                       [](at::Tensor& o, const at::Tensor& a, const at::Tensor& b) { at::add_out(o, a, b); });
}

Kernel make_sub(const Node&, const BuildContext&) {
  return binary_kernel(
      [](const at::Tensor& a, const at::Tensor& b) {
        if (a.scalar_type() == at::kBool) return at::logical_xor(a, b);  // ATen refuses bool subtraction
        return at::sub(a, b);
      },
      [](at::Tensor& o, const at::Tensor& a, const at::Tensor& b) {
        if (a.scalar_type() == at::kBool)
          at::logical_xor_out(o, a, b);
        else
          at::sub_out(o, a, b);
      });
}

Kernel make_mul(const Node&, const BuildContext&) {
  return binary_kernel([](const at::Tensor& a, const at::Tensor& b) { return at::mul(a, b); },
                       [](at::Tensor& o, const at::Tensor& a, const at::Tensor& b) { at::mul_out(o, a, b); });
}

// ONNX integer division truncates toward zero like C; ATen's true division
// would give floats.
bool integer_division(const at::Tensor& a, const at::Tensor& b) {
  return at::isIntegralType(at::result_type(a, b), /*includeBool=*/true);
}

Kernel make_div(const Node&, const BuildContext&) {
  return binary_kernel(
      [](const at::Tensor& a, const at::Tensor& b) {
        return integer_division(a, b) ? at::div(a, b, "trunc") : at::div(a, b);
      },
      [](at::Tensor& o, const at::Tensor& a, const at::Tensor& b) {
        if (integer_division(a, b))
          at::div_out(o, a, b, "trunc");
        else
          at::div_out(o, a, b);
      });
}

// Pow's result has the base's type even when the exponent's type differs.
Kernel make_pow(const Node&, const BuildContext&) {
  return [](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    require(in.size() == 2 && in[0].defined() && in[1].defined(), "expects two inputs");
    at::Tensor base = in[0];
    at::Tensor exponent = in[1];
    if (!base.is_floating_point() && exponent.is_floating_point()) {
      out[0] = at::pow(base.to(at::kDouble), on_device(exponent, base.device()).to(at::kDouble)).to(base.scalar_type());
      return;
    }
    if (base.is_floating_point() && !exponent.is_floating_point()) exponent = exponent.to(base.scalar_type());
    at::Tensor result = apply_binary(
        base, exponent, [](const at::Tensor& a, const at::Tensor& b) { return at::pow(a, b); },
        [](at::Tensor& o, const at::Tensor& a, const at::Tensor& b) { at::pow_out(o, a, b); }, &out[0]);
    out[0] = result.scalar_type() == base.scalar_type() ? result : result.to(base.scalar_type());
  };
}

Kernel make_mod(const Node& node, const BuildContext&) {
  bool fmod = node.attrs.get_int("fmod", 0) != 0;
  if (fmod)
    return binary_kernel([](const at::Tensor& a, const at::Tensor& b) { return at::fmod(a, b); },
                         [](at::Tensor& o, const at::Tensor& a, const at::Tensor& b) { at::fmod_out(o, a, b); });
  // fmod=0: the result takes the divisor's sign (Python's %).
  return binary_kernel([](const at::Tensor& a, const at::Tensor& b) { return at::remainder(a, b); },
                       [](at::Tensor& o, const at::Tensor& a, const at::Tensor& b) { at::remainder_out(o, a, b); });
}

Kernel make_max(const Node&, const BuildContext&) {
  return variadic_kernel([](const at::Tensor& a, const at::Tensor& b) { return at::maximum(a, b); },
                         [](at::Tensor& o, const at::Tensor& a, const at::Tensor& b) { at::maximum_out(o, a, b); },
                         false);
}

Kernel make_min(const Node&, const BuildContext&) {
  return variadic_kernel([](const at::Tensor& a, const at::Tensor& b) { return at::minimum(a, b); },
                         [](at::Tensor& o, const at::Tensor& a, const at::Tensor& b) { at::minimum_out(o, a, b); },
                         false);
}

BinaryFn add_fn() {
  return [](const at::Tensor& a, const at::Tensor& b) { return at::add(a, b); };
}
BinaryOutFn add_out_fn() {
  return [](at::Tensor& o, const at::Tensor& a, const at::Tensor& b) { at::add_out(o, a, b); };
}

Kernel make_sum(const Node&, const BuildContext&) { return variadic_kernel(add_fn(), add_out_fn(), false); }
Kernel make_mean(const Node&, const BuildContext&) { return variadic_kernel(add_fn(), add_out_fn(), true); }

Kernel comparison(at::Tensor (*fn)(const at::Tensor&, const at::Tensor&),
                  at::Tensor& (*fn_out)(at::Tensor&, const at::Tensor&, const at::Tensor&)) {
  return binary_kernel([fn](const at::Tensor& a, const at::Tensor& b) { return fn(a, b); },
                       [fn_out](at::Tensor& o, const at::Tensor& a, const at::Tensor& b) { fn_out(o, a, b); },
                       /*result_is_bool=*/true);
}

Kernel logical(at::Tensor (*fn)(const at::Tensor&, const at::Tensor&)) {
  return binary_kernel([fn](const at::Tensor& a, const at::Tensor& b) { return fn(a.to(at::kBool), b.to(at::kBool)); });
}

Kernel make_bitshift(const Node& node, const BuildContext&) {
  std::string direction = node.attrs.get_string("direction", "");
  require(direction == "LEFT" || direction == "RIGHT", "BitShift direction must be LEFT or RIGHT");
  if (direction == "LEFT")
    return binary_kernel([](const at::Tensor& a, const at::Tensor& b) { return at::bitwise_left_shift(a, b); });
  return binary_kernel([](const at::Tensor& a, const at::Tensor& b) { return at::bitwise_right_shift(a, b); });
}

Kernel make_where(const Node&, const BuildContext&) {
  return [](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    require(in.size() == 3 && in[0].defined() && in[1].defined() && in[2].defined(), "expects three inputs");
    std::vector<at::Tensor> values{in[1], in[2]};
    align_operands(values);
    at::Tensor condition = on_device(in[0], values[0].device());
    if (condition.scalar_type() != at::kBool) condition = condition.to(at::kBool);
    if (is_cpu_low_precision(values[0])) {
      out[0] = at::where(condition, values[0].to(at::kFloat), values[1].to(at::kFloat)).to(values[0].scalar_type());
      return;
    }
    out[0] = at::where(condition, values[0], values[1]);
  };
}

Kernel make_isinf(const Node& node, const BuildContext&) {
  bool positive = node.attrs.get_int("detect_positive", 1) != 0;
  bool negative = node.attrs.get_int("detect_negative", 1) != 0;
  return [positive, negative](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const at::Tensor& x = in[0];
    if (positive && negative)
      out[0] = at::isinf(x);
    else if (positive)
      out[0] = at::isposinf(x);
    else if (negative)
      out[0] = at::isneginf(x);
    else
      out[0] = at::zeros(x.sizes(), x.options().dtype(at::kBool));
  };
}

Kernel make_isnan(const Node&, const BuildContext&) {
  return [](std::span<const at::Tensor> in, std::span<at::Tensor> out) { out[0] = at::isnan(in[0]); };
}

Kernel make_not(const Node&, const BuildContext&) {
  return [](std::span<const at::Tensor> in, std::span<at::Tensor> out) { out[0] = at::logical_not(in[0]); };
}

Kernel make_bitwise_not(const Node&, const BuildContext&) {
  return [](std::span<const at::Tensor> in, std::span<at::Tensor> out) { out[0] = at::bitwise_not(in[0]); };
}

Kernel make_neg(const Node&, const BuildContext&) {
  return unary_kernel([](const at::Tensor& x) { return at::neg(x); },
                      [](at::Tensor& o, const at::Tensor& x) { at::neg_out(o, x); });
}

Kernel make_abs(const Node&, const BuildContext&) {
  return unary_kernel([](const at::Tensor& x) { return at::abs(x); },
                      [](at::Tensor& o, const at::Tensor& x) { at::abs_out(o, x); });
}

Kernel make_sign(const Node&, const BuildContext&) {
  return unary_kernel([](const at::Tensor& x) { return at::sign(x); },
                      [](at::Tensor& o, const at::Tensor& x) { at::sign_out(o, x); });
}

// Floor, Ceil and Round leave integers as they are. The integer result is
// the input itself, so that path never writes into an output buffer (which
// could then be a caller's tensor).
Kernel rounding(at::Tensor (*fn)(const at::Tensor&), at::Tensor& (*fn_out)(at::Tensor&, const at::Tensor&)) {
  Kernel on_floats = unary_kernel(fn, [fn_out](at::Tensor& o, const at::Tensor& x) { fn_out(o, x); });
  return [on_floats](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    require(!in.empty() && in[0].defined(), "expects one input");
    if (in[0].is_floating_point())
      on_floats(in, out);
    else
      out[0] = in[0];
  };
}

}  // namespace

void register_elementwise_ops(OpTable& table) {
  table.add("Add", make_add);
  table.add("Sub", make_sub);
  table.add("Mul", make_mul);
  table.add("Div", make_div);
  table.add("Pow", make_pow);
  table.add("Mod", make_mod);
  table.add("Max", make_max);
  table.add("Min", make_min);
  table.add("Sum", make_sum);
  table.add("Mean", make_mean);

  table.add("Neg", make_neg);
  table.add("Abs", make_abs);
  table.add("Sign", make_sign);
  VISAGE_UNARY("Exp", exp);
  VISAGE_UNARY("Log", log);
  VISAGE_UNARY("Sqrt", sqrt);
  VISAGE_UNARY("Reciprocal", reciprocal);
  VISAGE_UNARY("Erf", erf);
  VISAGE_UNARY("Sin", sin);
  VISAGE_UNARY("Cos", cos);
  VISAGE_UNARY("Tan", tan);
  VISAGE_UNARY("Asin", asin);
  VISAGE_UNARY("Acos", acos);
  VISAGE_UNARY("Atan", atan);
  VISAGE_UNARY("Sinh", sinh);
  VISAGE_UNARY("Cosh", cosh);
  VISAGE_UNARY("Asinh", asinh);
  VISAGE_UNARY("Acosh", acosh);
  VISAGE_UNARY("Atanh", atanh);
  // at::round rounds halves to even, as ONNX Round does.
  table.add("Floor", [](const Node&, const BuildContext&) {
    return rounding(&at::floor, [](at::Tensor& o, const at::Tensor& x) -> at::Tensor& { return at::floor_out(o, x); });
  });
  table.add("Ceil", [](const Node&, const BuildContext&) {
    return rounding(&at::ceil, [](at::Tensor& o, const at::Tensor& x) -> at::Tensor& { return at::ceil_out(o, x); });
  });
  table.add("Round", [](const Node&, const BuildContext&) {
    return rounding([](const at::Tensor& x) { return at::round(x); },
                    [](at::Tensor& o, const at::Tensor& x) -> at::Tensor& { return at::round_out(o, x); });
  });

  table.add("IsNaN", make_isnan);
  table.add("IsInf", make_isinf);

  table.add("Equal", [](const Node&, const BuildContext&) {
    return comparison(
        [](const at::Tensor& a, const at::Tensor& b) { return at::eq(a, b); },
        [](at::Tensor& o, const at::Tensor& a, const at::Tensor& b) -> at::Tensor& { return at::eq_out(o, a, b); });
  });
  table.add("Less", [](const Node&, const BuildContext&) {
    return comparison(
        [](const at::Tensor& a, const at::Tensor& b) { return at::lt(a, b); },
        [](at::Tensor& o, const at::Tensor& a, const at::Tensor& b) -> at::Tensor& { return at::lt_out(o, a, b); });
  });
  table.add("LessOrEqual", [](const Node&, const BuildContext&) {
    return comparison(
        [](const at::Tensor& a, const at::Tensor& b) { return at::le(a, b); },
        [](at::Tensor& o, const at::Tensor& a, const at::Tensor& b) -> at::Tensor& { return at::le_out(o, a, b); });
  });
  table.add("Greater", [](const Node&, const BuildContext&) {
    return comparison(
        [](const at::Tensor& a, const at::Tensor& b) { return at::gt(a, b); },
        [](at::Tensor& o, const at::Tensor& a, const at::Tensor& b) -> at::Tensor& { return at::gt_out(o, a, b); });
  });
  table.add("GreaterOrEqual", [](const Node&, const BuildContext&) {
    return comparison(
        [](const at::Tensor& a, const at::Tensor& b) { return at::ge(a, b); },
        [](at::Tensor& o, const at::Tensor& a, const at::Tensor& b) -> at::Tensor& { return at::ge_out(o, a, b); });
  });

  table.add("And", [](const Node&, const BuildContext&) {
    return logical([](const at::Tensor& a, const at::Tensor& b) { return at::logical_and(a, b); });
  });
  table.add("Or", [](const Node&, const BuildContext&) {
    return logical([](const at::Tensor& a, const at::Tensor& b) { return at::logical_or(a, b); });
  });
  table.add("Xor", [](const Node&, const BuildContext&) {
    return logical([](const at::Tensor& a, const at::Tensor& b) { return at::logical_xor(a, b); });
  });
  table.add("Not", make_not);

  table.add("BitShift", make_bitshift);
  table.add("BitwiseAnd", [](const Node&, const BuildContext&) {
    return binary_kernel([](const at::Tensor& a, const at::Tensor& b) { return at::bitwise_and(a, b); });
  });
  table.add("BitwiseOr", [](const Node&, const BuildContext&) {
    return binary_kernel([](const at::Tensor& a, const at::Tensor& b) { return at::bitwise_or(a, b); });
  });
  table.add("BitwiseXor", [](const Node&, const BuildContext&) {
    return binary_kernel([](const at::Tensor& a, const at::Tensor& b) { return at::bitwise_xor(a, b); });
  });
  table.add("BitwiseNot", make_bitwise_not);

  table.add("Where", make_where);
}

}  // namespace visage::rt
