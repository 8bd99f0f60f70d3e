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

// CenterNet (human-models) was exported for [1, 512, 512, 3] (values 0..255)
// but is fully convolutional: it is loaded for 256x256 (a quarter of the
// work, and on the real and animal faces measured the margin between person
// and animal scores is better there: bench/RESULTS.md), with only its class
// heat map computed.
std::shared_ptr<const Model> load_species_model(const RuntimeOptions& runtime);

// Runs a model from load_species_model() on a crop three times the face's
// size around it (turned by the face's detector_angle) and reads the class
// scores over the face.
SpeciesScores species_scores(Session& session, const at::Tensor& rgb, const Face& face);

}  // namespace visage::face
