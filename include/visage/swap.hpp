// visage/swap.hpp: put a source person's face onto the faces of a target image.
//
//   visage::FaceSwapper swapper;                       // loads the analyser's networks
//   visage::SourceFace source = swapper.prepare_source({visage::read_image("me.jpg").rgb});
//   at::Tensor out = swapper.swap(visage::read_image("group.jpg").rgb, source);
//
// The built-in swapper is a dense-mesh swapper: the source face's texture is
// warped triangle by triangle onto the target's 468-point mesh (with the face
// shape moved towards the source's by `shape_weight`), then masked,
// colour-matched to the target and blended in. The stages after the swap
// (mask, colour, blend, enhance) work on a "swapped layer" in target-image
// coordinates, so a neural swapper (inswapper-style: aligned 128x128 crop +
// identity vector in, swapped crop out) plugs in at the same point.
//
// A FaceSwapper belongs to one thread at a time (it owns inference sessions);
// `clone()` gives another worker its own over the same models. SourceFace is
// immutable once prepared and may be shared between threads.
//
// Errors: Error{bad_input} for an image that is not [H, W, 3] uint8 and for a
// source image without a face; Error{model} when a network file is missing.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "visage/enhance.hpp"
#include "visage/face.hpp"

namespace visage {

// Parts of the face the region mask keeps (FaceFusion's --face-mask-regions).
enum class FaceMaskRegion { skin, left_eyebrow, right_eyebrow, left_eye, right_eye, nose, mouth, upper_lip, lower_lip };

struct FaceMaskOptions {
  bool box = true;         // the face's box, padded and blurred (--face-mask-types box)
  bool region = true;      // the mesh outline minus the regions not listed below (--face-mask-types region)
  bool occlusion = false;  // things in front of the target face, by a skin-colour model (--face-mask-types occlusion)
  float blur = 0.2f;       // feathering, 0..1: the feather is blur/4 of the face size wide (--face-mask-blur)
  // Padding of the box mask in percent of the box: top, right, bottom, left (--face-mask-padding).
  std::array<float, 4> padding = {0, 0, 0, 0};
  // Regions that are swapped; leaving one out keeps the target's own (e.g.
  // omit the eyes to keep the target's gaze). Default: all of them.
  std::vector<FaceMaskRegion> regions = {
      FaceMaskRegion::skin,     FaceMaskRegion::left_eyebrow, FaceMaskRegion::right_eyebrow,
      FaceMaskRegion::left_eye, FaceMaskRegion::right_eye,    FaceMaskRegion::nose,
      FaceMaskRegion::mouth,    FaceMaskRegion::upper_lip,    FaceMaskRegion::lower_lip};
};

enum class ColourTransfer {
  none,
  lab,          // mean and spread of L*, a*, b* matched inside the face (default)
  relight,      // low-frequency shading of the target carried onto the source
  lab_relight,  // both (relighting also carries some of the target's relief: less source identity)
};

enum class BlendMode {
  feather,    // alpha blend through the feathered mask
  poisson,    // seamless cloning: the source's gradients, the target's boundary
  multiband,  // Laplacian pyramid blend (default): wide transitions for low frequencies, sharp for detail
};

struct SwapOptions {
  // 0 = keep the target's face shape (texture only), 1 = the source's face
  // shape in the target's pose and expression (--face-swapper-weight).
  float shape_weight = 1.0f;
  bool keep_mouth_interior = true;  // teeth and tongue stay the target's
  bool keep_closed_eyes = true;     // a closed or winking target eye stays the target's (attention mesh)
  FaceMaskOptions mask;
  ColourTransfer colour = ColourTransfer::lab;
  BlendMode blend = BlendMode::multiband;
  // Largest face size (pixels) the compositing works at: a larger target
  // face is composed at this size, scaled up, and keeps the target's own fine
  // detail outside the face. 0 = the source's face size in its texture,
  // clamped to 192..394 (finer work only resamples the same texture).
  float compose_face_size = 0;
  FaceEnhancerOptions enhancer;
  FaceAnalyserOptions analyser;  // detector, landmarker (mesh_attention by default), device
};

// One identity to put onto targets, from one or more photos of the person.
struct SourceFace {
  std::vector<float> embedding;  // mean of the photos' embeddings, L2-normalised
  struct Data;                   // texture and mesh of each photo (private)
  std::shared_ptr<const Data> data;
};

// A target face and the identity that goes onto it.
struct SwapAssignment {
  Face target;
  const SourceFace* source = nullptr;
};

class FaceSwapper {
 public:
  explicit FaceSwapper(const SwapOptions& options = {});
  ~FaceSwapper();
  FaceSwapper(FaceSwapper&&) noexcept;
  FaceSwapper& operator=(FaceSwapper&&) noexcept;
  FaceSwapper clone() const;

  // The largest face of each image ([H, W, 3] uint8) becomes one identity;
  // the photos' embeddings are averaged. Throws Error{bad_input} naming the
  // (0-based) image without a face.
  SourceFace prepare_source(const std::vector<at::Tensor>& images) const;

  // Swaps `source` onto the target faces the selector picks. Returns a new
  // image; pixels outside the swapped faces' masks are the target's.
  // Returns the target unchanged when no face is selected (see `faces_swapped`).
  at::Tensor swap(const at::Tensor& target, const SourceFace& source, const FaceSelector& selector = {});

  // Several identities onto several target faces in one pass.
  at::Tensor swap(const at::Tensor& target, const std::vector<SwapAssignment>& assignments);

  // Faces found and swapped by the last swap() call.
  size_t faces_swapped() const;

  // The analyser this swapper uses (for selection and references).
  FaceAnalyser& analyser();
  const SwapOptions& options() const;

  struct Impl;

 private:
  explicit FaceSwapper(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

FaceMaskRegion parse_face_mask_region(const std::string& text);
ColourTransfer parse_colour_transfer(const std::string& text);
BlendMode parse_blend_mode(const std::string& text);

}  // namespace visage
