// Still-image I/O and drawing on real photos: Debian's grace_hopper.jpg and
// the face-api sample photos. Reference decoder: stb_image (Debian libstb-dev),
// an implementation independent of the libraries Visage uses.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <png.h>
#include <tiffio.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

// jpeglib.h needs size_t and FILE declared first.
#include <jpeglib.h>

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include "image/codecs.hpp"
#include "image/draw.hpp"
#include "image/exif.hpp"
#include "test_support.hpp"
#include "visage/image.hpp"
#include "visage/runtime.hpp"

namespace fs = std::filesystem;
using visage::Error;
using visage::ErrorKind;
using visage::ImageFormat;

namespace {

const fs::path kGraceHopper = "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg";

#define REQUIRE_GRACE_HOPPER() \
  if (!fs::exists(kGraceHopper)) GTEST_SKIP() << kGraceHopper << " is missing (Debian python-matplotlib-data)"

std::vector<uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write_bytes(const fs::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

// stb_image's decoding of a file, as [H, W, 3] uint8.
at::Tensor stb_decode(const std::vector<uint8_t>& bytes) {
  int width = 0, height = 0, channels = 0;
  stbi_uc* pixels = stbi_load_from_memory(bytes.data(), int(bytes.size()), &width, &height, &channels, 3);
  if (!pixels) return {};
  at::Tensor out = at::from_blob(pixels, {height, width, 3}, at::kByte).clone();
  stbi_image_free(pixels);
  return out;
}

// A plain loop: ATen temporaries of full-size photos cost more page faults
// than the decoding itself.
double mean_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  if (a.sizes() != b.sizes()) {
    ADD_FAILURE() << "sizes differ: " << a.sizes() << " vs " << b.sizes();
    return 1e9;
  }
  const at::Tensor ca = a.contiguous(), cb = b.contiguous();
  const uint8_t *pa = ca.data_ptr<uint8_t>(), *pb = cb.data_ptr<uint8_t>();
  uint64_t sum = 0;
  for (int64_t i = 0; i < ca.numel(); ++i) sum += uint64_t(std::abs(int(pa[i]) - int(pb[i])));
  return double(sum) / double(std::max<int64_t>(ca.numel(), 1));
}

// A per-test scratch directory, removed afterwards.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() / ("visage-image-test-" + std::to_string(::getpid()) + "-" + info->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  std::set<std::string> listing() const {
    std::set<std::string> names;
    for (const auto& entry : fs::directory_iterator(path_)) names.insert(entry.path().filename().string());
    return names;
  }

 private:
  fs::path path_;
};

using visage::test::expect_error;

// A crop of Grace Hopper's photo that keeps the tests fast and is not square,
// so a transpose cannot pass for a flip.
at::Tensor small_photo() {
  static const at::Tensor crop = visage::read_image(kGraceHopper).rgb.slice(0, 100, 196).slice(1, 150, 278).clone();
  return crop;
}

// The upright display of stored pixels by the EXIF definition of each
// orientation: where stored (row r, column c) appears. Written from the
// specification's table, independently of the library's tensor operations.
at::Tensor orient_by_definition(const at::Tensor& stored, int orientation) {
  const int64_t h = stored.size(0), w = stored.size(1);
  const bool swap = orientation >= 5;
  at::Tensor out = at::zeros({swap ? w : h, swap ? h : w, 3}, at::kByte);
  auto in_a = stored.accessor<uint8_t, 3>();
  auto out_a = out.accessor<uint8_t, 3>();
  for (int64_t r = 0; r < h; ++r) {
    for (int64_t c = 0; c < w; ++c) {
      int64_t y = r, x = c;
      switch (orientation) {
        case 2: x = w - 1 - c; break;
        case 3: y = h - 1 - r, x = w - 1 - c; break;
        case 4: y = h - 1 - r; break;
        case 5: y = c, x = r; break;
        case 6: y = c, x = h - 1 - r; break;
        case 7: y = w - 1 - c, x = h - 1 - r; break;
        case 8: y = w - 1 - c, x = r; break;
        default: break;
      }
      for (int k = 0; k < 3; ++k) out_a[y][x][k] = in_a[r][c][k];
    }
  }
  return out;
}

// An EXIF block (TIFF structure) whose IFD0 holds a few tags and the orientation.
std::vector<uint8_t> exif_block(int orientation, bool little_endian, bool with_prefix) {
  std::vector<uint8_t> out;
  if (with_prefix) out = {'E', 'x', 'i', 'f', 0, 0};
  auto u16 = [&](uint16_t v) {
    if (little_endian) {
      out.push_back(uint8_t(v)), out.push_back(uint8_t(v >> 8));
    } else {
      out.push_back(uint8_t(v >> 8)), out.push_back(uint8_t(v));
    }
  };
  auto u32 = [&](uint32_t v) {
    if (little_endian) {
      u16(uint16_t(v)), u16(uint16_t(v >> 16));
    } else {
      u16(uint16_t(v >> 16)), u16(uint16_t(v));
    }
  };
  out.push_back(little_endian ? 'I' : 'M');
  out.push_back(little_endian ? 'I' : 'M');
  u16(42);
  u32(8);
  u16(3);                                 // entries: XResolution-like LONG, Orientation, ResolutionUnit
  u16(0x0100), u16(4), u32(1), u32(128);  // ImageWidth
  u16(0x0112), u16(3), u32(1), u16(uint16_t(orientation)), u16(0);
  u16(0x0128), u16(3), u32(1), u16(2), u16(0);  // ResolutionUnit
  u32(0);                                       // no IFD1
  return out;
}

