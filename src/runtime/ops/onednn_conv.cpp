#include "runtime/ops/onednn_conv.hpp"

#include <ATen/ATen.h>

#ifdef VISAGE_WITH_ONEDNN
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>
#include <utility>
#endif

namespace visage::rt {

#ifndef VISAGE_WITH_ONEDNN

class OnednnConv {};

bool onednn_conv_available() { return false; }

std::shared_ptr<const OnednnConv> make_onednn_conv(const OnednnConvSpec&) { return nullptr; }

bool run_onednn_conv(const OnednnConv&, const at::Tensor&, const std::vector<int64_t>&, const at::Tensor&, at::Tensor&,
                     bool&) {
  return false;
}

#else

namespace {

using Dims = dnnl::memory::dims;
using dnnl::memory;

// The headers we compiled against must describe the library that is loaded:
// a process that also loads another oneDNN (a pip torch bundles its own) could
// bind these calls to a different version.
bool onednn_usable() {
  static const bool usable = [] {
    const dnnl_version_t* version = dnnl_version();
    return version->major == DNNL_VERSION_MAJOR && version->minor == DNNL_VERSION_MINOR &&
           version->cpu_runtime == DNNL_RUNTIME_OMP;
  }();
  return usable;
}

const dnnl::engine& cpu_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// A stream may not be used by two threads at once; a CPU stream is cheap.
dnnl::stream& thread_stream() {
  thread_local dnnl::stream stream(cpu_engine());
  return stream;
}

// Thread policy. A convolution under 4M multiply-adds and 128K outputs runs
// on one thread: waking and joining a second OpenMP thread costs more than it
// saves on the small tensors of the face models. Measured on the 2-core
// machine at 2 threads (p50 ms, threshold 2M / 4M / 8M MACs): facemesh 1.78 /
// 1.02 / 1.06, fr_landmark 0.32 / 0.26 / 0.28, mobilefacenet 3.96 / 3.64 /
// 4.77. Memory-bound layers with many outputs (depthwise convolutions at
// 128x128 or 60x80) still gain from a second thread: fr_detect 1.52-1.62 ms
// from 128K outputs, 1.72-1.74 from 256K, and keijiro back 4.0 ms with an
// output rule, 5.1 without. Never above the caller's thread count
// (visage::set_cpu_threads).
constexpr int64_t kSingleThreadMacs = int64_t{1} << 22;
constexpr int64_t kSingleThreadOutputs = int64_t{1} << 17;

// Lowers the calling thread's OpenMP team size for one call; oneDNN (OpenMP
// runtime) and ATen read it per parallel region.
class ThreadLimit {
 public:
  explicit ThreadLimit(int threads) : previous_(omp_get_max_threads()) {
    if (threads < previous_) omp_set_num_threads(threads);
  }
  ~ThreadLimit() {
    if (omp_get_max_threads() != previous_) omp_set_num_threads(previous_);
  }
  ThreadLimit(const ThreadLimit&) = delete;
  ThreadLimit& operator=(const ThreadLimit&) = delete;

 private:
  int previous_;
};

// A memory descriptor for a tensor's actual strides (no copy).
memory::desc strided_desc(const at::Tensor& t, const Dims& dims, const Dims& strides) {
  return memory::desc(dims, memory::data_type::f32, strides);
}

// One pass over memory the convolution just wrote (still in cache), in the
// min/max form (no branch) so that it vectorises; clones for wider vectors.
__attribute__((target_clones("avx512f", "avx2", "default"))) void prelu_rows(float* __restrict data,
                                                                             const float* __restrict slope,
                                                                             int64_t pixels, int64_t channels) {
  for (int64_t p = 0; p < pixels; ++p) {
    float* __restrict row = data + p * channels;
    for (int64_t c = 0; c < channels; ++c) row[c] = std::max(row[c], 0.0f) + slope[c] * std::min(row[c], 0.0f);
  }
}

memory wrap(const memory::desc& md, const at::Tensor& t) {
  return memory(md, cpu_engine(), const_cast<void*>(t.data_ptr()));
}

}  // namespace

class OnednnConv {
 public:
  explicit OnednnConv(const OnednnConvSpec& spec) : spec_(spec) {
    const auto& w = spec_.weight;
    out_channels_ = w.size(0);
    const int64_t g = spec_.groups;
    // Grouped weights are 5-D for oneDNN: [groups, O/groups, C/groups, kH, kW].
    if (g == 1) {
      weight_dims_ = {w.size(0), w.size(1), w.size(2), w.size(3)};
      user_weights_ = strided_desc(w, weight_dims_, {w.stride(0), w.stride(1), w.stride(2), w.stride(3)});
    } else {
      weight_dims_ = {g, w.size(0) / g, w.size(1), w.size(2), w.size(3)};
      user_weights_ = strided_desc(w, weight_dims_,
                                   {w.stride(0) * (w.size(0) / g), w.stride(0), w.stride(1), w.stride(2), w.stride(3)});
    }
    if (spec_.bias.defined()) {
      bias_ = spec_.bias.contiguous();
      bias_memory_ = wrap(memory::desc({out_channels_}, memory::data_type::f32, memory::format_tag::x), bias_);
    }
    post_ops_supported_ = describe_activation();
  }

