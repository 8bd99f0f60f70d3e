// TIFF through libtiff, from and to memory. Decoding uses libtiff's RGBA
// interface (any photometric, bit depth, palette, YCbCr, CMYK) on the first
// directory, in stored row order: the orientation tag is applied by the
// caller like EXIF's, because libtiff only flips and cannot transpose.
// Errors go to a per-handle handler (libtiff >= 4.5) instead of stderr.
#include <ATen/ATen.h>

#include <tiffio.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>

#include "image/codecs.hpp"
#include "visage/error.hpp"

#if TIFFLIB_VERSION >= 20221213
#define VISAGE_TIFF_HANDLER_PER_HANDLE 1
#endif

namespace visage::image {
namespace {

// A seekable file in memory: reads from the input span or writes into a
// growing vector.
struct MemoryFile {
  std::span<const uint8_t> input;
  std::vector<uint8_t>* output = nullptr;
  uint64_t position = 0;
  std::string first_error;
};

void record_error(MemoryFile* file, const char* module, const char* format, va_list args) {
  if (!file || !file->first_error.empty()) return;
  char text[512];
  std::vsnprintf(text, sizeof text, format, args);
  file->first_error = text;
}

#ifdef VISAGE_TIFF_HANDLER_PER_HANDLE
int on_error(TIFF*, void* user_data, const char* module, const char* format, va_list args) {
  record_error(static_cast<MemoryFile*>(user_data), module, format, args);
  return 1;  // handled: nothing reaches the global handlers (stderr)
}
int on_warning(TIFF*, void*, const char*, const char*, va_list) { return 1; }
#else
// Older libtiff: the handlers are process-wide; installed once, they report
// to the MemoryFile that is the handle's client data.
void on_error_ext(thandle_t handle, const char* module, const char* format, va_list args) {
  record_error(static_cast<MemoryFile*>(handle), module, format, args);
}
void install_global_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    TIFFSetErrorHandler(nullptr);
    TIFFSetWarningHandler(nullptr);
    TIFFSetErrorHandlerExt(on_error_ext);
  });
}
#endif

tmsize_t read_proc(thandle_t handle, void* buffer, tmsize_t size) {
  auto* file = static_cast<MemoryFile*>(handle);
  if (size < 0 || file->output) return -1;
  const uint64_t available = file->position < file->input.size() ? file->input.size() - file->position : 0;
  const uint64_t count = std::min<uint64_t>(uint64_t(size), available);
  if (count) std::memcpy(buffer, file->input.data() + file->position, count);
  file->position += count;
  return tmsize_t(count);
}

tmsize_t write_proc(thandle_t handle, void* buffer, tmsize_t size) {
  auto* file = static_cast<MemoryFile*>(handle);
  if (size < 0 || !file->output) return -1;
  std::vector<uint8_t>& out = *file->output;
  try {
    if (out.size() < file->position + uint64_t(size)) out.resize(file->position + uint64_t(size));
  } catch (const std::bad_alloc&) {
    return -1;
  }
  std::memcpy(out.data() + file->position, buffer, size_t(size));
  file->position += uint64_t(size);
  return size;
}

toff_t size_proc(thandle_t handle) {
  auto* file = static_cast<MemoryFile*>(handle);
  return file->output ? file->output->size() : file->input.size();
}

toff_t seek_proc(thandle_t handle, toff_t offset, int whence) {
  auto* file = static_cast<MemoryFile*>(handle);
  int64_t base = 0;
  if (whence == SEEK_CUR) base = int64_t(file->position);
  if (whence == SEEK_END) base = int64_t(size_proc(handle));
  const int64_t target = base + int64_t(offset);
  if (target < 0) return toff_t(-1);
  file->position = uint64_t(target);
  return file->position;
}

int close_proc(thandle_t) { return 0; }
int map_proc(thandle_t, void**, toff_t*) { return 0; }  // no mapping: libtiff reads through read_proc
void unmap_proc(thandle_t, void*, toff_t) {}

struct TiffCloser {
  void operator()(TIFF* tiff) const { TIFFClose(tiff); }
};
using TiffPtr = std::unique_ptr<TIFF, TiffCloser>;

TiffPtr open_memory(const char* name, const char* mode, MemoryFile& file) {
#ifdef VISAGE_TIFF_HANDLER_PER_HANDLE
  struct OptionsFree {
    void operator()(TIFFOpenOptions* options) const { TIFFOpenOptionsFree(options); }
  };
  std::unique_ptr<TIFFOpenOptions, OptionsFree> options(TIFFOpenOptionsAlloc());
  if (!options) throw Error(ErrorKind::resource, "cannot allocate TIFF options");
  TIFFOpenOptionsSetErrorHandlerExtR(options.get(), on_error, &file);
  TIFFOpenOptionsSetWarningHandlerExtR(options.get(), on_warning, &file);
  return TiffPtr(TIFFClientOpenExt(name, mode, &file, read_proc, write_proc, seek_proc, close_proc, size_proc, map_proc,
                                   unmap_proc, options.get()));
#else
  install_global_handlers();
  return TiffPtr(
      TIFFClientOpen(name, mode, &file, read_proc, write_proc, seek_proc, close_proc, size_proc, map_proc, unmap_proc));
#endif
}

struct RgbaImage {
  TIFFRGBAImage image{};
  bool begun = false;
  ~RgbaImage() {
    if (begun) TIFFRGBAImageEnd(&image);
  }
};

}  // namespace