// `jpeg` with an APP1 segment holding `payload` right after SOI.
std::vector<uint8_t> with_app1(const std::vector<uint8_t>& jpeg, const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> out(jpeg.begin(), jpeg.begin() + 2);
  const size_t length = payload.size() + 2;
  out.insert(out.end(), {0xFF, 0xE1, uint8_t(length >> 8), uint8_t(length)});
  out.insert(out.end(), payload.begin(), payload.end());
  out.insert(out.end(), jpeg.begin() + 2, jpeg.end());
  return out;
}

// A greyscale JPEG written with libjpeg directly (Visage only writes RGB).
std::vector<uint8_t> grey_jpeg(const at::Tensor& grey) {
  jpeg_compress_struct info{};
  jpeg_error_mgr errors{};
  info.err = jpeg_std_error(&errors);
  jpeg_create_compress(&info);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&info, &buffer, &size);
  info.image_width = JDIMENSION(grey.size(1));
  info.image_height = JDIMENSION(grey.size(0));
  info.input_components = 1;
  info.in_color_space = JCS_GRAYSCALE;
  jpeg_set_defaults(&info);
  jpeg_set_quality(&info, 95, TRUE);
  jpeg_start_compress(&info, TRUE);
  while (info.next_scanline < info.image_height) {
    JSAMPROW row = grey.data_ptr<uint8_t>() + size_t(info.next_scanline) * size_t(grey.size(1));
    jpeg_write_scanlines(&info, &row, 1);
  }
  jpeg_finish_compress(&info);
  jpeg_destroy_compress(&info);
  std::vector<uint8_t> out(buffer, buffer + size);
  free(buffer);
  return out;
}

// A PNG written with libpng directly: greyscale 8-bit or RGB 16-bit.
std::vector<uint8_t> png_with(const at::Tensor& pixels, int colour_type, int bit_depth) {
  std::vector<uint8_t> out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_set_write_fn(
      png, &out,
      [](png_structp p, png_bytep data, png_size_t n) {
        auto* o = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(p));
        o->insert(o->end(), data, data + n);
      },
      nullptr);
  png_set_IHDR(png, info, png_uint_32(pixels.size(1)), png_uint_32(pixels.size(0)), bit_depth, colour_type,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  const size_t row_bytes = size_t(pixels.stride(0)) * pixels.element_size();
  for (int64_t y = 0; y < pixels.size(0); ++y)
    png_write_row(png, static_cast<png_const_bytep>(pixels.data_ptr()) + size_t(y) * row_bytes);
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return out;
}

uint32_t crc32_of(const uint8_t* data, size_t size) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
  }
  return ~crc;
}

void put_be32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24), p[1] = uint8_t(v >> 16), p[2] = uint8_t(v >> 8), p[3] = uint8_t(v);
}
void put_le32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v), p[1] = uint8_t(v >> 8), p[2] = uint8_t(v >> 16), p[3] = uint8_t(v >> 24);
}

}  // namespace

TEST(ImageRead, GraceHopperJpeg) {
  REQUIRE_GRACE_HOPPER();
  const visage::Image image = visage::read_image(kGraceHopper);
  EXPECT_EQ(image.format, ImageFormat::jpeg);
  ASSERT_EQ(image.rgb.sizes(), (at::IntArrayRef{600, 512, 3}));
  EXPECT_EQ(image.rgb.scalar_type(), at::kByte);
  EXPECT_TRUE(image.rgb.is_contiguous());
  EXPECT_FALSE(image.greyscale);
  EXPECT_EQ(image.exif_orientation, 1);
  // A colour photo: channels differ and the picture has contrast.
  const at::Tensor f = image.rgb.to(at::kFloat);
  EXPECT_GT((f.select(2, 0) - f.select(2, 2)).abs().mean().item<float>(), 5.0f);
  EXPECT_GT(f.std().item<float>(), 30.0f);
  // Same pixels as an independent decoder, up to IDCT rounding.
  const at::Tensor reference = stb_decode(read_bytes(kGraceHopper));
  ASSERT_TRUE(reference.defined());
  EXPECT_LT(mean_abs_diff(image.rgb, reference), 1.0);
}

TEST(ImageRead, FaceApiSamplePhotos) {
  const fs::path npm = visage::model_package_dir();
  const fs::path demo = npm / "@vladmandic/face-api/demo";
  if (npm.empty() || !fs::is_directory(demo)) GTEST_SKIP() << "face-api demo photos not installed (" << demo << ")";
  // Sizes as their JPEG headers state (`file`); sample6 is a big-endian EXIF from a phone.
  const std::vector<std::pair<std::string, std::array<int64_t, 2>>> photos = {
      {"sample1.jpg", {1280, 1920}}, {"sample2.jpg", {1367, 1920}}, {"sample6.jpg", {1537, 1920}}};
  for (const auto& [name, size] : photos) {
    const std::vector<uint8_t> bytes = read_bytes(demo / name);
    const visage::Image image = visage::decode_image(bytes, name);
    EXPECT_EQ(image.rgb.size(0), size[0]) << name;
    EXPECT_EQ(image.rgb.size(1), size[1]) << name;
    EXPECT_EQ(image.exif_orientation, 1) << name;
    EXPECT_LT(mean_abs_diff(image.rgb, stb_decode(bytes)), 1.0) << name;
  }
  // An 8-bit palette PNG: exact against the reference.
  const std::vector<uint8_t> palette_png = read_bytes(demo / "screenshot-webcam.png");
  const visage::Image screenshot = visage::decode_image(palette_png, "screenshot-webcam.png");
  EXPECT_EQ(screenshot.format, ImageFormat::png);
  EXPECT_FALSE(screenshot.greyscale);
  EXPECT_TRUE(screenshot.rgb.equal(stb_decode(palette_png)));
}

