// FrameEnhancer: the whole image through ESRGAN, tile by tile.
//
// Tiles overlap; in each overlap the two tiles are cross-faded with a linear
// ramp over its middle half, so the quarter nearest each tile's edge (where
// the network's zero padding changes its output) is taken from the
// neighbour. Weights are separable and normalised per axis, so any number of
// overlapping tiles sums to exactly one. Output rows are finished one row of
// tiles at a time: the float accumulator holds one row of tiles, not the image.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "enhance/models.hpp"
#include "face/warp.hpp"

namespace visage {

namespace {

struct Tile {
  int64_t start = 0;
  at::Tensor weights;  // [length * scale] float, normalised over all tiles of the axis
};

// Tiles along one axis of `size` pixels: as few as cover it with overlaps of
// at least `overlap`, spread evenly, each `tile` long (or the whole axis).
std::vector<Tile> layout_axis(int64_t size, int64_t tile, int64_t overlap, int scale, at::Device device) {
  const int64_t length = std::min(size, tile);
  std::vector<int64_t> starts;
  if (size <= tile) {
    starts = {0};
  } else {
    int64_t n = (size - overlap + (tile - overlap) - 1) / (tile - overlap);
    n = std::max<int64_t>(n, 2);
    for (int64_t i = 0; i < n; ++i) starts.push_back(i * (size - tile) / (n - 1));
  }
  const int64_t out_length = length * scale;
  std::vector<std::vector<float>> weights(starts.size(), std::vector<float>(out_length, 1.f));
  auto ramp = [](double t, double overlap_length) {
    // 0 over the first quarter of the overlap, 1 after the third quarter.
    double margin = overlap_length / 4;
    return static_cast<float>(std::clamp((t - margin) / std::max(overlap_length - 2 * margin, 1e-6), 0.0, 1.0));
  };
  for (size_t i = 0; i < starts.size(); ++i) {
    for (int64_t j = 0; j < out_length; ++j) {
      double t = (j + 0.5) / scale;  // input pixels from the tile's start
      if (i > 0) weights[i][j] *= ramp(t, static_cast<double>(starts[i - 1] + length - starts[i]));
      if (i + 1 < starts.size())
        weights[i][j] *= ramp(length - t, static_cast<double>(starts[i] + length - starts[i + 1]));
    }
  }
  std::vector<double> total(size * scale, 0.0);
  for (size_t i = 0; i < starts.size(); ++i)
    for (int64_t j = 0; j < out_length; ++j) total[starts[i] * scale + j] += weights[i][j];
  std::vector<Tile> tiles;
  for (size_t i = 0; i < starts.size(); ++i) {
    for (int64_t j = 0; j < out_length; ++j) {
      double sum = total[starts[i] * scale + j];
      // Every pixel is at least overlap/2 inside some tile, where that tile's weight is 1.
      weights[i][j] = sum > 0 ? static_cast<float>(weights[i][j] / sum) : 0.f;
    }
    at::Tensor w = at::from_blob(weights[i].data(), {out_length}, at::kFloat).clone().to(device);
    tiles.push_back({starts[i], w});
  }
  return tiles;
}

}  // namespace

struct FrameEnhancer::Impl {
  FrameEnhancerOptions options;
  RuntimeOptions runtime;
  EnhancerModel model_name;
  int scale;
  std::shared_ptr<const Model> model;
  Session session;

  Impl(const FrameEnhancerOptions& o, const RuntimeOptions& r, EnhancerModel name, std::shared_ptr<const Model> m)
      : options(o), runtime(r), model_name(name), scale(enhancer_scale(name)), model(m), session(std::move(m)) {}

