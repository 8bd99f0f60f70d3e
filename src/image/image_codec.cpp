// The public still-image API: format detection by signature, dispatch to the
// per-format codecs, orientation, and atomic file writes.
#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <optional>
#include <sstream>
#include <system_error>

#include "image/codecs.hpp"
#include "image/exif.hpp"
#include "visage/image.hpp"

namespace visage {
namespace fs = std::filesystem;
using image::DecodedImage;

namespace {

std::string errno_text(int error) { return std::error_code(error, std::generic_category()).message(); }

class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }
  // Closes and reports close's own failure (where NFS reports write errors).
  int close() {
    const int result = ::close(fd_);
    fd_ = -1;
    return result;
  }

 private:
  int fd_;
};

// Removes a temporary file unless told it has been renamed into place.
class TemporaryFile {
 public:
  explicit TemporaryFile(fs::path path) : path_(std::move(path)) {}
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;
  ~TemporaryFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  void keep() { path_.clear(); }

 private:
  fs::path path_;
};

bool starts_with(std::span<const uint8_t> bytes, std::string_view signature) {
  return bytes.size() >= signature.size() && std::memcmp(bytes.data(), signature.data(), signature.size()) == 0;
}

std::optional<ImageFormat> detect_format(std::span<const uint8_t> bytes) {
  using namespace std::string_view_literals;
  if (starts_with(bytes, "\xFF\xD8\xFF"sv)) return ImageFormat::jpeg;
  if (starts_with(bytes, "\x89PNG\r\n\x1A\n"sv)) return ImageFormat::png;
  if (starts_with(bytes, "RIFF"sv) && bytes.size() >= 12 && std::memcmp(bytes.data() + 8, "WEBP", 4) == 0)
    return ImageFormat::webp;
  if (starts_with(bytes, "BM"sv)) return ImageFormat::bmp;
  if (starts_with(bytes, "II*\0"sv) || starts_with(bytes, "MM\0*"sv) || starts_with(bytes, "II+\0"sv) ||
      starts_with(bytes, "MM\0+"sv))
    return ImageFormat::tiff;
  return std::nullopt;
}

std::string hex_prefix(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text;
  for (size_t i = 0; i < std::min<size_t>(bytes.size(), 8); ++i) {
    if (i) text += ' ';
    text += kDigits[bytes[i] >> 4];
    text += kDigits[bytes[i] & 15];
  }
  return text;
}

// Checks an encoder's input and returns it as a contiguous CPU tensor.
at::Tensor encoder_input(const at::Tensor& rgb) {
  if (!rgb.defined() || rgb.dim() != 3 || rgb.size(2) != 3 || rgb.scalar_type() != at::kByte || rgb.size(0) < 1 ||
      rgb.size(1) < 1) {
    std::ostringstream got;
    if (rgb.defined()) {
      got << rgb.sizes() << " " << rgb.scalar_type();
    } else {
      got << "an undefined tensor";
    }
    throw Error(ErrorKind::bad_input, "image encoder: expected a non-empty [H, W, 3] uint8 tensor, got " + got.str());
  }
  return rgb.to(at::kCPU).contiguous();
}

}  // namespace

namespace image {

void throw_corrupt(const std::string& name, const std::string& reason) {
  throw Error(ErrorKind::bad_input, name + ": " + reason);
}

void check_dimensions(const std::string& name, int64_t width, int64_t height, int64_t max_pixels) {
  if (width <= 0 || height <= 0)
    throw_corrupt(name, "invalid image size " + std::to_string(width) + "x" + std::to_string(height));
  // Both sides fit in 32 bits in every format, so the product cannot overflow.
  if (width * height > max_pixels)
    throw_corrupt(name, "image too large: " + std::to_string(width) + "x" + std::to_string(height) + " = " +
                            std::to_string(width * height) + " pixels, the limit is " + std::to_string(max_pixels));
}

at::Tensor new_rgb(int64_t height, int64_t width) { return at::empty({height, width, 3}, at::kByte); }

}  // namespace image

std::string_view to_string(ImageFormat format) noexcept {
  switch (format) {
    case ImageFormat::jpeg: return "jpeg";
    case ImageFormat::png: return "png";
    case ImageFormat::webp: return "webp";
    case ImageFormat::bmp: return "bmp";
    case ImageFormat::tiff: return "tiff";
  }
  return "unknown";
}

ImageFormat image_format_from_path(const fs::path& path) {
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  if (extension == ".jpg" || extension == ".jpeg") return ImageFormat::jpeg;
  if (extension == ".png") return ImageFormat::png;
  if (extension == ".webp") return ImageFormat::webp;
  if (extension == ".bmp") return ImageFormat::bmp;
  if (extension == ".tif" || extension == ".tiff") return ImageFormat::tiff;
  throw Error(ErrorKind::unsupported, path.string() + ": unknown image extension '" + path.extension().string() +
                                          "' (use .jpg, .jpeg, .png, .webp, .bmp, .tif or .tiff)");
}

