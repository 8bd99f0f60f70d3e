// The identity-shape step of the mesh swapper: the target's mesh moved
// towards the source's face shape, in the target's pose and expression.
#pragma once

#include <span>
#include <vector>

#include "visage/face.hpp"

namespace visage::swap {

// Where each of the 468 vertices belongs between the skull (0) and the lower
// jaw (1): 0 above the mouth opening, 1 on the lower lip, the chin and the
// jaw below it, in between on the cheeks beside the mouth (their skin
// stretches when the mouth opens). Fixed per vertex (canonical mesh).
const std::vector<float>& jaw_weights();

// A face mesh's first 468 points as a shape: centred, unit RMS, turned into
// the canonical frame (x right, y down, z away from the camera).
std::vector<Point3> canonical_shape(std::span<const Point3> mesh);

// How frontal a face mesh is: the z-z entry of the rotation that turns the
// canonical shape onto it; 1 when it faces the camera straight on.
float frontalness(std::span<const Point3> mesh);

// The mean of shapes made by canonical_shape (one frame), at unit RMS.
std::vector<Point3> mean_shape(std::span<const std::vector<Point3>> shapes);

// Share of the difference in mouth opening (the inner lips' gap) between
// source and target that the jaw's turn takes; the rest is the lips parting
// over the teeth, which the rigidly moved mouth keeps as the target's.
inline constexpr float kJawShareOfGap = 0.5f;

// `shape` (468 points: a face shape in the canonical frame, unit RMS, as
// SourceFace keeps it) with its lower jaw turned about the jaw's hinge so
// that its mouth is open like `target`'s (a posed mesh, any frame), by
// `jaw_share` of the difference: how far a mouth is open is expression, not
// identity. Returns the same frame and scale as `shape`.
std::vector<Point3> open_jaw_like(std::span<const Point3> shape, std::span<const Point3> target,
                                  float jaw_share = kJawShareOfGap);

// Share of the difference in brow height (above the eye corners) between
// source and target that is taken as expression (raised or lowered brows)
// rather than identity. On the 12 portrait pairs of bench swap-quality
// (2026-11-26; mean 68-point NME of the new mesh against the target's, and
// identity gain): 0 -> 0.0284, 13.6%; 0.5 -> 0.0272, 13.9%; 1 -> 0.0268,
// 12.2% (the source looks less like itself with the target's brows).
inline constexpr float kBrowShareOfRaise = 0.5f;

// `shape` (as for open_jaw_like) with each brow, and the forehead skin above
// it, moved up or down by `brow_share` of the difference between the
// target's brow height and its own: how high the brows are is partly
// expression (surprise, a frown). Returns the same frame and scale.
std::vector<Point3> raise_brows_like(std::span<const Point3> shape, std::span<const Point3> target,
                                     float brow_share = kBrowShareOfRaise);

// The target mesh's first 468 points moved towards `shape` (canonical frame,
// unit RMS) by `weight` (0 = the target's own shape, 1 = the source's): the
// source shape, given the target's jaw opening, is placed onto the target by
// a 3D similarity; the lips and eyes move rigidly with their regions so the
// target keeps its expression there.
// `jaw_share` as for open_jaw_like (0: the source's jaw as measured),
// `brow_share` as for raise_brows_like (0: the source's brows as measured).
std::vector<Point3> transfer_shape(std::span<const Point3> shape, std::span<const Point3> target, float weight,
                                   float jaw_share = kJawShareOfGap, float brow_share = kBrowShareOfRaise);

}  // namespace visage::swap
