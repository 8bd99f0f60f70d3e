// ONNX importer: ModelProto -> Graph.
//
// Besides the plain translation, the loader brings every node to the
// opset-13 form the kernels implement: parameters that older opsets carried
// as attributes (Reshape shape, Squeeze/Unsqueeze axes, Slice starts/ends,
// Pad pads, Clip min/max, ...) become int64/float initializers wired in as
// inputs, Upsample and opset-10 Resize become opset-13 Resize, and the
// flatten-to-2-D Softmax of opsets < 13 becomes Flatten -> Softmax -> Reshape.
// Constant nodes become initializers.
#include <ATen/ATen.h>
#include <google/protobuf/io/coded_stream.h>

#include <climits>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "onnx/onnx.pb.h"
#include "runtime/loaders/loaders.hpp"
#include "runtime/loaders/onnx_tensor.hpp"
#include "visage/error.hpp"

namespace visage::rt {
namespace {

std::string read_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error(ErrorKind::model, path.string() + ": no such model file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::model, path.string() + ": cannot open the file");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) throw Error(ErrorKind::model, path.string() + ": reading the file failed");
  return bytes.str();
}

template <typename Message>
bool parse_message(const std::string& bytes, Message& message) {
  google::protobuf::io::CodedInputStream stream(reinterpret_cast<const uint8_t*>(bytes.data()),
                                                static_cast<int>(bytes.size()));
  // Models beyond protobuf's default 64 MiB limit are common; 2 GiB is the format's own limit.
  stream.SetTotalBytesLimit(INT_MAX);
  return message.ParseFromCodedStream(&stream) && stream.ConsumedEntireMessage();
}

onnx::ModelProto parse_model(const std::filesystem::path& path) {
  std::string bytes = read_file(path);
  const std::string file = path.string();
  if (bytes.empty()) throw Error(ErrorKind::model, file + ": not a valid ONNX model (the file is empty)");
  if (bytes.size() > static_cast<size_t>(INT_MAX))
    throw Error(ErrorKind::unsupported, file + ": ONNX models over 2 GiB are not supported");
  onnx::ModelProto model;
  if (!parse_message(bytes, model))
    throw Error(ErrorKind::model, file + ": not a valid ONNX model (the protobuf is truncated or corrupt)");
  if (model.ir_version() <= 0 || !model.has_graph())
    throw Error(ErrorKind::model, file + ": not a valid ONNX model (no IR version or no graph)");
  if (model.graph().output_size() == 0)
    throw Error(ErrorKind::model, file + ": not a valid ONNX model (the graph has no outputs)");
  return model;
}

at::ScalarType scalar_type_of(int32_t onnx_type, const std::string& where) {
  switch (onnx_type) {
    case onnx::TensorProto::FLOAT: return at::kFloat;
    case onnx::TensorProto::DOUBLE: return at::kDouble;
    case onnx::TensorProto::FLOAT16: return at::kHalf;
    case onnx::TensorProto::BFLOAT16: return at::kBFloat16;
    case onnx::TensorProto::INT8: return at::kChar;
    case onnx::TensorProto::INT16: return at::kShort;
    case onnx::TensorProto::INT32: return at::kInt;
    case onnx::TensorProto::INT64: return at::kLong;
    case onnx::TensorProto::UINT8: return at::kByte;
    case onnx::TensorProto::BOOL: return at::kBool;
    default: break;
  }
  std::string name = onnx::TensorProto::DataType_IsValid(onnx_type)
                         ? onnx::TensorProto::DataType_Name(static_cast<onnx::TensorProto::DataType>(onnx_type))
                         : std::to_string(onnx_type);
  throw Error(ErrorKind::unsupported, where + ": tensor data type " + name + " is not supported");
}

// Copies `count` values of a typed repeated field into `tensor` (already sized).
template <typename Out, typename Field>
void copy_typed(const Field& field, at::Tensor& tensor, int64_t count) {
  Out* out = tensor.data_ptr<Out>();
  for (int64_t i = 0; i < count; ++i) out[i] = static_cast<Out>(field.Get(static_cast<int>(i)));
}

at::Tensor tensor_from_proto(const onnx::TensorProto& proto, const std::string& where) {
  if (proto.data_location() == onnx::TensorProto::EXTERNAL || proto.external_data_size() > 0)
    throw Error(ErrorKind::unsupported,
                where + ": tensor '" + proto.name() + "' keeps its data in an external file, which is not supported");
  if (proto.has_segment()) throw Error(ErrorKind::unsupported, where + ": segmented tensors are not supported");
  at::ScalarType dtype = scalar_type_of(proto.data_type(), where + ": tensor '" + proto.name() + "'");
  std::vector<int64_t> shape(proto.dims().begin(), proto.dims().end());
  int64_t count = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error(ErrorKind::model, where + ": tensor '" + proto.name() + "' has a negative dimension");
    count *= d;
  }
  at::Tensor tensor = at::empty(shape, at::TensorOptions().dtype(dtype));
  const auto element_size = static_cast<int64_t>(tensor.element_size());
  auto mismatch = [&](int64_t have) {
    return Error(ErrorKind::model, where + ": tensor '" + proto.name() + "' holds " + std::to_string(have) +
                                       " values for a shape of " + std::to_string(count) + " elements");
  };
  if (proto.has_raw_data()) {
    const std::string& raw = proto.raw_data();
    if (static_cast<int64_t>(raw.size()) != count * element_size) {
      throw Error(ErrorKind::model, where + ": tensor '" + proto.name() + "' has " + std::to_string(raw.size()) +
                                        " bytes of data for " + std::to_string(count) + " elements");
    }
    if (count > 0) std::memcpy(tensor.data_ptr(), raw.data(), raw.size());
    return tensor;
  }
  switch (proto.data_type()) {
    case onnx::TensorProto::FLOAT:
      if (proto.float_data_size() != count) throw mismatch(proto.float_data_size());
      copy_typed<float>(proto.float_data(), tensor, count);
      break;
    case onnx::TensorProto::DOUBLE:
      if (proto.double_data_size() != count) throw mismatch(proto.double_data_size());
      copy_typed<double>(proto.double_data(), tensor, count);
      break;
    case onnx::TensorProto::INT64:
      if (proto.int64_data_size() != count) throw mismatch(proto.int64_data_size());
      copy_typed<int64_t>(proto.int64_data(), tensor, count);
      break;
    case onnx::TensorProto::INT32:
      if (proto.int32_data_size() != count) throw mismatch(proto.int32_data_size());
      copy_typed<int32_t>(proto.int32_data(), tensor, count);
      break;
    case onnx::TensorProto::INT16:
      if (proto.int32_data_size() != count) throw mismatch(proto.int32_data_size());
      copy_typed<int16_t>(proto.int32_data(), tensor, count);
      break;
    case onnx::TensorProto::INT8:
      if (proto.int32_data_size() != count) throw mismatch(proto.int32_data_size());
      copy_typed<int8_t>(proto.int32_data(), tensor, count);
      break;
    case onnx::TensorProto::UINT8:
      if (proto.int32_data_size() != count) throw mismatch(proto.int32_data_size());
      copy_typed<uint8_t>(proto.int32_data(), tensor, count);
      break;
    case onnx::TensorProto::BOOL:
      if (proto.int32_data_size() != count) throw mismatch(proto.int32_data_size());
      copy_typed<bool>(proto.int32_data(), tensor, count);
      break;
    case onnx::TensorProto::FLOAT16:
    case onnx::TensorProto::BFLOAT16: {
      // int32_data holds the 16-bit patterns.
      if (proto.int32_data_size() != count) throw mismatch(proto.int32_data_size());
      auto* out = static_cast<uint16_t*>(tensor.data_ptr());
      for (int64_t i = 0; i < count; ++i) out[i] = static_cast<uint16_t>(proto.int32_data(static_cast<int>(i)));
      break;
    }
    default: break;
  }
  return tensor;
}

void read_value_info(const onnx::ValueInfoProto& proto, ValueInfo& info, const std::string& where) {
  info.name = proto.name();
  info.has_shape = false;
  if (!proto.has_type() || !proto.type().has_tensor_type()) {
    if (proto.has_type() && proto.type().value_case() != onnx::TypeProto::VALUE_NOT_SET)
      throw Error(ErrorKind::unsupported, where + ": graph value '" + proto.name() + "' is not a tensor");
    return;
  }
  const auto& tensor_type = proto.type().tensor_type();
  if (tensor_type.elem_type() != onnx::TensorProto::UNDEFINED)
    info.dtype = scalar_type_of(tensor_type.elem_type(), where + ": graph value '" + proto.name() + "'");
  if (!tensor_type.has_shape()) return;
  info.has_shape = true;
  info.shape.clear();
  for (const auto& dim : tensor_type.shape().dim())
    info.shape.push_back(dim.has_dim_value() && dim.dim_value() >= 0 ? dim.dim_value() : -1);
}

AttrValue attribute_value(const onnx::AttributeProto& attr, const std::string& where) {
  using A = onnx::AttributeProto;
  A::AttributeType type = attr.type();
  if (type == A::UNDEFINED) {  // IR < 0.0.2 did not record the type: infer it from the field set
    if (attr.has_f())
      type = A::FLOAT;
    else if (attr.has_i())
      type = A::INT;
    else if (attr.has_s())
      type = A::STRING;
    else if (attr.has_t())
      type = A::TENSOR;
    else if (attr.floats_size())
      type = A::FLOATS;
    else if (attr.ints_size())
      type = A::INTS;
    else if (attr.strings_size())
      type = A::STRINGS;
  }
  switch (type) {
    case A::INT: return attr.i();
    case A::FLOAT: return static_cast<double>(attr.f());
    case A::STRING: return attr.s();
    case A::INTS: return std::vector<int64_t>(attr.ints().begin(), attr.ints().end());
    case A::FLOATS: return std::vector<double>(attr.floats().begin(), attr.floats().end());
    case A::STRINGS: return std::vector<std::string>(attr.strings().begin(), attr.strings().end());
    case A::TENSOR: return tensor_from_proto(attr.t(), where + ": attribute '" + attr.name() + "'");
    default: break;
  }
  throw Error(ErrorKind::unsupported, where + ": attribute '" + attr.name() + "' has an unsupported type (" +
                                          A::AttributeType_Name(type) + ")");
}

// Constant node -> its value.
at::Tensor constant_value(const onnx::NodeProto& node, const std::string& where) {
  for (const auto& attr : node.attribute()) {
    const std::string& name = attr.name();
    if (name == "value") return tensor_from_proto(attr.t(), where);
    if (name == "value_float") return at::scalar_tensor(attr.f(), at::kFloat);
    if (name == "value_int") return at::scalar_tensor(attr.i(), at::kLong);
    if (name == "value_floats")
      return at::tensor(std::vector<float>(attr.floats().begin(), attr.floats().end()), at::kFloat);
    if (name == "value_ints")
      return at::tensor(std::vector<int64_t>(attr.ints().begin(), attr.ints().end()), at::kLong);
    throw Error(ErrorKind::unsupported, where + ": Constant with attribute '" + name + "' is not supported");
  }
  throw Error(ErrorKind::model, where + ": Constant node has no value");
}

// Rewrites nodes of older opsets into the opset-13 form the kernels implement.
class OpsetNormalizer {
 public:
  OpsetNormalizer(Graph& graph, int64_t opset) : graph_(graph), opset_(opset) {}

