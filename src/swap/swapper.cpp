// FaceSwapper: the dense-mesh swapper and the compositing around it.
//
// Per target face, in a region of interest (ROI) around it:
//   1. shape: the source's mean 3D shape is fitted onto the target mesh
//      (similarity) and the target mesh moves towards it by shape_weight;
//      lips and eyes move rigidly so the target keeps its expression;
//   2. outline: the target image around the face is warped with the outline
//      (a smooth displacement field), so no old jaw line or halo remains
//      where the source face is narrower or wider;
//   3. texture: every pixel of the new mesh reads the same surface point of
//      the source photo, or of the mirrored point where that is hidden (depth
//      test) or covered (skin model); where both are unusable, the target's own;
//   4. colour transfer, masks (box, regions, occlusion), blending.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <optional>

#include "face/geometry.hpp"
#include "face/mesh.hpp"
#include "face/warp.hpp"
#include "swap/compose.hpp"
#include "swap/compose_graph.hpp"
#include "swap/compose_internal.hpp"
#include "swap/mesh_raster.hpp"
#include "swap/mesh_topology.hpp"
#include "swap/shape_transfer.hpp"
#include "swap/source_fill.hpp"
#include "swap/stage_scope.hpp"
#include "visage/enhance.hpp"
#include "visage/swap.hpp"

namespace visage {

using namespace swap;

struct SourceFace::Data {
  at::Tensor texture;        // [1, 6, H, W] float on the swapper's device: r, g, b, usable (0..1), depth, facing (0..1)
  std::vector<Point3> mesh;  // 468 points in texture pixels
  std::vector<Point3> shape;  // mean 3D shape of all photos, canonical frame, unit RMS
  float depth_tolerance = 0;  // texture pixels
  float face_size = 1;        // the larger side of the mesh's box, texture pixels
  // The texture's face is turned (a three-quarter view): its two sides can
  // meet on the midline in its own penumbra (see mix_sides).
  bool turned = false;
};

struct FaceSwapper::Impl {
  SwapOptions options;
  FaceAnalyser analyser;
  std::optional<FaceEnhancer> enhancer;  // when options.enhancer.enabled
  size_t swapped = 0;
  ComposeGraphs graphs;  // on a device
  Impl(SwapOptions o, FaceAnalyser a, std::optional<FaceEnhancer> e)
      : options(std::move(o)), analyser(std::move(a)), enhancer(std::move(e)) {}
};

namespace {

constexpr int max_texture_side = 512;
// Share of a target eye's pixels that are not skin-coloured below which the
// eye counts as closed (the occlusion mask's colour test, used only without
// the attention mesh's lid gap).
constexpr float kClosedEyeBelow = 0.3f;
// Lid gap over eye width (Face::eye_openness) at or below which a target eye
// is closed and stays the target's, and at or above which it is open and
// swapped; in between, partly. Hand-labelled frames and photos: closed eyes
// 0.015-0.09, open ones 0.154 (a narrow, smiling eye) and up.
constexpr float kEyeClosedAt = 0.10f, kEyeOpenAt = 0.14f;
// The texture region has a 15% margin on each side, so it holds at most this
// many pixels of face; larger target faces are composed at this face size
// (finer work would only resample the same texture) and scaled up.
constexpr float max_compose_face_size = max_texture_side / 1.3f;
// Nor is a face composed finer than the source's own face in its texture
// (astronaut ~200 px, grace_hopper ~190: on a 480-px close-up a quarter of the
// work), but not below this size: the masks, the occlusion test and the
// eyes' polygons need some pixels.
constexpr float min_compose_face_size = 192.f;
// Frontalness (below) under which a source texture counts as turned: about
// 18 degrees. The portraits seen read 0.95-0.996, stock-emotions-a-2 (a
// three-quarter view) 0.80.
constexpr float kTurnedBelow = 0.94f;

at::Device device_of(const SwapOptions& options) {
  return options.analyser.runtime.device == Device::cuda
             ? at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(options.analyser.runtime.device_index))
             : at::Device(at::kCPU);
}

std::vector<Point2> flat(std::span<const Point3> mesh) {
  std::vector<Point2> out;
  out.reserve(mesh.size());
  for (const auto& p : mesh) out.push_back({p.x, p.y});
  return out;
}

// The largest face size (pixels) at which a face is composed with this
// source (SwapOptions::compose_face_size).
float compose_size_for(const SwapOptions& options, float source_face_size) {
  if (options.compose_face_size > 0) return options.compose_face_size;
  return std::clamp(source_face_size, min_compose_face_size, max_compose_face_size);
}

// Polygons of the face's parts from the 68 points, in ROI pixels.
struct FaceParts {
  Polygon hull, left_eye, right_eye, left_brow, right_brow, nose, upper_lip, lower_lip, mouth;
  // Below the eyes and above the jaw, inset from the outline: skin on nearly
  // every face (hair, hats and hands seldom reach it), where the skin colour
  // model is fitted.
  Polygon cheeks;
  Polygon nostrils;  // below the nose tip: dark, but no occluder
  Point2 brows;      // mean of the eyebrow points
  Point2 head_top;   // the mesh's top (forehead) vertex

