// visage/image.hpp: reading and writing still images.
//
// An image in Visage is an at::Tensor of shape [height, width, 3], dtype
// uint8, RGB, contiguous, on the CPU. Reading applies the EXIF orientation so
// that the pixels are upright as a viewer shows them; greyscale and
// palette files become RGB (Image::greyscale says the source had no colour);
// an alpha channel is dropped.
//
// Errors: Error{io} when a file cannot be opened or written, Error{bad_input}
// for corrupt, truncated or absurdly large images, Error{unsupported} for a
// format Visage does not read or write. Messages name the file.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "visage/error.hpp"

namespace visage {

enum class ImageFormat { jpeg, png, webp, bmp, tiff };

std::string_view to_string(ImageFormat format) noexcept;

// The format named by a file's extension (case-insensitive: .jpg .jpeg .png
// .webp .bmp .tif .tiff). Throws Error{unsupported} for anything else.
ImageFormat image_format_from_path(const std::filesystem::path& path);

struct ImageReadOptions {
  // Refuse images with more pixels than this before decoding them (a
  // decompression bomb of 60000x60000 must not allocate 10 GiB).
  int64_t max_pixels = 20000LL * 20000LL;
  // Rotate/flip to the EXIF orientation (JPEG APP1, the TIFF tag, WebP and
  // PNG EXIF chunks).
  bool apply_exif_orientation = true;
};

struct Image {
  at::Tensor rgb;                         // [H, W, 3] uint8, contiguous, CPU
  ImageFormat format = ImageFormat::png;  // what the bytes were
  // The source had one (or two, with alpha) channels, or a BMP palette of greys.
  bool greyscale = false;
  int exif_orientation = 1;  // 1..8 as found (already applied when asked)
};

// Reads an image file; the format comes from the content, not the name.
Image read_image(const std::filesystem::path& path, const ImageReadOptions& options = {});

// Decodes an image held in memory. `name` is used in error messages.
Image decode_image(std::span<const uint8_t> bytes, const std::string& name, const ImageReadOptions& options = {});

struct ImageWriteOptions {
  // JPEG and WebP quality 1..100 (WebP 100 = lossless); PNG ignores it.
  int quality = 92;
};

// Encodes rgb ([H, W, 3] uint8, any device/strides) in the given format.
std::vector<uint8_t> encode_image(const at::Tensor& rgb, ImageFormat format, const ImageWriteOptions& options = {});

// Writes rgb to `path` in the format its extension names, atomically: the
// bytes go to a temporary file in the same directory that is then renamed
// over `path`, so a reader never sees a partial file and a failure leaves any
// previous file untouched.
void write_image(const std::filesystem::path& path, const at::Tensor& rgb, const ImageWriteOptions& options = {});

// Writes bytes to `path` atomically (temporary file + rename). Used for every
// output Visage produces.
void write_file_atomically(const std::filesystem::path& path, std::span<const uint8_t> bytes);

}  // namespace visage
