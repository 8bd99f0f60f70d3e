// RAII for FFmpeg's C objects, and the helpers every libav call site shares:
// one-time global set-up, FFmpeg errors turned into visage::Error, colour
// names. Private to src/video/.
#pragma once

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/dict.h>
#include <libavutil/frame.h>
#include <libavutil/pixfmt.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
}

#include <memory>
#include <string>

#include "visage/error.hpp"

namespace visage::av {

// One deleter per FFmpeg type: the only places that free FFmpeg objects.
struct InputFormatDeleter {
  void operator()(AVFormatContext* c) const { avformat_close_input(&c); }
};
// An output context owns its AVIOContext (closed here when the muxer uses a file).
struct OutputFormatDeleter {
  void operator()(AVFormatContext* c) const {
    if (c->oformat && !(c->oformat->flags & AVFMT_NOFILE)) avio_closep(&c->pb);
    avformat_free_context(c);
  }
};
struct CodecContextDeleter {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameDeleter {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketDeleter {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsDeleter {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};
struct SwrDeleter {
  void operator()(SwrContext* s) const { swr_free(&s); }
};
struct BufferRefDeleter {
  void operator()(AVBufferRef* b) const { av_buffer_unref(&b); }
};
struct AudioFifoDeleter {
  void operator()(AVAudioFifo* f) const { av_audio_fifo_free(f); }
};

using InputFormatPtr = std::unique_ptr<AVFormatContext, InputFormatDeleter>;
using OutputFormatPtr = std::unique_ptr<AVFormatContext, OutputFormatDeleter>;
using CodecContextPtr = std::unique_ptr<AVCodecContext, CodecContextDeleter>;
using FramePtr = std::unique_ptr<AVFrame, FrameDeleter>;
using PacketPtr = std::unique_ptr<AVPacket, PacketDeleter>;
using SwsPtr = std::unique_ptr<SwsContext, SwsDeleter>;
using SwrPtr = std::unique_ptr<SwrContext, SwrDeleter>;
using BufferRefPtr = std::unique_ptr<AVBufferRef, BufferRefDeleter>;
using AudioFifoPtr = std::unique_ptr<AVAudioFifo, AudioFifoDeleter>;

// An AVDictionary of options owned for the length of a scope.
class Dictionary {
 public:
  Dictionary() = default;
  Dictionary(const Dictionary&) = delete;
  Dictionary& operator=(const Dictionary&) = delete;
  ~Dictionary() { av_dict_free(&dict_); }
  void set(const char* key, const std::string& value) { av_dict_set(&dict_, key, value.c_str(), 0); }
  AVDictionary** get() { return &dict_; }
  // The keys no component consumed, comma-separated (empty when all were used).
  std::string unused_keys() const;

 private:
  AVDictionary* dict_ = nullptr;
};

FramePtr make_frame();
PacketPtr make_packet();

// Registers libavdevice's inputs/outputs and installs the log callback that
// keeps FFmpeg quiet (the library never prints). Safe to call from any thread.
void initialise();

// FFmpeg's text for an error code, followed by the last message FFmpeg logged
// on this thread, when there was one since the last call.
std::string error_text(int code);
// Forgets the last logged message (call before an operation whose error you report).
void clear_last_log();

// Throws Error{kind} "<what>: <error_text(code)>" when code < 0.
void check(int code, ErrorKind kind, const std::string& what);

// The ErrorKind an FFmpeg error code maps to when a file is opened: missing
// or unreadable files are io, malformed data bad_input, anything else io.
ErrorKind open_error_kind(int code);

// The colour matrix swscale should use for frames of this size and tag
// (unknown: BT.601 for SD, BT.709 for HD), as an SWS_CS_* value.
int sws_colourspace(AVColorSpace space, int width, int height);

// Display-matrix rotation of a stream as a clockwise turn (0, 90, 180, 270).
int stream_rotation(const AVStream* stream);
// Stores the display matrix for a clockwise turn on an output stream.
void set_stream_rotation(AVStream* stream, int clockwise_degrees);

}  // namespace visage::av
