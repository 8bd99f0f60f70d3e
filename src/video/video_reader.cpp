// VideoReader and probe_video: demux + decode with libavformat/libavcodec,
// RGB conversion with swscale.
#include <ATen/ATen.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <thread>

#include "video/av_ptr.hpp"
#include "visage/video.hpp"

extern "C" {
#include <libavutil/pixdesc.h>
}

namespace visage {
namespace {

std::string format_seconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", seconds);
  return text;
}

const char* name_or_unknown(const char* name) { return name ? name : "unknown"; }

// Interrupts a blocking FFmpeg call (opening, probing, reading a packet) that has waited for
// data longer than the reader's timeout: FFmpeg polls the callback while it waits.
class Watchdog {
 public:
  explicit Watchdog(double timeout) : timeout_(timeout) {}
  void arm() {
    if (timeout_ <= 0) return;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_);
    deadline_.store(deadline.time_since_epoch().count(), std::memory_order_relaxed);
  }
  void disarm() { deadline_.store(0, std::memory_order_relaxed); }
  bool expired() const {
    const auto deadline = deadline_.load(std::memory_order_relaxed);
    return deadline != 0 && std::chrono::steady_clock::now().time_since_epoch().count() > deadline;
  }
  double timeout() const { return timeout_; }
  static int callback(void* opaque) { return static_cast<const Watchdog*>(opaque)->expired() ? 1 : 0; }

 private:
  double timeout_;
  std::atomic<std::chrono::steady_clock::rep> deadline_{0};
};

std::string timeout_text(double seconds) { return "no data for " + format_seconds(seconds) + " s (timeout)"; }

// The demuxer opened on the best video stream, with what can be known without decoding.
struct OpenedInput {
  std::unique_ptr<Watchdog> watchdog;  // before `format`, which points at it: destroyed after it
  av::InputFormatPtr format;
  AVStream* stream = nullptr;
  VideoInfo info;
  double declared_end = 0;  // seconds from the input's origin to the stream's declared end; 0 unknown
  int64_t origin_pts = 0;   // the container's start time in the stream's time base
};

