// Model file importers: each turns one file format into the runtime's Graph.
//
// A loader checks what it reads: a truncated or corrupt file, a missing weight
// shard or a weight whose byte count does not match its shape throws
// visage::Error{model} naming the file. Operators are mapped to the canonical
// set documented in runtime/graph.hpp; an operator the loader cannot map
// throws visage::Error{unsupported} naming the node and operator.
#pragma once

#include <filesystem>

#include "runtime/graph.hpp"

namespace visage::rt {

// An ONNX ModelProto (.onnx), default domain operators, opsets 7 to 21.
Graph load_onnx(const std::filesystem::path& path);

// A TF.js graph-model: model.json ("format": "graph-model" or a modelTopology
// with a "node" list) with its binary weight shards beside it. Tensors keep
// TF's NHWC layout; convolutions carry layout="NHWC".
Graph load_tfjs_graph(const std::filesystem::path& path);

// A TF.js layers-model: model.json with a Keras model_config (functional or
// sequential) and its weight shards.
Graph load_tfjs_layers(const std::filesystem::path& path);

// Picks the loader by file name and content.
Graph load_any(const std::filesystem::path& path);

}  // namespace visage::rt
