// FaceEnhancer: ESRGAN on an upright crop of each face, blended back through
// a feathered mask.
//
// Geometry, per face: the 5 points fix a similarity transform onto the FFHQ
// layout (upright, eyes level). In that aligned frame the crop is the box
// around the mask polygon plus a margin of network context, sampled at
// 1/scale of the image's resolution (clamped to kMinCropSide..kMaxCropSide
// pixels), so the network's output comes back at about the image's own
// resolution. Only the mask polygon's bounding box of the image is touched,
// and only where the mask is above zero.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#include "enhance/models.hpp"
#include "face/geometry.hpp"
#include "face/warp.hpp"

namespace visage {

namespace {

constexpr int kMinCropSide = 48;   // below this the network sees too little of the face
constexpr int kMaxCropSide = 320;  // bounds the cost of one face (x4: 1280 px out)
constexpr float kFeather = 0.12f;  // feather width as a fraction of sqrt(mask area)
constexpr float kContext = 8.f;    // crop pixels of context around the mask (receptive field)

// The face ellipse when there is no mesh, in units of the ffhq_512 crop:
// forehead to chin, cheek to cheek.
constexpr float kEllipseCx = 0.5f, kEllipseCy = 0.57f, kEllipseRx = 0.24f, kEllipseRy = 0.32f;

using face::apply;
using face::compose;
using face::invert;

Affine translation(double x, double y) { return {1, 0, x, 0, 1, y}; }
Affine scaling(double sx, double sy) { return {sx, 0, 0, 0, sy, 0}; }

// Convex polygon edges as half-planes n.p + c >= 0 inside, |n| = 1.
struct HalfPlane {
  float nx, ny, c;
};

std::vector<HalfPlane> half_planes(const std::vector<Point2>& polygon) {
  Point2 centre{0, 0};
  for (const auto& p : polygon) centre.x += p.x / polygon.size(), centre.y += p.y / polygon.size();
  std::vector<HalfPlane> planes;
  for (size_t i = 0; i < polygon.size(); ++i) {
    Point2 a = polygon[i], b = polygon[(i + 1) % polygon.size()];
    float ex = b.x - a.x, ey = b.y - a.y, len = std::hypot(ex, ey);
    if (len < 1e-6f) continue;
    HalfPlane h{-ey / len, ex / len, 0};
    h.c = -(h.nx * a.x + h.ny * a.y);
    if (h.nx * centre.x + h.ny * centre.y + h.c < 0) h = {-h.nx, -h.ny, -h.c};
    planes.push_back(h);
  }
  return planes;
}

float polygon_area(const std::vector<Point2>& p) {
  double twice = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const Point2 &a = p[i], &b = p[(i + 1) % p.size()];
    twice += static_cast<double>(a.x) * b.y - static_cast<double>(b.x) * a.y;
  }
  return static_cast<float>(std::abs(twice) / 2);
}

// Alpha over the image rows [y0, y0+h) and columns [x0, x0+w): the distance
// inside the convex polygon divided by `feather`, smoothstepped. Exactly 0 on
// and outside the polygon.
at::Tensor convex_polygon_alpha(const std::vector<Point2>& polygon, int64_t x0, int64_t y0, int64_t h, int64_t w,
                                float feather, at::Device device) {
  const std::vector<HalfPlane> planes = half_planes(polygon);
  const float inv_feather = 1.f / std::max(feather, 1e-3f);
  if (device.is_cpu()) {
    at::Tensor alpha = at::empty({h, w}, at::kFloat);
    float* out = alpha.data_ptr<float>();
    at::parallel_for(0, h, 8, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t q = 0; q < w; ++q) {
          float px = static_cast<float>(x0 + q) + 0.5f, py = static_cast<float>(y0 + r) + 0.5f;
          float d = 1.f;
          for (const auto& p : planes) {
            d = std::min(d, (p.nx * px + p.ny * py + p.c) * inv_feather);
            if (d <= 0) break;
          }
          d = std::max(d, 0.f);
          out[r * w + q] = d * d * (3 - 2 * d);
        }
    });
    return alpha;
  }
  // On a device: one broadcast per edge (a few dozen small kernels).
  auto opts = at::TensorOptions().dtype(at::kFloat).device(device);
  at::Tensor xs = at::arange(w, opts).add_(static_cast<double>(x0) + 0.5).view({1, w});
  at::Tensor ys = at::arange(h, opts).add_(static_cast<double>(y0) + 0.5).view({h, 1});
  at::Tensor d = at::full({h, w}, 1.0, opts);
  for (const auto& p : planes)
    d = at::minimum(d, (xs * (p.nx * inv_feather) + ys * (p.ny * inv_feather)).add_(p.c * inv_feather));
  d.clamp_min_(0);
  return d * d * (3 - 2 * d);
}

