// Face swap on real photos (library): identity moves to the source, nothing
// outside the face changes, greyscale stays grey, several identities in one
// pass, targets without faces, CUDA against CPU.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "face/geometry.hpp"
#include "face_test_support.hpp"
#include "test_support.hpp"
#include "visage/face.hpp"
#include "visage/image.hpp"
#include "visage/swap.hpp"

namespace {

using namespace visage;
using test::inside_polygon;
using test::mesh_hull;

// Bounding box (x0, y0, x1, y1) of the pixels that differ; all -1 when none.
std::array<int64_t, 4> changed_box(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor diff = (a.to(at::kShort) - b.to(at::kShort)).abs().amax(2) > 0;
  at::Tensor rows = diff.any(1).nonzero(), cols = diff.any(0).nonzero();
  if (rows.numel() == 0) return {-1, -1, -1, -1};
  return {cols.min().item<int64_t>(), rows.min().item<int64_t>(), cols.max().item<int64_t>(),
          rows.max().item<int64_t>()};
}

// Some pixels differ between a and b, and none beyond 35% of the face's size
// around its box.
void expect_changes_near_face(const at::Tensor& a, const at::Tensor& b, const Face& face, const std::string& what) {
  auto box = changed_box(a, b);
  ASSERT_GE(box[0], 0) << what << " changed nothing";
  float margin = 0.35f * std::max(face.box.width, face.box.height);
  EXPECT_GE(box[0], face.box.x - margin) << what;
  EXPECT_GE(box[1], face.box.y - margin) << what;
  EXPECT_LE(box[2], face.box.x + face.box.width + margin) << what;
  EXPECT_LE(box[3], face.box.y + face.box.height + margin) << what;
}

class Swap : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    photos = test::registry_photos();
    if (!photos || !test::all_exist({photos->astronaut, photos->chelsea, photos->demo(1), photos->grace_hopper}))
      return;
    swapper = std::make_unique<FaceSwapper>(SwapOptions{});
    astronaut = read_image(photos->astronaut).rgb;
    hopper = read_image(photos->grace_hopper).rgb;
  }
  static void TearDownTestSuite() { swapper.reset(); }
  void SetUp() override {
    if (!swapper) VISAGE_SKIP_OR_FAIL_WITHOUT_PHOTOS();
  }
  static inline std::unique_ptr<FaceSwapper> swapper;
  static inline std::optional<test::RegistryPhotos> photos;
  static inline at::Tensor astronaut, hopper;
};

TEST_F(Swap, MovesIdentityToTheSourceAndKeepsTheRest) {
  SourceFace source = swapper->prepare_source({astronaut});
  ASSERT_EQ(source.embedding.size(), 512u);
  at::Tensor out = swapper->swap(hopper, source);
  EXPECT_EQ(swapper->faces_swapped(), 1u);
  ASSERT_EQ(out.sizes(), hopper.sizes());
  EXPECT_EQ(out.scalar_type(), at::kByte);

  auto before = swapper->analyser().analyse(hopper);
  auto after = swapper->analyser().analyse(out);
  const Face *t = test::largest_face(before), *o = test::largest_face(after);
  ASSERT_TRUE(t && o) << "the swapped face must still be found";
  float to_source = face_distance(o->embedding, source.embedding);
  float to_target = face_distance(o->embedding, t->embedding);
  EXPECT_LT(to_source, to_target) << "the output must look more like the source than the target";
  EXPECT_LT(to_source, face_distance(t->embedding, source.embedding)) << "the swap must move identity";

  // Only the face's surroundings change.
  expect_changes_near_face(out, hopper, *t, "the swap");
}

TEST_F(Swap, WithoutShapeChangeNothingOutsideTheFaceOutlineChanges) {
  SwapOptions options;
  options.shape_weight = 0;
  FaceSwapper texture_only(options);
  SourceFace source = texture_only.prepare_source({astronaut});
  at::Tensor out = texture_only.swap(hopper, source);
  ASSERT_EQ(texture_only.faces_swapped(), 1u);
  const std::vector<Face> found = texture_only.analyser().analyse(hopper);
  const Face* t = test::largest_face(found);
  ASSERT_TRUE(t);
  std::vector<Point2> hull = mesh_hull(*t);
  at::Tensor diff = ((out.to(at::kShort) - hopper.to(at::kShort)).abs().amax(2) > 0).nonzero();
  ASSERT_GT(diff.size(0), 1000) << "the face must change";
  int64_t outside = 0;
  auto idx = diff.accessor<int64_t, 2>();
  for (int64_t i = 0; i < diff.size(0); ++i) {
    float y = idx[i][0] + 0.5f, x = idx[i][1] + 0.5f;
    // One pixel of tolerance for the anti-aliased outline.
    bool near = inside_polygon(hull, x, y) || inside_polygon(hull, x - 1, y) || inside_polygon(hull, x + 1, y) ||
                inside_polygon(hull, x, y - 1) || inside_polygon(hull, x, y + 1);
    outside += !near;
  }
  EXPECT_EQ(outside, 0) << "pixels outside the target's face outline changed";
}

TEST_F(Swap, GreyscaleTargetGivesGreyscaleResult) {
  at::Tensor grey = hopper.to(at::kFloat).mean(2, true).round().to(at::kByte).expand({-1, -1, 3}).contiguous();
  SourceFace source = swapper->prepare_source({astronaut});
  at::Tensor out = swapper->swap(grey, source);
  ASSERT_EQ(swapper->faces_swapped(), 1u);
  EXPECT_FALSE(out.equal(grey));
  at::Tensor o = out.to(at::kShort);
  int64_t spread = (o.amax(2) - o.amin(2)).max().item<int64_t>();
  EXPECT_LE(spread, 2) << "a greyscale target must give a greyscale result";
}

