// One decoder and one encoder per still-image format, behind image.hpp.
//
// Decoders take the whole file in memory and the name to put in messages;
// they throw Error{bad_input} for corrupt, truncated or oversized data
// (checking width * height against max_pixels from the header, before any
// pixel buffer exists) and Error{unsupported} for valid files using features
// Visage does not decode. They return the stored pixels: orientation is
// reported, not applied. Encoders take a contiguous CPU [H, W, 3] uint8
// tensor.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace visage::image {

struct DecodedImage {
  at::Tensor rgb;  // [H, W, 3] uint8, contiguous, CPU, as stored
  bool greyscale = false;
  int orientation = 1;  // EXIF/TIFF orientation tag, 1 when absent
};

DecodedImage decode_jpeg(std::span<const uint8_t> bytes, const std::string& name, int64_t max_pixels);
DecodedImage decode_png(std::span<const uint8_t> bytes, const std::string& name, int64_t max_pixels);
DecodedImage decode_webp(std::span<const uint8_t> bytes, const std::string& name, int64_t max_pixels);
DecodedImage decode_bmp(std::span<const uint8_t> bytes, const std::string& name, int64_t max_pixels);
DecodedImage decode_tiff(std::span<const uint8_t> bytes, const std::string& name, int64_t max_pixels);

std::vector<uint8_t> encode_jpeg(const at::Tensor& rgb, int quality);
std::vector<uint8_t> encode_png(const at::Tensor& rgb);
std::vector<uint8_t> encode_webp(const at::Tensor& rgb, int quality);  // 100: lossless
std::vector<uint8_t> encode_bmp(const at::Tensor& rgb);
std::vector<uint8_t> encode_tiff(const at::Tensor& rgb);

// Throws Error{bad_input} "<name>: <reason>".
[[noreturn]] void throw_corrupt(const std::string& name, const std::string& reason);

// Throws Error{bad_input} unless 0 < width, 0 < height and width * height <=
// max_pixels. Call with the header's dimensions before allocating pixels.
void check_dimensions(const std::string& name, int64_t width, int64_t height, int64_t max_pixels);

// An uninitialised [height, width, 3] uint8 CPU tensor.
at::Tensor new_rgb(int64_t height, int64_t width);

}  // namespace visage::image
