// FaceTracker: detect every N frames, follow faces by their landmarks in
// between, match detections to tracks (box overlap, then identity), smooth
// the landmarks with One-Euro filters, and start over on scene cuts.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <optional>
#include <string>
#include <tuple>

#include "face/geometry.hpp"
#include "face/mesh.hpp"
#include "track/scene_cut.hpp"
#include "visage/error.hpp"
#include "visage/track.hpp"

namespace visage {

namespace {

struct Track {
  int id = 0;
  Face raw;           // this frame's unsmoothed landmarks: the next frame's crop comes from them
  Face previous_raw;  // before this frame
  Face smoothed;
  int64_t frames = 0;     // frames seen
  int missed = 0;         // consecutive frames unseen
  bool seen = false;      // seen this frame
  bool detected = false;  // by the detector, this frame
  bool restart = true;    // the filters start over at the next sighting
  std::vector<OneEuroFilter> filters;
};

float face_size(const Face& f) { return std::max(f.box.width, f.box.height); }

Box mesh_box(const std::vector<Point3>& mesh) {
  std::vector<Point2> flat;
  const size_t n = std::min<size_t>(mesh.size(), 468);
  flat.reserve(n);
  for (size_t i = 0; i < n; ++i) flat.push_back({mesh[i].x, mesh[i].y});
  return face::bounding_box(flat);
}

}  // namespace

struct FaceTracker::Impl {
  FaceAnalyser* analyser;
  FaceTrackerOptions options;
  FaceTrackerStats stats;
  std::vector<Track> tracks;  // in id order (ids only grow)
  int next_id = 1;
  at::Tensor previous_histogram;
  int64_t frames_since_detection = 0;
  bool lost_last_frame = false;

  Impl(FaceAnalyser& a, const FaceTrackerOptions& o) : analyser(&a), options(o) {
    auto require = [](bool ok, const std::string& what) {
      if (!ok) throw Error(ErrorKind::bad_input, "FaceTrackerOptions: " + what);
    };
    require(o.detect_interval >= 1, "detect_interval must be at least 1");
    require(o.max_missed >= 0, "max_missed must not be negative");
    require(o.scene_cut > 0, "scene_cut must be positive");
    require(o.match_iou > 0 && o.match_iou <= 1, "match_iou must be in (0, 1]");
    require(o.min_cutoff > 0 && o.derivative_cutoff > 0 && o.beta >= 0,
            "min_cutoff and derivative_cutoff must be positive, beta not negative");
  }

  void reset() {
    tracks.clear();
    previous_histogram = at::Tensor();
    lost_last_frame = false;
    fresh_start = true;
  }

  bool scene_cut(const at::Tensor& rgb) {
    at::Tensor histogram = track::colour_histogram(rgb);
    bool cut =
        previous_histogram.defined() && track::histogram_distance(histogram, previous_histogram) > options.scene_cut;
    previous_histogram = histogram;
    return cut;
  }

  // Without a mesh network there is nothing to follow faces with: the
  // detector runs on every frame.
  bool can_follow() const { return analyser->options().landmarker != FaceLandmarkerModel::none; }

  // The face found again from its previous landmarks (the mesh network on a
  // crop around them), or nullopt when the mesh says there is no face there.
  std::optional<Face> follow(const at::Tensor& rgb, const Face& previous) {
    std::vector<Face> one = {previous};
    analyser->landmark(rgb, one);
    if (one.empty()) return std::nullopt;
    return std::move(one[0]);
  }

