// The swap's rasters made with ATen ops (what a device runs) against the CPU
// rasterisers they replace there: polygon fills (fill_polygons_into against
// polygon_deposits + resolve_polygon_deposits) and the mesh correspondence
// (mesh_correspondence against triangle_tables + mesh_correspondence_aten).
// The ATen paths run on CPU tensors here; on CUDA too where there is one.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <numbers>
#include <random>

#include "swap/compose.hpp"
#include "swap/compose_internal.hpp"
#include "swap/mesh_raster.hpp"
#include "swap/mesh_topology.hpp"
#include "test_support.hpp"

namespace visage::swap {
namespace {

std::vector<at::Device> devices() {
  std::vector<at::Device> out = {at::kCPU};
  if (at::hasCUDA()) out.emplace_back(at::kCUDA, 0);
  return out;
}

// Random polygons of a face's kind: ovals with jittered radii (either
// orientation), thin slivers, boxes reaching past the borders, and sets of
// several overlapping polygons.
std::vector<std::vector<Polygon>> random_polygon_sets(std::mt19937& rng, int64_t h, int64_t w) {
  std::uniform_real_distribution<float> u(0.f, 1.f);
  auto oval = [&](float cx, float cy, float rx, float ry, int n, bool clockwise) {
    Polygon p;
    for (int i = 0; i < n; ++i) {
      const double t = 2 * std::numbers::pi * i / n * (clockwise ? -1 : 1);
      const float jitter = 0.9f + 0.2f * u(rng);
      p.push_back(
          {static_cast<float>(cx + jitter * rx * std::cos(t)), static_cast<float>(cy + jitter * ry * std::sin(t))});
    }
    return p;
  };
  std::vector<std::vector<Polygon>> sets;
  sets.push_back({oval(w * 0.5f, h * 0.5f, w * 0.4f, h * 0.45f, 36, false)});
  sets.push_back({oval(w * 0.5f, h * 0.5f, w * 0.6f, h * 0.3f, 40, true)});  // past the left and right borders
  std::vector<Polygon> features;
  for (int i = 0; i < 6; ++i)
    features.push_back(oval(w * (0.2f + 0.6f * u(rng)), h * (0.2f + 0.6f * u(rng)), 5.f + 40.f * u(rng),
                            2.f + 15.f * u(rng), 8 + i * 3, i % 2 == 0));
  sets.push_back(features);
  sets.push_back({{{-13.3f, -7.1f}, {w + 9.7f, -7.1f}, {w + 9.7f, h * 0.31f}, {-13.3f, h * 0.31f}}});
  sets.push_back({{{10.25f, 20.5f}, {w - 10.75f, 21.f}, {w * 0.5f, 22.f}}});  // a sliver
  sets.push_back({{{0.f, 0.f}, {static_cast<float>(w), 0.f}, {static_cast<float>(w), static_cast<float>(h)}}});
  sets.push_back({});
  return sets;
}

TEST(SwapRasters, DeviceFillMatchesCpuFill) {
  std::mt19937 rng(7);
  for (auto [h, w] : {std::pair<int64_t, int64_t>{431, 389}, {64, 97}}) {
    const auto sets = random_polygon_sets(rng, h, w);
    const int64_t n = static_cast<int64_t>(sets.size());
    at::Tensor cpu = at::empty({n, h, w}, at::kFloat);
    std::vector<int32_t> cells;
    std::vector<float> values;
    for (int64_t i = 0; i < n; ++i) {
      fill_polygons_into(cpu[i].data_ptr<float>(), h, w, sets[static_cast<size_t>(i)]);
      detail::polygon_deposits(h, w, sets[static_cast<size_t>(i)], i, cells, values);
    }
    // O(perimeter): far fewer deposits than pixels.
    EXPECT_LT(static_cast<int64_t>(cells.size()), n * h * w / 10);
    at::Tensor c = at::from_blob(cells.data(), {static_cast<int64_t>(cells.size())}, at::kInt).clone();
    at::Tensor v = at::from_blob(values.data(), {static_cast<int64_t>(values.size())}, at::kFloat).clone();
    for (const at::Device& device : devices()) {
      at::Tensor masks = detail::resolve_polygon_deposits(c.to(device), v.to(device), n, h, w).cpu();
      ASSERT_EQ(masks.sizes(), cpu.sizes());
      const double diff = (masks - cpu).abs().max().item<double>();
      EXPECT_LT(diff, 2e-5) << device << " " << h << "x" << w;
      std::printf("  %s %ldx%ld: max |device - cpu| %.2g\n", device.str().c_str(), long(h), long(w), diff);
      // Not vacuous: the fills cover something and leave something out.
      EXPECT_GT(cpu[0].sum().item<double>(), 0.3 * h * w);
      EXPECT_EQ(cpu[n - 1].sum().item<double>(), 0.0);
      EXPECT_EQ(masks[n - 1].sum().item<double>(), 0.0);
    }
  }
}

// The canonical mesh at ~400 px, turned by `yaw` (some triangles face away)
// with a little noise, as a target (dst) and a source in another pose.
std::vector<Point3> posed_mesh(float yaw, float scale, float cx, float cy, float noise, std::mt19937& rng) {
  std::normal_distribution<float> n(0.f, noise);
  std::vector<Point3> mesh;
  const float c = std::cos(yaw), s = std::sin(yaw);
  for (int i = 0; i < mesh_vertices; ++i) {
    const float x = canonical_mesh[3 * i], y = canonical_mesh[3 * i + 1], z = canonical_mesh[3 * i + 2];
    mesh.push_back({cx + scale * (c * x + s * z) + n(rng), cy + scale * y + n(rng), scale * (-s * x + c * z)});
  }
  return mesh;
}

Correspondence aten_correspondence(std::span<const Point3> dst, std::span<const Point3> src, int h, int w,
                                   at::Device device) {
  const auto& topo = mesh_topology();
  const TriangleTables t = triangle_tables(dst, src, topo.mirror, topo.triangles, h, w);
  auto as_tensor = [&](const auto& v, at::ScalarType type, int64_t cols) {
    at::Tensor host = at::empty({static_cast<int64_t>(v.size()) / cols, cols}, type);
    std::memcpy(host.data_ptr(), v.data(), v.size() * sizeof(v[0]));
    return host.to(device);
  };
  return mesh_correspondence_aten(as_tensor(t.geometry, at::kFloat, TriangleTables::kGeometry),
                                  as_tensor(t.sources, at::kFloat, TriangleTables::kSources),
                                  as_tensor(t.first, at::kInt, 1).view({-1}), t.candidates, h, w);
}

TEST(SwapRasters, DeviceCorrespondenceMatchesCpu) {
  const auto& topo = mesh_topology();
  std::mt19937 rng(11);
  const int h = 430, w = 410;
  struct Case {
    float yaw, noise;
    bool snap;  // vertices on half pixels: pixel centres on edges (ties)
  };
  for (const Case& k : {Case{0.f, 0.3f, false}, Case{0.5f, 0.5f, false}, Case{-0.7f, 0.f, true}}) {
    std::vector<Point3> dst = posed_mesh(k.yaw, 150.f, w * 0.5f, h * 0.5f, k.noise, rng);
    if (k.snap)
      for (auto& p : dst) p.x = std::round(p.x * 2) / 2, p.y = std::round(p.y * 2) / 2;
    const std::vector<Point3> src = posed_mesh(-0.3f, 120.f, 250.f, 240.f, 0.2f, rng);
    const Correspondence cpu = mesh_correspondence(dst, src, topo.mirror, topo.triangles, h, w);
    const double covered = cpu.covered.sum().item<double>();
    ASSERT_GT(covered, 0.2 * h * w) << "the mesh covers a good part of the grid";
    for (const at::Device& device : devices()) {
      const Correspondence ours = aten_correspondence(dst, src, h, w, device);
      ASSERT_EQ(ours.direct.sizes(), cpu.direct.sizes());
      ASSERT_TRUE(ours.direct.is_contiguous() && ours.mirrored.is_contiguous());
      // Pixel centres on a shared edge may go to either triangle on a device
      // (other rounding); both give the same point up to the 1e-4 weight slack.
      const double coverage_diff = (ours.covered.cpu() - cpu.covered).abs().sum().item<double>();
      EXPECT_LE(coverage_diff, 0.0005 * covered) << device << " yaw " << k.yaw;
      at::Tensor both = (ours.covered.cpu() * cpu.covered).unsqueeze(2);
      const double direct = ((ours.direct.cpu() - cpu.direct) * both).abs().max().item<double>();
      const double mirrored = ((ours.mirrored.cpu() - cpu.mirrored) * both).abs().max().item<double>();
      EXPECT_LT(direct, 0.01) << device << " yaw " << k.yaw;
      EXPECT_LT(mirrored, 0.01) << device << " yaw " << k.yaw;
      const double mean = ((ours.direct.cpu() - cpu.direct) * both).abs().sum().item<double>() / (3 * covered);
      EXPECT_LT(mean, 5e-5) << device << " yaw " << k.yaw;
      std::printf(
          "  %s yaw %.1f: coverage differs at %.0f of %.0f pixels, direct max %.2g mean %.2g, mirrored max %.2g\n",
          device.str().c_str(), k.yaw, coverage_diff, covered, direct, mean, mirrored);
      // Outside the mesh everything is zero, as on the CPU.
      at::Tensor outside = (1.f - ours.covered.cpu()).unsqueeze(2);
      EXPECT_EQ((ours.direct.cpu() * outside).abs().sum().item<double>(), 0.0);
    }
  }
}

// No assertions on time (tests never do): what each path costs here.
TEST(SwapRasters, Timing) {
  const auto& topo = mesh_topology();
  std::mt19937 rng(3);
  const int h = 430, w = 410;
  const std::vector<Point3> dst = posed_mesh(0.3f, 150.f, w * 0.5f, h * 0.5f, 0.3f, rng);
  const std::vector<Point3> src = posed_mesh(-0.3f, 120.f, 250.f, 240.f, 0.2f, rng);
  const auto sets = random_polygon_sets(rng, h + 40, w + 40);
  std::vector<float> planes(sets.size() * (h + 40) * (w + 40));
  std::printf("  host fills            %7.2f ms\n", test::best_time_ms([&] {
                for (size_t i = 0; i < sets.size(); ++i)
                  fill_polygons_into(planes.data() + i * (h + 40) * (w + 40), h + 40, w + 40, sets[i]);
              }));
  std::printf("  host deposits         %7.2f ms\n", test::best_time_ms([&] {
                std::vector<int32_t> cells;
                std::vector<float> values;
                for (size_t i = 0; i < sets.size(); ++i)
                  detail::polygon_deposits(h + 40, w + 40, sets[i], static_cast<int64_t>(i), cells, values);
              }));
  std::printf("  host correspondence   %7.2f ms\n",
              test::best_time_ms([&] { mesh_correspondence(dst, src, topo.mirror, topo.triangles, h, w); }));
  std::printf("  host triangle tables  %7.2f ms\n",
              test::best_time_ms([&] { triangle_tables(dst, src, topo.mirror, topo.triangles, h, w); }));
  for (const at::Device& device : devices()) {
    std::printf("  ATen correspondence (%s) %7.2f ms\n", device.str().c_str(), test::best_time_ms([&] {
                  Correspondence c = aten_correspondence(dst, src, h, w, device);
                  c.covered.sum().item<float>();
                }));
  }
  SUCCEED();
}

}  // namespace
}  // namespace visage::swap