  at::Tensor enhance(const at::Tensor& rgb);
  at::Tensor enhance_tiles(const at::Tensor& rgb, int64_t keep_y, int64_t keep_x, int64_t keep_h, int64_t keep_w);
};

at::Tensor FrameEnhancer::Impl::enhance(const at::Tensor& rgb) {
  // The network pads its convolutions with zeros, which darkens a few output
  // pixels along the image's edges and ruins images of a few pixels: repeat
  // the edge pixels outwards (at least kBorder, and to at least kMinSide in
  // all) and cut the result back.
  constexpr int64_t kBorder = 8, kMinSide = 32;
  const int64_t height = rgb.size(0), width = rgb.size(1);
  const int64_t pad_y = std::max<int64_t>(kBorder, (kMinSide - height + 1) / 2);
  const int64_t pad_x = std::max<int64_t>(kBorder, (kMinSide - width + 1) / 2);
  at::Tensor padded =
      at::replication_pad2d(rgb.permute({2, 0, 1}).unsqueeze(0).to(at::kFloat), {pad_x, pad_x, pad_y, pad_y})
          .squeeze(0)
          .permute({1, 2, 0})
          .to(at::kByte)
          .contiguous();
  return enhance_tiles(padded, pad_y, pad_x, height, width);
}

// Super-resolves `rgb` and returns the part of the result that belongs to its
// rows [keep_y, keep_y + keep_h) and columns [keep_x, keep_x + keep_w).
at::Tensor FrameEnhancer::Impl::enhance_tiles(const at::Tensor& rgb, int64_t keep_y, int64_t keep_x, int64_t keep_h,
                                              int64_t keep_w) {
  const int64_t height = rgb.size(0), width = rgb.size(1);
  const at::Device work = runtime.device == Device::cuda
                              ? at::Device(at::kCUDA, static_cast<int8_t>(runtime.device_index))
                              : at::Device(at::kCPU);
  const std::vector<Tile> columns = layout_axis(width, options.tile_size, options.tile_overlap, scale, work);
  const std::vector<Tile> rows = layout_axis(height, options.tile_size, options.tile_overlap, scale, work);
  const int64_t tile_w = std::min<int64_t>(width, options.tile_size),
                tile_h = std::min<int64_t>(height, options.tile_size);
  const int64_t out_w = width * scale;

  at::Tensor out = at::empty({keep_h * scale, keep_w * scale, 3}, rgb.options().dtype(at::kByte));
  // Rounds finished output rows [out_row, out_row + rows) and keeps what lies inside the kept area.
  auto finish = [&](const at::Tensor& band_rows, int64_t out_row) {
    const int64_t first = std::max(out_row, keep_y * scale);
    const int64_t last = std::min(out_row + band_rows.size(0), (keep_y + keep_h) * scale);
    if (last <= first) return;
    at::Tensor kept =
        band_rows.slice(0, first - out_row, last - out_row).slice(1, keep_x * scale, (keep_x + keep_w) * scale);
    out.slice(0, first - keep_y * scale, last - keep_y * scale).copy_(kept.round().clamp_(0, 255).to(at::kByte));
  };
  at::Tensor band = at::zeros({tile_h * scale, out_w, 3}, at::TensorOptions().dtype(at::kFloat).device(work));
  for (size_t r = 0; r < rows.size(); ++r) {
    const Tile& row = rows[r];
    at::Tensor row_weight = row.weights.view({-1, 1, 1});
    for (const Tile& column : columns) {
      at::Tensor tile = rgb.slice(0, row.start, row.start + tile_h)
                            .slice(1, column.start, column.start + tile_w)
                            .to(at::kFloat)
                            .unsqueeze(0)
                            .contiguous();
      at::Tensor sr = session.run({tile}).at(0);
      if (sr.dim() != 4 || sr.size(1) != tile_h * scale || sr.size(2) != tile_w * scale || sr.size(3) != 3)
        throw Error(ErrorKind::model, model->path().string() + ": expected a [1, " + std::to_string(tile_h * scale) +
                                          ", " + std::to_string(tile_w * scale) + ", 3] output, got " +
                                          c10::str(sr.sizes()));
      band.slice(1, column.start * scale, (column.start + tile_w) * scale)
          .add_(sr.squeeze(0).to(work) * row_weight * column.weights.view({1, -1, 1}));
    }
    // Rows before the next tile row's start are complete.
    if (r + 1 < rows.size()) {
      const int64_t done = (rows[r + 1].start - row.start) * scale;
      finish(band.slice(0, 0, done), row.start * scale);
      at::Tensor next = at::zeros_like(band);
      next.slice(0, 0, band.size(0) - done).copy_(band.slice(0, done));
      band = next;
    } else {
      finish(band, row.start * scale);
    }
  }
  return out;
}

FrameEnhancer::FrameEnhancer(const FrameEnhancerOptions& options, const RuntimeOptions& runtime) {
  if (options.tile_size < 32 || options.tile_overlap < 4 || options.tile_overlap > options.tile_size / 2)
    throw Error(ErrorKind::bad_input, "frame enhancer: tiles of " + std::to_string(options.tile_size) +
                                          " pixels overlapping by " + std::to_string(options.tile_overlap) +
                                          " (need tile size >= 32 and 4 <= overlap <= tile size / 2)");
  EnhancerModel name = parse_enhancer_model(options.model);
  impl_ = std::make_unique<Impl>(options, runtime, name, enhance::load_enhancer_model(name, runtime));
}

FrameEnhancer::FrameEnhancer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FrameEnhancer::~FrameEnhancer() = default;
FrameEnhancer::FrameEnhancer(FrameEnhancer&&) noexcept = default;
FrameEnhancer& FrameEnhancer::operator=(FrameEnhancer&&) noexcept = default;

FrameEnhancer FrameEnhancer::clone() const {
  return FrameEnhancer(std::make_unique<Impl>(impl_->options, impl_->runtime, impl_->model_name, impl_->model));
}

at::Tensor FrameEnhancer::enhance(const at::Tensor& rgb) {
  face::check_rgb(rgb);
  try {
    return impl_->enhance(rgb);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(ErrorKind::internal,
                std::string("frame enhancer (") + std::string(to_string(impl_->model_name)) + "): " + e.what());
  }
}

int FrameEnhancer::scale() const { return impl_->scale; }
const FrameEnhancerOptions& FrameEnhancer::options() const { return impl_->options; }
EnhancerModel FrameEnhancer::model() const { return impl_->model_name; }

}  // namespace visage