  // Eyes, brows and lips (and the mouth opening): not skin-coloured, but the face's own.
  std::vector<Polygon> features(bool with_mouth) const {
    std::vector<Polygon> out = {left_eye, right_eye, left_brow, right_brow, upper_lip, lower_lip};
    if (with_mouth) out.push_back(mouth);
    return out;
  }
};

Polygon points_of(const std::vector<Point2>& p68, std::initializer_list<int> ids) {
  Polygon out;
  for (int i : ids) out.push_back(p68[i]);
  return out;
}

// An eyebrow as a band: the brow line raised a little, and lowered towards the eye.
Polygon brow_band(const std::vector<Point2>& p68, int first, int eye_first) {
  Point2 eye{0, 0};
  for (int i = eye_first; i < eye_first + 6; ++i) eye.x += p68[i].x / 6, eye.y += p68[i].y / 6;
  Polygon band;
  for (int i = first; i < first + 5; ++i)
    band.push_back({p68[i].x - (eye.x - p68[i].x) * 0.12f, p68[i].y - (eye.y - p68[i].y) * 0.12f});
  for (int i = first + 4; i >= first; --i)
    band.push_back({p68[i].x + (eye.x - p68[i].x) * 0.35f, p68[i].y + (eye.y - p68[i].y) * 0.35f});
  return band;
}

FaceParts face_parts(std::span<const Point3> mesh) {
  std::vector<Point3> m(mesh.begin(), mesh.begin() + mesh_vertices);
  std::vector<Point2> p68 = face::mesh_landmarks_68(m);
  FaceParts parts;
  parts.hull = face::convex_hull(flat(m));
  // The fitted 68 points of an eye can cross over (a lid point beyond a
  // corner); their hull is always a proper outline.
  parts.left_eye = face::convex_hull(points_of(p68, {36, 37, 38, 39, 40, 41}));
  parts.right_eye = face::convex_hull(points_of(p68, {42, 43, 44, 45, 46, 47}));
  parts.left_brow = brow_band(p68, 17, 36);
  parts.right_brow = brow_band(p68, 22, 42);
  parts.nose = face::convex_hull(points_of(p68, {27, 31, 32, 33, 34, 35, 28, 29, 30}));
  parts.upper_lip = points_of(p68, {48, 49, 50, 51, 52, 53, 54, 64, 63, 62, 61, 60});
  parts.lower_lip = points_of(p68, {48, 60, 67, 66, 65, 64, 54, 55, 56, 57, 58, 59});
  parts.mouth = face::convex_hull(points_of(p68, {60, 61, 62, 63, 64, 65, 66, 67}));
  auto towards = [](Point2 a, Point2 b, float t) { return Point2{a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t}; };
  parts.cheeks = {towards(p68[36], p68[30], 0.1f), towards(p68[45], p68[30], 0.1f), towards(p68[13], p68[33], 0.25f),
                  towards(p68[3], p68[33], 0.25f)};
  parts.nostrils = face::convex_hull({towards(p68[31], p68[39], 0.15f), towards(p68[35], p68[42], 0.15f), p68[30],
                                      towards(p68[31], p68[48], 0.4f), towards(p68[35], p68[54], 0.4f),
                                      towards(p68[33], p68[51], 0.5f)});
  for (int i = 17; i <= 26; ++i) parts.brows.x += p68[i].x / 10, parts.brows.y += p68[i].y / 10;
  constexpr int forehead_top = 10;
  parts.head_top = {m[forehead_top].x, m[forehead_top].y};
  return parts;
}

// How much of each target eye (left, right) keeps the target's own pixels:
// 1 for a closed eye, 0 for an open one. A pasted open eye on a blink or a
// wink is the most visible mistake a swap makes on video.
std::array<float, 2> closed_eye_weights(const Face& target) {
  if (!target.eye_openness) return {0.f, 0.f};
  std::array<float, 2> out;
  for (int e = 0; e < 2; ++e) {
    const float t = std::clamp((kEyeOpenAt - (*target.eye_openness)[e]) / (kEyeOpenAt - kEyeClosedAt), 0.f, 1.f);
    out[e] = t * t * (3.f - 2.f * t);
  }
  return out;
}

// An eye's outline grown to take in the lid's crease and lashes, which lie a
// little outside it (more above and below than at the corners).
Polygon grown_eye(const Polygon& eye) {
  Point2 c{0, 0};
  for (const auto& p : eye) c.x += p.x / eye.size(), c.y += p.y / eye.size();
  Polygon grown;
  for (const auto& p : eye) grown.push_back({c.x + (p.x - c.x) * 1.3f, c.y + (p.y - c.y) * 1.8f});
  return grown;
}

struct Roi {
  int x0 = 0, y0 = 0, width = 0, height = 0;
};

Roi roi_around(std::span<const Point3> a, std::span<const Point3> b, int64_t image_w, int64_t image_h, float margin) {
  std::vector<Point2> pts = flat(a);
  for (auto p : flat(b)) pts.push_back(p);
  Box box = face::bounding_box(pts);
  float grow = margin * std::max(box.width, box.height);
  int x0 = std::clamp(static_cast<int>(std::floor(box.x - grow)), 0, static_cast<int>(image_w) - 1);
  int y0 = std::clamp(static_cast<int>(std::floor(box.y - grow)), 0, static_cast<int>(image_h) - 1);
  int x1 = std::clamp(static_cast<int>(std::ceil(box.x + box.width + grow)), x0 + 1, static_cast<int>(image_w));
  int y1 = std::clamp(static_cast<int>(std::ceil(box.y + box.height + grow)), y0 + 1, static_cast<int>(image_h));
  return {x0, y0, x1 - x0, y1 - y0};
}

std::vector<Point3> shifted(std::span<const Point3> mesh, float dx, float dy) {
  std::vector<Point3> out(mesh.begin(), mesh.end());
  for (auto& p : out) p.x += dx, p.y += dy;
  return out;
}

// Per-pixel source positions [N, H, W, >=2] as normalised grid_sampler
// coordinates [N, H, W, 2] of an image of size src_w x src_h.
at::Tensor sampling_grid(const at::Tensor& positions, int src_w, int src_h) {
  // Scalars, not a [2] scale tensor: on a device that was an upload and a
  // wait for the stream.
  at::Tensor x = positions.select(3, 0) * (2.f / src_w), y = positions.select(3, 1) * (2.f / src_h);
  return at::stack({x, y}, 3).sub_(1.f);
}

// The rasters of one face: the mesh correspondence (per-pixel source
// positions) and the polygon masks. On the CPU each mask is made when first
// used. On a device they are rasterised there: the host prepares what is
// proportional to the polygons' edges and the mesh's triangles (each edge's
// area deposits per pixel row, each triangle's box and points), sends it in
// one asynchronous upload, and ATen ops do the per-pixel work
// (mesh_correspondence_aten, detail::resolve_polygon_deposits). Rasterising
// on the host and uploading the pixels (~10 MB a face) is kept for comparison:
// the environment variable VISAGE_SWAP_HOST_RASTERS=1 selects it.
class FaceRasters {
 public:
  FaceRasters(int height, int width, at::Device device) : h_(height), w_(width), device_(device) {}

  // Polygons filled at the compose size; fill(id) gives the mask.
  int add(std::vector<Polygon> polygons) {
    sets_.push_back(std::move(polygons));
    return static_cast<int>(sets_.size()) - 1;
  }
  // Numbers of this face that the device work reads from memory, not as
  // launch arguments (a captured graph replays with another face's); their
  // first index in values().
  int add_values(std::initializer_list<float> v) {
    values_.insert(values_.end(), v.begin(), v.end());
    return static_cast<int>(values_.size() - v.size());
  }

  // Rasterises: the correspondence of `dst` (in the height x width grid)
  // with `src`, and every polygon set added so far. On a device this
  // prepares the upload (pinned(); the host's share) and resolve() does the rest.
  void make(std::span<const Point3> dst, std::span<const Point3> src, std::span<const int> mirror,
            const Triangles& triangles) {
    if (device_.is_cpu()) {
      corr_ = mesh_correspondence(dst, src, mirror, triangles, h_, w_);
      fills_.resize(sets_.size());
      values_t_ = at::tensor(values_, at::kFloat);
      return;
    }
    // Read once: a per-face getenv is a lock and a scan of the environment.
    static const bool on_host = [] {
      const char* host = std::getenv("VISAGE_SWAP_HOST_RASTERS");
      return host && std::string(host) == "1";
    }();
    if (on_host) {
      make_on_host(dst, src, mirror, triangles);
    } else {
      prepare(dst, src, mirror, triangles);
    }
  }

  // What the device work is given: make()'s host buffer (pinned; undefined
  // where make() did everything), and the sizes that shape that work
  // besides the grid's.
  const at::Tensor& pinned() const { return host_; }
  std::string layout() const {
    return std::to_string(rows_) + "," + std::to_string(deposits_) + "," + std::to_string(candidates_) + "," +
           std::to_string(sets_.size()) + "," + std::to_string(values_.size());
  }
  // The device's share of make(), from pinned() as uploaded to the device.
  void resolve(const at::Tensor& all) {
    constexpr int64_t kg = TriangleTables::kGeometry, ks = TriangleTables::kSources;
    auto part = [&](int i) { return all.narrow(0, offsets_[i], offsets_[i + 1] - offsets_[i]); };
    corr_ = mesh_correspondence_aten(part(0).view({rows_, kg}), part(1).view({rows_, ks}), part(2).view(at::kInt),
                                     candidates_, h_, w_);
    const int64_t sets = static_cast<int64_t>(sets_.size());
    at::Tensor masks = detail::resolve_polygon_deposits(part(3).view(at::kInt), part(4), sets, h_, w_);
    fills_.clear();
    for (int64_t i = 0; i < sets; ++i) fills_.push_back(masks.select(0, i));
    values_t_ = part(5);
  }

  const Correspondence& correspondence() const { return corr_; }

  // The mask of add()'s polygons `id`, [H, W] float on the device. Callers
  // never write into it (it may be shared).
  const at::Tensor& fill(int id) {
    at::Tensor& t = fills_.at(static_cast<size_t>(id));
    if (!t.defined()) t = fill_polygons(h_, w_, sets_[static_cast<size_t>(id)], device_);
    return t;
  }
  // add_values()'s numbers, float [n] on the device.
  const at::Tensor& values() const { return values_t_; }

 private:
  void prepare(std::span<const Point3> dst, std::span<const Point3> src, std::span<const int> mirror,
               const Triangles& triangles) {
    TriangleTables tables = triangle_tables(dst, src, mirror, triangles, h_, w_);
    std::vector<int32_t> cells;
    std::vector<float> values;
    for (size_t i = 0; i < sets_.size(); ++i)
      detail::polygon_deposits(h_, w_, sets_[i], static_cast<int64_t>(i), cells, values);
    pad(tables, triangles.size() + 1, int64_t{h_} * w_, w_);
    const size_t deposits = static_cast<size_t>(padded(static_cast<int64_t>(cells.size())));
    cells.resize(deposits, 0), values.resize(deposits, 0.f);  // adding 0 to the first cell
    rows_ = tables.rows(), deposits_ = static_cast<int64_t>(cells.size()), candidates_ = tables.candidates;
    constexpr int64_t kg = TriangleTables::kGeometry, ks = TriangleTables::kSources;
    // One float buffer; the int32 parts travel as their bits.
    const int64_t sizes[6] = {rows_ * kg, rows_ * ks, rows_,
                              deposits_,  deposits_,  static_cast<int64_t>(values_.size())};
    for (int i = 0; i < 6; ++i) offsets_[i + 1] = offsets_[i] + sizes[i];
    host_ = at::empty({offsets_[6]}, at::TensorOptions().dtype(at::kFloat).pinned_memory(true));
    auto* p = reinterpret_cast<char*>(host_.data_ptr<float>());
    auto put = [&](int part, const void* data) {
      std::memcpy(p + offsets_[part] * sizeof(float), data, (offsets_[part + 1] - offsets_[part]) * sizeof(float));
    };
    put(0, tables.geometry.data());
    put(1, tables.sources.data());
    put(2, tables.first.data());
    put(3, cells.data());
    put(4, values.data());
    put(5, values_.data());
  }

