// Operators that fit no other family: Cast, CastLike, Constant, Dropout
// (inference), TopK, NonMaxSuppression, Einsum.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "runtime/ops/families.hpp"
#include "runtime/ops/operands.hpp"
#include "visage/error.hpp"

namespace visage::rt {
namespace {

// ONNX TensorProto data type codes for the types ATen has. The unsigned
// 16/32/64-bit types, strings and complex numbers have no ATen counterpart here.
at::ScalarType scalar_type_of_onnx(int64_t code) {
  switch (code) {
    case 1: return at::kFloat;
    case 2: return at::kByte;
    case 3: return at::kChar;
    case 5: return at::kShort;
    case 6: return at::kInt;
    case 7: return at::kLong;
    case 9: return at::kBool;
    case 10: return at::kHalf;
    case 11: return at::kDouble;
    case 16: return at::kBFloat16;
    default: break;
  }
  throw Error(ErrorKind::unsupported, "Cast to ONNX data type " + std::to_string(code) + " is not supported");
}

// In an fp16 model, float on the device means half: a Cast to float must not
// take device values out of half precision. Host values (shapes and the
// like) keep the requested type.
at::ScalarType device_dtype(at::ScalarType requested, const at::Tensor& x, bool fp16) {
  return fp16 && requested == at::kFloat && !x.device().is_cpu() ? at::kHalf : requested;
}

Kernel make_cast(const Node& node, const BuildContext& context) {
  require(node.attrs.has("to"), "Cast needs a 'to' attribute");
  at::ScalarType to = scalar_type_of_onnx(node.attrs.get_int("to", 1));
  bool fp16 = context.fp16;
  return [to, fp16](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    out[0] = in[0].to(device_dtype(to, in[0], fp16));
  };
}

Kernel make_cast_like(const Node&, const BuildContext&) {
  return [](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    require(in.size() == 2 && in[1].defined(), "CastLike: expects a target_type input");
    out[0] = in[0].to(in[1].scalar_type());
  };
}

Kernel make_constant(const Node& node, const BuildContext& context) {
  const Attributes& a = node.attrs;
  at::Tensor value;
  if (auto tensor = a.get_tensor("value")) {
    value = tensor->clone();
  } else if (a.has("value_float")) {
    value = at::scalar_tensor(a.get_float("value_float", 0), at::kFloat);
  } else if (a.has("value_int")) {
    value = at::scalar_tensor(a.get_int("value_int", 0), at::kLong);
  } else if (a.has("value_floats")) {
    std::vector<double> floats = a.get_floats("value_floats");
    value = at::tensor(floats, at::kDouble).to(at::kFloat);
  } else if (a.has("value_ints")) {
    value = at::tensor(a.get_ints("value_ints"), at::kLong);
  } else {
    throw Error(ErrorKind::unsupported, "Constant without a numeric value (sparse or string constants)");
  }
  value = place_like_constant(value, context.device, context.fp16);
  return [value](std::span<const at::Tensor>, std::span<at::Tensor> out) { out[0] = value; };
}

Kernel make_dropout(const Node& node, const BuildContext&) {
  bool want_mask = node.outputs.size() > 1 && !node.outputs[1].empty();
  return [want_mask](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    if (has_input(in, 2) && scalar_value(in[2]) != 0) {
      double ratio = has_input(in, 1) ? scalar_value(in[1]) : 0.5;
      if (ratio != 0) throw Error(ErrorKind::unsupported, "Dropout in training mode (random masks) is not supported");
    }
    out[0] = in[0];
    if (want_mask) out[1] = at::ones(in[0].sizes(), in[0].options().dtype(at::kBool));
  };
}

// A stable sort keeps equal values in index order, which is ONNX's tie rule
// (at::topk does not promise it).
Kernel make_topk(const Node& node, const BuildContext&) {
  int64_t axis = node.attrs.get_int("axis", -1);
  bool largest = node.attrs.get_int("largest", 1) != 0;
  return [axis, largest](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const at::Tensor& x = in[0];
    std::vector<int64_t> k_values = to_int_vector(in[1]);
    require(k_values.size() == 1, "TopK: K must be a single value");
    int64_t a = normalize_axis(axis, x.dim());
    int64_t k = k_values[0];
    require(k >= 0 && k <= x.size(a),
            "TopK: K=" + std::to_string(k) + " exceeds the axis size " + std::to_string(x.size(a)));
    at::Tensor work = is_cpu_low_precision(x) ? x.to(at::kFloat) : x;
    auto [values, indices] = at::sort(work, /*stable=*/true, a, /*descending=*/largest);
    values = values.narrow(a, 0, k);
    out[0] = values.scalar_type() == x.scalar_type() ? values : values.to(x.scalar_type());
    if (out.size() > 1) out[1] = indices.narrow(a, 0, k);
  };
}

struct Box {
  float y_min, x_min, y_max, x_max;
  float area() const { return (y_max - y_min) * (x_max - x_min); }
};

Box read_box(const float* b, bool center_point) {
  if (center_point) {  // [x_center, y_center, width, height]
    return {b[1] - b[3] / 2, b[0] - b[2] / 2, b[1] + b[3] / 2, b[0] + b[2] / 2};
  }
  // [y1, x1, y2, x2] with the corners in either order.
  return {std::min(b[0], b[2]), std::min(b[1], b[3]), std::max(b[0], b[2]), std::max(b[1], b[3])};
}

// Like ONNX Runtime: boxes with no area never suppress or get suppressed.
bool overlaps_more_than(const Box& a, const Box& b, float threshold) {
  float area_a = a.area();
  float area_b = b.area();
  if (area_a <= 0 || area_b <= 0) return false;
  float ih = std::max(0.0f, std::min(a.y_max, b.y_max) - std::max(a.y_min, b.y_min));
  float iw = std::max(0.0f, std::min(a.x_max, b.x_max) - std::max(a.x_min, b.x_min));
  float intersection = ih * iw;
  float union_area = area_a + area_b - intersection;
  if (union_area <= 0) return false;
  return intersection / union_area > threshold;
}

// Greedy per-class NMS on the host: the selected boxes are few and the
// result's size is data-dependent, so the GPU would gain nothing here.
Kernel make_non_max_suppression(const Node& node, const BuildContext&) {
  bool center_point = node.attrs.get_int("center_point_box", 0) != 0;
  return [center_point](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    require(in.size() >= 2 && in[0].defined() && in[1].defined(), "NonMaxSuppression: expects boxes and scores");
    at::Tensor boxes = in[0].to(at::kCPU, at::kFloat).contiguous();
    at::Tensor scores = in[1].to(at::kCPU, at::kFloat).contiguous();
    require(boxes.dim() == 3 && boxes.size(2) == 4, "NonMaxSuppression: boxes must be [batch, boxes, 4]");
    require(scores.dim() == 3 && scores.size(0) == boxes.size(0) && scores.size(2) == boxes.size(1),
            "NonMaxSuppression: scores must be [batch, classes, boxes]");
    int64_t max_per_class = has_input(in, 2) ? to_int_vector(in[2]).at(0) : 0;
    auto iou_threshold = static_cast<float>(has_input(in, 3) ? scalar_value(in[3]) : 0.0);
    std::optional<float> score_threshold;
    if (has_input(in, 4)) score_threshold = static_cast<float>(scalar_value(in[4]));

    int64_t batches = boxes.size(0);
    int64_t count = boxes.size(1);
    int64_t classes = scores.size(1);
    const float* box_data = boxes.data_ptr<float>();
    const float* score_data = scores.data_ptr<float>();
    std::vector<int64_t> selected;
    std::vector<int64_t> order;
    std::vector<Box> kept;
    for (int64_t b = 0; b < batches && max_per_class > 0; ++b) {
      const float* batch_boxes = box_data + b * count * 4;
      for (int64_t c = 0; c < classes; ++c) {
        const float* s = score_data + (b * classes + c) * count;
        order.clear();
        for (int64_t i = 0; i < count; ++i)
          if (!score_threshold || s[i] > *score_threshold) order.push_back(i);
        std::stable_sort(order.begin(), order.end(), [s](int64_t i, int64_t j) { return s[i] > s[j]; });
        kept.clear();
        for (int64_t i : order) {
          if (static_cast<int64_t>(kept.size()) >= max_per_class) break;
          Box box = read_box(batch_boxes + i * 4, center_point);
          bool suppressed = std::any_of(kept.begin(), kept.end(),
                                        [&](const Box& k) { return overlaps_more_than(k, box, iou_threshold); });
          if (suppressed) continue;
          kept.push_back(box);
          selected.insert(selected.end(), {b, c, i});
        }
      }
    }
    auto rows = static_cast<int64_t>(selected.size() / 3);
    at::Tensor result = at::tensor(selected, at::kLong).reshape({rows, 3});
    out[0] = on_device(result, in[0].device());
  };
}

Kernel make_einsum(const Node& node, const BuildContext&) {
  std::string equation = node.attrs.get_string("equation", "");
  require(!equation.empty(), "Einsum needs an equation");
  return [equation](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    std::vector<at::Tensor> operands(in.begin(), in.end());
    align_operands(operands);
    bool low =
        std::any_of(operands.begin(), operands.end(), [](const at::Tensor& t) { return is_cpu_low_precision(t); });
    at::ScalarType original = operands.at(0).scalar_type();
    if (low)
      for (auto& t : operands) t = t.to(at::kFloat);
    at::Tensor result = at::einsum(equation, operands);
    out[0] = result.scalar_type() == original ? result : result.to(original);
  };
}

}  // namespace

void register_misc_ops(OpTable& table) {
  table.add("Cast", make_cast);
  table.add("CastLike", make_cast_like);
  table.add("Constant", make_constant);
  table.add("Dropout", make_dropout);
  table.add("TopK", make_topk);
  table.add("NonMaxSuppression", make_non_max_suppression);
  table.add("Einsum", make_einsum);
}

}  // namespace visage::rt
