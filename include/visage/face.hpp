// visage/face.hpp: find faces, their landmarks, identity and attributes.
//
//   visage::FaceAnalyser analyser(visage::FaceAnalyserOptions{});
//   visage::Image photo = visage::read_image("group.jpg");
//   std::vector<visage::Face> faces = analyser.analyse(photo.rgb);
//
// A FaceAnalyser owns one inference session per network and belongs to one
// thread at a time; `clone()` gives another worker its own sessions over the
// same (shared, immutable) models.
//
// Coordinates are image pixels of the image passed in, x to the right, y down,
// with pixel centres at integer + 0.5 (a pixel's area is [x, x+1)).
// "Left" and "right" are as seen in the image: the left eye is the eye with
// the smaller x on an upright face (the person's right eye).
//
// Errors: Error{model} when a network file is missing (install_deps not run),
// Error{bad_input} for an image that is not [H, W, 3] uint8.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "visage/runtime.hpp"

namespace visage {

struct Point2 {
  float x = 0, y = 0;
};

struct Point3 {
  float x = 0, y = 0, z = 0;  // z: depth in pixels, smaller is nearer the camera
};

struct Box {
  float x = 0, y = 0, width = 0, height = 0;
  float area() const { return width * height; }
  Point2 centre() const { return {x + width / 2, y + height / 2}; }
};

enum class Gender { unknown, female, male };
std::string_view to_string(Gender gender) noexcept;

// Indices into Face::landmarks_5, in the order of the alignment templates.
enum Landmark5 { left_eye = 0, right_eye = 1, nose_tip = 2, mouth_left = 3, mouth_right = 4 };

struct Face {
  Box box;                            // tight box around the face (the mesh's extent when a mesh was run)
  float detector_score = 0;           // 0..1, from the detector
  float landmark_score = 0;           // 0..1, the mesh's face-presence flag (0 when no mesh was run)
  int detector_angle = 0;             // 0, 90, 180 or 270: the image rotation the face was found at
  float roll = 0;                     // in-plane rotation in degrees (0 = upright, positive = clockwise)
  std::array<Point2, 5> landmarks_5;  // eyes, nose tip, mouth corners (Landmark5 order)
  std::vector<Point2> landmarks_68;   // iBUG 300-W order; empty without a mesh
  std::vector<Point3> mesh;           // 468 MediaPipe mesh points, 478 with irises; empty without a mesh
  // Gap between the lids over the eye's width, left and right eye as in
  // Landmark5, from the attention mesh's eye contours (they follow a blink;
  // the mesh's own lids stay about half open): below ~0.1 closed, 0.15-0.35
  // open. Empty unless the landmarker is mesh_attention.
  std::optional<std::array<float, 2>> eye_openness;
  std::vector<float> embedding;  // L2-normalised identity vector; empty unless asked for
  std::optional<float> age;      // years
  Gender gender = Gender::unknown;
  float gender_score = 0;  // 0..1 confidence of `gender`
};

// Cosine distance between two embeddings: 0 same direction, 2 opposite.
// Throws Error{bad_input} when the sizes differ or one is empty.
float face_distance(const std::vector<float>& a, const std::vector<float>& b);

enum class FaceDetectorModel {
  blazeface,        // MediaPipe BlazeFace long-range (256x256), human-models: faces down to ~1/16 of the view
  blazeface_front,  // MediaPipe BlazeFace short-range (128x128), keijiro: selfies, faces filling the view
  ultraface,        // UltraFace RFB-320 (faceplugin fr_detect): boxes only, robust on groups
};

enum class FaceLandmarkerModel {
  none,            // detector keypoints only: no mesh, no 68 points
  mesh,            // MediaPipe Face Mesh, 468 points
  mesh_attention,  // Attention Mesh: 468 refined points + 10 iris points (478)
};

enum class FaceRecognizerModel {
  arcface,        // faceplugin fr_feature, 512-d, arcface_112_v2 alignment
  mobilefacenet,  // human-models mobilefacenet, 192-d
};

struct FaceAnalyserOptions {
  FaceDetectorModel detector = FaceDetectorModel::blazeface;
  FaceLandmarkerModel landmarker = FaceLandmarkerModel::mesh_attention;
  FaceRecognizerModel recognizer = FaceRecognizerModel::arcface;
  float detector_score = 0.5f;  // minimum detector score
  float iou_threshold = 0.3f;   // non-maximum suppression overlap
  float landmark_score = 0.5f;  // minimum mesh face-presence score (drops false detections)
  // Image rotations to search, like FaceFusion's --face-detector-angles.
  std::vector<int> detector_angles = {0};
  // Detect on overlapping tiles as well as the whole image, so that small
  // faces in large photos are found. 0 = automatic (tiles when the image is
  // over 3x the detector's input size), -1 = never, N = tiles of N pixels.
  int tile_size = 0;
  size_t max_faces = 256;
  bool embeddings = true;  // run the recogniser
  bool attributes = true;  // run age and gender (faceres)
  RuntimeOptions runtime;  // device and precision of every network
  // Drop animal faces. BlazeFace and the mesh know only human faces and take
  // some animal faces for people's with high scores (scikit-image's cat after
  // H.264 4:2:0 encoding at 320 px: detector 0.77, mesh 1.00; a dog in dlib's
  // dogs.jpg: 0.55, 1.00), so a face swap would paste a person's face onto a
  // cat. With this check a new face (one without a mesh when landmark() is
  // called, so not a face a tracker follows) whose detector score is below
  // `human_check_below` is shown, in a crop three times its size (head,
  // shoulders or body around it), to an object detector trained on COCO's classes (CenterNet, from
  // human-models): the face is dropped when an animal class (cat, dog, bird,
  // horse, ...) scores at least as high there as "person". Costs one
  // CenterNet run at 256x256 per checked face (bench analyse's "+human check"
  // column; bench/RESULTS.md). Needs a landmarker (the check runs in
  // landmark()).
  bool reject_non_human = true;
  // Detections scoring at or above this are not checked: animal faces
  // measured scored up to 0.86, a face seen clearly and large enough scores
  // 0.9 or more and costs nothing extra (small, turned or blurred faces score
  // less and are checked). 1.01 checks every new face.
  float human_check_below = 0.9f;
};

// Standard 5-point alignment templates, in units of the crop size.
enum class AlignmentTemplate { arcface_112_v1, arcface_112_v2, arcface_128, ffhq_512 };
const std::array<Point2, 5>& alignment_template(AlignmentTemplate which);

// 2x3 affine matrix [a b c; d e f] mapping (x, y) to (a x + b y + c, d x + e y + f).
using Affine = std::array<double, 6>;

// Least-squares similarity (rotation, uniform scale, translation) that maps
// the face's 5 points onto the template scaled to `crop_size` pixels.
Affine estimate_alignment(const std::array<Point2, 5>& landmarks, AlignmentTemplate which, int crop_size);

// Warps an image ([H, W, 3] uint8, CPU or CUDA) through `image_to_crop` into a
// crop_size x crop_size uint8 image (bilinear; outside the image is black).
at::Tensor warp_face(const at::Tensor& rgb, const Affine& image_to_crop, int crop_size);

class FaceAnalyser {
 public:
  // Loads the networks the options ask for (from model_package_dir()).
  explicit FaceAnalyser(const FaceAnalyserOptions& options = {});
  ~FaceAnalyser();
  FaceAnalyser(FaceAnalyser&&) noexcept;
  FaceAnalyser& operator=(FaceAnalyser&&) noexcept;