OpenedInput open_input(const std::string& url, const VideoReaderOptions& options) {
  av::initialise();
  if (options.start < 0 || options.end < 0 || (options.end > 0 && options.end <= options.start)) {
    throw Error(ErrorKind::bad_input, url + ": trim range [" + format_seconds(options.start) + ", " +
                                          format_seconds(options.end) + ") s is empty or negative");
  }
  const AVInputFormat* forced = nullptr;
  if (!options.input_format.empty()) {
    forced = av_find_input_format(options.input_format.c_str());
    if (!forced) {
      throw Error(ErrorKind::unsupported, url + ": FFmpeg here has no input format \"" + options.input_format + "\"");
    }
  }
  OpenedInput input;
  input.watchdog = std::make_unique<Watchdog>(options.timeout);
  AVFormatContext* raw = avformat_alloc_context();
  if (!raw) throw Error(ErrorKind::resource, "out of memory opening " + url);
  raw->interrupt_callback.callback = &Watchdog::callback;
  raw->interrupt_callback.opaque = input.watchdog.get();
  av::clear_last_log();
  input.watchdog->arm();
  const int opened = avformat_open_input(&raw, url.c_str(), forced, nullptr);  // frees `raw` on failure
  if (opened < 0 && input.watchdog->expired())
    throw Error(ErrorKind::io, "cannot open " + url + ": " + timeout_text(options.timeout));
  if (opened < 0) throw Error(av::open_error_kind(opened), "cannot open " + url + ": " + av::error_text(opened));
  input.format.reset(raw);
  AVFormatContext* format = input.format.get();
  input.watchdog->arm();
  const int found = avformat_find_stream_info(format, nullptr);
  input.watchdog->disarm();
  if (found < 0 && input.watchdog->expired())
    throw Error(ErrorKind::io, url + ": cannot read stream information: " + timeout_text(options.timeout));
  if (found < 0) throw Error(ErrorKind::bad_input, url + ": cannot read stream information: " + av::error_text(found));

  const int index = av_find_best_stream(format, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (index == AVERROR_STREAM_NOT_FOUND) throw Error(ErrorKind::bad_input, url + " has no video stream");
  if (index < 0) throw Error(ErrorKind::unsupported, url + ": no usable video stream: " + av::error_text(index));
  AVStream* stream = format->streams[index];
  input.stream = stream;
  // Only the video stream is read; the demuxer skips the rest cheaply.
  for (unsigned i = 0; i < format->nb_streams; ++i) {
    if (static_cast<int>(i) != index) format->streams[i]->discard = AVDISCARD_ALL;
  }
  const AVCodecParameters* par = stream->codecpar;
  if (par->width <= 0 || par->height <= 0) {
    throw Error(ErrorKind::bad_input, url + ": the video stream has no frame size (corrupt file?)");
  }
  if (static_cast<int64_t>(par->width) * par->height > options.max_pixels) {
    throw Error(ErrorKind::bad_input, url + ": frames of " + std::to_string(par->width) + "x" +
                                          std::to_string(par->height) + " exceed the limit of " +
                                          std::to_string(options.max_pixels) + " pixels");
  }

  VideoInfo& info = input.info;
  info.container = format->iformat->name;
  info.video_codec = avcodec_get_name(par->codec_id);
  info.width = par->width;
  info.height = par->height;
  info.rotation = av::stream_rotation(stream);
  AVRational rate = stream->avg_frame_rate;
  if (rate.num <= 0 || rate.den <= 0) rate = stream->r_frame_rate;
  info.frame_rate = (rate.num > 0 && rate.den > 0) ? av_q2d(rate) : 0.0;
  info.time_base_num = stream->time_base.num;
  info.time_base_den = stream->time_base.den;
  info.colour_range = name_or_unknown(av_color_range_name(par->color_range));
  info.colour_space = name_or_unknown(av_color_space_name(par->color_space));
  info.colour_primaries = name_or_unknown(av_color_primaries_name(par->color_primaries));
  info.colour_transfer = name_or_unknown(av_color_transfer_name(par->color_trc));
  const int audio = av_find_best_stream(format, AVMEDIA_TYPE_AUDIO, -1, -1, nullptr, 0);
  if (audio >= 0) {
    info.has_audio = true;
    info.audio_codec = avcodec_get_name(format->streams[audio]->codecpar->codec_id);
  }
  if (const AVCodec* decoder = avcodec_find_decoder(par->codec_id)) info.decoder = decoder->name;

  // Times are measured from the container's start, the origin the audio trim uses as well.
  const double tb = av_q2d(stream->time_base);
  if (format->start_time != AV_NOPTS_VALUE) {
    input.origin_pts = av_rescale_q(format->start_time, AV_TIME_BASE_Q, stream->time_base);
  }
  const double stream_start = stream->start_time != AV_NOPTS_VALUE ? (stream->start_time - input.origin_pts) * tb : 0.0;
  double declared = 0;
  if (stream->duration != AV_NOPTS_VALUE && stream->duration > 0) {
    declared = stream->duration * tb;
  } else if (format->duration != AV_NOPTS_VALUE && format->duration > 0) {
    declared = static_cast<double>(format->duration) / AV_TIME_BASE;
  }
  if (declared > 0) input.declared_end = stream_start + declared;

  const double first = std::max(options.start, stream_start);
  info.start_time = first;
  if (input.declared_end > 0) {
    const double last = options.end > 0 ? std::min(options.end, input.declared_end) : input.declared_end;
    info.duration = std::max(0.0, last - first);
  } else if (options.end > 0) {
    info.duration = options.end - first;
  }
  const bool trimmed = options.start > 0 || options.end > 0;
  if (!trimmed && stream->nb_frames > 0) {
    info.frame_count = stream->nb_frames;
  } else if (info.duration > 0 && info.frame_rate > 0) {
    info.frame_count = std::llround(info.duration * info.frame_rate);
  }
  return input;
}

bool is_full_range(const AVFrame& frame) {
  switch (frame.format) {
    case AV_PIX_FMT_YUVJ420P:
    case AV_PIX_FMT_YUVJ422P:
    case AV_PIX_FMT_YUVJ444P:
    case AV_PIX_FMT_YUVJ440P:
    case AV_PIX_FMT_YUVJ411P: return true;
    default: return frame.color_range == AVCOL_RANGE_JPEG;
  }
}

}  // namespace