  // The upload's sizes change with the face; a CUDA graph is made for one
  // layout: `n` rounded up to a step of at most an eighth of it.
  static int64_t padded(int64_t n) {
    int64_t top = 1;
    while (top * 2 <= n) top *= 2;
    const int64_t step = std::max<int64_t>(256, top / 8);
    return (n + step - 1) / step * step;
  }
  // `tables` with rows that cover no pixel up to `rows` (one per triangle and
  // one more), the last one owning the candidates added up to padded():
  // numbered along `width`-wide rows of the grid's first `pixels` pixels.
  static void pad(TriangleTables& tables, size_t rows, int64_t pixels, int width) {
    const int64_t extra = padded(tables.candidates) - tables.candidates;
    if (extra > pixels || tables.first.size() >= rows) return;
    float g[TriangleTables::kGeometry] = {0.f, 0.f, static_cast<float>(width)};
    g[11] = g[12] = g[13] = -1.f;  // every barycentric weight -1: never inside
    const float q[TriangleTables::kSources] = {};
    while (tables.first.size() < rows) {
      tables.geometry.insert(tables.geometry.end(), g, g + TriangleTables::kGeometry);
      tables.sources.insert(tables.sources.end(), q, q + TriangleTables::kSources);
      tables.first.push_back(static_cast<int32_t>(tables.candidates));
    }
    tables.candidates += extra;
  }

  void make_on_host(std::span<const Point3> dst, std::span<const Point3> src, std::span<const int> mirror,
                    const Triangles& triangles) {
    const int64_t plane = int64_t{h_} * w_, sets = static_cast<int64_t>(sets_.size());
    const int64_t n_values = static_cast<int64_t>(values_.size());
    const int64_t total = (7 + sets) * plane + n_values;
    at::Tensor host = at::empty({total}, at::TensorOptions().dtype(at::kFloat).pinned_memory(true));
    float* p = host.data_ptr<float>();
    mesh_correspondence_into(dst, src, mirror, triangles, h_, w_, p, p + plane, p + 4 * plane);
    for (size_t i = 0; i < sets_.size(); ++i)
      fill_polygons_into(p + 7 * plane + static_cast<int64_t>(i) * plane, h_, w_, sets_[i]);
    std::copy(values_.begin(), values_.end(), p + 7 * plane + sets * plane);
    at::Tensor all = host.to(device_, at::kFloat, /*non_blocking=*/true);
    corr_.covered = all.narrow(0, 0, plane).view({h_, w_});
    corr_.pairs = all.narrow(0, plane, 6 * plane).view({2, h_, w_, 3});
    corr_.direct = corr_.pairs.select(0, 0);
    corr_.mirrored = corr_.pairs.select(0, 1);
    for (size_t i = 0; i < sets_.size(); ++i)
      fills_.push_back(all.narrow(0, 7 * plane + static_cast<int64_t>(i) * plane, plane).view({h_, w_}));
    values_t_ = all.narrow(0, 7 * plane + sets * plane, n_values);
  }

