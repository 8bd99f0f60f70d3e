// Identity embeddings and age/gender for landmarked faces.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

#include "visage/face.hpp"
#include "visage/runtime.hpp"

namespace visage::face {

// L2-normalised embedding of the face, aligned as the recogniser expects.
std::vector<float> compute_embedding(FaceRecognizerModel model, Session& session, const at::Tensor& rgb,
                                     const Face& face);

// Fills face.age, face.gender, face.gender_score from faceres.
void estimate_attributes(Session& session, const at::Tensor& rgb, Face& face);

}  // namespace visage::face
