// TF.js layers-model importer: a Keras model_config (Functional or Sequential)
// with its weights, to the runtime IR.
//
// Keras channels_last tensors are NHWC, so convolutions, pools and resizes
// carry layout="NHWC" and everything else works on the tensors as they are.
// Layer activations become separate nodes that the fusion pass folds into
// the preceding Conv/MatMul.
#include <ATen/ATen.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "runtime/loaders/graph_builder.hpp"
#include "runtime/loaders/loaders.hpp"
#include "runtime/loaders/tfjs_weights.hpp"
#include "visage/error.hpp"

namespace visage::rt {
namespace {

// A value in the graph being built, with its rank when known (-1 otherwise).
struct Value {
  std::string name;
  int64_t rank = -1;
};

// One call of a layer: which values it reads.
struct InboundRef {
  std::string layer;
  int64_t node_index = 0;
  int64_t tensor_index = 0;
};

std::vector<int64_t> pair_of(const TfjsJson& value, const std::string& what) {
  if (value.is_number_integer()) return {value.get<int64_t>(), value.get<int64_t>()};
  auto v = value.get<std::vector<int64_t>>();
  if (v.size() == 1) return {v[0], v[0]};
  if (v.size() != 2) throw std::invalid_argument(what + " must have 2 entries");
  return v;
}

class LayersModelImporter {
 public:
  LayersModelImporter(const std::filesystem::path& path, const TfjsJson& json)
      : path_(path), file_(path.string()), json_(json), builder_(graph_) {}

  Graph run();

 private:
  struct Layer {
    std::string class_name;
    std::string name;
    const TfjsJson* config = nullptr;
    std::vector<std::vector<InboundRef>> calls;  // one list of inputs per call
  };

  [[noreturn]] void fail(const Layer& layer, const std::string& reason, ErrorKind kind = ErrorKind::model) const {
    throw Error(kind, file_ + ": layer '" + layer.name + "' (" + layer.class_name + "): " + reason);
  }

  const at::Tensor& weight(const Layer& layer, const std::string& suffix) const {
    const at::Tensor* found = find_weight(layer, suffix);
    if (!found) fail(layer, "weight '" + layer.name + "/" + suffix + "' is missing from the weights manifest");
    return *found;
  }
  const at::Tensor* find_weight(const Layer& layer, const std::string& suffix) const {
    const std::string key = layer.name + "/" + suffix;
    for (const std::string& candidate : {key, key + ":0"}) {
      auto it = weights_.find(candidate);
      if (it != weights_.end()) return &it->second;
    }
    // Converters may prefix the model's name: "model/conv/kernel".
    for (const auto& [name, value] : weights_) {
      for (const std::string& tail : {"/" + key, "/" + key + ":0"})
        if (name.size() > tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0) return &value;
    }
    return nullptr;
  }

  std::string weight_constant(const Layer& layer, const std::string& suffix, const at::Tensor& value) {
    return builder_.constant(layer.name + "/" + suffix, value.contiguous());
  }

  // Keras activation by name applied to x.
  Value activation(const Layer& layer, const std::string& name, const Value& x) {
    auto node = [&](const std::string& op, std::vector<std::string> inputs, Attributes attrs = {}) {
      return Value{builder_.add1(op, layer.name + "/" + name, std::move(inputs), std::move(attrs)), x.rank};
    };
    if (name == "linear" || name.empty()) return x;
    if (name == "relu") return node("Relu", {x.name});
    if (name == "relu6")
      return node("Clip", {x.name, builder_.scalar("visage/zero", 0), builder_.scalar("visage/six", 6)});
    if (name == "sigmoid") return node("Sigmoid", {x.name});
    if (name == "tanh") return node("Tanh", {x.name});
    if (name == "elu") return node("Elu", {x.name});
    if (name == "selu") return node("Selu", {x.name});
    if (name == "softplus") return node("Softplus", {x.name});
    if (name == "softsign") return node("Softsign", {x.name});
    if (name == "exponential") return node("Exp", {x.name});
    if (name == "hard_sigmoid") {
      Attributes attrs;
      attrs.set("alpha", 0.2);
      attrs.set("beta", 0.5);
      return node("HardSigmoid", {x.name}, attrs);
    }
    if (name == "softmax") {
      Attributes attrs;
      attrs.set("axis", int64_t{-1});
      return node("Softmax", {x.name}, attrs);
    }
    if (name == "swish" || name == "silu") {
      std::string gate = builder_.add1("Sigmoid", layer.name + "/swish_gate", {x.name});
      return node("Mul", {x.name, gate});
    }
    if (name == "mish") {
      std::string soft = builder_.add1("Softplus", layer.name + "/mish_softplus", {x.name});
      std::string gate = builder_.add1("Tanh", layer.name + "/mish_tanh", {soft});
      return node("Mul", {x.name, gate});
    }
    fail(layer, "activation '" + name + "' is not supported", ErrorKind::unsupported);
  }