struct VideoReader::Impl {
  std::string url;
  VideoReaderOptions options;
  OpenedInput input;
  av::CodecContextPtr decoder;
  av::PacketPtr packet = av::make_packet();
  av::FramePtr frame = av::make_frame();
  av::SwsPtr sws;
  int sws_format = -1;
  AVColorSpace sws_space = AVCOL_SPC_UNSPECIFIED;
  bool sws_full_range = false;

  int64_t start_pts = 0, end_pts = INT64_MAX;  // trim bounds in the stream's time base
  int64_t first_pts = AV_NOPTS_VALUE;          // source pts of the first delivered frame
  int64_t last_source_pts = AV_NOPTS_VALUE;
  int64_t delivered = 0;
  int64_t decode_errors = 0;
  std::string last_decode_error;
  bool demuxer_done = false, decoder_done = false, trim_end_reached = false;
  std::optional<VideoFrame> pending;  // the first frame, decoded at open to fail early
  std::chrono::steady_clock::time_point clock_start;

  std::string frame_context() const { return url + ": frame " + std::to_string(delivered); }

  void open_decoder() {
    const AVCodecParameters* par = input.stream->codecpar;
    if (options.hardware != HardwareDecode::off) {
      const std::string name = std::string(avcodec_get_name(par->codec_id)) + "_cuvid";
      std::string failure;
      if (!has_video_decoder(name)) {
        failure = "this FFmpeg has no " + name + " decoder";
      } else {
        try {
          open_with(avcodec_find_decoder_by_name(name.c_str()));
          return;
        } catch (const Error& e) {
          failure = e.what();
        }
      }
      if (options.hardware == HardwareDecode::cuda) {
        throw Error(ErrorKind::unsupported, url + ": NVDEC decoding unavailable: " + failure);
      }
    }
    const AVCodec* codec = avcodec_find_decoder(par->codec_id);
    if (!codec) {
      throw Error(ErrorKind::unsupported,
                  url + ": FFmpeg here has no decoder for " + std::string(avcodec_get_name(par->codec_id)));
    }
    open_with(codec);
  }

  void open_with(const AVCodec* codec) {
    av::CodecContextPtr context(avcodec_alloc_context3(codec));
    if (!context) throw Error(ErrorKind::resource, "out of memory opening a decoder for " + url);
    av::check(avcodec_parameters_to_context(context.get(), input.stream->codecpar), ErrorKind::internal,
              url + ": decoder parameters");
    context->pkt_timebase = input.stream->time_base;
    context->thread_count = options.threads;
    context->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
    av::clear_last_log();
    av::check(avcodec_open2(context.get(), codec, nullptr), ErrorKind::unsupported,
              url + ": cannot open the " + std::string(codec->name) + " decoder");
    decoder = std::move(context);
    input.info.decoder = codec->name;
  }

  void seek_to_start() {
    const AVRational tb = input.stream->time_base;
    start_pts = input.origin_pts + std::llround(options.start / av_q2d(tb));
    if (options.end > 0) end_pts = input.origin_pts + std::llround(options.end / av_q2d(tb));
    if (options.start > 0) {
      // Backward to the key frame before the start; frames before it are decoded and dropped.
      // A failed seek (a stream that cannot seek) just means decoding from the beginning.
      av_seek_frame(input.format.get(), input.stream->index, start_pts, AVSEEK_FLAG_BACKWARD);
    }
  }