// The mask outline in image coordinates.
std::vector<Point2> face_outline(const Face& face, const Affine& unit_crop_to_image) {
  if (face.mesh.size() >= 468) {
    std::vector<Point2> points;
    points.reserve(468);
    for (size_t i = 0; i < 468; ++i) points.push_back({face.mesh[i].x, face.mesh[i].y});
    return face::convex_hull(std::move(points));
  }
  std::vector<Point2> ellipse;
  constexpr int kSides = 48;
  for (int i = 0; i < kSides; ++i) {
    double t = 2 * M_PI * i / kSides;
    ellipse.push_back(apply(unit_crop_to_image, {static_cast<float>(kEllipseCx + kEllipseRx * std::cos(t)),
                                                 static_cast<float>(kEllipseCy + kEllipseRy * std::sin(t))}));
  }
  return ellipse;
}

void check_weight(float weight) {
  if (!(weight >= 0.f && weight <= 1.f))
    throw Error(ErrorKind::bad_input, "face enhancer weight must be in 0..1, got " + std::to_string(weight));
}

}  // namespace

struct FaceEnhancer::Impl {
  FaceEnhancerOptions options;
  RuntimeOptions runtime;
  EnhancerModel model_name;
  int scale;
  std::shared_ptr<const Model> model;
  Session session;

  Impl(const FaceEnhancerOptions& o, const RuntimeOptions& r, EnhancerModel name, std::shared_ptr<const Model> m)
      : options(o), runtime(r), model_name(name), scale(enhancer_scale(name)), model(m), session(std::move(m)) {}

  // Enhances one face of `image` (contiguous uint8, any device) in place.
  void enhance_face(at::Tensor& image, const Face& face, float weight);
};