  const OnednnConvSpec& spec() const { return spec_; }

  struct Plan {
    bool usable = false;  // false: at::convolution runs this shape
    bool epilogue = false;
    int threads = 1;
    std::vector<int64_t> out_sizes;
    memory::desc src, dst;
    dnnl::convolution_forward primitive;
    memory weights;
  };

  std::shared_ptr<const Plan> plan(const at::Tensor& x, const std::vector<int64_t>& pads, bool residual_matches,
                                   int threads_available) const {
    std::vector<int64_t> key{
        x.size(0),        x.size(1), x.size(2), x.size(3), pads[0], pads[1], pads[2], pads[3], residual_matches ? 1 : 0,
        threads_available};
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [k, p] : plans_)
      if (k == key) return p;
    auto made = std::make_shared<Plan>();
    try {
      build(*made, x, pads, residual_matches, threads_available);
    } catch (const dnnl::error&) {
      made->usable = false;  // a configuration oneDNN rejects: ATen handles (or reports) it
    }
    // Bounded: a model fed many input sizes keeps only the latest plans.
    if (plans_.size() >= kMaxPlans) plans_.erase(plans_.begin());
    plans_.emplace_back(std::move(key), made);
    return made;
  }

  const memory& bias_memory() const { return bias_memory_; }

  // In place on a channels-last NCHW-indexed tensor: negative values times
  // their channel's slope.
  void apply_prelu(at::Tensor& y) const {
    if (!slope_.defined()) return;
    const int64_t channels = y.size(1);
    prelu_rows(y.data_ptr<float>(), slope_.data_ptr<float>(), y.numel() / channels, channels);
  }

 private:
  static constexpr size_t kMaxPlans = 16;

  // The node's activation as oneDNN eltwise post-ops (activation_ops_), or
  // PRelu for apply_prelu; false when neither can express it.
  bool describe_activation() {
    using K = FusedActivation::Kind;
    const auto& a = spec_.activation;
    auto eltwise = [&](dnnl::algorithm algorithm, double alpha, double beta) {
      activation_ops_.push_back({algorithm, static_cast<float>(alpha), static_cast<float>(beta)});
    };
    constexpr double kLowest = std::numeric_limits<float>::lowest();
    constexpr double kHighest = std::numeric_limits<float>::max();
    switch (a.kind) {
      case K::none: return true;
      case K::relu: eltwise(dnnl::algorithm::eltwise_relu, 0, 0); return true;
      case K::leaky_relu: eltwise(dnnl::algorithm::eltwise_relu, a.alpha, 0); return true;
      case K::clip:
        eltwise(dnnl::algorithm::eltwise_clip, std::max(a.min, kLowest), std::min(a.max, kHighest));
        return true;
      case K::sigmoid: eltwise(dnnl::algorithm::eltwise_logistic, 0, 0); return true;
      case K::tanh: eltwise(dnnl::algorithm::eltwise_tanh, 0, 0); return true;
      case K::elu: eltwise(dnnl::algorithm::eltwise_elu, a.alpha, 0); return true;
      case K::hard_sigmoid:
        eltwise(dnnl::algorithm::eltwise_linear, a.alpha, a.beta);
        eltwise(dnnl::algorithm::eltwise_clip, 0, 1);
        return true;
      case K::hard_swish: eltwise(dnnl::algorithm::eltwise_hardswish, 0, 0); return true;
      case K::prelu: return describe_prelu();
    }
    return false;
  }