  int h_, w_;
  at::Device device_;
  std::vector<std::vector<Polygon>> sets_;
  std::vector<float> values_;
  at::Tensor host_;  // prepare()'s upload
  int64_t offsets_[7] = {0, 0, 0, 0, 0, 0, 0};
  int64_t rows_ = 0, deposits_ = 0, candidates_ = 0;
  std::vector<at::Tensor> fills_;
  at::Tensor values_t_;
  Correspondence corr_;
};

// The target's pixels around the face, moved so that the face's outline goes
// from `from` to `to`: a displacement field interpolated from the outline
// vertices (Gaussian weights) that fades to zero away from them; `pinned`
// vertices (with their weights 0..1) hold the field at zero round them (a
// closed eye kept as the target's is not moved by the temples'). `roi` is
// uint8 [H, W, 3], a view into the frame: it is warped in place outside the
// box `compose` (x, y, w, h), and the box's warped pixels are returned
// (float [h, w, 3]; paste_face writes them back).
at::Tensor warp_outline(at::Tensor roi, std::span<const Point3> from, std::span<const Point3> to, float face_size,
                        const std::array<int, 4>& compose, const std::vector<std::pair<int, float>>& pinned) {
  auto box_of_roi = [&] {
    return roi.narrow(0, compose[1], compose[3]).narrow(1, compose[0], compose[2]).to(at::kFloat).contiguous();
  };
  const auto& topo = mesh_topology();
  const int64_t h = roi.size(0), w = roi.size(1);
  std::vector<float> control, shift;
  float largest = 0;
  for (int v : topo.outline) {
    control.push_back(to[v].x), control.push_back(to[v].y);
    float dx = to[v].x - from[v].x, dy = to[v].y - from[v].y;
    shift.push_back(dx), shift.push_back(dy);
    largest = std::max(largest, std::hypot(dx, dy));
  }
  if (largest < 0.25f) return box_of_roi();
  std::vector<float> weight(topo.outline.size(), 1.f);
  for (auto [v, w] : pinned) {
    control.push_back(to[v].x), control.push_back(to[v].y);
    shift.push_back(0.f), shift.push_back(0.f);
    weight.push_back(20.f * w);  // many outline vertices may lie about as near as the eye's own
  }
  const size_t n = weight.size();
  // The field is smooth (sigma of many pixels): evaluate it on a grid of
  // step x step cells (a few thousand points) and interpolate bilinearly in
  // the resampling pass. A Gaussian weight is the product of one along x and
  // one along y, so the grid needs n * (gh + gw) exponentials, not
  // n * gh * gw (as ATen calls on host tensors this took ~1 ms a face).
  const int64_t step = 8, gh = (h + step - 1) / step, gw = (w + step - 1) / step;
  const float sigma = 0.08f * face_size, k = -0.5f / (sigma * sigma);
  auto centre = [&](int64_t i) { return (static_cast<float>(i) + 0.5f) * static_cast<float>(step); };
  std::vector<float> along_x(n * gw), along_y(n * gh);
  for (size_t c = 0; c < n; ++c) {
    for (int64_t i = 0; i < gw; ++i) {
      const float d = centre(i) - control[2 * c];
      along_x[c * gw + i] = std::exp(k * d * d);
    }
    for (int64_t i = 0; i < gh; ++i) {
      const float d = centre(i) - control[2 * c + 1];
      along_y[c * gh + i] = weight[c] * std::exp(k * d * d);
    }
  }
  at::Tensor coarse = at::empty({gh, gw, 2}, at::kFloat);
  float* field = coarse.data_ptr<float>();
  std::vector<float> sum_x(gw), sum_y(gw), total(gw);
  for (int64_t y = 0; y < gh; ++y) {
    std::fill(sum_x.begin(), sum_x.end(), 0.f);
    std::fill(sum_y.begin(), sum_y.end(), 0.f);
    std::fill(total.begin(), total.end(), 0.f);
    for (size_t c = 0; c < n; ++c) {
      const float a = along_y[c * gh + y];
      const float ax = a * shift[2 * c], ay = a * shift[2 * c + 1];
      const float* ex = along_x.data() + c * gw;
      for (int64_t x = 0; x < gw; ++x) {
        sum_x[x] += ax * ex[x];
        sum_y[x] += ay * ex[x];
        total[x] += a * ex[x];
      }
    }
    // The constant in the denominator makes the field fade out beyond ~2 sigma.
    float* row = field + y * gw * 2;
    for (int64_t x = 0; x < gw; ++x) {
      const float denominator = total[x] + std::exp(-2.f);
      row[2 * x] = sum_x[x] / denominator;
      row[2 * x + 1] = sum_y[x] / denominator;
    }
  }
  return detail::warp_in_place(roi, coarse, step, compose[0], compose[1], compose[2], compose[3]);
}

// The working size of a compose box side (`start`, `size` in ROI pixels,
// `limit` the ROI's side) at `scale`, rounded up to a multiple of kWorkStep:
// the box grows to fit (to the right or down, then the other way) where the
// ROI has room; where it has not, the side as it is.
constexpr int kWorkStep = 16;
int working_size(int& start, int& size, int limit, float scale) {
  const int scaled = std::max(1, static_cast<int>(std::lround(size * scale)));
  const int want = (scaled + kWorkStep - 1) / kWorkStep * kWorkStep;
  const int full = scale < 1.f ? static_cast<int>(std::ceil(want / scale)) : want;
  if (full > limit) return scaled;
  const int after = std::min(full - size, limit - (start + size));
  start -= full - size - after;
  size = full;
  return want;
}

// 1 below the brows, fading to 0 towards the top of the mesh: the upper
// forehead stays the target's. Sources often have hair there (fringes,
// hairlines at different heights) that no skin model separates reliably
// from skin, and the target's hairline is what makes the head look intact.
// Its coefficients: t = (x + 0.5) a + (y + 0.5) b + c at pixel (x, y), for
// FaceRasters::add_values (they change with the face; the ramp's launches do not).
std::array<float, 3> forehead_ramp_coefficients(const FaceParts& parts) {
  const Point2 brows = parts.brows, top = parts.head_top;
  const float dx = brows.x - top.x, dy = brows.y - top.y, len2 = std::max(1e-3f, dx * dx + dy * dy);
  // 0 at 25%, 1 at 65% of the way down (15% and 50% let a fringe's lower
  // edge through as a brown band on sources like scikit-image's astronaut).
  const float a = dx / len2, b = dy / len2;
  return {a / 0.4f, b / 0.4f, (-top.x * a - top.y * b - 0.25f) / 0.4f};
}

// `coefficients` float [3] (forehead_ramp_coefficients) on the device.
at::Tensor forehead_ramp(const at::Tensor& coefficients, int h, int w) {
  auto opts = coefficients.options();
  at::Tensor ys = at::arange(h, opts).add_(0.5f).view({h, 1});
  at::Tensor xs = at::arange(w, opts).add_(0.5f).view({1, w});
  at::Tensor t = (xs * coefficients.select(0, 0) + ys * coefficients.select(0, 1) + coefficients.select(0, 2));
  return detail::smoothstep_unit(t.clamp_(0.f, 1.f));
}

// 1 where a source pixel above the brows may be forehead skin, 0 on hair.
// A fringe is often near enough to the skin's colour for the skin model to
// let it through, and a band of it reads as a brown stripe on the target's
// forehead. Above the brows a pixel also needs about the cheeks' lightness
// (hair is darker than the skin under it) and, going up a column from the
// brows, everything above the first hair is hair too (a fringe's lighter
// strands included).
at::Tensor forehead_skin(const at::Tensor& image, const at::Tensor& usable, const at::Tensor& skin_sample,
                         const FaceParts& parts) {
  at::Tensor lab = detail::rgb_to_lab(image.to(at::kCPU).contiguous());
  at::Tensor weight = skin_sample.to(at::kCPU).contiguous();
  at::Tensor l = lab.select(2, 0).contiguous();
  const double total = std::max(1e-6, weight.sum().item<double>());
  const double mean = (l * weight).sum().item<double>() / total;
  const double spread = std::sqrt(((l - mean).square() * weight).sum().item<double>() / total);
  const float darkest = static_cast<float>(mean - std::max(8.0, 2.0 * spread));
  at::Tensor ok_in = usable.to(at::kCPU).contiguous();
  const int64_t h = l.size(0), w = l.size(1);
  at::Tensor out = at::ones({h, w}, at::kFloat);
  const float* lp = l.data_ptr<float>();
  const float* up = ok_in.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const Point2 brows = parts.brows, top = parts.head_top;
  const float dx = top.x - brows.x, dy = top.y - brows.y, len2 = std::max(1e-3f, dx * dx + dy * dy);
  // Fraction of the way from the brows (0) to the mesh's top (1).
  auto up_from_brows = [&](int64_t x, int64_t y) {
    return ((x + 0.5f - brows.x) * dx + (y + 0.5f - brows.y) * dy) / len2;
  };
  constexpr float zone = 0.12f;  // the brows' own band ends about here
  for (int64_t x = 0; x < w; ++x) {
    int run = 0;
    bool hair = false;
    for (int64_t y = h - 1; y >= 0; --y) {
      if (up_from_brows(x, y) < zone) continue;
      const int64_t i = y * w + x;
      if (!hair) {
        const bool hair_like = lp[i] < darkest || up[i] < 0.5f;
        run = hair_like ? run + 1 : 0;
        hair = run >= 2;
        // The run's first pixel and one more below it are the hairline's
        // shadow on the skin: dark rows that, left usable, drew a line where
        // the source's forehead gives way to the target's.
        if (hair)
          for (int64_t k = 1; k <= 2 && y + k < h; ++k) op[i + k * w] = 0.f;
      }
      if (hair) op[i] = 0.f;
    }
  }
  return out.to(image.device());
}

// `layer` with its low frequencies pulled to the target's along the edge of
// `alpha`: the difference target - layer, measured where `weight` (skin of
// both) is high and spread by a Gaussian of `sigma`, is added in full at
// alpha's edge and fades out over about `reach` pixels inside. Lab statistics
// match the face's mean colour, not its shading: without this a lighter or
// differently lit source shows an oval seam and an edge where the forehead
// fades to the target's.
at::Tensor match_edges(const at::Tensor& layer, const at::Tensor& target, const at::Tensor& alpha,
                       const at::Tensor& weight, float sigma, float reach) {
  at::Tensor w = weight.unsqueeze(2);
  at::Tensor stacked = at::cat({(target - layer) * w, w}, 2).permute({2, 0, 1}).unsqueeze(0).contiguous();
  at::Tensor local = detail::gaussian_blur_nchw(stacked, sigma).squeeze(0);  // [4, H, W]
  at::Tensor support = local.narrow(0, 3, 1);
  at::Tensor diff = local.narrow(0, 0, 3) / support.clamp_min(1e-3f) * (support / 0.2f).clamp(0.f, 1.f);
  at::Tensor inside = blur_mask(alpha, 0.5f * reach);
  at::Tensor t = ((inside - 0.5f) / 0.45f).clamp(0.f, 1.f);
  at::Tensor edge = detail::one_minus(detail::smoothstep_unit(t));
  return at::addcmul(layer, diff.permute({1, 2, 0}), edge.unsqueeze(2));
}

}  // namespace

