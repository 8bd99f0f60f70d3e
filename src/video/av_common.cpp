// FFmpeg set-up, errors and small shared helpers for src/video/.
#include <cctype>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>

#include "video/av_ptr.hpp"
#include "visage/video.hpp"

extern "C" {
#include <libavdevice/avdevice.h>
#include <libavutil/display.h>
#include <libavutil/error.h>
}

namespace visage::av {
namespace {

// The last error FFmpeg logged on this thread: FFmpeg's error codes are
// terse (EINVAL), the log line says what was wrong ("moov atom not found").
thread_local std::string last_log_line;

void log_callback(void* component, int level, const char* format, va_list arguments) {
  if (level > AV_LOG_ERROR) return;
  char line[1024];
  int print_prefix = 1;
  va_list copy;
  va_copy(copy, arguments);
  av_log_format_line2(component, level, format, copy, line, sizeof line, &print_prefix);
  va_end(copy);
  std::string text(line);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  if (!text.empty()) last_log_line = std::move(text);
}

}  // namespace

std::string Dictionary::unused_keys() const {
  std::string keys;
  const AVDictionaryEntry* entry = nullptr;
  while ((entry = av_dict_get(dict_, "", entry, AV_DICT_IGNORE_SUFFIX))) {
    if (!keys.empty()) keys += ", ";
    keys += entry->key;
  }
  return keys;
}

FramePtr make_frame() {
  FramePtr frame(av_frame_alloc());
  if (!frame) throw Error(ErrorKind::resource, "out of memory allocating a video frame");
  return frame;
}

PacketPtr make_packet() {
  PacketPtr packet(av_packet_alloc());
  if (!packet) throw Error(ErrorKind::resource, "out of memory allocating a video packet");
  return packet;
}

void initialise() {
  static std::once_flag once;
  std::call_once(once, [] {
    av_log_set_level(AV_LOG_ERROR);
    av_log_set_callback(log_callback);
    avdevice_register_all();
    avformat_network_init();
  });
}

void clear_last_log() { last_log_line.clear(); }

std::string error_text(int code) {
  char buffer[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, buffer, sizeof buffer);
  std::string text(buffer);
  if (!last_log_line.empty()) {
    text += " (" + last_log_line + ")";
    last_log_line.clear();
  }
  return text;
}

void check(int code, ErrorKind kind, const std::string& what) {
  if (code < 0) throw Error(kind, what + ": " + error_text(code));
}

ErrorKind open_error_kind(int code) {
  if (code == AVERROR_INVALIDDATA || code == AVERROR_EOF) return ErrorKind::bad_input;
  if (code == AVERROR_DEMUXER_NOT_FOUND || code == AVERROR_PROTOCOL_NOT_FOUND) return ErrorKind::unsupported;
  return ErrorKind::io;
}

int sws_colourspace(AVColorSpace space, int width, int height) {
  switch (space) {
    case AVCOL_SPC_BT709: return SWS_CS_ITU709;
    case AVCOL_SPC_FCC: return SWS_CS_FCC;
    case AVCOL_SPC_BT470BG:
    case AVCOL_SPC_SMPTE170M: return SWS_CS_ITU601;
    case AVCOL_SPC_SMPTE240M: return SWS_CS_SMPTE240M;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL: return SWS_CS_BT2020;
    default: break;
  }
  // What players assume for untagged video: BT.601 up to SD sizes, BT.709 above.
  return (width > 1024 || height > 576) ? SWS_CS_ITU709 : SWS_CS_ITU601;
}

int stream_rotation(const AVStream* stream) {
  const uint8_t* matrix = nullptr;
#if LIBAVFORMAT_VERSION_INT >= AV_VERSION_INT(60, 15, 100)
  const AVPacketSideData* side = av_packet_side_data_get(
      stream->codecpar->coded_side_data, stream->codecpar->nb_coded_side_data, AV_PKT_DATA_DISPLAYMATRIX);
  if (side && side->size >= 9 * 4) matrix = side->data;
#else
  size_t size = 0;
  matrix = av_stream_get_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, &size);
  if (size < 9 * 4) matrix = nullptr;
#endif
  if (!matrix) return 0;
  const double counter_clockwise = av_display_rotation_get(reinterpret_cast<const int32_t*>(matrix));
  if (std::isnan(counter_clockwise)) return 0;
  const long quarter_turns = std::lround(-counter_clockwise / 90.0);
  return static_cast<int>(((quarter_turns % 4) + 4) % 4) * 90;
}

void set_stream_rotation(AVStream* stream, int clockwise_degrees) {
  if (clockwise_degrees % 360 == 0) return;
  // av_display_rotation_get() is what players and FFmpeg's own autorotation read. Some FFmpeg
  // versions' av_display_rotation_set() builds the matrix of the opposite angle, so the
  // result is checked against get() and built the other way round where they disagree.
  int32_t matrix[9];
  const double counter_clockwise = -static_cast<double>(clockwise_degrees);
  av_display_rotation_set(matrix, counter_clockwise);
  const long read_back = std::lround(av_display_rotation_get(matrix));
  if (((read_back - std::lround(counter_clockwise)) % 360 + 360) % 360 != 0) {
    av_display_rotation_set(matrix, -counter_clockwise);
  }
#if LIBAVFORMAT_VERSION_INT >= AV_VERSION_INT(60, 15, 100)
  AVPacketSideData* side =
      av_packet_side_data_new(&stream->codecpar->coded_side_data, &stream->codecpar->nb_coded_side_data,
                              AV_PKT_DATA_DISPLAYMATRIX, sizeof matrix, 0);
  if (!side) throw Error(ErrorKind::resource, "out of memory storing the rotation");
  std::memcpy(side->data, matrix, sizeof matrix);
#else
  uint8_t* data = av_stream_new_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, sizeof matrix);
  if (!data) throw Error(ErrorKind::resource, "out of memory storing the rotation");
  std::memcpy(data, matrix, sizeof matrix);
#endif
}

}  // namespace visage::av

namespace visage {

bool has_video_encoder(const std::string& name) {
  av::initialise();
  const AVCodec* codec = avcodec_find_encoder_by_name(name.c_str());
  return codec && codec->type == AVMEDIA_TYPE_VIDEO;
}

bool has_video_decoder(const std::string& name) {
  av::initialise();
  const AVCodec* codec = avcodec_find_decoder_by_name(name.c_str());
  return codec && codec->type == AVMEDIA_TYPE_VIDEO;
}

}  // namespace visage
