// Public alignment helpers and embedding distance.
#include <ATen/ATen.h>

#include <cmath>

#include "face/geometry.hpp"
#include "face/warp.hpp"

namespace visage {

const std::array<Point2, 5>& alignment_template(AlignmentTemplate which) {
  // Eye centres, nose tip, mouth corners in units of the crop side. The
  // arcface sets are InsightFace's 112-pixel reference points divided by 112
  // (v1: the original, v2: the one InsightFace's recognisers are trained on);
  // arcface_128 and ffhq_512 are the layouts face swappers and FFHQ-trained
  // restorers use, as FaceFusion publishes them.
  static const std::array<Point2, 5> arcface_112_v1 = {{{0.35473214f, 0.45658929f},
                                                        {0.64526786f, 0.45658929f},
                                                        {0.50000000f, 0.61154464f},
                                                        {0.37913393f, 0.77687500f},
                                                        {0.62086607f, 0.77687500f}}};
  static const std::array<Point2, 5> arcface_112_v2 = {{{0.34191607f, 0.46157411f},
                                                        {0.65653393f, 0.45983393f},
                                                        {0.50022500f, 0.64050536f},
                                                        {0.37097589f, 0.82469196f},
                                                        {0.63151696f, 0.82325089f}}};
  static const std::array<Point2, 5> arcface_128 = {{{0.36167656f, 0.40387734f},
                                                     {0.63696719f, 0.40235469f},
                                                     {0.50019687f, 0.56044219f},
                                                     {0.38710391f, 0.72160547f},
                                                     {0.61507734f, 0.72034453f}}};
  static const std::array<Point2, 5> ffhq_512 = {{{0.37691676f, 0.46864664f},
                                                  {0.62285697f, 0.46912813f},
                                                  {0.50123859f, 0.61331904f},
                                                  {0.39308822f, 0.72541100f},
                                                  {0.61150205f, 0.72490465f}}};
  switch (which) {
    case AlignmentTemplate::arcface_112_v1: return arcface_112_v1;
    case AlignmentTemplate::arcface_112_v2: return arcface_112_v2;
    case AlignmentTemplate::arcface_128: return arcface_128;
    case AlignmentTemplate::ffhq_512: return ffhq_512;
  }
  return arcface_112_v2;
}

Affine estimate_alignment(const std::array<Point2, 5>& landmarks, AlignmentTemplate which, int crop_size) {
  std::array<Point2, 5> dst = alignment_template(which);
  for (auto& p : dst) p.x *= crop_size, p.y *= crop_size;
  return face::fit_similarity(landmarks, dst);
}

at::Tensor warp_face(const at::Tensor& rgb, const Affine& image_to_crop, int crop_size) {
  if (crop_size < 1 || crop_size > 8192)
    throw Error(ErrorKind::bad_input, "face crop size " + std::to_string(crop_size) + " is out of range 1..8192");
  return face::warp_to_image(rgb, face::invert(image_to_crop), crop_size, crop_size);
}

float face_distance(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.empty() || b.empty() || a.size() != b.size())
    throw Error(ErrorKind::bad_input, "face_distance: embeddings of sizes " + std::to_string(a.size()) + " and " +
                                          std::to_string(b.size()) + " cannot be compared");
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) dot += a[i] * b[i], na += a[i] * a[i], nb += b[i] * b[i];
  if (na == 0 || nb == 0) return 1.f;
  return static_cast<float>(1.0 - dot / std::sqrt(na * nb));
}

std::string_view to_string(Gender gender) noexcept {
  switch (gender) {
    case Gender::female: return "female";
    case Gender::male: return "male";
    case Gender::unknown: return "unknown";
  }
  return "unknown";
}

}  // namespace visage
