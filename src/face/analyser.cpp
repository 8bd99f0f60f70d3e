// FaceAnalyser: detector -> mesh -> recogniser/attributes, per image.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "face/detectors.hpp"
#include "face/geometry.hpp"
#include "face/human_check.hpp"
#include "face/mesh.hpp"
#include "face/networks.hpp"
#include "face/recognition.hpp"
#include "face/warp.hpp"

namespace visage {

using namespace face;

struct FaceAnalyser::Impl {
  std::shared_ptr<const Networks> nets;
  Session detector;
  std::optional<Session> mesh, recognizer, attributes, species;

  explicit Impl(std::shared_ptr<const Networks> n) : nets(std::move(n)), detector(nets->detector) {
    if (nets->mesh) mesh.emplace(nets->mesh);
    if (nets->recognizer) recognizer.emplace(nets->recognizer);
    if (nets->attributes) attributes.emplace(nets->attributes);
    if (nets->species) species.emplace(nets->species);
  }
  const FaceAnalyserOptions& options() const { return nets->options; }
};

namespace {

void check_angles(const std::vector<int>& angles) {
  for (int a : angles)
    if (a != 0 && a != 90 && a != 180 && a != 270)
      throw Error(ErrorKind::bad_input, "face detector angle " + std::to_string(a) + " is not one of 0, 90, 180, 270");
}

// Regions to run the detector on: the whole image, plus overlapping tiles when
// the image is much larger than the detector input (small faces in big photos).
std::vector<Box> detection_regions(int64_t w, int64_t h, const FaceAnalyserOptions& options) {
  std::vector<Box> regions = {{0, 0, static_cast<float>(w), static_cast<float>(h)}};
  DetectorInput in = detector_input(options.detector);
  int input_side = std::max(in.width, in.height);
  int tile = options.tile_size;
  if (tile < 0) return regions;
  if (tile == 0) {
    if (std::max(w, h) <= 4 * input_side) return regions;
    tile = 3 * input_side;
  }
  if (tile >= std::max(w, h)) return regions;
  const float step = tile * 0.75f;  // tiles overlap by a quarter
  auto starts = [&](int64_t extent) {
    std::vector<float> s;
    if (extent <= tile) return std::vector<float>{0.f};
    int n = static_cast<int>(std::ceil((extent - tile) / step)) + 1;
    for (int i = 0; i < n; ++i) s.push_back(std::min<float>(i * step, static_cast<float>(extent - tile)));
    return s;
  };
  for (float y : starts(h))
    for (float x : starts(w))
      regions.push_back(
          {x, y, static_cast<float>(std::min<int64_t>(tile, w)), static_cast<float>(std::min<int64_t>(tile, h))});
  return regions;
}

// Initial 5 points from a detector box when the detector gives no keypoints:
// the arcface template placed in the box (upright).
std::array<Point2, 5> points_from_box(const Box& box, int angle) {
  const auto& t = alignment_template(AlignmentTemplate::arcface_112_v2);
  std::array<Point2, 5> pts;
  double rad = angle * std::numbers::pi / 180.0;
  Point2 c = box.centre();
  float side = std::max(box.width, box.height);
  for (int i = 0; i < 5; ++i) {
    float dx = (t[i].x - 0.5f) * side, dy = (t[i].y - 0.5f) * side;
    pts[i] = {static_cast<float>(c.x + std::cos(rad) * dx - std::sin(rad) * dy),
              static_cast<float>(c.y + std::sin(rad) * dx + std::cos(rad) * dy)};
  }
  return pts;
}

// Checks the image and moves it to the networks' device once per call.
at::Tensor on_model_device(const at::Tensor& rgb, const FaceAnalyserOptions& options) {
  check_rgb(rgb);
  if (options.runtime.device == Device::cuda && rgb.is_cpu())
    return rgb.to(at::Device(at::kCUDA, options.runtime.device_index));
  return rgb;
}

Face face_from_detection(const Detection& d) {
  Face f;
  f.box = d.box;
  f.detector_score = d.score;
  f.detector_angle = d.angle;
  if (d.keypoints.size() >= 4) {
    // BlazeFace keypoints: eyes, nose tip, mouth centre. Mouth corners are
    // not given: put them either side of the mouth centre, along the eye line.
    Point2 le = d.keypoints[0], re = d.keypoints[1], nose = d.keypoints[2], mouth = d.keypoints[3];
    float ex = (re.x - le.x) * 0.4f, ey = (re.y - le.y) * 0.4f;
    f.landmarks_5 = {le, re, nose, Point2{mouth.x - ex, mouth.y - ey}, Point2{mouth.x + ex, mouth.y + ey}};
  } else {
    f.landmarks_5 = points_from_box(d.box, d.angle);
  }
  f.roll = roll_from_eyes(f.landmarks_5[left_eye], f.landmarks_5[right_eye]) * 180.f / std::numbers::pi_v<float>;
  return f;
}

}  // namespace

FaceAnalyser::FaceAnalyser(const FaceAnalyserOptions& options) {
  check_angles(options.detector_angles);
  impl_ = std::make_unique<Impl>(load_networks(options));
}
FaceAnalyser::FaceAnalyser(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FaceAnalyser::~FaceAnalyser() = default;
FaceAnalyser::FaceAnalyser(FaceAnalyser&&) noexcept = default;
FaceAnalyser& FaceAnalyser::operator=(FaceAnalyser&&) noexcept = default;

FaceAnalyser FaceAnalyser::clone() const { return FaceAnalyser(std::make_unique<Impl>(impl_->nets)); }

const FaceAnalyserOptions& FaceAnalyser::options() const { return impl_->options(); }

std::vector<Face> FaceAnalyser::detect(const at::Tensor& rgb_in) {
  const auto& options = impl_->options();
  at::Tensor rgb = on_model_device(rgb_in, options);
  std::vector<Detection> all;
  for (int angle : options.detector_angles) {
    for (const Box& region : detection_regions(rgb.size(1), rgb.size(0), options)) {
      Affine m = region_to_input(options.detector, region, angle);
      auto found = run_detector(options.detector, impl_->detector, rgb, m, angle, options.detector_score);
      all.insert(all.end(), found.begin(), found.end());
    }
  }
  std::vector<Box> boxes;
  std::vector<float> scores;
  for (const auto& d : all) boxes.push_back(d.box), scores.push_back(d.score);
  std::vector<Face> faces;
  for (size_t i : non_max_suppression(boxes, scores, options.iou_threshold)) {
    if (faces.size() >= options.max_faces) break;
    faces.push_back(face_from_detection(all[i]));
  }
  return faces;
}

void FaceAnalyser::landmark(const at::Tensor& rgb_in, std::vector<Face>& faces) {
  if (!impl_->mesh) return;
  const auto& options = impl_->options();
  at::Tensor rgb = on_model_device(rgb_in, options);
  std::vector<Face> kept;
  for (Face& face : faces) {
    // A face that arrives with a mesh was landmarked (and checked) before:
    // a tracker following it.
    const bool fresh = face.mesh.empty();
    // First pass: a square crop around the detector box, turned upright by
    // the detector's eye line. Further passes (at most two) when the mesh
    // says the crop was off (rotation or framing): recrop around the mesh.
    Point2 centre = face.box.centre();
    float side = std::max(face.box.width, face.box.height) * 1.5f;
    float roll = face.roll * std::numbers::pi_v<float> / 180.f;
    MeshResult mesh;
    for (int pass = 0; pass < 3; ++pass) {
      Affine m = crop_to_image(centre, side, roll, mesh_input_size);
      mesh = run_mesh(options.landmarker, *impl_->mesh, rgb, m);
      auto pts5 = mesh_landmarks_5(mesh.points);
      float mesh_roll = roll_from_eyes(pts5[left_eye], pts5[right_eye]);
      std::vector<Point2> flat;
      for (const auto& p : mesh.points) flat.push_back({p.x, p.y});
      Box mb = bounding_box(flat);
      float new_side = std::max(mb.width, mb.height) * 1.5f;
      Point2 mc = mb.centre();
      float shift = std::hypot(mc.x - centre.x, mc.y - centre.y) / side;
      float turn = std::abs(std::remainder(mesh_roll - roll, 2 * std::numbers::pi_v<float>));
      bool settled = turn < 0.15f && shift < 0.08f && std::abs(new_side / side - 1.f) < 0.15f;
      centre = mc, side = new_side, roll = mesh_roll;
      if (settled || mesh.score < options.landmark_score) break;
    }
    if (mesh.score < options.landmark_score) continue;
    face.landmark_score = mesh.score;
    face.mesh = std::move(mesh.points);
    face.eye_openness = mesh.eye_openness;
    face.landmarks_5 = mesh_landmarks_5(face.mesh);
    face.landmarks_68 = mesh_landmarks_68(face.mesh);
    face.roll = roll * 180.f / std::numbers::pi_v<float>;
    std::vector<Point2> flat;
    for (size_t i = 0; i < 468; ++i) flat.push_back({face.mesh[i].x, face.mesh[i].y});
    face.box = bounding_box(flat);
    if (fresh && impl_->species && face.detector_score < options.human_check_below) {
      SpeciesScores species = species_scores(*impl_->species, rgb, face);
      if (species.animal >= species.person) continue;
    }
    // The same face found twice (by the whole image and a tile, or at two
    // angles) converges to one mesh: keep the first (best detector score).
    bool duplicate =
        std::any_of(kept.begin(), kept.end(), [&](const Face& k) { return overlap(k.box, face.box) > 0.6f; });
    if (!duplicate) kept.push_back(std::move(face));
  }
  faces = std::move(kept);
}

void FaceAnalyser::describe(const at::Tensor& rgb_in, std::vector<Face>& faces) {
  const auto& options = impl_->options();
  at::Tensor rgb = on_model_device(rgb_in, options);
  for (Face& face : faces) {
    if (impl_->recognizer) face.embedding = compute_embedding(options.recognizer, *impl_->recognizer, rgb, face);
    if (impl_->attributes) estimate_attributes(*impl_->attributes, rgb, face);
  }
}

std::vector<Face> FaceAnalyser::analyse(const at::Tensor& rgb_in) {
  const auto& options = impl_->options();
  at::Tensor rgb = on_model_device(rgb_in, options);
  std::vector<Face> faces = detect(rgb);
  landmark(rgb, faces);
  describe(rgb, faces);
  return faces;
}

}  // namespace visage
