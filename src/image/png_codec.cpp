// PNG through libpng. As with libjpeg, errors longjmp to a setjmp in a
// function whose locals are all trivially destructible; C++ objects live in
// the callers. Callbacks never let a C++ exception cross libpng's C frames.
#include <ATen/ATen.h>

#include <png.h>

#include <csetjmp>
#include <cstring>
#include <new>

#include "image/codecs.hpp"
#include "image/exif.hpp"
#include "visage/error.hpp"

namespace visage::image {
namespace {

struct PngMessages {
  char error[256] = "";
};

void on_error(png_structp png, png_const_charp message) {
  auto* messages = static_cast<PngMessages*>(png_get_error_ptr(png));
  std::snprintf(messages->error, sizeof messages->error, "%s", message);
  png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}  // ancillary-chunk trouble; the image still decodes

struct MemoryReader {
  const uint8_t* data;
  size_t size;
  size_t position;
};

void read_from_memory(png_structp png, png_bytep out, png_size_t length) {
  auto* reader = static_cast<MemoryReader*>(png_get_io_ptr(png));
  if (reader->size - reader->position < length) png_error(png, "PNG is truncated (the data ends early)");
  std::memcpy(out, reader->data + reader->position, length);
  reader->position += length;
}

struct PngReader {
  png_structp png = nullptr;
  png_infop info = nullptr;
  PngMessages messages;
  ~PngReader() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};

struct PngHeader {
  png_uint_32 width = 0, height = 0;
  int colour_type = 0;
};

bool read_header(PngReader& r, MemoryReader& source, PngHeader& header) {
  if (setjmp(png_jmpbuf(r.png))) return false;
  png_set_read_fn(r.png, &source, read_from_memory);
  // Our own limit is checked by the caller; libpng's default of 1e6 per side
  // would reject some legitimate panoramas before ours applies.
  png_set_user_limits(r.png, 0x7fffffff, 0x7fffffff);
  png_read_info(r.png, r.info);
  header.width = png_get_image_width(r.png, r.info);
  header.height = png_get_image_height(r.png, r.info);
  header.colour_type = png_get_color_type(r.png, r.info);
  return true;
}

bool read_pixels(PngReader& r, png_bytepp rows) {
  if (setjmp(png_jmpbuf(r.png))) return false;
  png_set_expand(r.png);  // palette -> RGB, low-bit grey -> 8 bits, tRNS -> alpha
  png_set_strip_16(r.png);
  png_set_strip_alpha(r.png);
  png_set_gray_to_rgb(r.png);
  png_set_interlace_handling(r.png);
  png_read_update_info(r.png, r.info);
  if (png_get_rowbytes(r.png, r.info) != png_get_image_width(r.png, r.info) * 3)
    png_error(r.png, "unexpected PNG row layout after conversion");
  png_read_image(r.png, rows);
  return true;
}

// The chunks after the pixels (eXIf may be there). A file cut after its
// pixel data lost nothing visible, so failing here is not an error.
bool read_end(PngReader& r) {
  if (setjmp(png_jmpbuf(r.png))) return false;
  png_read_end(r.png, r.info);
  return true;
}

struct PngWriter {
  png_structp png = nullptr;
  png_infop info = nullptr;
  PngMessages messages;
  std::vector<uint8_t>* out = nullptr;
  ~PngWriter() { png_destroy_write_struct(&png, info ? &info : nullptr); }
};

void write_to_memory(png_structp png, png_bytep data, png_size_t length) {
  auto* writer = static_cast<PngWriter*>(png_get_io_ptr(png));
  try {
    writer->out->insert(writer->out->end(), data, data + length);
  } catch (const std::bad_alloc&) {
    png_error(png, "out of memory");
  }
}

void flush_memory(png_structp) {}

bool write_png(PngWriter& w, png_bytepp rows, png_uint_32 width, png_uint_32 height) {
  if (setjmp(png_jmpbuf(w.png))) return false;
  png_set_write_fn(w.png, &w, write_to_memory, flush_memory);
  png_set_IHDR(w.png, w.info, width, height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_set_compression_level(w.png, 6);
  png_write_info(w.png, w.info);
  png_write_image(w.png, rows);
  png_write_end(w.png, w.info);
  return true;
}

std::vector<png_bytep> row_pointers(const at::Tensor& rgb) {
  std::vector<png_bytep> rows(size_t(rgb.size(0)));
  uint8_t* base = rgb.data_ptr<uint8_t>();
  for (size_t y = 0; y < rows.size(); ++y) rows[y] = base + y * size_t(rgb.size(1)) * 3;
  return rows;
}

}  // namespace

DecodedImage decode_png(std::span<const uint8_t> bytes, const std::string& name, int64_t max_pixels) {
  PngReader r;
  r.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r.messages, on_error, on_warning);
  if (r.png) r.info = png_create_info_struct(r.png);
  if (!r.png || !r.info) throw Error(ErrorKind::resource, name + ": cannot create a PNG decoder");
  MemoryReader source{bytes.data(), bytes.size(), 0};
  PngHeader header;
  if (!read_header(r, source, header)) throw_corrupt(name, std::string("PNG: ") + r.messages.error);
  check_dimensions(name, header.width, header.height, max_pixels);

  DecodedImage image;
  image.greyscale = (header.colour_type & PNG_COLOR_MASK_COLOR) == 0;
  image.rgb = new_rgb(header.height, header.width);
  std::vector<png_bytep> rows = row_pointers(image.rgb);
  if (!read_pixels(r, rows.data())) throw_corrupt(name, std::string("PNG: ") + r.messages.error);
  read_end(r);
#ifdef PNG_eXIf_SUPPORTED
  png_uint_32 exif_size = 0;
  png_bytep exif = nullptr;
  if (png_get_eXIf_1(r.png, r.info, &exif_size, &exif) && exif) image.orientation = exif_orientation({exif, exif_size});
#endif
  return image;
}

std::vector<uint8_t> encode_png(const at::Tensor& rgb) {
  if (rgb.size(0) > PNG_UINT_31_MAX || rgb.size(1) > PNG_UINT_31_MAX)
    throw Error(ErrorKind::bad_input, "image too large for PNG");
  PngWriter w;
  w.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &w.messages, on_error, on_warning);
  if (w.png) w.info = png_create_info_struct(w.png);
  if (!w.png || !w.info) throw Error(ErrorKind::resource, "cannot create a PNG encoder");
  std::vector<uint8_t> out;
  w.out = &out;
  std::vector<png_bytep> rows = row_pointers(rgb);
  if (!write_png(w, rows.data(), png_uint_32(rgb.size(1)), png_uint_32(rgb.size(0))))
    throw Error(ErrorKind::internal, std::string("PNG encoder: ") + w.messages.error);
  return out;
}

}  // namespace visage::image