  Value layer_activation(const Layer& layer, const Value& x) {
    const TfjsJson& c = *layer.config;
    if (!c.contains("activation") || c.at("activation").is_null()) return x;
    const TfjsJson& a = c.at("activation");
    // Keras 3 may serialise an activation as {"class_name": ..., "config": ...}.
    std::string name = a.is_string() ? a.get<std::string>() : a.value("class_name", std::string());
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return std::tolower(ch); });
    return activation(layer, name, x);
  }

  bool channels_last(const Layer& layer) const {
    std::string format = layer.config->value("data_format", std::string("channels_last"));
    if (format != "channels_last" && format != "channels_first")
      fail(layer, "data_format " + format + " is not supported", ErrorKind::unsupported);
    return format == "channels_last";
  }

  void set_window(const Layer& layer, Attributes& attrs, const std::vector<int64_t>& kernel,
                  const std::vector<int64_t>& strides, const std::vector<int64_t>& dilations) const {
    std::string padding = layer.config->value("padding", std::string("valid"));
    attrs.set("kernel_shape", kernel);
    attrs.set("strides", strides);
    if (padding == "valid") {
      attrs.set("pads", std::vector<int64_t>{0, 0, 0, 0});
    } else if (padding == "same") {
      if (strides[0] == 1 && strides[1] == 1) {
        int64_t th = (kernel[0] - 1) * dilations[0], tw = (kernel[1] - 1) * dilations[1];
        attrs.set("pads", std::vector<int64_t>{th / 2, tw / 2, th - th / 2, tw - tw / 2});
      } else {
        attrs.set("auto_pad", std::string("SAME_UPPER"));
      }
    } else {
      fail(layer, "padding '" + padding + "' is not supported", ErrorKind::unsupported);
    }
    if (channels_last(layer)) attrs.set("layout", std::string("NHWC"));
  }

  Value conv(const Layer& layer, const Value& x) {
    const TfjsJson& c = *layer.config;
    const bool depthwise = layer.class_name == "DepthwiseConv2D";
    const bool separable = layer.class_name == "SeparableConv2D";
    const bool transposed = layer.class_name == "Conv2DTranspose";
    std::vector<int64_t> strides = pair_of(c.value("strides", TfjsJson(1)), "strides");
    std::vector<int64_t> dilations = pair_of(c.value("dilation_rate", TfjsJson(1)), "dilation_rate");
    Attributes attrs;
    attrs.set("dilations", dilations);
    std::string current = x.name;

    if (transposed) {
      const at::Tensor& kernel = weight(layer, "kernel");  // [H, W, out, in]
      if (c.value("padding", std::string("valid")) != "valid" && (strides[0] != 1 || strides[1] != 1))
        fail(layer, "Conv2DTranspose with 'same' padding and strides is not supported", ErrorKind::unsupported);
      std::vector<int64_t> k = {kernel.size(0), kernel.size(1)};
      set_window(layer, attrs, k, strides, dilations);
      std::vector<std::string> inputs = {current, weight_constant(layer, "kernel_iohw", kernel.permute({3, 2, 0, 1}))};
      if (c.value("use_bias", true)) inputs.push_back(weight_constant(layer, "bias", weight(layer, "bias")));
      return layer_activation(layer, Value{builder_.add1("ConvTranspose", layer.name, inputs, attrs), x.rank});
    }

    at::Tensor w;
    int64_t group = 1;
    if (depthwise || separable) {
      const at::Tensor& dk = weight(layer, "depthwise_kernel");  // [H, W, C, M]
      group = dk.size(2);
      w = dk.permute({2, 3, 0, 1}).reshape({dk.size(2) * dk.size(3), 1, dk.size(0), dk.size(1)});
    } else {
      const at::Tensor& kernel = weight(layer, "kernel");  // [H, W, in/groups, out]
      group = c.value("groups", int64_t{1});
      w = kernel.permute({3, 2, 0, 1});
    }
    std::vector<int64_t> k = {w.size(2), w.size(3)};
    set_window(layer, attrs, k, strides, dilations);
    attrs.set("group", group);
    std::vector<std::string> inputs = {
        current, weight_constant(layer, depthwise || separable ? "depthwise_oihw" : "kernel_oihw", w)};
    bool bias = c.value("use_bias", true);
    if (bias && !separable) inputs.push_back(weight_constant(layer, "bias", weight(layer, "bias")));
    current = builder_.add1("Conv", layer.name + (separable ? "/depthwise" : ""), inputs, attrs);
    if (separable) {
      const at::Tensor& pk = weight(layer, "pointwise_kernel");  // [1, 1, C*M, out]
      Attributes point;
      point.set("kernel_shape", std::vector<int64_t>{1, 1});
      point.set("pads", std::vector<int64_t>{0, 0, 0, 0});
      if (channels_last(layer)) point.set("layout", std::string("NHWC"));
      std::vector<std::string> pin = {current, weight_constant(layer, "pointwise_oihw", pk.permute({3, 2, 0, 1}))};
      if (bias) pin.push_back(weight_constant(layer, "bias", weight(layer, "bias")));
      current = builder_.add1("Conv", layer.name, pin, point);
    }
    return layer_activation(layer, Value{current, x.rank});
  }