  // Another analyser sharing this one's loaded models, with its own sessions.
  FaceAnalyser clone() const;

  // Every face in the image ([H, W, 3] uint8 RGB, CPU or CUDA), in detector
  // score order, best first. An image without faces gives an empty vector.
  std::vector<Face> analyse(const at::Tensor& rgb);

  // Only the detector: boxes, scores and the detector's keypoints.
  std::vector<Face> detect(const at::Tensor& rgb);

  // Adds mesh, 68 points, refined 5 points and the tight box to detected faces.
  void landmark(const at::Tensor& rgb, std::vector<Face>& faces);

  // Adds the embedding (and age/gender when the options ask) to landmarked faces.
  void describe(const at::Tensor& rgb, std::vector<Face>& faces);

  const FaceAnalyserOptions& options() const;

  struct Impl;

 private:
  explicit FaceAnalyser(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Which faces to act on, like FaceFusion's --face-selector-* options.
enum class FaceSelectorMode { many, one, reference };
enum class FaceOrder {
  none,
  left_right,
  right_left,
  top_bottom,
  bottom_top,
  small_large,
  large_small,
  best_worst,
  worst_best
};

struct FaceSelector {
  FaceSelectorMode mode = FaceSelectorMode::many;
  FaceOrder order = FaceOrder::none;
  std::optional<Gender> gender;  // keep only this gender
  std::optional<float> age_min, age_max;
  // Reference mode: faces whose embedding is within `reference_distance`
  // (cosine distance) of any reference embedding.
  std::vector<std::vector<float>> references;
  float reference_distance = 0.6f;
};

// Applies filters, then order, then mode ("one" keeps the first after
// ordering). Throws Error{bad_input} in reference mode without references or
// when a needed embedding is missing.
std::vector<Face> select_faces(std::vector<Face> faces, const FaceSelector& selector);

// Parsers for the CLI spellings ("left-right", "large-small", "reference",
// "female", ...). Throw Error{bad_input} listing the accepted values.
FaceOrder parse_face_order(const std::string& text);
FaceSelectorMode parse_face_selector_mode(const std::string& text);
Gender parse_gender(const std::string& text);
FaceDetectorModel parse_face_detector(const std::string& text);
FaceLandmarkerModel parse_face_landmarker(const std::string& text);
FaceRecognizerModel parse_face_recognizer(const std::string& text);

// Draws what the analyser found (boxes, scores, 5/68 points, mesh, face
// outline, age/gender) onto a copy of the image: FaceFusion's face debugger.
at::Tensor draw_faces(const at::Tensor& rgb, const std::vector<Face>& faces);

}  // namespace visage