  // A PRelu slope that is one value, or one per output channel, is applied
  // right after the primitive by apply_prelu (oneDNN 2.6's prelu post-op
  // sends convolutions to its reference kernel); other broadcasts stay with
  // the caller.
  bool describe_prelu() {
    const at::Tensor& s = spec_.slope;
    if (!s.defined() || s.scalar_type() != at::kFloat || !s.device().is_cpu()) return false;
    if (s.numel() != 1) {
      if (s.numel() != out_channels_) return false;
      // The channel axis of the node's layout: last for NHWC, third from last for NCHW.
      const int64_t channel_axis = spec_.nhwc ? s.dim() - 1 : s.dim() - 3;
      if (channel_axis < 0 || s.size(channel_axis) != out_channels_) return false;
    }
    slope_ = s.reshape({-1}).expand({out_channels_}).contiguous();
    return true;
  }

  void build(Plan& plan, const at::Tensor& x, const std::vector<int64_t>& pads, bool residual_matches,
             int threads_available) const {
    const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    const auto& weight = spec_.weight;
    const int64_t kh = weight.size(2), kw = weight.size(3);
    const int64_t sh = spec_.strides[0], sw = spec_.strides[1], dh = spec_.dilations[0], dw = spec_.dilations[1];
    if (c != weight.size(1) * spec_.groups) return;  // ATen reports the mismatch
    const int64_t oh = (h + pads[0] + pads[2] - ((kh - 1) * dh + 1)) / sh + 1;
    const int64_t ow = (w + pads[1] + pads[3] - ((kw - 1) * dw + 1)) / sw + 1;
    if (oh <= 0 || ow <= 0) return;
    plan.out_sizes = {n, out_channels_, oh, ow};
    const int64_t macs = n * out_channels_ * oh * ow * weight.size(1) * kh * kw;
    const int64_t outputs = n * out_channels_ * oh * ow;
    plan.threads = macs < kSingleThreadMacs && outputs < kSingleThreadOutputs ? 1 : threads_available;

    plan.src = memory::desc({n, c, h, w}, memory::data_type::f32, memory::format_tag::nhwc);
    plan.dst = memory::desc({n, out_channels_, oh, ow}, memory::data_type::f32, memory::format_tag::nhwc);
    memory::desc any_weights(weight_dims_, memory::data_type::f32, memory::format_tag::any);

    // All of the residual Add and the activation, or none of them, as post-ops:
    // the Add must come before the activation.
    const bool residual = spec_.residual;
    plan.epilogue = post_ops_supported_ && (!residual || residual_matches);

    // oneDNN picks its implementation (and weight layout) for the thread count
    // it sees at creation: create under the limit the plan will run with.
    ThreadLimit limit(plan.threads);
    Dims strides{sh, sw}, dilates{dh - 1, dw - 1}, pad_l{pads[0], pads[1]}, pad_r{pads[2], pads[3]};
    auto make_desc = [&]() {
      if (bias_.defined())
        return dnnl::convolution_forward::desc(
            dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, plan.src, any_weights,
            memory::desc({out_channels_}, memory::data_type::f32, memory::format_tag::x), plan.dst, strides, dilates,
            pad_l, pad_r);
      return dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                             plan.src, any_weights, plan.dst, strides, dilates, pad_l, pad_r);
    };
    auto make_attr = [&]() {
      dnnl::primitive_attr attr;
      if (!plan.epilogue) return attr;
      dnnl::post_ops ops;
      // The residual as a binary post-op read straight from its tensor
      // (a sum post-op would first need it copied into the output).
      if (residual) ops.append_binary(dnnl::algorithm::binary_add, plan.dst);
      for (const auto& op : activation_ops_) ops.append_eltwise(1.0f, op.algorithm, op.alpha, op.beta);
      attr.set_post_ops(ops);
      return attr;
    };
    // oneDNN's reference kernels are far slower than ATen's own fallbacks.
    auto is_reference = [](const dnnl::convolution_forward::primitive_desc& pd) {
      return std::string(pd.impl_info_str()).rfind("ref", 0) == 0;
    };
    // The operation descriptor must outlive the primitive descriptor's
    // iterator over implementations (choose_fastest walks it).
    const auto desc = make_desc();
    dnnl::convolution_forward::primitive_desc pd(desc, make_attr(), cpu_engine(), true);
    if ((!pd || is_reference(pd)) && plan.epilogue) {
      // Post-ops this kernel cannot fuse: the caller adds and activates.
      plan.epilogue = false;
      pd = dnnl::convolution_forward::primitive_desc(desc, make_attr(), cpu_engine(), true);
    }
    if (!pd || is_reference(pd)) return;
    choose_fastest(plan, pd, x);
    plan.usable = true;
  }

  // oneDNN lists its implementations best first by its own heuristics, which
  // favour the brgemm kernels; on the face models' layers (depthwise, channel
  // counts that are not multiples of 16) the direct jit kernels are often
  // faster: 80 vs 136 us for a 24-channel 128x128 depthwise conv, one thread.
  // So a plan times the first few candidates on its input and keeps the
  // fastest. Called with mutex_ held, under the plan's thread limit.
  void choose_fastest(Plan& plan, dnnl::convolution_forward::primitive_desc& pd, const at::Tensor& x) const {
    constexpr int kCandidates = 4;
    constexpr int kTimedRuns = 3;
    const at::Tensor src = x.contiguous(at::MemoryFormat::ChannelsLast);
    const auto options = x.options().memory_format(at::MemoryFormat::ChannelsLast);
    at::Tensor dst = at::empty(plan.out_sizes, options);
    at::Tensor addend = plan.epilogue && spec_.residual ? at::zeros(plan.out_sizes, options) : at::Tensor();
    double best = std::numeric_limits<double>::infinity();
    int tried = 0;
    do {
      const std::string name = pd.impl_info_str();
      // Reference, gemm-based and SSE kernels are never the fast ones here.
      if (name.rfind("ref", 0) == 0 || name.find("gemm") != std::string::npos ||
          name.find("sse41") != std::string::npos)
        continue;
      dnnl::convolution_forward primitive(pd);
      memory weights = pack_weights(pd.weights_desc());
      std::unordered_map<int, memory> args{
          {DNNL_ARG_SRC, wrap(plan.src, src)}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, wrap(plan.dst, dst)}};
      if (bias_.defined()) args.emplace(DNNL_ARG_BIAS, bias_memory_);
      if (addend.defined()) args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, wrap(plan.dst, addend));
      primitive.execute(thread_stream(), args);  // warm-up: first touch, caches
      double fastest = std::numeric_limits<double>::infinity();
      for (int run = 0; run < kTimedRuns; ++run) {
        const auto start = std::chrono::steady_clock::now();
        primitive.execute(thread_stream(), args);
        fastest = std::min(fastest, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      }
      if (fastest < best) {
        best = fastest;
        plan.primitive = primitive;
        plan.weights = weights;
      }
    } while (++tried < kCandidates && pd.next_impl());
    if (best == std::numeric_limits<double>::infinity()) throw dnnl::error(dnnl_unimplemented, "no fast kernel");
    // Plans that chose the same layout share one copy of the packed weights.
    for (const auto& [desc, packed] : packed_)
      if (desc == plan.weights.get_desc()) {
        plan.weights = packed;
        return;
      }
    // Bounded like the plans; an evicted copy lives on in the plans using it.
    if (packed_.size() >= kMaxPlans) packed_.erase(packed_.begin());
    packed_.emplace_back(plan.weights.get_desc(), plan.weights);
  }

  // The weights reordered into the layout a primitive wants.
  memory pack_weights(const memory::desc& layout) const {
    memory packed(layout, cpu_engine());
    memory user = wrap(user_weights_, spec_.weight);
    dnnl::stream stream(cpu_engine());
    dnnl::reorder(user, packed).execute(stream, user, packed);
    stream.wait();
    return packed;
  }

  struct EltwiseOp {
    dnnl::algorithm algorithm;
    float alpha, beta;
  };

  OnednnConvSpec spec_;
  int64_t out_channels_ = 0;
  Dims weight_dims_;
  memory::desc user_weights_;
  at::Tensor bias_;
  memory bias_memory_;
  at::Tensor slope_;  // one value per output channel, for apply_prelu
  std::vector<EltwiseOp> activation_ops_;
  bool post_ops_supported_ = false;

  // Shared by every session of the model.
  mutable std::mutex mutex_;
  mutable std::vector<std::pair<std::vector<int64_t>, std::shared_ptr<const Plan> > > plans_;
  mutable std::vector<std::pair<memory::desc, memory> > packed_;
};