Image decode_image(std::span<const uint8_t> bytes, const std::string& name, const ImageReadOptions& options) {
  if (bytes.empty()) throw Error(ErrorKind::bad_input, name + ": empty file");
  const std::optional<ImageFormat> format = detect_format(bytes);
  if (!format)
    throw Error(ErrorKind::unsupported,
                name + ": not a JPEG, PNG, WebP, BMP or TIFF image (starts with " + hex_prefix(bytes) + ")");
  DecodedImage decoded;
  try {
    switch (*format) {
      case ImageFormat::jpeg: decoded = image::decode_jpeg(bytes, name, options.max_pixels); break;
      case ImageFormat::png: decoded = image::decode_png(bytes, name, options.max_pixels); break;
      case ImageFormat::webp: decoded = image::decode_webp(bytes, name, options.max_pixels); break;
      case ImageFormat::bmp: decoded = image::decode_bmp(bytes, name, options.max_pixels); break;
      case ImageFormat::tiff: decoded = image::decode_tiff(bytes, name, options.max_pixels); break;
    }
  } catch (const c10::Error& e) {  // allocation failure within the pixel limit
    throw Error(ErrorKind::resource, name + ": " + e.what_without_backtrace());
  }
  Image result;
  result.format = *format;
  result.greyscale = decoded.greyscale;
  result.exif_orientation = decoded.orientation;
  result.rgb = options.apply_exif_orientation ? image::apply_exif_orientation(decoded.rgb, decoded.orientation)
                                              : std::move(decoded.rgb);
  return result;
}

Image read_image(const fs::path& path, const ImageReadOptions& options) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw Error(ErrorKind::io, "cannot open " + path.string() + ": " + errno_text(errno));
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0)
    throw Error(ErrorKind::io, "cannot read " + path.string() + ": " + errno_text(errno));
  if (!S_ISREG(info.st_mode)) throw Error(ErrorKind::io, "cannot read " + path.string() + ": not a regular file");
  std::vector<uint8_t> bytes(size_t(info.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::read(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(ErrorKind::io, "cannot read " + path.string() + ": " + errno_text(errno));
    if (n == 0) break;  // the file shrank while we read it: decode what is there
    done += size_t(n);
  }
  bytes.resize(done);
  return decode_image(bytes, path.string(), options);
}

std::vector<uint8_t> encode_image(const at::Tensor& rgb, ImageFormat format, const ImageWriteOptions& options) {
  if (options.quality < 1 || options.quality > 100)
    throw Error(ErrorKind::bad_input, "image quality " + std::to_string(options.quality) + " is not in 1..100");
  const at::Tensor pixels = encoder_input(rgb);
  switch (format) {
    case ImageFormat::jpeg: return image::encode_jpeg(pixels, options.quality);
    case ImageFormat::png: return image::encode_png(pixels);
    case ImageFormat::webp: return image::encode_webp(pixels, options.quality);
    case ImageFormat::bmp: return image::encode_bmp(pixels);
    case ImageFormat::tiff: return image::encode_tiff(pixels);
  }
  throw Error(ErrorKind::internal, "unknown image format");
}

void write_image(const fs::path& path, const at::Tensor& rgb, const ImageWriteOptions& options) {
  const ImageFormat format = image_format_from_path(path);
  std::vector<uint8_t> bytes;
  try {
    bytes = encode_image(rgb, format, options);
  } catch (const Error& e) {
    throw Error(e.kind(), path.string() + ": " + e.what());
  }
  write_file_atomically(path, bytes);
}

void write_file_atomically(const fs::path& path, std::span<const uint8_t> bytes) {
  const std::string file_name = path.filename().string();
  auto fail = [&](const std::string& what, int error) {
    throw Error(ErrorKind::io, "cannot write " + path.string() + ": " + what + (error ? ": " + errno_text(error) : ""));
  };
  if (file_name.empty() || file_name == "." || file_name == "..") fail("not a file name", 0);
  const fs::path directory = path.has_parent_path() ? path.parent_path() : fs::path(".");

  // Unique among processes (pid) and threads (counter); O_EXCL guards against
  // leftovers of a crashed process that had the same pid.
  static std::atomic<uint64_t> counter{0};
  std::string prefix(1, '.');
  prefix.append(file_name, 0, 200);
  prefix += ".tmp-";
  prefix += std::to_string(::getpid());
  prefix += '-';
  fs::path temporary;
  UniqueFd fd;
  for (int attempt = 0; attempt < 16 && !fd; ++attempt) {
    std::string temporary_name = prefix;
    temporary_name += std::to_string(counter.fetch_add(1));
    temporary = directory / temporary_name;
    fd.reset(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
    if (!fd && errno != EEXIST) fail("cannot create a temporary file in " + directory.string(), errno);
  }
  if (!fd) fail("cannot create a unique temporary file in " + directory.string(), EEXIST);
  TemporaryFile guard(temporary);

  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("write failed", errno);
    done += size_t(n);
  }
  // A replaced file keeps its permissions.
  struct stat existing {};
  if (::stat(path.c_str(), &existing) == 0 && S_ISREG(existing.st_mode)) ::fchmod(fd.get(), existing.st_mode & 07777);
  if (::fsync(fd.get()) != 0) fail("fsync failed", errno);
  if (fd.close() != 0) fail("close failed", errno);
  if (::rename(temporary.c_str(), path.c_str()) != 0) fail("rename failed", errno);
  guard.keep();
  // Make the rename itself durable; a failure here loses nothing already written.
  UniqueFd directory_fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (directory_fd) ::fsync(directory_fd.get());
}

}  // namespace visage
