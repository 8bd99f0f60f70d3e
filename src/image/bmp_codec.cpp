// Windows bitmaps, read and written here (no library): uncompressed 24- and
// 32-bit, 32-bit with BI_BITFIELDS masks, and 1/4/8-bit palettes; bottom-up
// and top-down rows. RLE and 16-bit files are rare enough to be unsupported.
#include <ATen/ATen.h>

#include <array>
#include <bit>
#include <cstring>

#include "image/codecs.hpp"
#include "visage/error.hpp"

namespace visage::image {
namespace {

constexpr size_t kFileHeaderSize = 14;
constexpr uint32_t kBiRgb = 0, kBiBitfields = 3, kBiAlphaBitfields = 6;

uint16_t le16(const uint8_t* p) { return uint16_t(p[0] | p[1] << 8); }
uint32_t le32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
void put16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(uint8_t(v));
  out.push_back(uint8_t(v >> 8));
}
void put32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(uint8_t(v >> (8 * i)));
}

// One channel of a BI_BITFIELDS mask, scaled to 8 bits.
struct Channel {
  int shift = 0;
  int bits = 0;
  explicit Channel(uint32_t mask) {
    if (mask == 0) return;
    shift = std::countr_zero(mask);
    bits = std::popcount(mask);
  }
  uint8_t extract(uint32_t pixel) const {
    if (bits == 0) return 0;
    const uint32_t v = (pixel >> shift) & ((bits >= 32) ? 0xFFFFFFFFu : ((1u << bits) - 1));
    return bits >= 8 ? uint8_t(v >> (bits - 8)) : uint8_t(v * 255 / ((1u << bits) - 1));
  }
};

}  // namespace

DecodedImage decode_bmp(std::span<const uint8_t> bytes, const std::string& name, int64_t max_pixels) {
  if (bytes.size() < kFileHeaderSize + 12) throw_corrupt(name, "truncated BMP header");
  const uint8_t* data = bytes.data();
  const uint32_t pixel_offset = le32(data + 10);
  const uint32_t header_size = le32(data + kFileHeaderSize);
  const bool core = header_size == 12;  // OS/2 BITMAPCOREHEADER: 16-bit sizes, 3-byte palette
  if (!core && header_size < 40) throw_corrupt(name, "unknown BMP header size " + std::to_string(header_size));
  if (bytes.size() < kFileHeaderSize + header_size) throw_corrupt(name, "truncated BMP header");
  const uint8_t* info = data + kFileHeaderSize;

  int64_t width, height;
  uint16_t bits;
  uint32_t compression = kBiRgb, colours_used = 0;
  if (core) {
    width = le16(info + 4);
    height = le16(info + 6);
    bits = le16(info + 10);
  } else {
    width = int32_t(le32(info + 4));
    height = int32_t(le32(info + 8));
    bits = le16(info + 14);
    compression = le32(info + 16);
    colours_used = le32(info + 32);
  }
  const bool top_down = height < 0;
  if (top_down) height = -height;
  check_dimensions(name, width, height, max_pixels);

  if (bits != 1 && bits != 4 && bits != 8 && bits != 24 && bits != 32)
    throw Error(ErrorKind::unsupported, name + ": " + std::to_string(bits) + "-bit BMP is not supported");
  const bool bitfields = compression == kBiBitfields || compression == kBiAlphaBitfields;
  if (!(compression == kBiRgb || (bitfields && bits == 32)))
    throw Error(ErrorKind::unsupported,
                name + ": compressed BMP (compression " + std::to_string(compression) + ") is not supported");

  uint32_t masks[3] = {0x00FF0000u, 0x0000FF00u, 0x000000FFu};
  if (bitfields) {
    // Masks follow a 40-byte header; larger headers hold them at the same place.
    if (bytes.size() < kFileHeaderSize + 40 + 12) throw_corrupt(name, "truncated BMP colour masks");
    for (int c = 0; c < 3; ++c) masks[c] = le32(info + 40 + 4 * c);
  }
  const Channel red(masks[0]), green(masks[1]), blue(masks[2]);

  // The palette follows the header (and the masks of a 40-byte bitfields header).
  std::vector<std::array<uint8_t, 3>> palette;
  bool grey_palette = false;
  if (bits <= 8) {
    const size_t entries = colours_used ? colours_used : (size_t(1) << bits);
    if (entries > 256) throw_corrupt(name, "BMP palette of " + std::to_string(entries) + " colours");
    const size_t entry_size = core ? 3 : 4;
    const size_t start = kFileHeaderSize + header_size;
    if (bytes.size() < start || (bytes.size() - start) / entry_size < entries)
      throw_corrupt(name, "truncated BMP palette");
    palette.resize(entries);
    grey_palette = true;
    for (size_t i = 0; i < entries; ++i) {
      const uint8_t* e = data + start + i * entry_size;
      palette[i] = {e[2], e[1], e[0]};
      grey_palette = grey_palette && e[0] == e[1] && e[1] == e[2];
    }
  }

  const size_t stride = ((size_t(width) * bits + 31) / 32) * 4;
  if (pixel_offset > bytes.size() || (bytes.size() - pixel_offset) / stride < size_t(height))
    throw_corrupt(name, "truncated BMP pixel data");

  at::Tensor rgb = new_rgb(height, width);
  uint8_t* out = rgb.data_ptr<uint8_t>();
  for (int64_t y = 0; y < height; ++y) {
    const uint8_t* row = data + pixel_offset + stride * size_t(top_down ? y : height - 1 - y);
    uint8_t* dst = out + y * width * 3;
    for (int64_t x = 0; x < width; ++x, dst += 3) {
      if (bits == 24) {
        const uint8_t* p = row + x * 3;
        dst[0] = p[2], dst[1] = p[1], dst[2] = p[0];
      } else if (bits == 32) {
        const uint32_t pixel = le32(row + x * 4);
        dst[0] = red.extract(pixel), dst[1] = green.extract(pixel), dst[2] = blue.extract(pixel);
      } else {
        const int64_t bit = x * bits;
        const int index = (row[bit / 8] >> (8 - bits - bit % 8)) & ((1 << bits) - 1);
        if (size_t(index) >= palette.size()) throw_corrupt(name, "BMP palette index out of range");
        std::memcpy(dst, palette[index].data(), 3);
      }
    }
  }
  return {rgb, bits <= 8 && grey_palette, 1};
}