bool onednn_conv_available() { return onednn_usable(); }

std::shared_ptr<const OnednnConv> make_onednn_conv(const OnednnConvSpec& spec) {
  if (!onednn_usable()) return nullptr;
  const at::Tensor& w = spec.weight;
  if (!w.defined() || w.dim() != 4 || w.scalar_type() != at::kFloat || !w.device().is_cpu()) return nullptr;
  if (spec.groups < 1 || w.size(0) % spec.groups != 0) return nullptr;
  if (spec.strides.size() != 2 || spec.dilations.size() != 2) return nullptr;
  if (spec.bias.defined() &&
      (spec.bias.scalar_type() != at::kFloat || !spec.bias.device().is_cpu() || spec.bias.numel() != w.size(0)))
    return nullptr;
  return std::make_shared<const OnednnConv>(spec);
}

bool run_onednn_conv(const OnednnConv& conv, const at::Tensor& x, const std::vector<int64_t>& pads,
                     const at::Tensor& residual, at::Tensor& out, bool& epilogue_done) {
  if (x.dim() != 4 || x.scalar_type() != at::kFloat || !x.device().is_cpu() || pads.size() != 4) return false;
  for (int64_t pad : pads)
    if (pad < 0) return false;
  const auto& spec = conv.spec();
  // The output's shape is known once the plan is: compare the residual after.
  const int threads = omp_get_max_threads();
  std::vector<int64_t> expected_out;
  {
    // Cheap shape arithmetic for the residual check, the same as the plan's.
    const int64_t kh = spec.weight.size(2), kw = spec.weight.size(3);
    expected_out = {x.size(0), spec.weight.size(0),
                    (x.size(2) + pads[0] + pads[2] - ((kh - 1) * spec.dilations[0] + 1)) / spec.strides[0] + 1,
                    (x.size(3) + pads[1] + pads[3] - ((kw - 1) * spec.dilations[1] + 1)) / spec.strides[1] + 1};
  }
  const bool residual_matches = spec.residual && residual.defined() && residual.scalar_type() == at::kFloat &&
                                residual.device().is_cpu() && residual.sizes() == at::IntArrayRef(expected_out);
  auto plan = conv.plan(x, pads, residual_matches, threads);
  if (!plan->usable) return false;

  at::Tensor src = x.is_contiguous(at::MemoryFormat::ChannelsLast) ? x : x.contiguous(at::MemoryFormat::ChannelsLast);
  at::Tensor dst = out;
  const bool reusable = dst.defined() && dst.scalar_type() == at::kFloat && dst.device().is_cpu() &&
                        dst.sizes() == at::IntArrayRef(plan->out_sizes) &&
                        dst.is_contiguous(at::MemoryFormat::ChannelsLast) && !dst.is_alias_of(x) &&
                        !(residual.defined() && dst.is_alias_of(residual));
  if (!reusable) dst = at::empty(plan->out_sizes, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  at::Tensor addend;
  if (plan->epilogue && spec.residual)
    addend = residual.is_contiguous(at::MemoryFormat::ChannelsLast)
                 ? residual
                 : residual.contiguous(at::MemoryFormat::ChannelsLast);

  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, wrap(plan->src, src)}, {DNNL_ARG_WEIGHTS, plan->weights}, {DNNL_ARG_DST, wrap(plan->dst, dst)}};
  if (spec.bias.defined()) args.emplace(DNNL_ARG_BIAS, conv.bias_memory());
  if (addend.defined()) args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, wrap(plan->dst, addend));
  {
    ThreadLimit limit(plan->threads);
    plan->primitive.execute(thread_stream(), args);
    if (plan->epilogue) conv.apply_prelu(dst);
  }
  out = dst;
  epilogue_done = plan->epilogue;
  return true;
}

#endif  // VISAGE_WITH_ONEDNN

}  // namespace visage::rt
