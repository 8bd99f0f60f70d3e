// The compositing as a CUDA graph (src/swap/compose_graph.hpp): a graph
// captured for one face replays another face of the same working size and
// layout (the next frames of a video) with that face's own geometry and
// pixels, giving what the eager compositing gives.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <vector>

#include "face_test_support.hpp"
#include "swap/compose_graph.hpp"
#include "test_support.hpp"
#include "visage/image.hpp"
#include "visage/runtime.hpp"
#include "visage/swap.hpp"

namespace {

using namespace visage;

// `image` uint8 [H, W, 3] resized by `scale` (bilinear): the same face a
// little nearer or farther, as from one video frame to the next.
at::Tensor rescaled(const at::Tensor& image, double scale) {
  const int64_t h = std::lround(image.size(0) * scale), w = std::lround(image.size(1) * scale);
  at::Tensor nchw = image.permute({2, 0, 1}).unsqueeze(0).to(at::kFloat);
  return at::upsample_bilinear2d(nchw, {h, w}, false)
      .round()
      .clamp(0, 255)
      .to(at::kByte)
      .squeeze(0)
      .permute({1, 2, 0})
      .contiguous();
}

TEST(SwapGraph, ReplaysAnotherFramesFaceLikeTheEagerCompositing) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device (or a CPU-only build)";
  const auto photos = test::registry_photos();
  if (!photos || !test::all_exist({photos->grace_hopper, photos->astronaut})) VISAGE_SKIP_OR_FAIL_WITHOUT_PHOTOS();
  const at::Tensor hopper = read_image(photos->grace_hopper).rgb;
  const at::Tensor astronaut = read_image(photos->astronaut).rgb;
  SwapOptions options;
  options.analyser.runtime.device = Device::cuda;
  FaceSwapper graphed(options);
  const SourceFace source = graphed.prepare_source({astronaut});
  auto jobs_for = [&](FaceSwapper& swapper, const at::Tensor& frame, const SourceFace& s) {
    const std::vector<Face> faces = swapper.analyser().analyse(frame);
    const Face* face = test::largest_face(faces);
    return face ? std::vector<SwapAssignment>{{*face, &s}} : std::vector<SwapAssignment>{};
  };
  // A key's second face is captured (the first runs eagerly).
  const auto before = swap::ComposeGraphs::totals();
  const std::vector<SwapAssignment> first = jobs_for(graphed, hopper, source);
  ASSERT_EQ(first.size(), 1u);
  graphed.swap(hopper, first);
  graphed.swap(hopper, first);
  const auto captured = swap::ComposeGraphs::totals();
  ASSERT_EQ(captured.captured, before.captured + 1) << "the second swap of one face captures its graph";
  ASSERT_EQ(captured.failed, before.failed);

  int replayed_elsewhere = 0;
  for (double scale : {1.004, 0.996, 1.008, 0.992, 1.012, 0.988}) {
    const at::Tensor frame = rescaled(hopper, scale);
    const std::vector<SwapAssignment> jobs = jobs_for(graphed, frame, source);
    ASSERT_EQ(jobs.size(), 1u) << "scale " << scale;
    const auto was = swap::ComposeGraphs::totals();
    const at::Tensor replayed = graphed.swap(frame, jobs);
    const auto now = swap::ComposeGraphs::totals();
    if (now.replayed != was.replayed + 1 || now.captured != was.captured) continue;  // another working size
    // The same face composed eagerly: a swapper's first sight of a key.
    FaceSwapper eager_swapper(options);
    const SourceFace eager_source = eager_swapper.prepare_source({astronaut});
    std::vector<SwapAssignment> eager_jobs = jobs;
    eager_jobs[0].source = &eager_source;
    const auto eager_was = swap::ComposeGraphs::totals();
    const at::Tensor eager = eager_swapper.swap(frame, eager_jobs);
    ASSERT_EQ(swap::ComposeGraphs::totals().replayed, eager_was.replayed) << "scale " << scale;
    const at::Tensor diff = (replayed.to(at::kFloat) - eager.to(at::kFloat)).abs();
    const at::Tensor changed = (replayed.to(at::kFloat) - frame.to(at::kFloat)).abs();
    EXPECT_GT(changed.amax().item<float>(), 20.f) << "the replay swapped the face (scale " << scale << ")";
    EXPECT_LT(diff.mean().item<double>(), 0.01) << "scale " << scale;
    EXPECT_LE(diff.amax().item<float>(), 2.f) << "scale " << scale;
    ++replayed_elsewhere;
  }
  EXPECT_GE(replayed_elsewhere, 2) << "faces a little nearer or farther share the working size and layout";
}

}  // namespace
