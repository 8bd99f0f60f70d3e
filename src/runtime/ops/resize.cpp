// Resize (and Upsample), DepthToSpace, SpaceToDepth.
//
// Resize takes ATen's upsample kernels where their coordinate convention is
// exactly ONNX's (4-D, batch and channel unscaled); everything else runs a
// separable interpolation: per resized axis, up to four index_select taps with
// weights computed on the host from ONNX's coordinate formulas (once per
// shape and device: see AxisTableCache).
#include <ATen/ATen.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "runtime/ops/families.hpp"
#include "runtime/ops/spatial.hpp"

namespace visage::rt {
namespace {

enum class Mode { nearest, linear, cubic };
enum class Transform {
  half_pixel,
  pytorch_half_pixel,
  align_corners,
  asymmetric,
  tf_half_pixel_for_nn,
  tf_crop_and_resize
};
enum class Rounding { round_prefer_floor, round_prefer_ceil, floor, ceil };

struct ResizeParams {
  Mode mode = Mode::nearest;
  Transform transform = Transform::half_pixel;
  Rounding rounding = Rounding::round_prefer_floor;
  double cubic_a = -0.75;
  bool exclude_outside = false;
  double extrapolation = 0.0;
  bool nhwc = false;
  int roi_input = 1, scales_input = 2, sizes_input = 3;
};

ResizeParams parse_resize(const Node& node, const BuildContext& context) {
  ResizeParams p;
  std::string mode = node.attrs.get_string("mode", "nearest");
  if (mode == "nearest")
    p.mode = Mode::nearest;
  else if (mode == "linear" || mode == "bilinear")
    p.mode = Mode::linear;
  else if (mode == "cubic")
    p.mode = Mode::cubic;
  else
    throw_unsupported(node, context, "Resize mode '" + mode + "'");
  std::string transform = node.attrs.get_string("coordinate_transformation_mode", "half_pixel");
  if (transform == "half_pixel")
    p.transform = Transform::half_pixel;
  else if (transform == "pytorch_half_pixel")
    p.transform = Transform::pytorch_half_pixel;
  else if (transform == "align_corners")
    p.transform = Transform::align_corners;
  else if (transform == "asymmetric")
    p.transform = Transform::asymmetric;
  else if (transform == "tf_half_pixel_for_nn")
    p.transform = Transform::tf_half_pixel_for_nn;
  else if (transform == "tf_crop_and_resize")
    p.transform = Transform::tf_crop_and_resize;
  else
    throw_unsupported(node, context, "coordinate_transformation_mode '" + transform + "'");
  std::string rounding = node.attrs.get_string("nearest_mode", "round_prefer_floor");
  if (rounding == "round_prefer_floor")
    p.rounding = Rounding::round_prefer_floor;
  else if (rounding == "round_prefer_ceil")
    p.rounding = Rounding::round_prefer_ceil;
  else if (rounding == "floor")
    p.rounding = Rounding::floor;
  else if (rounding == "ceil")
    p.rounding = Rounding::ceil;
  else
    throw_unsupported(node, context, "nearest_mode '" + rounding + "'");
  p.cubic_a = node.attrs.get_float("cubic_coeff_a", -0.75);
  p.exclude_outside = node.attrs.get_int("exclude_outside", 0) != 0;
  p.extrapolation = node.attrs.get_float("extrapolation_value", 0.0);
  p.nhwc = is_nhwc(node);
  if (node.attrs.get_int("antialias", 0) != 0) throw_unsupported(node, context, "Resize with antialias");
  if (node.attrs.has("axes")) throw_unsupported(node, context, "Resize with axes");
  std::string policy = node.attrs.get_string("keep_aspect_ratio_policy", "stretch");
  if (policy != "stretch") throw_unsupported(node, context, "keep_aspect_ratio_policy '" + policy + "'");
  if (node.op == "Upsample") {
    // Upsample is Resize with asymmetric coordinates and (X, scales) inputs.
    p.roi_input = -1, p.scales_input = 1, p.sizes_input = -1;
    p.transform = Transform::asymmetric;
    p.rounding = Rounding::floor;
  }
  return p;
}

std::vector<double> host_doubles(const at::Tensor& t) {
  at::Tensor h = t.to(at::kCPU, at::kDouble).contiguous();
  return std::vector<double>(h.data_ptr<double>(), h.data_ptr<double>() + h.numel());
}

at::Tensor input_or_none(std::span<const at::Tensor> in, int index) {
  if (index < 0 || static_cast<size_t>(index) >= in.size()) return {};
  const at::Tensor& t = in[static_cast<size_t>(index)];
  return t.defined() && t.numel() > 0 ? t : at::Tensor();
}

// Reorders a per-axis parameter given in the tensor's NHWC order to NCHW.
template <typename T>
std::vector<T> to_channels_first(std::vector<T> v) {
  if (v.size() < 3) return v;
  T channels = v.back();
  v.pop_back();
  v.insert(v.begin() + 1, channels);
  return v;
}

// Source coordinate of output index `x` along an axis.
double source_coordinate(const ResizeParams& p, double x, double scale, int64_t in, int64_t out, double roi_start,
                         double roi_end) {
  switch (p.transform) {
    case Transform::half_pixel: return (x + 0.5) / scale - 0.5;
    case Transform::pytorch_half_pixel: return out > 1 ? (x + 0.5) / scale - 0.5 : 0.0;
    case Transform::align_corners: {
      // ONNX uses the unrounded resized length (in * scale), not the output size.
      double resized = static_cast<double>(in) * scale;
      return resized == 1.0 || out == 1 ? 0.0 : x * static_cast<double>(in - 1) / (resized - 1.0);
    }
    case Transform::asymmetric: return x / scale;
    case Transform::tf_half_pixel_for_nn: return (x + 0.5) / scale;
    case Transform::tf_crop_and_resize:
      return out > 1 ? roi_start * static_cast<double>(in - 1) +
                           x * (roi_end - roi_start) * static_cast<double>(in - 1) / static_cast<double>(out - 1)
                     : 0.5 * (roi_start + roi_end) * static_cast<double>(in - 1);
  }
  return 0.0;
}

int64_t round_nearest(Rounding rounding, double v) {
  switch (rounding) {
    case Rounding::round_prefer_floor: return static_cast<int64_t>(std::ceil(v - 0.5));
    case Rounding::round_prefer_ceil: return static_cast<int64_t>(std::floor(v + 0.5));
    case Rounding::floor: return static_cast<int64_t>(std::floor(v));
    case Rounding::ceil: return static_cast<int64_t>(std::ceil(v));
  }
  return 0;
}

std::array<double, 4> cubic_weights(double t, double a) {
  auto far = [a](double d) { return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a; };  // 1 < d < 2
  auto near = [a](double d) { return ((a + 2) * d - (a + 3)) * d * d + 1; };       // d <= 1
  return {far(t + 1), near(t), near(1 - t), far(2 - t)};
}

// The taps of one resized axis on the input's device: per tap the source
// indices and weights (shaped to broadcast along the axis), and where
// tf_crop_and_resize samples outside the input.
struct AxisTables {
  std::vector<at::Tensor> index, weight;
  at::Tensor outside;  // undefined when nothing is outside
};

AxisTables make_axis_tables(const ResizeParams& p, int64_t in, int64_t out, double scale, double roi_start,
                            double roi_end, int64_t rank, int64_t axis, at::Device device, at::ScalarType compute) {
  const int taps = p.mode == Mode::nearest ? 1 : p.mode == Mode::linear ? 2 : 4;
  std::vector<std::vector<int64_t>> index(static_cast<size_t>(taps), std::vector<int64_t>(static_cast<size_t>(out)));
  std::vector<std::vector<double>> weight(static_cast<size_t>(taps), std::vector<double>(static_cast<size_t>(out)));
  std::vector<uint8_t> outside(static_cast<size_t>(out), 0);
  bool any_outside = false;
  auto clamp = [in](int64_t i) { return std::clamp<int64_t>(i, 0, in - 1); };
  for (int64_t o = 0; o < out; ++o) {
    const auto uo = static_cast<size_t>(o);
    double src = source_coordinate(p, static_cast<double>(o), scale, in, out, roi_start, roi_end);
    if (p.transform == Transform::tf_crop_and_resize && (src < 0 || src > static_cast<double>(in - 1))) {
      outside[uo] = 1;
      any_outside = true;
    }
    if (p.mode == Mode::nearest) {
      index[0][uo] = clamp(round_nearest(p.rounding, src));
      weight[0][uo] = 1.0;
      continue;
    }
    const double base = std::floor(src);
    const double t = src - base;
    const auto b = static_cast<int64_t>(base);
    if (p.mode == Mode::linear) {
      index[0][uo] = clamp(b), weight[0][uo] = 1 - t;
      index[1][uo] = clamp(b + 1), weight[1][uo] = t;
      continue;
    }
    auto w = cubic_weights(t, p.cubic_a);
    double total = 0;
    for (int k = 0; k < 4; ++k) {
      int64_t i = b - 1 + k;
      if (p.exclude_outside && (i < 0 || i >= in)) w[static_cast<size_t>(k)] = 0;
      total += w[static_cast<size_t>(k)];
    }
    for (int k = 0; k < 4; ++k) {
      index[static_cast<size_t>(k)][uo] = clamp(b - 1 + k);
      weight[static_cast<size_t>(k)][uo] =
          p.exclude_outside && total != 0 ? w[static_cast<size_t>(k)] / total : w[static_cast<size_t>(k)];
    }
  }
  std::vector<int64_t> weight_shape(static_cast<size_t>(rank), 1);
  weight_shape[static_cast<size_t>(axis)] = out;
  AxisTables tables;
  for (int k = 0; k < taps; ++k) {
    tables.index.push_back(at::tensor(index[static_cast<size_t>(k)], at::kLong).to(device));
    if (p.mode != Mode::nearest)
      tables.weight.push_back(
          at::tensor(weight[static_cast<size_t>(k)], at::kDouble).to(device, compute).view(weight_shape));
  }
  if (any_outside)
    tables.outside = at::tensor(std::vector<int64_t>(outside.begin(), outside.end()), at::kLong)
                         .to(device)
                         .to(at::kBool)
                         .view(weight_shape);
  return tables;
}

// A Resize node's axis tables, kept per input/output size and device: a
// session repeats the same shapes, and a CUDA graph capture cannot copy
// host tables to the device (the runs before a capture fill the cache).
class AxisTableCache {
 public:
  std::shared_ptr<const AxisTables> get(const ResizeParams& p, int64_t in, int64_t out, double scale, double roi_start,
                                        double roi_end, int64_t rank, int64_t axis, at::Device device,
                                        at::ScalarType compute) {
    Key key{in,
            out,
            rank,
            axis,
            scale,
            roi_start,
            roi_end,
            static_cast<int>(device.type()),
            device.index(),
            static_cast<int>(compute)};
    std::lock_guard lock(mutex_);
    auto it = tables_.find(key);
    if (it != tables_.end()) return it->second;
    if (tables_.size() >= 64) tables_.clear();  // shapes that keep changing: keep the cache bounded
    auto tables = std::make_shared<const AxisTables>(
        make_axis_tables(p, in, out, scale, roi_start, roi_end, rank, axis, device, compute));
    tables_.emplace(key, tables);
    return tables;
  }

