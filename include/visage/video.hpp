// visage/video.hpp: reading and writing video files and live streams (FFmpeg's libav*).
//
//   visage::VideoReader reader("clip.mp4");
//   visage::VideoWriterOptions out;
//   out.audio_from = "clip.mp4";                       // copy the clip's audio
//   visage::VideoWriter writer("swapped.mp4", reader.info(), out);
//   while (auto frame = reader.read()) {
//     frame->rgb = do_something(frame->rgb);
//     writer.write(*frame);
//   }
//   writer.finish();                                   // only now does swapped.mp4 appear
//
// Frames are [H, W, 3] uint8 RGB CPU tensors in the stream's coded
// orientation (VideoInfo::rotation says how a player turns them; the writer
// stores the same rotation). Conversion to and from RGB uses the stream's own
// colour matrix and range, and the writer tags its output with them, so
// colours survive a round trip. Each frame keeps its presentation timestamp:
// variable frame rate stays variable.
//
// A reader and a writer each belong to one thread at a time; a reader and a
// writer on two threads share nothing. FFmpeg's own logging is silenced (its
// last error line is appended to our error messages instead).
//
// Errors: Error{io} when a file cannot be opened or written, Error{bad_input}
// for a corrupt or truncated file, a file without a video stream, or a frame
// size change mid-stream; Error{unsupported} for a codec or container FFmpeg
// cannot handle here. Messages name the file and, where it applies, the frame.
//
// Truncated input: an MP4/MOV cut before its index fails to open. A stream
// whose last frame ends before 90% of the duration its container declares
// (and more than two frame periods short), read without a trim end, makes the
// read() that would have returned nullopt throw Error{bad_input}
// "<file> ends at X s of its declared Y s (truncated?)"; the frames before
// were delivered. Corrupt packets inside a stream are skipped (FFmpeg conceals
// them); when no frame decodes at all the reader throws Error{bad_input}.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "visage/error.hpp"

namespace visage {

struct VideoInfo {
  std::string container;      // FFmpeg's demuxer name ("mov,mp4,m4a,3gp,3g2,mj2", "mpeg", "v4l2", ...)
  std::string video_codec;    // "h264", "mpeg1video", ...
  int width = 0, height = 0;  // coded frame size
  int rotation = 0;           // 0, 90, 180 or 270: clockwise turn a player applies (display matrix,
                              // as av_display_rotation_get and FFmpeg's autorotation read it)
  double frame_rate = 0;      // average frames per second (0 when unknown)
  int64_t frame_count = 0;    // expected frames after trimming (container count or duration x rate); 0 unknown
  double duration = 0;        // seconds after trimming; 0 unknown (live input)
  // Seconds from the input's origin (the container's start time) to the first delivered frame:
  // VideoReader sets it from the first decoded frame, probe_video from the trim start. Pass it
  // as VideoWriterOptions::audio_start to keep audio in sync with trimmed video.
  double start_time = 0;
  int time_base_num = 1, time_base_den = 1;  // unit of VideoFrame::pts
  // Colour description, as FFmpeg names them ("tv"/"pc", "bt709", "smpte170m", ...); "unknown" if unset.
  // Untagged video is converted as players do: BT.601 matrix up to 1024x576, BT.709 above, TV range;
  // the writer converts back the same way and leaves the tags unknown.
  std::string colour_range = "unknown", colour_space = "unknown", colour_primaries = "unknown",
              colour_transfer = "unknown";
  bool has_audio = false;
  std::string audio_codec;  // "aac", "mp2", ... (empty without audio)
  std::string decoder;      // decoder in use: "h264" or "h264_cuvid"
};

enum class HardwareDecode {
  off,    // software decoders only
  auto_,  // NVDEC (*_cuvid) when FFmpeg has it and a device opens, else software, silently
  cuda,   // NVDEC or Error{unsupported}
};

struct VideoReaderOptions {
  double start = 0;  // trim: skip frames before this many seconds
  double end = 0;    // trim: stop at this many seconds (0 = the end)
  HardwareDecode hardware = HardwareDecode::off;
  std::string input_format;              // FFmpeg demuxer to force ("v4l2" for a camera); empty = probe
  bool realtime = false;                 // deliver frames no faster than their timestamps (like ffmpeg -re)
  int threads = 0;                       // decoder threads, 0 = FFmpeg's choice
  int64_t max_pixels = 8192LL * 8192LL;  // refuse absurd frame sizes before allocating
  // Seconds a blocking open or read may wait for data (a silent camera or network source)
  // before giving up with Error{io}; 0 waits for ever. Files never wait this long.
  double timeout = 10;
};

struct VideoFrame {
  at::Tensor rgb;     // [H, W, 3] uint8, CPU, coded orientation
  int64_t index = 0;  // 0-based, counting delivered frames (after trimming)
  int64_t pts = 0;    // presentation time in VideoInfo's time base, 0 at the first delivered frame
  double time = 0;    // the same in seconds
};

class VideoReader {
 public:
  // Opens a file, URL or device and decodes the first frame (so a file that does not
  // decode fails here, and a camera blocks until it delivers). Throws (see above) when it
  // has no decodable video stream, or Error{bad_input} when no frame lies in the trim range.
  // Trim times are seconds from the input's origin (the container's start time).
  explicit VideoReader(const std::string& url, const VideoReaderOptions& options = {});
  ~VideoReader();
  VideoReader(VideoReader&&) noexcept;
  VideoReader& operator=(VideoReader&&) noexcept;