TEST(ImageWrite, RoundTripEveryFormat) {
  REQUIRE_GRACE_HOPPER();
  const at::Tensor photo = small_photo();
  TempDir dir;
  struct Case {
    std::string file;
    int quality;
    double max_mean_abs_diff;  // 0: lossless
  };
  const std::vector<Case> cases = {{"a.png", 92, 0},   {"a.bmp", 92, 0},  {"a.tiff", 92, 0}, {"a.webp", 100, 0},
                                   {"a.jpg", 92, 2.5}, {"a.JPEG", 50, 5}, {"a.webp", 80, 5}, {"a.tif", 92, 0}};
  for (const Case& c : cases) {
    const fs::path path = dir.path() / c.file;
    visage::write_image(path, photo, {.quality = c.quality});
    const visage::Image back = visage::read_image(path);
    EXPECT_EQ(back.format, visage::image_format_from_path(path)) << c.file;
    ASSERT_EQ(back.rgb.sizes(), photo.sizes()) << c.file;
    EXPECT_FALSE(back.greyscale) << c.file;
    const double diff = mean_abs_diff(back.rgb, photo);
    if (c.max_mean_abs_diff == 0) {
      EXPECT_TRUE(back.rgb.equal(photo)) << c.file << " mean abs diff " << diff;
    } else {
      EXPECT_LT(diff, c.max_mean_abs_diff) << c.file << " q" << c.quality;
      EXPECT_GT(diff, 0.0) << c.file << " lossy encoding that changes nothing is suspicious";
    }
  }
  EXPECT_EQ(dir.listing().size(), 7u) << "one file per name, no temporaries left";
  // Independent decoders agree with what we wrote.
  EXPECT_TRUE(stb_decode(read_bytes(dir.path() / "a.png")).equal(photo));
  EXPECT_TRUE(stb_decode(read_bytes(dir.path() / "a.bmp")).equal(photo));
  // Higher JPEG quality is closer.
  const auto q95 = visage::decode_image(visage::encode_image(photo, ImageFormat::jpeg, {.quality = 95}), "q95");
  const auto q30 = visage::decode_image(visage::encode_image(photo, ImageFormat::jpeg, {.quality = 30}), "q30");
  EXPECT_LT(mean_abs_diff(q95.rgb, photo), mean_abs_diff(q30.rgb, photo));
}

TEST(ImageWrite, AcceptsStridedTensorsAndRejectsWrongOnes) {
  REQUIRE_GRACE_HOPPER();
  const at::Tensor photo = small_photo();
  const at::Tensor transposed = photo.transpose(0, 1);  // not contiguous
  const auto back = visage::decode_image(visage::encode_image(transposed, ImageFormat::png), "t.png");
  EXPECT_TRUE(back.rgb.equal(transposed.contiguous()));
  EXPECT_EQ(expect_error([&] { visage::encode_image(photo.to(at::kFloat), ImageFormat::png); }).kind(),
            ErrorKind::bad_input);
  EXPECT_EQ(expect_error([&] { visage::encode_image(photo.slice(2, 0, 1), ImageFormat::png); }).kind(),
            ErrorKind::bad_input);
  EXPECT_EQ(expect_error([&] { visage::encode_image(photo, ImageFormat::jpeg, {.quality = 0}); }).kind(),
            ErrorKind::bad_input);
}

TEST(ImageRead, ExifOrientationInJpeg) {
  REQUIRE_GRACE_HOPPER();
  const at::Tensor photo = small_photo();
  const std::vector<uint8_t> plain = visage::encode_image(photo, ImageFormat::jpeg, {.quality = 95});
  const at::Tensor stored = visage::decode_image(plain, "plain.jpg").rgb;
  for (int orientation = 1; orientation <= 8; ++orientation) {
    const bool little_endian = orientation % 2 == 0;
    const auto jpeg = with_app1(plain, exif_block(orientation, little_endian, /*with_prefix=*/true));
    const std::string name = "orientation-" + std::to_string(orientation) + ".jpg";
    const visage::Image upright = visage::decode_image(jpeg, name);
    EXPECT_EQ(upright.exif_orientation, orientation) << name;
    EXPECT_TRUE(upright.rgb.is_contiguous()) << name;
    EXPECT_TRUE(upright.rgb.equal(orient_by_definition(stored, orientation))) << name;
    const visage::Image as_stored = visage::decode_image(jpeg, name, {.apply_exif_orientation = false});
    EXPECT_EQ(as_stored.exif_orientation, orientation) << name;
    EXPECT_TRUE(as_stored.rgb.equal(stored)) << name;
  }
}