FaceSwapper::FaceSwapper(const SwapOptions& options) {
  SwapOptions o = options;
  if (o.shape_weight < 0.f || o.shape_weight > 1.f)
    throw Error(ErrorKind::bad_input, "face swapper shape weight must be within 0..1");
  if (!(o.compose_face_size >= 0.f) || (o.compose_face_size > 0.f && o.compose_face_size < 32.f))
    throw Error(ErrorKind::bad_input, "face swapper compose face size must be 0 (automatic) or at least 32 pixels");
  if (o.analyser.landmarker == FaceLandmarkerModel::none)
    throw Error(ErrorKind::bad_input, "the mesh swapper needs a face landmarker (mesh or mesh_attention)");
  o.analyser.embeddings = true;
  std::optional<FaceEnhancer> enhancer;
  if (o.enhancer.enabled) enhancer.emplace(o.enhancer, o.analyser.runtime);
  impl_ = std::make_unique<Impl>(o, FaceAnalyser(o.analyser), std::move(enhancer));
}
FaceSwapper::FaceSwapper(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FaceSwapper::~FaceSwapper() = default;
FaceSwapper::FaceSwapper(FaceSwapper&&) noexcept = default;
FaceSwapper& FaceSwapper::operator=(FaceSwapper&&) noexcept = default;
FaceSwapper FaceSwapper::clone() const {
  std::optional<FaceEnhancer> enhancer;
  if (impl_->enhancer) enhancer.emplace(impl_->enhancer->clone());
  return FaceSwapper(std::make_unique<Impl>(impl_->options, impl_->analyser.clone(), std::move(enhancer)));
}
const SwapOptions& FaceSwapper::options() const { return impl_->options; }
FaceAnalyser& FaceSwapper::analyser() { return impl_->analyser; }
size_t FaceSwapper::faces_swapped() const { return impl_->swapped; }

SourceFace FaceSwapper::prepare_source(const std::vector<at::Tensor>& images) const {
  if (images.empty()) throw Error(ErrorKind::bad_input, "no source image given");
  c10::InferenceMode inference_mode;
  // A const analyser call would need its own sessions: a clone shares the models.
  FaceAnalyser analyser = impl_->analyser.clone();
  const auto& topo = mesh_topology();
  at::Device device = device_of(impl_->options);
  SourceFace source;
  auto data = std::make_shared<SourceFace::Data>();
  std::vector<std::vector<Point3>> shapes;
  std::vector<float> embedding_sum;
  float best_front = -2.f;
  for (size_t i = 0; i < images.size(); ++i) {
    std::vector<Face> faces = analyser.analyse(images[i]);
    auto largest = std::max_element(faces.begin(), faces.end(),
                                    [](const Face& a, const Face& b) { return a.box.area() < b.box.area(); });
    if (largest == faces.end() || largest->mesh.size() < mesh_vertices)
      throw Error(ErrorKind::bad_input, "source image " + std::to_string(i) + ": no face found");
    const Face& face = *largest;
    if (embedding_sum.empty()) embedding_sum.assign(face.embedding.size(), 0.f);
    for (size_t k = 0; k < face.embedding.size() && k < embedding_sum.size(); ++k)
      embedding_sum[k] += face.embedding[k];
    shapes.push_back(canonical_shape(face.mesh));

    float front = frontalness(face.mesh);
    if (front <= best_front) continue;
    best_front = front;
    // The texture: the face's region at up to max_texture_side pixels.
    Roi roi = roi_around(face.mesh, face.mesh, images[i].size(1), images[i].size(0), 0.15f);
    float scale = std::min(1.f, static_cast<float>(max_texture_side) / std::max(roi.width, roi.height));
    int tw = std::max(1, static_cast<int>(std::lround(roi.width * scale)));
    int th = std::max(1, static_cast<int>(std::lround(roi.height * scale)));
    Affine texture_to_image = {1.0 / scale, 0,           static_cast<double>(roi.x0),
                               0,           1.0 / scale, static_cast<double>(roi.y0)};
    at::Tensor rgb = face::warp_to_input(images[i].to(device), texture_to_image, th, tw, 1.f, 0.f);  // [1, th, tw, 3]
    std::vector<Point3> mesh;
    for (int v = 0; v < mesh_vertices; ++v)
      mesh.push_back({(face.mesh[v].x - roi.x0) * scale, (face.mesh[v].y - roi.y0) * scale, face.mesh[v].z * scale});
    at::Tensor depth = depth_map(mesh, topo.triangles, th, tw, 1e6f).to(device);
    // Usable skin: inside the face, not an occluder (hair, hand, microphone);
    // eyes, brows and lips are not skin-coloured but are the face's own.
    FaceParts parts = face_parts(mesh);
    at::Tensor image = rgb.squeeze(0).contiguous();
    at::Tensor hull = fill_polygons(th, tw, {parts.hull}, device);
    at::Tensor features = fill_polygons(th, tw, parts.features(/*with_mouth=*/false), device);
    at::Tensor skin_sample =
        at::clamp_min(fill_polygons(th, tw, {parts.cheeks}, device) - blur_mask(features, 0.04f * tw) * 4.f, 0.f);
    // The source's mouth interior (teeth, tongue) is never used: on a target
    // with a closed mouth it would be squeezed into a white line between the
    // lips; those pixels fall back to the target's own.
    // Near the outline the features' polygons (a brow's outer end above all)
    // reach into the hair at the temples: there the skin model decides.
    at::Tensor inner = feather_mask(hull, 0.06f * std::max(tw, th));
    const Box mesh_box = face::bounding_box(flat(mesh));
    at::Tensor usable =
        with_inner_shadows(at::maximum(skin_visibility_mask(image, hull, skin_sample), features * inner), hull,
                           std::max(mesh_box.width, mesh_box.height)) *
        (1.f - fill_polygons(th, tw, {parts.mouth}, device));
    usable = usable * blur_mask(forehead_skin(image, usable, skin_sample, parts), 1.f);
    // How squarely each texel faced the camera: see `sample` in swap().
    at::Tensor facing = blur_mask(facing_map(mesh, topo.triangles, th, tw), 1.5f).to(device);
    data->texture = at::cat({image.permute({2, 0, 1}), usable.unsqueeze(0), depth.unsqueeze(0), facing.unsqueeze(0)}, 0)
                        .unsqueeze(0)
                        .contiguous();
    data->mesh = std::move(mesh);
    data->depth_tolerance = 0.04f * std::max(tw, th);
    data->face_size = std::max({mesh_box.width, mesh_box.height, 1.f});
    data->turned = front < kTurnedBelow;
  }
  data->shape = mean_shape(shapes);
  float norm = 0;
  for (float v : embedding_sum) norm += v * v;
  norm = std::sqrt(std::max(norm, 1e-12f));
  for (float& v : embedding_sum) v /= norm;
  source.embedding = std::move(embedding_sum);
  source.data = std::move(data);
  return source;
}

at::Tensor FaceSwapper::swap(const at::Tensor& target, const SourceFace& source, const FaceSelector& selector) {
  FaceAnalyser& analyser = impl_->analyser;
  std::vector<Face> faces = analyser.detect(target);
  analyser.landmark(target, faces);
  bool needs_description =
      selector.mode == FaceSelectorMode::reference || selector.gender || selector.age_min || selector.age_max;
  if (needs_description) analyser.describe(target, faces);
  std::vector<SwapAssignment> assignments;
  for (Face& f : select_faces(std::move(faces), selector)) assignments.push_back({std::move(f), &source});
  return swap(target, assignments);
}

at::Tensor FaceSwapper::swap(const at::Tensor& target_in, const std::vector<SwapAssignment>& assignments) {
  face::check_rgb(target_in);
  // No autograd bookkeeping for the compositing's ~900 ATen calls a face
  // (version counters, views' autograd metadata): on a device the host's
  // time to issue them is what a swap costs.
  c10::InferenceMode inference_mode;
  const SwapOptions& options = impl_->options;
  const auto& topo = mesh_topology();
  at::Device device = device_of(options);
  // A host frame composed on a device: only each face's region travels, up
  // before and down after (one wait per face), not the whole frame both
  // ways. The face enhancer works on the frame on the device.
  const bool regions_only = !device.is_cpu() && target_in.is_cpu() && !impl_->enhancer;
  std::optional<StageScope> frame_stage(std::in_place, "swap.frame_in");
  at::Tensor out =
      regions_only ? target_in.clone(at::MemoryFormat::Contiguous) : target_in.to(device).contiguous().clone();
  frame_stage.reset();
  impl_->swapped = 0;
  std::vector<Face> swapped_faces;  // with their new meshes, for the enhancer
  for (const SwapAssignment& job : assignments) {
    if (!job.source || !job.source->data) throw Error(ErrorKind::bad_input, "swap assignment without a source face");
    if (job.target.mesh.size() < mesh_vertices) continue;  // a detection without landmarks cannot be swapped
    const SourceFace::Data& src = *job.source->data;
    std::span<const Point3> old_mesh(job.target.mesh.data(), mesh_vertices);
    StageScope stage("swap.shape");

    // 1. Shape: the target mesh moved towards the source's shape, in the
    // target's expression (jaw opening, lips, eyes).
    std::vector<Point3> new_mesh = transfer_shape(src.shape, old_mesh, options.shape_weight);
    // Closed target eyes stay the target's: by the attention mesh's lid gap
    // when the face has it, else (other landmarkers) only with the occlusion
    // mask, by colour. A kept eye also stays where it is: neither the shape
    // nor the outline warp moves it, so its pixels are the target's own.
    const std::array<float, 2> closed_eyes =
        options.keep_closed_eyes ? closed_eye_weights(job.target) : std::array<float, 2>{0.f, 0.f};
    std::vector<std::pair<int, float>> pinned;
    for (int e = 0; e < 2; ++e) {
      if (closed_eyes[e] <= 0.f) continue;
      for (int v : e == 0 ? topo.left_eye : topo.right_eye) {
        Point3& p = new_mesh[v];
        const Point3 o = old_mesh[v];
        p = {p.x + (o.x - p.x) * closed_eyes[e], p.y + (o.y - p.y) * closed_eyes[e],
             p.z + (o.z - p.z) * closed_eyes[e]};
        pinned.emplace_back(v, closed_eyes[e]);
      }
    }

    stage.next("swap.outline");
    Roi roi = roi_around(old_mesh, new_mesh, out.size(1), out.size(0), 0.3f);
    Box face_box = face::bounding_box(flat(new_mesh));
    float face_size = std::max(face_box.width, face_box.height);
    std::vector<Point3> old_local = shifted(old_mesh, -roi.x0, -roi.y0);
    std::vector<Point3> new_local = shifted(new_mesh, -roi.x0, -roi.y0);
    const at::Tensor frame_roi = out.narrow(0, roi.y0, roi.height).narrow(1, roi.x0, roi.width);  // uint8 view
    at::Tensor roi_pixels = frame_roi;
    if (regions_only) {
      // Through pinned memory without waiting (the caching host allocator
      // keeps the buffer until the copy is done).
      at::Tensor staged = at::empty(frame_roi.sizes(), frame_roi.options().pinned_memory(true));
      roi_pixels = staged.copy_(frame_roi).to(device, at::kByte, /*non_blocking=*/true);
    }

    // Every mask below is zero beyond the two meshes' box: after the outline
    // warp everything works in that box (the "compose box"), with a margin
    // for the blurs and the feathering's outside pixels, not in the whole ROI
    // (which the outline warp needs: ~2.5 times the area).
    std::vector<Point2> both = flat(old_local);
    for (auto p : flat(new_local)) both.push_back(p);
    const Box meshes_box = face::bounding_box(both);
    const float margin = 0.08f * face_size + 2.f;
    int cx0 = std::clamp(static_cast<int>(std::floor(meshes_box.x - margin)), 0, roi.width - 1);
    int cy0 = std::clamp(static_cast<int>(std::floor(meshes_box.y - margin)), 0, roi.height - 1);
    int cw =
        std::clamp(static_cast<int>(std::ceil(meshes_box.x + meshes_box.width + margin)), cx0 + 1, roi.width) - cx0;
    int ch =
        std::clamp(static_cast<int>(std::ceil(meshes_box.y + meshes_box.height + margin)), cy0 + 1, roi.height) - cy0;
    const float work_scale = std::min(1.f, compose_size_for(options, src.face_size) / face_size);
    // The working size (the compose box at the working scale) in steps of
    // kWorkStep pixels, the box grown to fit within the ROI: a CUDA graph of
    // the compositing is made for one size, and a video's face then keeps it
    // from frame to frame (compose_graph.hpp).
    const int h = working_size(cy0, ch, roi.height, work_scale);
    const int w = working_size(cx0, cw, roi.width, work_scale);
    // 2. Outline: the surroundings follow the face's new outline (written
    // into the frame outside the compose box; the box's pixels come back).
    const at::Tensor bg_box =
        options.shape_weight > 0 ? warp_outline(roi_pixels, old_local, new_local, face_size, {cx0, cy0, cw, ch}, pinned)
                                 : roi_pixels.narrow(0, cy0, ch).narrow(1, cx0, cw).to(at::kFloat).contiguous();
    for (auto* mesh : {&new_local, &old_local})
      for (auto& p : *mesh) p.x -= cx0, p.y -= cy0;
    at::Tensor bg_small = bg_box;
    Box box_local{face_box.x - roi.x0 - cx0, face_box.y - roi.y0 - cy0, face_box.width, face_box.height};
    // The multi-band blend's bands are sized after the ROI's short side (at the working scale).
    const int blend_levels =
        detail::multiband_levels(std::lround(roi.height * work_scale), std::lround(roi.width * work_scale));
    if (work_scale < 1.f) {
      bg_small = at::_upsample_bilinear2d_aa(bg_box.permute({2, 0, 1}).unsqueeze(0), {h, w}, false)
                     .squeeze(0)
                     .permute({1, 2, 0})
                     .contiguous();
      for (auto* mesh : {&new_local, &old_local})
        for (auto& p : *mesh) p.x *= work_scale, p.y *= work_scale, p.z *= work_scale;
      box_local = {box_local.x * work_scale, box_local.y * work_scale, box_local.width * work_scale,
                   box_local.height * work_scale};
      // Exactly: a CUDA graph of the compositing is made for a face size (compose_graph.hpp).
      face_size = compose_size_for(options, src.face_size);
    }

    stage.next("swap.rasters");
    // 3. Texture from the source, direct or mirrored, whichever is usable,
    // looked up over the whole working area (not the mesh's box: its size
    // changes from frame to frame).
    // The masks of step 4 are polygons of both meshes: registered here, so
    // that on a device they travel with the correspondence in one upload.
    FaceParts parts = face_parts(new_local);
    FaceParts old_parts = face_parts(old_local);
    FaceRasters rasters(h, w, device);
    std::vector<Polygon> excluded;
    std::vector<Polygon> selected;
    auto wants = [&](FaceMaskRegion r) {
      return std::find(options.mask.regions.begin(), options.mask.regions.end(), r) != options.mask.regions.end();
    };
    const std::pair<FaceMaskRegion, const Polygon*> features[] = {{FaceMaskRegion::left_eyebrow, &parts.left_brow},
                                                                  {FaceMaskRegion::right_eyebrow, &parts.right_brow},
                                                                  {FaceMaskRegion::left_eye, &parts.left_eye},
                                                                  {FaceMaskRegion::right_eye, &parts.right_eye},
                                                                  {FaceMaskRegion::nose, &parts.nose},
                                                                  {FaceMaskRegion::upper_lip, &parts.upper_lip},
                                                                  {FaceMaskRegion::lower_lip, &parts.lower_lip},
                                                                  {FaceMaskRegion::mouth, &parts.mouth}};
    for (const auto& [region, polygon] : features) (wants(region) ? selected : excluded).push_back(*polygon);
    if (options.keep_mouth_interior && wants(FaceMaskRegion::mouth)) excluded.push_back(parts.mouth);
    const int hull_id = rasters.add({parts.hull});
    const int features_id = rasters.add(parts.features(/*with_mouth=*/true));
    const int old_features_id = rasters.add(old_parts.features(/*with_mouth=*/true));
    const int mouth_id = rasters.add({parts.mouth});
    int region_id = -1, excluded_id = -1, box_id = -1;
    if (options.mask.region) {
      region_id = wants(FaceMaskRegion::skin) ? hull_id : rasters.add(selected);
      if (!excluded.empty() && wants(FaceMaskRegion::skin)) excluded_id = rasters.add(excluded);
    }
    if (options.mask.box) {
      const auto& pad = options.mask.padding;  // percent: top, right, bottom, left
      float bx0 = box_local.x - pad[3] / 100.f * box_local.width;
      float bx1 = box_local.x + box_local.width * (1 + pad[1] / 100.f);
      float by0 = box_local.y - pad[0] / 100.f * box_local.height;
      float by1 = box_local.y + box_local.height * (1 + pad[2] / 100.f);
      box_id = rasters.add({Polygon{{bx0, by0}, {bx1, by0}, {bx1, by1}, {bx0, by1}}});
    }
    int old_hull_id = -1, old_cheeks_id = -1, own_features_id = -1, old_mouth_id = -1;
    int eye_ids[2] = {-1, -1}, grown_eye_ids[2] = {-1, -1};
    const bool eyes_by_colour = options.keep_closed_eyes && options.mask.occlusion && !job.target.eye_openness;
    const Polygon* old_eyes[2] = {&old_parts.left_eye, &old_parts.right_eye};
    const Polygon* new_eyes[2] = {&parts.left_eye, &parts.right_eye};
    for (int e = 0; e < 2; ++e) {
      // The target's eye where its mesh put it, and where the new mesh put
      // it (moved with the face's shape): both are the target's there.
      if (closed_eyes[e] > 0.f || eyes_by_colour)
        grown_eye_ids[e] = rasters.add({grown_eye(*old_eyes[e]), grown_eye(*new_eyes[e])});
    }
    if (options.mask.occlusion) {
      old_hull_id = rasters.add({old_parts.hull});
      old_cheeks_id = rasters.add({old_parts.cheeks});
      for (int e = 0; e < 2; ++e) eye_ids[e] = rasters.add({*old_eyes[e]});
      // The target's own features are where its mesh put them (the outline
      // warp moves them little), the new mesh's close by: neither is an occluder.
      std::vector<Polygon> own_features = old_parts.features(/*with_mouth=*/true);
      for (const auto& p : parts.features(/*with_mouth=*/true)) own_features.push_back(p);
      own_features.push_back(old_parts.nostrils);
      own_features.push_back(parts.nostrils);
      own_features_id = rasters.add(std::move(own_features));
      old_mouth_id = rasters.add({old_parts.mouth, old_parts.upper_lip, old_parts.lower_lip});
    }
    const std::array<float, 3> ramp = forehead_ramp_coefficients(parts);
    const int ramp_id = rasters.add_values({ramp[0], ramp[1], ramp[2]});
    rasters.make(new_local, src.mesh, topo.mirror, topo.triangles);

    // 3.-4. on the device (or the CPU): from the background at the working
    // size and, on a device, the rasters' upload, to the blended face and
    // the mask it is pasted with. Every number it uses that changes from
    // face to face comes in these two tensors, or is part of the graph's key
    // below (compose_graph.hpp).
    auto compose = [&](const at::Tensor& bg_hwc, const at::Tensor& uploaded) -> std::vector<at::Tensor> {
      if (uploaded.defined()) rasters.resolve(uploaded);
      stage.next("swap.texture");
      const Correspondence& corr = rasters.correspondence();
      const int tex_w = static_cast<int>(src.texture.size(3)), tex_h = static_cast<int>(src.texture.size(2));
      // The direct (0) and mirrored (1) points looked up together: [2, H, W, 6].
      const at::Tensor points = corr.pairs.defined() ? corr.pairs : at::stack({corr.direct, corr.mirrored});
      const at::Tensor samples =
          at::grid_sampler(src.texture, sampling_grid(points.view({1, 2 * h, w, 3}), tex_w, tex_h), 0, 1, false)
              .view({6, 2, h, w})
              .permute({1, 2, 3, 0})
              .contiguous();
      // usable x (the point is the nearest surface there: not hidden behind the nose or turned away)
      at::Tensor hidden = (points.select(3, 2) - samples.select(3, 4)) / src.depth_tolerance;
      at::Tensor ok = samples.select(3, 3) * (1.f - hidden).clamp(0.f, 1.f);
      // Texture seen at a grazing angle (the far cheek and temple of a turned
      // head) is stretched and mixed with the hair and background behind the
      // silhouette: usable from 84 degrees, fully from 66.
      at::Tensor grazing = ((samples.select(3, 5) - 0.1f) / 0.3f).clamp(0.f, 1.f);
      ok = ok * detail::smoothstep_unit(grazing);
      at::Tensor direct_rgb = samples.select(0, 0).narrow(2, 0, 3), mirror_rgb = samples.select(0, 1).narrow(2, 0, 3);
      at::Tensor direct_ok = ok.select(0, 0), mirror_ok = ok.select(0, 1);
      at::Tensor direct_facing = samples.select(0, 0).select(2, 5), mirror_facing = samples.select(0, 1).select(2, 5);
      // Direct or mirrored, relit to one smooth shading, narrow holes filled,
      // the midline's penumbra lifted (source_fill.hpp; `apart` in source face sizes).
      const at::Tensor& covered = corr.covered;
      // Only a turned source's sides meet in its penumbra (no work for a frontal one).
      at::Tensor apart;
      if (src.turned) {
        apart = (points.select(0, 0).narrow(2, 0, 2) - points.select(0, 1).narrow(2, 0, 2)).norm(2, 2);
        apart.mul_(1.f / src.face_size);
      }
      const MixedTexture mixed = mix_sides({direct_rgb, direct_ok, direct_facing},
                                           {mirror_rgb, mirror_ok, mirror_facing}, covered, apart, face_size);
      const at::Tensor& texture = mixed.rgb;
      const at::Tensor own = mixed.weight.unsqueeze(2);
      at::Tensor layer = at::lerp(bg_hwc, texture, own);

      // 4. Masks, colour, blend.
      stage.next("swap.masks");
      at::Tensor hull = rasters.fill(hull_id);
      // The fills lie within 0..1: the first mask taken needs no minimum with 1.
      at::Tensor mask = covered;
      if (options.mask.region) {
        at::Tensor region = rasters.fill(region_id);
        if (excluded_id >= 0) region = at::clamp_min(region - rasters.fill(excluded_id), 0.f);
        mask = at::minimum(mask, region);
      }
      if (options.mask.box) mask = at::minimum(mask, rasters.fill(box_id));
      mask = mask * forehead_ramp(rasters.values().narrow(0, ramp_id, 3), h, w);
      for (int e = 0; e < 2; ++e) {
        if (closed_eyes[e] <= 0.f) continue;
        // The whole grown eye stays, fading out over ~6% of the face around
        // it: the target's lid and the source's skin around it differ in
        // texture, and a hard oval reads as a patch.
        at::Tensor keep = at::clamp_max(blur_mask(rasters.fill(grown_eye_ids[e]), 0.03f * face_size) * 2.f, 1.f);
        mask = mask * detail::one_minus(keep * closed_eyes[e]);
      }
      if (eyes_by_colour) {
        // Without the attention mesh's lid gap (another landmarker), and only
        // with the occlusion mask: the mesh's lids do not follow a blink or a
        // wink closely (a closed eye still reads as about half open), but an
        // open eye shows white and iris, far from the skin's colour, and a
        // closed one shows lid skin. Weaker: it misses some closed pairs and
        // takes some sunglasses lenses (not skin, not dark enough) for lids.
        at::Tensor target_skin;  // 1 where the target's ROI has the colour of its cheeks
        {
          at::Tensor not_skin_sample = rasters.fill(old_features_id);
          at::Tensor sample =
              at::clamp_min(rasters.fill(old_cheeks_id) - blur_mask(not_skin_sample, 0.04f * face_size) * 4.f, 0.f);
          target_skin = skin_visibility_mask(bg_hwc, rasters.fill(old_hull_id), sample);
        }
        at::Tensor luminance = bg_hwc.mean(2);
        at::Tensor cheeks = rasters.fill(old_cheeks_id);
        // All the sums the decisions need, read back in one copy (one wait
        // for the stream instead of eight).
        std::vector<at::Tensor> sums = {(luminance * cheeks).sum(), cheeks.sum()};
        for (int e = 0; e < 2; ++e) {
          const at::Tensor& inside = rasters.fill(eye_ids[e]);
          sums.push_back(inside.sum());
          sums.push_back((detail::one_minus(target_skin) * inside).sum());
          sums.push_back((luminance * inside).sum());
        }
        const at::Tensor host_sums = at::stack(sums).to(at::kCPU);
        const float* sum = host_sums.data_ptr<float>();
        const float cheek_luminance = sum[0] / std::max(1.f, sum[1]);
        for (int e = 0; e < 2; ++e) {
          const float* eye_sums = sum + 2 + 3 * e;
          const float area = eye_sums[0];
          if (area < 4.f) continue;
          const float open = eye_sums[1] / area;
          // Sunglasses are not skin-coloured either, but far darker than a lid.
          const float eye_luminance = eye_sums[2] / area;
          if (open >= kClosedEyeBelow || eye_luminance < 0.6f * cheek_luminance) continue;
          mask = mask * detail::one_minus(rasters.fill(grown_eye_ids[e]));
        }
      }
      at::Tensor feathered = feather_mask(mask, std::max(1.f, options.mask.blur * 0.25f * face_size));
      // Where the source had nothing usable over a wider area (hair cut off a
      // forehead, a hand, the far side of a turned head without a mirror
      // partner) the layer holds the target's own pixels, with a step in colour
      // at the change: the blend mask falls to 0 before such an area's edge, so
      // the step is not shown (source_fill.hpp).
      const at::Tensor fade = unusable_fade(covered, own.squeeze(2), face_size);
      feathered = feathered * fade;
      // What the colour steps measure and the blend shows of the source: not
      // the shadowed rows before such an area either (source_fill.hpp).
      const at::Tensor share = source_share(own.squeeze(2), fade);
      at::Tensor features_mask = rasters.fill(features_id);
      if (options.mask.occlusion) {
        at::Tensor not_occluder = rasters.fill(own_features_id);
        not_occluder = at::clamp_max(blur_mask(not_occluder, 0.01f * face_size) * 2.f, 1.f);
        at::Tensor region = at::maximum(hull, rasters.fill(old_hull_id));
        at::Tensor skin_sample =
            at::clamp_min(rasters.fill(old_cheeks_id) - blur_mask(not_occluder, 0.04f * face_size) * 4.f, 0.f);
        at::Tensor occluded = detail::one_minus(skin_visibility_mask(bg_hwc, region, skin_sample));
        // Occluders reach in from outside the face (hair, fingers, a
        // microphone) or out of the mouth (a tongue): seeds are the band along
        // the outline and the mouth with the lips; dark spots inside the face
        // that touch neither stay the source's.
        at::Tensor inner = feather_mask(region, 0.08f * face_size);
        at::Tensor seeds = at::maximum((inner < 0.5f).to(at::kFloat), rasters.fill(old_mouth_id));
        at::Tensor candidate = occluded * detail::one_minus(not_occluder);
        at::Tensor reach = connected_to(candidate, seeds, 0.5f);
        reach = at::clamp_max(blur_mask(reach, 2.f) * 3.f, 1.f);
        feathered = feathered * detail::one_minus(candidate * reach);
      }
      stage.next("swap.colour");
      if (options.colour != ColourTransfer::none) {
        at::Tensor skin = at::clamp_min(hull * share - features_mask, 0.f);
        layer = transfer_colour(layer, bg_hwc, skin, options.colour);
      }
      stage.next("swap.edges");
      // The skin of both faces where the layer holds the source.
      const at::Tensor both_skin = at::clamp_min(hull * share - features_mask - rasters.fill(old_features_id), 0.f);
      {
        // Measured on the skin of both faces; the mouth is no edge (the
        // target's own mouth interior lies inside the face).
        at::Tensor outer = at::maximum(feathered, rasters.fill(mouth_id));
        layer = match_edges(layer, bg_hwc, outer, both_skin, 0.05f * face_size, 0.2f * face_size);
      }
      // Inside the face, where the source had nothing usable (or only its
      // shadowed rows before such an area) the layer holds the target's own
      // pixels: the colour steps above were measured for the source's and
      // would only shift those (the multi-band blend's coarse levels then
      // carried a light band past the end of a forehead).
      {
        at::Tensor target_own = (covered * detail::one_minus(share)).unsqueeze(2);
        layer = layer + (bg_hwc - layer) * target_own;
      }
      // Fine detail the source does not have: a source photo's face may be
      // far smaller than the target's (a full-length photo: ~80 px), and its
      // texture, enlarged, read as a blurred patch on a sharp target. On the
      // skin (not the features of either face, whose edges would show twice)
      // the target's own detail finer than the source's resolution is kept:
      // skin texture and grain, not identity. Below the compose size it is
      // added to the layer here; above it the paste brings the frame's detail
      // back where the mask it is given is below 1 (paste_face).
      at::Tensor paste_mask = feathered;
      {
        const float coarser = face_size / src.face_size;
        // Only where the layer holds the source: elsewhere it holds the
        // target's pixels, detail and all. At most 0.95: paste_face writes the
        // frame itself where its mask is 0 (the blend left the background
        // there), not the face's.
        at::Tensor keep = blur_mask(both_skin, 0.02f * face_size) * 0.95f;
        if (coarser > 1.25f) {
          // An image enlarged c times holds about what a Gaussian of c/2 leaves.
          at::Tensor smooth =
              detail::gaussian_blur_nchw(bg_hwc.permute({2, 0, 1}).unsqueeze(0).contiguous(), 0.5f * coarser)
                  .squeeze(0)
                  .permute({1, 2, 0});
          layer = at::addcmul(layer, bg_hwc - smooth, (keep * feathered).unsqueeze(2));
        }
        paste_mask = feathered * detail::one_minus(keep);
      }
      stage.next("swap.blend");
      at::Tensor blended = options.blend == BlendMode::multiband
                               ? blend_multiband(layer, bg_hwc, feathered, blend_levels)
                               : blend(layer, bg_hwc, feathered, options.blend);
      return {blended, paste_mask};
    };
    // As a CUDA graph where its work is all on the device (the occlusion
    // mask and the eyes' colour test read sums back; the relighting and the
    // Poisson blend too).
    const bool graphable = !device.is_cpu() && rasters.pinned().defined() && !eyes_by_colour &&
                           !options.mask.occlusion &&
                           (options.colour == ColourTransfer::none || options.colour == ColourTransfer::lab) &&
                           options.blend != BlendMode::poisson;
    std::optional<std::vector<at::Tensor>> composed;
    if (graphable) {
      char key[256];
      std::snprintf(key, sizeof key, "%p %dx%d %a %d %a,%a ", static_cast<const void*>(&src), h, w, face_size,
                    blend_levels, closed_eyes[0], closed_eyes[1]);
      composed = impl_->graphs.run(
          key + rasters.layout(), {bg_small, rasters.pinned()},
          [&](const std::vector<at::Tensor>& in) { return compose(in[0], in[1]); }, job.source->data);
    }
    if (!composed) {
      composed =
          compose(bg_small, rasters.pinned().defined() ? rasters.pinned().to(device, at::kFloat, /*non_blocking=*/true)
                                                       : at::Tensor());
    }
    const at::Tensor& blended = (*composed)[0];
    const at::Tensor& paste_mask = (*composed)[1];
    // Into the frame's compose box at full resolution: scaled up, with the
    // target's own fine detail where the mask is below 1.
    stage.next("swap.paste");
    detail::paste_face(roi_pixels.narrow(0, cy0, ch).narrow(1, cx0, cw), bg_box, 0, 0, cw, ch, blended, bg_small,
                       paste_mask);
    if (regions_only) frame_roi.copy_(roi_pixels);
    ++impl_->swapped;
    if (impl_->enhancer) {
      Face f = job.target;
      std::copy(new_mesh.begin(), new_mesh.end(), f.mesh.begin());
      f.landmarks_5 = face::mesh_landmarks_5(f.mesh);
      swapped_faces.push_back(std::move(f));
    }
  }
  // Only the swapped faces' regions are enhanced, never the whole frame.
  if (impl_->enhancer && !swapped_faces.empty()) out = impl_->enhancer->enhance_faces(out, swapped_faces);
  frame_stage.emplace("swap.frame_out");
  return target_in.is_cpu() ? out.to(at::kCPU) : out;
}

FaceMaskRegion parse_face_mask_region(const std::string& text) {
  static const std::pair<const char*, FaceMaskRegion> names[] = {{"skin", FaceMaskRegion::skin},
                                                                 {"left-eyebrow", FaceMaskRegion::left_eyebrow},
                                                                 {"right-eyebrow", FaceMaskRegion::right_eyebrow},
                                                                 {"left-eye", FaceMaskRegion::left_eye},
                                                                 {"right-eye", FaceMaskRegion::right_eye},
                                                                 {"nose", FaceMaskRegion::nose},
                                                                 {"mouth", FaceMaskRegion::mouth},
                                                                 {"upper-lip", FaceMaskRegion::upper_lip},
                                                                 {"lower-lip", FaceMaskRegion::lower_lip}};
  for (const auto& [name, value] : names)
    if (text == name) return value;
  throw Error(ErrorKind::bad_input, "unknown face mask region '" + text +
                                        "' (skin, left-eyebrow, right-eyebrow, left-eye, right-eye, nose, mouth, "
                                        "upper-lip, lower-lip)");
}

ColourTransfer parse_colour_transfer(const std::string& text) {
  if (text == "none") return ColourTransfer::none;
  if (text == "lab") return ColourTransfer::lab;
  if (text == "relight") return ColourTransfer::relight;
  if (text == "lab-relight") return ColourTransfer::lab_relight;
  throw Error(ErrorKind::bad_input, "unknown colour transfer '" + text + "' (none, lab, relight, lab-relight)");
}

BlendMode parse_blend_mode(const std::string& text) {
  if (text == "feather") return BlendMode::feather;
  if (text == "poisson") return BlendMode::poisson;
  if (text == "multiband") return BlendMode::multiband;
  throw Error(ErrorKind::bad_input, "unknown blend mode '" + text + "' (feather, poisson, multiband)");
}

}  // namespace visage