  Value pool(const Layer& layer, const Value& x, const std::string& op) {
    const TfjsJson& c = *layer.config;
    std::vector<int64_t> size = pair_of(c.value("pool_size", TfjsJson(2)), "pool_size");
    std::vector<int64_t> strides =
        c.contains("strides") && !c.at("strides").is_null() ? pair_of(c.at("strides"), "strides") : size;
    Attributes attrs;
    set_window(layer, attrs, size, strides, {1, 1});
    return Value{builder_.add1(op, layer.name, {x.name}, attrs), x.rank};
  }

  // The values a call of a layer produces.
  std::vector<Value> call(const Layer& layer, const std::vector<Value>& in);

  std::filesystem::path path_;
  std::string file_;
  const TfjsJson& json_;
  Graph graph_;
  GraphBuilder builder_;
  std::map<std::string, at::Tensor> weights_;
};

std::vector<Value> LayersModelImporter::call(const Layer& layer, const std::vector<Value>& in) {
  const TfjsJson& c = *layer.config;
  const std::string& kind = layer.class_name;
  auto one = [&]() -> const Value& {
    if (in.size() != 1) fail(layer, "expects one input, got " + std::to_string(in.size()));
    return in[0];
  };

  if (kind == "Conv2D" || kind == "DepthwiseConv2D" || kind == "SeparableConv2D" || kind == "Conv2DTranspose")
    return {conv(layer, one())};
  if (kind == "Dense") {
    const Value& x = one();
    std::string y =
        builder_.add1("MatMul", layer.name, {x.name, weight_constant(layer, "kernel", weight(layer, "kernel"))});
    if (c.value("use_bias", true))
      y = builder_.add1("Add", layer.name + "/bias", {y, weight_constant(layer, "bias", weight(layer, "bias"))});
    return {layer_activation(layer, Value{y, x.rank})};
  }
  if (kind == "Activation") return {layer_activation(layer, one())};
  if (kind == "ReLU") {
    const Value& x = one();
    double max_value = c.contains("max_value") && !c.at("max_value").is_null() ? c.at("max_value").get<double>() : -1;
    double slope = c.value("negative_slope", 0.0);
    double threshold = c.value("threshold", 0.0);
    if (slope != 0.0 || threshold != 0.0)
      fail(layer, "ReLU with negative_slope or threshold is not supported", ErrorKind::unsupported);
    if (max_value >= 0)
      return {Value{
          builder_.add1("Clip", layer.name,
                        {x.name, builder_.scalar("visage/zero", 0), builder_.scalar(layer.name + "/max", max_value)}),
          x.rank}};
    return {Value{builder_.add1("Relu", layer.name, {x.name}), x.rank}};
  }
  if (kind == "LeakyReLU") {
    Attributes attrs;
    attrs.set("alpha", c.value("alpha", c.value("negative_slope", 0.3)));
    return {Value{builder_.add1("LeakyRelu", layer.name, {one().name}, attrs), one().rank}};
  }
  if (kind == "ELU") {
    Attributes attrs;
    attrs.set("alpha", c.value("alpha", 1.0));
    return {Value{builder_.add1("Elu", layer.name, {one().name}, attrs), one().rank}};
  }
  if (kind == "PReLU") {
    std::string alpha = weight_constant(layer, "alpha", weight(layer, "alpha"));
    return {Value{builder_.add1("PRelu", layer.name, {one().name, alpha}), one().rank}};
  }
  if (kind == "Softmax") {
    Attributes attrs;
    attrs.set("axis", c.value("axis", int64_t{-1}));
    return {Value{builder_.add1("Softmax", layer.name, {one().name}, attrs), one().rank}};
  }
  if (kind == "Add" || kind == "Subtract" || kind == "Multiply" || kind == "Maximum" || kind == "Minimum" ||
      kind == "Average") {
    if (in.size() < 2) fail(layer, "expects at least two inputs");
    if (kind == "Subtract" && in.size() != 2) fail(layer, "expects exactly two inputs");
    std::string op = kind == "Add" || kind == "Average" ? "Add"
                     : kind == "Subtract"               ? "Sub"
                     : kind == "Multiply"               ? "Mul"
                     : kind == "Maximum"                ? "Max"
                                                        : "Min";
    int64_t rank = in[0].rank;
    std::string acc = in[0].name;
    for (size_t k = 1; k < in.size(); ++k) {
      acc = builder_.add1(op, layer.name, {acc, in[k].name});
      rank = std::max(rank, in[k].rank);
    }
    if (kind == "Average")
      acc = builder_.add1("Mul", layer.name + "/mean",
                          {acc, builder_.scalar(layer.name + "/inv_n", 1.0 / static_cast<double>(in.size()))});
    return {Value{acc, rank}};
  }
  if (kind == "Concatenate") {
    Attributes attrs;
    attrs.set("axis", c.value("axis", int64_t{-1}));
    std::vector<std::string> names;
    for (const auto& v : in) names.push_back(v.name);
    return {Value{builder_.add1("Concat", layer.name, names, attrs), in.empty() ? -1 : in[0].rank}};
  }
  if (kind == "UpSampling2D") {
    const Value& x = one();
    if (!channels_last(layer)) fail(layer, "channels_first UpSampling2D is not supported", ErrorKind::unsupported);
    std::vector<int64_t> size = pair_of(c.value("size", TfjsJson(2)), "size");
    std::string interpolation = c.value("interpolation", std::string("nearest"));
    if (interpolation != "nearest" && interpolation != "bilinear")
      fail(layer, "interpolation '" + interpolation + "' is not supported", ErrorKind::unsupported);
    // tfjs resizes to (H*sh, W*sw) with align_corners and half_pixel_centers off.
    Attributes attrs;
    attrs.set("mode", std::string(interpolation == "nearest" ? "nearest" : "linear"));
    attrs.set("coordinate_transformation_mode", std::string("asymmetric"));
    if (interpolation == "nearest") attrs.set("nearest_mode", std::string("floor"));
    attrs.set("layout", std::string("NHWC"));  // so 2 scales are [height, width]
    std::string scales = builder_.constant(
        layer.name + "/scales", at::tensor({static_cast<float>(size[0]), static_cast<float>(size[1])}, at::kFloat));
    return {Value{builder_.add1("Resize", layer.name, {x.name, "", scales}, attrs), x.rank}};
  }
  if (kind == "Flatten") {
    Attributes attrs;
    attrs.set("allowzero", int64_t{0});  // 0 copies the batch dimension
    return {Value{
        builder_.add1("Reshape", layer.name, {one().name, builder_.ints(layer.name + "/shape", {0, -1})}, attrs), 2}};
  }
  if (kind == "Reshape") {
    std::vector<int64_t> shape = {0};
    for (int64_t d : c.at("target_shape").get<std::vector<int64_t>>()) shape.push_back(d);
    Attributes attrs;
    attrs.set("allowzero", int64_t{0});
    return {
        Value{builder_.add1("Reshape", layer.name, {one().name, builder_.ints(layer.name + "/shape", shape)}, attrs),
              static_cast<int64_t>(shape.size())}};
  }
  if (kind == "Permute") {
    std::vector<int64_t> perm = {0};
    for (int64_t d : c.at("dims").get<std::vector<int64_t>>()) perm.push_back(d);
    Attributes attrs;
    attrs.set("perm", perm);
    return {Value{builder_.add1("Transpose", layer.name, {one().name}, attrs), one().rank}};
  }
  if (kind == "ZeroPadding2D" || kind == "Cropping2D") {
    if (!channels_last(layer)) fail(layer, "channels_first is not supported", ErrorKind::unsupported);
    const TfjsJson& p = c.at(kind == "ZeroPadding2D" ? "padding" : "cropping");
    std::vector<int64_t> hw;  // top, bottom, left, right
    if (p.is_number_integer()) {
      hw = {p.get<int64_t>(), p.get<int64_t>(), p.get<int64_t>(), p.get<int64_t>()};
    } else if (p.size() == 2 && p.at(0).is_number_integer()) {
      hw = {p.at(0).get<int64_t>(), p.at(0).get<int64_t>(), p.at(1).get<int64_t>(), p.at(1).get<int64_t>()};
    } else if (p.size() == 2) {
      auto a = p.at(0).get<std::vector<int64_t>>(), b = p.at(1).get<std::vector<int64_t>>();
      hw = {a.at(0), a.at(1), b.at(0), b.at(1)};
    } else {
      fail(layer, "malformed padding");
    }
    if (kind == "ZeroPadding2D") {
      std::string pads = builder_.ints(layer.name + "/pads", {0, hw[0], hw[2], 0, 0, hw[1], hw[3], 0});
      return {Value{builder_.add1("Pad", layer.name, {one().name, pads}), one().rank}};
    }
    constexpr int64_t kEnd = std::numeric_limits<int64_t>::max();
    std::string starts = builder_.ints(layer.name + "/starts", {hw[0], hw[2]});
    std::string ends = builder_.ints(layer.name + "/ends", {hw[1] ? -hw[1] : kEnd, hw[3] ? -hw[3] : kEnd});
    std::string axes = builder_.ints(layer.name + "/axes", {1, 2});
    return {Value{builder_.add1("Slice", layer.name, {one().name, starts, ends, axes}), one().rank}};
  }
  if (kind == "MaxPooling2D") return {pool(layer, one(), "MaxPool")};
  if (kind == "AveragePooling2D") return {pool(layer, one(), "AveragePool")};
  if (kind == "GlobalAveragePooling2D" || kind == "GlobalMaxPooling2D") {
    bool keep = c.value("keepdims", false);
    Attributes attrs;
    attrs.set("keepdims", int64_t{keep});
    std::string axes = builder_.ints(layer.name + "/axes",
                                     channels_last(layer) ? std::vector<int64_t>{1, 2} : std::vector<int64_t>{2, 3});
    std::string op = kind == "GlobalAveragePooling2D" ? "ReduceMean" : "ReduceMax";
    return {Value{builder_.add1(op, layer.name, {one().name, axes}, attrs), keep ? one().rank : 2}};
  }
  if (kind == "BatchNormalization") {
    const Value& x = one();
    int64_t axis = c.contains("axis") && c.at("axis").is_array() ? c.at("axis").at(0).get<int64_t>()
                                                                 : c.value("axis", int64_t{-1});
    if (axis >= 0 && x.rank >= 0 && axis == x.rank - 1) axis = -1;
    if (axis != -1)
      fail(layer, "batch normalization over axis " + std::to_string(axis) + " is not supported",
           ErrorKind::unsupported);
    double epsilon = c.value("epsilon", 1e-3);
    at::Tensor mean = weight(layer, "moving_mean").to(at::kDouble);
    at::Tensor variance = weight(layer, "moving_variance").to(at::kDouble);
    at::Tensor gamma = c.value("scale", true) ? weight(layer, "gamma").to(at::kDouble) : at::ones_like(mean);
    at::Tensor beta = c.value("center", true) ? weight(layer, "beta").to(at::kDouble) : at::zeros_like(mean);
    // y = (x - mean) / sqrt(var + eps) * gamma + beta, as one per-channel scale and shift.
    at::Tensor scale = gamma / at::sqrt(variance + epsilon);
    at::Tensor shift = beta - mean * scale;
    std::string y = builder_.add1("Mul", layer.name + "/scale",
                                  {x.name, builder_.constant(layer.name + "/scale", scale.to(at::kFloat))});
    return {Value{builder_.add1("Add", layer.name, {y, builder_.constant(layer.name + "/shift", shift.to(at::kFloat))}),
                  x.rank}};
  }
  if (kind == "Rescaling") {
    const Value& x = one();
    std::string y = builder_.add1("Mul", layer.name + "/scale",
                                  {x.name, builder_.scalar(layer.name + "/scale", c.value("scale", 1.0))});
    return {
        Value{builder_.add1("Add", layer.name, {y, builder_.scalar(layer.name + "/offset", c.value("offset", 0.0))}),
              x.rank}};
  }
  if (kind == "Dropout" || kind == "SpatialDropout1D" || kind == "SpatialDropout2D" || kind == "GaussianNoise" ||
      kind == "GaussianDropout" || kind == "AlphaDropout" || kind == "ActivityRegularization")
    return {one()};  // inference: pass-through
  fail(layer, "Keras layer '" + kind + "' is not supported by the TF.js layers loader", ErrorKind::unsupported);
}

