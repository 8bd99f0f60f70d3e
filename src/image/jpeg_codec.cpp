// JPEG through libjpeg(-turbo). libjpeg reports fatal errors through
// error_exit, which must not return: it longjmps back to the setjmp in the
// function that called into libjpeg. Those functions keep only trivially
// destructible locals, so the jump skips no destructor; the C++ objects
// (tensors, vectors, the RAII holder of the libjpeg struct) live in their
// callers.
#include <ATen/ATen.h>

#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

// jpeglib.h needs size_t and FILE declared first.
#include <jerror.h>
#include <jpeglib.h>

#include "image/codecs.hpp"
#include "image/exif.hpp"
#include "visage/error.hpp"

namespace visage::image {
namespace {

struct JpegErrors {
  jpeg_error_mgr manager;  // first, so a j_common_ptr's err converts to JpegErrors*
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool data_missing;  // libjpeg only warns when the data ends early
};

JpegErrors* errors_of(j_common_ptr info) { return reinterpret_cast<JpegErrors*>(info->err); }

[[noreturn]] void on_error_exit(j_common_ptr info) {
  JpegErrors* errors = errors_of(info);
  info->err->format_message(info, errors->message);
  std::longjmp(errors->jump, 1);
}

void on_emit_message(j_common_ptr info, int level) {
  if (level >= 0) return;  // trace messages
  JpegErrors* errors = errors_of(info);
  // Premature end of data: libjpeg pads with an EOI and decodes grey. A file
  // cut short is corrupt, not an image with a grey bottom.
  if (info->err->msg_code == JWRN_JPEG_EOF && !errors->data_missing) {
    errors->data_missing = true;
    info->err->format_message(info, errors->message);
  }
}

void on_output_message(j_common_ptr) {}  // the library never prints

void install_errors(JpegErrors& errors) {
  jpeg_std_error(&errors.manager);
  errors.manager.error_exit = on_error_exit;
  errors.manager.emit_message = on_emit_message;
  errors.manager.output_message = on_output_message;
  errors.message[0] = '\0';
  errors.data_missing = false;
}

// Owns a decompressor; destroyed whatever way decoding ends.
struct Decompressor {
  jpeg_decompress_struct info{};
  JpegErrors errors{};
  bool created = false;
  bool pixels_incomplete = false;
  ~Decompressor() {
    if (created) jpeg_destroy_decompress(&info);
  }
};

struct Compressor {
  jpeg_compress_struct info{};
  JpegErrors errors{};
  bool created = false;
  unsigned char* buffer = nullptr;  // jpeg_mem_dest's output, malloc'd by libjpeg
  unsigned long size = 0;
  ~Compressor() {
    if (created) jpeg_destroy_compress(&info);
    std::free(buffer);
  }
};

// Phase 1: header and APP1 markers. Returns false with errors.message set.
bool read_header(Decompressor& d, const uint8_t* data, size_t size) {
  if (setjmp(d.errors.jump)) return false;
  jpeg_create_decompress(&d.info);
  d.created = true;
  jpeg_mem_src(&d.info, data, static_cast<unsigned long>(size));
  jpeg_save_markers(&d.info, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(&d.info, TRUE);
  switch (d.info.jpeg_color_space) {
    case JCS_CMYK:
    case JCS_YCCK: d.info.out_color_space = JCS_CMYK; break;
    default: d.info.out_color_space = JCS_RGB; break;  // libjpeg-turbo expands greyscale too
  }
  return true;
}

// Phase 2: pixels into `out` ([height, width, channels]), `row` is one row of
// scratch for CMYK. Returns false with errors.message set.
bool read_pixels(Decompressor& d, uint8_t* out, uint8_t* cmyk_row) {
  if (setjmp(d.errors.jump)) return false;
  jpeg_start_decompress(&d.info);
  const size_t width = d.info.output_width;
  while (d.info.output_scanline < d.info.output_height) {
    uint8_t* rgb_row = out + size_t(d.info.output_scanline) * width * 3;
    JSAMPROW row = cmyk_row ? cmyk_row : rgb_row;
    if (jpeg_read_scanlines(&d.info, &row, 1) != 1) return false;
    if (cmyk_row) {
      // Adobe writes CMYK inverted (0 = full ink), as virtually every CMYK JPEG is.
      const bool inverted = d.info.saw_Adobe_marker;
      for (size_t x = 0; x < width; ++x) {
        const uint8_t* p = cmyk_row + x * 4;
        const int k = inverted ? p[3] : 255 - p[3];
        for (int c = 0; c < 3; ++c) {
          const int ink = inverted ? p[c] : 255 - p[c];
          rgb_row[x * 3 + c] = uint8_t((ink * k + 127) / 255);
        }
      }
    }
  }
  // Data that ends after the last scanline (a missing EOI marker) loses no
  // pixel: only warnings raised before this point make the image corrupt.
  d.pixels_incomplete = d.errors.data_missing;
  jpeg_finish_decompress(&d.info);
  return true;
}

bool compress(Compressor& c, const uint8_t* rgb, int width, int height, int quality) {
  if (setjmp(c.errors.jump)) return false;
  jpeg_create_compress(&c.info);
  c.created = true;
  jpeg_mem_dest(&c.info, &c.buffer, &c.size);
  c.info.image_width = JDIMENSION(width);
  c.info.image_height = JDIMENSION(height);
  c.info.input_components = 3;
  c.info.in_color_space = JCS_RGB;
  jpeg_set_defaults(&c.info);
  jpeg_set_quality(&c.info, quality, TRUE);
  c.info.optimize_coding = TRUE;
  if (quality >= 90) {  // 4:4:4: at high quality chroma subsampling is the visible loss
    c.info.comp_info[0].h_samp_factor = 1;
    c.info.comp_info[0].v_samp_factor = 1;
  }
  jpeg_start_compress(&c.info, TRUE);
  while (c.info.next_scanline < c.info.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(rgb + size_t(c.info.next_scanline) * size_t(width) * 3);
    jpeg_write_scanlines(&c.info, &row, 1);
  }
  jpeg_finish_compress(&c.info);
  return true;
}

}  // namespace

DecodedImage decode_jpeg(std::span<const uint8_t> bytes, const std::string& name, int64_t max_pixels) {
  Decompressor d;
  install_errors(d.errors);
  d.info.err = &d.errors.manager;
  if (!read_header(d, bytes.data(), bytes.size())) throw_corrupt(name, std::string("JPEG: ") + d.errors.message);
  check_dimensions(name, d.info.image_width, d.info.image_height, max_pixels);

  DecodedImage image;
  image.greyscale = d.info.jpeg_color_space == JCS_GRAYSCALE;
  for (jpeg_saved_marker_ptr marker = d.info.marker_list; marker; marker = marker->next) {
    if (marker->marker != JPEG_APP0 + 1 || marker->data_length < 6 || std::memcmp(marker->data, "Exif\0\0", 6) != 0)
      continue;
    image.orientation = exif_orientation({marker->data, marker->data_length});
    break;
  }

  image.rgb = new_rgb(d.info.image_height, d.info.image_width);
  std::vector<uint8_t> cmyk_row;
  if (d.info.out_color_space == JCS_CMYK) cmyk_row.resize(size_t(d.info.image_width) * 4);
  if (!read_pixels(d, image.rgb.data_ptr<uint8_t>(), cmyk_row.empty() ? nullptr : cmyk_row.data()))
    throw_corrupt(name, std::string("JPEG: ") + (d.errors.message[0] ? d.errors.message : "decoding failed"));
  if (d.pixels_incomplete) throw_corrupt(name, std::string("JPEG is truncated (") + d.errors.message + ")");
  return image;
}

std::vector<uint8_t> encode_jpeg(const at::Tensor& rgb, int quality) {
  const int64_t height = rgb.size(0), width = rgb.size(1);
  if (width > JPEG_MAX_DIMENSION || height > JPEG_MAX_DIMENSION)
    throw Error(ErrorKind::bad_input, "image of " + std::to_string(width) + "x" + std::to_string(height) +
                                          " is too large for JPEG (at most " + std::to_string(JPEG_MAX_DIMENSION) +
                                          " per side)");
  Compressor c;
  install_errors(c.errors);
  c.info.err = &c.errors.manager;
  if (!compress(c, rgb.data_ptr<uint8_t>(), int(width), int(height), quality))
    throw Error(ErrorKind::internal, std::string("JPEG encoder: ") + c.errors.message);
  return std::vector<uint8_t>(c.buffer, c.buffer + c.size);
}

}  // namespace visage::image
