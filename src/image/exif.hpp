// EXIF orientation: finding the tag in the bytes a container holds and
// turning stored pixels upright.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <span>

namespace visage::image {

// The orientation (1..8) stored in IFD0 of an EXIF block: a TIFF header ("II"
// or "MM", 42, IFD0 offset) followed by its directories, optionally preceded
// by the "Exif\0\0" identifier that JPEG APP1 segments (and some WebP and PNG
// writers) put in front. Returns 1 when there is no orientation tag or the
// block is malformed: a damaged EXIF block must never stop an image from
// loading.
int exif_orientation(std::span<const uint8_t> exif);

// rgb ([H, W, C]) as a viewer shows a file whose orientation tag is
// `orientation` (1 or anything outside 2..8: unchanged). The result is
// contiguous; 5..8 swap height and width.
at::Tensor apply_exif_orientation(const at::Tensor& rgb, int orientation);

}  // namespace visage::image