  // Appends `node` (and any helper nodes) to the graph in normalised form.
  void add(Node node) {
    const std::string& op = node.op;
    if (op == "Reshape" && opset_ < 5) {
      move_ints_to_input(node, "shape", 1);
    } else if ((op == "Squeeze" || op == "Unsqueeze") && opset_ < 13) {
      move_ints_to_input(node, "axes", 1);
    } else if (op == "Split" && opset_ < 13) {
      move_ints_to_input(node, "split", 1);
    } else if (op == "ReduceSum" && opset_ < 13) {
      move_ints_to_input(node, "axes", 1);
    } else if (op == "Slice" && opset_ < 10) {
      move_ints_to_input(node, "starts", 1);
      move_ints_to_input(node, "ends", 2);
      move_ints_to_input(node, "axes", 3);
    } else if (op == "TopK" && opset_ < 10) {
      move_ints_to_input(node, "k", 1);
    } else if (op == "Pad" && opset_ < 11) {
      if (node.attrs.has("paddings")) {
        node.attrs.set("pads", node.attrs.get_ints("paddings"));
        node.attrs.erase("paddings");
      }
      move_ints_to_input(node, "pads", 1);
      float value = static_cast<float>(node.attrs.get_float("value", 0.0));
      node.attrs.erase("value");
      set_input(node, 2, add_constant(node, "constant_value", at::scalar_tensor(value, at::kFloat)));
    } else if (op == "Clip" && opset_ < 11) {
      for (auto [attr, index] : {std::pair{"min", 1}, std::pair{"max", 2}}) {
        if (!node.attrs.has(attr)) continue;
        float value = static_cast<float>(node.attrs.get_float(attr, 0.0));
        node.attrs.erase(attr);
        set_input(node, static_cast<size_t>(index), add_constant(node, attr, at::scalar_tensor(value, at::kFloat)));
      }
    } else if (op == "Upsample" || (op == "Resize" && opset_ < 11)) {
      // Upsample and opset-10 Resize: (X, scales) with asymmetric coordinates.
      std::string scales = node.inputs.size() > 1 ? node.inputs[1] : "";
      if (node.attrs.has("scales")) {
        std::vector<double> values = node.attrs.get_floats("scales");
        node.attrs.erase("scales");
        scales = add_constant(node, "scales", at::tensor(std::vector<float>(values.begin(), values.end()), at::kFloat));
      }
      std::string mode = node.attrs.get_string("mode", "nearest");
      if (mode == "bilinear") mode = "linear";
      node.attrs.set("mode", mode);
      node.attrs.set("coordinate_transformation_mode", std::string("asymmetric"));
      node.attrs.set("nearest_mode", std::string("floor"));
      node.attrs.erase("height_scale");
      node.attrs.erase("width_scale");
      node.op = "Resize";
      node.inputs = {node.inputs.at(0), "", scales};
    } else if (op == "BatchNormalization" && opset_ < 14) {
      if (opset_ < 9 && node.attrs.get_int("spatial", 1) == 0)
        throw Error(ErrorKind::unsupported, where(node) + ": BatchNormalization with spatial=0 is not supported");
      for (const char* legacy : {"spatial", "is_test", "consumed_inputs"}) node.attrs.erase(legacy);
      // Older opsets' extra outputs only exist in training.
      for (size_t i = 1; i < node.outputs.size(); ++i) node.outputs[i].clear();
    } else if (op == "Concat" && opset_ < 4 && !node.attrs.has("axis")) {
      node.attrs.set("axis", int64_t{1});
    } else if (op == "Gemm" && opset_ < 7) {
      node.attrs.erase("broadcast");
    } else if ((op == "Softmax" || op == "LogSoftmax" || op == "Hardmax") && opset_ < 13) {
      int64_t axis = node.attrs.get_int("axis", 1);
      if (axis != -1) {
        add_flattened_softmax(std::move(node), axis);
        return;
      }
    }
    for (const char* legacy : {"consumed_inputs"}) node.attrs.erase(legacy);
    graph_.nodes.push_back(std::move(node));
  }

