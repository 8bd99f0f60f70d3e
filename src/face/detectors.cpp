#include "face/detectors.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <numbers>

#include "face/warp.hpp"

namespace visage::face {

DetectorInput detector_input(FaceDetectorModel model) {
  switch (model) {
    case FaceDetectorModel::blazeface: return {256, 256};
    case FaceDetectorModel::blazeface_front: return {128, 128};
    case FaceDetectorModel::ultraface: return {320, 240};
  }
  return {};
}

Affine region_to_input(FaceDetectorModel model, Box region, int angle) {
  DetectorInput in = detector_input(model);
  bool swapped = angle == 90 || angle == 270;
  float ext_w = swapped ? region.height : region.width;
  float ext_h = swapped ? region.width : region.height;
  double s = std::max(ext_w / in.width, ext_h / in.height);
  double rad = angle * std::numbers::pi / 180.0;
  double c = std::cos(rad) * s, n = std::sin(rad) * s;
  Point2 centre = region.centre();
  double hx = in.width / 2.0, hy = in.height / 2.0;
  return {c, -n, centre.x - c * hx + n * hy, n, c, centre.y - n * hx - c * hy};
}

namespace {

float sigmoid(float x) { return 1.f / (1.f + std::exp(-std::clamp(x, -80.f, 80.f))); }

Box map_box(const Affine& m, float x0, float y0, float x1, float y1) {
  Point2 corners[4] = {apply(m, {x0, y0}), apply(m, {x1, y0}), apply(m, {x0, y1}), apply(m, {x1, y1})};
  return bounding_box(corners);
}

// MediaPipe's SSD anchors for BlazeFace: two layers; 2 anchors per cell on the
// input/16 grid, 6 on the input/8 grid; centres at cell centres.
std::vector<Point2> blazeface_anchors(int size) {
  std::vector<Point2> anchors;
  const int strides[2] = {size / 16, size / 8};
  const int per_cell[2] = {2, 6};
  for (int layer = 0; layer < 2; ++layer) {
    int grid = (size + strides[layer] - 1) / strides[layer];
    for (int gy = 0; gy < grid; ++gy)
      for (int gx = 0; gx < grid; ++gx)
        for (int k = 0; k < per_cell[layer]; ++k)
          anchors.push_back({strides[layer] * (gx + 0.5f), strides[layer] * (gy + 0.5f)});
  }
  return anchors;
}

std::vector<Detection> decode_blazeface(const std::vector<at::Tensor>& outputs, int size, const Affine& m, int angle,
                                        float threshold) {
  // Outputs: scores [1,512,1], [1,384,1] and regressors [1,512,16], [1,384,16], in whatever order.
  at::Tensor scores[2], boxes[2];
  for (const auto& c : outputs_to_host(outputs)) {
    int slot = c.size(1) == 512 ? 0 : 1;
    (c.size(2) == 1 ? scores : boxes)[slot] = c;
  }
  for (int i = 0; i < 2; ++i)
    if (!scores[i].defined() || !boxes[i].defined())
      throw Error(ErrorKind::model, "BlazeFace: unexpected output shapes");
  static thread_local std::vector<Point2> anchors;
  static thread_local int anchor_size = 0;
  if (anchor_size != size) anchors = blazeface_anchors(size), anchor_size = size;
  std::vector<Detection> found;
  size_t base = 0;
  for (int layer = 0; layer < 2; ++layer) {
    const float* s = scores[layer].data_ptr<float>();
    const float* r = boxes[layer].data_ptr<float>();
    int64_t count = scores[layer].size(1);
    for (int64_t i = 0; i < count; ++i) {
      float score = sigmoid(s[i]);
      if (score < threshold) continue;
      const float* v = r + i * 16;
      Point2 a = anchors[base + i];
      float cx = a.x + v[0], cy = a.y + v[1], w = v[2], h = v[3];
      Detection d;
      d.score = score;
      d.angle = angle;
      d.box = map_box(m, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2);
      for (int k = 0; k < 6; ++k) d.keypoints.push_back(apply(m, {a.x + v[4 + 2 * k], a.y + v[5 + 2 * k]}));
      found.push_back(std::move(d));
    }
    base += count;
  }
  return found;
}

std::vector<Detection> decode_ultraface(const std::vector<at::Tensor>& outputs, const Affine& m, int angle,
                                        float threshold) {
  at::Tensor scores, boxes;
  for (const auto& c : outputs_to_host(outputs)) {
    (c.size(2) == 2 ? scores : boxes) = c;
  }
  if (!scores.defined() || !boxes.defined()) throw Error(ErrorKind::model, "UltraFace: unexpected output shapes");
  DetectorInput in = detector_input(FaceDetectorModel::ultraface);
  const float* s = scores.data_ptr<float>();
  const float* b = boxes.data_ptr<float>();
  std::vector<Detection> found;
  for (int64_t i = 0; i < scores.size(1); ++i) {
    float score = s[i * 2 + 1];
    if (score < threshold) continue;
    const float* v = b + i * 4;
    Detection d;
    d.score = score;
    d.angle = angle;
    d.box = map_box(m, v[0] * in.width, v[1] * in.height, v[2] * in.width, v[3] * in.height);
    found.push_back(std::move(d));
  }
  return found;
}

}  // namespace

std::vector<Detection> run_detector(FaceDetectorModel model, Session& session, const at::Tensor& rgb, const Affine& m,
                                    int angle, float threshold) {
  DetectorInput in = detector_input(model);
  switch (model) {
    case FaceDetectorModel::blazeface:
    case FaceDetectorModel::blazeface_front: {
      at::Tensor input = warp_to_input(rgb, m, in.height, in.width, 1.f / 127.5f, -1.f);
      return decode_blazeface(session.run({input}), in.width, m, angle, threshold);
    }
    case FaceDetectorModel::ultraface: {
      at::Tensor input = warp_to_input(rgb, m, in.height, in.width, 1.f / 128.f, -127.f / 128.f);
      return decode_ultraface(session.run({input.permute({0, 3, 1, 2}).contiguous()}), m, angle, threshold);
    }
  }
  return {};
}

}  // namespace visage::face
