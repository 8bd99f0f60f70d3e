// Reading the files of a TF.js model: model.json and its binary weight shards.
//
// Both TF.js formats (graph-model and layers-model) share this part: a
// "weightsManifest" lists groups of weights; each group's shard files lie
// beside model.json and, concatenated in order, hold the group's weights back
// to back. Quantized weights (uint8, uint16, float16) are dequantized to their
// declared dtype here, exactly as @tensorflow/tfjs does, so the runtime only
// ever sees float32, int32 and bool tensors.
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace visage::rt {

// model.json keeps object keys in file order: TF.js takes the order of a
// signature's outputs from it.
using TfjsJson = nlohmann::ordered_json;

// Parses model.json. Throws Error{model} naming the file when it is missing,
// unreadable or not valid JSON.
TfjsJson read_tfjs_json(const std::filesystem::path& path);

// Reads every weight of the manifest in `model_json` from the shards beside
// `model_path`, keyed by weight name (CPU tensors). Throws Error{model} naming
// the file for a missing manifest entry, a missing shard, or shards whose byte
// count differs from what the manifest's shapes and dtypes need; throws
// Error{unsupported} for a weight dtype the runtime lacks (string, complex).
std::map<std::string, at::Tensor> read_tfjs_weights(const TfjsJson& model_json,
                                                    const std::filesystem::path& model_path);

// The TF dtype name of a manifest ("float32", "int32", "bool") as a scalar type.
at::ScalarType tfjs_dtype(const std::string& name, const std::string& context);

}  // namespace visage::rt