 private:
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, double, double, double, int, int, int>;
  std::mutex mutex_;
  std::map<Key, std::shared_ptr<const AxisTables>> tables_;
};

// Interpolates `x` along `axis` to `out` elements.
at::Tensor resize_axis(const ResizeParams& p, AxisTableCache& cache, const at::Tensor& x, int64_t axis, int64_t out,
                       double scale, double roi_start, double roi_end) {
  const at::ScalarType compute = at::isFloatingType(x.scalar_type()) ? x.scalar_type() : at::kFloat;
  auto tables = cache.get(p, x.size(axis), out, scale, roi_start, roi_end, x.dim(), axis, x.device(), compute);
  at::Tensor y;
  for (size_t k = 0; k < tables->index.size(); ++k) {
    at::Tensor picked = at::index_select(x, axis, tables->index[k]);
    if (p.mode == Mode::nearest) {
      y = picked;
      break;
    }
    y = k == 0 ? picked.to(compute) * tables->weight[k] : y + picked.to(compute) * tables->weight[k];
  }
  if (tables->outside.defined()) y = y.masked_fill(tables->outside, p.extrapolation);
  if (y.scalar_type() != x.scalar_type()) y = p.mode == Mode::nearest ? y : y.round().to(x.scalar_type());
  return y;
}

// ATen's upsample kernels for a 4-D NCHW tensor resized in H and W only, when
// their convention matches ONNX's exactly; an undefined tensor otherwise.
at::Tensor aten_fast_path(const ResizeParams& p, const at::Tensor& x, const std::vector<int64_t>& out,
                          const std::vector<double>& scales, bool scales_given) {
  if (x.dim() != 4 || out[0] != x.size(0) || out[1] != x.size(1) || !at::isFloatingType(x.scalar_type())) return {};
  std::vector<int64_t> size{out[2], out[3]};
  c10::optional<double> sh, sw;
  if (scales_given) sh = scales[2], sw = scales[3];
  if (p.mode == Mode::nearest && p.transform == Transform::asymmetric && p.rounding == Rounding::floor)
    return at::upsample_nearest2d(x, size, sh, sw);
  if (p.mode == Mode::linear || p.mode == Mode::cubic) {
    if (p.mode == Mode::cubic && (p.cubic_a != -0.75 || p.exclude_outside)) return {};
    bool pytorch_ok = p.transform == Transform::pytorch_half_pixel && out[2] > 1 && out[3] > 1;
    // ATen's align_corners uses the output size; ONNX uses in * scale.
    bool align = p.transform == Transform::align_corners &&
                 static_cast<double>(x.size(2)) * scales[2] == static_cast<double>(out[2]) &&
                 static_cast<double>(x.size(3)) * scales[3] == static_cast<double>(out[3]);
    if (!(p.transform == Transform::half_pixel || pytorch_ok || align)) return {};
    if (align) sh.reset(), sw.reset();
    return p.mode == Mode::linear ? at::upsample_bilinear2d(x, size, align, sh, sw)
                                  : at::upsample_bicubic2d(x, size, align, sh, sw);
  }
  return {};
}

Kernel make_resize(const Node& node, const BuildContext& context) {
  ResizeParams p = parse_resize(node, context);
  auto cache = std::make_shared<AxisTableCache>();
  return [p, cache](std::span<const at::Tensor> in, std::span<at::Tensor> out_tensors) {
    at::Tensor x = p.nhwc ? channels_first_view(in[0]) : in[0];
    const int64_t rank = x.dim();
    const auto urank = static_cast<size_t>(rank);
    at::Tensor scales_t = input_or_none(in, p.scales_input);
    at::Tensor sizes_t = input_or_none(in, p.sizes_input);
    at::Tensor roi_t = input_or_none(in, p.roi_input);
    require(scales_t.defined() != sizes_t.defined(), "Resize needs exactly one of scales and sizes");

    std::vector<int64_t> out(urank);
    std::vector<double> scales(urank, 1.0);
    if (sizes_t.defined()) {
      std::vector<int64_t> sizes = to_int_vector(sizes_t);
      if (p.nhwc && sizes.size() == 2)
        sizes.insert(sizes.begin(), {x.size(0), x.size(1)});
      else if (p.nhwc)
        sizes = to_channels_first(sizes);
      require(sizes.size() == urank, "Resize sizes must have one value per input dimension");
      for (size_t d = 0; d < urank; ++d) {
        out[d] = sizes[d];
        scales[d] = static_cast<double>(sizes[d]) / static_cast<double>(x.size(static_cast<int64_t>(d)));
      }
    } else {
      std::vector<double> given = host_doubles(scales_t);
      if (p.nhwc && given.size() == 2)
        given.insert(given.begin(), {1.0, 1.0});
      else if (p.nhwc)
        given = to_channels_first(given);
      require(given.size() == urank, "Resize scales must have one value per input dimension");
      for (size_t d = 0; d < urank; ++d) {
        require(given[d] > 0, "Resize scales must be positive");
        scales[d] = given[d];
        out[d] = static_cast<int64_t>(std::floor(static_cast<double>(x.size(static_cast<int64_t>(d))) * given[d]));
      }
    }
    std::vector<double> roi;
    if (p.transform == Transform::tf_crop_and_resize) {
      require(roi_t.defined(), "tf_crop_and_resize needs roi");
      roi = host_doubles(roi_t);
      if (p.nhwc && roi.size() == 2 * urank) {
        std::vector<double> starts(roi.begin(), roi.begin() + rank), ends(roi.begin() + rank, roi.end());
        starts = to_channels_first(starts), ends = to_channels_first(ends);
        roi = starts;
        roi.insert(roi.end(), ends.begin(), ends.end());
      }
      require(roi.size() == 2 * urank, "Resize roi must have 2 values per input dimension");
    }

    at::Tensor y;
    if (p.transform != Transform::tf_crop_and_resize) y = aten_fast_path(p, x, out, scales, scales_t.defined());
    if (!y.defined()) {
      y = x;
      for (int64_t d = 0; d < rank; ++d) {
        const auto ud = static_cast<size_t>(d);
        if (p.transform != Transform::tf_crop_and_resize && out[ud] == x.size(d) && scales[ud] == 1.0) continue;
        double roi_start = roi.empty() ? 0.0 : roi[ud];
        double roi_end = roi.empty() ? 1.0 : roi[ud + urank];
        y = resize_axis(p, *cache, y, d, out[ud], scales[ud], roi_start, roi_end);
      }
    }
    out_tensors[0] = p.nhwc ? channels_last_view(y) : y;
  };
}

Kernel make_depth_to_space(const Node& node, const BuildContext& context) {
  const int64_t b = node.attrs.get_int("blocksize", 0);
  require(b >= 1, "DepthToSpace needs a positive blocksize");
  const std::string mode = node.attrs.get_string("mode", "DCR");
  if (mode != "DCR" && mode != "CRD") throw_unsupported(node, context, "DepthToSpace mode '" + mode + "'");
  const bool nhwc = is_nhwc(node);
  return [=](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    at::Tensor x = nhwc ? channels_first_view(in[0]) : in[0];
    require(x.dim() == 4, "DepthToSpace needs a 4-D input");
    const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    require(c % (b * b) == 0, "DepthToSpace channels must divide by blocksize squared");
    const int64_t oc = c / (b * b);
    at::Tensor y = mode == "DCR" ? x.reshape({n, b, b, oc, h, w}).permute({0, 3, 4, 1, 5, 2})
                                 : x.reshape({n, oc, b, b, h, w}).permute({0, 1, 4, 2, 5, 3});
    if (nhwc) {
      // Produce the channels-last result directly: [n, h, b, w, b, oc].
      out[0] = y.permute({0, 2, 3, 4, 5, 1}).reshape({n, h * b, w * b, oc});
    } else {
      out[0] = y.reshape({n, oc, h * b, w * b});
    }
  };
}

Kernel make_space_to_depth(const Node& node, const BuildContext&) {
  const int64_t b = node.attrs.get_int("blocksize", 0);
  require(b >= 1, "SpaceToDepth needs a positive blocksize");
  const bool nhwc = is_nhwc(node);
  return [=](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    at::Tensor x = nhwc ? channels_first_view(in[0]) : in[0];
    require(x.dim() == 4, "SpaceToDepth needs a 4-D input");
    const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    require(h % b == 0 && w % b == 0, "SpaceToDepth spatial sizes must divide by blocksize");
    // [n, c, h/b, b, w/b, b] -> [n, b, b, c, h/b, w/b]
    at::Tensor y = x.reshape({n, c, h / b, b, w / b, b}).permute({0, 3, 5, 1, 2, 4});
    if (nhwc) {
      out[0] = y.permute({0, 4, 5, 1, 2, 3}).reshape({n, h / b, w / b, c * b * b});
    } else {
      out[0] = y.reshape({n, c * b * b, h / b, w / b});
    }
  };
}

}  // namespace

void register_resize_ops(OpTable& table) {
  table.add("Resize", make_resize);
  table.add("Upsample", make_resize);
  table.add("DepthToSpace", make_depth_to_space);
  table.add("SpaceToDepth", make_space_to_depth);
}

}  // namespace visage::rt
