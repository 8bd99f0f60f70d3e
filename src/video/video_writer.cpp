// VideoWriter: RGB frames -> swscale -> encoder -> muxer, with the audio of
// another file interleaved, written to "<path>.part" and renamed on finish().
#include <ATen/ATen.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "video/audio_transfer.hpp"
#include "video/av_ptr.hpp"
#include "visage/video.hpp"

extern "C" {
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
}

namespace visage {
namespace {

bool is_url(const std::string& path) { return path.find("://") != std::string::npos; }
bool is_device(const std::string& path) { return path.rfind("/dev/", 0) == 0; }

bool supports(const AVCodec* codec, AVPixelFormat format) {
  if (!codec->pix_fmts) return true;
  for (const AVPixelFormat* f = codec->pix_fmts; *f != AV_PIX_FMT_NONE; ++f) {
    if (*f == format) return true;
  }
  return false;
}

// yuv420p, what every player decodes; frames of odd width or height cannot be
// 4:2:0 in x264/x265/VP9, so they get 4:4:4 where the encoder has it.
AVPixelFormat pick_pixel_format(const AVCodec* codec, int width, int height) {
  AVPixelFormat format = AV_PIX_FMT_YUV420P;
  if (((width | height) & 1) && supports(codec, AV_PIX_FMT_YUV444P)) format = AV_PIX_FMT_YUV444P;
  if (!supports(codec, format)) format = codec->pix_fmts[0];
  return format;
}

}  // namespace

struct VideoWriter::Impl {
  std::string path, write_path;
  VideoInfo like;
  VideoWriterOptions options;
  bool local_file = true;  // a file we may rename and remove (not a URL or a device)
  bool finished = false;
  bool created = false;  // the output file exists because we opened it
  av::OutputFormatPtr output;
  AVStream* stream = nullptr;
  av::CodecContextPtr encoder;
  std::string encoder_name;
  av::SwsPtr sws;
  av::FramePtr yuv = av::make_frame();
  av::PacketPtr packet = av::make_packet();
  std::unique_ptr<av::AudioTransfer> audio;
  AVRational input_time_base{1, 1};
  int64_t last_pts = AV_NOPTS_VALUE;  // in the encoder's time base
  int64_t frames = 0;
  double video_end = 0;  // seconds: end of the last frame written

  ~Impl() {
    if (finished) return;
    // A run that did not finish leaves nothing that looks like a result.
    encoder.reset();
    output.reset();
    if (local_file && created) {
      std::error_code ignored;
      std::filesystem::remove(write_path, ignored);
    }
  }

  std::string context() const { return path + ": frame " + std::to_string(frames); }

