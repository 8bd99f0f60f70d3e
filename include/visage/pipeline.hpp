// visage/pipeline.hpp: swapping faces through a whole video or a live stream, in one process.
//
//   visage::FaceSwapper swapper;
//   visage::SourceFace me = swapper.prepare_source({visage::read_image("me.jpg").rgb});
//   visage::VideoSwapReport r = visage::swap_video(swapper, &me, "clip.mp4", "out.mp4", {},
//       [](const visage::VideoProgress& p) { show(p.frames_done, p.frames_total); });
//
// Stages, each on its own thread(s), joined by bounded queues:
//   read (demux + decode) -> track (detector every N frames, landmarks every
//   frame, smoothing; in order) -> swap (`workers` clones of the swapper, in
//   parallel) -> write (in order: encode + mux, audio copied from the input).
// At most `queue_frames` frames are in flight between reading and writing,
// so memory stays flat however long the video is. A file input that reads
// faster than the swap waits (backpressure); a live input drops frames
// instead (`live`), so latency stays bounded.
//
// Errors: everything the reader, the writer, the analyser and the swapper
// throw (see video.hpp, swap.hpp), re-thrown on the calling thread after all
// stages have stopped; the output file then does not exist (written to a
// temporary name and renamed only after the last frame). Error{bad_input}
// when the output would overwrite the input.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "visage/swap.hpp"
#include "visage/track.hpp"
#include "visage/video.hpp"

namespace visage {

// A person that gets a source of their own: target faces within the
// selector's reference_distance of `reference` get `source` (the nearest
// reference wins).
struct IdentityMapping {
  std::vector<float> reference;
  const SourceFace* source = nullptr;
};

struct VideoSwapOptions {
  VideoReaderOptions input;   // trim, hardware decoding, live input format, real-time pacing
  VideoWriterOptions output;  // encoder, quality, container; audio_from defaults to the input
  bool copy_audio = true;     // copy (trimmed) audio from the input when output.audio_from is empty
  FaceTrackerOptions tracking;
  FaceSelector selector;  // which tracked faces are swapped (reference mode: by the track's identity)
  std::vector<IdentityMapping> mappings;
  int workers = 0;                 // parallel swaps; 0 = automatic (CPU: hardware threads, at most 4; CUDA: 2)
  int queue_frames = 0;            // frames in flight; 0 = 2 x workers + 4
  bool live = false;               // drop frames rather than wait when the swap falls behind
  double progress_interval = 0.5;  // seconds between progress callbacks
};

struct VideoProgress {
  int64_t frames_done = 0;     // frames written
  int64_t frames_total = 0;    // expected frames (0 = unknown, e.g. live)
  int64_t frames_dropped = 0;  // live: frames skipped to keep up
  int64_t faces_swapped = 0;   // faces swapped so far (all frames)
  double elapsed = 0;          // seconds since the start
  double fps = 0;              // frames written per second over the last few seconds
  double eta = 0;              // seconds left (0 = unknown)
  double latency = 0;          // seconds from a frame being read to it being written (last frame)
  bool finished = false;       // the last callback of a successful run
};

struct VideoSwapReport {
  VideoInfo input;
  std::string encoder;
  int64_t frames_read = 0, frames_written = 0, frames_dropped = 0;
  int64_t frames_with_faces = 0, faces_swapped = 0;
  double seconds = 0;  // wall time
  // Time spent in each stage, summed over its threads (seconds).
  double decode_seconds = 0, track_seconds = 0, swap_seconds = 0, encode_seconds = 0;
  double max_latency = 0;  // the slowest frame from read to written (seconds)
  FaceTrackerStats tracking;
};

using VideoProgressCallback = std::function<void(const VideoProgress&)>;

// Swaps `source` (may be null when `options.mappings` name the sources) onto
// the selected faces of every frame of `input` and writes `output`. The
// swapper's analyser tracks the faces; its clones swap them. The callback is
// called from the writing thread.
VideoSwapReport swap_video(FaceSwapper& swapper, const SourceFace* source, const std::string& input,
                           const std::string& output, const VideoSwapOptions& options = {},
                           const VideoProgressCallback& progress = {});

}  // namespace visage
