// Face selection and geometry helpers on synthetic faces (no models needed).
#include <gtest/gtest.h>

#include "face/geometry.hpp"
#include "visage/face.hpp"

namespace visage {
namespace {

Face make_face(float x, float y, float size, float score, Gender gender, float age, std::vector<float> embedding = {}) {
  Face f;
  f.box = {x, y, size, size};
  f.detector_score = score;
  f.gender = gender;
  f.age = age;
  f.embedding = std::move(embedding);
  return f;
}

std::vector<float> xs(const std::vector<Face>& faces) {
  std::vector<float> out;
  for (const auto& f : faces) out.push_back(f.box.x);
  return out;
}

TEST(FaceSelection, OrdersAndModes) {
  std::vector<Face> faces = {make_face(300, 50, 40, 0.7f, Gender::male, 30),
                             make_face(10, 200, 90, 0.9f, Gender::female, 20),
                             make_face(150, 10, 60, 0.8f, Gender::female, 60)};
  EXPECT_EQ(xs(select_faces(faces, {.order = FaceOrder::left_right})), (std::vector<float>{10, 150, 300}));
  EXPECT_EQ(xs(select_faces(faces, {.order = FaceOrder::right_left})), (std::vector<float>{300, 150, 10}));
  EXPECT_EQ(xs(select_faces(faces, {.order = FaceOrder::top_bottom})), (std::vector<float>{150, 300, 10}));
  EXPECT_EQ(xs(select_faces(faces, {.order = FaceOrder::bottom_top})), (std::vector<float>{10, 300, 150}));
  EXPECT_EQ(xs(select_faces(faces, {.order = FaceOrder::small_large})), (std::vector<float>{300, 150, 10}));
  EXPECT_EQ(xs(select_faces(faces, {.order = FaceOrder::large_small})), (std::vector<float>{10, 150, 300}));
  EXPECT_EQ(xs(select_faces(faces, {.order = FaceOrder::best_worst})), (std::vector<float>{10, 150, 300}));
  EXPECT_EQ(xs(select_faces(faces, {.order = FaceOrder::worst_best})), (std::vector<float>{300, 150, 10}));
  EXPECT_EQ(xs(select_faces(faces, {.mode = FaceSelectorMode::one, .order = FaceOrder::left_right})),
            (std::vector<float>{10}));
  EXPECT_EQ(xs(select_faces(faces, {.gender = Gender::female})), (std::vector<float>{10, 150}));
  EXPECT_EQ(xs(select_faces(faces, {.age_min = 25.f, .age_max = 40.f})), (std::vector<float>{300}));
  EXPECT_TRUE(select_faces({}, {.mode = FaceSelectorMode::one}).empty());
}

TEST(FaceSelection, ReferenceDistance) {
  std::vector<Face> faces = {make_face(0, 0, 10, 1, Gender::male, 30, {1, 0, 0}),
                             make_face(20, 0, 10, 1, Gender::male, 30, {0.8f, 0.6f, 0}),
                             make_face(40, 0, 10, 1, Gender::male, 30, {0, 0, 1})};
  FaceSelector s{.mode = FaceSelectorMode::reference, .references = {{1, 0, 0}}, .reference_distance = 0.3f};
  EXPECT_EQ(xs(select_faces(faces, s)), (std::vector<float>{0, 20}));
  s.reference_distance = 0.1f;
  EXPECT_EQ(xs(select_faces(faces, s)), (std::vector<float>{0}));
  s.references.clear();
  EXPECT_THROW(select_faces(faces, s), Error);
  faces[0].embedding.clear();
  EXPECT_THROW(select_faces(faces, {.mode = FaceSelectorMode::reference, .references = {{1, 0, 0}}}), Error);
}

TEST(FaceSelection, ParsersNameTheAcceptedValues) {
  EXPECT_EQ(parse_face_order("large-small"), FaceOrder::large_small);
  EXPECT_EQ(parse_face_selector_mode("reference"), FaceSelectorMode::reference);
  EXPECT_EQ(parse_gender("female"), Gender::female);
  EXPECT_EQ(parse_face_detector("ultraface"), FaceDetectorModel::ultraface);
  try {
    parse_face_order("sideways");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    EXPECT_NE(std::string(e.what()).find("left-right"), std::string::npos);
  }
}

TEST(FaceGeometry, SimilarityFitRecoversATransform) {
  // A known rotation + scale + shift applied to the arcface template is recovered exactly.
  const auto& t = alignment_template(AlignmentTemplate::arcface_112_v2);
  Affine truth = {1.5 * std::cos(0.3), -1.5 * std::sin(0.3), 40, 1.5 * std::sin(0.3), 1.5 * std::cos(0.3), -7};
  std::vector<Point2> src(t.begin(), t.end()), dst;
  for (auto p : src) dst.push_back(face::apply(truth, p));
  Affine fit = face::fit_similarity(src, dst);
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(fit[i], truth[i], 1e-5);
  Affine back = face::compose(face::invert(fit), fit);
  Affine id = face::identity_affine();
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(back[i], id[i], 1e-9);
}

TEST(FaceGeometry, NmsAndHull) {
  std::vector<Box> boxes = {{0, 0, 10, 10}, {1, 1, 10, 10}, {50, 50, 10, 10}};
  std::vector<float> scores = {0.5f, 0.9f, 0.7f};
  EXPECT_EQ(face::non_max_suppression(boxes, scores, 0.3f), (std::vector<size_t>{1, 2}));
  EXPECT_NEAR(face::iou(boxes[0], boxes[1]), 81.f / 119.f, 1e-6);
  auto hull = face::convex_hull({{0, 0}, {4, 0}, {4, 4}, {0, 4}, {2, 2}, {1, 3}});
  EXPECT_EQ(hull.size(), 4u);
  EXPECT_THROW(face_distance({1, 0}, {1, 0, 0}), Error);
  EXPECT_NEAR(face_distance({1, 0}, {0, 1}), 1.f, 1e-6);
}

}  // namespace
}  // namespace visage