 private:
  std::string where(const Node& node) const { return graph_.source + ": node '" + node.name + "' (" + node.op + ")"; }

  std::string add_constant(const Node& node, const std::string& what, at::Tensor value) {
    std::string name = node.name + "::" + what;
    while (graph_.initializers.count(name)) name += "_";
    graph_.initializers[name] = std::move(value);
    return name;
  }

  static void set_input(Node& node, size_t index, const std::string& value) {
    if (node.inputs.size() <= index) node.inputs.resize(index + 1);
    node.inputs[index] = value;
  }

  void move_ints_to_input(Node& node, const std::string& attr, size_t index) {
    if (!node.attrs.has(attr)) return;
    std::vector<int64_t> values = node.attrs.get_ints(attr);
    node.attrs.erase(attr);
    set_input(node, index, add_constant(node, attr, at::tensor(values, at::kLong)));
  }

  // Opsets < 13 apply Softmax to the input flattened to 2-D at `axis`.
  void add_flattened_softmax(Node node, int64_t axis) {
    const std::string input = node.inputs.at(0);
    const std::string output = node.outputs.at(0);
    const std::string base = node.name;
    Node shape{"Shape", base + "::shape", {input}, {base + "::shape_out"}, {}};
    Node flatten{"Flatten", base + "::flatten", {input}, {base + "::flat"}, {}};
    flatten.attrs.set("axis", axis);
    node.inputs = {base + "::flat"};
    node.outputs = {base + "::flat_out"};
    node.attrs.set("axis", int64_t{-1});
    Node reshape{"Reshape", base + "::reshape", {base + "::flat_out", base + "::shape_out"}, {output}, {}};
    graph_.nodes.push_back(std::move(shape));
    graph_.nodes.push_back(std::move(flatten));
    graph_.nodes.push_back(std::move(node));
    graph_.nodes.push_back(std::move(reshape));
  }

