// Face detectors: input preparation and output decoding per network.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

#include "face/geometry.hpp"
#include "visage/face.hpp"
#include "visage/runtime.hpp"

namespace visage::face {

struct Detection {
  Box box;  // image coordinates (axis-aligned bound of the rotated box)
  float score = 0;
  std::vector<Point2> keypoints;  // BlazeFace: left eye, right eye, nose, mouth, left ear, right ear (image)
  int angle = 0;
};

struct DetectorInput {
  int width = 0, height = 0;
};
DetectorInput detector_input(FaceDetectorModel model);

// The affine map from detector-input pixels to image pixels that fits the
// image region [x, y, w, h], rotated by `angle` degrees (0/90/180/270),
// centred, keeping aspect (letterbox).
Affine region_to_input(FaceDetectorModel model, Box region, int angle);

// Runs the detector on one region of the image and decodes every candidate
// with score >= threshold (no suppression yet).
std::vector<Detection> run_detector(FaceDetectorModel model, Session& session, const at::Tensor& rgb,
                                    const Affine& input_to_image, int angle, float score_threshold);

}  // namespace visage::face