  av::CodecContextPtr try_encoder(const std::string& name) {
    const AVCodec* codec = avcodec_find_encoder_by_name(name.c_str());
    if (!codec || codec->type != AVMEDIA_TYPE_VIDEO) {
      throw Error(ErrorKind::unsupported, path + ": FFmpeg here has no video encoder \"" + name + "\"");
    }
    av::CodecContextPtr context(avcodec_alloc_context3(codec));
    if (!context) throw Error(ErrorKind::resource, "out of memory opening the " + name + " encoder");
    AVCodecContext* c = context.get();
    c->width = like.width;
    c->height = like.height;
    c->pix_fmt = pick_pixel_format(codec, like.width, like.height);
    c->sample_aspect_ratio = AVRational{1, 1};
    c->thread_count = options.encode.threads;
    AVRational rate = like.frame_rate > 0 ? av_d2q(like.frame_rate, 1001000) : AVRational{0, 1};
    if (rate.num > 0) c->framerate = rate;
    // The input's time base passes every frame's timestamp through (variable frame rate
    // stays variable), except where an encoder limits it.
    c->time_base = input_time_base;
    if ((name == "mpeg2video" || name == "mpeg1video") && rate.num > 0) c->time_base = av_inv_q(rate);
    if (name == "mpeg4" && c->time_base.den > 65535) {
      c->time_base = rate.num > 0 && rate.num <= 65535 ? av_inv_q(rate) : AVRational{1, 1000};
    }
    c->color_range = static_cast<AVColorRange>(std::max(0, av_color_range_from_name(like.colour_range.c_str())));
    const int space = av_color_space_from_name(like.colour_space.c_str());
    c->colorspace = space >= 0 ? static_cast<AVColorSpace>(space) : AVCOL_SPC_UNSPECIFIED;
    const int primaries = av_color_primaries_from_name(like.colour_primaries.c_str());
    c->color_primaries = primaries >= 0 ? static_cast<AVColorPrimaries>(primaries) : AVCOL_PRI_UNSPECIFIED;
    const int transfer = av_color_transfer_from_name(like.colour_transfer.c_str());
    c->color_trc = transfer >= 0 ? static_cast<AVColorTransferCharacteristic>(transfer) : AVCOL_TRC_UNSPECIFIED;
    if (output->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;

    const VideoEncodeOptions& encode = options.encode;
    av::Dictionary settings;
    const bool x26x = name == "libx264" || name == "libx265";
    if (x26x) {
      settings.set("preset", encode.preset.empty() ? "veryfast" : encode.preset);
      settings.set("crf", std::to_string(encode.quality >= 0 ? encode.quality : 18));
      if (name == "libx265") settings.set("x265-params", "log-level=error");  // x265 prints on its own otherwise
    } else if (name == "libvpx-vp9") {
      settings.set("crf", std::to_string(encode.quality >= 0 ? encode.quality : 18));
      c->bit_rate = 0;  // constant quality
      settings.set("deadline", encode.preset.empty() ? "good" : encode.preset);
      settings.set("cpu-used", "4");
      settings.set("row-mt", "1");
    } else if (name == "h264_nvenc" || name == "hevc_nvenc") {
      settings.set("preset", encode.preset.empty() ? "p4" : encode.preset);
      settings.set("rc", "vbr");
      settings.set("cq", std::to_string(encode.quality >= 0 ? encode.quality : 18));
      c->bit_rate = 0;
    } else if (name == "mpeg4" || name == "mpeg2video" || name == "mpeg1video") {
      c->flags |= AV_CODEC_FLAG_QSCALE;
      c->global_quality = FF_QP2LAMBDA * (encode.quality >= 1 ? encode.quality : 2);
    } else if (!encode.preset.empty()) {
      settings.set("preset", encode.preset);
    }
    av::clear_last_log();
    const int opened = avcodec_open2(c, codec, settings.get());
    if (opened < 0) {
      throw Error(ErrorKind::unsupported, path + ": cannot open the " + name + " encoder for " +
                                              std::to_string(like.width) + "x" + std::to_string(like.height) + ": " +
                                              av::error_text(opened));
    }
    return context;
  }

  void open_encoder() {
    std::string requested = options.encode.encoder.empty() ? std::string("libx264") : options.encode.encoder;
    // A v4l2 loopback device takes raw frames only: the default encoder would not open there.
    if (std::strcmp(output->oformat->name, "v4l2") == 0 && (requested == "libx264" || requested == "auto")) {
      requested = "rawvideo";
    }
    if (requested == "auto") {
      if (has_video_encoder("h264_nvenc")) {
        try {
          encoder = try_encoder("h264_nvenc");
        } catch (const Error&) {
          // No NVENC on this card or no card: the CPU encoder, as "auto" promises.
        }
      }
      if (!encoder) encoder = try_encoder("libx264");
    } else {
      encoder = try_encoder(requested);
    }
    encoder_name = encoder->codec->name;
  }

  void open(const std::string& target) {
    av::initialise();
    if (like.width <= 0 || like.height <= 0) {
      throw Error(ErrorKind::bad_input, target + ": the video to write has no frame size");
    }
    path = target;
    local_file = !is_url(path) && !is_device(path);
    write_path = (options.atomic && local_file) ? path + ".part" : path;
    input_time_base = AVRational{like.time_base_num, like.time_base_den};
    if (input_time_base.num <= 0 || input_time_base.den <= 0) {
      input_time_base = like.frame_rate > 0 ? av_inv_q(av_d2q(like.frame_rate, 1001000)) : AVRational{1, 1000};
    }

    const AVOutputFormat* format = options.format.empty() ? av_guess_format(nullptr, path.c_str(), nullptr)
                                                          : av_guess_format(options.format.c_str(), nullptr, nullptr);
    if (!format) {
      throw Error(ErrorKind::unsupported, options.format.empty()
                                              ? path + ": no container FFmpeg writes has this file extension"
                                              : path + ": FFmpeg here has no output format \"" + options.format + "\"");
    }
    AVFormatContext* raw = nullptr;
    av::check(avformat_alloc_output_context2(&raw, format, nullptr, write_path.c_str()), ErrorKind::resource,
              path + ": output context");
    output.reset(raw);

    open_encoder();
    stream = avformat_new_stream(output.get(), nullptr);
    if (!stream) throw Error(ErrorKind::resource, "out of memory adding a video stream");
    av::check(avcodec_parameters_from_context(stream->codecpar, encoder.get()), ErrorKind::internal,
              path + ": video parameters");
    stream->time_base = encoder->time_base;
    if (encoder->framerate.num > 0) stream->avg_frame_rate = encoder->framerate;
    av::set_stream_rotation(stream, like.rotation);

    if (!options.audio_from.empty()) {
      audio =
          std::make_unique<av::AudioTransfer>(options.audio_from, output.get(), options.audio_start, options.audio_end);
      if (!audio->active()) audio.reset();
    }

    if (!(format->flags & AVFMT_NOFILE)) {
      av::clear_last_log();
      const int opened = avio_open(&output->pb, write_path.c_str(), AVIO_FLAG_WRITE);
      if (opened < 0) throw Error(ErrorKind::io, "cannot write " + path + ": " + av::error_text(opened));
      created = true;
    }
    av::Dictionary muxer;
    if (local_file) muxer.set("movflags", "+faststart");  // mp4/mov: index first, playable while downloading
    av::clear_last_log();
    const int header = avformat_write_header(output.get(), muxer.get());
    if (header < 0) {
      throw Error(ErrorKind::unsupported, path + ": cannot start the " + std::string(format->name) +
                                              " container (codec not allowed there?): " + av::error_text(header));
    }

    yuv->format = encoder->pix_fmt;
    yuv->width = like.width;
    yuv->height = like.height;
    av::check(av_frame_get_buffer(yuv.get(), 0), ErrorKind::resource, path + ": frame buffer");
    sws.reset(sws_getContext(like.width, like.height, AV_PIX_FMT_RGB24, like.width, like.height, encoder->pix_fmt,
                             SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INP, nullptr, nullptr, nullptr));
    if (!sws) throw Error(ErrorKind::unsupported, path + ": cannot convert RGB to the encoder's pixel format");
    // The inverse of the reader's conversion: the same matrix and range.
    const int matrix = av::sws_colourspace(encoder->colorspace, like.width, like.height);
    sws_setColorspaceDetails(sws.get(), sws_getCoefficients(SWS_CS_DEFAULT), 1, sws_getCoefficients(matrix),
                             encoder->color_range == AVCOL_RANGE_JPEG ? 1 : 0, 0, 1 << 16, 1 << 16);
  }

  void write_packets() {
    while (true) {
      const int received = avcodec_receive_packet(encoder.get(), packet.get());
      if (received == AVERROR(EAGAIN) || received == AVERROR_EOF) return;
      av::check(received, ErrorKind::internal, context() + ": encoding");
      av_packet_rescale_ts(packet.get(), encoder->time_base, stream->time_base);
      packet->stream_index = stream->index;
      if (audio) {
        const int64_t when = packet->dts != AV_NOPTS_VALUE ? packet->dts : packet->pts;
        audio->write_until(output.get(), when * av_q2d(stream->time_base));
      }
      av::clear_last_log();
      av::check(av_interleaved_write_frame(output.get(), packet.get()), ErrorKind::io, "writing " + path);
    }
  }

  void write(const VideoFrame& frame) {
    if (finished) throw Error(ErrorKind::internal, path + ": write() after finish()");
    const at::Tensor& rgb = frame.rgb;
    if (!rgb.defined() || rgb.dim() != 3 || rgb.size(0) != like.height || rgb.size(1) != like.width ||
        rgb.size(2) != 3 || rgb.scalar_type() != at::kByte) {
      throw Error(ErrorKind::bad_input, context() + ": expected a [" + std::to_string(like.height) + ", " +
                                            std::to_string(like.width) + ", 3] uint8 RGB tensor");
    }
    const at::Tensor pixels = rgb.to(at::kCPU).contiguous();
    av::check(av_frame_make_writable(yuv.get()), ErrorKind::resource, context() + ": frame buffer");
    const uint8_t* source[4] = {pixels.data_ptr<uint8_t>(), nullptr, nullptr, nullptr};
    const int source_stride[4] = {like.width * 3, 0, 0, 0};
    sws_scale(sws.get(), source, source_stride, 0, like.height, yuv->data, yuv->linesize);

    int64_t pts = av_rescale_q(frame.pts, input_time_base, encoder->time_base);
    // Two frames may land on one tick of a coarser encoder time base (MPEG-2): keep them apart.
    if (last_pts != AV_NOPTS_VALUE && pts <= last_pts) pts = last_pts + 1;
    last_pts = pts;
    yuv->pts = pts;
    const double period = like.frame_rate > 0 ? 1.0 / like.frame_rate : 0.0;
    video_end = std::max(video_end, pts * av_q2d(encoder->time_base) + period);
    av::clear_last_log();
    av::check(avcodec_send_frame(encoder.get(), yuv.get()), ErrorKind::internal, context() + ": encoding");
    ++frames;
    write_packets();
  }

  void finish() {
    if (finished) return;
    if (frames == 0) throw Error(ErrorKind::bad_input, path + ": no frames were written");
    av::check(avcodec_send_frame(encoder.get(), nullptr), ErrorKind::internal, path + ": flushing the encoder");
    write_packets();
    // Audio runs to its trim end but not past the last frame (a live source would never end).
    if (audio) audio->write_until(output.get(), video_end);
    av::clear_last_log();
    av::check(av_write_trailer(output.get()), ErrorKind::io, "finishing " + path);
    if (!(output->oformat->flags & AVFMT_NOFILE)) {
      av::check(avio_closep(&output->pb), ErrorKind::io, "closing " + path);
    }
    output.reset();
    if (write_path != path) {
      std::error_code error;
      std::filesystem::rename(write_path, path, error);
      if (error) throw Error(ErrorKind::io, "cannot rename " + write_path + " to " + path + ": " + error.message());
    }
    finished = true;
  }
};

VideoWriter::VideoWriter(const std::string& path, const VideoInfo& like, const VideoWriterOptions& options)
    : impl_(std::make_unique<Impl>()) {
  impl_->like = like;
  impl_->options = options;
  impl_->open(path);
}

VideoWriter::~VideoWriter() = default;
VideoWriter::VideoWriter(VideoWriter&&) noexcept = default;
VideoWriter& VideoWriter::operator=(VideoWriter&&) noexcept = default;

void VideoWriter::write(const VideoFrame& frame) { impl_->write(frame); }
void VideoWriter::finish() { impl_->finish(); }
const std::string& VideoWriter::encoder_name() const { return impl_->encoder_name; }
int64_t VideoWriter::frames_written() const { return impl_->frames; }

}  // namespace visage
