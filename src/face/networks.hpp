// The networks behind face analysis: which file, what input they want.
#pragma once

#include <filesystem>
#include <memory>
#include <string_view>

#include "visage/face.hpp"
#include "visage/runtime.hpp"

namespace visage::face {

// Absolute path of a file inside the model package directory. Throws
// Error{model} naming the file and the fix when it is missing.
std::filesystem::path package_file(std::string_view relative);

// The loaded, immutable networks an analyser needs (shared by clones).
struct Networks {
  FaceAnalyserOptions options;
  std::shared_ptr<const Model> detector;
  std::shared_ptr<const Model> mesh;        // null when landmarker == none
  std::shared_ptr<const Model> recognizer;  // null unless embeddings
  std::shared_ptr<const Model> attributes;  // faceres; null unless attributes
  std::shared_ptr<const Model> species;     // CenterNet; null unless reject_non_human (and a landmarker)
};

std::shared_ptr<const Networks> load_networks(const FaceAnalyserOptions& options);

}  // namespace visage::face
