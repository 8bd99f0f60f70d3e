// swap_video: read -> track -> swap (parallel) -> write, joined by bounded queues.
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "visage/pipeline.hpp"
#include "visage/runtime.hpp"

namespace visage {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// A queue that blocks when empty; close() wakes every waiter and makes pop()
// return nullopt once drained. The frame budget (in flight) bounds its size.
template <class T>
class WorkQueue {
 public:
  void push(T item) {
    {
      std::lock_guard lock(mutex_);
      items_.push_back(std::move(item));
    }
    ready_.notify_one();
  }
  std::optional<T> pop() {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [&] { return !items_.empty() || closed_; });
    if (items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    return item;
  }
  void close() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
    }
    ready_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<T> items_;
  bool closed_ = false;
};

struct Work {
  int64_t sequence = 0;  // order of writing (frames dropped in live mode get none)
  VideoFrame frame;
  Clock::time_point read_at;
  std::vector<SwapAssignment> jobs;
  size_t faces = 0;
};

// Rotations that turn a frame upright for analysis and back for writing.
at::Tensor turn_upright(const at::Tensor& rgb, int rotation) {
  if (rotation == 0) return rgb;
  // rotation is the clockwise turn a player applies; rot90 with k > 0 turns counter-clockwise in (H, W).
  return at::rot90(rgb, -rotation / 90, {0, 1}).contiguous();
}

at::Tensor turn_back(const at::Tensor& rgb, int rotation) {
  if (rotation == 0) return rgb;
  return at::rot90(rgb, rotation / 90, {0, 1}).contiguous();
}

// Which source (if any) each tracked face gets. "one" mode keeps following
// the face it chose first while that track lives.
class TrackSelector {
 public:
  TrackSelector(const SourceFace* source, const VideoSwapOptions& options)
      : source_(source), selector_(options.selector), mappings_(options.mappings) {}

  std::vector<SwapAssignment> choose(const std::vector<TrackedFace>& tracks) {
    std::vector<SwapAssignment> jobs;
    if (tracks.empty()) return jobs;
    std::vector<const TrackedFace*> picked;
    if (selector_.mode == FaceSelectorMode::one && chosen_id_) {
      for (const auto& t : tracks)
        if (t.id == *chosen_id_) picked.push_back(&t);
    }
    if (picked.empty()) {
      std::vector<Face> faces;
      for (const auto& t : tracks) faces.push_back(t.face);
      bool needs_embeddings = selector_.mode == FaceSelectorMode::reference;
      if (needs_embeddings)
        std::erase_if(faces, [](const Face& f) { return f.embedding.empty(); });  // not yet described
      for (const Face& kept : select_faces(std::move(faces), selector_))
        for (const auto& t : tracks)
          if (t.face.box.x == kept.box.x && t.face.box.y == kept.box.y && t.face.box.width == kept.box.width)
            picked.push_back(&t);
      if (selector_.mode == FaceSelectorMode::one && !picked.empty()) chosen_id_ = picked.front()->id;
    }
    for (const TrackedFace* t : picked) {
      const SourceFace* chosen = source_;
      float best = selector_.reference_distance;
      if (!t->face.embedding.empty())
        for (const auto& m : mappings_) {
          float d = face_distance(t->face.embedding, m.reference);
          if (d < best) best = d, chosen = m.source;
        }
      if (chosen) jobs.push_back({t->face, chosen});
    }
    return jobs;
  }

 private:
  const SourceFace* source_;
  FaceSelector selector_;
  std::vector<IdentityMapping> mappings_;
  std::optional<int> chosen_id_;
};

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (std::filesystem::equivalent(a, b, ec)) return true;
  return std::filesystem::weakly_canonical(a, ec) == std::filesystem::weakly_canonical(b, ec) && !ec;
}

bool is_url(const std::string& path) { return path.find("://") != std::string::npos; }

}  // namespace