TEST(ImageRead, DamagedExifIsIgnored) {
  REQUIRE_GRACE_HOPPER();
  const std::vector<uint8_t> plain = visage::encode_image(small_photo(), ImageFormat::jpeg);
  std::vector<std::vector<uint8_t>> payloads;
  payloads.push_back({'E', 'x', 'i', 'f', 0, 0});                                           // nothing after the id
  payloads.push_back({'E', 'x', 'i', 'f', 0, 0, 'I', 'I', 42, 0, 0xFF, 0xFF, 0xFF, 0x7F});  // IFD0 far out
  auto block = exif_block(6, true, true);
  block[6 + 8] = 0xFF, block[6 + 9] = 0xFF;  // 65535 entries claimed, running past the end,
  block[6 + 10 + 12] = 0x13;                 // and no orientation among those present
  payloads.push_back(block);
  block = exif_block(6, false, true);
  block.resize(block.size() - 20);  // cut inside the orientation entry's neighbours
  payloads.push_back(block);
  block = exif_block(9, true, true);  // out of range
  payloads.push_back(block);
  for (size_t i = 0; i < payloads.size(); ++i) {
    const visage::Image image = visage::decode_image(with_app1(plain, payloads[i]), "damaged-exif.jpg");
    EXPECT_EQ(image.exif_orientation, 1) << "payload " << i;
    EXPECT_EQ(image.rgb.size(0), 96) << "payload " << i;
  }
  // The parser alone, on every prefix of a valid block: never out of bounds (ASan builds check).
  const auto valid = exif_block(8, false, false);
  for (size_t n = 0; n < valid.size(); ++n) {
    const int value = visage::image::exif_orientation({valid.data(), n});
    EXPECT_TRUE(value == 1 || value == 8);
  }
  EXPECT_EQ(visage::image::exif_orientation(valid), 8);
}

TEST(ImageRead, OrientationInTiffAndWebp) {
  REQUIRE_GRACE_HOPPER();
  const at::Tensor photo = small_photo();
  TempDir dir;
  for (int orientation = 1; orientation <= 8; ++orientation) {
    // TIFF written by libtiff with the orientation tag.
    const fs::path path = dir.path() / (std::to_string(orientation) + ".tif");
    TIFF* tiff = TIFFOpen(path.c_str(), "w");
    ASSERT_NE(tiff, nullptr);
    TIFFSetField(tiff, TIFFTAG_IMAGEWIDTH, uint32_t(photo.size(1)));
    TIFFSetField(tiff, TIFFTAG_IMAGELENGTH, uint32_t(photo.size(0)));
    TIFFSetField(tiff, TIFFTAG_SAMPLESPERPIXEL, uint16_t(3));
    TIFFSetField(tiff, TIFFTAG_BITSPERSAMPLE, uint16_t(8));
    TIFFSetField(tiff, TIFFTAG_PLANARCONFIG, uint16_t(PLANARCONFIG_CONTIG));
    TIFFSetField(tiff, TIFFTAG_PHOTOMETRIC, uint16_t(PHOTOMETRIC_RGB));
    TIFFSetField(tiff, TIFFTAG_ORIENTATION, uint16_t(orientation));
    TIFFSetField(tiff, TIFFTAG_ROWSPERSTRIP, uint32_t(16));
    std::vector<uint8_t> row(size_t(photo.size(1)) * 3);
    for (uint32_t y = 0; y < uint32_t(photo.size(0)); ++y) {
      std::memcpy(row.data(), photo.data_ptr<uint8_t>() + y * row.size(), row.size());
      ASSERT_GE(TIFFWriteScanline(tiff, row.data(), y, 0), 0);
    }
    TIFFClose(tiff);
    const visage::Image image = visage::read_image(path);
    EXPECT_EQ(image.format, ImageFormat::tiff);
    EXPECT_EQ(image.exif_orientation, orientation);
    EXPECT_TRUE(image.rgb.equal(orient_by_definition(photo, orientation))) << path;
  }

  // WebP: a VP8X container around a lossless bitstream, with an EXIF chunk.
  const std::vector<uint8_t> simple = visage::encode_image(photo, ImageFormat::webp, {.quality = 100});
  ASSERT_EQ(std::memcmp(simple.data() + 12, "VP8L", 4), 0);
  const std::vector<uint8_t> bitstream(simple.begin() + 12, simple.end());  // the VP8L chunk
  for (const int orientation : {3, 6, 8}) {
    std::vector<uint8_t> exif = exif_block(orientation, orientation != 6, /*with_prefix=*/false);
    if (exif.size() % 2) exif.push_back(0);
    std::vector<uint8_t> file = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', 'X', 10, 0, 0, 0};
    const uint32_t w = uint32_t(photo.size(1)) - 1, h = uint32_t(photo.size(0)) - 1;
    file.insert(file.end(), {0x08, 0, 0, 0, uint8_t(w), uint8_t(w >> 8), uint8_t(w >> 16), uint8_t(h), uint8_t(h >> 8),
                             uint8_t(h >> 16)});  // flags: EXIF
    file.insert(file.end(), bitstream.begin(), bitstream.end());
    file.insert(file.end(), {'E', 'X', 'I', 'F', 0, 0, 0, 0});
    put_le32(file.data() + file.size() - 4, uint32_t(exif.size()));
    file.insert(file.end(), exif.begin(), exif.end());
    put_le32(file.data() + 4, uint32_t(file.size() - 8));
    const visage::Image image = visage::decode_image(file, "exif.webp");
    EXPECT_EQ(image.exif_orientation, orientation);
    EXPECT_TRUE(image.rgb.equal(orient_by_definition(photo, orientation))) << "webp " << orientation;
  }
}

