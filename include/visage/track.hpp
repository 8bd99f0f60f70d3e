// visage/track.hpp: following faces from frame to frame in a video.
//
//   visage::FaceAnalyser analyser;
//   visage::FaceTracker tracker(analyser);
//   while (auto frame = reader.read()) {
//     for (const visage::TrackedFace& t : tracker.track(frame->rgb, frame->time)) use(t.id, t.face);
//   }
//
// The detector runs every `detect_interval` frames, on a scene cut and when a
// track is lost; each face's landmarks are found from its previous landmarks
// (the mesh network only), which is both faster and steadier than a fresh
// detection (on the GRID clips: ~25 vs ~40 ms/frame on 2 CPU cores, landmark
// jitter 0.010 vs 0.012 eye distances before smoothing, 0.003 after). On
// detector frames the detector confirms followed faces and finds new ones.
// A scene cut is a jump in the colour histogram of a small copy of the frame
// (a cut between two shots of very similar colours can go unnoticed: a face
// then either loses its mesh, which calls the detector, or is checked against
// its track's identity at the next detector frame when `describe` is on).
// Detections are matched to tracks by box overlap, then by identity
// (embedding), so a person keeps their id when faces cross or leave the view
// for a few frames. Landmarks are smoothed with a One-Euro filter (steady on
// a still head, little lag on fast moves); the filter is reset on scene cuts.
//
// With FaceLandmarkerModel::none there is no mesh to follow faces with: the
// detector then runs on every frame and the 5 points and box are smoothed.
//
// A FaceTracker uses its analyser (not owned, must outlive it) and belongs to
// one thread at a time. Frames must come in presentation order.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "visage/face.hpp"

namespace visage {

struct FaceTrackerOptions {
  int detect_interval = 10;     // run the detector every N frames; 1 = every frame
  float scene_cut = 0.35f;      // colour-histogram change between frames that counts as a cut (0..1)
  float match_iou = 0.3f;       // a detection continues a track when the boxes overlap this much (IoU) ...
  float match_distance = 0.5f;  // ... or its embedding is this close to the track's (cosine distance)
  int max_missed = 10;          // frames a track survives unseen before its id is retired
  bool describe = true;         // embeddings (and attributes) for new tracks and at each detection
  bool smoothing = true;        // One-Euro filter on the landmarks
  // One-Euro parameters; speeds are in face sizes (the mesh box's longer
  // side) per second, times in seconds. The defaults cut the jitter of a
  // noisy still head ~8x and lag a 1 face/s pan by ~0.03 eye distances.
  float min_cutoff = 0.5f;         // Hz: lower = steadier when still
  float beta = 20.0f;              // speed coefficient: higher = less lag when moving
  float derivative_cutoff = 1.0f;  // Hz
};

struct TrackedFace {
  int id = 0;             // stable while the person stays in view (or returns within max_missed frames)
  Face face;              // smoothed box, landmarks and mesh; embedding/attributes of the track
  int64_t frames = 0;     // frames this track has been seen in, this one included
  bool detected = false;  // the detector saw it this frame (else followed from its landmarks)
};

struct FaceTrackerStats {
  int64_t frames = 0, detector_runs = 0, scene_cuts = 0, tracks_started = 0;
};

class FaceTracker {
 public:
  // Throws Error{bad_input} for options out of range (detect_interval < 1,
  // max_missed < 0, match_iou outside (0, 1], non-positive cut-offs).
  explicit FaceTracker(FaceAnalyser& analyser, const FaceTrackerOptions& options = {});
  ~FaceTracker();
  FaceTracker(FaceTracker&&) noexcept;
  FaceTracker& operator=(FaceTracker&&) noexcept;

  // The faces of the next frame ([H, W, 3] uint8, CPU or CUDA) at `time` seconds, in id order.
  // A frame of another size than the last counts as a scene cut. Throws
  // Error{bad_input} for a frame that is not [H, W, 3] uint8.
  std::vector<TrackedFace> track(const at::Tensor& rgb, double time);

  // Forgets every track (the next frame starts fresh, as after a cut).
  void reset();

  const FaceTrackerStats& stats() const;
  const FaceTrackerOptions& options() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The One-Euro filter (Casiez et al., CHI 2012): a low-pass filter whose cut-off
// rises with the signal's speed. One filter per coordinate.
class OneEuroFilter {
 public:
  // Throws Error{bad_input} unless min_cutoff and derivative_cutoff are
  // positive and beta is not negative.
  OneEuroFilter(float min_cutoff, float beta, float derivative_cutoff);
  // Filters value `x` observed at `time` seconds. Times must increase: a
  // sample at or before the previous time returns the current estimate
  // unchanged. The first sample (and the first after reset()) is returned as is.
  float operator()(float x, double time);
  // The same, with the speed measured in units of `scale` (e.g. the face's
  // size in pixels): the cut-off is min_cutoff + beta * |dx/dt| / scale, so
  // one set of parameters suits any resolution. The value itself stays in
  // the caller's units.
  float operator()(float x, double time, float scale);
  void reset();

 private:
  float min_cutoff_, beta_, derivative_cutoff_;
  bool started_ = false;
  float x_ = 0, dx_ = 0;
  double time_ = 0;
};

// Landmark jitter of a sequence of frames: the mean over frames and points of
// |p[t+1] - 2 p[t] + p[t-1]| (the motion's roughness, not the motion itself),
// divided by the distance between the eyes; per_frame[i] are one face's
// points in frame i (all of equal size; at least 3 frames). Throws
// Error{bad_input} when the sizes disagree, there are fewer than 3 frames or an
// eye distance is not positive.
double landmark_jitter(const std::vector<std::vector<Point2>>& per_frame, const std::vector<float>& eye_distance);

}  // namespace visage