void FaceEnhancer::Impl::enhance_face(at::Tensor& image, const Face& face, float weight) {
  const int64_t height = image.size(0), width = image.size(1);
  const auto& lm = face.landmarks_5;
  float eye_distance = std::hypot(lm[right_eye].x - lm[left_eye].x, lm[right_eye].y - lm[left_eye].y);
  if (!(eye_distance >= 2.f)) return;  // also catches NaN landmarks

  // image -> unit FFHQ crop; its inverse puts the template (ellipse) into the image.
  const Affine image_to_unit = estimate_alignment(lm, AlignmentTemplate::ffhq_512, 1);
  const double unit_scale =
      std::sqrt(std::abs(image_to_unit[0] * image_to_unit[4] - image_to_unit[1] * image_to_unit[3]));
  if (!(unit_scale > 0)) return;
  const std::vector<Point2> outline = face_outline(face, invert(image_to_unit));
  if (outline.size() < 3) return;

  // Image region touched: the outline's bounding box, clipped.
  Box bounds = face::bounding_box(outline);
  const int64_t x0 = std::clamp<int64_t>(static_cast<int64_t>(std::floor(bounds.x)), 0, width);
  const int64_t y0 = std::clamp<int64_t>(static_cast<int64_t>(std::floor(bounds.y)), 0, height);
  const int64_t x1 = std::clamp<int64_t>(static_cast<int64_t>(std::ceil(bounds.x + bounds.width)), 0, width);
  const int64_t y1 = std::clamp<int64_t>(static_cast<int64_t>(std::ceil(bounds.y + bounds.height)), 0, height);
  if (x1 <= x0 || y1 <= y0) return;

  // The aligned frame at image resolution (rotation + translation only).
  const Affine image_to_upright = compose(scaling(1 / unit_scale, 1 / unit_scale), image_to_unit);
  std::vector<Point2> upright;
  for (const auto& p : outline) upright.push_back(apply(image_to_upright, p));
  Box ub = face::bounding_box(upright);
  const double extent = std::max(ub.width, ub.height);
  if (!(extent >= 2)) return;
  // Crop pixels per image pixel: 1/scale, unless the crop would be too small or too big.
  double density = 1.0 / scale;
  density = std::clamp(density, kMinCropSide / extent, kMaxCropSide / extent);
  const double margin = kContext / density;
  const double ux0 = ub.x - margin, uy0 = ub.y - margin;
  const int crop_w = static_cast<int>(std::ceil((ub.width + 2 * margin) * density));
  const int crop_h = static_cast<int>(std::ceil((ub.height + 2 * margin) * density));
  const Affine image_to_crop = compose(scaling(density, density), compose(translation(-ux0, -uy0), image_to_upright));

  // Shrinking the image 2-4x by bilinear sampling alone would alias (the
  // network was trained on properly filtered inputs): sample k x k points per
  // crop pixel and average them.
  const int k = std::clamp(static_cast<int>(std::ceil(0.999 / density)), 1, 8);
  at::Tensor crop =
      face::warp_to_input(image, invert(compose(scaling(k, k), image_to_crop)), crop_h * k, crop_w * k, 1.f, 0.f);
  if (k > 1) crop = at::avg_pool2d(crop.permute({0, 3, 1, 2}), {k, k}).permute({0, 2, 3, 1}).contiguous();
  at::Tensor sr = session.run({crop}).at(0);
  if (sr.dim() != 4 || sr.size(1) != crop_h * scale || sr.size(2) != crop_w * scale || sr.size(3) != 3)
    throw Error(ErrorKind::model, model->path().string() + ": expected a [1, " + std::to_string(crop_h * scale) + ", " +
                                      std::to_string(crop_w * scale) + ", 3] output, got " + c10::str(sr.sizes()));
  // ESRGAN's output pixel grid is the input's times `scale`.
  Affine image_to_sr = compose(scaling(scale, scale), image_to_crop);
  at::Tensor sr_image = sr.squeeze(0).permute({2, 0, 1}).unsqueeze(0);  // [1, 3, h, w]
  // Where the crop had to be sampled finer than 1/scale, the output is denser
  // than the image: average it down first so the warp back does not alias.
  const double out_density = density * scale;
  if (out_density > 1.25) {
    int64_t h = std::max<int64_t>(1, std::llround(sr_image.size(2) / out_density));
    int64_t w = std::max<int64_t>(1, std::llround(sr_image.size(3) / out_density));
    image_to_sr = compose(scaling(static_cast<double>(w) / sr_image.size(3), static_cast<double>(h) / sr_image.size(2)),
                          image_to_sr);
    sr_image = at::adaptive_avg_pool2d(sr_image, {h, w});
  }
  at::Tensor sr_rgb =
      sr_image.squeeze(0).permute({1, 2, 0}).round().clamp(0, 255).to(image.device(), at::kByte).contiguous();

  const int64_t rh = y1 - y0, rw = x1 - x0;
  // Image pixel (x0 + u, y0 + v) reads the super-resolved crop where image_to_sr puts it.
  at::Tensor enhanced = face::warp_to_input(sr_rgb, compose(image_to_sr, translation(x0, y0)), static_cast<int>(rh),
                                            static_cast<int>(rw), 1.f, 0.f)
                            .squeeze(0);
  const float feather = kFeather * std::sqrt(polygon_area(outline));
  at::Tensor alpha = convex_polygon_alpha(outline, x0, y0, rh, rw, feather, image.device()).mul_(weight).unsqueeze(2);
  at::Tensor region = image.slice(0, y0, y1).slice(1, x0, x1);
  at::Tensor original = region.to(at::kFloat);
  // original + alpha * (enhanced - original): exactly the original where alpha is 0.
  at::Tensor blended = original + alpha * (enhanced - original);
  region.copy_(blended.round_().clamp_(0, 255).to(at::kByte));
}

FaceEnhancer::FaceEnhancer(const FaceEnhancerOptions& options, const RuntimeOptions& runtime) {
  check_weight(options.weight);
  EnhancerModel name = parse_enhancer_model(options.model);
  impl_ = std::make_unique<Impl>(options, runtime, name, enhance::load_enhancer_model(name, runtime));
}

FaceEnhancer::FaceEnhancer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FaceEnhancer::~FaceEnhancer() = default;
FaceEnhancer::FaceEnhancer(FaceEnhancer&&) noexcept = default;
FaceEnhancer& FaceEnhancer::operator=(FaceEnhancer&&) noexcept = default;

FaceEnhancer FaceEnhancer::clone() const {
  return FaceEnhancer(std::make_unique<Impl>(impl_->options, impl_->runtime, impl_->model_name, impl_->model));
}

at::Tensor FaceEnhancer::enhance_faces(const at::Tensor& rgb, const std::vector<Face>& faces, float weight) {
  face::check_rgb(rgb);
  check_weight(weight);
  at::Tensor image = rgb.contiguous().clone();
  if (weight == 0.f) return image;
  try {
    for (const auto& f : faces) impl_->enhance_face(image, f, weight);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(ErrorKind::internal,
                std::string("face enhancer (") + std::string(to_string(impl_->model_name)) + "): " + e.what());
  }
  return image;
}

at::Tensor FaceEnhancer::enhance_faces(const at::Tensor& rgb, const std::vector<Face>& faces) {
  return enhance_faces(rgb, faces, impl_->options.weight);
}

const FaceEnhancerOptions& FaceEnhancer::options() const { return impl_->options; }
EnhancerModel FaceEnhancer::model() const { return impl_->model_name; }

}  // namespace visage
