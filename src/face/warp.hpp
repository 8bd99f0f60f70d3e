// Affine resampling of a uint8 RGB image into network inputs and face crops.
#pragma once

#include <ATen/core/Tensor.h>

#include "visage/face.hpp"

namespace visage::face {

// Samples `rgb` ([H, W, 3] uint8, CPU or CUDA) at out_to_image(u + 0.5, v + 0.5)
// for every output pixel (u, v) of an out_h x out_w grid, bilinearly; points
// outside the image read as 0. Returns [1, out_h, out_w, 3] float32 on the
// image's device holding value * scale + offset.
at::Tensor warp_to_input(const at::Tensor& rgb, const Affine& out_to_image, int out_h, int out_w, float scale,
                         float offset);

// Same sampling, uint8 result [out_h, out_w, 3].
at::Tensor warp_to_image(const at::Tensor& rgb, const Affine& out_to_image, int out_h, int out_w);

// Network outputs as contiguous float32 CPU tensors of the same shapes. On
// CUDA they are gathered on the device first so that one copy (one sync)
// brings them all back.
std::vector<at::Tensor> outputs_to_host(const std::vector<at::Tensor>& outputs);

// Throws Error{bad_input} unless rgb is [H, W, 3] uint8 with H, W > 0.
void check_rgb(const at::Tensor& rgb);

}  // namespace visage::face
