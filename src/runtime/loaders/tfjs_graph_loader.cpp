// TF.js graph-model importer: TensorFlow NodeDefs (as JSON) to the runtime IR.
//
// Each TF op maps onto canonical ONNX-named operators (runtime/graph.hpp).
// Tensors keep TF's layout (NHWC): convolutions, pools, resizes and batch
// norms carry layout="NHWC", and elementwise broadcasting needs no change
// because the logical layout is the same. Fused converter ops (_FusedConv2D,
// FusedDepthwiseConv2dNative, _FusedMatMul) are split back into a Conv/MatMul
// followed by separate bias and activation nodes; the fusion pass folds those
// into the producer again, so there is one place that decides what fuses.
#include <ATen/ATen.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <set>

#include "runtime/loaders/graph_builder.hpp"
#include "runtime/loaders/loaders.hpp"
#include "runtime/loaders/tfjs_weights.hpp"
#include "visage/error.hpp"

namespace visage::rt {
namespace {

std::string base64_decode(const std::string& text) {
  static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    if (c == '=' || c == '\n' || c == '\r') continue;
    size_t v = alphabet.find(c);
    if (c == '-') v = 62;  // URL-safe variant
    if (c == '_') v = 63;
    if (v == std::string::npos) throw std::invalid_argument("invalid base64 text");
    buffer = (buffer << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  return out;
}

int64_t json_int(const TfjsJson& value) {
  if (value.is_string()) return std::stoll(value.get<std::string>());
  if (value.is_number()) return value.get<int64_t>();
  throw std::invalid_argument("expected an integer");
}

double json_float(const TfjsJson& value) {
  if (value.is_string()) {
    std::string s = value.get<std::string>();
    if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
    if (s == "Infinity") return std::numeric_limits<double>::infinity();
    if (s == "-Infinity") return -std::numeric_limits<double>::infinity();
    return std::stod(s);
  }
  return value.get<double>();
}

at::ScalarType tf_dtype(const std::string& name) {
  if (name == "DT_FLOAT") return at::kFloat;
  if (name == "DT_INT32") return at::kInt;
  if (name == "DT_INT64") return at::kLong;
  if (name == "DT_BOOL") return at::kBool;
  if (name == "DT_HALF") return at::kHalf;
  if (name == "DT_DOUBLE") return at::kDouble;
  if (name == "DT_UINT8") return at::kByte;
  if (name == "DT_INT8") return at::kChar;
  if (name == "DT_INT16") return at::kShort;
  throw std::invalid_argument("TF dtype " + name + " is not supported");
}

std::vector<int64_t> json_shape(const TfjsJson& shape, bool* known_rank) {
  if (known_rank) *known_rank = !shape.value("unknownRank", false);
  std::vector<int64_t> dims;
  if (shape.contains("dim"))
    for (const auto& dim : shape.at("dim")) dims.push_back(dim.contains("size") ? json_int(dim.at("size")) : 0);
  return dims;
}

// One TF NodeDef.
struct TfNode {
  std::string name;
  std::string op;
  std::vector<std::string> inputs;  // value names ("node" or "node:k"), control inputs dropped
  const TfjsJson* attr = nullptr;

  const TfjsJson* find(const std::string& key) const {
    if (!attr || !attr->contains(key)) return nullptr;
    return &attr->at(key);
  }
  bool has(const std::string& key) const { return find(key) != nullptr; }
  int64_t get_int(const std::string& key, int64_t fallback) const {
    const auto* a = find(key);
    return a && a->contains("i") ? json_int(a->at("i")) : fallback;
  }
  double get_float(const std::string& key, double fallback) const {
    const auto* a = find(key);
    return a && a->contains("f") ? json_float(a->at("f")) : fallback;
  }
  bool get_bool(const std::string& key, bool fallback) const {
    const auto* a = find(key);
    return a && a->contains("b") ? a->at("b").get<bool>() : fallback;
  }
  std::string get_string(const std::string& key, const std::string& fallback) const {
    const auto* a = find(key);
    return a && a->contains("s") ? base64_decode(a->at("s").get<std::string>()) : fallback;
  }
  std::vector<int64_t> get_ints(const std::string& key) const {
    std::vector<int64_t> values;
    const auto* a = find(key);
    if (a && a->contains("list") && a->at("list").contains("i"))
      for (const auto& v : a->at("list").at("i")) values.push_back(json_int(v));
    return values;
  }
  std::vector<std::string> get_strings(const std::string& key) const {
    std::vector<std::string> values;
    const auto* a = find(key);
    if (a && a->contains("list") && a->at("list").contains("s"))
      for (const auto& v : a->at("list").at("s")) values.push_back(base64_decode(v.get<std::string>()));
    return values;
  }
  std::optional<at::ScalarType> get_type(const std::string& key) const {
    const auto* a = find(key);
    if (!a || !a->contains("type")) return std::nullopt;
    return tf_dtype(a->at("type").get<std::string>());
  }
};

// The value a NodeDef input refers to: "node:0" is "node".
std::string value_name(const std::string& ref) {
  auto colon = ref.rfind(':');
  if (colon != std::string::npos && ref.substr(colon) == ":0") return ref.substr(0, colon);
  return ref;
}

// The node that produces a value ("node:2" -> "node").
std::string node_of(const std::string& value) {
  auto colon = value.rfind(':');
  return colon == std::string::npos ? value : value.substr(0, colon);
}

std::string output_name(const std::string& node, size_t index) {
  return index == 0 ? node : node + ":" + std::to_string(index);
}

// A Const's value written inline in the NodeDef (tensorContent or typed *Val lists).
at::Tensor inline_tensor(const TfjsJson& tensor) {
  at::ScalarType type = tf_dtype(tensor.value("dtype", std::string("DT_FLOAT")));
  std::vector<int64_t> shape =
      tensor.contains("tensorShape") ? json_shape(tensor.at("tensorShape"), nullptr) : std::vector<int64_t>{};
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  at::Tensor out = at::empty(shape, at::TensorOptions().dtype(type));
  if (tensor.contains("tensorContent")) {
    std::string bytes = base64_decode(tensor.at("tensorContent").get<std::string>());
    if (static_cast<int64_t>(bytes.size()) != numel * static_cast<int64_t>(out.element_size()))
      throw std::invalid_argument("inline tensor content does not match its shape");
    std::memcpy(out.data_ptr(), bytes.data(), bytes.size());
    return out;
  }
  std::vector<double> values;
  for (const char* key : {"floatVal", "intVal", "int64Val", "boolVal", "doubleVal", "halfVal"})
    if (tensor.contains(key))
      for (const auto& v : tensor.at(key))
        values.push_back(v.is_boolean() ? (v.get<bool>() ? 1.0 : 0.0) : json_float(v));
  at::Tensor flat = at::tensor(values, at::kDouble);
  if (values.empty()) flat = at::zeros({numel}, at::kDouble);
  // A proto may hold one value meaning "all elements are this".
  if (flat.numel() == 1 && numel != 1) flat = flat.expand({numel});
  if (flat.numel() != numel) throw std::invalid_argument("inline tensor values do not match its shape");
  return flat.reshape(shape).to(type).clone();
}

class GraphModelImporter {
 public:
  GraphModelImporter(const std::filesystem::path& path, const TfjsJson& json)
      : path_(path), file_(path.string()), json_(json), builder_(graph_) {}

  Graph run();

 private:
  using Handler = void (GraphModelImporter::*)(const TfNode&);

  [[noreturn]] void fail(const TfNode& n, const std::string& reason, ErrorKind kind = ErrorKind::model) const {
    throw Error(kind, file_ + ": node '" + n.name + "' (" + n.op + "): " + reason);
  }

  const std::string& input(const TfNode& n, size_t i) const {
    if (i >= n.inputs.size()) fail(n, "expects at least " + std::to_string(i + 1) + " input(s)");
    return n.inputs[i];
  }
  // The load-time value of a constant input; fails when it is computed at run time.
  const at::Tensor& constant_input(const TfNode& n, size_t i, const std::string& what) const {
    const at::Tensor* t = builder_.find_constant(input(n, i));
    if (!t) fail(n, what + " must be a constant", ErrorKind::unsupported);
    return *t;
  }
  std::vector<int64_t> constant_ints(const TfNode& n, size_t i, const std::string& what) const {
    const at::Tensor& t = constant_input(n, i, what);
    at::Tensor flat = t.to(at::kLong).reshape({-1}).contiguous();
    return std::vector<int64_t>(flat.data_ptr<int64_t>(), flat.data_ptr<int64_t>() + flat.numel());
  }
  // An int64 copy of an integer input: as a new initializer when constant, else a Cast.
  std::string int64_input(const TfNode& n, size_t i) {
    const std::string& value = input(n, i);
    if (const at::Tensor* t = builder_.find_constant(value))
      return t->scalar_type() == at::kLong ? value : builder_.constant(value + "/i64", t->to(at::kLong));
    Attributes attrs;
    attrs.set("to", int64_t{7});
    return builder_.add1("Cast", value + "/i64", {value}, attrs);
  }

  void emit(const std::string& op, const TfNode& n, std::vector<std::string> inputs, Attributes attrs = {},
            size_t outputs = 1) {
    std::vector<std::string> names;
    for (size_t k = 0; k < outputs; ++k) names.push_back(output_name(n.name, k));
    builder_.add(op, n.name, std::move(inputs), std::move(names), std::move(attrs));
  }
  void emit_to(const std::string& op, const std::string& node_name, std::vector<std::string> inputs,
               const std::string& output, Attributes attrs = {}) {
    builder_.add(op, node_name, std::move(inputs), {output}, std::move(attrs));
  }

  bool nhwc(const TfNode& n) const {
    std::string format = n.get_string("data_format", "NHWC");
    if (format != "NHWC" && format != "NCHW")
      fail(n, "data_format " + format + " is not supported", ErrorKind::unsupported);
    return format == "NHWC";
  }
  // The spatial pair of a 4-element NHWC/NCHW attribute list.
  std::vector<int64_t> spatial(const TfNode& n, const std::string& key, bool is_nhwc) const {
    std::vector<int64_t> v = n.get_ints(key);
    if (v.empty()) return {1, 1};
    if (v.size() != 4) fail(n, "attribute '" + key + "' must have 4 entries");
    return is_nhwc ? std::vector<int64_t>{v[1], v[2]} : std::vector<int64_t>{v[2], v[3]};
  }
  // Sets pads/auto_pad for a 2-D window op from TF's padding attributes.
  void set_padding(const TfNode& n, Attributes& attrs, const std::vector<int64_t>& kernel,
                   const std::vector<int64_t>& strides, const std::vector<int64_t>& dilations, bool is_nhwc) const {
    std::string padding = n.get_string("padding", "VALID");
    if (padding == "VALID") {
      attrs.set("pads", std::vector<int64_t>{0, 0, 0, 0});
    } else if (padding == "SAME") {
      if (strides[0] == 1 && strides[1] == 1) {
        // With unit strides SAME padding does not depend on the input size.
        std::vector<int64_t> begin(2), end(2);
        for (int d = 0; d < 2; ++d) {
          int64_t total = (kernel[static_cast<size_t>(d)] - 1) * dilations[static_cast<size_t>(d)];
          begin[static_cast<size_t>(d)] = total / 2;
          end[static_cast<size_t>(d)] = total - total / 2;
        }
        attrs.set("pads", std::vector<int64_t>{begin[0], begin[1], end[0], end[1]});
      } else {
        attrs.set("auto_pad", std::string("SAME_UPPER"));  // TF's SAME puts the odd pixel at the end
      }
    } else if (padding == "EXPLICIT") {
      std::vector<int64_t> p = n.get_ints("explicit_paddings");
      if (p.size() != 8) fail(n, "explicit_paddings must have 8 entries");
      size_t h = is_nhwc ? 2 : 4, w = is_nhwc ? 4 : 6;
      attrs.set("pads", std::vector<int64_t>{p[h], p[w], p[h + 1], p[w + 1]});
    } else {
      fail(n, "padding " + padding + " is not supported", ErrorKind::unsupported);
    }
  }

  // Activation `kind` applied to `x`, written to `output`. `args` holds the
  // fused op's extra inputs after the bias (PRelu's alpha).
  void emit_activation(const TfNode& n, const std::string& kind, const std::string& x, const std::string& output,
                       const std::string& alpha) {
    Attributes attrs;
    if (kind == "Relu" || kind == "Sigmoid" || kind == "Tanh" || kind == "Elu" || kind == "Selu") {
      emit_to(kind, n.name + "/" + kind, {x}, output);
    } else if (kind == "Relu6") {
      emit_to("Clip", n.name + "/Relu6", {x, builder_.scalar("visage/zero", 0.0), builder_.scalar("visage/six", 6.0)},
              output);
    } else if (kind == "LeakyRelu") {
      attrs.set("alpha", n.get_float("leakyrelu_alpha", 0.2));
      emit_to("LeakyRelu", n.name + "/LeakyRelu", {x}, output, attrs);
    } else if (kind == "Prelu") {
      if (alpha.empty()) fail(n, "fused Prelu lacks its alpha argument");
      emit_to("PRelu", n.name + "/Prelu", {x, alpha}, output);
    } else {
      fail(n, "fused activation '" + kind + "' is not supported", ErrorKind::unsupported);
    }
  }

  // The fused_ops tail of _FusedConv2D / FusedDepthwiseConv2dNative /
  // _FusedMatMul applied to `x` (the bare Conv/MatMul output). `bias_done`
  // when the producer already took the bias as an input.
  void emit_fused_tail(const TfNode& n, std::string x, size_t first_arg, bool bias_done) {
    std::vector<std::string> ops = n.get_strings("fused_ops");
    std::vector<std::string> args(n.inputs.begin() + static_cast<std::ptrdiff_t>(std::min(first_arg, n.inputs.size())),
                                  n.inputs.end());
    const std::string out = n.name;
    size_t next_arg = 0;
    for (size_t k = 0; k < ops.size(); ++k) {
      const std::string& op = ops[k];
      bool last = k + 1 == ops.size();
      std::string target = last ? out : builder_.fresh(n.name + "/" + op);
      if (op == "BiasAdd") {
        if (next_arg >= args.size()) fail(n, "fused BiasAdd lacks its bias");
        if (bias_done) {
          if (last)
            emit_to("Identity", n.name + "/out", {x}, target);
          else
            target = x;
        } else {
          emit_to("Add", n.name + "/BiasAdd", {x, args[next_arg]}, target);
        }
        ++next_arg;
      } else if (op == "FusedBatchNorm") {
        if (next_arg + 4 > args.size()) fail(n, "fused FusedBatchNorm needs 4 arguments");
        Attributes attrs;
        attrs.set("epsilon", n.get_float("epsilon", 1e-4));
        if (nhwc(n)) attrs.set("layout", std::string("NHWC"));
        emit_to("BatchNormalization", n.name + "/BatchNorm",
                {x, args[next_arg], args[next_arg + 1], args[next_arg + 2], args[next_arg + 3]}, target, attrs);
        next_arg += 4;
      } else if (op == "Add") {
        if (next_arg >= args.size()) fail(n, "fused Add lacks its operand");
        emit_to("Add", n.name + "/Add", {x, args[next_arg]}, target);
        ++next_arg;
      } else {
        std::string alpha;
        if (op == "Prelu") {
          if (next_arg >= args.size()) fail(n, "fused Prelu lacks its alpha");
          alpha = args[next_arg++];
        }
        emit_activation(n, op, x, target, alpha);
      }
      x = target;
    }
    if (ops.empty()) emit_to("Identity", n.name + "/out", {x}, out);
  }

  // Conv2D, DepthwiseConv2dNative and their fused forms.
  void conv(const TfNode& n, bool depthwise, bool fused) {
    bool is_nhwc = nhwc(n);
    const at::Tensor& filter = constant_input(n, 1, "the filter");
    if (filter.dim() != 4) fail(n, "the filter must be 4-D");
    at::Tensor weight;
    int64_t group = 1;
    if (depthwise) {
      // [H, W, C, M] -> [C*M, 1, H, W]: TF's output channel c*M + m is ONNX's grouped channel.
      group = filter.size(2);
      weight =
          filter.permute({2, 3, 0, 1}).reshape({filter.size(2) * filter.size(3), 1, filter.size(0), filter.size(1)});
    } else {
      weight = filter.permute({3, 2, 0, 1});  // HWIO -> OIHW
    }
    std::string weight_name = builder_.constant(input(n, 1) + "/oihw", weight.contiguous());

    Attributes attrs;
    std::vector<int64_t> strides = spatial(n, "strides", is_nhwc);
    std::vector<int64_t> dilations = spatial(n, "dilations", is_nhwc);
    attrs.set("strides", strides);
    attrs.set("dilations", dilations);
    attrs.set("kernel_shape", std::vector<int64_t>{filter.size(0), filter.size(1)});
    attrs.set("group", group);
    if (is_nhwc) attrs.set("layout", std::string("NHWC"));
    set_padding(n, attrs, {filter.size(0), filter.size(1)}, strides, dilations, is_nhwc);

    std::vector<std::string> inputs = {input(n, 0), weight_name};
    std::vector<std::string> ops = fused ? n.get_strings("fused_ops") : std::vector<std::string>{};
    bool bias_in_conv = !ops.empty() && ops[0] == "BiasAdd" && n.inputs.size() > 2;
    if (bias_in_conv) inputs.push_back(input(n, 2));
    if (!fused || (bias_in_conv && ops.size() == 1)) {
      emit("Conv", n, inputs, attrs);
      return;
    }
    std::string conv_out = builder_.fresh(n.name + "/conv");
    emit_to("Conv", n.name, inputs, conv_out, attrs);
    emit_fused_tail(n, conv_out, 2, bias_in_conv);
  }

  void matmul(const TfNode& n, bool fused) {
    bool transpose_a = n.get_bool("transpose_a", false) || n.get_bool("adj_x", false);
    bool transpose_b = n.get_bool("transpose_b", false) || n.get_bool("adj_y", false);
    bool batch = n.op.rfind("BatchMatMul", 0) == 0;
    std::optional<at::ScalarType> type = n.get_type("T");
    bool integer = type && !at::isFloatingType(*type);
    std::string a = input(n, 0), b = input(n, 1);
    // A transposed constant operand is transposed once, here.
    if (transpose_b) {
      if (const at::Tensor* t = builder_.find_constant(b)) {
        b = builder_.constant(b + "/T", t->transpose(-1, -2).contiguous());
        transpose_b = false;
      }
    }
    if (transpose_a) {
      if (const at::Tensor* t = builder_.find_constant(a)) {
        a = builder_.constant(a + "/T", t->transpose(-1, -2).contiguous());
        transpose_a = false;
      }
    }
    std::string out = fused ? builder_.fresh(n.name + "/matmul") : n.name;
    if (integer || ((transpose_a || transpose_b) && batch)) {
      // ONNX MatMul has no transpose flags, and its rank is unknown here;
      // tf.BatchMatMul transposes the last two axes and also covers integers.
      Attributes attrs;
      attrs.set("adj_x", int64_t{transpose_a});
      attrs.set("adj_y", int64_t{transpose_b});
      emit_to("tf.BatchMatMul", n.name, {a, b}, out, attrs);
    } else {
      Attributes perm;
      perm.set("perm", std::vector<int64_t>{1, 0});
      if (transpose_a) a = builder_.add1("Transpose", n.name + "/transpose_a", {a}, perm);
      if (transpose_b) b = builder_.add1("Transpose", n.name + "/transpose_b", {b}, perm);
      emit_to("MatMul", n.name, {a, b}, out);
    }
    if (fused) emit_fused_tail(n, out, 2, false);
  }

  void pool(const TfNode& n, const std::string& op) {
    bool is_nhwc = nhwc(n);
    Attributes attrs;
    std::vector<int64_t> kernel = spatial(n, "ksize", is_nhwc);
    std::vector<int64_t> strides = spatial(n, "strides", is_nhwc);
    attrs.set("kernel_shape", kernel);
    attrs.set("strides", strides);
    if (is_nhwc) attrs.set("layout", std::string("NHWC"));
    set_padding(n, attrs, kernel, strides, {1, 1}, is_nhwc);
    emit(op, n, {input(n, 0)}, attrs);
  }

  void reduce(const TfNode& n, const std::string& op) {
    Attributes attrs;
    attrs.set("keepdims", int64_t{n.get_bool("keep_dims", false)});
    attrs.set("noop_with_empty_axes", int64_t{1});  // TF reduces nothing over an empty axis list
    emit(op, n, {input(n, 0), int64_input(n, 1)}, attrs);
  }

  void binary(const TfNode& n, const std::string& op) { emit(op, n, {input(n, 0), input(n, 1)}); }
  void unary(const TfNode& n, const std::string& op) { emit(op, n, {input(n, 0)}); }

  void cast_output(const TfNode& n, const std::string& op, std::vector<std::string> inputs, Attributes attrs,
                   at::ScalarType wanted, at::ScalarType produced, size_t outputs = 1, size_t cast_index = 0) {
    if (wanted == produced) {
      emit(op, n, std::move(inputs), std::move(attrs), outputs);
      return;
    }
    std::vector<std::string> names;
    for (size_t k = 0; k < outputs; ++k)
      names.push_back(k == cast_index ? builder_.fresh(n.name + "/raw") : output_name(n.name, k));
    builder_.add(op, n.name, std::move(inputs), names, std::move(attrs));
    Attributes cast;
    cast.set("to", onnx_type_code(wanted));
    emit_to("Cast", n.name + "/cast", {names[cast_index]}, output_name(n.name, cast_index), cast);
  }

  void import(const TfNode& n);

  std::filesystem::path path_;
  std::string file_;
  const TfjsJson& json_;
  Graph graph_;
  GraphBuilder builder_;
  std::map<std::string, at::Tensor> weights_;
};

void GraphModelImporter::import(const TfNode& n) {
  const std::string& op = n.op;
  static const std::map<std::string, std::string> unary_ops = {
      {"Relu", "Relu"},
      {"Sigmoid", "Sigmoid"},
      {"Tanh", "Tanh"},
      {"Elu", "Elu"},
      {"Selu", "Selu"},
      {"Exp", "Exp"},
      {"Log", "Log"},
      {"Sqrt", "Sqrt"},
      {"Neg", "Neg"},
      {"Abs", "Abs"},
      {"Floor", "Floor"},
      {"Ceil", "Ceil"},
      {"Round", "Round"},
      {"Sin", "Sin"},
      {"Cos", "Cos"},
      {"Tan", "Tan"},
      {"Asin", "Asin"},
      {"Acos", "Acos"},
      {"Atan", "Atan"},
      {"Sinh", "Sinh"},
      {"Cosh", "Cosh"},
      {"Reciprocal", "Reciprocal"},
      {"Inv", "Reciprocal"},
      {"Sign", "Sign"},
      {"Softplus", "Softplus"},
      {"Softsign", "Softsign"},
      {"Erf", "Erf"},
      {"IsNan", "IsNaN"},
      {"LogicalNot", "Not"},
      {"Identity", "Identity"},
      {"StopGradient", "Identity"},
      {"Snapshot", "Identity"},
      {"PreventGradient", "Identity"},
      {"EnsureShape", "Identity"},
  };
  static const std::map<std::string, std::string> binary_ops = {
      {"Add", "Add"},
      {"AddV2", "Add"},
      {"Sub", "Sub"},
      {"Mul", "Mul"},
      {"RealDiv", "Div"},
      {"Div", "Div"},
      {"Maximum", "Max"},
      {"Minimum", "Min"},
      {"Pow", "Pow"},
      {"Less", "Less"},
      {"Greater", "Greater"},
      {"Equal", "Equal"},
      {"LessEqual", "LessOrEqual"},
      {"GreaterEqual", "GreaterOrEqual"},
      {"LogicalAnd", "And"},
      {"LogicalOr", "Or"},
      {"Atan2", "tf.Atan2"},
      {"FloorMod", "tf.FloorMod"},
      {"FloorDiv", "tf.FloorDiv"},
      {"Prelu", "PRelu"},
      {"SelectV2", "Where"},
      {"DivNoNan", "tf.DivNoNan"},
  };
  static const std::map<std::string, std::string> reduce_ops = {
      {"Mean", "ReduceMean"}, {"Sum", "ReduceSum"}, {"Max", "ReduceMax"}, {"Min", "ReduceMin"}, {"Prod", "ReduceProd"},
  };

  if (op == "Placeholder" || op == "Const" || op == "NoOp") return;  // handled before
  if (auto it = unary_ops.find(op); it != unary_ops.end()) {
    // An Identity of a constant is the constant: later ops may need its value at load time.
    if (it->second == "Identity" && builder_.find_constant(input(n, 0))) {
      graph_.initializers[n.name] = *builder_.find_constant(input(n, 0));
      return;
    }
    unary(n, it->second);
    return;
  }
  if (auto it = binary_ops.find(op); it != binary_ops.end()) {
    if (op == "SelectV2") {
      emit("Where", n, {input(n, 0), input(n, 1), input(n, 2)});
      return;
    }
    binary(n, it->second);
    return;
  }
  if (auto it = reduce_ops.find(op); it != reduce_ops.end()) return reduce(n, it->second);

  if (op == "BiasAdd") {
    std::string bias = input(n, 1);
    if (!nhwc(n)) {
      // NCHW: the bias runs along axis 1.
      const at::Tensor& b = constant_input(n, 1, "an NCHW bias");
      bias = builder_.constant(bias + "/nchw", b.reshape({-1, 1, 1}));
    }
    return emit("Add", n, {input(n, 0), bias});
  }
  if (op == "Relu6") {
    return emit("Clip", n, {input(n, 0), builder_.scalar("visage/zero", 0.0), builder_.scalar("visage/six", 6.0)});
  }
  if (op == "LeakyRelu") {
    Attributes attrs;
    attrs.set("alpha", n.get_float("alpha", 0.2));
    return emit("LeakyRelu", n, {input(n, 0)}, attrs);
  }
  if (op == "Rsqrt") {
    std::string root = builder_.add1("Sqrt", n.name + "/sqrt", {input(n, 0)});
    return emit("Reciprocal", n, {root});
  }
  if (op == "Square") return emit("Mul", n, {input(n, 0), input(n, 0)});
  if (op == "SquaredDifference") {
    std::string diff = builder_.add1("Sub", n.name + "/diff", {input(n, 0), input(n, 1)});
    return emit("Mul", n, {diff, diff});
  }
  if (op == "NotEqual") {
    std::string eq = builder_.add1("Equal", n.name + "/equal", {input(n, 0), input(n, 1)});
    return emit("Not", n, {eq});
  }
  if (op == "Select") {
    // Select broadcasts like SelectV2 when the shapes agree or the condition is scalar.
    return emit("Where", n, {input(n, 0), input(n, 1), input(n, 2)});
  }
  if (op == "ClipByValue") return emit("Clip", n, {input(n, 0), input(n, 1), input(n, 2)});
  if (op == "AddN") {
    if (n.inputs.size() == 1) return emit("Identity", n, {input(n, 0)});
    return emit("Sum", n, n.inputs);
  }
  if (op == "Softmax" || op == "LogSoftmax") {
    Attributes attrs;
    attrs.set("axis", int64_t{-1});
    return emit(op, n, {input(n, 0)}, attrs);
  }

  if (op == "Conv2D") return conv(n, false, false);
  if (op == "_FusedConv2D") return conv(n, false, true);
  if (op == "DepthwiseConv2dNative") return conv(n, true, false);
  if (op == "FusedDepthwiseConv2dNative") return conv(n, true, true);
  if (op == "MatMul" || op == "BatchMatMul" || op == "BatchMatMulV2" || op == "BatchMatMulV3") return matmul(n, false);
  if (op == "_FusedMatMul") return matmul(n, true);
  if (op == "MaxPool") return pool(n, "MaxPool");
  if (op == "AvgPool") return pool(n, "AveragePool");

  if (op == "Conv2DBackpropInput") {
    bool is_nhwc = nhwc(n);
    std::vector<int64_t> sizes = constant_ints(n, 0, "input_sizes");
    const at::Tensor& filter = constant_input(n, 1, "the filter");
    if (sizes.size() != 4 || filter.dim() != 4) fail(n, "expects 4-D input_sizes and filter");
    // Filter [H, W, out, in] -> ConvTranspose weight [in, out, H, W].
    std::string weight = builder_.constant(input(n, 1) + "/iohw", filter.permute({3, 2, 0, 1}).contiguous());
    std::vector<int64_t> strides = spatial(n, "strides", is_nhwc);
    std::vector<int64_t> dilations = spatial(n, "dilations", is_nhwc);
    std::vector<int64_t> out_size =
        is_nhwc ? std::vector<int64_t>{sizes[1], sizes[2]} : std::vector<int64_t>{sizes[2], sizes[3]};
    std::vector<int64_t> kernel = {filter.size(0), filter.size(1)};
    std::string padding = n.get_string("padding", "VALID");
    std::vector<int64_t> pads(4, 0), output_padding(2, 0);
    for (size_t d = 0; d < 2; ++d) {
      // The forward convolution maps out_size to `in`; its padding is what the
      // transposed one crops, and any remainder goes to output_padding.
      int64_t k = (kernel[d] - 1) * dilations[d] + 1;
      int64_t in = 0, total = 0, begin = 0;
      if (padding == "SAME") {
        in = (out_size[d] + strides[d] - 1) / strides[d];
        total = std::max<int64_t>((in - 1) * strides[d] + k - out_size[d], 0);
        begin = total / 2;
      } else if (padding == "VALID") {
        in = (out_size[d] - k + strides[d]) / strides[d];
      } else {
        fail(n, "padding " + padding + " is not supported", ErrorKind::unsupported);
      }
      pads[d] = begin;
      pads[d + 2] = total - begin;
      output_padding[d] = out_size[d] - ((in - 1) * strides[d] + k - total);
    }
    Attributes attrs;
    attrs.set("strides", strides);
    attrs.set("dilations", dilations);
    attrs.set("kernel_shape", kernel);
    attrs.set("pads", pads);
    attrs.set("output_padding", output_padding);
    if (is_nhwc) attrs.set("layout", std::string("NHWC"));
    return emit("ConvTranspose", n, {input(n, 2), weight}, attrs);
  }

  if (op == "FusedBatchNorm" || op == "FusedBatchNormV2" || op == "FusedBatchNormV3") {
    if (n.get_bool("is_training", false)) fail(n, "training-mode batch norm is not supported", ErrorKind::unsupported);
    Attributes attrs;
    attrs.set("epsilon", n.get_float("epsilon", 1e-4));
    if (nhwc(n)) attrs.set("layout", std::string("NHWC"));
    return emit("BatchNormalization", n, {input(n, 0), input(n, 1), input(n, 2), input(n, 3), input(n, 4)}, attrs);
  }

  if (op == "Pad" || op == "PadV2" || op == "MirrorPad") {
    const at::Tensor& paddings = constant_input(n, 1, "paddings");
    if (paddings.dim() != 2 || paddings.size(1) != 2) fail(n, "paddings must be [rank, 2]");
    at::Tensor p = paddings.to(at::kLong);
    std::vector<int64_t> pads;
    for (int64_t d = 0; d < p.size(0); ++d) pads.push_back(p[d][0].item<int64_t>());
    for (int64_t d = 0; d < p.size(0); ++d) pads.push_back(p[d][1].item<int64_t>());
    Attributes attrs;
    std::vector<std::string> inputs = {input(n, 0), builder_.ints(n.name + "/pads", pads)};
    if (op == "PadV2") inputs.push_back(input(n, 2));
    if (op == "MirrorPad") {
      std::string mode = n.get_string("mode", "REFLECT");
      if (mode != "REFLECT") fail(n, "MirrorPad mode " + mode + " is not supported", ErrorKind::unsupported);
      attrs.set("mode", std::string("reflect"));
    }
    return emit("Pad", n, inputs, attrs);
  }

  if (op == "Reshape") {
    Attributes attrs;
    attrs.set("allowzero", int64_t{1});  // TF's 0 is a zero-size dimension, not "copy"
    return emit("Reshape", n, {input(n, 0), int64_input(n, 1)}, attrs);
  }
  if (op == "Squeeze") {
    std::vector<int64_t> axes = n.get_ints("squeeze_dims");
    if (axes.empty()) axes = n.get_ints("axis");
    if (axes.empty()) return emit("Squeeze", n, {input(n, 0)});
    return emit("Squeeze", n, {input(n, 0), builder_.ints(n.name + "/axes", axes)});
  }
  if (op == "ExpandDims") {
    std::vector<int64_t> axis = constant_ints(n, 1, "the axis");
    return emit("Unsqueeze", n, {input(n, 0), builder_.ints(n.name + "/axes", axis)});
  }
  if (op == "ConcatV2" || op == "Concat") {
    bool v2 = op == "ConcatV2";
    size_t axis_index = v2 ? n.inputs.size() - 1 : 0;
    std::vector<int64_t> axis = constant_ints(n, axis_index, "the axis");
    if (axis.size() != 1) fail(n, "the axis must be a scalar");
    std::vector<std::string> values(n.inputs.begin() + (v2 ? 0 : 1), n.inputs.end() - (v2 ? 1 : 0));
    Attributes attrs;
    attrs.set("axis", axis[0]);
    if (values.size() == 1) return emit("Identity", n, values);
    return emit("Concat", n, values, attrs);
  }
  if (op == "Pack") {
    int64_t axis = n.get_int("axis", 0);
    std::string axes = builder_.ints(n.name + "/axes", {axis});
    std::vector<std::string> parts;
    for (const auto& value : n.inputs) parts.push_back(builder_.add1("Unsqueeze", n.name + "/expand", {value, axes}));
    Attributes attrs;
    attrs.set("axis", axis);
    if (parts.size() == 1) return emit("Identity", n, parts);
    return emit("Concat", n, parts, attrs);
  }
  if (op == "Unpack") {
    int64_t axis = n.get_int("axis", 0);
    int64_t num = n.get_int("num", 0);
    if (num <= 0) fail(n, "attribute 'num' must be positive");
    std::vector<std::string> parts;
    for (int64_t k = 0; k < num; ++k) parts.push_back(builder_.fresh(n.name + "/part"));
    Attributes attrs;
    attrs.set("axis", axis);
    builder_.add("Split", n.name + "/split",
                 {input(n, 0), builder_.ints(n.name + "/ones", std::vector<int64_t>(static_cast<size_t>(num), 1))},
                 parts, attrs);
    std::string axes = builder_.ints(n.name + "/axes", {axis});
    for (int64_t k = 0; k < num; ++k)
      emit_to("Squeeze", n.name + "/squeeze", {parts[static_cast<size_t>(k)], axes},
              output_name(n.name, static_cast<size_t>(k)));
    return;
  }
  if (op == "Split") {
    std::vector<int64_t> axis = constant_ints(n, 0, "the axis");
    int64_t num = n.get_int("num_split", 1);
    Attributes attrs;
    attrs.set("axis", axis.at(0));
    attrs.set("num_outputs", num);
    return emit("Split", n, {input(n, 1)}, attrs, static_cast<size_t>(num));
  }
  if (op == "SplitV") {
    std::vector<int64_t> sizes = constant_ints(n, 1, "size_splits");
    std::vector<int64_t> axis = constant_ints(n, 2, "the axis");
    if (std::count(sizes.begin(), sizes.end(), -1) > 0)
      fail(n, "an inferred (-1) split size is not supported", ErrorKind::unsupported);
    Attributes attrs;
    attrs.set("axis", axis.at(0));
    return emit("Split", n, {input(n, 0), builder_.ints(n.name + "/split", sizes)}, attrs, sizes.size());
  }
  if (op == "Transpose") {
    Attributes attrs;
    attrs.set("perm", constant_ints(n, 1, "perm"));
    return emit("Transpose", n, {input(n, 0)}, attrs);
  }
  if (op == "IdentityN") {
    for (size_t k = 0; k < n.inputs.size(); ++k)
      emit_to("Identity", n.name + "/identity", {n.inputs[k]}, output_name(n.name, k));
    return;
  }
  if (op == "Cast") {
    std::optional<at::ScalarType> to = n.get_type("DstT");
    if (!to) fail(n, "lacks DstT");
    Attributes attrs;
    attrs.set("to", onnx_type_code(*to));
    return emit("Cast", n, {input(n, 0)}, attrs);
  }
  if (op == "Fill") return emit("Expand", n, {input(n, 1), int64_input(n, 0)});
  if (op == "BroadcastTo") return emit("Expand", n, {input(n, 0), int64_input(n, 1)});
  if (op == "ZerosLike" || op == "OnesLike") {
    at::ScalarType type = n.get_type("T").value_or(at::kFloat);
    std::string shape = builder_.add1("Shape", n.name + "/shape", {input(n, 0)});
    Attributes attrs;
    attrs.set("value", at::full({1}, op == "OnesLike" ? 1 : 0, at::TensorOptions().dtype(type)));
    return emit("ConstantOfShape", n, {shape}, attrs);
  }
  if (op == "Shape" || op == "Size") {
    at::ScalarType type = n.get_type("out_type").value_or(at::kInt);
    return cast_output(n, op, {input(n, 0)}, {}, type, at::kLong);
  }
  if (op == "StridedSlice") {
    Attributes attrs;
    for (const char* mask : {"begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask"})
      attrs.set(mask, n.get_int(mask, 0));
    return emit("tf.StridedSlice", n, {input(n, 0), input(n, 1), input(n, 2), input(n, 3)}, attrs);
  }
  if (op == "Slice") {
    const at::Tensor* begin = builder_.find_constant(input(n, 1));
    const at::Tensor* size = builder_.find_constant(input(n, 2));
    if (!begin || !size) return emit("tf.Slice", n, {input(n, 0), input(n, 1), input(n, 2)});
    std::vector<int64_t> starts = constant_ints(n, 1, "begin"), sizes = constant_ints(n, 2, "size");
    if (starts.size() != sizes.size()) fail(n, "begin and size differ in length");
    std::vector<int64_t> ends, axes;
    for (size_t d = 0; d < starts.size(); ++d) {
      ends.push_back(sizes[d] < 0 ? std::numeric_limits<int64_t>::max() : starts[d] + sizes[d]);
      axes.push_back(static_cast<int64_t>(d));
    }
    return emit("Slice", n,
                {input(n, 0), builder_.ints(n.name + "/starts", starts), builder_.ints(n.name + "/ends", ends),
                 builder_.ints(n.name + "/axes", axes)});
  }
  if (op == "GatherV2" || op == "Gather") {
    if (n.get_int("batch_dims", 0) != 0) fail(n, "batch_dims other than 0 is not supported", ErrorKind::unsupported);
    int64_t axis = 0;
    if (op == "GatherV2") axis = constant_ints(n, 2, "the axis").at(0);
    Attributes attrs;
    attrs.set("axis", axis);
    return emit("Gather", n, {input(n, 0), input(n, 1)}, attrs);
  }
  if (op == "ResizeBilinear" || op == "ResizeNearestNeighbor") {
    bool align = n.get_bool("align_corners", false);
    bool half = n.get_bool("half_pixel_centers", false);
    bool nearest = op == "ResizeNearestNeighbor";
    Attributes attrs;
    attrs.set("mode", std::string(nearest ? "nearest" : "linear"));
    std::string transform = align  ? "align_corners"
                            : half ? (nearest ? "tf_half_pixel_for_nn" : "half_pixel")
                                   : "asymmetric";
    attrs.set("coordinate_transformation_mode", transform);
    // tfjs rounds with Math.round for align_corners, floors otherwise.
    if (nearest) attrs.set("nearest_mode", std::string(align ? "round_prefer_ceil" : "floor"));
    attrs.set("layout", std::string("NHWC"));  // so a 2-entry sizes input is [height, width]
    return emit("Resize", n, {input(n, 0), "", "", int64_input(n, 1)}, attrs);
  }
  if (op == "DepthToSpace" || op == "SpaceToDepth") {
    Attributes attrs;
    attrs.set("blocksize", n.get_int("block_size", 2));
    if (op == "DepthToSpace") attrs.set("mode", std::string("DCR"));
    if (nhwc(n)) attrs.set("layout", std::string("NHWC"));
    return emit(op, n, {input(n, 0)}, attrs);
  }
  if (op == "ArgMax" || op == "ArgMin") {
    Attributes attrs;
    attrs.set("axis", constant_ints(n, 1, "the dimension").at(0));
    attrs.set("keepdims", int64_t{0});
    return cast_output(n, op, {input(n, 0)}, attrs, n.get_type("output_type").value_or(at::kLong), at::kLong);
  }
  if (op == "TopKV2") {
    Attributes attrs;
    attrs.set("axis", int64_t{-1});
    attrs.set("largest", int64_t{1});
    attrs.set("sorted", int64_t{1});
    std::string k = builder_.ints(n.name + "/k", {constant_ints(n, 1, "k").at(0)});
    return cast_output(n, "TopK", {input(n, 0), k}, attrs, at::kInt, at::kLong, 2, 1);
  }
  if (op == "Einsum") {
    Attributes attrs;
    attrs.set("equation", n.get_string("equation", ""));
    return emit("Einsum", n, n.inputs, attrs);
  }
  if (op == "Range") return emit("Range", n, {input(n, 0), input(n, 1), input(n, 2)});
  if (op == "Tile") return emit("Tile", n, {input(n, 0), int64_input(n, 1)});
  if (op == "Where") {
    std::string coords = builder_.add1("NonZero", n.name + "/nonzero", {input(n, 0)});
    Attributes attrs;
    attrs.set("perm", std::vector<int64_t>{1, 0});
    return emit("Transpose", n, {coords}, attrs);
  }
  if (op == "Cumsum") {
    Attributes attrs;
    attrs.set("exclusive", int64_t{n.get_bool("exclusive", false)});
    attrs.set("reverse", int64_t{n.get_bool("reverse", false)});
    return emit("CumSum", n, {input(n, 0), input(n, 1)}, attrs);
  }
  fail(n, "TF operator '" + op + "' is not supported by the TF.js loader", ErrorKind::unsupported);
}

Graph GraphModelImporter::run() {
  graph_.source = file_;
  graph_.format = "tfjs-graph";
  const TfjsJson* topology = json_.contains("modelTopology") ? &json_.at("modelTopology") : nullptr;
  if (!topology || !topology->is_object() || !topology->contains("node") || !topology->at("node").is_array())
    throw Error(ErrorKind::model, file_ + ": model.json has no modelTopology.node list (not a TF.js graph-model)");
  weights_ = read_tfjs_weights(json_, path_);

  // Parse NodeDefs.
  std::vector<TfNode> nodes;
  std::map<std::string, size_t> index_of;
  for (const auto& def : topology->at("node")) {
    TfNode n;
    try {
      n.name = def.at("name").get<std::string>();
      n.op = def.at("op").get<std::string>();
      if (def.contains("input"))
        for (const auto& ref : def.at("input")) {
          std::string r = ref.get<std::string>();
          if (!r.empty() && r[0] == '^') continue;  // control dependency: no data flows
          n.inputs.push_back(value_name(r));
        }
    } catch (const nlohmann::json::exception& e) {
      throw Error(ErrorKind::model, file_ + ": malformed node in modelTopology: " + e.what());
    }
    if (def.contains("attr")) n.attr = &def.at("attr");
    if (index_of.count(n.name)) throw Error(ErrorKind::model, file_ + ": duplicate node name '" + n.name + "'");
    index_of[n.name] = nodes.size();
    builder_.reserve(n.name);
    nodes.push_back(std::move(n));
  }

  // Signature (in the topology's sibling "signature" or userDefinedMetadata).
  const TfjsJson* signature = nullptr;
  if (json_.contains("signature")) signature = &json_.at("signature");
  if (json_.contains("userDefinedMetadata") && json_.at("userDefinedMetadata").contains("signature"))
    signature = &json_.at("userDefinedMetadata").at("signature");

  try {
    // Constants first: later nodes read them as load-time parameters.
    for (const auto& n : nodes) {
      if (n.op != "Const") continue;
      auto w = weights_.find(n.name);
      at::Tensor value;
      const TfjsJson* tensor =
          n.find("value") && n.find("value")->contains("tensor") ? &n.find("value")->at("tensor") : nullptr;
      if (w != weights_.end()) {
        value = w->second;
        if (tensor && tensor->contains("dtype")) {
          at::ScalarType declared = tf_dtype(tensor->at("dtype").get<std::string>());
          if (declared != value.scalar_type()) value = value.to(declared);
        }
      } else if (tensor) {
        value = inline_tensor(*tensor);
      } else {
        throw Error(ErrorKind::model, file_ + ": constant '" + n.name + "' has no value in the weights manifest");
      }
      graph_.initializers[n.name] = value;
    }

    // Inputs: Placeholders, in signature order when there is one.
    std::vector<std::string> input_order;
    if (signature && signature->contains("inputs"))
      for (const auto& [key, entry] : signature->at("inputs").items()) {
        std::string name = value_name(entry.value("name", key));
        if (index_of.count(name) && nodes[index_of[name]].op == "Placeholder") input_order.push_back(name);
      }
    for (const auto& n : nodes)
      if (n.op == "Placeholder" && std::find(input_order.begin(), input_order.end(), n.name) == input_order.end())
        input_order.push_back(n.name);
    for (const auto& name : input_order) {
      const TfNode& n = nodes[index_of[name]];
      ValueInfo info;
      info.name = n.name;
      info.dtype = n.get_type("dtype").value_or(at::kFloat);
      bool known_rank = false;
      if (const auto* shape = n.find("shape"); shape && shape->contains("shape")) {
        info.shape = json_shape(shape->at("shape"), &known_rank);
      }
      info.has_shape = known_rank;
      if (!known_rank) info.shape.clear();
      graph_.inputs.push_back(info);
    }
    for (const auto& n : nodes)
      if (n.op == "PlaceholderWithDefault")
        throw Error(ErrorKind::unsupported,
                    file_ + ": node '" + n.name + "' (PlaceholderWithDefault) is not supported");

    // The rest in dependency order, so constant inputs are known when read.
    std::vector<int> pending(nodes.size(), 0);
    std::vector<std::vector<size_t>> readers(nodes.size());
    for (size_t i = 0; i < nodes.size(); ++i) {
      std::set<size_t> producers;
      for (const auto& ref : nodes[i].inputs) {
        auto it = index_of.find(node_of(ref));
        if (it == index_of.end())
          throw Error(ErrorKind::model,
                      file_ + ": node '" + nodes[i].name + "' reads '" + ref + "', which no node produces");
        producers.insert(it->second);
      }
      pending[i] = static_cast<int>(producers.size());
      for (size_t p : producers) readers[p].push_back(i);
    }
    std::deque<size_t> ready;
    for (size_t i = 0; i < nodes.size(); ++i)
      if (pending[i] == 0) ready.push_back(i);
    size_t done = 0;
    while (!ready.empty()) {
      size_t i = ready.front();
      ready.pop_front();
      ++done;
      try {
        import(nodes[i]);
      } catch (const Error&) {
        throw;
      } catch (const std::exception& e) {
        throw Error(ErrorKind::model, file_ + ": node '" + nodes[i].name + "' (" + nodes[i].op + "): " + e.what());
      }
      for (size_t r : readers[i])
        if (--pending[r] == 0) ready.push_back(r);
    }
    if (done != nodes.size()) throw Error(ErrorKind::model, file_ + ": the graph has a cycle");

    // Outputs: the signature's, else every node that nothing reads.
    if (signature && signature->contains("outputs") && !signature->at("outputs").empty()) {
      for (const auto& [key, entry] : signature->at("outputs").items()) {
        ValueInfo info;
        info.name = value_name(entry.value("name", key));
        info.has_shape = false;
        if (entry.contains("dtype")) info.dtype = tf_dtype(entry.at("dtype").get<std::string>());
        if (entry.contains("tensorShape")) {
          bool known_rank = false;
          info.shape = json_shape(entry.at("tensorShape"), &known_rank);
          info.has_shape = known_rank;
        }
        graph_.outputs.push_back(info);
      }
    } else {
      std::set<std::string> read;
      for (const auto& n : nodes)
        for (const auto& ref : n.inputs) read.insert(node_of(ref));
      for (const auto& n : nodes)
        if (!read.count(n.name) && n.op != "Const" && n.op != "NoOp" && n.op != "Placeholder") {
          ValueInfo info;
          info.name = n.name;
          info.has_shape = false;
          graph_.outputs.push_back(info);
        }
    }
    for (const auto& output : graph_.outputs) {
      if (output.name.empty()) throw Error(ErrorKind::model, file_ + ": a signature output has no tensor name");
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(ErrorKind::model, file_ + ": " + e.what());
  }
  // An output that is a constant needs a node producing it.
  for (auto& output : graph_.outputs) {
    if (graph_.is_initializer(output.name)) {
      std::string value = output.name;
      output.name = builder_.fresh(value + "/out");
      builder_.add("Identity", output.name, {value}, {output.name});
    }
  }
  return std::move(graph_);
}

}  // namespace

Graph load_tfjs_graph(const std::filesystem::path& path) {
  TfjsJson json = read_tfjs_json(path);
  GraphModelImporter importer(path, json);
  return importer.run();
}

}  // namespace visage::rt