VideoSwapReport swap_video(FaceSwapper& swapper, const SourceFace* source, const std::string& input,
                           const std::string& output, const VideoSwapOptions& options,
                           const VideoProgressCallback& progress) {
  if (!source && options.mappings.empty())
    throw Error(ErrorKind::bad_input, "swap_video: no source face (and no identity mappings)");
  for (const auto& m : options.mappings)
    if (!m.source) throw Error(ErrorKind::bad_input, "swap_video: identity mapping without a source face");
  if (!is_url(input) && !is_url(output) && same_file(input, output))
    throw Error(ErrorKind::bad_input, output + ": refusing to overwrite the input");

  const auto start = Clock::now();
  VideoReader reader(input, options.input);
  const VideoInfo info = reader.info();
  VideoWriterOptions writer_options = options.output;
  const bool copy_audio =
      writer_options.audio_from.empty() && options.copy_audio && info.has_audio && !options.live && !is_url(input);
  if (copy_audio) {
    writer_options.audio_from = input;
    writer_options.audio_end = options.input.end;
  }
  // Opened when the first frame is ready: the audio starts where the first
  // delivered frame does (the reader knows it only after decoding it).
  std::optional<VideoWriter> writer;
  double first_frame_start = info.start_time;

  const bool on_gpu = swapper.options().analyser.runtime.device == Device::cuda;
  int workers = options.workers;
  if (workers <= 0) workers = on_gpu ? 2 : std::clamp(static_cast<int>(std::thread::hardware_concurrency()), 1, 4);
  const int64_t budget = options.queue_frames > 0 ? options.queue_frames : 2 * workers + 4;

  cuda_synchronize();  // the source's texture is complete before other streams read it
  std::vector<FaceSwapper> clones;
  for (int i = 0; i < workers; ++i) clones.push_back(swapper.clone());
  FaceTracker tracker(swapper.analyser(), options.tracking);
  TrackSelector selector(source, options);

  // Shared state: the frame budget, finished frames waiting for their turn,
  // the first error. One mutex: every critical section is a few lines.
  std::mutex mutex;
  std::condition_variable changed;
  int64_t in_flight = 0;
  std::map<int64_t, Work> finished;
  std::optional<int64_t> total;  // known once the reader has seen the end
  std::exception_ptr failure;
  bool stopping = false;
  VideoSwapReport report;
  report.input = info;
  WorkQueue<Work> to_track, to_swap;

  auto fail = [&](std::exception_ptr e) {
    {
      std::lock_guard lock(mutex);
      if (!failure) failure = e;
      stopping = true;
    }
    changed.notify_all();
    to_track.close();
    to_swap.close();
  };

  std::thread read_thread([&] {
    try {
      int64_t sequence = 0;
      while (true) {
        if (!options.live) {
          std::unique_lock lock(mutex);
          changed.wait(lock, [&] { return in_flight < budget || stopping; });
          if (stopping) break;
        }
        auto t0 = Clock::now();
        std::optional<VideoFrame> frame = reader.read();
        double spent = seconds_since(t0);
        if (!frame) break;
        std::unique_lock lock(mutex);
        if (sequence == 0) first_frame_start = reader.info().start_time;
        report.decode_seconds += spent;
        ++report.frames_read;
        if (stopping) break;
        if (in_flight >= budget) {  // live and behind: this frame is skipped
          ++report.frames_dropped;
          continue;
        }
        ++in_flight;
        lock.unlock();
        to_track.push(Work{sequence++, std::move(*frame), Clock::now(), {}, 0});
      }
      {
        std::lock_guard lock(mutex);
        total = sequence;
      }
      changed.notify_all();
      to_track.close();
    } catch (...) {
      fail(std::current_exception());
    }
  });

  std::thread track_thread([&] {
    try {
      // Each GPU thread queues on its own stream; frames cross threads as
      // CPU tensors (a worker uploads its own copy), so no device tensor is
      // shared between streams.
      std::optional<CudaStreamScope> stream;
      if (on_gpu) stream.emplace();
      while (auto work = to_track.pop()) {
        auto t0 = Clock::now();
        at::Tensor upright = turn_upright(work->frame.rgb, info.rotation);
        std::vector<TrackedFace> tracks = tracker.track(on_gpu ? upright.to(at::kCUDA) : upright, work->frame.time);
        work->jobs = selector.choose(tracks);
        work->frame.rgb = upright;
        {
          std::lock_guard lock(mutex);
          report.track_seconds += seconds_since(t0);
        }
        to_swap.push(std::move(*work));
      }
      to_swap.close();
    } catch (...) {
      fail(std::current_exception());
    }
  });

  std::vector<std::thread> swap_threads;
  for (int w = 0; w < workers; ++w) {
    swap_threads.emplace_back([&, w] {
      try {
        FaceSwapper& mine = clones[w];
        std::optional<CudaStreamScope> stream;
        if (on_gpu) stream.emplace();
        while (auto work = to_swap.pop()) {
          auto t0 = Clock::now();
          if (!work->jobs.empty()) {
            work->frame.rgb = mine.swap(work->frame.rgb, work->jobs);
            work->faces = mine.faces_swapped();
          }
          work->frame.rgb = turn_back(work->frame.rgb.cpu(), info.rotation);
          work->jobs.clear();
          double spent = seconds_since(t0);
          {
            std::lock_guard lock(mutex);
            report.swap_seconds += spent;
            finished.emplace(work->sequence, std::move(*work));
          }
          changed.notify_all();
        }
      } catch (...) {
        fail(std::current_exception());
      }
    });
  }

  // Writing happens here, in order.
  auto join_all = [&] {
    read_thread.join();
    track_thread.join();
    for (auto& t : swap_threads) t.join();
  };
  try {
    VideoProgress state;
    state.frames_total = info.frame_count;
    auto last_report = Clock::now();
    std::deque<std::pair<double, int64_t>> recent;  // (elapsed, frames done) for the fps estimate
    for (int64_t next = 0;; ++next) {
      Work work;
      {
        std::unique_lock lock(mutex);
        changed.wait(lock, [&] { return stopping || finished.count(next) || (total && next >= *total); });
        if (stopping) break;
        if (!finished.count(next)) break;  // all written
        work = std::move(finished.at(next));
        finished.erase(next);
      }
      auto t0 = Clock::now();
      if (!writer) {
        if (copy_audio) {
          std::lock_guard lock(mutex);
          writer_options.audio_start = first_frame_start;
        }
        writer.emplace(output, info, writer_options);
      }
      writer->write(work.frame);
      double latency = seconds_since(work.read_at);
      {
        std::lock_guard lock(mutex);
        report.encode_seconds += seconds_since(t0);
        --in_flight;
        ++report.frames_written;
        if (work.faces) ++report.frames_with_faces;
        report.faces_swapped += static_cast<int64_t>(work.faces);
        report.max_latency = std::max(report.max_latency, latency);
        state.frames_dropped = report.frames_dropped;
      }
      changed.notify_all();
      state.frames_done = next + 1;
      state.faces_swapped = report.faces_swapped;
      state.latency = latency;
      state.elapsed = seconds_since(start);
      recent.emplace_back(state.elapsed, state.frames_done);
      while (recent.size() > 2 && recent.front().first < state.elapsed - 3.0) recent.pop_front();
      if (recent.size() >= 2 && recent.back().first > recent.front().first)
        state.fps = (recent.back().second - recent.front().second) / (recent.back().first - recent.front().first);
      state.eta = state.fps > 0 && state.frames_total > state.frames_done
                      ? (state.frames_total - state.frames_done) / state.fps
                      : 0;
      if (progress && seconds_since(last_report) >= options.progress_interval) {
        last_report = Clock::now();
        progress(state);
      }
    }
    join_all();
    if (failure) std::rethrow_exception(failure);
    if (!writer) throw Error(ErrorKind::bad_input, input + ": no video frames to write (empty or trimmed away)");
    auto t0 = Clock::now();
    writer->finish();
    report.encode_seconds += seconds_since(t0);
    report.encoder = writer->encoder_name();
    report.tracking = tracker.stats();
    report.seconds = seconds_since(start);
    if (progress) {
      state.frames_done = report.frames_written;
      if (state.frames_total < state.frames_done) state.frames_total = state.frames_done;
      state.elapsed = report.seconds;
      state.eta = 0;
      state.finished = true;
      progress(state);
    }
  } catch (...) {
    fail(std::current_exception());
    if (read_thread.joinable()) join_all();
    std::exception_ptr first;
    {
      std::lock_guard lock(mutex);
      first = failure;
    }
    std::rethrow_exception(first);
  }
  return report;
}

}  // namespace visage