  // Sends the next packet of the video stream to the decoder; false at the end of the input.
  void feed_decoder() {
    AVFormatContext* format = input.format.get();
    Watchdog& watchdog = *input.watchdog;
    watchdog.arm();
    struct Disarm {
      Watchdog& watchdog;
      ~Disarm() { watchdog.disarm(); }
    } disarm{watchdog};
    while (true) {
      av::clear_last_log();
      const int read = av_read_frame(format, packet.get());
      if (read == AVERROR(EAGAIN) && !watchdog.expired()) {  // a live device in non-blocking mode with nothing yet
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        continue;
      }
      // AVERROR_EXIT is the watchdog's (also when it cut stream probing short at open: FFmpeg keeps
      // the probed packets, delivered first, and then reports the interruption).
      if (read == AVERROR_EXIT || (read < 0 && watchdog.expired())) {
        throw Error(ErrorKind::io, frame_context() + ": " + timeout_text(watchdog.timeout()));
      }
      if (read >= 0) watchdog.arm();  // the timeout counts from the last data
      if (read == AVERROR_EOF || (read < 0 && format->pb && avio_feof(format->pb))) {
        demuxer_done = true;
        av::check(avcodec_send_packet(decoder.get(), nullptr), ErrorKind::internal, frame_context() + ": flush");
        return;
      }
      if (read < 0) {
        throw Error(ErrorKind::bad_input, frame_context() + ": cannot read the input: " + av::error_text(read));
      }
      if (packet->stream_index != input.stream->index) {
        av_packet_unref(packet.get());
        continue;
      }
      const int sent = avcodec_send_packet(decoder.get(), packet.get());
      av_packet_unref(packet.get());
      if (sent == AVERROR_INVALIDDATA) {
        ++decode_errors;  // a corrupt packet: skipped, counted, reported if nothing decodes
        last_decode_error = av::error_text(sent);
        continue;
      }
      av::check(sent, ErrorKind::bad_input, frame_context() + ": decoding failed");
      return;
    }
  }

  // The next decoded frame in presentation order, in `frame`; false when the decoder is drained.
  bool decode_next() {
    while (true) {
      const int received = avcodec_receive_frame(decoder.get(), frame.get());
      if (received == 0) return true;
      if (received == AVERROR_EOF) {
        decoder_done = true;
        return false;
      }
      if (received == AVERROR(EAGAIN)) {
        if (demuxer_done) {
          decoder_done = true;
          return false;
        }
        feed_decoder();
        continue;
      }
      if (received == AVERROR_INVALIDDATA) {
        ++decode_errors;
        last_decode_error = av::error_text(received);
        continue;
      }
      av::check(received, ErrorKind::bad_input, frame_context() + ": decoding failed");
    }
  }

  at::Tensor to_rgb(const AVFrame& source) {
    const int width = source.width, height = source.height;
    const AVColorSpace space =
        source.colorspace != AVCOL_SPC_UNSPECIFIED ? source.colorspace : input.stream->codecpar->color_space;
    const bool full_range = is_full_range(source);
    // Chroma interpolated to full width (FULL_CHR_H_INT); not ACCURATE_RND, which turns off
    // swscale's SIMD paths and costs ~8 ms per 720p frame for < 0.5 dB.
    if (!sws || sws_format != source.format || sws_space != space || sws_full_range != full_range) {
      sws.reset(sws_getContext(width, height, static_cast<AVPixelFormat>(source.format), width, height,
                               AV_PIX_FMT_RGB24, SWS_BICUBIC | SWS_FULL_CHR_H_INT, nullptr, nullptr, nullptr));
      if (!sws) {
        throw Error(ErrorKind::unsupported,
                    frame_context() + ": cannot convert pixel format " +
                        name_or_unknown(av_get_pix_fmt_name(static_cast<AVPixelFormat>(source.format))) + " to RGB");
      }
      const int* coefficients = sws_getCoefficients(av::sws_colourspace(space, width, height));
      sws_setColorspaceDetails(sws.get(), coefficients, full_range ? 1 : 0, sws_getCoefficients(SWS_CS_DEFAULT), 1, 0,
                               1 << 16, 1 << 16);
      sws_format = source.format;
      sws_space = space;
      sws_full_range = full_range;
    }
    // swscale's vector paths may store a few bytes past the last row: pad the allocation.
    const int64_t bytes = static_cast<int64_t>(width) * height * 3;
    at::Tensor storage = at::empty({bytes + 64}, at::kByte);
    uint8_t* destination[4] = {storage.data_ptr<uint8_t>(), nullptr, nullptr, nullptr};
    int destination_stride[4] = {width * 3, 0, 0, 0};
    sws_scale(sws.get(), source.data, source.linesize, 0, height, destination, destination_stride);
    return storage.narrow(0, 0, bytes).view({height, width, 3});
  }