DecodedImage decode_tiff(std::span<const uint8_t> bytes, const std::string& name, int64_t max_pixels) {
  MemoryFile file{bytes};
  // "m": no memory mapping, everything goes through read_proc.
  TiffPtr tiff = open_memory(name.c_str(), "rm", file);
  auto failure = [&](const std::string& what) {
    return "TIFF: " + what + (file.first_error.empty() ? "" : " (" + file.first_error + ")");
  };
  if (!tiff) throw_corrupt(name, failure("cannot read the header"));

  uint32_t width = 0, height = 0;
  uint16_t orientation = ORIENTATION_TOPLEFT, photometric = PHOTOMETRIC_RGB, samples = 1, extra = 0;
  uint16_t* extra_types = nullptr;
  TIFFGetField(tiff.get(), TIFFTAG_IMAGEWIDTH, &width);
  TIFFGetField(tiff.get(), TIFFTAG_IMAGELENGTH, &height);
  TIFFGetFieldDefaulted(tiff.get(), TIFFTAG_ORIENTATION, &orientation);
  TIFFGetFieldDefaulted(tiff.get(), TIFFTAG_SAMPLESPERPIXEL, &samples);
  TIFFGetFieldDefaulted(tiff.get(), TIFFTAG_EXTRASAMPLES, &extra, &extra_types);
  TIFFGetField(tiff.get(), TIFFTAG_PHOTOMETRIC, &photometric);
  check_dimensions(name, width, height, max_pixels);

  char reason[1024] = "";
  if (!TIFFRGBAImageOK(tiff.get(), reason))
    throw Error(ErrorKind::unsupported, name + ": TIFF variant not supported: " + reason);
  RgbaImage rgba;
  if (!TIFFRGBAImageBegin(&rgba.image, tiff.get(), /*stop_on_error=*/1, reason))
    throw_corrupt(name, failure(std::string("cannot start decoding: ") + reason));
  rgba.begun = true;
  // Ask for the stored orientation: libtiff then copies rows as they are.
  rgba.image.req_orientation = rgba.image.orientation;

  at::Tensor raster = at::empty({int64_t(height), int64_t(width)}, at::kInt);  // ABGR packed in uint32
  auto* pixels = reinterpret_cast<uint32_t*>(raster.data_ptr<int32_t>());
  if (!TIFFRGBAImageGet(&rgba.image, pixels, width, height) || !file.first_error.empty())
    throw_corrupt(name, failure("pixel data is corrupt or truncated"));

  DecodedImage image;
  image.rgb = new_rgb(height, width);
  uint8_t* out = image.rgb.data_ptr<uint8_t>();
  const size_t count = size_t(width) * height;
  for (size_t i = 0; i < count; ++i) {
    const uint32_t p = pixels[i];
    out[i * 3] = uint8_t(TIFFGetR(p));
    out[i * 3 + 1] = uint8_t(TIFFGetG(p));
    out[i * 3 + 2] = uint8_t(TIFFGetB(p));
  }
  image.greyscale = (photometric == PHOTOMETRIC_MINISBLACK || photometric == PHOTOMETRIC_MINISWHITE) &&
                    samples - std::min(samples, extra) == 1;
  image.orientation = orientation >= 1 && orientation <= 8 ? orientation : 1;
  return image;
}

std::vector<uint8_t> encode_tiff(const at::Tensor& rgb) {
  const int64_t height = rgb.size(0), width = rgb.size(1);
  if (width > UINT32_MAX || height > UINT32_MAX) throw Error(ErrorKind::bad_input, "image too large for TIFF");
  std::vector<uint8_t> out;
  MemoryFile file;
  file.output = &out;
  {
    TiffPtr tiff = open_memory("output.tiff", "wm", file);
    if (!tiff) throw Error(ErrorKind::internal, "TIFF encoder: " + file.first_error);
    TIFF* t = tiff.get();
    const uint16_t compression =
        TIFFIsCODECConfigured(COMPRESSION_ADOBE_DEFLATE) ? COMPRESSION_ADOBE_DEFLATE : COMPRESSION_NONE;
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, uint32_t(width));
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, uint32_t(height));
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, uint16_t(3));
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, uint16_t(8));
    TIFFSetField(t, TIFFTAG_ORIENTATION, uint16_t(ORIENTATION_TOPLEFT));
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, uint16_t(PLANARCONFIG_CONTIG));
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, uint16_t(PHOTOMETRIC_RGB));
    TIFFSetField(t, TIFFTAG_COMPRESSION, compression);
    if (compression != COMPRESSION_NONE) TIFFSetField(t, TIFFTAG_PREDICTOR, uint16_t(PREDICTOR_HORIZONTAL));
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, TIFFDefaultStripSize(t, 0));
    const uint8_t* pixels = rgb.data_ptr<uint8_t>();
    // Older libtiff versions run the predictor in place on the row they are
    // given, so each row goes through a copy.
    std::vector<uint8_t> row(size_t(width) * 3);
    for (uint32_t y = 0; y < uint32_t(height); ++y) {
      std::memcpy(row.data(), pixels + size_t(y) * row.size(), row.size());
      if (TIFFWriteScanline(t, row.data(), y, 0) < 0)
        throw Error(ErrorKind::internal, "TIFF encoder: " + file.first_error);
    }
    if (!TIFFWriteDirectory(t)) throw Error(ErrorKind::internal, "TIFF encoder: " + file.first_error);
  }  // TIFFClose flushes
  if (!file.first_error.empty()) throw Error(ErrorKind::internal, "TIFF encoder: " + file.first_error);
  return out;
}

}  // namespace visage::image
