// Image-space compositing for the swap: masks, colour transfer, blending.
//
// Everything here works on a region of interest around one face (a few
// hundred pixels on a side), never on the whole frame. Conventions:
//   image: float [H, W, 3], values 0..255, contiguous
//   mask:  float [H, W], values 0..1, contiguous
// All tensors of one call are on the same device (CPU or CUDA) and the result
// is on that device too; the functions use ATen ops (or a CPU loop with a
// device fallback) so both work.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

#include "visage/face.hpp"
#include "visage/swap.hpp"

namespace visage::swap {

using Polygon = std::vector<Point2>;

// Filled, anti-aliased polygons (pixel-centre convention of face.hpp: pixel
// (x, y) covers [x, x+1) x [y, y+1)); the union of all polygons is 1.
at::Tensor fill_polygons(int64_t height, int64_t width, const std::vector<Polygon>& polygons, at::Device device);
// The same written into `out` (height * width floats, row-major, host
// memory): several fills can share one buffer and one upload to a device.
void fill_polygons_into(float* out, int64_t height, int64_t width, const std::vector<Polygon>& polygons);

// Gaussian blur with standard deviation `sigma` pixels (separable, borders
// replicated). sigma <= 0 returns the mask unchanged.
at::Tensor blur_mask(const at::Tensor& mask, float sigma);

// A feathered version of a hard mask that stays inside it: 0 on and outside
// the mask's edge, rising smoothly to 1 at `radius` pixels inside.
at::Tensor feather_mask(const at::Tensor& mask, float radius);

// Occluders in front of a face (hair, hands, microphones, glasses): pixels of
// `image` inside `face_region` whose colour is far from the skin model fitted
// on the pixels of `skin_sample` (both masks). Returns a mask that is 1 where
// the face is visible, 0 on occluders, smooth in between.
at::Tensor skin_visibility_mask(const at::Tensor& image, const at::Tensor& face_region, const at::Tensor& skin_sample);

// The parts of `mask` above `threshold` that are connected (8-neighbourhood)
// to a pixel where `seeds` > 0.5 and `mask` > threshold: 1 there, else 0.
// Occluders come into a face from outside it (hair, fingers, a microphone)
// or out of the mouth (a tongue); dark spots inside (eye shadows, nostrils,
// moles) are not connected to either.
at::Tensor connected_to(const at::Tensor& mask, const at::Tensor& seeds, float threshold);

// Recolours `source` so that, inside `region`, it matches `target`:
// lab = mean and standard deviation per L*a*b* channel; relight = the ratio
// of the two images' low-frequency luminance; lab_relight = both.
at::Tensor transfer_colour(const at::Tensor& source, const at::Tensor& target, const at::Tensor& region,
                           ColourTransfer mode);

// foreground over background through alpha (1 = foreground). Pixels where
// alpha is 0 come out exactly equal to background in every mode: the
// transitions of poisson/multiband stay inside the alpha > 0 area, with no
// step at its edge.
at::Tensor blend(const at::Tensor& foreground, const at::Tensor& background, const at::Tensor& alpha, BlendMode mode);

}  // namespace visage::swap