  Graph& graph_;
  int64_t opset_;
};

int64_t default_opset(const onnx::ModelProto& model) {
  for (const auto& opset : model.opset_import())
    if (opset.domain().empty() || opset.domain() == "ai.onnx") return opset.version();
  return 1;  // IR version 1 and 2 models predate opset_import
}

}  // namespace

at::Tensor read_onnx_tensor_file(const std::filesystem::path& path) {
  std::string bytes = read_file(path);
  onnx::TensorProto proto;
  if (!parse_message(bytes, proto))
    throw Error(ErrorKind::model, path.string() + ": not a valid ONNX TensorProto file");
  return tensor_from_proto(proto, path.string());
}

std::vector<std::string> onnx_operator_types(const std::filesystem::path& path) {
  onnx::ModelProto model = parse_model(path);
  std::vector<std::string> ops;
  for (const auto& node : model.graph().node()) ops.push_back(node.op_type());
  return ops;
}

Graph load_onnx(const std::filesystem::path& path) {
  onnx::ModelProto model = parse_model(path);
  const std::string file = path.string();
  const onnx::GraphProto& proto = model.graph();
  const int64_t opset = default_opset(model);

  Graph graph;
  graph.source = file;
  graph.format = "onnx";

  if (proto.sparse_initializer_size() > 0)
    throw Error(ErrorKind::unsupported, file + ": sparse initializers are not supported");
  for (const auto& initializer : proto.initializer()) {
    if (initializer.name().empty()) throw Error(ErrorKind::model, file + ": an initializer has no name");
    graph.initializers[initializer.name()] = tensor_from_proto(initializer, file);
  }
  for (const auto& input : proto.input()) {
    if (graph.is_initializer(input.name())) continue;  // IR < 4 lists initializers among the inputs
    ValueInfo info;
    read_value_info(input, info, file);
    graph.inputs.push_back(std::move(info));
  }
  for (const auto& output : proto.output()) {
    ValueInfo info;
    read_value_info(output, info, file);
    graph.outputs.push_back(std::move(info));
  }

  OpsetNormalizer normalizer(graph, opset);
  std::set<std::string> names;
  for (int index = 0; index < proto.node_size(); ++index) {
    const onnx::NodeProto& node_proto = proto.node(index);
    Node node;
    node.op = node_proto.op_type();
    node.name = node_proto.name();
    if (node.name.empty() || names.count(node.name)) node.name = node.op + "_" + std::to_string(index);
    while (names.count(node.name)) node.name += "_";
    names.insert(node.name);
    const std::string where = file + ": node '" + node.name + "' (" + node.op + ")";
    const std::string& domain = node_proto.domain();
    if (!domain.empty() && domain != "ai.onnx")
      throw Error(ErrorKind::unsupported, where + ": operator domain '" + domain + "' is not supported");
    node.inputs.assign(node_proto.input().begin(), node_proto.input().end());
    node.outputs.assign(node_proto.output().begin(), node_proto.output().end());

    if (node.op == "Constant") {
      if (node.outputs.size() != 1 || node.outputs[0].empty())
        throw Error(ErrorKind::model, where + ": Constant must have one output");
      graph.initializers[node.outputs[0]] = constant_value(node_proto, where);
      continue;
    }
    for (const auto& attr : node_proto.attribute()) {
      // Subgraph attributes (If, Loop, Scan) are left out: those operators
      // have no kernel, so such a node fails as unsupported when it is built.
      if (attr.type() == onnx::AttributeProto::GRAPH || attr.type() == onnx::AttributeProto::GRAPHS) continue;
      if (attr.has_ref_attr_name())
        throw Error(ErrorKind::unsupported, where + ": attribute references are not supported");
      node.attrs.set(attr.name(), attribute_value(attr, where));
    }
    normalizer.add(std::move(node));
  }
  return graph;
}

}  // namespace visage::rt