  std::optional<VideoFrame> next_frame() {
    const VideoInfo& info = input.info;
    const double tb = av_q2d(input.stream->time_base);
    while (!trim_end_reached && !decoder_done) {
      if (!decode_next()) break;
      int64_t pts = frame->best_effort_timestamp;
      if (pts == AV_NOPTS_VALUE) pts = frame->pts;
      if (pts == AV_NOPTS_VALUE) {
        // No timestamp at all (raw streams): one frame period after the previous frame.
        const int64_t step = info.frame_rate > 0 ? std::max<int64_t>(1, std::llround(1.0 / (info.frame_rate * tb))) : 1;
        pts = last_source_pts == AV_NOPTS_VALUE ? start_pts : last_source_pts + step;
      }
      // A small tolerance keeps a frame at exactly the trim point despite rounding.
      const int64_t tolerance = std::max<int64_t>(0, std::llround(1e-4 / tb));
      if (options.start > 0 && pts < start_pts - tolerance) {
        av_frame_unref(frame.get());
        continue;
      }
      if (pts >= end_pts - tolerance) {
        trim_end_reached = true;
        av_frame_unref(frame.get());
        break;
      }
      if (frame->width != info.width || frame->height != info.height) {
        throw Error(ErrorKind::bad_input, frame_context() + " is " + std::to_string(frame->width) + "x" +
                                              std::to_string(frame->height) + ", the stream started at " +
                                              std::to_string(info.width) + "x" + std::to_string(info.height) +
                                              " (resolution changes are not supported)");
      }
      if (first_pts == AV_NOPTS_VALUE) {
        first_pts = pts;
        input.info.start_time = (pts - input.origin_pts) * tb;
      }
      last_source_pts = pts;
      VideoFrame out;
      out.rgb = to_rgb(*frame);
      av_frame_unref(frame.get());
      out.index = delivered++;
      out.pts = pts - first_pts;
      out.time = out.pts * tb;
      return out;
    }
    if (delivered == 0) {
      if (decode_errors > 0) {
        throw Error(ErrorKind::bad_input, url + ": no frame could be decoded (" + std::to_string(decode_errors) +
                                              " corrupt packets, last: " + last_decode_error + ")");
      }
      throw Error(ErrorKind::bad_input, url + ": no video frame at or after " + format_seconds(options.start) + " s");
    }
    check_truncation();
    return std::nullopt;
  }

  // A stream that stops well before the duration its container declares was most likely cut off.
  void check_truncation() const {
    if (trim_end_reached || options.end > 0 || input.declared_end <= 0 || input.info.frame_rate <= 0) return;
    const double tb = av_q2d(input.stream->time_base);
    const double period = 1.0 / input.info.frame_rate;
    const double reached = (last_source_pts - input.origin_pts) * tb + period;
    if (reached < 0.9 * input.declared_end && input.declared_end - reached > 2 * period) {
      throw Error(ErrorKind::bad_input, url + " ends at " + format_seconds(reached) + " s of its declared " +
                                            format_seconds(input.declared_end) + " s (truncated?)");
    }
  }
};

VideoReader::VideoReader(const std::string& url, const VideoReaderOptions& options) : impl_(std::make_unique<Impl>()) {
  impl_->url = url;
  impl_->options = options;
  impl_->input = open_input(url, options);
  impl_->open_decoder();
  impl_->seek_to_start();
  impl_->pending = impl_->next_frame();
}

VideoReader::~VideoReader() = default;
VideoReader::VideoReader(VideoReader&&) noexcept = default;
VideoReader& VideoReader::operator=(VideoReader&&) noexcept = default;

const VideoInfo& VideoReader::info() const { return impl_->input.info; }

std::optional<VideoFrame> VideoReader::read() {
  Impl& impl = *impl_;
  std::optional<VideoFrame> out;
  if (impl.pending) {
    out = std::move(impl.pending);
    impl.pending.reset();
  } else {
    out = impl.next_frame();
  }
  if (out && impl.options.realtime) {
    const auto now = std::chrono::steady_clock::now();
    if (out->index == 0) impl.clock_start = now;
    std::this_thread::sleep_until(impl.clock_start + std::chrono::duration<double>(out->time));
  }
  return out;
}

VideoInfo probe_video(const std::string& url, const VideoReaderOptions& options) {
  return open_input(url, options).info;
}

}  // namespace visage