TEST_F(Swap, TargetWithoutHumanFaceIsLeftAlone) {
  at::Tensor cat = read_image(photos->chelsea).rgb;
  SourceFace source = swapper->prepare_source({astronaut});
  at::Tensor out = swapper->swap(cat, source);
  EXPECT_EQ(swapper->faces_swapped(), 0u);
  EXPECT_TRUE(out.equal(cat));
}

TEST_F(Swap, SourceWithoutFaceIsAClearError) {
  at::Tensor cat = read_image(photos->chelsea).rgb;
  try {
    swapper->prepare_source({astronaut, cat});
    FAIL() << "expected Error{bad_input}";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    EXPECT_NE(std::string(e.what()).find("source image 1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(swapper->swap(at::zeros({4, 4}, at::kByte), SourceFace{}), Error);
}

TEST_F(Swap, DifferentSourcesForDifferentPeopleInOnePass) {
  at::Tensor group = read_image(photos->demo(1)).rgb;
  std::vector<Face> faces = swapper->analyser().analyse(group);
  ASSERT_GE(faces.size(), 2u);
  std::sort(faces.begin(), faces.end(), [](const Face& a, const Face& b) { return a.box.x < b.box.x; });
  SourceFace a = swapper->prepare_source({astronaut});
  SourceFace b = swapper->prepare_source({hopper});
  at::Tensor out = swapper->swap(group, std::vector<SwapAssignment>{{faces[0], &a}, {faces[1], &b}});
  EXPECT_EQ(swapper->faces_swapped(), 2u);
  auto after = swapper->analyser().analyse(out);
  std::sort(after.begin(), after.end(), [](const Face& x, const Face& y) { return x.box.x < y.box.x; });
  ASSERT_GE(after.size(), 2u);
  EXPECT_LT(face_distance(after[0].embedding, a.embedding), face_distance(after[0].embedding, b.embedding));
  EXPECT_LT(face_distance(after[1].embedding, b.embedding), face_distance(after[1].embedding, a.embedding));
}

TEST_F(Swap, SeveralSourcePhotosMakeOneIdentity) {
  SourceFace one = swapper->prepare_source({astronaut});
  SourceFace two = swapper->prepare_source({astronaut, astronaut.flip(1).contiguous()});
  ASSERT_EQ(two.embedding.size(), one.embedding.size());
  float norm = 0;
  for (float v : two.embedding) norm += v * v;
  EXPECT_NEAR(norm, 1.f, 1e-4f);
  EXPECT_LT(face_distance(one.embedding, two.embedding), 0.2f);
}

TEST_F(Swap, FaceEnhancerWorksOnlyOnTheSwappedFace) {
  SwapOptions options;
  options.enhancer = {.enabled = true, .model = "esrgan-slim-x2", .weight = 1.f};
  FaceSwapper enhancing(options);
  SourceFace source = swapper->prepare_source({astronaut});
  at::Tensor plain = swapper->swap(hopper, source);
  at::Tensor enhanced = enhancing.swap(hopper, enhancing.prepare_source({astronaut}));
  ASSERT_EQ(enhancing.faces_swapped(), 1u);
  const std::vector<Face> found = swapper->analyser().analyse(hopper);
  const Face* t = test::largest_face(found);
  ASSERT_TRUE(t);
  expect_changes_near_face(enhanced, plain, *t, "the enhancer");
}

TEST_F(Swap, CudaMatchesCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device (or a CPU-only build)";
  SwapOptions options;
  options.analyser.runtime.device = Device::cuda;
  FaceSwapper gpu(options);
  SourceFace source_cpu = swapper->prepare_source({astronaut});
  SourceFace source_gpu = gpu.prepare_source({astronaut});
  at::Tensor cpu = swapper->swap(hopper, source_cpu);
  at::Tensor cuda = gpu.swap(hopper, source_gpu);
  ASSERT_TRUE(cuda.is_cpu()) << "a CPU image in gives a CPU image out";
  double mean_diff = (cpu.to(at::kFloat) - cuda.to(at::kFloat)).abs().mean().item<double>();
  EXPECT_LT(mean_diff, 1.0);
}

// The occlusion mask's device path: its polygon masks come in the face's one
// upload and its closed-eye test reads its sums back in one copy.
TEST_F(Swap, CudaMatchesCpuWithOcclusionMask) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device (or a CPU-only build)";
  SwapOptions cpu_options;
  cpu_options.mask.occlusion = true;
  SwapOptions gpu_options = cpu_options;
  gpu_options.analyser.runtime.device = Device::cuda;
  FaceSwapper cpu_swapper(cpu_options), gpu(gpu_options);
  at::Tensor cpu = cpu_swapper.swap(hopper, cpu_swapper.prepare_source({astronaut}));
  at::Tensor cuda = gpu.swap(hopper, gpu.prepare_source({astronaut}));
  ASSERT_EQ(gpu.faces_swapped(), 1u);
  double mean_diff = (cpu.to(at::kFloat) - cuda.to(at::kFloat)).abs().mean().item<double>();
  EXPECT_LT(mean_diff, 1.0);
}

}  // namespace