TEST(ImageRead, GreyscaleSources) {
  REQUIRE_GRACE_HOPPER();
  const at::Tensor photo = small_photo();
  const at::Tensor grey = photo.to(at::kFloat).mean(2).round().to(at::kByte).contiguous();

  const visage::Image from_jpeg = visage::decode_image(grey_jpeg(grey), "grey.jpg");
  EXPECT_TRUE(from_jpeg.greyscale);
  EXPECT_TRUE(from_jpeg.rgb.select(2, 0).equal(from_jpeg.rgb.select(2, 1)));
  EXPECT_TRUE(from_jpeg.rgb.select(2, 1).equal(from_jpeg.rgb.select(2, 2)));
  EXPECT_LT(mean_abs_diff(from_jpeg.rgb.select(2, 0), grey), 2.0);

  const visage::Image from_png = visage::decode_image(png_with(grey, PNG_COLOR_TYPE_GRAY, 8), "grey.png");
  EXPECT_TRUE(from_png.greyscale);
  for (int c = 0; c < 3; ++c) EXPECT_TRUE(from_png.rgb.select(2, c).equal(grey));

  // 16-bit RGB PNG (big-endian samples v * 257) reads as the 8-bit values.
  const at::Tensor wide = photo.to(at::kInt) * 257;
  const at::Tensor be16 = at::stack({wide.div(256, "floor"), wide.remainder(256)}, 3).to(at::kByte).contiguous();
  const visage::Image from_png16 =
      visage::decode_image(png_with(be16.view({photo.size(0), photo.size(1), 6}), PNG_COLOR_TYPE_RGB, 16), "rgb16.png");
  EXPECT_FALSE(from_png16.greyscale);
  EXPECT_TRUE(from_png16.rgb.equal(photo));

  // 8-bit palette BMP with a grey ramp: greyscale, exact.
  const int64_t h = grey.size(0), w = grey.size(1), stride = (w + 3) / 4 * 4;
  std::vector<uint8_t> bmp(14 + 40 + 1024 + size_t(stride * h), 0);
  bmp[0] = 'B', bmp[1] = 'M';
  put_le32(&bmp[2], uint32_t(bmp.size()));
  put_le32(&bmp[10], 14 + 40 + 1024);
  put_le32(&bmp[14], 40);
  put_le32(&bmp[18], uint32_t(w));
  put_le32(&bmp[22], uint32_t(h));  // bottom-up
  bmp[26] = 1, bmp[28] = 8;
  for (int i = 0; i < 256; ++i) bmp[54 + 4 * i] = bmp[55 + 4 * i] = bmp[56 + 4 * i] = uint8_t(i);
  for (int64_t y = 0; y < h; ++y)
    std::memcpy(&bmp[size_t(14 + 40 + 1024 + (h - 1 - y) * stride)], grey.data_ptr<uint8_t>() + y * w, size_t(w));
  const visage::Image from_bmp = visage::decode_image(bmp, "grey.bmp");
  EXPECT_TRUE(from_bmp.greyscale);
  EXPECT_TRUE(from_bmp.rgb.select(2, 1).equal(grey));
  EXPECT_TRUE(stb_decode(bmp).equal(from_bmp.rgb));
}

TEST(ImageRead, TopDownAndThirtyTwoBitBmp) {
  REQUIRE_GRACE_HOPPER();
  const at::Tensor photo = small_photo();
  const int64_t h = photo.size(0), w = photo.size(1);
  std::vector<uint8_t> bmp(14 + 40 + size_t(w * h * 4), 0);
  bmp[0] = 'B', bmp[1] = 'M';
  put_le32(&bmp[2], uint32_t(bmp.size()));
  put_le32(&bmp[10], 54);
  put_le32(&bmp[14], 40);
  put_le32(&bmp[18], uint32_t(w));
  put_le32(&bmp[22], uint32_t(-h));  // negative height: top-down rows
  bmp[26] = 1, bmp[28] = 32;
  auto a = photo.accessor<uint8_t, 3>();
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      uint8_t* p = &bmp[size_t(54 + (y * w + x) * 4)];
      p[0] = a[y][x][2], p[1] = a[y][x][1], p[2] = a[y][x][0], p[3] = 0x80;
    }
  const visage::Image image = visage::decode_image(bmp, "top-down.bmp");
  EXPECT_FALSE(image.greyscale);
  EXPECT_TRUE(image.rgb.equal(photo));
}

