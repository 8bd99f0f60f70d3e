// The audio of a VideoWriter's output: read from another file, trimmed, and
// either copied packet for packet or re-encoded when the output container
// does not take the codec. Private to src/video/.
#pragma once

#include <deque>
#include <string>

#include "video/av_ptr.hpp"

namespace visage::av {

class AudioTransfer {
 public:
  // Opens `url` and adds an audio stream to `output` (before its header is written).
  // `start`/`end` are seconds on the source's timeline (0 = the container's start;
  // end 0 = to the end); the output's audio starts at `start`. Throws Error{io}
  // when the file cannot be opened; callers check has_audio() first via probe.
  AudioTransfer(const std::string& url, AVFormatContext* output, double start, double end);
  AudioTransfer(const AudioTransfer&) = delete;
  AudioTransfer& operator=(const AudioTransfer&) = delete;

  // Whether `url` had an audio stream (if not, nothing was added to the output).
  bool active() const { return out_stream_ != nullptr; }
  bool copied() const { return copy_; }

  // Writes (interleaved) every audio packet that starts before `seconds` on the output's timeline.
  void write_until(AVFormatContext* output, double seconds);

 private:
  void open_encoder(AVFormatContext* output);
  // Reads one input packet and turns it into zero or more queued output packets; false at the end.
  bool produce();
  void decode_and_queue(const AVPacket* packet);
  void resample_into_fifo(const AVFrame* frame);
  void encode_fifo(bool flush);
  void queue_encoded();

  std::string url_;
  InputFormatPtr input_;
  AVStream* in_stream_ = nullptr;
  AVStream* out_stream_ = nullptr;
  bool copy_ = true;
  double start_ = 0, end_ = 0;
  int64_t origin_pts_ = 0;  // the container's start time in the input stream's time base
  int64_t start_pts_ = 0, end_pts_ = INT64_MAX;
  bool input_done_ = false;
  std::deque<PacketPtr> ready_;  // output packets in the output stream's time base
  PacketPtr packet_ = make_packet();

  // Re-encoding.
  CodecContextPtr decoder_, encoder_;
  SwrPtr swr_;
  AudioFifoPtr fifo_;
  FramePtr decoded_ = make_frame();
  int64_t next_sample_ = AV_NOPTS_VALUE;  // pts (in samples) of the next encoder frame
};

}  // namespace visage::av
