// ONNX TensorProto files without exposing the protobuf classes: ONNX's own
// operator test cases store their inputs and expected outputs this way, and
// the conformance test reads them through these functions.
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <string>
#include <vector>

namespace visage::rt {

// Reads one serialised onnx.TensorProto (e.g. test_data_set_0/input_0.pb) into
// a CPU tensor that owns its memory. Throws visage::Error{model} for an
// unreadable or corrupt file, Error{unsupported} for a data type ATen lacks.
at::Tensor read_onnx_tensor_file(const std::filesystem::path& path);

// The op_type of every top-level node of an .onnx file, in file order, as
// written (before the loader's opset normalisation). Throws like load_onnx.
std::vector<std::string> onnx_operator_types(const std::filesystem::path& path);

}  // namespace visage::rt
