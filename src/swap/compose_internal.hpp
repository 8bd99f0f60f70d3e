// Helpers shared by masks.cpp, colour.cpp and blend.cpp (and their tests).
// Same conventions as compose.hpp: images [H, W, 3] float 0..255, masks
// [H, W] float 0..1, contiguous, one device per call.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "swap/compose.hpp"

namespace visage::swap::detail {

// 1 - x, and the smoothstep t^2 (3 - 2t) of a t already within 0..1, each
// in the fewest ATen ops: in ATen's C++ operators a float minus a tensor is
// three (a tensor filled with the float, then a subtraction in place), which
// on a device means two launches.
at::Tensor one_minus(const at::Tensor& x);
at::Tensor smoothstep_unit(const at::Tensor& t);

// `host` (a CPU tensor) on `device` without waiting for the stream: copied
// through pinned memory with a non-blocking copy (a plain .to(device) from
// pageable memory waits for all the work queued before it). On the CPU, or
// for a tensor already on the device, the same as host.to(device).
at::Tensor upload(const at::Tensor& host, at::Device device);

// A small constant (blur kernels, colour matrices: `host` a CPU tensor of at
// most kMaxConstantBytes) on `device`, uploaded once per distinct content and
// kept: later calls with equal bytes return the same device tensor without a
// copy, and a CUDA graph captured over them reads memory that stays valid
// (see ConstantsKept). Callers never write into it. On the CPU, `host`.
constexpr int64_t kMaxConstantBytes = 64 * 1024;
at::Tensor constant(const at::Tensor& host, at::Device device);

// While one is alive on a thread, the constants that thread is given are also
// held here (a captured graph keeps them alive after the cache lets them go).
class ConstantsKept {
 public:
  ConstantsKept();
  ~ConstantsKept();
  ConstantsKept(const ConstantsKept&) = delete;
  ConstantsKept& operator=(const ConstantsKept&) = delete;
  std::vector<at::Tensor> tensors;

