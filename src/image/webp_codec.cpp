// WebP through libwebp: still images decode straight to RGB; an animation
// gives its first frame (composited on the canvas by WebPAnimDecoder). The
// EXIF chunk, when present, supplies the orientation.
#include <ATen/ATen.h>

#include <webp/decode.h>
#include <webp/demux.h>
#include <webp/encode.h>

#include <memory>

#include "image/codecs.hpp"
#include "image/exif.hpp"
#include "visage/error.hpp"

namespace visage::image {
namespace {

struct DemuxDeleter {
  void operator()(WebPDemuxer* demux) const { WebPDemuxDelete(demux); }
};
struct AnimDecoderDeleter {
  void operator()(WebPAnimDecoder* decoder) const { WebPAnimDecoderDelete(decoder); }
};
struct WebPBufferDeleter {
  void operator()(uint8_t* buffer) const { WebPFree(buffer); }
};

std::string status_text(VP8StatusCode status) {
  switch (status) {
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "corrupt bitstream";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "suspended";
    case VP8_STATUS_USER_ABORT: return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "truncated (not enough data)";
    default: return "error " + std::to_string(int(status));
  }
}

at::Tensor first_animation_frame(const WebPData& data, const std::string& name) {
  WebPAnimDecoderOptions options;
  if (!WebPAnimDecoderOptionsInit(&options)) throw Error(ErrorKind::internal, "libwebp version mismatch");
  options.color_mode = MODE_RGBA;
  options.use_threads = 0;
  std::unique_ptr<WebPAnimDecoder, AnimDecoderDeleter> decoder(WebPAnimDecoderNew(&data, &options));
  if (!decoder) throw_corrupt(name, "WebP animation cannot be parsed");
  WebPAnimInfo info;
  if (!WebPAnimDecoderGetInfo(decoder.get(), &info)) throw_corrupt(name, "WebP animation cannot be parsed");
  uint8_t* rgba = nullptr;
  int timestamp = 0;
  if (!WebPAnimDecoderGetNext(decoder.get(), &rgba, &timestamp) || !rgba)
    throw_corrupt(name, "first WebP animation frame cannot be decoded");
  at::Tensor canvas = at::from_blob(rgba, {int64_t(info.canvas_height), int64_t(info.canvas_width), 4}, at::kByte);
  return canvas.slice(2, 0, 3).contiguous();  // copies out of the decoder's buffer
}

}  // namespace

DecodedImage decode_webp(std::span<const uint8_t> bytes, const std::string& name, int64_t max_pixels) {
  WebPBitstreamFeatures features;
  const VP8StatusCode status = WebPGetFeatures(bytes.data(), bytes.size(), &features);
  if (status != VP8_STATUS_OK) throw_corrupt(name, "WebP: " + status_text(status));
  check_dimensions(name, features.width, features.height, max_pixels);

  DecodedImage image;
  const WebPData data{bytes.data(), bytes.size()};
  std::unique_ptr<WebPDemuxer, DemuxDeleter> demux(WebPDemux(&data));
  if (!demux) throw_corrupt(name, "WebP container is corrupt or truncated");
  WebPChunkIterator chunk;
  if (WebPDemuxGetChunk(demux.get(), "EXIF", 1, &chunk)) {
    image.orientation = exif_orientation({chunk.chunk.bytes, chunk.chunk.size});
    WebPDemuxReleaseChunkIterator(&chunk);
  }

  if (features.has_animation) {
    image.rgb = first_animation_frame(data, name);
    return image;
  }
  image.rgb = new_rgb(features.height, features.width);
  const size_t stride = size_t(features.width) * 3;
  if (!WebPDecodeRGBInto(bytes.data(), bytes.size(), image.rgb.data_ptr<uint8_t>(), stride * size_t(features.height),
                         int(stride)))
    throw_corrupt(name, "WebP pixel data is corrupt or truncated");
  return image;
}

std::vector<uint8_t> encode_webp(const at::Tensor& rgb, int quality) {
  const int64_t height = rgb.size(0), width = rgb.size(1);
  if (width > WEBP_MAX_DIMENSION || height > WEBP_MAX_DIMENSION)
    throw Error(ErrorKind::bad_input, "image of " + std::to_string(width) + "x" + std::to_string(height) +
                                          " is too large for WebP (at most " + std::to_string(WEBP_MAX_DIMENSION) +
                                          " per side)");
  uint8_t* encoded = nullptr;
  const uint8_t* pixels = rgb.data_ptr<uint8_t>();
  const int stride = int(width * 3);
  const size_t size = quality >= 100 ? WebPEncodeLosslessRGB(pixels, int(width), int(height), stride, &encoded)
                                     : WebPEncodeRGB(pixels, int(width), int(height), stride, float(quality), &encoded);
  std::unique_ptr<uint8_t, WebPBufferDeleter> owner(encoded);
  if (size == 0 || !encoded) throw Error(ErrorKind::internal, "WebP encoder failed");
  return std::vector<uint8_t>(encoded, encoded + size);
}

}  // namespace visage::image
