#include "runtime/loaders/tfjs_weights.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "visage/error.hpp"

namespace visage::rt {
namespace {

std::vector<char> read_file_bytes(const std::filesystem::path& path, const std::string& model_file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error(ErrorKind::model, model_file + ": weight shard '" + path.string() + "' is missing");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::model, model_file + ": cannot read weight shard '" + path.string() + "'");
  return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string shard_list(const std::vector<std::filesystem::path>& shards) {
  std::string list;
  for (const auto& shard : shards) list += (list.empty() ? "'" : ", '") + shard.string() + "'";
  return list;
}

int64_t element_size(const std::string& dtype) {
  if (dtype == "float32" || dtype == "int32") return 4;
  if (dtype == "bool" || dtype == "uint8") return 1;
  if (dtype == "uint16" || dtype == "float16") return 2;
  return 0;
}

struct WeightSpec {
  std::string name;
  std::vector<int64_t> shape;
  std::string dtype;         // what the weight is once decoded: float32, int32, bool
  std::string stored_dtype;  // what the shard holds: dtype, or the quantization dtype
  double quant_min = 0.0;
  double quant_scale = 1.0;
  int64_t numel = 1;
};

WeightSpec parse_weight(const TfjsJson& entry, const std::string& model_file) {
  WeightSpec spec;
  try {
    spec.name = entry.at("name").get<std::string>();
    spec.shape = entry.at("shape").get<std::vector<int64_t>>();
    spec.dtype = entry.at("dtype").get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorKind::model, model_file + ": malformed weightsManifest entry: " + e.what());
  }
  for (int64_t d : spec.shape) {
    if (d < 0) throw Error(ErrorKind::model, model_file + ": weight '" + spec.name + "' has a negative dimension");
    spec.numel *= d;
  }
  spec.stored_dtype = spec.dtype;
  if (entry.contains("quantization")) {
    const auto& q = entry.at("quantization");
    spec.stored_dtype = q.value("dtype", std::string());
    if (spec.stored_dtype == "uint8" || spec.stored_dtype == "uint16") {
      if (!q.contains("min") || !q.contains("scale"))
        throw Error(ErrorKind::model, model_file + ": quantized weight '" + spec.name + "' lacks min or scale");
      spec.quant_min = q.at("min").get<double>();
      spec.quant_scale = q.at("scale").get<double>();
      if (spec.dtype != "float32" && spec.dtype != "int32")
        throw Error(ErrorKind::model, model_file + ": weight '" + spec.name + "' quantizes a " + spec.dtype);
    } else if (spec.stored_dtype == "float16") {
      if (spec.dtype != "float32")
        throw Error(ErrorKind::model, model_file + ": float16-quantized weight '" + spec.name + "' is not float32");
    } else {
      throw Error(ErrorKind::model, model_file + ": weight '" + spec.name + "' has unknown quantization dtype '" +
                                        spec.stored_dtype + "'");
    }
  }
  if (element_size(spec.stored_dtype) == 0)
    throw Error(ErrorKind::unsupported,
                model_file + ": weight '" + spec.name + "' has unsupported dtype '" + spec.stored_dtype + "'");
  return spec;
}

// Decodes one weight from its bytes the way tfjs-core's decodeWeights does
// (quantized values are dequantized in double precision, then stored).
at::Tensor decode_weight(const WeightSpec& spec, const char* bytes) {
  auto from_raw = [&](at::ScalarType type) {
    at::Tensor t = at::empty(spec.shape, at::TensorOptions().dtype(type));
    std::memcpy(t.data_ptr(), bytes, static_cast<size_t>(spec.numel * element_size(spec.stored_dtype)));
    return t;
  };
  if (spec.stored_dtype == spec.dtype) {
    at::Tensor raw = from_raw(tfjs_dtype(spec.dtype, spec.name));
    return raw;
  }
  if (spec.stored_dtype == "float16") return from_raw(at::kHalf).to(at::kFloat);
  at::Tensor quantized = from_raw(spec.stored_dtype == "uint8" ? at::kByte : at::kShort);
  at::Tensor values = quantized.to(at::kDouble);
  if (spec.stored_dtype == "uint16") values = quantized.to(at::kInt).bitwise_and(0xffff).to(at::kDouble);
  values = values * spec.quant_scale + spec.quant_min;
  if (spec.dtype == "int32") return values.round().to(at::kInt);
  return values.to(at::kFloat);
}

}  // namespace

at::ScalarType tfjs_dtype(const std::string& name, const std::string& context) {
  if (name == "float32") return at::kFloat;
  if (name == "int32") return at::kInt;
  if (name == "bool") return at::kBool;
  throw Error(ErrorKind::unsupported, context + ": dtype '" + name + "' is not supported");
}

TfjsJson read_tfjs_json(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error(ErrorKind::model, path.string() + ": no such model file");
  std::ifstream in(path);
  if (!in) throw Error(ErrorKind::model, path.string() + ": cannot open the model file");
  try {
    TfjsJson json = TfjsJson::parse(in);
    if (!json.is_object()) throw Error(ErrorKind::model, path.string() + ": model.json is not a JSON object");
    return json;
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorKind::model, path.string() + ": corrupt model.json: " + e.what());
  }
}

std::map<std::string, at::Tensor> read_tfjs_weights(const TfjsJson& model_json,
                                                    const std::filesystem::path& model_path) {
  const std::string model_file = model_path.string();
  std::map<std::string, at::Tensor> weights;
  if (!model_json.contains("weightsManifest")) return weights;
  const auto& manifest = model_json.at("weightsManifest");
  if (!manifest.is_array()) throw Error(ErrorKind::model, model_file + ": weightsManifest is not a list");
  const std::filesystem::path dir = model_path.parent_path();

  for (const auto& group : manifest) {
    if (!group.is_object() || !group.contains("paths") || !group.contains("weights") || !group.at("paths").is_array() ||
        !group.at("weights").is_array())
      throw Error(ErrorKind::model, model_file + ": weightsManifest group lacks 'paths' or 'weights'");

    std::vector<WeightSpec> specs;
    int64_t needed = 0;
    for (const auto& entry : group.at("weights")) {
      specs.push_back(parse_weight(entry, model_file));
      needed += specs.back().numel * element_size(specs.back().stored_dtype);
    }

    std::vector<std::filesystem::path> shards;
    std::vector<char> bytes;
    for (const auto& shard_name : group.at("paths")) {
      if (!shard_name.is_string()) throw Error(ErrorKind::model, model_file + ": a weight shard path is not a string");
      shards.push_back(dir / shard_name.get<std::string>());
      std::vector<char> shard = read_file_bytes(shards.back(), model_file);
      bytes.insert(bytes.end(), shard.begin(), shard.end());
    }
    if (static_cast<int64_t>(bytes.size()) != needed)
      throw Error(ErrorKind::model, model_file + ": weight shard(s) " + shard_list(shards) + " hold " +
                                        std::to_string(bytes.size()) + " bytes but the manifest needs " +
                                        std::to_string(needed) + " (truncated or mismatched shard)");

    int64_t offset = 0;
    for (const auto& spec : specs) {
      weights[spec.name] = decode_weight(spec, bytes.data() + offset);
      offset += spec.numel * element_size(spec.stored_dtype);
    }
  }
  return weights;
}

}  // namespace visage::rt
