// Scene-cut detection from colour histograms of small copies of the frames.
#pragma once

#include <ATen/core/Tensor.h>

namespace visage::track {

// 8x8x8-bin RGB histogram (CPU float [512], sums to 1) of a ~64-pixel-wide
// copy of the frame ([H, W, 3] uint8, CPU or CUDA). The copy is averaged
// over 2x2 blocks first, so that sensor noise barely moves pixels between bins.
at::Tensor colour_histogram(const at::Tensor& rgb);

// Total-variation distance between two histograms: 0 identical, 1 disjoint.
float histogram_distance(const at::Tensor& a, const at::Tensor& b);

}  // namespace visage::track