Graph LayersModelImporter::run() {
  graph_.source = file_;
  graph_.format = "tfjs-layers";
  const TfjsJson* topology = json_.contains("modelTopology") ? &json_.at("modelTopology") : nullptr;
  if (topology && topology->contains("model_config")) topology = &topology->at("model_config");
  if (!topology || !topology->is_object() || !topology->contains("class_name") || !topology->contains("config"))
    throw Error(ErrorKind::model, file_ + ": model.json has no Keras model_config (not a TF.js layers-model)");
  weights_ = read_tfjs_weights(json_, path_);

  try {
    const std::string model_class = topology->at("class_name").get<std::string>();
    const TfjsJson& config = topology->at("config");
    const bool sequential = model_class == "Sequential";
    if (!sequential && model_class != "Functional" && model_class != "Model")
      throw Error(ErrorKind::unsupported, file_ + ": Keras model class '" + model_class + "' is not supported");
    const TfjsJson& layer_list = config.is_array() ? config : config.at("layers");

    std::vector<Layer> layers;
    for (const auto& entry : layer_list) {
      Layer layer;
      layer.class_name = entry.at("class_name").get<std::string>();
      layer.config = &entry.at("config");
      layer.name =
          entry.contains("name") ? entry.at("name").get<std::string>() : layer.config->value("name", std::string());
      if (layer.name.empty()) layer.name = builder_.fresh(layer.class_name);
      builder_.reserve(layer.name);
      if (entry.contains("inbound_nodes")) {
        for (const auto& node : entry.at("inbound_nodes")) {
          std::vector<InboundRef> refs;
          if (node.is_array()) {  // Keras 2: [[name, node_index, tensor_index, kwargs], ...]
            for (const auto& ref : node)
              refs.push_back({ref.at(0).get<std::string>(), ref.at(1).get<int64_t>(), ref.at(2).get<int64_t>()});
          } else if (node.is_object() && node.contains("args")) {  // Keras 3: {"args": [keras tensors], ...}
            std::function<void(const TfjsJson&)> collect = [&](const TfjsJson& arg) {
              if (arg.is_array()) {
                for (const auto& a : arg) collect(a);
              } else if (arg.is_object() && arg.value("class_name", std::string()) == "__keras_tensor__") {
                const auto& h = arg.at("config").at("keras_history");
                refs.push_back({h.at(0).get<std::string>(), h.at(1).get<int64_t>(), h.at(2).get<int64_t>()});
              }
            };
            collect(node.at("args"));
          } else {
            throw Error(ErrorKind::model, file_ + ": layer '" + layer.name + "' has malformed inbound_nodes");
          }
          layer.calls.push_back(refs);
        }
      }
      layers.push_back(std::move(layer));
    }

    // Values by (layer, call index, output index).
    std::map<std::tuple<std::string, int64_t, int64_t>, Value> values;
    auto add_input = [&](const Layer& layer, const TfjsJson& cfg) {
      ValueInfo info;
      info.name = layer.name;
      const char* keys[] = {"batch_input_shape", "batch_shape"};
      for (const char* key : keys)
        if (cfg.contains(key)) {
          for (const auto& d : cfg.at(key)) info.shape.push_back(d.is_null() ? -1 : d.get<int64_t>());
          break;
        }
      info.has_shape = !info.shape.empty();
      info.dtype = tfjs_dtype(cfg.value("dtype", std::string("float32")), file_ + ": input '" + layer.name + "'");
      graph_.inputs.push_back(info);
      return Value{info.name, info.has_shape ? static_cast<int64_t>(info.shape.size()) : -1};
    };

    auto run_layer = [&](const Layer& layer, const std::vector<Value>& in) {
      try {
        return call(layer, in);
      } catch (const Error&) {
        throw;
      } catch (const std::exception& e) {
        fail(layer, e.what());
      }
    };

    if (sequential) {
      std::optional<Value> current;
      for (const auto& layer : layers) {
        if (layer.class_name == "InputLayer") {
          current = add_input(layer, *layer.config);
          continue;
        }
        if (!current) {
          if (!layer.config->contains("batch_input_shape") && !layer.config->contains("batch_shape"))
            fail(layer, "the first layer of a Sequential model needs batch_input_shape");
          Layer input_layer{"InputLayer", builder_.fresh(layer.name + "_input"), layer.config, {}};
          current = add_input(input_layer, *layer.config);
        }
        std::vector<Value> out = run_layer(layer, {*current});
        current = out.at(0);
      }
      if (!current) throw Error(ErrorKind::model, file_ + ": the Sequential model has no layers");
      graph_.outputs.push_back(ValueInfo{current->name, at::kFloat, {}, false});
    } else {
      // Layers may be listed before their inputs' producers; run each call
      // once all of its inputs exist.
      std::vector<size_t> next_call(layers.size(), 0);
      bool progress = true;
      while (progress) {
        progress = false;
        for (size_t i = 0; i < layers.size(); ++i) {
          const Layer& layer = layers[i];
          if (layer.class_name == "InputLayer") {
            if (next_call[i] == 0) {
              values[{layer.name, 0, 0}] = add_input(layer, *layer.config);
              next_call[i] = 1;
              progress = true;
            }
            continue;
          }
          while (next_call[i] < layer.calls.size()) {
            std::vector<Value> in;
            bool ready = true;
            for (const auto& ref : layer.calls[next_call[i]]) {
              auto it = values.find({ref.layer, ref.node_index, ref.tensor_index});
              if (it == values.end()) {
                ready = false;
                break;
              }
              in.push_back(it->second);
            }
            if (!ready) break;
            std::vector<Value> out = run_layer(layer, in);
            for (size_t t = 0; t < out.size(); ++t)
              values[{layer.name, static_cast<int64_t>(next_call[i]), static_cast<int64_t>(t)}] = out[t];
            ++next_call[i];
            progress = true;
          }
        }
      }
      auto refs_of = [&](const char* key) {
        std::vector<InboundRef> refs;
        for (const auto& r : config.at(key))
          refs.push_back({r.at(0).get<std::string>(), r.at(1).get<int64_t>(), r.at(2).get<int64_t>()});
        return refs;
      };
      // Graph inputs in the order of input_layers.
      std::vector<ValueInfo> ordered;
      for (const auto& ref : refs_of("input_layers"))
        for (const auto& info : graph_.inputs)
          if (info.name == values.at({ref.layer, ref.node_index, ref.tensor_index}).name) ordered.push_back(info);
      if (ordered.size() == graph_.inputs.size()) graph_.inputs = ordered;
      for (const auto& ref : refs_of("output_layers")) {
        auto it = values.find({ref.layer, ref.node_index, ref.tensor_index});
        if (it == values.end())
          throw Error(ErrorKind::model,
                      file_ + ": output layer '" + ref.layer + "' is never computed (missing inputs?)");
        graph_.outputs.push_back(ValueInfo{it->second.name, at::kFloat, {}, false});
      }
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(ErrorKind::model, file_ + ": malformed Keras model_config: " + e.what());
  }

  // A graph output that is a graph input or appears twice needs its own node.
  std::set<std::string> seen;
  for (auto& output : graph_.outputs) {
    bool is_input = std::any_of(graph_.inputs.begin(), graph_.inputs.end(),
                                [&](const ValueInfo& v) { return v.name == output.name; });
    if (is_input || seen.count(output.name)) {
      std::string copy = builder_.fresh(output.name + "/out");
      builder_.add("Identity", copy, {output.name}, {copy});
      output.name = copy;
    }
    seen.insert(output.name);
  }
  return std::move(graph_);
}

}  // namespace

Graph load_tfjs_layers(const std::filesystem::path& path) {
  TfjsJson json = read_tfjs_json(path);
  LayersModelImporter importer(path, json);
  return importer.run();
}

}  // namespace visage::rt