  const VideoInfo& info() const;

  // The next frame in presentation order; nullopt at the end (or at the trim end).
  // Throws Error{bad_input} naming the frame index for undecodable data or a size change.
  std::optional<VideoFrame> read();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

struct VideoEncodeOptions {
  // FFmpeg encoder name: "libx264" (default), "libx265", "h264_nvenc", "hevc_nvenc",
  // "libvpx-vp9", "mpeg4", ... "auto" = h264_nvenc when the card has NVENC, else libx264.
  // Defaults: x264/x265 preset "veryfast" crf 18; VP9 crf 18 with b:v 0, deadline "good"
  // (preset = deadline), cpu-used 4; NVENC preset "p4", VBR with cq 18; mpeg4/mpeg2video/
  // mpeg1video qscale 2 (quality = qscale 1..31); rawvideo has no options (and replaces the
  // default libx264 or "auto" when the container is "v4l2": a loopback device takes raw frames).
  // Pixels are yuv420p; frames of odd width or height are yuv444p where the encoder has it
  // (x264: High 4:4:4 profile, which some hardware players do not decode).
  // The encoder's time base is the input's (VideoInfo::time_base_*), except for MPEG-1/2
  // (1/frame rate: variable frame rate is quantised) and MPEG-4 Part 2 (denominator <= 65535).
  std::string encoder = "libx264";
  std::string preset;  // encoder preset ("veryfast", "p4", ...); empty = Visage's default for the encoder
  int quality = -1;    // crf for x264/x265/vp9, cq for nvenc; -1 = Visage's default (visually lossless-ish: crf 18)
  int threads = 0;     // encoder threads, 0 = FFmpeg's choice
};

struct VideoWriterOptions {
  VideoEncodeOptions encode;
  // Container: empty = from the file name's extension; "mpegts", "rtp", "v4l2", ... for streams.
  std::string format;
  // Copy the audio stream(s) of this file into the output, trimmed to [audio_start, audio_end)
  // seconds (end 0 = to the end) so that it stays in sync with trimmed video. Copied as is when
  // the output container takes the codec, re-encoded (AAC, Opus for WebM) when it does not.
  // Times are on the audio file's timeline from its container start, like the reader's trim:
  // audio at audio_start plays with the frame of pts 0, so pass the reader's
  // info().start_time (and its trim end). Only the best audio stream is taken. Copied audio is
  // cut at packet boundaries (~20 ms), re-encoded audio at the sample; audio past the end of
  // the last written frame is dropped. A file without audio just gives an output without audio.
  std::string audio_from;
  double audio_start = 0, audio_end = 0;
  // Write to "<path>.part" and rename on finish(): a failed run leaves no file that looks complete.
  // Off for devices and network outputs.
  bool atomic = true;
};

class VideoWriter {
 public:
  // `like` gives the frame size, time base, frame rate, rotation and colour description.
  VideoWriter(const std::string& path, const VideoInfo& like, const VideoWriterOptions& options = {});
  // Without finish(): the partial output is removed.
  ~VideoWriter();
  VideoWriter(VideoWriter&&) noexcept;
  VideoWriter& operator=(VideoWriter&&) noexcept;

  // Frames in presentation order, of the size given at construction; only rgb and pts are
  // used (pts in `like`'s time base, 0 = the start of the audio). A pts that does not increase
  // is moved one encoder tick after the previous one. Error{bad_input} for a wrong shape/type.
  void write(const VideoFrame& frame);
  // Flushes the encoder, writes the remaining audio and the trailer and moves the file into
  // place. Error{bad_input} when no frame was written (the partial file is removed).
  void finish();

  const std::string& encoder_name() const;
  int64_t frames_written() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The container and streams of a file, without decoding it.
VideoInfo probe_video(const std::string& url, const VideoReaderOptions& options = {});

// True when the file name's extension is a video container Visage writes
// (.mp4 .mov .mkv .webm .avi .m4v .ts .mpg), case-insensitive.
bool is_video_path(const std::string& path);

// Whether this FFmpeg build has an encoder / decoder of that name.
bool has_video_encoder(const std::string& name);
bool has_video_decoder(const std::string& name);

}  // namespace visage