  void follow_all(const at::Tensor& rgb) {
    // Tracks seen last frame first; then tracks unseen for a while are looked
    // for where they were last, unless another track's face is there now.
    // Such a face must come back where it was: a mesh that drifted onto a
    // neighbour's face is not the person who left.
    auto near_seen_track = [&](const Box& box) {
      return std::any_of(tracks.begin(), tracks.end(),
                         [&](const Track& o) { return o.seen && face::iou(o.raw.box, box) > options.match_iou; });
    };
    for (int pass = 0; pass < 2; ++pass)
      for (Track& t : tracks) {
        if ((t.missed == 0) != (pass == 0)) continue;
        if (pass == 1 && near_seen_track(t.raw.box)) continue;
        auto found = follow(rgb, t.raw);
        if (found && pass == 1 && (face::iou(found->box, t.raw.box) < 0.5f || near_seen_track(found->box)))
          found.reset();
        if (found) {
          t.raw = std::move(*found);
          t.seen = true;
        } else if (t.missed == 0) {
          lost_last_frame = true;  // detect on the next frame
        }
      }
  }

  void start_track(Face face, bool detected) {
    Track t;
    t.id = next_id++;
    t.raw = std::move(face);
    t.seen = true;
    t.detected = detected;
    tracks.push_back(std::move(t));
    ++stats.tracks_started;
  }

  // A detector frame. Tracks are followed first, as on any frame: landmarks
  // found from the previous landmarks and landmarks found from a detector
  // box differ slightly, and switching between the two every
  // detect_interval frames would be a visible jump. The detector then
  // confirms followed faces, finds new ones and ones that were lost.
  void detect_and_match(const at::Tensor& rgb) {
    if (can_follow()) follow_all(rgb);
    lost_last_frame = false;  // the detector is running now
    ++stats.detector_runs;
    std::vector<Face> detections = analyser->detect(rgb);
    std::vector<Face> found;  // faces not held by a followed track
    for (Face& d : detections) {
      bool held = false;
      for (Track& t : tracks)
        if (t.seen && face::overlap(t.raw.box, d.box) > 0.6f) held = t.detected = true;
      if (!held) found.push_back(std::move(d));
    }
    analyser->landmark(rgb, found);

    // Identities: refresh the followed tracks' embeddings (a track whose face
    // is now clearly someone else's drifted onto a neighbour while faces
    // crossed: it lets go) and describe the new faces.
    const float other_person = options.match_distance + 0.3f;  // clearly another person
    if (options.describe) {
      std::vector<size_t> followed;
      std::vector<Face> to_describe;
      for (size_t ti = 0; ti < tracks.size(); ++ti)
        if (tracks[ti].seen) followed.push_back(ti), to_describe.push_back(tracks[ti].raw);
      const size_t new_faces = found.size();
      to_describe.insert(to_describe.end(), found.begin(), found.end());
      if (!to_describe.empty()) analyser->describe(rgb, to_describe);
      for (size_t k = 0; k < new_faces; ++k) found[k] = std::move(to_describe[followed.size() + k]);
      for (size_t k = 0; k < followed.size(); ++k) {
        Track& t = tracks[followed[k]];
        Face& now = to_describe[k];
        if (!t.raw.embedding.empty() && !now.embedding.empty() &&
            face_distance(t.raw.embedding, now.embedding) > other_person) {
          t.seen = t.detected = false;
          t.raw = t.previous_raw;
          found.push_back(std::move(now));
        } else {
          t.raw = std::move(now);
        }
      }
    }

    auto distance = [&](const Track& t, const Face& f) -> std::optional<float> {
      if (t.raw.embedding.empty() || f.embedding.size() != t.raw.embedding.size()) return std::nullopt;
      return face_distance(t.raw.embedding, f.embedding);
    };
    std::vector<int> owner(found.size(), -1);  // track index per face
    std::vector<bool> taken(tracks.size(), false);
    for (size_t ti = 0; ti < tracks.size(); ++ti) taken[ti] = tracks[ti].seen;

    // 1. Box overlap with where a track was last seen, identity breaking
    // ties: score = IoU - distance / 2.
    std::vector<std::tuple<float, size_t, size_t>> pairs;
    for (size_t ti = 0; ti < tracks.size(); ++ti)
      for (size_t di = 0; di < found.size() && !taken[ti]; ++di) {
        float overlap = face::iou(tracks[ti].raw.box, found[di].box);
        if (overlap < options.match_iou) continue;
        auto d = distance(tracks[ti], found[di]);
        if (d && *d > other_person) continue;
        pairs.emplace_back(overlap - (d ? *d / 2 : 0.f), ti, di);
      }
    std::sort(pairs.begin(), pairs.end(), [](const auto& a, const auto& b) { return std::get<0>(a) > std::get<0>(b); });
    for (auto [score, ti, di] : pairs)
      if (!taken[ti] && owner[di] < 0) taken[ti] = true, owner[di] = static_cast<int>(ti);

    // 2. Identity, for faces that moved far (crossed, or left and came back).
    pairs.clear();
    for (size_t ti = 0; ti < tracks.size(); ++ti)
      for (size_t di = 0; di < found.size() && !taken[ti]; ++di) {
        if (owner[di] >= 0) continue;
        auto d = distance(tracks[ti], found[di]);
        if (d && *d <= options.match_distance) pairs.emplace_back(*d, ti, di);
      }
    std::sort(pairs.begin(), pairs.end());
    for (auto [d, ti, di] : pairs)
      if (!taken[ti] && owner[di] < 0) taken[ti] = true, owner[di] = static_cast<int>(ti);

    const size_t existing = tracks.size();
    for (size_t di = 0; di < found.size(); ++di) {
      if (owner[di] >= 0) {
        Track& t = tracks[owner[di]];
        t.raw = std::move(found[di]);
        t.seen = t.detected = true;
        continue;
      }
      // Not new when a track holds that face already.
      bool held = false;
      for (size_t ti = 0; ti < existing; ++ti)
        held = held || (tracks[ti].seen && face::iou(tracks[ti].raw.box, found[di].box) > 0.5f);
      if (!held) start_track(std::move(found[di]), true);
    }
  }

