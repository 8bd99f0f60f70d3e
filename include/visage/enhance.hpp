// visage/enhance.hpp: super-resolution of faces and of whole frames (ESRGAN).
//
//   visage::FaceEnhancer faces({.model = "esrgan-slim-x4"});
//   at::Tensor sharper = faces.enhance_faces(photo.rgb, analyser.analyse(photo.rgb), 0.8f);
//
//   visage::FrameEnhancer frames({.model = "esrgan-medium-x2"});
//   at::Tensor twice_as_big = frames.enhance(photo.rgb);  // [2H, 2W, 3]
//
// The networks are UpscalerJS's ESRGAN (RDN) TF.js layers models from the npm
// packages @upscalerjs/esrgan-slim and @upscalerjs/esrgan-medium (models/x2,
// models/x4), found under model_package_dir() and run by visage::Model.
//
// An enhancer owns one inference session and belongs to one thread at a time;
// `clone()` gives another worker its own session over the same (shared,
// immutable) model.
//
// Images are [H, W, 3] uint8 RGB tensors on the CPU or a CUDA device; results
// come back on the input's device. The network runs on RuntimeOptions::device;
// crops are moved there and back as needed.
//
// Errors: Error{bad_input} for an unknown model name, an image that is not
// [H, W, 3] uint8, a weight outside 0..1 or bad tile sizes; Error{model} when
// the package is not installed; Error{resource} for CUDA without a device.
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "visage/face.hpp"
#include "visage/runtime.hpp"

namespace visage {

// The bundled super-resolution networks. Slim (~0.9 MB) is fast; medium
// (~2.8 MB) is sharper and about three times slower.
enum class EnhancerModel { esrgan_slim_x2, esrgan_slim_x4, esrgan_medium_x2, esrgan_medium_x4 };

// "esrgan-slim-x2", "esrgan-slim-x4", "esrgan-medium-x2", "esrgan-medium-x4".
// Throws Error{bad_input} listing the accepted names.
EnhancerModel parse_enhancer_model(const std::string& text);
std::string_view to_string(EnhancerModel model) noexcept;
// 2 or 4.
int enhancer_scale(EnhancerModel model) noexcept;
// The model.json inside the package directory, e.g. "@upscalerjs/esrgan-slim/models/x4/model.json".
std::filesystem::path enhancer_model_file(EnhancerModel model);

struct FaceEnhancerOptions {
  bool enabled = false;                  // for callers that enhance optionally (swap); FaceEnhancer ignores it
  std::string model = "esrgan-slim-x4";  // esrgan-slim-x2/x4, esrgan-medium-x2/x4
  float weight = 0.8f;                   // 0 = no change, 1 = the enhanced face only
};

// Re-synthesises the detail of each face: the face is aligned (FFHQ layout
// from its 5 landmarks) into a crop about 1/scale of its size in the image,
// super-resolved by the network back to about its size, warped back with the
// inverse transform and blended in through a feathered face-shaped mask (the
// hull of the mesh when the face has one, else an ellipse from the 5 points).
// Pixels outside that mask are returned bit-identical.
class FaceEnhancer {
 public:
  // Loads the model named by options.model. Throws as described above.
  explicit FaceEnhancer(const FaceEnhancerOptions& options = {}, const RuntimeOptions& runtime = {});
  ~FaceEnhancer();
  FaceEnhancer(FaceEnhancer&&) noexcept;
  FaceEnhancer& operator=(FaceEnhancer&&) noexcept;

  // Another enhancer sharing this one's model, with its own session.
  FaceEnhancer clone() const;

  // A new image with each face enhanced and blended in with strength `weight`
  // (0..1; 0 returns an unchanged copy). Faces need landmarks_5 (from any
  // detector); a mesh gives a tighter mask. Faces are processed in order, so
  // overlapping faces see each other's result. Faces too small to align
  // (eyes under 2 pixels apart) are skipped.
  at::Tensor enhance_faces(const at::Tensor& rgb, const std::vector<Face>& faces, float weight);
  // Same, with options().weight.
  at::Tensor enhance_faces(const at::Tensor& rgb, const std::vector<Face>& faces);

  const FaceEnhancerOptions& options() const;
  EnhancerModel model() const;

  struct Impl;

 private:
  explicit FaceEnhancer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct FrameEnhancerOptions {
  std::string model = "esrgan-slim-x2";  // esrgan-slim-x2/x4, esrgan-medium-x2/x4
  // The image is cut into tiles of at most tile_size x tile_size input
  // pixels that overlap by at least tile_overlap pixels; each tile is
  // super-resolved alone and the overlaps are cross-faded with linear ramps
  // (the outer quarter of each overlap, where a tile's zero padding shows, is
  // left to the neighbour). Memory stays bounded by the tile and one row of
  // tiles of output, whatever the image size. Requires 32 <= tile_size and
  // 4 <= tile_overlap <= tile_size / 2.
  int tile_size = 192;
  int tile_overlap = 24;
};

class FrameEnhancer {
 public:
  explicit FrameEnhancer(const FrameEnhancerOptions& options = {}, const RuntimeOptions& runtime = {});
  ~FrameEnhancer();
  FrameEnhancer(FrameEnhancer&&) noexcept;
  FrameEnhancer& operator=(FrameEnhancer&&) noexcept;

  FrameEnhancer clone() const;

  // The whole image super-resolved: [H * scale(), W * scale(), 3] uint8 on
  // the input's device.
  at::Tensor enhance(const at::Tensor& rgb);

  int scale() const;
  const FrameEnhancerOptions& options() const;
  EnhancerModel model() const;

  struct Impl;

 private:
  explicit FrameEnhancer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace visage
