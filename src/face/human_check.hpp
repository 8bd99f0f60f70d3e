// Is a detected face a person's? BlazeFace and the face mesh were trained on
// human faces only and take some animal faces (a cat after H.264 4:2:0
// encoding, dogs) for human ones with high scores. An object detector trained
// on COCO's classes (CenterNet from human-models) tells a person from a cat or
// a dog: it looks at the face and its surroundings.
#pragma once

#include <ATen/core/Tensor.h>

#include "visage/face.hpp"
#include "visage/runtime.hpp"

namespace visage::face {

struct SpeciesScores {
  float person = 0;  // COCO "person" at the face, 0..1
  float animal = 0;  // the best of COCO's animal classes (bird .. giraffe, teddy bear) at the face, 0..1
};

// Runs CenterNet on a crop three times the face's size around it (turned by
// the face's detector_angle) and reads the class scores over the face.
SpeciesScores species_scores(Session& session, const at::Tensor& rgb, const Face& face);

}  // namespace visage::face