 private:
  ConstantsKept* outer_;
};

// Gaussian blur of every channel of a [N, C, H, W] float tensor (borders
// replicated). Small sigmas run a separable convolution; large ones blur a
// box-downsampled copy and upsample it bilinearly (with the variance those two
// add subtracted), which keeps the cost flat in sigma.
at::Tensor gaussian_blur_nchw(const at::Tensor& input, float sigma);

// fill_polygons on a device: the CPU computes each edge's signed-area
// deposits (a few per edge and pixel row, O(perimeter)), the device sums
// them into an accumulator of width + 2 cells per row and takes the prefix
// sums along rows (O(pixels), no host work per pixel). polygon_deposits
// appends the deposits of one fill, number `set` of a batch, as cell indices
// of a [sets, height, width + 2] accumulator and values;
// resolve_polygon_deposits (any device; cells int32 or int64, values float)
// gives the [sets, height, width] masks, equal to fill_polygons' up to the
// order of the float sums.
void polygon_deposits(int64_t height, int64_t width, const std::vector<Polygon>& polygons, int64_t set,
                      std::vector<int32_t>& cells, std::vector<float>& values);
at::Tensor resolve_polygon_deposits(const at::Tensor& cells, const at::Tensor& values, int64_t sets, int64_t height,
                                    int64_t width);

// feather_mask with ATen ops (what runs on a device; the CPU runs the exact
// distance transform of Felzenszwalb and Huttenlocher, which it matches:
// the distance here is exact up to the radius, farther pixels all give 1).
at::Tensor feather_mask_aten(const at::Tensor& mask, float radius);

// skin_visibility_mask's model: occluder strength [H, W] inside
// face_region from an L*a*b* image [H, W, 3] (before growing and
// smoothing). The CPU version takes contiguous CPU tensors and a clamped region.
at::Tensor skin_occlusion_cpu(const at::Tensor& lab, const at::Tensor& skin_sample, const at::Tensor& face_region);
at::Tensor skin_occlusion_aten(const at::Tensor& lab, const at::Tensor& skin_sample, const at::Tensor& face_region);

// sRGB 0..255 [H, W, 3] <-> CIE L*a*b* (D65) [H, W, 3]. On the CPU a fused
// per-pixel loop; elsewhere ATen elementwise ops. `*_aten` are the ATen
// versions on any device (the CPU loop is tested against them).
at::Tensor rgb_to_lab(const at::Tensor& rgb);
at::Tensor lab_to_rgb(const at::Tensor& lab);
at::Tensor rgb_to_lab_aten(const at::Tensor& rgb);
at::Tensor lab_to_rgb_aten(const at::Tensor& lab);

// transfer_colour's L*a*b* statistics transfer with ATen ops (any device;
// the CPU runs fused loops): source and target converted and measured as
// one batch. Result clamped to 0..255.
at::Tensor lab_transfer_aten(const at::Tensor& source, const at::Tensor& target, const at::Tensor& region);

// sRGB 0..255 <-> linear light 0..1 (elementwise, any shape).
at::Tensor srgb_to_linear(const at::Tensor& srgb);
at::Tensor linear_to_srgb(const at::Tensor& linear);

// The number of pyramid levels blend() uses for a multiband blend of an
// h x w region: round(log2(min(h, w) / 16)) clamped to 3..6.
int multiband_levels(int64_t h, int64_t w);

// The multiband blend with ATen ops (any device; the CPU runs fused loops
// that give the same result).
at::Tensor blend_multiband_aten(const at::Tensor& foreground, const at::Tensor& background, const at::Tensor& alpha,
                                int levels);

// Seamless cloning on the CPU: `d` is foreground - background [H, W, 3],
// `alpha` [H, W]. Returns u, zero where alpha == 0, whose discrete Laplacian
// equals the divergence of alpha * grad(d) inside alpha > 0 (relative
// residual 1e-4), by conjugate gradients preconditioned with a multigrid
// V-cycle; at most `max_iterations` iterations.
at::Tensor poisson_offset_cpu(const at::Tensor& d, const at::Tensor& alpha, int max_iterations);

// full_resolution.cpp: the steps of the swap at the target's full resolution.

// `image` [H, W, 3] (uint8 or float, any strides) resampled through a smooth
// displacement field: out(x, y) = image at (x, y) - field(x, y), bilinear,
// borders replicated (grid_sampler's border mode), where the field is
// `coarse` [GH, GW, 2] (dx, dy in pixels at the centres of step x step cells,
// GH * step >= H, GW * step >= W) upsampled bilinearly. Float [H, W, 3].
at::Tensor warp_by_field(const at::Tensor& image, const at::Tensor& coarse, int64_t step);

// The same warp written back into `roi` (uint8 [H, W, 3], a view into the
// frame): pixels outside the box (x, y, w, h) get the warped image rounded
// (on the CPU those the field does not move are not touched), and the box's
// warped pixels are returned unrounded, float [h, w, 3]: the background a
// face is composed on, which paste_face then writes into the box.
at::Tensor warp_in_place(at::Tensor roi, const at::Tensor& coarse, int64_t step, int64_t box_x, int64_t box_y,
                         int64_t box_w, int64_t box_h);

// Writes a face composed at a reduced size into the target: `out_roi`
// (uint8 [H, W, 3], a view into the frame) gets round(background) outside
// the box (x, y, w, h) and the composite inside it. When `blended` is the
// box's size the composite is `blended`; otherwise it is upsampled
// bilinearly and, where `alpha` (the blend mask at that size) is below 1,
// the full-resolution background's detail comes back:
//   up(blended) + (1 - up(alpha)) (background - up(small_background)).
// Where alpha is 0, blended must equal small_background (blend() leaves the
// background exactly there): the background is written as it is.
// background: float [H, W, 3]; blended, small_background: float [h, w, 3];
// alpha: float [h, w].
void paste_face(at::Tensor out_roi, const at::Tensor& background, int64_t box_x, int64_t box_y, int64_t box_w,
                int64_t box_h, const at::Tensor& blended, const at::Tensor& small_background, const at::Tensor& alpha);

}  // namespace visage::swap::detail

namespace visage::swap {

// blend(..., BlendMode::multiband) with an explicit number of pyramid levels
// (the coarsest band is 2^levels pixels wide; blend picks
// round(log2(min(H, W) / 16)) clamped to 3..6).
at::Tensor blend_multiband(const at::Tensor& foreground, const at::Tensor& background, const at::Tensor& alpha,
                           int levels);

}  // namespace visage::swap