  // Two tracks that converged onto one face (one followed the other's face
  // as they crossed). The detector's match keeps it, else a track seen last
  // frame, else the one that moved least: the other counts as unseen and
  // keeps its last position.
  void drop_duplicates() {
    auto moved = [](const Track& t) {
      return std::hypot(t.raw.box.centre().x - t.previous_raw.box.centre().x,
                        t.raw.box.centre().y - t.previous_raw.box.centre().y) /
             std::max(1.f, face_size(t.raw));
    };
    for (size_t a = 0; a < tracks.size(); ++a)
      for (size_t b = a + 1; b < tracks.size(); ++b) {
        Track &x = tracks[a], &y = tracks[b];
        if (!x.seen || !y.seen || face::iou(x.raw.box, y.raw.box) <= 0.5f) continue;
        auto rank = [&](const Track& t) { return std::make_tuple(t.detected, t.missed == 0, -moved(t)); };
        Track& loser = rank(x) < rank(y) ? x : y;
        loser.seen = loser.detected = false;
        loser.raw = loser.previous_raw;
        if (loser.missed == 0) lost_last_frame = true;
      }
  }

  void smooth(Track& t, double time) {
    const Face& raw = t.raw;
    Face out = raw;
    if (!options.smoothing) {
      t.smoothed = std::move(out);
      return;
    }
    const bool has_mesh = !raw.mesh.empty();
    const size_t needed = has_mesh ? raw.mesh.size() * 3 : 5 * 2 + 4;
    if (t.restart || t.filters.size() != needed) {
      t.filters.assign(needed, OneEuroFilter(options.min_cutoff, options.beta, options.derivative_cutoff));
      t.restart = false;
    }
    const float scale = std::max(1.f, face_size(raw));
    auto filter = [&](size_t i, float v) { return t.filters[i](v, time, scale); };
    if (has_mesh) {
      for (size_t i = 0; i < raw.mesh.size(); ++i) {
        out.mesh[i] = {filter(3 * i, raw.mesh[i].x), filter(3 * i + 1, raw.mesh[i].y),
                       filter(3 * i + 2, raw.mesh[i].z)};
      }
      // The 5 and 68 points and the box from the smoothed mesh, exactly as
      // the analyser derives them from its mesh.
      out.landmarks_5 = face::mesh_landmarks_5(out.mesh);
      out.landmarks_68 = face::mesh_landmarks_68(out.mesh);
      out.box = mesh_box(out.mesh);
      out.roll = face::roll_from_eyes(out.landmarks_5[left_eye], out.landmarks_5[right_eye]) * 180.f /
                 std::numbers::pi_v<float>;
    } else {
      for (size_t i = 0; i < 5; ++i)
        out.landmarks_5[i] = {filter(2 * i, raw.landmarks_5[i].x), filter(2 * i + 1, raw.landmarks_5[i].y)};
      out.box = {filter(10, raw.box.x), filter(11, raw.box.y), filter(12, raw.box.width), filter(13, raw.box.height)};
    }
    t.smoothed = std::move(out);
  }