TEST(ImageRead, TruncatedFilesAreBadInput) {
  REQUIRE_GRACE_HOPPER();
  const at::Tensor photo = small_photo();
  for (const auto& [format, quality] : std::vector<std::pair<ImageFormat, int>>{{ImageFormat::jpeg, 90},
                                                                                {ImageFormat::png, 90},
                                                                                {ImageFormat::webp, 80},
                                                                                {ImageFormat::webp, 100},
                                                                                {ImageFormat::bmp, 90},
                                                                                {ImageFormat::tiff, 90}}) {
    const std::vector<uint8_t> whole = visage::encode_image(photo, format, {.quality = quality});
    for (const double keep : {0.3, 0.7, 0.95}) {
      const std::vector<uint8_t> cut(whole.begin(), whole.begin() + ptrdiff_t(double(whole.size()) * keep));
      const std::string name = "cut." + std::string(visage::to_string(format));
      const Error e = expect_error([&] { visage::decode_image(cut, name); });
      EXPECT_EQ(e.kind(), ErrorKind::bad_input) << name << " keep " << keep << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  }
  // A JPEG missing only its final EOI marker lost no pixel: it decodes, like in viewers.
  const std::vector<uint8_t> jpeg = visage::encode_image(photo, ImageFormat::jpeg);
  ASSERT_EQ(jpeg[jpeg.size() - 2], 0xFF);
  ASSERT_EQ(jpeg[jpeg.size() - 1], 0xD9);
  const std::vector<uint8_t> no_eoi(jpeg.begin(), jpeg.end() - 2);
  EXPECT_TRUE(visage::decode_image(no_eoi, "no-eoi.jpg").rgb.equal(visage::decode_image(jpeg, "whole.jpg").rgb));

  // Real photo files cut short too.
  const std::vector<uint8_t> grace = read_bytes(kGraceHopper);
  const std::vector<uint8_t> cut(grace.begin(), grace.begin() + ptrdiff_t(grace.size() / 2));
  const Error e = expect_error([&] { visage::decode_image(cut, "grace_hopper_half.jpg"); });
  EXPECT_EQ(e.kind(), ErrorKind::bad_input);
  EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
}

TEST(ImageRead, GarbageMissingAndEmpty) {
  std::vector<uint8_t> garbage(4096);
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = uint8_t((i * 2654435761u) >> 13);
  EXPECT_EQ(expect_error([&] { visage::decode_image(garbage, "noise.png"); }).kind(), ErrorKind::unsupported);
  const std::vector<uint8_t> gif = {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0, 0, 0};
  EXPECT_EQ(expect_error([&] { visage::decode_image(gif, "a.gif"); }).kind(), ErrorKind::unsupported);
  EXPECT_EQ(expect_error([&] { visage::decode_image({}, "empty.jpg"); }).kind(), ErrorKind::bad_input);
  // Right signature, garbage after it.
  std::vector<uint8_t> fake_jpeg = garbage;
  fake_jpeg[0] = 0xFF, fake_jpeg[1] = 0xD8, fake_jpeg[2] = 0xFF;
  EXPECT_EQ(expect_error([&] { visage::decode_image(fake_jpeg, "fake.jpg"); }).kind(), ErrorKind::bad_input);
  std::vector<uint8_t> fake_tiff = garbage;
  std::memcpy(fake_tiff.data(), "II*\0", 4);
  EXPECT_EQ(expect_error([&] { visage::decode_image(fake_tiff, "fake.tif"); }).kind(), ErrorKind::bad_input);

  const Error missing = expect_error([] { visage::read_image("/nonexistent/visage/photo.jpg"); });
  EXPECT_EQ(missing.kind(), ErrorKind::io);
  EXPECT_NE(std::string(missing.what()).find("/nonexistent/visage/photo.jpg"), std::string::npos);
  EXPECT_EQ(expect_error([] { visage::read_image("/tmp"); }).kind(), ErrorKind::io);
}

TEST(ImageRead, HugeDimensionsAreRefusedBeforeDecoding) {
  REQUIRE_GRACE_HOPPER();
  // BMP header claiming 100000 x 100000 (30 GB of pixels), with no pixel data.
  std::vector<uint8_t> bmp(54, 0);
  bmp[0] = 'B', bmp[1] = 'M';
  put_le32(&bmp[10], 54);
  put_le32(&bmp[14], 40);
  put_le32(&bmp[18], 100000);
  put_le32(&bmp[22], 100000);
  bmp[26] = 1, bmp[28] = 24;
  Error e = expect_error([&] { visage::decode_image(bmp, "bomb.bmp"); });
  EXPECT_EQ(e.kind(), ErrorKind::bad_input);
  EXPECT_NE(std::string(e.what()).find("too large"), std::string::npos) << e.what();

  // A real PNG whose IHDR is rewritten to 100000 x 100000 (with a valid CRC).
  std::vector<uint8_t> png = visage::encode_image(small_photo(), ImageFormat::png);
  put_be32(&png[16], 100000);
  put_be32(&png[20], 100000);
  put_be32(&png[29], crc32_of(&png[12], 17));
  e = expect_error([&] { visage::decode_image(png, "bomb.png"); });
  EXPECT_EQ(e.kind(), ErrorKind::bad_input);
  EXPECT_NE(std::string(e.what()).find("too large"), std::string::npos) << e.what();

  // Grace Hopper's JPEG with its frame header claiming 65000 x 65000.
  std::vector<uint8_t> jpeg = read_bytes(kGraceHopper);
  size_t sof = 2;
  while (sof + 4 < jpeg.size() && !(jpeg[sof] == 0xFF && (jpeg[sof + 1] == 0xC0 || jpeg[sof + 1] == 0xC2)))
    sof += 2 + (size_t(jpeg[sof + 2]) << 8 | jpeg[sof + 3]);
  ASSERT_LT(sof + 9, jpeg.size());
  jpeg[sof + 5] = 0xFD, jpeg[sof + 6] = 0xE8, jpeg[sof + 7] = 0xFD, jpeg[sof + 8] = 0xE8;
  e = expect_error([&] { visage::decode_image(jpeg, "bomb.jpg"); });
  EXPECT_EQ(e.kind(), ErrorKind::bad_input);
  EXPECT_NE(std::string(e.what()).find("too large"), std::string::npos) << e.what();

  // The caller's own limit.
  e = expect_error([] { visage::read_image(kGraceHopper, {.max_pixels = 512 * 599}); });
  EXPECT_EQ(e.kind(), ErrorKind::bad_input);
  EXPECT_EQ(visage::read_image(kGraceHopper, {.max_pixels = 512 * 600}).rgb.size(0), 600);
}

TEST(ImageWrite, MissingDirectoryIsIoAndLeavesNothing) {
  REQUIRE_GRACE_HOPPER();
  TempDir dir;
  const fs::path target = dir.path() / "no-such-dir" / "out.png";
  const Error e = expect_error([&] { visage::write_image(target, small_photo()); });
  EXPECT_EQ(e.kind(), ErrorKind::io);
  EXPECT_NE(std::string(e.what()).find(target.string()), std::string::npos) << e.what();
  EXPECT_TRUE(dir.listing().empty());

  // rename onto a directory fails after the temporary file was written: it is removed.
  fs::create_directory(dir.path() / "taken.png");
  EXPECT_EQ(expect_error([&] { visage::write_image(dir.path() / "taken.png", small_photo()); }).kind(), ErrorKind::io);
  EXPECT_EQ(dir.listing(), std::set<std::string>{"taken.png"});
}

TEST(ImageWrite, FailedWriteKeepsTheOldFile) {
  REQUIRE_GRACE_HOPPER();
  TempDir dir;
  const std::vector<uint8_t> old_bytes = {'o', 'l', 'd'};
  write_bytes(dir.path() / "photo.gif", old_bytes);
  EXPECT_EQ(expect_error([&] { visage::write_image(dir.path() / "photo.gif", small_photo()); }).kind(),
            ErrorKind::unsupported);
  EXPECT_EQ(read_bytes(dir.path() / "photo.gif"), old_bytes);

  write_bytes(dir.path() / "photo.png", old_bytes);
  fs::permissions(dir.path() / "photo.png", fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  EXPECT_EQ(expect_error([&] {
              visage::write_image(dir.path() / "photo.png", at::zeros({4, 4}, at::kByte));
            }).kind(),
            ErrorKind::bad_input);
  EXPECT_EQ(read_bytes(dir.path() / "photo.png"), old_bytes);
  EXPECT_EQ(dir.listing(), (std::set<std::string>{"photo.gif", "photo.png"}));

  // A successful write replaces the content and keeps the permissions.
  visage::write_image(dir.path() / "photo.png", small_photo());
  EXPECT_TRUE(visage::read_image(dir.path() / "photo.png").rgb.equal(small_photo()));
  EXPECT_EQ(fs::status(dir.path() / "photo.png").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  EXPECT_EQ(dir.listing().size(), 2u);

  // write_file_atomically on its own.
  const std::vector<uint8_t> text = {'h', 'i', '\n'};
  visage::write_file_atomically(dir.path() / "note.txt", text);
  EXPECT_EQ(read_bytes(dir.path() / "note.txt"), text);
  EXPECT_EQ(expect_error([&] { visage::write_file_atomically(dir.path() / "", text); }).kind(), ErrorKind::io);
}

// ---- drawing -------------------------------------------------------------

namespace {

using visage::image::PointF;
using visage::image::Rgb;

// An image with a guard row above and below; the drawing view is the middle,
// contiguous, so a write past either end lands in a guard row.
struct GuardedImage {
  at::Tensor storage;
  at::Tensor view;
  GuardedImage(int64_t h, int64_t w) : storage(at::zeros({h + 2, w, 3}, at::kByte)) {
    view = storage.slice(0, 1, h + 1);
  }
  bool guards_clean() const {
    return storage.select(0, 0).count_nonzero().item<int64_t>() == 0 &&
           storage.select(0, storage.size(0) - 1).count_nonzero().item<int64_t>() == 0;
  }
  int64_t painted() const { return view.select(2, 0).count_nonzero().item<int64_t>(); }
  bool at(int64_t x, int64_t y) const { return view[y][x][0].item<uint8_t>() != 0; }
};

constexpr Rgb kRed{255, 0, 0};

}  // namespace

TEST(Draw, PrimitivesClipAtTheEdges) {
  GuardedImage img(30, 40);
  visage::image::draw_line(img.view, -100, -50, 200, 100, kRed, 3);
  visage::image::draw_rect(img.view, -10, -10, 100, 100, kRed, 4);
  visage::image::draw_circle(img.view, 39, 29, 25, kRed, 5);
  visage::image::draw_circle(img.view, -5, 15, 10, kRed, 1, /*filled=*/true);
  const std::vector<PointF> points = {{-1, -1}, {39.4f, 29.4f}, {0, 29}, {1e20f, 3}, {NAN, 1}};
  visage::image::draw_points(img.view, points, kRed, 3);
  const std::vector<PointF> path = {{-50, 10}, {20, -40}, {90, 10}, {20, 90}};
  visage::image::draw_polyline(img.view, path, kRed, 2, /*closed=*/true);
  visage::image::draw_text(img.view, -7, 25, "EDGE 100%", kRed, 2);
  visage::image::draw_line(img.view, INT32_MIN, INT32_MIN, INT32_MAX, INT32_MAX, kRed, 9);
  visage::image::draw_circle(img.view, INT32_MAX, 0, INT32_MAX, kRed, 3);
  EXPECT_TRUE(img.guards_clean());
  EXPECT_GT(img.painted(), 0);
  EXPECT_EQ(img.view.select(2, 1).count_nonzero().item<int64_t>(), 0) << "green channel written";
}

TEST(Draw, ShapesAreWhereAsked) {
  GuardedImage img(30, 40);
  // A horizontal line through the whole width, from outside to outside.
  visage::image::draw_line(img.view, -10, 3, 100, 3, kRed, 1);
  EXPECT_EQ(img.view.select(0, 3).select(1, 0).count_nonzero().item<int64_t>(), 40);
  EXPECT_EQ(img.painted(), 40);
  img.view.zero_();

  visage::image::draw_line(img.view, 0, 0, 9, 9, kRed, 1);
  EXPECT_EQ(img.painted(), 10);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(img.at(i, i));
  img.view.zero_();

  // Rectangle outline: corners inclusive, inside empty.
  visage::image::draw_rect(img.view, 5, 5, 14, 9, kRed, 1);
  EXPECT_EQ(img.painted(), 2 * 10 + 2 * 3);
  EXPECT_TRUE(img.at(5, 5) && img.at(14, 9) && !img.at(10, 7) && !img.at(4, 5));
  img.view.zero_();

  // Vertical line hugging the right edge, thick: nothing wraps into column 0.
  visage::image::draw_line(img.view, 39, -5, 39, 40, kRed, 5);
  EXPECT_EQ(img.view.slice(1, 0, 30).count_nonzero().item<int64_t>(), 0);
  EXPECT_TRUE(img.at(39, 0) && img.at(37, 15));
  img.view.zero_();

  // Disc: exactly the pixels within radius + 0.5.
  visage::image::draw_circle(img.view, 20, 15, 6, kRed, 1, /*filled=*/true);
  int64_t inside = 0;
  for (int y = 0; y < 30; ++y)
    for (int x = 0; x < 40; ++x) {
      const double d = std::hypot(x - 20, y - 15);
      inside += d <= 6.5;
      EXPECT_EQ(img.at(x, y), d <= 6.5) << x << "," << y;
    }
  EXPECT_EQ(img.painted(), inside);
  img.view.zero_();

  // Circle outline: every painted pixel near the radius, and no gaps around it.
  visage::image::draw_circle(img.view, 20, 15, 10, kRed, 1);
  for (int y = 0; y < 30; ++y)
    for (int x = 0; x < 40; ++x)
      if (img.at(x, y)) {
        EXPECT_NEAR(std::hypot(x - 20, y - 15), 10.0, 0.75) << x << "," << y;
      }
  for (int step = 0; step < 360; ++step) {
    const double angle = step * M_PI / 180;
    const int x = int(std::lround(20 + 10 * std::cos(angle))), y = int(std::lround(15 + 10 * std::sin(angle)));
    bool near = false;
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) near = near || img.at(x + dx, y + dy);
    EXPECT_TRUE(near) << "gap at " << step << " degrees";
  }
  img.view.zero_();

  // Points from a tensor [N, 2].
  const at::Tensor landmarks = at::tensor({3.0f, 4.0f, 30.2f, 20.7f}).view({2, 2});
  visage::image::draw_points(img.view, landmarks, kRed, 0);
  EXPECT_EQ(img.painted(), 2);
  EXPECT_TRUE(img.at(3, 4) && img.at(30, 21));
}

TEST(Draw, TextRendersInsideItsBox) {
  GuardedImage img(40, 200);
  const std::string text = "Age 42: 99.5% -x";
  visage::image::draw_text(img.view, 3, 5, text, kRed, 2);
  const int w = visage::image::text_width(text, 2), h = visage::image::text_height(text, 2);
  EXPECT_EQ(w, int(text.size()) * 12 - 2);
  EXPECT_EQ(h, 14);
  EXPECT_GT(img.painted(), 100);
  EXPECT_EQ(img.painted(), img.view.slice(0, 5, 5 + h).slice(1, 3, 3 + w).select(2, 0).count_nonzero().item<int64_t>());
  EXPECT_TRUE(img.guards_clean());

  // Distinct characters draw distinct glyphs; unknown ones draw '?'.
  auto render = [](std::string_view s) {
    GuardedImage g(7, 6);
    visage::image::draw_text(g.view, 0, 0, s, kRed, 1);
    return g.view.clone();
  };
  std::set<std::string> seen;
  for (char c = 33; c < 127; ++c) {
    const at::Tensor glyph = render(std::string(1, c));
    EXPECT_GT(glyph.count_nonzero().item<int64_t>(), 0) << c;
    seen.insert(std::string(static_cast<const char*>(glyph.data_ptr()), size_t(glyph.numel())));
  }
  EXPECT_EQ(seen.size(), 94u) << "two characters share a glyph";
  EXPECT_TRUE(render("\x01").equal(render("?")));
  EXPECT_EQ(render(" ").count_nonzero().item<int64_t>(), 0);
}
