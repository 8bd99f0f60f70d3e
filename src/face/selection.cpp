// Face selection (FaceFusion's --face-selector-* semantics) and option parsing.
#include <algorithm>
#include <string>
#include <utility>

#include "visage/face.hpp"

namespace visage {

namespace {

template <typename E, size_t N>
E parse_enum(const std::string& text, const std::pair<const char*, E> (&table)[N], const char* what) {
  std::string accepted;
  for (const auto& [name, value] : table) {
    if (text == name) return value;
    accepted += accepted.empty() ? "" : ", ";
    accepted += name;
  }
  throw Error(ErrorKind::bad_input, std::string("unknown ") + what + " '" + text + "' (accepted: " + accepted + ")");
}

float face_size(const Face& f) { return f.box.area(); }
float face_quality(const Face& f) {
  return f.landmark_score > 0 ? f.detector_score * f.landmark_score : f.detector_score;
}

}  // namespace

FaceOrder parse_face_order(const std::string& text) {
  static const std::pair<const char*, FaceOrder> table[] = {{"none", FaceOrder::none},
                                                            {"left-right", FaceOrder::left_right},
                                                            {"right-left", FaceOrder::right_left},
                                                            {"top-bottom", FaceOrder::top_bottom},
                                                            {"bottom-top", FaceOrder::bottom_top},
                                                            {"small-large", FaceOrder::small_large},
                                                            {"large-small", FaceOrder::large_small},
                                                            {"best-worst", FaceOrder::best_worst},
                                                            {"worst-best", FaceOrder::worst_best}};
  return parse_enum(text, table, "face order");
}

FaceSelectorMode parse_face_selector_mode(const std::string& text) {
  static const std::pair<const char*, FaceSelectorMode> table[] = {
      {"many", FaceSelectorMode::many}, {"one", FaceSelectorMode::one}, {"reference", FaceSelectorMode::reference}};
  return parse_enum(text, table, "face selector mode");
}

Gender parse_gender(const std::string& text) {
  static const std::pair<const char*, Gender> table[] = {{"female", Gender::female}, {"male", Gender::male}};
  return parse_enum(text, table, "gender");
}

FaceDetectorModel parse_face_detector(const std::string& text) {
  static const std::pair<const char*, FaceDetectorModel> table[] = {
      {"blazeface", FaceDetectorModel::blazeface},
      {"blazeface-front", FaceDetectorModel::blazeface_front},
      {"ultraface", FaceDetectorModel::ultraface}};
  return parse_enum(text, table, "face detector");
}

FaceLandmarkerModel parse_face_landmarker(const std::string& text) {
  static const std::pair<const char*, FaceLandmarkerModel> table[] = {
      {"none", FaceLandmarkerModel::none},
      {"mesh", FaceLandmarkerModel::mesh},
      {"mesh-attention", FaceLandmarkerModel::mesh_attention}};
  return parse_enum(text, table, "face landmarker");
}

FaceRecognizerModel parse_face_recognizer(const std::string& text) {
  static const std::pair<const char*, FaceRecognizerModel> table[] = {
      {"arcface", FaceRecognizerModel::arcface}, {"mobilefacenet", FaceRecognizerModel::mobilefacenet}};
  return parse_enum(text, table, "face recogniser");
}

std::vector<Face> select_faces(std::vector<Face> faces, const FaceSelector& selector) {
  if (selector.gender) std::erase_if(faces, [&](const Face& f) { return f.gender != *selector.gender; });
  if (selector.age_min || selector.age_max) {
    std::erase_if(faces, [&](const Face& f) {
      if (!f.age) return true;
      return (selector.age_min && *f.age < *selector.age_min) || (selector.age_max && *f.age > *selector.age_max);
    });
  }
  if (selector.mode == FaceSelectorMode::reference) {
    if (selector.references.empty())
      throw Error(ErrorKind::bad_input, "reference face selection needs a reference face");
    std::erase_if(faces, [&](const Face& f) {
      if (f.embedding.empty())
        throw Error(ErrorKind::bad_input, "reference face selection needs face embeddings (recogniser disabled)");
      for (const auto& ref : selector.references)
        if (face_distance(f.embedding, ref) <= selector.reference_distance) return false;
      return true;
    });
  }
  auto by = [&](auto key, bool ascending) {
    std::stable_sort(faces.begin(), faces.end(),
                     [&](const Face& a, const Face& b) { return ascending ? key(a) < key(b) : key(a) > key(b); });
  };
  switch (selector.order) {
    case FaceOrder::none: break;
    case FaceOrder::left_right: by([](const Face& f) { return f.box.x; }, true); break;
    case FaceOrder::right_left: by([](const Face& f) { return f.box.x + f.box.width; }, false); break;
    case FaceOrder::top_bottom: by([](const Face& f) { return f.box.y; }, true); break;
    case FaceOrder::bottom_top: by([](const Face& f) { return f.box.y + f.box.height; }, false); break;
    case FaceOrder::small_large: by(face_size, true); break;
    case FaceOrder::large_small: by(face_size, false); break;
    case FaceOrder::best_worst: by(face_quality, false); break;
    case FaceOrder::worst_best: by(face_quality, true); break;
  }
  if (selector.mode == FaceSelectorMode::one && faces.size() > 1) faces.resize(1);
  return faces;
}

}  // namespace visage