std::vector<uint8_t> encode_bmp(const at::Tensor& rgb) {
  const int64_t height = rgb.size(0), width = rgb.size(1);
  const size_t stride = ((size_t(width) * 24 + 31) / 32) * 4;
  const uint64_t image_size = uint64_t(stride) * uint64_t(height);
  if (width > INT32_MAX || height > INT32_MAX || image_size > UINT32_MAX - 54)
    throw Error(ErrorKind::bad_input,
                "image of " + std::to_string(width) + "x" + std::to_string(height) + " is too large for BMP");
  std::vector<uint8_t> out;
  out.reserve(54 + image_size);
  out.push_back('B');
  out.push_back('M');
  put32(out, uint32_t(54 + image_size));
  put32(out, 0);
  put32(out, 54);
  put32(out, 40);
  put32(out, uint32_t(width));
  put32(out, uint32_t(height));  // positive: bottom-up, what every reader expects
  put16(out, 1);
  put16(out, 24);
  put32(out, kBiRgb);
  put32(out, uint32_t(image_size));
  put32(out, 2835);  // 72 dpi in pixels per metre
  put32(out, 2835);
  put32(out, 0);
  put32(out, 0);
  const uint8_t* src = rgb.data_ptr<uint8_t>();
  for (int64_t y = height - 1; y >= 0; --y) {
    const uint8_t* row = src + y * width * 3;
    for (int64_t x = 0; x < width; ++x) {
      out.push_back(row[x * 3 + 2]);
      out.push_back(row[x * 3 + 1]);
      out.push_back(row[x * 3]);
    }
    out.resize(out.size() + (stride - size_t(width) * 3), 0);
  }
  return out;
}

}  // namespace visage::image