  std::vector<TrackedFace> track(const at::Tensor& rgb_in, double time) {
    if (rgb_in.dim() != 3 || rgb_in.size(2) != 3 || rgb_in.scalar_type() != at::kByte)
      throw Error(ErrorKind::bad_input,
                  "FaceTracker::track: frame " + std::to_string(stats.frames) + " is not an [H, W, 3] uint8 image");
    // Move the frame to the networks' device once, not once per network call.
    const RuntimeOptions& runtime = analyser->options().runtime;
    at::Tensor rgb = runtime.device == Device::cuda && rgb_in.is_cpu()
                         ? rgb_in.to(at::Device(at::kCUDA, runtime.device_index))
                         : rgb_in;
    ++stats.frames;
    // A cut: the colour histogram jumped, or the picture changed size.
    bool cut = previous_histogram.defined() && (rgb.size(0) != frame_height || rgb.size(1) != frame_width);
    frame_height = rgb.size(0), frame_width = rgb.size(1);
    if (scene_cut(rgb) || cut) {
      ++stats.scene_cuts;
      tracks.clear();
      cut = true;
    }

    const bool detect = stats.frames == 1 || cut || fresh_start || lost_last_frame ||
                        frames_since_detection >= options.detect_interval || !can_follow();
    fresh_start = lost_last_frame = false;
    for (Track& t : tracks) {
      t.seen = t.detected = false;
      t.previous_raw = t.raw;
    }

    if (detect) {
      detect_and_match(rgb);
      frames_since_detection = 0;
    } else {
      follow_all(rgb);
    }
    ++frames_since_detection;
    drop_duplicates();

    std::vector<TrackedFace> out;
    std::vector<Track> kept;
    for (Track& t : tracks) {
      if (!t.seen) {
        t.restart = true;  // back after a gap: no smoothing across it
        if (++t.missed > options.max_missed) continue;
        kept.push_back(std::move(t));
        continue;
      }
      t.missed = 0;
      ++t.frames;
      smooth(t, time);
      out.push_back({t.id, t.smoothed, t.frames, t.detected});
      kept.push_back(std::move(t));
    }
    tracks = std::move(kept);
    return out;
  }

  int64_t frame_height = 0, frame_width = 0;
  bool fresh_start = false;  // reset() was called: detect on the next frame
};

FaceTracker::FaceTracker(FaceAnalyser& analyser, const FaceTrackerOptions& options)
    : impl_(std::make_unique<Impl>(analyser, options)) {}
FaceTracker::~FaceTracker() = default;
FaceTracker::FaceTracker(FaceTracker&&) noexcept = default;
FaceTracker& FaceTracker::operator=(FaceTracker&&) noexcept = default;

std::vector<TrackedFace> FaceTracker::track(const at::Tensor& rgb, double time) { return impl_->track(rgb, time); }

void FaceTracker::reset() { impl_->reset(); }

const FaceTrackerStats& FaceTracker::stats() const { return impl_->stats; }
const FaceTrackerOptions& FaceTracker::options() const { return impl_->options; }

}  // namespace visage
