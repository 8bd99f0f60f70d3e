#include "image/exif.hpp"

#include <ATen/ATen.h>

#include <cstring>

namespace visage::image {
namespace {

constexpr uint16_t kOrientationTag = 0x0112;
constexpr uint16_t kTypeShort = 3;

// Bounds-checked reads of a TIFF structure in either byte order.
class TiffReader {
 public:
  TiffReader(std::span<const uint8_t> data, bool little_endian) : data_(data), little_endian_(little_endian) {}

  bool u16(size_t offset, uint16_t& value) const {
    if (offset > data_.size() || data_.size() - offset < 2) return false;
    const uint8_t* p = data_.data() + offset;
    value = little_endian_ ? uint16_t(p[0] | p[1] << 8) : uint16_t(p[0] << 8 | p[1]);
    return true;
  }

  bool u32(size_t offset, uint32_t& value) const {
    if (offset > data_.size() || data_.size() - offset < 4) return false;
    const uint8_t* p = data_.data() + offset;
    value = little_endian_ ? uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24
                           : uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
    return true;
  }

 private:
  std::span<const uint8_t> data_;
  bool little_endian_;
};

}  // namespace

int exif_orientation(std::span<const uint8_t> exif) {
  static constexpr uint8_t kExifId[6] = {'E', 'x', 'i', 'f', 0, 0};
  if (exif.size() >= 6 && std::memcmp(exif.data(), kExifId, 6) == 0) exif = exif.subspan(6);
  if (exif.size() < 8) return 1;
  bool little_endian;
  if (exif[0] == 'I' && exif[1] == 'I') {
    little_endian = true;
  } else if (exif[0] == 'M' && exif[1] == 'M') {
    little_endian = false;
  } else {
    return 1;
  }
  const TiffReader tiff(exif, little_endian);
  uint16_t magic = 0;
  uint32_t ifd0 = 0;
  if (!tiff.u16(2, magic) || magic != 42 || !tiff.u32(4, ifd0)) return 1;
  uint16_t entries = 0;
  if (!tiff.u16(ifd0, entries)) return 1;
  for (uint32_t i = 0; i < entries; ++i) {
    const size_t entry = size_t(ifd0) + 2 + size_t(i) * 12;
    uint16_t tag = 0, type = 0, value = 0;
    uint32_t count = 0;
    if (!tiff.u16(entry, tag) || !tiff.u16(entry + 2, type) || !tiff.u32(entry + 4, count)) return 1;
    if (tag != kOrientationTag) continue;
    // A SHORT with count 1 sits left-justified in the 4-byte value field.
    if (type != kTypeShort || count != 1 || !tiff.u16(entry + 8, value)) return 1;
    return value >= 1 && value <= 8 ? value : 1;
  }
  return 1;
}

at::Tensor apply_exif_orientation(const at::Tensor& rgb, int orientation) {
  switch (orientation) {
    case 2: return rgb.flip({1}).contiguous();                     // mirrored left-right
    case 3: return rgb.flip({0, 1}).contiguous();                  // rotated 180
    case 4: return rgb.flip({0}).contiguous();                     // mirrored top-bottom
    case 5: return rgb.transpose(0, 1).contiguous();               // mirrored along the main diagonal
    case 6: return rgb.transpose(0, 1).flip({1}).contiguous();     // needs 90 degrees clockwise
    case 7: return rgb.transpose(0, 1).flip({0, 1}).contiguous();  // mirrored along the anti-diagonal
    case 8: return rgb.transpose(0, 1).flip({0}).contiguous();     // needs 90 degrees counter-clockwise
    default: return rgb.contiguous();
  }
}

}  // namespace visage::image
