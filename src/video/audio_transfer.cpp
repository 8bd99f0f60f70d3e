// Audio for VideoWriter: copied or re-encoded, trimmed, interleaved with the video.
#include "video/audio_transfer.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

extern "C" {
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
}

namespace visage::av {

AudioTransfer::AudioTransfer(const std::string& url, AVFormatContext* output, double start, double end)
    : url_(url), start_(start), end_(end) {
  initialise();
  AVFormatContext* raw = nullptr;
  clear_last_log();
  const int opened = avformat_open_input(&raw, url.c_str(), nullptr, nullptr);
  if (opened < 0) {
    throw Error(open_error_kind(opened), "cannot open the audio source " + url + ": " + error_text(opened));
  }
  input_.reset(raw);
  check(avformat_find_stream_info(raw, nullptr), ErrorKind::bad_input, url + ": cannot read stream information");
  const int index = av_find_best_stream(raw, AVMEDIA_TYPE_AUDIO, -1, -1, nullptr, 0);
  if (index < 0) return;  // no audio: the output has none either
  in_stream_ = raw->streams[index];
  for (unsigned i = 0; i < raw->nb_streams; ++i) {
    if (static_cast<int>(i) != index) raw->streams[i]->discard = AVDISCARD_ALL;
  }
  if (raw->start_time != AV_NOPTS_VALUE) {
    origin_pts_ = av_rescale_q(raw->start_time, AV_TIME_BASE_Q, in_stream_->time_base);
  }
  const double tb = av_q2d(in_stream_->time_base);
  start_pts_ = origin_pts_ + std::llround(start / tb);
  if (end > 0) end_pts_ = origin_pts_ + std::llround(end / tb);
  if (start > 0) av_seek_frame(raw, index, start_pts_, AVSEEK_FLAG_BACKWARD);

  // 1: the muxer takes it; 0: it does not; < 0: the muxer does not say (try copying).
  const int takes = avformat_query_codec(output->oformat, in_stream_->codecpar->codec_id, FF_COMPLIANCE_NORMAL);
  copy_ = takes != 0;
  out_stream_ = avformat_new_stream(output, nullptr);
  if (!out_stream_) throw Error(ErrorKind::resource, "out of memory adding an audio stream");
  if (copy_) {
    check(avcodec_parameters_copy(out_stream_->codecpar, in_stream_->codecpar), ErrorKind::internal,
          url + ": audio parameters");
    out_stream_->codecpar->codec_tag = 0;  // the output container's own tag
    out_stream_->time_base = in_stream_->time_base;
  } else {
    open_encoder(output);
  }
}

void AudioTransfer::open_encoder(AVFormatContext* output) {
  const AVCodec* decoder = avcodec_find_decoder(in_stream_->codecpar->codec_id);
  if (!decoder) {
    throw Error(ErrorKind::unsupported, url_ + ": FFmpeg here has no decoder for its " +
                                            std::string(avcodec_get_name(in_stream_->codecpar->codec_id)) + " audio");
  }
  decoder_.reset(avcodec_alloc_context3(decoder));
  if (!decoder_) throw Error(ErrorKind::resource, "out of memory opening an audio decoder");
  check(avcodec_parameters_to_context(decoder_.get(), in_stream_->codecpar), ErrorKind::internal,
        url_ + ": audio decoder parameters");
  decoder_->pkt_timebase = in_stream_->time_base;
  check(avcodec_open2(decoder_.get(), decoder, nullptr), ErrorKind::unsupported,
        url_ + ": cannot open the audio decoder");

  // WebM takes Opus and Vorbis only; everything else gets FFmpeg's native AAC encoder.
  const bool webm = std::strcmp(output->oformat->name, "webm") == 0;
  const AVCodec* codec = avcodec_find_encoder_by_name(webm ? "libopus" : "aac");
  if (!codec && webm) codec = avcodec_find_encoder_by_name("opus");
  if (!codec)
    throw Error(ErrorKind::unsupported,
                "no audio encoder for the " + std::string(output->oformat->name) + " container");
  encoder_.reset(avcodec_alloc_context3(codec));
  if (!encoder_) throw Error(ErrorKind::resource, "out of memory opening an audio encoder");
  AVCodecContext* enc = encoder_.get();
  enc->sample_fmt = codec->sample_fmts ? codec->sample_fmts[0] : AV_SAMPLE_FMT_FLTP;
  int rate = decoder_->sample_rate > 0 ? decoder_->sample_rate : 48000;
  if (codec->supported_samplerates) {
    // The source's rate when the encoder has it, else the encoder's highest.
    int best = 0;
    bool found = false;
    for (const int* r = codec->supported_samplerates; *r; ++r) {
      if (*r == rate) found = true;
      best = std::max(best, *r);
    }
    if (!found) rate = best;
  }
  enc->sample_rate = rate;
  if (decoder_->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC || decoder_->ch_layout.nb_channels == 0) {
    av_channel_layout_default(&enc->ch_layout, std::max(1, decoder_->ch_layout.nb_channels));
  } else {
    check(av_channel_layout_copy(&enc->ch_layout, &decoder_->ch_layout), ErrorKind::internal, "audio channel layout");
  }
  enc->bit_rate = webm ? 128000 : 192000;
  enc->time_base = AVRational{1, rate};
  if (output->oformat->flags & AVFMT_GLOBALHEADER) enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  clear_last_log();
  check(avcodec_open2(enc, codec, nullptr), ErrorKind::unsupported,
        "cannot open the " + std::string(codec->name) + " audio encoder for " + url_ + "'s audio");
  check(avcodec_parameters_from_context(out_stream_->codecpar, enc), ErrorKind::internal, "audio encoder parameters");
  out_stream_->time_base = enc->time_base;
  fifo_.reset(av_audio_fifo_alloc(enc->sample_fmt, enc->ch_layout.nb_channels, 4096));
  if (!fifo_) throw Error(ErrorKind::resource, "out of memory for the audio buffer");
}

void AudioTransfer::write_until(AVFormatContext* output, double seconds) {
  if (!active()) return;
  while (true) {
    if (ready_.empty() && !produce()) return;
    if (ready_.empty()) continue;
    AVPacket* next = ready_.front().get();
    const int64_t when = next->dts != AV_NOPTS_VALUE ? next->dts : next->pts;
    if (when != AV_NOPTS_VALUE && when * av_q2d(out_stream_->time_base) >= seconds) return;
    check(av_interleaved_write_frame(output, next), ErrorKind::io, "writing audio from " + url_);
    ready_.pop_front();
  }
}

bool AudioTransfer::produce() {
  if (input_done_) return false;
  clear_last_log();
  const int read = av_read_frame(input_.get(), packet_.get());
  bool end = read < 0;
  if (read < 0 && read != AVERROR_EOF && !(input_->pb && avio_feof(input_->pb))) {
    throw Error(ErrorKind::bad_input, url_ + ": cannot read its audio: " + error_text(read));
  }
  if (!end && packet_->stream_index == in_stream_->index && packet_->pts != AV_NOPTS_VALUE &&
      packet_->pts >= end_pts_) {
    end = true;
  }
  if (end) {
    av_packet_unref(packet_.get());
    input_done_ = true;
    if (!copy_) {
      decode_and_queue(nullptr);
      encode_fifo(true);
    }
    return !ready_.empty();
  }
  if (packet_->stream_index != in_stream_->index) {
    av_packet_unref(packet_.get());
    return true;
  }
  if (copy_) {
    const int64_t duration = std::max<int64_t>(packet_->duration, 0);
    if (packet_->pts != AV_NOPTS_VALUE && packet_->pts + duration <= start_pts_ && start_ > 0) {
      av_packet_unref(packet_.get());  // wholly before the trim start
      return true;
    }
    PacketPtr out = make_packet();
    av_packet_move_ref(out.get(), packet_.get());
    // The trim start becomes time 0, the time of the video's first frame.
    if (out->pts != AV_NOPTS_VALUE) out->pts -= start_pts_;
    if (out->dts != AV_NOPTS_VALUE) out->dts -= start_pts_;
    av_packet_rescale_ts(out.get(), in_stream_->time_base, out_stream_->time_base);
    out->stream_index = out_stream_->index;
    out->pos = -1;
    ready_.push_back(std::move(out));
  } else {
    decode_and_queue(packet_.get());
    av_packet_unref(packet_.get());
  }
  return true;
}

void AudioTransfer::decode_and_queue(const AVPacket* packet) {
  const int sent = avcodec_send_packet(decoder_.get(), packet);
  if (sent == AVERROR_INVALIDDATA) return;  // a corrupt audio packet: a short gap, not worth failing the video
  if (sent < 0 && sent != AVERROR_EOF) check(sent, ErrorKind::bad_input, url_ + ": decoding its audio");
  while (true) {
    const int received = avcodec_receive_frame(decoder_.get(), decoded_.get());
    if (received == AVERROR(EAGAIN) || received == AVERROR_EOF) break;
    if (received == AVERROR_INVALIDDATA) continue;
    check(received, ErrorKind::bad_input, url_ + ": decoding its audio");
    resample_into_fifo(decoded_.get());
    av_frame_unref(decoded_.get());
  }
  encode_fifo(false);
}

void AudioTransfer::resample_into_fifo(const AVFrame* frame) {
  AVCodecContext* enc = encoder_.get();
  if (!swr_) {
    SwrContext* raw = nullptr;
    // FFmpeg 5.1 declares the input layout non-const; swr only reads it.
    AVChannelLayout* input_layout = const_cast<AVChannelLayout*>(&frame->ch_layout);
    check(swr_alloc_set_opts2(&raw, &enc->ch_layout, enc->sample_fmt, enc->sample_rate, input_layout,
                              static_cast<AVSampleFormat>(frame->format), frame->sample_rate, 0, nullptr),
          ErrorKind::unsupported, url_ + ": audio resampler");
    swr_.reset(raw);
    check(swr_init(raw), ErrorKind::unsupported, url_ + ": audio resampler");
  }
  // Convert the whole frame, then keep the samples inside [start, end) of the output timeline.
  const int capacity = swr_get_out_samples(swr_.get(), frame->nb_samples) + 32;
  FramePtr converted = make_frame();
  converted->format = enc->sample_fmt;
  converted->sample_rate = enc->sample_rate;
  check(av_channel_layout_copy(&converted->ch_layout, &enc->ch_layout), ErrorKind::internal, "audio channel layout");
  converted->nb_samples = capacity;
  check(av_frame_get_buffer(converted.get(), 0), ErrorKind::resource, "audio buffer");
  const int count =
      swr_convert(swr_.get(), converted->data, capacity, const_cast<const uint8_t**>(frame->data), frame->nb_samples);
  check(count, ErrorKind::internal, url_ + ": resampling its audio");
  if (count == 0) return;

  const int64_t source_pts = frame->best_effort_timestamp != AV_NOPTS_VALUE ? frame->best_effort_timestamp : frame->pts;
  const double rate = enc->sample_rate;
  // Output time (seconds) of the first converted sample; without a timestamp, right after the last one.
  double first = 0;
  if (source_pts != AV_NOPTS_VALUE) {
    first = (source_pts - start_pts_) * av_q2d(in_stream_->time_base);
  } else if (next_sample_ != AV_NOPTS_VALUE) {
    first = next_sample_ / rate;
  }
  const int64_t skip = std::clamp<int64_t>(std::llround(-first * rate), 0, count);
  const int64_t keep =
      end_ > 0 ? std::clamp<int64_t>(std::llround(((end_ - start_) - first) * rate), 0, count) : int64_t{count};
  if (keep <= skip) return;
  if (next_sample_ == AV_NOPTS_VALUE) next_sample_ = std::max<int64_t>(0, std::llround(first * rate) + skip);
  const int planes = av_sample_fmt_is_planar(enc->sample_fmt) ? enc->ch_layout.nb_channels : 1;
  const int step = av_get_bytes_per_sample(enc->sample_fmt) * (planes == 1 ? enc->ch_layout.nb_channels : 1);
  void* data[AV_NUM_DATA_POINTERS] = {};
  for (int p = 0; p < planes; ++p) data[p] = converted->extended_data[p] + skip * step;
  if (av_audio_fifo_write(fifo_.get(), data, static_cast<int>(keep - skip)) < keep - skip) {
    throw Error(ErrorKind::resource, "out of memory buffering audio");
  }
}

void AudioTransfer::encode_fifo(bool flush) {
  AVCodecContext* enc = encoder_.get();
  const int frame_size = enc->frame_size > 0 ? enc->frame_size : 1024;
  while (av_audio_fifo_size(fifo_.get()) >= frame_size || (flush && av_audio_fifo_size(fifo_.get()) > 0)) {
    const int n = std::min(frame_size, av_audio_fifo_size(fifo_.get()));
    FramePtr frame = make_frame();
    frame->nb_samples = n;
    frame->format = enc->sample_fmt;
    frame->sample_rate = enc->sample_rate;
    check(av_channel_layout_copy(&frame->ch_layout, &enc->ch_layout), ErrorKind::internal, "audio channel layout");
    check(av_frame_get_buffer(frame.get(), 0), ErrorKind::resource, "audio buffer");
    av_audio_fifo_read(fifo_.get(), reinterpret_cast<void**>(frame->data), n);
    frame->pts = next_sample_;
    next_sample_ += n;
    check(avcodec_send_frame(enc, frame.get()), ErrorKind::internal, "encoding audio from " + url_);
    queue_encoded();
  }
  if (flush) {
    check(avcodec_send_frame(enc, nullptr), ErrorKind::internal, "flushing the audio encoder");
    queue_encoded();
  }
}

void AudioTransfer::queue_encoded() {
  while (true) {
    PacketPtr out = make_packet();
    const int received = avcodec_receive_packet(encoder_.get(), out.get());
    if (received == AVERROR(EAGAIN) || received == AVERROR_EOF) return;
    check(received, ErrorKind::internal, "encoding audio from " + url_);
    av_packet_rescale_ts(out.get(), encoder_->time_base, out_stream_->time_base);
    out->stream_index = out_stream_->index;
    ready_.push_back(std::move(out));
  }
}

}  // namespace visage::av
